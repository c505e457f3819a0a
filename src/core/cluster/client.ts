/**
 * rcguard's connection to the cluster's Redis (ioredis): one per run, no
 * reconnection loop and no offline queue (a Redis that does not answer within
 * the timeout is unreachable for this run, and the run goes on locally), the
 * scripts of scripts.ts (EVALSHA, falling back to EVAL after a restart), and
 * messages that name Redis without its password.
 */
import type {Redis as RedisClient} from 'ioredis'
import {errorMessage} from '../errors.js'
import {parseRedisUrl, shownTarget, type ClusterConfig, type RedisTarget} from './config.js'
import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import {isIP} from 'node:net'
import {CLAIM, PUSH, READ, RECENT, REPORT, SCORES, SUCCESS, UNBLOCK, WHITELIST} from './scripts.js'

/** The hash an account's keys carry (16 hex digits of SHA-256 of its name). */
function accountId(account: string): string {
  return createHash('sha256').update(account).digest('hex').slice(0, 16)
}

/** Redis could not be reached or refused a command: the run goes on locally. */
export class ClusterUnreachable extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ClusterUnreachable'
  }
}

/** The keys of scripts.ts, under the prefix. */
export class Keys {
  constructor(private readonly prefix: string) {}
  failures(instance: string, key: string): string {
    return `${this.prefix}f:${instance}:${key}`
  }
  network(instance: string, network: string): string {
    return `${this.prefix}n:${instance}:${network}`
  }
  /** An account's keys name it by a hash: a user name is attacker text, never part of a key. */
  account(instance: string, account: string): string {
    return `${this.prefix}a:${instance}:${accountId(account)}`
  }
  report(instance: string, account: string): string {
    return `${this.prefix}r:${instance}:${accountId(account)}`
  }
  successes(instance: string): string {
    return `${this.prefix}s:${instance}`
  }
  blocks(instance: string): string {
    return `${this.prefix}b:${instance}`
  }
  tombstones(instance: string): string {
    return `${this.prefix}u:${instance}`
  }
  whitelist(): string {
    return `${this.prefix}w`
  }
  whitelistRemoved(): string {
    return `${this.prefix}wu`
  }
  nodes(): string {
    return `${this.prefix}nodes`
  }
  flushed(): string {
    return `${this.prefix}flushed`
  }
  /**
   * The keys of a flush --cluster: the sets of each instance as SCAN patterns (kind and instance spelt out,
   * so that another cluster whose prefix starts with this one's is never matched), and the single keys.
   */
  flushable(instances: readonly string[], all: boolean): {patterns: string[]; single: string[]} {
    const p = this.prefix.replace(/[*?[\]\\]/g, '\\$&')
    const patterns = instances.flatMap((i) => ['f', 'n', 'a', 'r'].map((kind) => `${p}${kind}:${i.replace(/[*?[\]\\]/g, '\\$&')}:*`))
    const single = [...instances.flatMap((i) => [this.blocks(i), this.tombstones(i), this.successes(i)]), this.nodes(), ...(all ? [this.whitelist(), this.whitelistRemoved()] : [])]
    return {patterns, single}
  }
}

type Scripted = RedisClient & {
  rcPush(numKeys: number, ...args: (string | number)[]): Promise<string[][]>
  rcReport(numKeys: number, ...args: (string | number)[]): Promise<[number, string]>
  rcSuccess(numKeys: number, ...args: (string | number)[]): Promise<number>
  rcScores(numKeys: number, ...args: (string | number)[]): Promise<(string | null)[]>
  rcRecent(numKeys: number, ...args: (string | number)[]): Promise<string[][]>
  rcClaim(numKeys: number, ...args: (string | number)[]): Promise<string>
  rcUnblock(numKeys: number, ...args: (string | number)[]): Promise<number>
  rcRead(numKeys: number, ...args: (string | number)[]): Promise<[number, string[][]]>
  rcWhitelist(numKeys: number, ...args: (string | number)[]): Promise<number>
}

/** A message from ioredis or the network, with the password taken out wherever it might appear. */
function clean(text: string, target: RedisTarget): string {
  let out = text
  for (const secret of [target.password, target.password === undefined ? undefined : encodeURIComponent(target.password)]) {
    if (secret !== undefined && secret.length > 0) out = out.split(secret).join('***')
  }
  return out.replace(/\s+/g, ' ').slice(0, 300)
}

export class ClusterClient {
  readonly keys: Keys
  readonly shown: string
  private constructor(
    private readonly redis: Scripted,
    private readonly target: RedisTarget,
    readonly config: ClusterConfig,
  ) {
    this.keys = new Keys(config.prefix)
    this.shown = shownTarget(target)
  }

  /** Connects (within timeoutSeconds) or throws ClusterUnreachable. */
  static async connect(config: ClusterConfig): Promise<ClusterClient> {
    const target = parseRedisUrl(config.redis)
    if (typeof target === 'string') throw new ClusterUnreachable(`cluster.redis: ${target}`)
    // ioredis is CommonJS: bundled, its class is the default export's (or the module's own) Redis.
    const mod = (await import('ioredis')) as unknown as {Redis?: typeof RedisClient; default?: typeof RedisClient & {Redis?: typeof RedisClient}}
    const Redis = mod.default?.Redis ?? mod.Redis ?? (mod.default as typeof RedisClient)
    const ms = config.timeoutSeconds * 1000
    let ca: Buffer | undefined
    if (target.tls && config.ca !== undefined) {
      try {
        ca = await readFile(config.ca)
      } catch (err) {
        throw new ClusterUnreachable(`cluster.ca ${config.ca} cannot be read: ${errorMessage(err)}`)
      }
    }
    const redis = new Redis({
      ...(target.path !== undefined ? {path: target.path} : {host: target.host, port: target.port}),
      // An address is checked against the certificate's IP names; a name is also sent as SNI (never an address: RFC 6066).
      ...(target.tls ? {tls: {...(target.host !== undefined && isIP(target.host) === 0 ? {servername: target.host} : {}), ...(ca === undefined ? {} : {ca})}} : {}),
      db: target.db,
      ...(target.username === undefined ? {} : {username: target.username}),
      ...(target.password === undefined ? {} : {password: target.password}),
      lazyConnect: true,
      // A failed connection's disconnect() would otherwise keep the process 2 s for a close event already past.
      disconnectTimeout: 50,
      connectTimeout: ms,
      commandTimeout: ms,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
      reconnectOnError: () => false,
      connectionName: `rcguard-${config.node}`,
    }) as Scripted
    // ioredis reports connection errors as events (the cause: ENOENT, ECONNREFUSED, WRONGPASS), then rejects with
    // "Connection is closed": the event's error is the one to tell, once, never a crash.
    let cause: unknown = null
    redis.on('error', (err: unknown) => {
      cause ??= err
    })
    const define = (name: string, lua: string): void => redis.defineCommand(name, {lua})
    define('rcPush', PUSH)
    define('rcReport', REPORT)
    define('rcSuccess', SUCCESS)
    define('rcScores', SCORES)
    define('rcRecent', RECENT)
    define('rcClaim', CLAIM)
    define('rcUnblock', UNBLOCK)
    define('rcRead', READ)
    define('rcWhitelist', WHITELIST)
    const client = new ClusterClient(redis, target, config)
    try {
      await redis.connect()
    } catch (err) {
      if (redis.status !== 'end') redis.disconnect()
      throw client.unreachable(cause ?? err)
    }
    return client
  }

  /** The one line that says Redis failed, for this run's warning. */
  unreachable(err: unknown): ClusterUnreachable {
    if (err instanceof ClusterUnreachable) return err
    return new ClusterUnreachable(`Redis at ${this.shown} (cluster node ${this.config.node}): ${clean(errorMessage(err), this.target).replace(/\.$/, '')}`)
  }

  /** Runs fn on the connection; any Redis or network error becomes ClusterUnreachable. */
  async call<T>(fn: (r: Scripted) => Promise<T>): Promise<T> {
    try {
      return await fn(this.redis)
    } catch (err) {
      throw this.unreachable(err)
    }
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit()
    } catch {
      this.redis.disconnect()
    }
  }

  /**
   * Redis's clock minus this host's (`now`), in ms: every time written to Redis is moved by it, so the nodes'
   * clocks need not agree. With RCGUARD_NOW (a fixed time: the test suite's), that time stands for every
   * clock: 0.
   */
  async clockOffset(now: number): Promise<number> {
    if (process.env.RCGUARD_NOW !== undefined && process.env.RCGUARD_NOW !== '') return 0
    // Measured once per connection (one run): the successes read before deciding and the exchange after share it.
    if (this.offset === null) {
      const t = await this.call((r) => r.time())
      this.offset = Number(t[0]) * 1000 + Math.floor(Number(t[1]) / 1000) - Date.now()
    }
    return this.offset + (Date.now() - now)
  }

  private offset: number | null = null

  /** Redis's maxmemory-policy, or null when it cannot be read (CONFIG disabled, as on managed services). */
  async memoryPolicy(): Promise<string | null> {
    try {
      const r = (await this.redis.config('GET', 'maxmemory-policy')) as unknown
      if (Array.isArray(r) && typeof r[1] === 'string') return r[1]
      return null
    } catch {
      return null
    }
  }
}

/** A maxmemory-policy under which Redis may evict rcguard's keys: the warning, or null. */
export function evictionProblem(policy: string | null, shown: string): string | null {
  if (policy === null || policy === 'noeviction') return null
  const which = policy.startsWith('volatile') ? 'keys with a time to live, as rcguard\'s failures are' : 'any key, rcguard\'s blocks too'
  return `cluster: Redis at ${shown} has maxmemory-policy ${policy}: when it is full it evicts ${which}, and blocks or counts vanish silently; set maxmemory-policy noeviction, or give rcguard a Redis of its own`
}

/**
 * One connection for a run's exchanges with Redis (the successes read before deciding, the exchange after),
 * made at the first that needs it: a Redis that could not be reached is not tried twice in one run (one
 * warning), and the caller closes it once.
 */
export class ClusterSession {
  private pending: Promise<ClusterClient> | null = null
  constructor(private readonly config: ClusterConfig) {}

  client(): Promise<ClusterClient> {
    this.pending ??= ClusterClient.connect(this.config)
    return this.pending
  }

  async close(): Promise<void> {
    const p = this.pending
    this.pending = null
    if (p === null) return
    try {
      await (await p).close()
    } catch {
      // never connected: nothing to close
    }
  }
}
