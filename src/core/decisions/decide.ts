/**
 * Decisions: an exact sliding window over the events' own timestamps.
 *
 * An address is blocked when `maxAttempts` counted failures fall within
 * `periodMinutes` of each other (first to last inclusive), whatever order the
 * lines arrived in. The block starts at the failure that completed the window
 * and lasts `blockMinutes` (0: until deleted). Failures that led to a block are
 * forgotten, so after it ends a fresh burst is needed to block again.
 */
import {blockKey, ipv4Key, isLoopback, loopbackOverlapping, NetworkList as Networks, overlapsLoopback, parseCidr, sortIps, type NetworkList} from '../net/ip.js'
import type {LoginEvent} from '../parser/types.js'
import type {Entry, StoreData} from '../store/schema.js'
import {AttemptLedger, detached, SKEW_MS} from './attempts.js'
import {cutUser, MAX_USERS} from '../store/bounds.js'
import {findFailures, findUsers, nameTag, ruleText, tagsOf, tagsText, windowsOf, type WindowSetting, type Windows} from './windows.js'

export interface DecisionSettings {
  /** The instances and their logs (the attempt ledger drops sooner what a single log cannot need). */
  instances?: readonly {name: string; logs: readonly {path: string}[]}[]
  maxAttempts: number
  periodMinutes: number
  blockMinutes: number
  /** More windows beside the first rule (decisions/windows.ts); absent: none. */
  windows?: readonly WindowSetting[]
  /** A successful login from an address clears its failures (off by default: 2FA plugins log success before the second factor). */
  resetOnSuccess?: boolean
  /** Repeat offenders: longer blocks each time (absent: every block lasts blockMinutes). */
  escalation?: {factor: number; maxMinutes: number; forgetDays: number}
  /** firewall.ipv6Prefix: IPv6 failures count against the network of this prefix (absent, 128: per address). */
  ipv6Prefix?: number
  /** A cluster node: the newest successful login of a key seen by the other nodes (it relaxes the windows as one seen here). */
  remoteSuccess?: (instance: string, key: string) => number | undefined
}

/**
 * How long the next block of an address lasts, in minutes (0: until
 * deleted): blockMinutes × factor^(earlier blocks), capped by maxMinutes.
 */
export function blockLength(settings: DecisionSettings, earlierBlocks: number): number {
  if (settings.blockMinutes === 0) return 0
  const e = settings.escalation
  if (e === undefined || e.factor === 1 || earlierBlocks === 0) return settings.blockMinutes
  const grown = settings.blockMinutes * e.factor ** Math.min(earlierBlocks, 64)
  return Math.min(grown, Math.max(e.maxMinutes, settings.blockMinutes))
}

export interface SourcedEvent extends LoginEvent {
  instance: string
  file: string
  lineNo: number
  /** The line itself, kept only for --verbose. */
  text?: string
}

export type DecisionAction = 'ignored' | 'never-block' | 'duplicate' | 'counted' | 'already-blocked' | 'blocked' | 'reset'

export interface Decision {
  action: DecisionAction
  event: SourcedEvent
  /** One line for --verbose: why. */
  why: string
  /** For `blocked`: when the block started (the failure that completed the window) and ends (null: until deleted). */
  blockedAt?: number
  blockedUntil?: number | null
  /** The entry the failure counted against: the address, or its IPv6 network (see blockKey). */
  key?: string
  /** For `blocked`: the rule that blocked it (windows.ts ruleName). */
  rule?: string
  /** The failure counted against a blocked network entry that holds its address, not against its own. */
  inside?: true
  /** For `blocked` by a window: the failures that caused the block (within the window's period up to the one that completed it). */
  failures?: number
}

export {DUPLICATE_WINDOW_MS, SKEW_MS} from './attempts.js'
/** Distinct user names the decider shares between entries, at most (then it starts over). */
const MAX_NAMES = 4096

export function isBlockActive(entry: Entry, now: number): boolean {
  return entry.blockedAt !== null && (entry.blockedUntil === null || entry.blockedUntil > now)
}

/** Why an address, or any address of a network entry (CIDR text), must never be blocked, or null. */
export function neverBlockReason(ip: string, whitelist: NetworkList): string | null {
  const network = ip.includes('/')
  if (network ? overlapsLoopback(ip) : isLoopback(ip)) return 'loopback'
  const w = network ? whitelist.overlapping(ip) : whitelist.match(ip)
  if (w !== undefined) return w.label ?? `whitelisted (${w.text})`
  return null
}

/**
 * What a network (CIDR text) overlaps that is never blocked, as the rule and
 * the network it overlaps (`whitelisted in the configuration
 * (198.51.100.200/32)`, `loopback (127.0.0.0/8)`), or null: neverBlockReason
 * for a network, naming what it holds or lies in.
 */
export function neverBlockOverlap(net: string, whitelist: NetworkList): string | null {
  const loop = loopbackOverlapping(net)
  if (loop !== undefined) return `loopback (${loop.text})`
  const w = whitelist.overlapping(net)
  if (w === undefined) return null
  if (w.label === undefined) return `whitelisted (${w.text})`
  // Labels that name no network (this host's own address) get it added.
  return w.label.includes(`(${w.text})`) ? w.label : `${w.label} (${w.text})`
}

function minutes(n: number): string {
  return `${n} min`
}

/** Index of the first window of k failures within periodMs in sorted times, or -1. */
export function findWindow(times: number[], k: number, periodMs: number): number {
  for (let i = 0; i + k - 1 < times.length; i++) {
    if ((times[i + k - 1] ?? 0) - (times[i] ?? 0) <= periodMs) return i
  }
  return -1
}

/** Inserts t in sorted order; returns its index. */
function insertSorted(times: number[], t: number): number {
  let i = times.length
  while (i > 0 && (times[i - 1] ?? 0) > t) i--
  if (i === times.length) times.push(t)
  else times.splice(i, 0, t)
  return i
}

/** Drops the times before `from` at the start of a sorted list, in place (shift and splice trim an array's storage in V8, and the next push allocates it anew). */
function dropBefore(times: number[], from: number): number {
  let k = 0
  while (k < times.length && (times[k] as number) < from) k++
  if (k === 0) return 0
  for (let i = k; i < times.length; i++) times[i - k] = times[i] as number
  times.length -= k
  return k
}

/**
 * Applies events one at a time to the store's entries (in place), so a scan
 * of any size needs memory for the addresses only, not for the lines. `now`
 * only decides whether a new block is still in force.
 */
/** A database entry for an address not seen before on an instance: no failure, no block yet. */
export function newEntry(ip: string, instance: string, time: number, user = ''): Entry {
  return {
    ip,
    instance,
    failures: [],
    attempts: 0,
    firstSeen: time,
    lastSeen: time,
    lastUser: user,
    blockedAt: null,
    blockedUntil: null,
    blocks: 0,
    lastBlockEnd: null,
    users: [],
    comment: null,
  }
}

/** What the decider knows of one address: why it is never blocked (null: it may be), and the entry key it counts against. */
interface AddressFacts {
  never: string | null
  key: string
  /** The entry it counted against last (a row, -1: none yet), and on which instance (rows stay in byKey once made). */
  instance: string | null
  row: number
  /** A failure from it reached the windows (counted, not a duplicate): see countedAddresses. */
  counted: boolean
}

/** Length, first and last character of a user name (a small integer): equal names have equal signatures. */
function userSig(user: string): number {
  return user.length === 0 ? 0 : ((user.length & 0x3ff) << 20) | ((user.charCodeAt(0) ^ (user.charCodeAt(user.length - 1) << 4)) & 0xfffff)
}

/*
 * The decider's copy of an entry it counts against: a row. Its numbers are
 * ROW doubles of one typed array (one cache line: a line's failure is one
 * look at memory there, not one per field, per boxed number and per list of
 * the entry's object), its user names MAX_USERS slots of a column, each with
 * its signature. The entries themselves (data.entries) are written from the
 * rows by flush(), at the end of a run of apply().
 */
const ROW = 16
const ATTEMPTS = 0
const FIRST_SEEN = 1
const LAST_SEEN = 2
/** NaN: null. */
const BLOCKED_AT = 3
/** NaN: null. */
const BLOCKED_UNTIL = 4
const BLOCKS = 5
/** How many names the row's user columns hold; -1: more than MAX_USERS (a database written otherwise), kept in the entry's own list. */
const NAMES = 6
/** How many failure times the row holds, sorted, from FAIL0 on; -1: more than FAIL_SLOTS, kept in the row's list (`failures`). */
const FAILS = 7
const FAIL0 = 8
const FAIL_SLOTS = ROW - FAIL0
/**
 * With a user window, a row holds TAGGED_SLOTS failure times, and its last
 * two doubles the 16-bit tags of their names (windows.ts nameTag): one row
 * is still one look at memory per failure.
 */
const TAGGED_SLOTS = FAIL_SLOTS - 2
/** Where a row's tags start in the 16-bit view of the rows (see TAGGED_SLOTS). */
const tagBase = (row: number): number => (row * ROW + FAIL0 + TAGGED_SLOTS) * 4
const IN_ROW: number[] = []

const orNaN = (v: number | null): number => (v === null ? Number.NaN : v)
const orNull = (v: number): number | null => (Number.isNaN(v) ? null : v)

export class Decider {
  private readonly windows: Windows
  /** Whether successes are remembered: only windows beside the first rule look at them. */
  private readonly relaxing: boolean
  /**
   * The entries' rows, by instance then key: one lookup per failure, no key
   * text built. A stored entry gets its row when first counted against (-1 -
   * its index in data.entries until then): a run touches few of a large
   * database's entries.
   */
  private readonly byKey = new Map<string, Map<string, number>>()
  private indexed = false
  /**
   * neverBlockReason and blockKey per address: the whitelist is matched once
   * per address, not per line. Plain IPv4 by its number: a string key costs
   * a look at the string (often far away in memory) at every line.
   */
  private readonly facts = new Map<number | string, AddressFacts>()
  /** Which failures are new attempts: twin lines of the two logs, rate-limit refusals. */
  readonly ledger: AttemptLedger
  /**
   * Distinct addresses with a failure still counted after apply (a scan's
   * statistics): apply leaves `counted` as it finds it once the ledger let
   * the line through, so these are the addresses whose failure got that far.
   */
  countedAddresses = 0
  private readonly names = new Map<string, string>()
  /** The rows (see ROW). */
  private rows = 0
  /** Doubles per row. */
  private readonly stride = ROW
  private hot: Float64Array
  /**
   * With a user window: the rows' 16-bit view, where each row's tags follow
   * its failure times (TAGGED_SLOTS), and the tags of the lists (`failTags`,
   * aligned with `failures`); without one, empty.
   */
  private readonly tagging: boolean
  /** How many failure times a row holds: FAIL_SLOTS, or TAGGED_SLOTS with a user window. */
  private readonly slots: number
  private tags: Uint16Array
  private failTags: number[][] = []
  private sigs = new Int32Array(MAX_USERS * 1024)
  private users: string[] = []
  private lastUser: string[] = []
  /** The failure times of rows that hold more than FAIL_SLOTS (IN_ROW for the others). */
  private failures: number[][] = []
  private entryOf: Entry[] = []
  /** Per row: its newest successful login (NaN: none known), the rule of its block. */
  private lastSuccess: number[] = []
  private rule: (string | undefined)[] = []
  /**
   * Per instance, the network entries wider than any key (IPv4 networks, IPv6
   * ones wider than ipv6Prefix: blocked by hand or by networkBlock) and their
   * rows: a failure from inside one while its block lasts counts against it.
   * null: no instance has one (nearly always), nothing to look at.
   */
  private nets: Map<string, {list: Networks | null; keys: Map<string, string>}> | null = null
  /** Rows changed since the last flush (each once). */
  private dirty = new Uint8Array(1024)
  private changed: number[] = []

  constructor(
    private readonly data: StoreData,
    private readonly settings: DecisionSettings,
    private readonly whitelist: NetworkList,
    private readonly now: number,
    /** Write the `why` of counted lines (for --verbose). */
    private readonly explain = true,
  ) {
    this.windows = windowsOf(settings)
    this.hot = new Float64Array(this.stride * 1024)
    this.tagging = this.windows.users.length > 0
    this.slots = this.tagging ? TAGGED_SLOTS : FAIL_SLOTS
    this.tags = this.tagging ? new Uint16Array(this.hot.buffer) : new Uint16Array(0)
    this.relaxing = this.windows.failures.length > 1 || this.windows.users.length > 0
    const oneLog = (settings.instances ?? []).filter((i) => i.logs.length === 1 && !/[*?[\]{}]/.test(i.logs[0]?.path ?? '*')).map((i) => i.name)
    this.ledger = new AttemptLedger(data.ledger, new Set(oneLog))
  }

  /** The entries by instance and key, made at the first event (a run that reads no new line needs none). */
  private index(): void {
    if (this.indexed) return
    this.indexed = true
    this.data.entries.forEach((e, i) => {
      this.rowsOf(e.instance).set(e.ip, -1 - i)
      if (e.ip.includes('/')) this.addNetwork(e.instance, e.ip)
    })
  }

  /** Notes a network entry that failures from inside it may count against (see nets). */
  private addNetwork(instance: string, cidr: string): void {
    const net = parseCidr(cidr)
    if (net === null || (net.family === 6 && net.prefix >= (this.settings.ipv6Prefix ?? 128))) return
    // A network the firewall does not block (it came to overlap what is never blocked) holds nobody: its addresses are judged alone.
    if (neverBlockReason(cidr, this.whitelist) !== null) return
    this.nets ??= new Map()
    let nets = this.nets.get(instance)
    if (nets === undefined) this.nets.set(instance, (nets = {list: null, keys: new Map()}))
    nets.keys.set(net.text, cidr)
    // Made again at the next look (once for all the entries index() adds, not once per network).
    nets.list = null
  }

  /** The row of a blocked network entry that holds `ip` at `time`, or -1. */
  private blockedNetworkRow(instance: string, ip: string, time: number): number {
    const nets = this.nets?.get(instance)
    if (nets === undefined) return -1
    nets.list ??= new Networks(nets.keys.keys())
    const net = nets.list.match(ip)
    if (net === undefined) return -1
    const row = this.rowOf(instance, nets.keys.get(net.text) ?? net.text)
    return row !== -1 && this.blockActive(row, time) ? row : -1
  }

  /**
   * Blocks the entry of an address (the key it counts against) or of a
   * network (CIDR text: networkBlock) on an instance from `at`, made when
   * there is none, with its own escalation: the decision a failure that
   * blocked it would have. A rule beside the windows (a network's swarm, an
   * account under attack) blocks through this; an address or network that is
   * never blocked is refused here too.
   */
  blockEntry(instance: string, target: string, at: number, rule: string, event: SourcedEvent): Decision {
    this.index()
    const network = target.includes('/')
    const never = network ? neverBlockReason(target, this.whitelist) : this.factsOf(target).never
    if (never !== null) return {action: 'never-block', event, why: `${target} is never blocked: ${never}`}
    const cidr = network ? target : this.factsOf(target).key
    let row = this.rowOf(instance, cidr)
    if (row === -1) {
      const made = newEntry(cidr, instance, at)
      this.data.entries.push(made)
      row = this.addRow(made)
      this.rowsOf(instance).set(cidr, row)
      if (cidr.includes('/')) this.addNetwork(instance, cidr)
    }
    this.touch(row)
    const hot = this.hot
    const h = row * this.stride
    hot[h + FIRST_SEEN] = Math.min(hot[h + FIRST_SEEN] as number, at)
    hot[h + LAST_SEEN] = Math.max(hot[h + LAST_SEEN] as number, at)
    if (this.blockActive(row, at)) return {action: 'already-blocked', event, key: cidr, why: `${cidr} is already blocked`}
    return this.startBlock(row, cidr, at, rule, event)
  }

  /** Starts the block of a row at `trigger` by `rule`: its length by escalation, its windows emptied. */
  private startBlock(row: number, key: string, trigger: number, rule: string, event: SourcedEvent, caused?: number): Decision {
    const {settings} = this
    const hot = this.hot
    const h = row * this.stride
    const blocks = hot[h + BLOCKS] as number
    const lengthMin = blockLength(settings, blocks)
    const blockedUntil = lengthMin === 0 ? null : trigger + lengthMin * 60_000
    hot[h + BLOCKED_AT] = trigger
    hot[h + BLOCKED_UNTIL] = orNaN(blockedUntil)
    const repeat = blocks > 0 && lengthMin !== settings.blockMinutes ? ` (block ${blocks + 1} of this ${key.includes('/') ? 'network' : 'address'}: escalated)` : ''
    hot[h + BLOCKS] = blocks + 1
    this.setFailures(row, IN_ROW, IN_ROW)
    this.rule[row] = rule
    const length = lengthMin === 0 ? 'until deleted' : `for ${minutes(lengthMin)}${repeat}`
    const stale = blockedUntil !== null && blockedUntil <= this.now ? ' (already over: the lines are old)' : ''
    return {
      action: 'blocked',
      event,
      key,
      why: `${key}: ${ruleText(rule)}: blocked ${length}${stale}`,
      blockedAt: trigger,
      blockedUntil,
      rule,
      ...(caused === undefined ? {} : {failures: caused}),
    }
  }

  /** The row of the entry of an instance and key (made from the stored entry at its first use), or -1: there is none. */
  private rowOf(instance: string, key: string): number {
    const rows = this.byKey.get(instance)
    const v = rows?.get(key)
    if (v === undefined) return -1
    if (v >= 0) return v
    const row = this.addRow(this.data.entries[-1 - v] as Entry)
    rows?.set(key, row)
    return row
  }

  private rowsOf(instance: string): Map<string, number> {
    let m = this.byKey.get(instance)
    if (m === undefined) {
      m = new Map()
      this.byKey.set(instance, m)
    }
    return m
  }

  /** A row holding what `entry` holds now. */
  private addRow(entry: Entry): number {
    const row = this.rows++
    if (row * this.stride === this.hot.length) {
      const hot = new Float64Array(this.hot.length * 2)
      hot.set(this.hot)
      this.hot = hot
      const sigs = new Int32Array(this.sigs.length * 2)
      sigs.set(this.sigs)
      this.sigs = sigs
      const dirty = new Uint8Array(this.dirty.length * 2)
      dirty.set(this.dirty)
      this.dirty = dirty
      if (this.tagging) this.tags = new Uint16Array(hot.buffer)
    }
    const h = row * this.stride
    const hot = this.hot
    hot[h + ATTEMPTS] = entry.attempts
    hot[h + FIRST_SEEN] = entry.firstSeen
    hot[h + LAST_SEEN] = entry.lastSeen
    hot[h + BLOCKED_AT] = orNaN(entry.blockedAt)
    hot[h + BLOCKED_UNTIL] = orNaN(entry.blockedUntil)
    hot[h + BLOCKS] = entry.blocks
    this.entryOf.push(entry)
    this.lastSuccess.push(entry.lastSuccess ?? Number.NaN)
    this.rule.push(entry.rule)
    this.lastUser.push(entry.lastUser)
    this.failures.push(IN_ROW)
    this.failTags.push(IN_ROW)
    this.setFailures(row, entry.failures, this.tagging ? tagsOf(entry.tried, entry.failures.length) : IN_ROW)
    for (let i = 0; i < MAX_USERS; i++) this.users.push('')
    this.namesFrom(row, entry.users)
    return row
  }

  /** Puts a list of names into the row's user columns when it fits there (else NAMES -1: the entry's list is used). */
  private namesFrom(row: number, list: readonly string[]): void {
    if (list.length > MAX_USERS) {
      this.hot[row * this.stride + NAMES] = -1
      return
    }
    const u = row * MAX_USERS
    for (let i = 0; i < list.length; i++) {
      const name = list[i] as string
      this.users[u + i] = name
      this.sigs[u + i] = userSig(name)
    }
    for (let i = list.length; i < MAX_USERS; i++) this.users[u + i] = ''
    this.hot[row * this.stride + NAMES] = list.length
  }

  /** The row's failure times as a list (a new one when they are in the row). */
  private failuresOf(row: number): number[] {
    const h = row * this.stride
    const n = this.hot[h + FAILS] as number
    return n === -1 ? (this.failures[row] as number[]) : Array.from(this.hot.subarray(h + FAIL0, h + FAIL0 + n))
  }

  /** The tags of the row's failure times (with a user window), aligned with failuresOf. */
  private tagsOfRow(row: number): number[] {
    const n = this.hot[row * this.stride + FAILS] as number
    if (!this.tagging) return IN_ROW
    return n === -1 ? (this.failTags[row] as number[]) : Array.from(this.tags.subarray(tagBase(row), tagBase(row) + n))
  }

  /**
   * Makes `list` (sorted) the row's failure times, and `tags` their names'
   * tags (with a user window; shorter: unknown): in the row when they fit,
   * else the lists themselves.
   */
  private setFailures(row: number, list: number[], tags: readonly number[]): void {
    const h = row * this.stride
    if (list.length > this.slots) {
      this.failures[row] = list
      if (this.tagging) this.failTags[row] = list.map((_, i) => tags[i] ?? 0)
      this.hot[h + FAILS] = -1
      return
    }
    this.failures[row] = IN_ROW
    this.failTags[row] = IN_ROW
    for (let i = 0; i < list.length; i++) this.hot[h + FAIL0 + i] = list[i] as number
    if (this.tagging) for (let i = 0; i < list.length; i++) this.tags[tagBase(row) + i] = tags[i] ?? 0
    this.hot[h + FAILS] = list.length
  }

  private touch(row: number): void {
    if (this.dirty[row] === 1) return
    this.dirty[row] = 1
    this.changed.push(row)
  }

  /**
   * Writes what apply() changed into the entries of data.entries (rows are
   * the decider's working copy). Call once the events are applied, before
   * anything reads the entries; apply may go on after it.
   */
  flush(): void {
    const hot = this.hot
    for (const row of this.changed) {
      const e = this.entryOf[row] as Entry
      const h = row * this.stride
      e.attempts = hot[h + ATTEMPTS] as number
      e.firstSeen = hot[h + FIRST_SEEN] as number
      e.lastSeen = hot[h + LAST_SEEN] as number
      e.blockedAt = orNull(hot[h + BLOCKED_AT] as number)
      e.blockedUntil = orNull(hot[h + BLOCKED_UNTIL] as number)
      e.blocks = hot[h + BLOCKS] as number
      e.lastUser = this.lastUser[row] as string
      e.failures = this.failuresOf(row)
      const n = hot[h + NAMES] as number
      if (n !== -1) e.users = this.users.slice(row * MAX_USERS, row * MAX_USERS + n)
      const success = this.lastSuccess[row] as number
      if (!Number.isNaN(success)) e.lastSuccess = success
      const n2 = hot[h + FAILS] as number
      if (this.tagging && e.failures.length > 0) e.tried = n2 === -1 ? tagsText(this.failTags[row] as number[], 0, e.failures.length) : tagsText(this.tags, tagBase(row), n2)
      else delete e.tried
      const rule = this.rule[row]
      if (rule !== undefined) e.rule = rule
      else delete e.rule
      this.dirty[row] = 0
    }
    this.changed = []
  }

  private blockActive(row: number, time: number): boolean {
    const h = row * this.stride
    const until = this.hot[h + BLOCKED_UNTIL] as number
    return !Number.isNaN(this.hot[h + BLOCKED_AT]) && (Number.isNaN(until) || until > time)
  }

  /** Whether a successful login of the row's address lies within periodMs of `time` (a window beside the first rule is relaxed). */
  private succeededNear(row: number, time: number, periodMs: number): boolean {
    const s = this.lastSuccess[row] as number
    if (!Number.isNaN(s) && Math.abs(time - s) <= periodMs) return true
    const remote = this.settings.remoteSuccess
    const e = remote === undefined ? undefined : this.entryOf[row]
    const r = e === undefined ? undefined : remote?.(e.instance, e.ip)
    return r !== undefined && Math.abs(time - r) <= periodMs
  }

  apply(event: SourcedEvent): Decision {
    const {settings, windows} = this
    this.index()
    if (this.relaxing && event.outcome === 'success' && event.ip !== null && event.doubt === undefined) {
      // Remembered for an address already counted against: a success alone makes no entry.
      const row = this.rowOf(event.instance, this.factsOf(event.ip).key)
      if (row !== -1 && !((this.lastSuccess[row] as number) >= event.time)) {
        this.lastSuccess[row] = event.time
        this.touch(row)
      }
    }
    if (event.outcome === 'success' && settings.resetOnSuccess === true && event.ip !== null && event.doubt === undefined) {
      const row = this.rowOf(event.instance, this.factsOf(event.ip).key)
      const failures = row === -1 ? [] : this.failuresOf(row)
      const earlier = failures.filter((t) => t <= event.time).length
      if (row !== -1 && earlier > 0 && !this.blockActive(row, event.time)) {
        const tags = this.tagsOfRow(row)
        const later = failures.flatMap((t, i) => (t > event.time ? [i] : []))
        this.setFailures(
          row,
          later.map((i) => failures[i] as number),
          later.map((i) => tags[i] ?? 0),
        )
        this.touch(row)
        return {action: 'reset', event, why: `${(this.entryOf[row] as Entry).ip}: successful login, ${earlier} earlier failure(s) forgotten (resetOnSuccess)`}
      }
    }
    const verdict = this.ledger.judge(event)
    if (verdict !== null) return {action: verdict.action, event, why: verdict.why}
    if (!event.counted || event.ip === null) return {action: 'ignored', event, why: event.reason}
    const ip = event.ip
    const facts = this.factsOf(ip)
    if (!facts.counted && event.outcome === 'failure') {
      facts.counted = true
      this.countedAddresses++
    }
    const {never, key} = facts
    if (never !== null) return {action: 'never-block', event, why: `${ip} is never blocked: ${never}`}
    // Stored cut (store/bounds.ts): the digest shows no more of it, and the attacker chooses its length.
    const name = cutUser(event.user)
    if (this.nets !== null) {
      // Inside a network whose block is in force: the failure counts against the network.
      const netRow = this.blockedNetworkRow(event.instance, ip, event.time)
      if (netRow !== -1) {
        this.touch(netRow)
        const nh = netRow * this.stride
        this.hot[nh + ATTEMPTS] = (this.hot[nh + ATTEMPTS] as number) + 1
        if (event.time >= (this.hot[nh + LAST_SEEN] as number)) {
          this.hot[nh + LAST_SEEN] = event.time
          this.lastUser[netRow] = this.nameOf(name)
        }
        const net = (this.entryOf[netRow] as Entry).ip
        return {action: 'already-blocked', event, key: net, inside: true, why: `${ip} is inside ${net}, which is already blocked`}
      }
    }
    let row = facts.instance === event.instance ? facts.row : -1
    if (row === -1) {
      row = this.rowOf(event.instance, key)
      if (row === -1) {
        const made = newEntry(key, event.instance, event.time, this.nameOf(name))
        this.data.entries.push(made)
        row = this.addRow(made)
        this.rowsOf(event.instance).set(key, row)
      }
      facts.instance = event.instance
      facts.row = row
    }
    this.touch(row)
    const hot = this.hot
    const h = row * this.stride
    hot[h + ATTEMPTS] = (hot[h + ATTEMPTS] as number) + 1
    hot[h + FIRST_SEEN] = Math.min(hot[h + FIRST_SEEN] as number, event.time)
    const sig = userSig(name)
    const n = hot[h + NAMES] as number
    if (n !== -1) {
      // users.indexOf(name), looking at a name only where the signature agrees.
      const users = this.users
      const sigs = this.sigs
      const u = row * MAX_USERS
      let seen = -1
      for (let i = 0; i < n; i++) {
        if (sigs[u + i] === sig && users[u + i] === name) {
          seen = i
          break
        }
      }
      // The entry keeps its own copy of a name (not the log line it was cut from), once.
      const last = this.lastUser[row] as string
      const user = seen !== -1 ? (users[u + seen] as string) : name === last ? last : this.nameOf(name)
      if (event.time >= (hot[h + LAST_SEEN] as number)) {
        hot[h + LAST_SEEN] = event.time
        this.lastUser[row] = user
      }
      // Distinct, most recent last, at most MAX_USERS: without the one seen, with this one last.
      if (seen === -1 && n < MAX_USERS) {
        users[u + n] = user
        sigs[u + n] = sig
        hot[h + NAMES] = n + 1
      } else {
        for (let i = seen === -1 ? 0 : seen; i < n - 1; i++) {
          users[u + i] = users[u + i + 1] as string
          sigs[u + i] = sigs[u + i + 1] as number
        }
        users[u + n - 1] = user
        sigs[u + n - 1] = sig
      }
    } else {
      // More names than are kept (a database written otherwise): as always, one name goes per line.
      const users = (this.entryOf[row] as Entry).users
      const seen = users.indexOf(name)
      const last = this.lastUser[row] as string
      const user = seen !== -1 ? (users[seen] as string) : name === last ? last : this.nameOf(name)
      if (event.time >= (hot[h + LAST_SEEN] as number)) {
        hot[h + LAST_SEEN] = event.time
        this.lastUser[row] = user
      }
      if (seen !== -1) users.splice(seen, 1)
      users.push(user)
      users.shift()
      if (users.length <= MAX_USERS) this.namesFrom(row, users)
    }
    if (!Number.isNaN(hot[h + BLOCKED_AT]) && (Number.isNaN(hot[h + BLOCKED_UNTIL]) || (hot[h + BLOCKED_UNTIL] as number) > event.time)) {
      return {action: 'already-blocked', event, key, why: `${key} is already blocked`}
    }
    // The first rule's window, the other failures windows, then the user windows: the earliest completion blocks.
    const first = windows.failures[0] as (typeof windows.failures)[number]
    const keepMs = windows.longestMs
    let held: number
    let trigger = Number.POSITIVE_INFINITY
    let rule = ''
    // With a user window, the tag of the name tried goes beside the failure's time (one hash per line).
    const tag = this.tagging ? nameTag(event.user) : 0
    if ((hot[h + FAILS] as number) === this.slots) {
      // Full: the times (and their tags) move to lists of their own.
      this.failures[row] = Array.from(hot.subarray(h + FAIL0, h + FAIL0 + this.slots))
      if (this.tagging) this.failTags[row] = Array.from(this.tags.subarray(tagBase(row), tagBase(row) + this.slots))
      hot[h + FAILS] = -1
    }
    const fails = hot[h + FAILS] as number
    let times: ArrayLike<number>
    let tBase: number
    let tagList: ArrayLike<number>
    let gBase: number
    let at: number
    if (fails !== -1) {
      // The same steps as insertSorted, dropBefore and findWindow below, on the times in the row.
      const base = h + FAIL0
      const tags = this.tags
      const g = tagBase(row)
      const t = event.time
      let i = fails
      for (; i > 0 && (hot[base + i - 1] as number) > t; i--) {
        hot[base + i] = hot[base + i - 1] as number
        if (this.tagging) tags[g + i] = tags[g + i - 1] as number
      }
      hot[base + i] = t
      if (this.tagging) tags[g + i] = tag
      let m = fails + 1
      const keepFrom = (hot[base + m - 1] as number) - keepMs - SKEW_MS
      let drop = 0
      while (drop < m && (hot[base + drop] as number) < keepFrom) drop++
      if (drop > 0) {
        for (let j = drop; j < m; j++) hot[base + j - drop] = hot[base + j] as number
        if (this.tagging) for (let j = drop; j < m; j++) tags[g + j - drop] = tags[g + j] as number
        m -= drop
      }
      hot[h + FAILS] = m
      at = i - drop
      for (const w of windows.failures) {
        if (m < w.count) continue
        const k = w.count
        if (w.first) {
          // The first rule: any window of the kept failures (as it always was).
          for (let j = 0; j + k - 1 < m; j++) {
            if ((hot[base + j + k - 1] as number) - (hot[base + j] as number) <= w.periodMs) {
              if ((hot[base + j + k - 1] as number) < trigger) [trigger, rule] = [hot[base + j + k - 1] as number, w.rule]
              break
            }
          }
        } else if (at >= 0) {
          const end = findFailures(hot, base, m, at, k, w.periodMs)
          if (end !== -1 && end < trigger && !this.succeededNear(row, event.time, w.periodMs)) [trigger, rule] = [end, w.rule]
        }
      }
      held = m
      times = hot
      tBase = base
      tagList = tags
      gBase = g
    } else {
      const failures = this.failures[row] as number[]
      const inserted = insertSorted(failures, event.time)
      const newest = failures[failures.length - 1] ?? event.time
      const keepFrom = newest - keepMs - SKEW_MS
      let tags: number[] = IN_ROW
      if (this.tagging) {
        tags = this.failTags[row] as number[]
        tags.splice(inserted, 0, tag)
      }
      const dropped = dropBefore(failures, keepFrom)
      if (dropped > 0 && this.tagging) tags.splice(0, dropped)
      at = inserted - dropped
      for (const w of windows.failures) {
        if (failures.length < w.count) continue
        if (w.first) {
          const start = findWindow(failures, w.count, w.periodMs)
          if (start !== -1 && (failures[start + w.count - 1] as number) < trigger) [trigger, rule] = [failures[start + w.count - 1] as number, w.rule]
        } else if (at >= 0) {
          const end = findFailures(failures, 0, failures.length, at, w.count, w.periodMs)
          if (end !== -1 && end < trigger && !this.succeededNear(row, event.time, w.periodMs)) [trigger, rule] = [end, w.rule]
        }
      }
      held = failures.length
      times = failures
      tBase = 0
      tagList = tags
      gBase = 0
    }
    for (const w of windows.users) {
      // Over the failure times themselves and their tags; the success is looked up only for a window that would block (most failures complete none).
      const end = findUsers(times, tBase, tagList, gBase, held, at, w.count, w.periodMs)
      if (end !== -1 && end < trigger && !this.succeededNear(row, event.time, w.periodMs)) {
        trigger = end
        rule = w.rule
      }
    }
    if (rule === '') {
      return {
        action: 'counted',
        event,
        key,
        // Built only when asked for (--verbose): most lines are counted and most runs do not ask.
        why: this.explain ? `${key}: ${held} of ${first.count} failures within ${minutes(settings.periodMinutes)}` : '',
      }
    }
    // The failures that caused it: those within the blocking window's period up to the one that completed it.
    const period = (windows.failures.find((w) => w.rule === rule) ?? windows.users.find((w) => w.rule === rule))?.periodMs ?? 0
    let caused = 0
    for (let i = 0; i < held; i++) {
      const t = times[tBase + i] as number
      if (t >= trigger - period && t <= trigger) caused++
    }
    return this.startBlock(row, key, trigger, rule, event, caused)
  }

  /**
   * The entries' copy of a user name: one string for a name many entries
   * hold (attackers try the same few names from many addresses), so a new
   * line's name is not a new string kept for the rest of the read.
   */
  private nameOf(user: string): string {
    const known = this.names.get(user)
    if (known !== undefined) return known
    const own = detached(user)
    if (this.names.size >= MAX_NAMES) this.names.clear()
    this.names.set(own, own)
    return own
  }

  /**
   * Whether an address is never blocked, and the entry it counts against
   * (itself, or its IPv6 network: blockKey), worked out once per address.
   */
  private factsOf(ip: string): AddressFacts {
    const id = ipv4Key(ip) ?? ip
    let f = this.facts.get(id)
    if (f === undefined) {
      // canonicalIp's strings hold their own characters (not the line's).
      f = {never: neverBlockReason(ip, this.whitelist), key: blockKey(ip, this.settings.ipv6Prefix ?? 128, this.whitelist), instance: null, row: -1, counted: false}
      this.facts.set(id, f)
    }
    return f
  }
}

/** Applies a batch of events in time order; returns one decision per event. */
export function applyEvents(
  data: StoreData,
  events: SourcedEvent[],
  settings: DecisionSettings,
  whitelist: NetworkList,
  now: number,
): Decision[] {
  const decider = new Decider(data, settings, whitelist, now)
  const decisions = [...events].sort((a, b) => a.time - b.time).map((e) => decider.apply(e))
  decider.flush()
  data.ledger = decider.ledger.save()
  return decisions
}

/** Ends blocks whose time is over; returns the entries whose block ended. */
export function expireBlocks(data: StoreData, now: number): Entry[] {
  const expired: Entry[] = []
  for (const entry of data.entries) {
    if (entry.blockedAt !== null && entry.blockedUntil !== null && entry.blockedUntil <= now) {
      expired.push({...entry})
      entry.lastBlockEnd = entry.blockedUntil
      entry.blockedAt = null
      entry.blockedUntil = null
    }
  }
  return expired
}

/** Returns how many entries were removed or compacted (0: the data is as it was). */
export function pruneEntries(data: StoreData, settings: DecisionSettings, now: number): number {
  let compacted = 0
  // An entry is kept while any window can still need its failures.
  const horizon = now - windowsOf(settings).longestMs - SKEW_MS
  const forget = now - (settings.escalation?.forgetDays ?? 30) * 86_400_000
  const before = data.entries.length
  data.entries = data.entries.filter((e) => {
    if (e.blockedAt !== null || e.lastSeen >= horizon) return true
    // Block history is kept for escalation, until forgetDays after the last block ended.
    if (!(e.blocks > 0 && Math.max(e.lastBlockEnd ?? 0, e.lastSeen) >= forget)) return false
    if (e.failures.length > 0 || e.users.length > 0 || e.lastUser !== '') compacted++
    if (e.failures.length > 0) e.failures = []
    delete e.tried
    if (e.users.length > 0) e.users = []
    e.lastUser = ''
    return true
  })
  return before - data.entries.length + compacted
}

/** Per instance, the addresses whose block is in force, sorted; never-block addresses are left out. */
export function activeBlocks(data: StoreData, whitelist: NetworkList, now: number): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const e of data.entries) {
    if (!isBlockActive(e, now) || neverBlockReason(e.ip, whitelist) !== null) continue
    const list = out.get(e.instance) ?? []
    list.push(e.ip)
    out.set(e.instance, list)
  }
  // Each address parsed once for the sort, not at every comparison.
  for (const [instance, list] of out) out.set(instance, sortIps(list))
  return out
}
