/**
 * Cluster nodes without namespaces (firewall backend none), for tests of
 * what the nodes decide and share: each its own directory, configuration,
 * log and database, all on one redis-server (redis.ts). A node's commands run
 * at a time given as RCGUARD_NOW, or under faketime with a clock of its own.
 */
import assert from 'node:assert/strict'
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {execa} from 'execa'
import {BIN, cli, tempDir, type CliResult} from './env.js'
import type {RedisServer} from './redis.js'

export interface Node {
  name: string
  config: string
  log: string
  /** rcguard with RCGUARD_NOW = time. */
  run: (args: string[], time: string) => Promise<CliResult>
  /** rcguard on the real clock moved by skewSeconds (faketime), no RCGUARD_NOW. */
  runSkewed: (args: string[], skewSeconds: number) => Promise<CliResult>
}

/** Three nodes (a, b, c) on `redis`. */
export function nodes(t: {after: (fn: () => void) => void}, redis: RedisServer, extra: Record<string, unknown> = {}): Node[] {
  const root = tempDir(t, 'rcguard-cluster-nodes-')
  return ['a', 'b', 'c'].map((name) => {
    const dir = join(root, name)
    mkdirSync(dir, {mode: 0o700})
    const config = join(dir, 'rcguard.json')
    const log = join(dir, 'userlogins.log')
    writeFileSync(log, '')
    writeFileSync(
      config,
      JSON.stringify({database: join(dir, 'db.json'), instances: [{name: 'master', logs: [log], ports: [443]}], firewall: {backend: 'none'}, whitelist: ['127.0.0.0/8', '::1'], ...extra, cluster: {redis: redis.url, node: name}}),
      {mode: 0o600},
    )
    const runSkewed = async (args: string[], skewSeconds: number): Promise<CliResult> => {
      const offset = `${skewSeconds >= 0 ? '+' : ''}${skewSeconds}s`
      const r = await execa('faketime', ['-f', offset, 'node', BIN, ...args, '--config', config], {
        reject: false,
        input: '',
        timeout: 60_000,
        env: {NO_COLOR: '1', FORCE_COLOR: '0', COLUMNS: '160', FAKETIME_DONT_FAKE_MONOTONIC: '1', RCGUARD_NOW: ''},
      })
      return {stdout: String(r.stdout), stderr: String(r.stderr), exitCode: r.exitCode ?? -1}
    }
    return {name, config, log, run: (args, time) => cli([...args, '--config', config], {env: {RCGUARD_NOW: time}}), runSkewed}
  })
}

export type Listed = {ip: string; state: string; rule?: string; blockedUntil: string | null; comment?: string | null}

export async function listed(n: Node, time: string): Promise<Listed[]> {
  const r = await n.run(['list', '--json'], time)
  assert.equal(r.exitCode, 0, r.stderr)
  return JSON.parse(r.stdout) as Listed[]
}

/** hacks at `time`: exit 0 and no cluster warning (Redis answers). */
export async function hacks(n: Node, time: string): Promise<CliResult> {
  const r = await n.run(['hacks'], time)
  assert.equal(r.exitCode, 0, `${n.name}: ${r.stdout}${r.stderr}`)
  assert.doesNotMatch(r.stderr, /cluster:/, 'Redis answers: no cluster warning')
  return r
}

export const blockedOn = async (n: Node, ip: string, time: string): Promise<Listed | undefined> => (await listed(n, time)).find((e) => e.ip === ip && e.state === 'blocked')
