/**
 * `rcguard watch`: the pipeline's cycle (pipeline.ts), run whenever a log
 * grows instead of once a minute from cron.
 *
 * - **Following.** Each configured log's directory is watched with fs.watch
 *   (inotify), which only wakes the loop; what decides is a comparison of each
 *   log's identity and size (stat) with what the last cycle saw, made on every
 *   wake and at least every `pollMs`, so a log on a file system without
 *   inotify, a directory that cannot be watched, a rotation or a glob that
 *   matches a new file are all caught by the poll.
 * - **The lock only while working.** Each cycle takes the store's lock
 *   without waiting and gives it back; when another process holds it (a cron
 *   `hacks`, an admin's `block`, `flush`), the cycle is tried again shortly.
 *   So cron runs beside it find nothing new (or exit 75), and admin commands
 *   wait at most one cycle.
 * - **On time.** Besides growth, a cycle runs when the next block ends and at
 *   least every `idleMs` (what cron would do: firewall drift corrected; on a
 *   cluster node every 10 s, so the blocks of other nodes are held soon).
 * - **Never dying of a fault.** What fails a `hacks` run (a corrupt
 *   database, a firewall tool failing, a log gone) is reported and retried
 *   after `retryMs`; a bug (not an RcguardError) stops the process, for the
 *   service manager to restart it. The same problem is told once, then again
 *   only after `repeatMs`.
 * - **One digest a minute.** Blocks and expiries of several cycles are sent
 *   together, at most every `notifyEveryMs`, and what is pending is sent at
 *   the stop.
 * - **Stop.** When `signal` aborts (SIGTERM), a cycle under way finishes,
 *   pending notifications are sent, the watchers close and watch() resolves.
 *
 * Memory is that of one cycle: nothing is kept between cycles but the logs'
 * signatures, the pending digest, the told problems, each bounded, and the
 * database as the last cycle wrote it, which the next one reads instead of
 * the file as long as nobody else wrote the file (store/cache.ts).
 */
import {watch as fsWatch, type FSWatcher} from 'node:fs'
import {stat} from 'node:fs/promises'
import {dirname} from 'node:path'
import {BusyError, RcguardError} from '../errors.js'
import {CachingStore} from '../store/cache.js'
import type {BlockInfo, GuardContext} from './context.js'
import type {AccountAlert} from '../decisions/accounts.js'
import {cycle, expandLog, notifyChanges, type HacksResult} from './pipeline.js'
import {failedRun, MetricsRun} from '../metrics/metrics.js'

/** How often watch on a cluster node runs a cycle with nothing new in its logs: the cluster's blocks are polled. */
export const CLUSTER_IDLE_MS = 10_000

export interface WatchOptions {
  signal: AbortSignal
  /** After each cycle that worked (the command prints its blocks and expiries). */
  onCycle: (result: HacksResult) => void
  /** One line: a warning of a cycle, a failed cycle, a notification problem (already throttled). */
  onProblem: (message: string) => void
  /** For --verbose: what the loop does. */
  onNote?: (message: string) => void
  /** Look at the logs at least this often (ms). */
  pollMs?: number
  /** After a wake-up, wait this long for the writer to finish its lines (ms). */
  settleMs?: number
  /** Run a cycle at least this often even with no new line (ms). */
  idleMs?: number
  /** After a failed cycle, try again after this long (ms). */
  retryMs?: number
  /** When the lock is held by another process, try again after this long (ms). */
  busyRetryMs?: number
  /** At most one digest per this long (ms). */
  notifyEveryMs?: number
  /** The same problem is told again only after this long (ms). */
  repeatMs?: number
}

export interface WatchSummary {
  cycles: number
  failed: number
  /** How the logs were followed: 'inotify' when every directory could be watched. */
  mode: 'inotify' | 'polling'
}

/** At most this many distinct problems are remembered for throttling (the oldest are forgotten). */
const MAX_TOLD = 1_000

/** Tells each distinct line once per `repeatMs`. */
class Throttle {
  private readonly told = new Map<string, number>()
  constructor(private readonly repeatMs: number) {}

  shouldTell(line: string, now: number): boolean {
    const last = this.told.get(line)
    if (last !== undefined && now - last < this.repeatMs) return false
    this.told.delete(line)
    this.told.set(line, now)
    if (this.told.size > MAX_TOLD) {
      const oldest = this.told.keys().next().value
      if (oldest !== undefined) this.told.delete(oldest)
    }
    return true
  }
}

/** A cancellable pause that a log event or the stop ends early. */
class Waker {
  private resolve: (() => void) | null = null
  private woken = false

  wake(): void {
    this.woken = true
    this.resolve?.()
  }

  async pause(ms: number, signal: AbortSignal): Promise<void> {
    if (this.woken || signal.aborted) {
      this.woken = false
      return
    }
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        signal.removeEventListener('abort', done)
        this.resolve = null
        resolve()
      }
      const timer = setTimeout(done, Math.max(0, ms))
      signal.addEventListener('abort', done, {once: true})
      this.resolve = done
    })
    this.woken = false
  }
}

/** Each configured log's files (globs expanded) and what stat says of them: changes when a log grows, is rotated, replaced or removed. */
async function logSignature(ctx: GuardContext): Promise<{signature: string; dirs: Set<string>}> {
  const parts: string[] = []
  const dirs = new Set<string>()
  for (const instance of ctx.config.instances) {
    for (const log of instance.logs) {
      const {paths} = await expandLog(log.path)
      dirs.add(dirname(globBase(log.path)))
      for (const path of paths) {
        dirs.add(dirname(path))
        try {
          const s = await stat(path, {bigint: true})
          parts.push(`${path}\0${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}`)
        } catch {
          parts.push(`${path}\0missing`)
        }
      }
    }
  }
  return {signature: parts.join('\n'), dirs}
}

/** The part of a pattern before its first glob character (the directory it can be watched in). */
function globBase(pattern: string): string {
  const i = pattern.search(/[*?[\]{}]/)
  return i === -1 ? pattern : `${pattern.slice(0, i)}x`
}

export async function watch(given: GuardContext, options: WatchOptions): Promise<WatchSummary> {
  // What a cycle wrote is what the next one reads, unless someone else wrote since (cache.ts).
  const ctx: GuardContext = {...given, store: new CachingStore(given.store)}
  const pollMs = options.pollMs ?? 1_000
  const settleMs = options.settleMs ?? 50
  // A cluster node also looks at the cluster when its own logs are quiet: a block made on another node is held here within this.
  const idleMs = options.idleMs ?? (ctx.config.cluster !== undefined ? CLUSTER_IDLE_MS : 60_000)
  const retryMs = options.retryMs ?? 5_000
  const busyRetryMs = options.busyRetryMs ?? 200
  const notifyEveryMs = options.notifyEveryMs ?? 60_000
  const {signal} = options
  const throttle = new Throttle(options.repeatMs ?? 3_600_000)
  const problem = (line: string): void => {
    if (throttle.shouldTell(line, Date.now())) options.onProblem(line)
  }
  const waker = new Waker()
  const watchers = new Map<string, FSWatcher>()
  const unwatchable = new Set<string>()
  const summary: WatchSummary = {cycles: 0, failed: 0, mode: 'inotify'}

  /** Watches every directory a log lives in; a directory that cannot be watched is polled. */
  const follow = (dirs: Set<string>): void => {
    for (const dir of dirs) {
      if (watchers.has(dir)) continue
      try {
        const w = fsWatch(dir, {persistent: false}, () => waker.wake())
        w.on('error', () => {
          // The directory went away (or inotify gave up): poll until it can be watched again.
          w.close()
          watchers.delete(dir)
        })
        watchers.set(dir, w)
        unwatchable.delete(dir)
      } catch (err) {
        if (!unwatchable.has(dir)) {
          unwatchable.add(dir)
          options.onNote?.(`cannot watch ${dir} (${(err as NodeJS.ErrnoException).code ?? String(err)}): looking at its logs every ${pollMs} ms`)
        }
      }
    }
    for (const [dir, w] of watchers) {
      if (!dirs.has(dir)) {
        w.close()
        watchers.delete(dir)
      }
    }
    summary.mode = unwatchable.size === 0 ? 'inotify' : 'polling'
  }

  let seen: string | null = null
  /** When a cycle is due without growth: the next expiry, the idle timer, a retry. */
  let dueAt = 0
  const pending = {blocked: [] as BlockInfo[], released: [] as BlockInfo[], accounts: [] as AccountAlert[]}
  let lastNotify = -Infinity
  /** Notifications that failed since the last cycle: counted in the next cycle's metrics. */
  let notifyErrors = 0

  const sendPending = async (force: boolean): Promise<void> => {
    if (pending.blocked.length === 0 && pending.released.length === 0 && pending.accounts.length === 0) return
    if (!force && Date.now() - lastNotify < notifyEveryMs) return
    const changes = {blocked: pending.blocked.splice(0), released: pending.released.splice(0), accounts: pending.accounts.splice(0)}
    lastNotify = Date.now()
    try {
      const sent = await notifyChanges(ctx, changes)
      for (const w of sent.warnings) problem(w)
      notifyErrors += sent.warnings.length
      for (const n of sent.notified) options.onNote?.(n)
    } catch (err) {
      if (!(err instanceof RcguardError)) throw err
      problem(err.message)
    }
  }

  try {
    while (!signal.aborted) {
      const {signature, dirs} = await logSignature(ctx)
      follow(dirs)
      if (signature !== seen || Date.now() >= dueAt) {
        const outcome = await runCycle()
        if (outcome === 'busy') {
          await waker.pause(busyRetryMs, signal)
          continue
        }
        // What the cycle read is what it saw before it started: lines written meanwhile change the signature again.
        seen = signature
      }
      await sendPending(false)
      const untilNotify = pending.blocked.length + pending.released.length + pending.accounts.length > 0 ? lastNotify + notifyEveryMs - Date.now() : Infinity
      await waker.pause(Math.min(pollMs, dueAt - Date.now(), untilNotify), signal)
      // Let the writer finish the lines it is writing before they are read.
      if (!signal.aborted) await new Promise((r) => setTimeout(r, settleMs))
    }
    await sendPending(true)
  } finally {
    for (const w of watchers.values()) w.close()
  }
  return summary

  async function runCycle(): Promise<'ok' | 'busy' | 'failed'> {
    const started = Date.now()
    // Each cycle writes the metrics textfile (when configured), as a hacks run does.
    const run = MetricsRun.start(ctx.config, ctx.now, false)
    try {
      const result = await ctx.store.withLock({wait: false}, async () => {
        const r = await cycle(ctx, {dryRun: false, metrics: run})
        run?.error('notify', notifyErrors)
        const unwritten = (await run?.write(r.firewallError === undefined)) ?? null
        if (run !== null) notifyErrors = 0
        if (unwritten !== null) r.warnings.push(unwritten)
        return r
      })
      summary.cycles++
      for (const w of result.warnings) problem(w)
      options.onCycle(result)
      pending.blocked.push(...result.newlyBlocked)
      pending.released.push(...result.expired)
      pending.accounts.push(...result.accountAlerts)
      const untilExpiry = result.nextExpiry === null ? Infinity : Math.max(1_000, result.nextExpiry - ctx.now())
      if (result.firewallError !== undefined) {
        summary.failed++
        problem(result.firewallError.message)
        dueAt = Date.now() + retryMs
      } else {
        dueAt = started + Math.min(idleMs, untilExpiry)
      }
      return 'ok'
    } catch (err) {
      if (err instanceof BusyError) return 'busy'
      if (!(err instanceof RcguardError)) throw err
      run?.error('notify', notifyErrors)
      await failedRun(run, err)
      if (run !== null) notifyErrors = 0
      summary.failed++
      problem(`${err.message}; trying again in ${Math.round(retryMs / 1000)} s`)
      dueAt = Date.now() + retryMs
      return 'failed'
    }
  }
}
