/**
 * What each command does, as plain functions over a context: read the new log
 * lines, decide, keep the store, and bring the firewall in line with it. Data
 * flows one way: log reader → parser → decisions → store → firewall.
 */
import type {Config, LogConfig} from './config/config.js'
import {
  activeBlocks,
  blockLength,
  Decider,
  SKEW_MS,
  expireBlocks,
  isBlockActive,
  neverBlockReason,
  newEntry,
  pruneEntries,
  type Decision,
  type SourcedEvent,
} from './decisions/decide.js'
import {ExitCode, FirewallError, RcguardError, UsageError} from './errors.js'
import {afterSave, merge} from './firewall/backend.js'
import {ownershipOf, recordMarked} from './firewall/ownership.js'
import {installedBackends} from './firewall/index.js'
import type {ApplyResult, BackendName, DesiredState, FirewallBackend} from './firewall/index.js'
import {hostname} from 'node:os'
import {basename} from 'node:path'
import {glob} from 'tinyglobby'
import {isRotatedName, readNewLines, readTail, unreadable} from './logreader/reader.js'
import {blockKey, canonicalIp, cidrsOverlap, cidrText, compareIps, familyOf, ipSortKey, hostAddresses, NetworkList, parseCidr, withoutNested, type Cidr} from './net/ip.js'
import {mergeIntoNetworks} from './decisions/networks.js'
import {buildDigest, notify} from './notify/index.js'
import {EntryParser, LineParser, type ParseOptions, type SourcedLine} from './parser/parse.js'
import {proxyList} from './parser/proxy.js'
import {DoubtTally} from './report/doubts.js'
import {proxyAddress} from './config/config.js'
import {emptyData, type Entry, type StoreData, type StoredPosition} from './store/schema.js'
import type {Store} from './store/store.js'
import {removeFromWhitelist, unblockEntries, type StillInForce} from './admin/lift.js'
import {parseOrHint} from './admin/stored.js'
import {removeInvalid, type RepairResult} from './admin/repair.js'
import type {InvalidRecord} from './store/diagnose.js'

export interface GuardContext {
  config: Config
  store: Store
  firewall: FirewallBackend
  now: () => number
  /** Keep each matched line's text in its event (for --verbose). */
  keepText?: boolean
  /** Another backend (the one used before a switch, or all of them for flush). */
  makeBackend?: (name: BackendName, prefix: string) => FirewallBackend
}

export interface FileReport {
  file: string
  bytes: number
  lines: number
  events: number
  notes: string[]
}

export interface BlockInfo {
  ip: string
  instance: string
  attempts: number
  lastUser: string
  /** User names tried, most recent last (at most 10). */
  users: string[]
  blockedAt: number
  blockedUntil: number | null
}

export interface ScanResult {
  files: FileReport[]
  /** Every parsed event (only when collected). */
  events: SourcedEvent[]
  /** Every decision when collected; otherwise only the blocks. */
  decisions: Decision[]
  /** Counts, always kept. */
  stats: {failures: number; counted: number; addresses: number}
  newlyBlocked: BlockInfo[]
  warnings: string[]
}

export interface HacksResult extends ScanResult {
  expired: BlockInfo[]
  /** One line per notification sent. */
  notified?: string[]
  /** The firewall could not be brought in line (the command reports the blocks, then fails with it). */
  firewallError?: FirewallError
  firewall: ApplyResult & {backend: string; rendered?: string}
  enabled: boolean
}

/** Never blocked: the configured whitelist, trusted proxies, this host's own addresses and the admin's whitelist. */
function neverBlockSources(config: Config, data: StoreData): {cidr: string; label: string}[] {
  return [
    ...config.whitelist.map((c) => ({cidr: c, label: `whitelisted in the configuration (${parseCidr(c)?.text ?? c})`})),
    ...config.trustedProxies.map(proxyAddress).map((c) => ({cidr: c, label: `a trusted proxy (${parseCidr(c)?.text ?? c})`})),
    ...hostAddresses().map((ip) => ({cidr: ip, label: "this host's own address"})),
    ...data.whitelist.map((w) => ({cidr: w.cidr, label: `whitelisted (${w.cidr})`})),
  ]
}

function whitelistOf(config: Config, data: StoreData): NetworkList {
  return new NetworkList(neverBlockSources(config, data))
}

/** What an address or entry is counted and blocked as under this configuration (see blockKey). */
function keyOf(config: Config, never: NetworkList): (ip: string) => string {
  return (ip) => blockKey(ip, config.firewall.ipv6Prefix, never)
}

/**
 * The database as the configuration counts it: entries of an older key (IPv6
 * addresses from before per-network counting, another ipv6Prefix) merged into
 * their network's entry. Saved with the command's next write.
 */
async function readData(ctx: GuardContext): Promise<StoreData> {
  const data = await ctx.store.read()
  if (ctx.config.firewall.ipv6Prefix < 128) mergeIntoNetworks(data, keyOf(ctx.config, whitelistOf(ctx.config, data)))
  return data
}

function blockInfo(e: Entry): BlockInfo {
  return {
    ip: e.ip,
    instance: e.instance,
    attempts: e.attempts,
    lastUser: e.lastUser,
    // An entry from before users were recorded (schema 1) knows only its last user.
    users: e.users.length > 0 ? e.users : [e.lastUser],
    blockedAt: e.blockedAt ?? 0,
    blockedUntil: e.blockedUntil,
  }
}

const GLOB_CHARS = /[*?[\]{}]/

/** The files a configured log names: itself, or the live files its glob pattern matches. */
async function expandLog(pattern: string): Promise<{paths: string[]; warning?: string}> {
  if (!GLOB_CHARS.test(pattern)) return {paths: [pattern]}
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
    warnings: [],
    stats: {failures: 0, counted: 0, addresses: 0},
  }
  const positions: Record<string, StoredPosition> = {}
  const proxies = proxyList(config.trustedProxies)
  const before = new Set(data.entries.filter((e) => isBlockActive(e, now)).map((e) => `${e.instance} ${e.ip}`))
  const decider = new Decider(data, {...config, ipv6Prefix: config.firewall.ipv6Prefix}, whitelistOf(config, data), now, options.collect === true)
  const periodMs = config.periodMinutes * 60_000
  options.before?.()
  for (const instance of config.instances) {
    const parseOptions: ParseOptions = {countErrors: new Set(config.countErrors), trustedProxies: proxies, loginLc: instance.loginLc, userNameCut: instance.userNameCut}
    for (const log of instance.logs) {
      const {paths, warning} = await expandLog(log.path)
      if (warning !== undefined) result.warnings.push(warning)
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
        const handle = ({event, lineNo, text, file: from}: SourcedLine): void => {
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
          if (sourced.outcome === 'failure') {
            result.stats.failures++
            if (sourced.counted && sourced.ip !== null) result.stats.counted++
          }
          if (options.onEvent !== undefined) options.onEvent(sourced, decision)
          if (options.collect === true) {
            if (ctx.keepText === true) sourced.text = text
            result.events.push(sourced)
            result.decisions.push(decision)
          } else if (decision.action === 'blocked') {
            result.decisions.push(decision)
          }
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
        if (old > 0) notes.push(`first read: ${old} failed login(s) older than ${config.periodMinutes} min before the log's newest line not counted`)
        result.warnings.push(...report.warnings)
        if (report.position !== undefined) positions[file] = {...report.position, parser: parser.state, warned}
        result.files.push({file, bytes: report.bytes, lines: report.lines, events, notes})
      }
    }
  }
  data.ledger = decider.ledger.save()
  result.stats.addresses = decider.countedAddresses
  result.newlyBlocked = data.entries
    .filter((e) => isBlockActive(e, now) && !before.has(`${e.instance} ${e.ip}`))
    .map(blockInfo)
  Object.assign(data.positions, positions)
  return result
}

/**
 * The firewall's desired state from the store: per instance, its ports and
 * the networks in force. Each entry is blocked as blockKey says, the rule the
 * failures are counted by: an IPv6 entry of an older key (an address from
 * before per-network counting) is still widened to firewall.ipv6Prefix (e.g.
 * /64) unless that network would reach a never-blocked one, and a network
 * entry is blocked whole. A network inside another blocked one is left out.
 */
export function desiredState(config: Config, data: StoreData, now: number): DesiredState {
  const never = whitelistOf(config, data)
  const blocks = activeBlocks(data, never, now)
  const key = keyOf(config, never)
  return {
    instances: config.instances.map((inst) => {
      const ips = blocks.get(inst.name) ?? []
      const v6 = [...new Set(ips.filter((ip) => familyOf(ip) === 6).map((ip) => cidrText(key(ip))))]
      return {
        name: inst.name,
        ports: inst.ports,
        v4: ips.filter((ip) => familyOf(ip) === 4).map((ip) => `${ip}/32`),
        v6: withoutNested(v6.sort(compareIps)),
      }
    }),
  }
}

/**
 * Brings the firewall in line with the store (or removes every rule when
 * disabled). When the backend or prefix changed since the last run, the old
 * backend's objects are removed first, so a switch leaves nothing behind.
 */
async function syncFirewall(ctx: GuardContext, data: StoreData): Promise<ApplyResult> {
  const result: ApplyResult = {changed: false, drift: [], applied: []}
  const current = {backend: ctx.firewall.name, prefix: ctx.config.firewall.prefix}
  const previous = data.firewall
  if (previous !== undefined && (previous.backend !== current.backend || previous.prefix !== current.prefix)) {
    if (previous.backend !== 'none' && ctx.makeBackend !== undefined) {
      const old = await ctx.makeBackend(previous.backend as BackendName, previous.prefix).remove(ownershipOf(previous, previous.backend, previous.prefix))
      old.drift.unshift(`firewall changed from ${previous.backend} (${previous.prefix}) to ${current.backend} (${current.prefix}): old objects removed`)
      merge(result, old)
    }
  }
  const own = ownershipOf(previous, current.backend, current.prefix)
  merge(result, ctx.config.enabled ? await ctx.firewall.apply(desiredState(ctx.config, data, ctx.now()), own) : await ctx.firewall.remove(own))
  if (recordMarked(data, current.backend, current.prefix)) await ctx.store.write(data)
  return result
}

/** After the store is saved: a firewall failure names what was kept. */
function firewallFailed(err: unknown): never {
  if (err instanceof FirewallError) throw afterSave(err)
  throw err
}

/** `scan`: new log lines into the store; no firewall change. */
export async function scan(ctx: GuardContext, options: {dryRun: boolean} & Pick<ScanOptions, 'collect' | 'onEvent' | 'before' | 'progress'>): Promise<ScanResult> {
  if (options.dryRun) {
    const data = await readData(ctx)
    return scanInto(ctx, data, {...options, repeatWarnings: true})
  }
  return ctx.store.withLock({wait: true}, async () => {
    const data = await readData(ctx)
    const result = await scanInto(ctx, data, options)
    pruneEntries(data, ctx.config, ctx.now())
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
    .map((d) => ({ip: d.key ?? d.event.ip ?? '', instance: d.event.instance, at: d.blockedAt ?? d.event.time, until: d.blockedUntil ?? null}))
  return {...result, replayBlocks}
}

/** `hacks`: scan, end expired blocks, then regenerate the firewall rules. */
export async function hacks(ctx: GuardContext, options: {dryRun: boolean} & Pick<ScanOptions, 'collect' | 'progress'>): Promise<HacksResult> {
  const run = async (): Promise<HacksResult> => {
    const data = await readData(ctx)
    const scanned = await scanInto(ctx, data, {collect: options.collect, progress: options.progress, repeatWarnings: options.dryRun})
    const now = ctx.now()
    const expired = expireBlocks(data, now).map(blockInfo)
    pruneEntries(data, ctx.config, now)
    const base = {...scanned, expired, enabled: ctx.config.enabled}
    if (options.dryRun) {
      const desired: DesiredState = ctx.config.enabled ? desiredState(ctx.config, data, now) : {instances: []}
      return {
        ...base,
        firewall: {backend: ctx.firewall.name, changed: false, drift: [], applied: [], rendered: ctx.firewall.render(desired)},
      }
    }
    await ctx.store.write(data)
    let applied: ApplyResult = {changed: false, drift: [], applied: []}
    let firewallError: FirewallError | undefined
    try {
      applied = await syncFirewall(ctx, data)
    } catch (err) {
      // The blocks are in the database: report and notify them all the same, then fail.
      if (!(err instanceof FirewallError)) throw err
      firewallError = afterSave(err)
    }
    base.warnings.push(...(applied.warnings ?? []))
    // One digest per run to the admin; a failed notification is a warning, never a failed run.
    const notified: string[] = []
    if (ctx.config.notify !== undefined) {
      const digest = buildDigest({host: hostname(), now, blocked: base.newlyBlocked, released: expired})
      if (digest !== null) base.warnings.push(...(await notify(ctx.config.notify, digest, {log: (line) => notified.push(line)})))
    }
    return {...base, notified, firewall: {...applied, backend: ctx.firewall.name}, ...(firewallError === undefined ? {} : {firewallError})}
  }
  if (options.dryRun) return run()
  return ctx.store.withLock({wait: false}, run)
}

export type EntryState = 'blocked' | 'watching' | 'whitelisted'

export interface ListRow {
  ip: string
  state: EntryState
  instance: string | null
  /** Failures in the current window (for watching), or counted since the entry began (blocked). */
  attempts: number
  firstSeen: string | null
  lastSeen: string | null
  blockedAt: string | null
  /** End of the block; null while blocked means until deleted. */
  blockedUntil: string | null
  lastUser: string | null
  blocks: number
  comment: string | null
}

function iso(t: number | null): string | null {
  return t === null ? null : new Date(t).toISOString()
}

export interface ListFilter {
  state?: EntryState[]
  instance?: string
  /** Only entries whose address or network overlaps this address or network (whitelist entries too). */
  ip?: string
}

/** `list`: every entry with its state, blocked first, then by last seen; filtered. */
export async function list(ctx: GuardContext, filter: ListFilter = {}): Promise<ListRow[]> {
  let net: Cidr | null = null
  if (filter.ip !== undefined) {
    net = parseCidr(filter.ip)
    if (net === null) throw new UsageError(`not an IPv4/IPv6 address or CIDR network: ${filter.ip}`)
  }
  const rows = await listAll(ctx)
  return rows.filter((r) => {
    if (filter.state !== undefined && !filter.state.includes(r.state)) return false
    if (filter.instance !== undefined && r.instance !== filter.instance) return false
    if (net !== null) {
      const c = parseCidr(r.ip)
      if (c === null || !cidrsOverlap(c, net)) return false
    }
    return true
  })
}

async function listAll(ctx: GuardContext): Promise<ListRow[]> {
  const data = await readData(ctx)
  const now = ctx.now()
  const whitelist = whitelistOf(ctx.config, data)
  const rows: ListRow[] = []
  for (const e of data.entries) {
    if (neverBlockReason(e.ip, whitelist) !== null) continue
    const blocked = isBlockActive(e, now)
    rows.push({
      ip: e.ip,
      state: blocked ? 'blocked' : 'watching',
      instance: e.instance,
      attempts: blocked ? e.attempts : e.failures.length,
      firstSeen: iso(e.firstSeen),
      lastSeen: iso(e.lastSeen),
      blockedAt: blocked ? iso(e.blockedAt) : null,
      blockedUntil: blocked ? iso(e.blockedUntil) : null,
      lastUser: e.lastUser,
      blocks: e.blocks,
      comment: e.comment,
    })
  }
  const rank = {blocked: 0, watching: 1, whitelisted: 2}
  // ISO 8601 times compare as plain strings (localeCompare is many times slower, and this sorts every entry).
  const newer = (a: string | null, b: string | null): number => ((a ?? '') < (b ?? '') ? 1 : (a ?? '') > (b ?? '') ? -1 : 0)
  const keys = new Map(rows.map((r) => [r.ip, ipSortKey(r.ip)]))
  const byIp = (a: string, b: string): number => ((keys.get(a) ?? '') < (keys.get(b) ?? '') ? -1 : (keys.get(a) ?? '') > (keys.get(b) ?? '') ? 1 : 0)
  rows.sort((a, b) => rank[a.state] - rank[b.state] || newer(a.lastSeen, b.lastSeen) || byIp(a.ip, b.ip))
  for (const w of data.whitelist) {
    rows.push({
      ip: w.cidr,
      state: 'whitelisted',
      instance: null,
      attempts: 0,
      firstSeen: null,
      lastSeen: null,
      blockedAt: null,
      blockedUntil: null,
      lastUser: null,
      blocks: 0,
      comment: w.comment,
    })
  }
  return rows
}

export interface ChangeResult {
  /** What each argument did, one line each. */
  done: string[]
  /** Arguments that matched nothing. */
  notFound: string[]
  /** unblock, whitelist --remove: what still blocks (or still never blocks) an argument. */
  stillInForce?: StillInForce[]
  firewallChanged: boolean
  /** What keeps rcguard's rules from working (a rule of another shadowing them). */
  warnings: string[]
}

function parseAddresses(args: string[], allowCidr: boolean): string[] {
  return args.map((a) => {
    if (allowCidr) {
      const c = parseCidr(a)
      if (c === null) throw new UsageError(`not an IPv4/IPv6 address or CIDR network: ${a}`)
      return c.text
    }
    const ip = canonicalIp(a)
    if (ip === null || a.includes('/')) throw new UsageError(`not an IPv4 or IPv6 address: ${a}`)
    return ip
  })
}

async function mutate(
  ctx: GuardContext,
  change: (data: StoreData) => Omit<ChangeResult, 'firewallChanged' | 'warnings'>,
): Promise<ChangeResult> {
  return ctx.store.withLock({wait: true}, async () => {
    const data = await readData(ctx)
    const result = change(data)
    await ctx.store.write(data)
    try {
      const fw = await syncFirewall(ctx, data)
      return {...result, firewallChanged: fw.changed, warnings: fw.warnings ?? []}
    } catch (err) {
      firewallFailed(err)
    }
  })
}

/** Whether an entry's address or network shares an address with `net`. */
function overlaps(e: Entry, net: Cidr): boolean {
  const c = parseCidr(e.ip)
  return c !== null && cidrsOverlap(c, net)
}

/**
 * `unblock ADDR|CIDR...`: forget the entries (all instances) of each argument's
 * own scope, its IPv6 network included, and lift their rules now; a wider
 * network that still blocks it is named with the command that lifts it (lift.ts).
 */
export async function unblock(ctx: GuardContext, args: string[]): Promise<ChangeResult> {
  const nets = await parseOrHint(ctx, args, (a) => (a.includes('/') ? parseAddresses([a], true) : parseAddresses([a], false))[0] ?? a)
  const instances = new Set(ctx.config.instances.map((i) => i.name))
  return mutate(ctx, (data) => {
    const never = whitelistOf(ctx.config, data)
    return unblockEntries(data, nets, {now: ctx.now(), key: keyOf(ctx.config, never), never, instances})
  })
}

/**
 * `block ADDR...`: a block by hand (fail2ban's banip). It lasts `minutes`
 * (0: until deleted), by default what the next automatic block would; the
 * never-block rules apply as to any block.
 */
export async function block(
  ctx: GuardContext,
  args: string[],
  options: {minutes?: number; instance?: string; comment?: string},
): Promise<ChangeResult> {
  const ips = parseAddresses(args, false)
  const instances = options.instance === undefined ? ctx.config.instances.map((i) => i.name) : [options.instance]
  if (options.instance !== undefined && !ctx.config.instances.some((i) => i.name === options.instance)) {
    throw new UsageError(`no instance named ${options.instance} in the configuration`)
  }
  return ctx.store.withLock({wait: true}, async () => {
    const data = await readData(ctx)
    const never = whitelistOf(ctx.config, data)
    const key = keyOf(ctx.config, never)
    const refused = ips.map((ip) => [ip, neverBlockReason(ip, never)] as const).filter(([, why]) => why !== null)
    if (refused.length > 0) {
      throw new UsageError(`refused: ${refused.map(([ip, why]) => `${ip} is never blocked (${why ?? ''})`).join('; ')}`)
    }
    const now = ctx.now()
    const done: string[] = []
    for (const ip of ips) {
      // With ipv6Prefix set, the address's network: the entry its failures count against.
      const k = key(ip)
      const name = k === ip ? ip : `${k} (network of ${ip})`
      for (const instance of instances) {
        let entry = data.entries.find((e) => e.ip === k && e.instance === instance)
        if (entry === undefined) {
          entry = newEntry(k, instance, now)
          data.entries.push(entry)
        }
        const minutes = options.minutes ?? blockLength(ctx.config, entry.blocks)
        entry.blockedAt = now
        entry.blockedUntil = minutes === 0 ? null : now + minutes * 60_000
        entry.blocks++
        entry.failures = []
        if (options.comment !== undefined) entry.comment = options.comment
        done.push(`${name}: blocked on ${instance} ${minutes === 0 ? 'until deleted' : `for ${minutes} min`}`)
      }
    }
    await ctx.store.write(data)
    try {
      const fw = await syncFirewall(ctx, data)
      return {done, notFound: [], firewallChanged: fw.changed, warnings: fw.warnings ?? []}
    } catch (err) {
      firewallFailed(err)
    }
  })
}

/** `whitelist ADDR|CIDR...`: never block these; deletes the entries that overlap them (lifting their blocks) now. */
export async function whitelistAdd(ctx: GuardContext, args: string[], comment: string | null): Promise<ChangeResult> {
  const cidrs = parseAddresses(args, true)
  return mutate(ctx, (data) => {
    const done: string[] = []
    for (const cidr of cidrs) {
      const existing = data.whitelist.find((w) => w.cidr === cidr)
      if (existing === undefined) {
        data.whitelist.push({cidr, comment, added: ctx.now()})
      } else if (comment !== null) {
        existing.comment = comment
      }
      const net = parseCidr(cidr)
      const lifted = net === null ? [] : data.entries.filter((e) => overlaps(e, net))
      const gone = new Set(lifted)
      data.entries = data.entries.filter((e) => !gone.has(e))
      const liftedText = lifted.length > 0 ? `; lifted ${lifted.map((e) => e.ip).join(', ')}` : ''
      done.push(`${cidr}: ${existing === undefined ? 'whitelisted' : 'already whitelisted'}${liftedText}`)
    }
    return {done, notFound: []}
  })
}

/** `whitelist --remove ADDR|CIDR...`; whatever still keeps an argument from being blocked is named (lift.ts). */
export async function whitelistRemove(ctx: GuardContext, args: string[]): Promise<ChangeResult> {
  const cidrs = await parseOrHint(ctx, args, (a) => parseAddresses([a], true)[0] ?? a)
  return mutate(ctx, (data) => removeFromWhitelist(data, cidrs, ctx.config))
}

/** `flush --invalid`: remove the database's invalid records, keeping a copy, then bring the firewall in line (repair.ts). */
export async function flushInvalid(ctx: GuardContext, confirm: (records: InvalidRecord[]) => Promise<boolean>): Promise<RepairResult> {
  return removeInvalid(ctx.store, confirm, (data) => syncFirewall(ctx, data).catch(firewallFailed))
}

/** The whitelist: the configuration's networks and the admin's. */
export async function whitelistList(ctx: GuardContext): Promise<{cidr: string; source: 'config' | 'database'; comment: string | null}[]> {
  const data = await ctx.store.read()
  return [
    ...ctx.config.whitelist.map((c) => ({cidr: parseCidr(c)?.text ?? c, source: 'config' as const, comment: null})),
    ...data.whitelist.map((w) => ({cidr: w.cidr, source: 'database' as const, comment: w.comment})),
  ]
}

/**
 * Removes rcguard's objects from every firewall tool present: the current
 * backend's and any other's (a backend used before, a database lost), under
 * the configured prefix and the one last recorded.
 */
async function removeEverywhere(ctx: GuardContext, data: StoreData | null = null): Promise<ApplyResult> {
  const result = await ctx.firewall.remove(ownershipOf(data?.firewall, ctx.firewall.name, ctx.config.firewall.prefix))
  if (ctx.makeBackend === undefined) return result
  const prefixes = new Set([ctx.config.firewall.prefix, data?.firewall?.prefix ?? ctx.config.firewall.prefix])
  for (const prefix of prefixes) {
    for (const name of installedBackends()) {
      if (name === ctx.firewall.name && prefix === ctx.config.firewall.prefix) continue
      merge(result, await ctx.makeBackend(name, prefix).remove(ownershipOf(data?.firewall, name, prefix)))
    }
  }
  return result
}

export interface FlushResult {
  entriesRemoved: number
  whitelistRemoved: number
  firewall: ApplyResult
}

/** `flush`: remove every rule rcguard created and every offender entry (the whitelist too with `all`). */
export async function flush(ctx: GuardContext, options: {all: boolean}): Promise<FlushResult> {
  return ctx.store.withLock({wait: true}, async () => {
    let data: StoreData | null = null
    let readError: unknown = null
    try {
      data = await ctx.store.read()
    } catch (err) {
      readError = err
    }
    const firewall = await removeEverywhere(ctx, data)
    if (data === null) throw readError
    const result = {entriesRemoved: data.entries.length, whitelistRemoved: options.all ? data.whitelist.length : 0, firewall}
    data.entries = []
    if (options.all) data.whitelist = []
    await ctx.store.write(data)
    return result
  })
}
