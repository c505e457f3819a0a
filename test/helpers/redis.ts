/**
 * A real redis-server for one test (issue 15's cluster mode): listening on a
 * unix socket (with `--port 0`: no TCP, unless asked), in a 0700 temp directory, with no
 * persistence of its own (`--save '' --appendonly no`), optionally with
 * `--requirepass`. A unix socket in a temp dir is reachable from every
 * network namespace the test makes (they share the filesystem), so one
 * server serves every node of a cluster test.
 *
 * The server is always killed and its directory removed after the test.
 * Without redis-server (or redis-cli) the test is skipped with the reason;
 * under CI=true that skip is a failure, as requireRoot's is.
 */
import {spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import type {TestContext} from 'node:test'
import {execa, type ResultPromise} from 'execa'
import type {CliResult} from './env.js'

function has(program: string): boolean {
  const r = spawnSync(program, ['--version'], {stdio: 'ignore'})
  return r.error === undefined && r.status === 0
}

/** Whether redis-server and redis-cli can be run. */
export function redisAvailable(): boolean {
  return has('redis-server') && has('redis-cli')
}

/**
 * Cluster tests need a real Redis. Without one they skip with the reason;
 * under CI=true a skip is a failure, so CI can never pass without running them.
 */
export function requireRedis(t: TestContext): boolean {
  if (redisAvailable()) return true
  const reason = 'needs redis-server and redis-cli (apt-get install redis-server) for the cluster mode'
  if (process.env.CI === 'true') {
    throw new Error(`CI=true and ${reason}: cluster tests must run in CI`)
  }
  t.skip(reason)
  return false
}

export interface RedisServer {
  /** The server's directory (0700): its socket, log and, after stop(), dump.rdb. */
  dir: string
  /** The unix socket's absolute path. */
  socket: string
  /** The URL rcguard's `cluster.redis` takes: `unix:///…/redis.sock`, with `?password=…` when there is one. */
  url: string
  password: string | undefined
  /** The running server's process id, undefined while it is down. */
  pid: () => number | undefined
  /** redis-cli against the socket (authenticated through REDISCLI_AUTH, never on the command line), killed after timeoutMs (10 s). */
  cli: (args: string[], timeoutMs?: number) => Promise<CliResult>
  /** Starts it again on the same socket: with the data stop() saved, empty after restartEmpty() or kill(). */
  start: () => Promise<void>
  /** A clean shutdown that keeps the data for the next start() (SHUTDOWN SAVE); the socket file goes. */
  stop: () => Promise<void>
  /** Shut down without saving, every saved byte removed, started again: all data lost. */
  restartEmpty: () => Promise<void>
  /** SIGKILL: a crash. Nothing is saved (the next start() is empty) and the socket file is left behind. */
  kill: () => Promise<void>
  /** SIGSTOP: the server hangs (connections are accepted by the kernel, never answered) until resume(). */
  pause: () => void
  resume: () => void
  /** Every key of database `db` (0), sorted. */
  keys: (db?: number) => Promise<string[]>
  /** Every key's value as text (strings, hashes, sets, sorted sets, lists, streams), for reports and searches. */
  dump: (db?: number) => Promise<Record<string, string>>
  /** With the `tcp` option: the 127.0.0.1 port it also listens on (in the host's network namespace only). */
  port: number | undefined
}

export interface RedisOptions {
  /** Started with --requirepass. */
  password?: string
  /** Also listen on a free TCP port of 127.0.0.1 (reachable from the host's namespace, not from the tests' namespaces). */
  tcp?: boolean
}

/** A TCP port of 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const {createServer} = await import('node:net')
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address()
      srv.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

const started = new Set<ResultPromise>()

/** Starts a redis-server for this test; it is killed and its directory removed after the test. */
export async function startRedis(t: {after: (fn: () => Promise<void>) => void}, options: RedisOptions = {}): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'rcguard-redis-'))
  const socket = join(dir, 'redis.sock')
  const logfile = join(dir, 'redis.log')
  const dump = join(dir, 'dump.rdb')
  const password = options.password
  const url = password === undefined ? `unix://${socket}` : `unix://${socket}?password=${encodeURIComponent(password)}`
  const env = password === undefined ? {} : {REDISCLI_AUTH: password}
  const port = options.tcp === true ? await freePort() : undefined
  let proc: ResultPromise | undefined
  let paused = false

  const cli = async (args: string[], timeoutMs = 10_000): Promise<CliResult> => {
    const r = await execa('redis-cli', ['-s', socket, ...args], {reject: false, env, input: '', timeout: timeoutMs})
    return {stdout: String(r.stdout), stderr: String(r.stderr), exitCode: r.exitCode ?? -1}
  }

  const log = (): string => (existsSync(logfile) ? readFileSync(logfile, 'utf8').split('\n').slice(-15).join('\n') : '(no log)')

  const start = async (): Promise<void> => {
    if (proc !== undefined) throw new Error('redis-server is already running')
    const args = ['--port', String(port ?? 0), '--bind', '127.0.0.1', '--unixsocket', socket, '--unixsocketperm', '700', '--dir', dir, '--save', '', '--appendonly', 'no', '--logfile', logfile]
    if (password !== undefined) args.push('--requirepass', password)
    const p = execa('redis-server', args, {reject: false, stdin: 'ignore'})
    proc = p
    started.add(p)
    void p.finally(() => {
      started.delete(p)
      if (proc === p) proc = undefined
    })
    for (let i = 0; i < 200; i++) {
      if (proc !== p) throw new Error(`redis-server exited at start:\n${log()}`)
      if (existsSync(socket)) {
        const r = await cli(['ping'])
        if (r.stdout.trim() === 'PONG') return
      }
      await new Promise((r) => setTimeout(r, 25))
    }
    throw new Error(`redis-server did not answer PING on ${socket} within 5 s:\n${log()}`)
  }

  const exited = async (p: ResultPromise): Promise<void> => {
    const timer = setTimeout(() => p.kill('SIGKILL'), 5_000)
    await p
    clearTimeout(timer)
  }

  const shutdown = async (mode: 'SAVE' | 'NOSAVE'): Promise<void> => {
    const p = proc
    if (p === undefined) throw new Error('redis-server is not running')
    if (paused) resume()
    await cli(['shutdown', mode])
    await exited(p)
  }

  const kill = async (): Promise<void> => {
    const p = proc
    if (p === undefined) throw new Error('redis-server is not running')
    p.kill('SIGKILL')
    await exited(p)
    paused = false
    rmSync(dump, {force: true})
  }

  const pause = (): void => {
    if (proc === undefined) throw new Error('redis-server is not running')
    proc.kill('SIGSTOP')
    paused = true
  }
  const resume = (): void => {
    proc?.kill('SIGCONT')
    paused = false
  }

  const keys = async (db = 0): Promise<string[]> => {
    const r = await cli(['-n', String(db), '--scan'])
    if (r.exitCode !== 0) throw new Error(`redis-cli --scan: ${r.stderr}${r.stdout}`)
    return r.stdout
      .split('\n')
      .filter((k) => k !== '')
      .sort()
  }

  const dumpAll = async (db = 0): Promise<Record<string, string>> => {
    const out: Record<string, string> = {}
    for (const key of await keys(db)) {
      const type = (await cli(['-n', String(db), 'type', key])).stdout.trim()
      const read: Record<string, string[]> = {
        string: ['get', key],
        hash: ['hgetall', key],
        set: ['smembers', key],
        zset: ['zrange', key, '0', '-1', 'withscores'],
        list: ['lrange', key, '0', '-1'],
        stream: ['xrange', key, '-', '+'],
      }
      const args = read[type]
      out[key] = args === undefined ? `(${type})` : `(${type}) ${(await cli(['-n', String(db), ...args])).stdout}`
    }
    return out
  }

  t.after(async () => {
    const p = proc
    if (p !== undefined) {
      p.kill('SIGCONT')
      p.kill('SIGKILL')
      await p
    }
    rmSync(dir, {recursive: true, force: true})
  })

  await start()
  return {
    dir,
    socket,
    url,
    password,
    pid: () => proc?.pid,
    cli,
    start,
    stop: () => shutdown('SAVE'),
    restartEmpty: async () => {
      await shutdown('NOSAVE')
      rmSync(dump, {force: true})
      await start()
    },
    kill,
    port,
    pause,
    resume,
    keys,
    dump: dumpAll,
  }
}

// A test process that dies without its after hooks still takes its servers with it.
process.on('exit', () => {
  for (const p of started) p.kill('SIGKILL')
})
