/**
 * Shared test plumbing: temp directories, log line builders, running the real
 * CLI as a subprocess, and network namespaces for firewall tests.
 */
import {appendFileSync, chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {randomBytes} from 'node:crypto'
import type {TestContext} from 'node:test'
import assert from 'node:assert/strict'
import {execa} from 'execa'

export const ROOT = resolve(import.meta.dirname, '..', '..')
export const BIN = join(ROOT, 'bin', 'run.js')

export function tempDir(t: {after: (fn: () => void) => void}, prefix = 'rcguard-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.after(() => rmSync(dir, {recursive: true, force: true}))
  return dir
}

/** `[25-Nov-2026 13:00:00 +0000]` for a Date. */
export function fileDate(d: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
  const p = (n: number) => String(n).padStart(2, '0')
  return `[${p(d.getUTCDate())}-${months[d.getUTCMonth()]}-${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000]`
}

let sessionCounter = 0
function session(): string {
  sessionCounter++
  return `t${String(sessionCounter).padStart(7, '0')}`
}

/** A 1.6-style userlogins failure line (F2). */
export function f2(d: Date, ip: string, user = 'alice@example.com', error = 0, sp: string = session()): string {
  return `${fileDate(d)}: <${sp}> Failed login for ${user} from ${ip} in session ${sp}abcdefgh (error: ${error})`
}

/** A 1.6-style errors-log IMAP failure line (F1) for the login form. */
export function f1(d: Date, ip: string, user = 'alice@example.com', sp: string = session()): string {
  return `${fileDate(d)}: <${sp}> IMAP Error: Login failed for ${user} against localhost from ${ip}. AUTHENTICATE PLAIN: Authentication failed. in /usr/share/roundcube/program/lib/Roundcube/rcube_imap.php on line 211 (POST /?_task=login&_action=login)`
}

export function appendLines(file: string, lines: string[]): void {
  if (lines.length > 0) appendFileSync(file, `${lines.join('\n')}\n`)
}

/** n failure lines from ip, one every `stepSeconds`, starting at start. */
export function burst(start: Date, ip: string, n: number, stepSeconds = 20): string[] {
  return Array.from({length: n}, (_, i) => f2(new Date(start.getTime() + i * stepSeconds * 1000), ip))
}

export interface Setup {
  dir: string
  config: string
  db: string
  log: string
  errorsLog: string
}

/** Writes a config in a temp dir: one instance "master" on ports 80,443 reading two logs. */
export function setup(t: {after: (fn: () => void) => void}, extra: Record<string, unknown> = {}, yamlExtra = ''): Setup {
  const dir = tempDir(t)
  const log = join(dir, 'userlogins.log')
  const errorsLog = join(dir, 'errors.log')
  writeFileSync(log, '')
  writeFileSync(errorsLog, '')
  const db = join(dir, 'db', 'db.json')
  const base = {
    database: db,
    instances: [{name: 'master', logs: [errorsLog, log], ports: [80, 443]}],
    firewall: {backend: 'none'},
    ...extra,
  }
  const config = join(dir, 'rcguard.yml')
  writeFileSync(config, `${JSON.stringify(base, null, 2)}\n${yamlExtra}`)
  return {dir, config, db, log, errorsLog}
}

/**
 * Rewrites a setup's configuration for one instance reading only its
 * userlogins log on port 443, backend none and the first rule alone
 * (`windows: []`), with `extra` keys and `firewall` keys on top.
 */
export function oneLogConfig(s: Setup, extra: Record<string, unknown> = {}, firewall: Record<string, unknown> = {}): void {
  writeFileSync(
    s.config,
    JSON.stringify({database: s.db, instances: [{name: 'master', logs: [s.log], ports: [443]}], firewall: {backend: 'none', ...firewall}, windows: [], ...extra}),
  )
}

export interface CliResult {
  stdout: string
  stderr: string
  exitCode: number
}

export interface CliOptions {
  env?: Record<string, string>
  /** Run inside this network namespace (ip netns exec). */
  netns?: string
  input?: string
}

export async function cli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const env = {NO_COLOR: '1', FORCE_COLOR: '0', COLUMNS: '160', ...options.env}
  const [cmd, argv] =
    options.netns === undefined ? ['node', [BIN, ...args]] : ['ip', ['netns', 'exec', options.netns, 'node', BIN, ...args]]
  const r = await execa(cmd, argv, {reject: false, env, input: options.input ?? '', timeout: 60_000})
  return {stdout: String(r.stdout), stderr: String(r.stderr), exitCode: r.exitCode ?? -1}
}

export async function cliJson<T>(args: string[], options: CliOptions = {}): Promise<T> {
  const r = await cli([...args, '--json'], options)
  if (r.exitCode !== 0) throw new Error(`rcguard ${args.join(' ')} exited ${r.exitCode}: ${r.stderr}${r.stdout}`)
  return JSON.parse(r.stdout) as T
}

export const isRoot = process.getuid?.() === 0

/**
 * Firewall tests need root. Without it they skip with the reason; under
 * CI=true a skip is a failure, so CI can never pass without running them.
 */
export function requireRoot(t: TestContext): boolean {
  if (isRoot) return true
  const reason = 'needs root to create a network namespace and run the real iptables'
  if (process.env.CI === 'true') {
    throw new Error(`CI=true and ${reason}: firewall tests must run in CI`)
  }
  t.skip(reason)
  return false
}

/** A fresh network namespace, deleted after the test. */
export async function netns(t: {after: (fn: () => Promise<void>) => void}): Promise<{name: string; run: (cmd: string, args: string[], input?: string) => Promise<CliResult>}> {
  const name = `rcgt-${randomBytes(4).toString('hex')}`
  await execa('ip', ['netns', 'add', name])
  t.after(async () => {
    await execa('ip', ['netns', 'del', name], {reject: false})
  })
  const run = async (cmd: string, args: string[], input?: string): Promise<CliResult> => {
    const r = await execa('ip', ['netns', 'exec', name, cmd, ...args], {reject: false, input: input ?? ''})
    return {stdout: String(r.stdout), stderr: String(r.stderr), exitCode: r.exitCode ?? -1}
  }
  return {name, run}
}

/** iptables-save output without the comment lines that carry a timestamp. */
export function stripSaveComments(text: string): string {
  return text
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n')
}

/** A positive integer from the environment (trial counts, seeds), or the fallback. */
export function envInt(name: string, fallback: number): number {
  const n = Number.parseInt(process.env[name] ?? '', 10)
  return Number.isFinite(n) && n > 0 ? n : fallback
}

/** mulberry32: a small seeded generator, so a failing fault run can be replayed with its printed seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296
  }
}

/** A stack trace line, which rcguard never prints without --verbose. */
export const STACK = /^ {4}at /m

export function stderrLines(r: CliResult): string[] {
  return r.stderr.split('\n').filter((l) => l.trim() !== '')
}

/** Exactly one line on stderr, matching every pattern, and no stack trace anywhere. */
export function oneLine(r: CliResult, what: string, ...patterns: RegExp[]): string {
  const lines = stderrLines(r)
  assert.equal(lines.length, 1, `${what}: expected one line on stderr, got ${lines.length}:\n${r.stderr}`)
  const line = lines[0] ?? ''
  for (const p of patterns) assert.match(line, p, `${what}: ${line}`)
  assert.doesNotMatch(`${r.stdout}\n${r.stderr}`, STACK, `${what}: no stack trace`)
  return line
}

/**
 * Whether some process holds the flock on `path` (rcguard's database lock); false when there is no such file.
 * Read from /proc/locks, not by trying the lock: a probe that took it, even for a moment, would make a run
 * starting at that moment find it busy.
 */
export async function lockHeld(path: string): Promise<boolean> {
  if (!existsSync(path)) return false
  const ino = statSync(path).ino
  return readFileSync('/proc/locks', 'utf8')
    .split('\n')
    .some((l) => / FLOCK /.test(l) && new RegExp(`:${ino} `).test(l))
}

/** Milliseconds until nobody holds the lock at `path`, polled every 5 ms; throws after `limitMs`. */
export async function lockFreeAfter(path: string, limitMs = 5_000): Promise<number> {
  const t0 = performance.now()
  while (await lockHeld(path)) {
    if (performance.now() - t0 > limitMs) throw new Error(`the lock ${path} was still held after ${limitMs} ms`)
    await new Promise((r) => setTimeout(r, 5))
  }
  return performance.now() - t0
}

/** The tests' fixed "now" base: 2026-11-25 13:00 UTC. */
export const T0 = new Date(Date.UTC(2026, 10, 25, 13, 0, 0))

/** T0 plus minutes (and seconds). */
export const at = (min: number, sec = 0): Date => new Date(T0.getTime() + min * 60_000 + sec * 1000)

/** The environment that makes rcguard take at(min) as its current time. */
export const nowEnv = (min: number): {RCGUARD_NOW: string} => ({RCGUARD_NOW: at(min).toISOString()})

/** Runs fn over items, a few at a time (each CLI call is a Node start-up: about 1 s of CPU); results in item order. */
export async function pool<T, R>(items: T[], size: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i] as T)
    }
  }
  await Promise.all(Array.from({length: Math.min(size, items.length)}, worker))
  return out
}

/** A notify.command program in dir that appends each digest (JSON on its stdin) as a line to the file it returns. */
export function digestRecorder(dir: string): {argv: string[]; recorded: string} {
  const program = join(dir, 'record.sh')
  writeFileSync(program, '#!/bin/sh\ncat >> "$1"\necho >> "$1"\n')
  chmodSync(program, 0o755)
  const recorded = join(dir, 'digests.jsonl')
  return {argv: [program, recorded], recorded}
}
