/**
 * The pipeline that scan, hacks and watch share: read the new log lines,
 * parse them into events, decide, keep the store, and bring the firewall in
 * line with it. Data flows one way: log reader → parser → decisions → store →
 * firewall (desired.ts) → notify.
 */
import type {Config, LogConfig} from '../config/config.js'
import {Decider, SKEW_MS, expireBlocks, isBlockActive, type Decision, type SourcedEvent} from '../decisions/decide.js'
import type {AccountAlert} from '../decisions/accounts.js'
import {BesideRules} from '../decisions/beside.js'
import {windowsOf} from '../decisions/windows.js'
import {keepSmall} from '../store/keep-small.js'
import {BusyError, ExitCode, FirewallError, RcguardError, UsageError} from '../errors.js'
import {afterSave} from '../firewall/backend.js'
import type {ApplyResult, DesiredState} from '../firewall/index.js'
import {hostname} from 'node:os'
import {performance} from 'node:perf_hooks'
import {basename} from 'node:path'
import {isRotatedName, readNewLines, readTail, unreadable} from '../logreader/reader.js'
import {buildDigest, notify} from '../notify/index.js'
import {EntryParser, LineParser, type ParseOptions, type SourcedLine} from '../parser/parse.js'
import {proxyList} from '../parser/proxy.js'
import {DoubtTally} from '../report/doubts.js'
import {emptyData, type StoreData, type StoredPosition} from '../store/schema.js'
import {type GuardContext, type BlockInfo, whitelistOf, keyOf, readData, readDataTracked, blockInfo} from './context.js'
import {desiredState, syncFirewall} from './desired.js'
import {ClusterFeed, clusterSuccesses, syncCluster} from './cluster-sync.js'
import {ClusterSession} from '../cluster/client.js'
import {failedRun, MetricsRun, newTally, tallyBlock, tallyDecision, tallyError, tallyLines, type RunTally} from '../metrics/metrics.js'

export interface FileReport {
  file: string
  bytes: number
  lines: number
  events: number
  notes: string[]
}


export interface ScanResult {
  files: FileReport[]
  /** Every parsed event (only when collected). */
  events: SourcedEvent[]
  /** Every decision when collected; otherwise only the blocks. */
  decisions: Decision[]
  /** Counts, always kept. */
  /** Failed-login lines read; of them counted against an address; twin lines of an attempt already counted (the other log's line). */
  stats: {failures: number; counted: number; duplicates: number; addresses: number}
  newlyBlocked: BlockInfo[]
  /** Accounts reported under attack by this read (accountAlert), in the order their windows completed. */
  accountAlerts: AccountAlert[]
  warnings: string[]
  /** What this read adds to the metrics counters (core/metrics). */
  tally: RunTally
  /** In a cluster: the failures and successes this read counted, for Redis (cluster-sync.ts). */
  feed?: ClusterFeed
}

export interface HacksResult extends ScanResult {
  expired: BlockInfo[]
  /** When the next block in force ends (null: none ends), so a long-running watch wakes for it. */
  nextExpiry: number | null
  /** One line per notification sent. */
  notified?: string[]
  /** The firewall could not be brought in line (the command reports the blocks, then fails with it). */
  firewallError?: FirewallError
  firewall: ApplyResult & {backend: string; rendered?: string}
  enabled: boolean
  /** A cluster node's exchange with Redis this run (absent: not in a cluster, or a dry run). */
  cluster?: {reached: boolean; pushed: number; adopted: (BlockInfo & {node: string})[]; lifted: BlockInfo[]}
}


const GLOB_CHARS = /[*?[\]{}]/

/** The files a configured log names: itself, or the live files its glob pattern matches. */
export async function expandLog(pattern: string): Promise<{paths: string[]; warning?: string}> {
  if (!GLOB_CHARS.test(pattern)) return {paths: [pattern]}
  const {glob} = await import('tinyglobby')
  const found = (await glob(pattern, {absolute: true, onlyFiles: true, expandDirectories: false}))
    .filter((p) => !isRotatedName(basename(p)))
    .sort()
  if (found.length === 0) return {paths: [], warning: `no file matches the log pattern ${pattern}: check the instance's logs in the configuration`}
  return {paths: found}
}

export interface ScanOptions {
  /**
   * Replay: count every line of the file's timeline. Otherwise, on the first
   * read of a log, lines older than the window before its newest line are
   * not counted (a fresh install does not block on old history).
   */
  replay?: boolean
  /** Keep every event and decision in the result (for --verbose and tests). */
  collect?: boolean
  /** Called for every event as it is decided (streamed output). */
  onEvent?: (event: SourcedEvent, decision: Decision) => void
  /** Called once the logs are about to be read (after the checks that can refuse the request). */
  before?: () => void
  /** Reading progress of each log (done = -1: that log is finished). */
  progress?: (file: string, done: number, total: number) => void
  /** Tell every warning about doubtful lines, not at most one per cause and hour (dry runs). */
  repeatWarnings?: boolean
  /** A cluster node: the other nodes' successful logins, `<instance> <key>` → time (cluster-sync.ts clusterSuccesses). */
  remoteSuccess?: Map<string, number>
}

/**
 * What a log's last lines tell before its first read: the newest time of a
 * login entry (where counting starts), and the parser state learnt from them
 * (the envelope, whether the log writes session prefixes). A time later than
 * now is client text (a forged piece), never a cut-off.
 */
async function probeTail(file: string, parser: LineParser, now: number): Promise<number | null> {
  let newest: number | null = null
  const entries = new EntryParser(parser)
  const take = ({event}: SourcedLine): void => {
    if (event.doubt !== undefined || event.time > now + SKEW_MS) return
    if (newest === null || event.time > newest) newest = event.time
  }
  for (const line of await readTail(file)) entries.feed(line, 0, file, take)
  entries.finish(take)
  return newest
}

/**
 * Reads every configured log from its saved position, one line at a time,
 * and applies each event to `data` as it is parsed: memory holds the
 * addresses seen, not the lines.
 */
async function scanInto(ctx: GuardContext, data: StoreData, options: ScanOptions = {}): Promise<ScanResult> {
  const now = ctx.now()
  const {config} = ctx
  const result: ScanResult = {
    files: [],
    events: [],
    decisions: [],
    newlyBlocked: [],
    accountAlerts: [],
    warnings: [],
    stats: {failures: 0, counted: 0, duplicates: 0, addresses: 0},
    tally: newTally(),
  }
  const positions: Record<string, StoredPosition> = {}
  const proxies = proxyList(config.trustedProxies)
  const before = new Set(data.entries.filter((e) => isBlockActive(e, now)).map((e) => `${e.instance} ${e.ip}`))
  // Per entry blocked by a window in this read: the failures that caused the block (block lines say these, not the entry's lifetime count).
  const caused = new Map<string, number>()
  const never = whitelistOf(config, data)
  const remote = options.remoteSuccess
  const decider = new Decider(
    data,
    {...config, ipv6Prefix: config.firewall.ipv6Prefix, ...(remote === undefined || remote.size === 0 ? {} : {remoteSuccess: (instance: string, key: string) => remote.get(`${instance} ${key}`)})},
    never,
    now,
    options.collect === true,
  )
  const beside = new BesideRules(config, data, never, decider)
  // A cluster node keeps what it counts for Redis; a success matters there only to windows it relaxes.
  const feed = config.cluster === undefined ? undefined : new ClusterFeed(config.cluster.node, config.accountAlert !== undefined)
  const relaxing = feed !== undefined && (config.windows.length > 0 || config.resetOnSuccess)
  const keyFor = keyOf(config, never)
  if (feed !== undefined) result.feed = feed
  // A first read counts what the longest window (networkBlock's and accountAlert's included) can still hold.
  const periodMs = Math.max(windowsOf(config).longestMs, (config.networkBlock?.periodMinutes ?? 0) * 60_000, (config.accountAlert?.periodMinutes ?? 0) * 60_000)
  options.before?.()
  for (const instance of config.instances) {
    const parseOptions: ParseOptions = {countErrors: new Set(config.countErrors), trustedProxies: proxies, loginLc: instance.loginLc, userNameCut: instance.userNameCut}
    for (const log of instance.logs) {
      const {paths, warning} = await expandLog(log.path)
      if (warning !== undefined) {
        result.warnings.push(warning)
        tallyError(result.tally, 'log')
      }
      for (const file of paths) {
        const saved = data.positions[file]
        let cutoff = -Infinity
        const firstRead = saved === undefined && options.replay !== true
        let state = {...saved?.parser}
        if (saved === undefined) {
          // Learn the log's shape (session prefixes above all) from its last lines before reading any.
          const probeState = {}
          const newest = await probeTail(file, new LineParser(log, parseOptions, probeState, now), now)
          if (firstRead && newest !== null) cutoff = newest - periodMs
          state = {...probeState}
        }
        const parser = new LineParser(log, parseOptions, state, now)
        const doubts = new DoubtTally()
        let loginLines = 0
        // Nothing asks to see every line: history before the cutoff is passed over unparsed.
        if (options.collect !== true && options.onEvent === undefined) parser.skipBefore = cutoff
        let events = 0
        let old = 0
        const handle = ({event, lineNo, text, file: from, offset}: SourcedLine): void => {
          events++
          loginLines++
          const sourced = event as SourcedEvent
          sourced.instance = instance.name
          sourced.file = from
          sourced.lineNo = lineNo
          if (sourced.counted && (sourced.time < cutoff || (firstRead && sourced.timed === false))) {
            // A line without a time of its own (stdout) on a first read could be any age: history.
            sourced.counted = false
            sourced.reason = 'older than the window on the first read of this log'
            old++
          }
          doubts.add(sourced)
          const decision = decider.apply(sourced)
          // The rules beside the windows (networkBlock, accountAlert): the blocks this failure set off, the account it completed.
          const {blocks: extra, alert} = beside.feed(sourced, decision)
          if (alert !== null) result.accountAlerts.push(alert)
          if (feed !== undefined) {
            feed.add(sourced, decision, offset, text)
            if (relaxing && sourced.outcome === 'success' && sourced.ip !== null && sourced.doubt === undefined) feed.success(sourced, keyFor(sourced.ip))
          }
          tallyDecision(result.tally, decision)
          tallyBlock(result.tally, decision)
          for (const d of extra) tallyBlock(result.tally, d)
          if (sourced.outcome === 'failure') {
            result.stats.failures++
            // Counted: against an address (a twin line of an attempt already counted is not, nor one never blocked).
            if (decision.action === 'counted' || decision.action === 'blocked' || decision.action === 'already-blocked') result.stats.counted++
            else if (decision.action === 'duplicate') result.stats.duplicates++
          }
          if (decision.action === 'blocked' && decision.failures !== undefined && decision.key !== undefined) {
            caused.set(`${sourced.instance} ${decision.key}`, decision.failures)
          }
          if (options.onEvent !== undefined) options.onEvent(sourced, decision)
          if (options.collect === true) {
            if (ctx.keepText === true) sourced.text = text
            result.events.push(sourced)
            result.decisions.push(decision)
          } else if (decision.action === 'blocked') {
            result.decisions.push(decision)
          }
          if (extra.length > 0) result.decisions.push(...extra)
        }
        const entries = new EntryParser(parser)
        let current = file
        // Nothing asks to see every line of a first read: start near the window instead of at byte 0.
        const seeker = new LineParser(log, parseOptions, {}, now)
        const seek =
          parser.skipBefore > -Infinity ? {target: parser.skipBefore - SKEW_MS, timeOf: (line: string) => seeker.timeOf(line)} : undefined
        const report = await readNewLines(
          file,
          saved,
          // Lines the parser would pass over unread are not decoded (nothing is open then: a new file can wait).
          entries.skipping((text, lineNo, from, offset) => {
            if (from !== current) {
              entries.finish(handle)
              current = from
            }
            entries.feed(text, lineNo, from, handle, offset)
          }),
          {
            seek,
            progress: options.progress === undefined ? undefined : (done, total) => options.progress?.(file, done, total),
            // A replay reads a finished file: nothing is still being written there.
            hold: options.replay === true ? undefined : (live) => entries.hold(live, now),
          },
        )
        options.progress?.(file, -1, -1)
        entries.finish(handle)
        if (loginLines > 0 && !parser.prefixRequired() && log.sessionPrefix !== 'optional') doubts.bump('unprefixed', loginLines)
        const envelope = log.format === 'auto' ? parser.state.envelope : log.format
        if (loginLines > 0 && (envelope === 'syslog' || envelope === 'rfc3339')) doubts.bump('syslog-text', loginLines)
        const warned = {...saved?.warned}
        result.warnings.push(...doubts.warnings(file, now, options.repeatWarnings === true ? undefined : warned))
        const notes = [...report.notes]
        old += parser.skipped
        if (old > 0) notes.push(`first read: ${old} failed login(s) older than ${periodMs / 60_000} min before the log's newest line not counted`)
        result.warnings.push(...report.warnings)
        // A log that could not be read (missing, unreadable, not a file, lines too long): an error of the log stage.
        tallyError(result.tally, 'log', report.warnings.length)
        tallyLines(result.tally, instance.name, report.lines)
        if (report.position !== undefined) positions[file] = {...report.position, parser: parser.state, warned}
        result.files.push({file, bytes: report.bytes, lines: report.lines, events, notes})
      }
    }
  }
  decider.flush()
  data.ledger = decider.ledger.save()
  // Without networkBlock or accountAlert, nothing is kept of them (switching one off forgets its records).
  result.warnings.push(...beside.save(data, now))
  result.stats.addresses = decider.countedAddresses
  result.newlyBlocked = data.entries
    .filter((e) => isBlockActive(e, now) && !before.has(`${e.instance} ${e.ip}`))
    .map((e) => blockInfo(e, caused.get(`${e.instance} ${e.ip}`)))
  Object.assign(data.positions, positions)
  return result
}


export async function scan(ctx: GuardContext, options: {dryRun: boolean} & Pick<ScanOptions, 'collect' | 'onEvent' | 'before' | 'progress'>): Promise<ScanResult> {
  if (options.dryRun) {
    const data = await readData(ctx)
    return scanInto(ctx, data, {...options, repeatWarnings: true})
  }
  return ctx.store.withLock({wait: true}, async () => {
    const data = await readData(ctx)
    const result = await scanInto(ctx, data, options)
    result.warnings.push(...keepSmall(data, ctx.config, ctx.now()).warnings)
    await ctx.store.write(data)
    return result
  })
}

export interface ReplayBlock {
  ip: string
  instance: string
  /** The failure that completed the window. */
  at: number
  /** When the block would have ended; null: until deleted. */
  until: number | null
  /** The rule that blocked it (decisions/windows.ts ruleName). */
  rule: string
}

/**
 * `scan --dry-run --log FILE [--replay]`: one file from its start, nothing
 * read from or written to the store. With replay, the decisions run over the
 * file's own timeline and every block that would have happened is reported.
 */
export async function scanFile(
  ctx: GuardContext,
  file: string,
  options: {instance: string; format?: LogConfig['format']} & Pick<ScanOptions, 'replay' | 'collect' | 'onEvent' | 'before' | 'progress'>,
): Promise<ScanResult & {replayBlocks: ReplayBlock[]}> {
  const inst = ctx.config.instances.find((i) => i.name === options.instance)
  if (inst === undefined) throw new UsageError(`no instance named ${options.instance} in the configuration`)
  const template = inst.logs[0]
  const log: LogConfig = {
    path: file,
    format: options.format ?? 'auto',
    ident: template?.ident ?? 'roundcube',
    sessionPrefix: template?.sessionPrefix ?? 'auto',
    dateFormat: options.format === undefined || options.format === template?.format ? template?.dateFormat : undefined,
    timezone: template?.timezone,
  }
  const problem = await unreadable(file)
  if (problem !== null) throw new RcguardError(problem, ExitCode.USAGE)
  const config: Config = {...ctx.config, instances: [{...inst, logs: [log]}]}
  const data = emptyData()
  const result = await scanInto({...ctx, config}, data, {...options, repeatWarnings: true})
  const replayBlocks: ReplayBlock[] = result.decisions
    .filter((d) => d.action === 'blocked' && d.event.ip !== null)
    .map((d) => ({ip: d.key ?? d.event.ip ?? '', instance: d.event.instance, at: d.blockedAt ?? d.event.time, until: d.blockedUntil ?? null, rule: d.rule ?? ''}))
  return {...result, replayBlocks}
}

export type CycleOptions = {dryRun: boolean; metrics?: MetricsRun | null} & Pick<ScanOptions, 'collect' | 'progress'>

/**
 * One run of the guard, the caller holding the lock (unless a dry run): scan
 * the new lines, end expired blocks, forget what no window needs, save, and
 * bring the firewall in line. What `hacks` does once and `watch` whenever a
 * log grows. A firewall failure is returned, not thrown: the blocks are saved.
 */
export async function cycle(ctx: GuardContext, options: CycleOptions): Promise<HacksResult> {
  const {data, merged} = await readDataTracked(ctx)
  // A cluster node: one connection to Redis for the run (a dry run reaches none).
  const session = ctx.config.cluster !== undefined && !options.dryRun ? new ClusterSession(ctx.config.cluster) : null
  try {
    return await cycleWith(ctx, options, data, merged, session)
  } finally {
    await session?.close()
  }
}

async function cycleWith(ctx: GuardContext, options: CycleOptions, data: StoreData, merged: boolean, session: ClusterSession | null): Promise<HacksResult> {
  const run = options.dryRun ? null : (options.metrics ?? null)
  // What the firewall held as the last run left it: when that is still what it must hold after this run, a change the apply makes is a repair.
  const wantedBefore = run === null ? '' : JSON.stringify(wanted(ctx, data))
  const was = {positions: JSON.stringify(data.positions), ledger: JSON.stringify(data.ledger), accounts: JSON.stringify(data.accounts), networks: JSON.stringify(data.networks)}
  // A cluster node's windows are relaxed by the successes of every node, as one host's are by its own.
  const remoteSuccess = session !== null && ctx.config.cluster !== undefined ? await clusterSuccesses(ctx.config, ctx.now(), session) : undefined
  const scanned = await scanInto(ctx, data, {collect: options.collect, progress: options.progress, repeatWarnings: options.dryRun, remoteSuccess})
  const now = ctx.now()
  // A cluster node: its failures to Redis, the cluster's windows and blocks into the database (a dry run reaches no Redis).
  let clusterChanged = false
  let clusterRun: HacksResult['cluster']
  if (ctx.config.cluster !== undefined && !options.dryRun && scanned.feed !== undefined) {
    const shared = await syncCluster(ctx.config, data, scanned.feed, now, session ?? new ClusterSession(ctx.config.cluster))
    scanned.warnings.push(...shared.warnings)
    // A block this node's own lines made is told as the cluster holds it (its length by the escalation of
    // every node's blocks), and once (the cluster's claim of it is the same block).
    const byId = new Map(data.entries.map((e) => [`${e.instance} ${e.ip}`, e]))
    for (const b of scanned.newlyBlocked) {
      const e = byId.get(`${b.instance} ${b.ip}`)
      if (e !== undefined && e.blockedAt !== null) Object.assign(b, {blockedAt: e.blockedAt, blockedUntil: e.blockedUntil})
    }
    const told = new Set(scanned.newlyBlocked.map((b) => `${b.instance} ${b.ip}`))
    const sharedBlocks = shared.blocked.filter((b) => !told.has(`${b.instance} ${b.ip}`))
    scanned.newlyBlocked.push(...sharedBlocks)
    // An account this node's own lines already reported is not reported twice.
    scanned.accountAlerts.push(...shared.accountAlerts.filter((a) => !scanned.accountAlerts.some((b) => b.instance === a.instance && b.account === a.account)))
    for (const b of sharedBlocks) tallyBlock(scanned.tally, {action: 'blocked', rule: b.rule, event: {instance: b.instance}} as Decision)
    if (!shared.reached) run?.error('cluster')
    clusterRun = {reached: shared.reached, pushed: shared.pushed, adopted: shared.adopted, lifted: shared.lifted}
    clusterChanged = shared.changed
  }
  const expired = expireBlocks(data, now).map((e) => blockInfo(e))
  const kept = keepSmall(data, ctx.config, now)
  scanned.warnings.push(...kept.warnings)
  // A run that changed nothing (the common case, every minute) does not rewrite the database.
  const changed =
    merged ||
    clusterChanged ||
    kept.changed ||
    expired.length > 0 ||
    ctx.store.migrating ||
    scanned.files.some((f) => f.events > 0) ||
    JSON.stringify(data.positions) !== was.positions ||
    JSON.stringify(data.ledger) !== was.ledger ||
    JSON.stringify(data.accounts) !== was.accounts ||
    JSON.stringify(data.networks) !== was.networks
  const base = {...scanned, expired, enabled: ctx.config.enabled, nextExpiry: nextExpiry(data, now), ...(clusterRun === undefined ? {} : {cluster: clusterRun})}
  if (options.dryRun) {
    const desired: DesiredState = ctx.config.enabled ? desiredState(ctx.config, data, now) : {instances: []}
    return {
      ...base,
      firewall: {backend: ctx.firewall.name, changed: false, drift: [], applied: [], rendered: ctx.firewall.render(desired)},
    }
  }
  // The counters ride along with the run's own write (a run that changes nothing leaves them to the textfile: metrics.ts).
  if (run !== null) await run.count(data, scanned.tally)
  if (changed) await ctx.store.write(data)
  else ctx.store.unchanged?.(data)
  let applied: ApplyResult = {changed: false, drift: [], applied: []}
  let firewallError: FirewallError | undefined
  const previous = data.firewall
  const applyStart = performance.now()
  try {
    applied = await syncFirewall(ctx, data)
  } catch (err) {
    // The blocks are in the database: report and notify them all the same, then fail.
    if (!(err instanceof FirewallError)) throw err
    firewallError = afterSave(err)
    run?.error('firewall')
  }
  if (run !== null) {
    // Rules put right that this run did not ask to change: the same backend as before, the same blocks as the last run left, not set up again (after flush, enabled again).
    const sameBackend = previous !== undefined && previous.backend === ctx.firewall.name && previous.prefix === ctx.config.firewall.prefix
    run.applied(performance.now() - applyStart, firewallError === undefined && applied.changed && applied.cause === undefined && sameBackend && JSON.stringify(wanted(ctx, data)) === wantedBefore)
    run.blocksInForce(data, now)
  }
  base.warnings.push(...(applied.warnings ?? []))
  return {...base, firewall: {...applied, backend: ctx.firewall.name}, ...(firewallError === undefined ? {} : {firewallError})}
}

/**
 * What the firewall holds when it is as rcguard left it: every block not yet
 * ended in the database (a block whose time ran out since the last run is
 * still in the rules until this run ends it), or nothing when rcguard is
 * disabled. Taken before the read and after the expiry: equal, nothing this
 * run did asks the rules to change.
 */
function wanted(ctx: GuardContext, data: StoreData): DesiredState {
  return ctx.config.enabled ? desiredState(ctx.config, data, Number.NEGATIVE_INFINITY) : {instances: []}
}

/** The earliest end of a block in force after `now`; null when none ends. */
function nextExpiry(data: StoreData, now: number): number | null {
  let next: number | null = null
  for (const e of data.entries) {
    if (e.blockedAt !== null && e.blockedUntil !== null && e.blockedUntil > now && (next === null || e.blockedUntil < next)) next = e.blockedUntil
  }
  return next
}

/**
 * One digest to the admin of what changed (blocks made, blocks ended, accounts reported under attack); null
 * when there is nothing to tell or nowhere to tell it. A failed notification
 * is a warning, never a failed run.
 */
export async function notifyChanges(
  ctx: GuardContext,
  changes: {blocked: BlockInfo[]; released: BlockInfo[]; accounts?: AccountAlert[]},
): Promise<{notified: string[]; warnings: string[]}> {
  const notified: string[] = []
  if (ctx.config.notify === undefined) return {notified, warnings: []}
  const digest = buildDigest({host: hostname(), now: ctx.now(), ...changes})
  if (digest === null) return {notified, warnings: []}
  const warnings = await notify(ctx.config.notify, digest, {log: (line) => notified.push(line)})
  return {notified, warnings}
}

/**
 * `hacks`: one cycle under the lock (giving up at once when it is held), then
 * one digest, then the metrics textfile (when configured; not for a dry run).
 * A run that fails still writes the textfile, its error counted.
 */
export async function hacks(ctx: GuardContext, options: CycleOptions): Promise<HacksResult> {
  if (options.dryRun) return cycle(ctx, options)
  const run = MetricsRun.start(ctx.config, ctx.now, false)
  try {
    return await ctx.store.withLock({wait: false}, async () => {
      const result = await cycle(ctx, {...options, metrics: run})
      const sent = await notifyChanges(ctx, {blocked: result.newlyBlocked, released: result.expired, accounts: result.accountAlerts})
      result.warnings.push(...sent.warnings)
      run?.error('notify', sent.warnings.length)
      const problem = (await run?.write(result.firewallError === undefined)) ?? null
      if (problem !== null) result.warnings.push(problem)
      return {...result, notified: sent.notified}
    })
  } catch (err) {
    // Another run holds the lock (BusyError): it writes the textfile.
    if (!(err instanceof BusyError)) await failedRun(run, err)
    throw err
  }
}

