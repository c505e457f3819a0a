/**
 * A cluster's Redis that cannot keep or cannot be reached, as an admin learns
 * of it: with a maxmemory-policy that evicts, every hacks run warns once
 * (policy named, the fix), and doctor says cluster-eviction; unreachable,
 * doctor says cluster-unreachable (an error, never the password) and the
 * metrics textfile counts rcguard_errors_total{stage="cluster"}. A real
 * redis-server (test/helpers/redis.ts) and Roundcube's real configuration
 * for doctor (test/doctor/fixture.ts).
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {at, cli, requireRoot} from '../helpers/env.js'
import {requireRedis, startRedis} from '../helpers/redis.js'
import {cleanGuard, rcFixture, requireRoundcube} from '../doctor/fixture.js'

type Finding = {id: string; severity: string; message: string; fix: string}

test('a maxmemory-policy that evicts: one warning per hacks run, and doctor\'s cluster-eviction; noeviction: neither', async (t) => {
  if (!requireRoot(t) || !requireRedis(t) || !requireRoundcube(t)) return
  const redis = await startRedis(t, {password: 'Sesame-0penS3sam3'})
  const f = rcFixture(t)
  const config = cleanGuard(f, {}, {firewall: {backend: 'none'}, cluster: {redis: redis.url, node: 'web1'}})
  const now = {env: {...f.cliOptions.env, RCGUARD_NOW: at(0, 0).toISOString()}}
  const findings = async (): Promise<Finding[]> => {
    const r = await cli(['doctor', '--json', '--config', config, '--roundcube', f.rcDir], now)
    assert.ok([0, 1, 2].includes(r.exitCode), r.stdout + r.stderr)
    assert.doesNotMatch(r.stdout + r.stderr, /Sesame/)
    return (JSON.parse(r.stdout) as {findings: Finding[]}).findings.filter((x) => x.id.startsWith('cluster-'))
  }
  assert.deepEqual(await findings(), [], 'noeviction (the default): nothing to say')
  let r = await cli(['hacks', '--config', config], now)
  assert.equal(r.exitCode, 0, r.stderr)
  assert.equal(r.stderr, '')

  assert.equal((await redis.cli(['CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru'])).exitCode, 0)
  r = await cli(['hacks', '--config', config], now)
  assert.equal(r.exitCode, 0, r.stderr)
  assert.deepEqual(r.stderr.trim().split('\n'), [
    `rcguard: warning: cluster: Redis at unix://${redis.socket} has maxmemory-policy allkeys-lru: when it is full it evicts any key, rcguard's blocks too, and blocks or counts vanish silently; set maxmemory-policy noeviction, or give rcguard a Redis of its own`,
  ])
  assert.deepEqual((await findings()).map((x) => `${x.severity}:${x.id}`), ['warning:cluster-eviction'])
})

test('Redis unreachable: doctor\'s cluster-unreachable (an error), and the run\'s error counted in the metrics (stage cluster), the password never shown', async (t) => {
  if (!requireRoot(t) || !requireRedis(t) || !requireRoundcube(t)) return
  const redis = await startRedis(t, {password: 'Sesame-0penS3sam3'})
  const f = rcFixture(t)
  const textfile = join(f.dir, 'rcguard.prom')
  const config = cleanGuard(f, {}, {firewall: {backend: 'none'}, metrics: {textfile}, cluster: {redis: redis.url, node: 'web1', timeoutSeconds: 1}})
  const now = {env: {...f.cliOptions.env, RCGUARD_NOW: at(0, 0).toISOString()}}
  await redis.stop()
  const d = await cli(['doctor', '--json', '--config', config, '--roundcube', f.rcDir], now)
  assert.equal(d.exitCode, 2, d.stdout + d.stderr)
  const found = (JSON.parse(d.stdout) as {findings: Finding[]}).findings.filter((x) => x.id.startsWith('cluster-'))
  assert.deepEqual(found.map((x) => `${x.severity}:${x.id}`), ['error:cluster-unreachable'])
  assert.match(found[0]?.message ?? '', /^cluster: Redis at unix:\/\/\S+ \(cluster node web1\): connect ENOENT \S+: every run counts and blocks on this node alone until it answers$/)
  const r = await cli(['hacks', '--config', config], now)
  assert.equal(r.exitCode, 0, r.stderr)
  assert.doesNotMatch(d.stdout + d.stderr + r.stdout + r.stderr, /Sesame/)
  assert.match(readFileSync(textfile, 'utf8'), /^rcguard_errors_total\{stage="cluster"\} 1$/m)
})
