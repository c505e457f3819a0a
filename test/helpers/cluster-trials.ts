/**
 * Plumbing for the cluster fault tests (test/cluster/trials.test.ts and
 * tcp.test.ts): cluster nodes that are only a configuration, a log and a
 * database (backend none, optionally run inside a network namespace), runs
 * of the real CLI that can be started together and raced against a fault, a
 * trigger that SIGKILLs Redis at the k-th command a run sends (MONITOR), a
 * scope for the servers and directories of one trial among many in one
 * test, and a redis-server listening on TCP inside a network namespace.
 *
 * The unix-socket Redis of every other cluster test is test/helpers/redis.ts.
 */
import {copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {execa, type ResultPromise} from 'execa'
import {Redis} from 'ioredis'
import {BIN, nowEnv, STACK, type CliResult} from './env.js'

/** The CLI under test: bin/run.js (the built dist/), or another build's entry named by RCGUARD_TEST_BIN. */
const CLI = process.env.RCGUARD_TEST_BIN ?? BIN

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/**
 * What `startRedis(t)` and friends need of a test context (`after`), for one trial of many: everything
 * registered is undone, last first, by close().
 */
export interface Scope {
  after: (fn: () => Promise<void> | void) => void
  close: () => Promise<void>
}

export function scope(): Scope {
  const fns: (() => Promise<void> | void)[] = []
  return {
    after: (fn) => {
      fns.push(fn)
    },
    close: async () => {
      while (fns.length > 0) {
        const fn = fns.pop() as () => Promise<void> | void
        await fn()
      }
    },
  }
}

export interface TrialNode {
  name: string
  dir: string
  config: string
  db: string
  log: string
  /** ip netns exec NAME for every run; undefined: the host's namespace. */
  ns: string | undefined
  /** Rewrites the configuration with this `cluster` section. */
  configure: (cluster: Record<string, unknown>) => void
}

/** A node with backend none: instance master reading one userlogins log, the first rule alone (`windows: []`). */
export function trialNode(t: {after: (fn: () => void) => void}, name: string, cluster: Record<string, unknown>, ns?: string): TrialNode {
  const dir = mkdtempSync(join(tmpdir(), `rcguard-trial-${name}-`))
  t.after(() => rmSync(dir, {recursive: true, force: true}))
  const log = join(dir, 'userlogins.log')
  writeFileSync(log, '')
  const db = join(dir, 'db', 'db.json')
  const config = join(dir, 'rcguard.yml')
  const node: TrialNode = {
    name,
    dir,
    config,
    db,
    log,
    ns,
    configure: (c) => {
      const doc = {database: db, whitelist: ['127.0.0.0/8', '::1'], instances: [{name: 'master', logs: [log], ports: [8443]}], firewall: {backend: 'none'}, windows: [], cluster: c}
      // 0600: it holds the Redis password.
      writeFileSync(config, `${JSON.stringify(doc, null, 2)}\n`, {mode: 0o600})
    },
  }
  node.configure(cluster)
  return node
}

export interface RunResult extends CliResult {
  ms: number
  timedOut: boolean
}

/** `rcguard ARGS --config <node's>` at at(min) (RCGUARD_NOW), in the node's namespace; never rejects; killed after timeoutMs. */
export async function runNode(node: TrialNode, args: string[], min: number, timeoutMs = 30_000): Promise<RunResult> {
  const argv = [CLI, ...args, '--config', node.config]
  const [cmd, cmdArgs] = node.ns === undefined ? ['node', argv] : ['ip', ['netns', 'exec', node.ns, 'node', ...argv]]
  const t0 = performance.now()
  const r = await execa(cmd, cmdArgs, {reject: false, input: '', timeout: timeoutMs, env: {NO_COLOR: '1', FORCE_COLOR: '0', COLUMNS: '160', ...nowEnv(min)}})
  return {stdout: String(r.stdout), stderr: String(r.stderr), exitCode: r.exitCode ?? -1, ms: performance.now() - t0, timedOut: r.timedOut}
}

/** The non-empty lines of stderr. */
export function errLines(r: CliResult): string[] {
  return r.stderr.split('\n').filter((l) => l.trim() !== '')
}

/** The one line a run prints when Redis cannot be reached (cluster-sync.ts), or a description of what is wrong with stderr. */
export function clusterWarning(r: CliResult): {line: string} | {problem: string} {
  const lines = errLines(r)
  if (STACK.test(`${r.stdout}\n${r.stderr}`)) return {problem: `a stack trace:\n${r.stderr}`}
  if (lines.length !== 1) return {problem: `expected exactly one warning line, got ${lines.length}:\n${r.stderr}`}
  const line = lines[0] as string
  if (!/^rcguard: warning: cluster: /.test(line) || !/redis/i.test(line)) return {problem: `the line is not the cluster's warning: ${line}`}
  return {line}
}

/** `blocked` in `rcguard list --json`: the addresses (and networks) in state blocked. */
export async function blockedOn(node: TrialNode, min: number): Promise<Set<string>> {
  const r = await runNode(node, ['list', '--json'], min)
  if (r.exitCode !== 0) throw new Error(`list --json on ${node.name} exited ${r.exitCode}: ${r.stderr}${r.stdout}`)
  const rows = JSON.parse(r.stdout) as {ip: string; state: string}[]
  return new Set(rows.filter((e) => e.state === 'blocked').map((e) => e.ip))
}

/**
 * Watches the commands Redis runs (MONITOR, over a connection of the test's own) and calls `fire` once, right
 * after Redis ran the k-th command of a run, counted from the CLIENT SETNAME rcguard-<node> every run sends
 * first: a fault at a chosen point of a run's exchange. Commands scripts run (`lua`) are not counted.
 */
export async function onCommand(target: {path: string} | {host: string; port: number}, password: string | undefined, node: string, k: number, fire: () => void): Promise<{fired: () => boolean; seen: () => string[]; close: () => void}> {
  const base = new Redis({...target, ...(password === undefined ? {} : {password}), lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false})
  base.on('error', () => undefined)
  await base.connect()
  const monitor = await base.monitor()
  monitor.on('error', () => undefined)
  const seen: string[] = []
  let fired = false
  // From the run's first command, CLIENT SETNAME rcguard-<node>. (On a unix socket MONITOR names every client
  // alike, so the commands counted are every client's: the test runs nothing else meanwhile.)
  let started = false
  monitor.on('monitor', (_time: string, args: string[], src: string) => {
    if (fired || src === 'lua') return
    if (!started) {
      if (args[0]?.toLowerCase() === 'client' && args[1]?.toLowerCase() === 'setname' && args[2] === `rcguard-${node}`) started = true
      else return
    }
    seen.push(args[0] ?? '')
    if (seen.length >= k) {
      fired = true
      fire()
    }
  })
  return {
    fired: () => fired,
    seen: () => [...seen],
    close: () => {
      monitor.disconnect()
      base.disconnect()
    },
  }
}

export interface TcpRedis {
  /** The namespace it runs in. */
  ns: string
  port: number
  password: string
  dir: string
  /** redis-cli against the first bound address (the password through REDISCLI_AUTH). */
  cli: (args: string[]) => Promise<CliResult>
  stop: () => Promise<void>
}

/**
 * A redis-server in namespace `ns` on TCP: `--port PORT --bind ADDRESSES`, with --requirepass, no
 * persistence; killed (and its directory removed) by the scope.
 */
export async function tcpRedis(t: {after: (fn: () => Promise<void> | void) => void}, ns: string, bind: string[], password: string, port = 6379): Promise<TcpRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'rcguard-tcp-redis-'))
  const logfile = join(dir, 'redis.log')
  const args = ['netns', 'exec', ns, 'redis-server', '--port', String(port), '--bind', ...bind, '--requirepass', password, '--dir', dir, '--save', '', '--appendonly', 'no', '--logfile', logfile, '--unixsocket', '']
  let proc: ResultPromise | undefined = execa('ip', args, {reject: false, stdin: 'ignore'})
  const p = proc
  void p.finally(() => {
    if (proc === p) proc = undefined
  })
  const cli = async (a: string[]): Promise<CliResult> => {
    const r = await execa('ip', ['netns', 'exec', ns, 'redis-cli', '-h', bind[0] as string, '-p', String(port), ...a], {reject: false, input: '', timeout: 10_000, env: {REDISCLI_AUTH: password}})
    return {stdout: String(r.stdout), stderr: String(r.stderr), exitCode: r.exitCode ?? -1}
  }
  const stop = async (): Promise<void> => {
    const q = proc
    if (q === undefined) return
    q.kill('SIGKILL')
    await q
  }
  t.after(async () => {
    await stop()
    rmSync(dir, {recursive: true, force: true})
  })
  for (let i = 0; i < 200; i++) {
    if (proc === undefined) throw new Error(`redis-server in ${ns} exited at start:\n${existsSync(logfile) ? readFileSync(logfile, 'utf8') : ''}`)
    if ((await cli(['ping'])).stdout.trim() === 'PONG') return {ns, port, password, dir, cli, stop}
    await sleep(25)
  }
  throw new Error(`redis-server in ${ns} did not answer within 5 s:\n${existsSync(logfile) ? readFileSync(logfile, 'utf8') : ''}`)
}

/** Copies a file when it exists (a Redis snapshot kept across a SIGKILL). */
export function copyIfThere(from: string, to: string): boolean {
  if (!existsSync(from)) return false
  copyFileSync(from, to)
  return true
}
