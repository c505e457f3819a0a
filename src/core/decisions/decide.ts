/**
 * Decisions: an exact sliding window over the events' own timestamps.
 *
 * An address is blocked when `maxAttempts` counted failures fall within
 * `periodMinutes` of each other (first to last inclusive), whatever order the
 * lines arrived in. The block starts at the failure that completed the window
 * and lasts `blockMinutes` (0: until deleted). Failures that led to a block are
 * forgotten, so after it ends a fresh burst is needed to block again.
 */
import {blockKey, ipv4Key, isLoopback, overlapsLoopback, sortIps, type NetworkList} from '../net/ip.js'
import type {LoginEvent} from '../parser/types.js'
import type {Entry, StoreData} from '../store/schema.js'
import {AttemptLedger, detached, SKEW_MS} from './attempts.js'
import {cutUser, MAX_USERS} from '../store/bounds.js'

export interface DecisionSettings {
  /** The instances and their logs (the attempt ledger drops sooner what a single log cannot need). */
  instances?: readonly {name: string; logs: readonly {path: string}[]}[]
  maxAttempts: number
  periodMinutes: number
  blockMinutes: number
  /** A successful login from an address clears its failures (off by default: 2FA plugins log success before the second factor). */
  resetOnSuccess?: boolean
  /** Repeat offenders: longer blocks each time (absent: every block lasts blockMinutes). */
  escalation?: {factor: number; maxMinutes: number; forgetDays: number}
  /** firewall.ipv6Prefix: IPv6 failures count against the network of this prefix (absent, 128: per address). */
  ipv6Prefix?: number
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

function minutes(n: number): string {
  return `${n} min`
}

/** Index of the first window of k failures within periodMs in sorted times, or -1. */
function findWindow(times: number[], k: number, periodMs: number): number {
  for (let i = 0; i + k - 1 < times.length; i++) {
    if ((times[i + k - 1] ?? 0) - (times[i] ?? 0) <= periodMs) return i
  }
  return -1
}

function insertSorted(times: number[], t: number): void {
  let i = times.length
  while (i > 0 && (times[i - 1] ?? 0) > t) i--
  if (i === times.length) times.push(t)
  else times.splice(i, 0, t)
}

/** Drops the times before `from` at the start of a sorted list, in place (see placeLast). */
function dropBefore(times: number[], from: number): void {
  let k = 0
  while (k < times.length && (times[k] as number) < from) k++
  if (k === 0) return
  for (let i = k; i < times.length; i++) times[i - k] = times[i] as number
  times.length -= k
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
  /** The entry it counted against last, and on which instance (entries stay in byKey once made). */
  instance: string | null
  state: EntryState | null
  /** A failure from it reached the windows (counted, not a duplicate): see countedAddresses. */
  counted: boolean
}

/**
 * An entry, with a cheap signature of each of its user names (in the order
 * of entry.users): a new line's name is compared with the names only where
 * the signatures agree, instead of with all ten, each a string elsewhere in
 * memory.
 */
interface EntryState {
  entry: Entry
  sigs: number[]
}

/** Length, first and last character of a user name (a small integer): equal names have equal signatures. */
function userSig(user: string): number {
  return user.length === 0 ? 0 : ((user.length & 0x3ff) << 20) | ((user.charCodeAt(0) ^ (user.charCodeAt(user.length - 1) << 4)) & 0xfffff)
}

/**
 * A list of at most MAX_USERS names after a line's name: without the one at
 * `seen` (-1: none), with `value` last, the first one dropped when it would
 * hold more (as splice, push and shift would leave it), in place: shift and
 * splice trim an array's storage in V8, and the next push allocates it anew.
 */
function placeLast<T>(list: T[], seen: number, value: T): void {
  if (seen === -1 && list.length < MAX_USERS) {
    list.push(value)
    return
  }
  for (let i = seen === -1 ? 0 : seen; i < list.length - 1; i++) list[i] = list[i + 1] as T
  list[list.length - 1] = value
}

function stateOf(entry: Entry): EntryState {
  return {entry, sigs: entry.users.map(userSig)}
}

export class Decider {
  private readonly periodMs: number
  /** The entries, by instance then key: one lookup per failure, no key text built. */
  private readonly byKey = new Map<string, Map<string, EntryState>>()
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

  constructor(
    private readonly data: StoreData,
    private readonly settings: DecisionSettings,
    private readonly whitelist: NetworkList,
    private readonly now: number,
    /** Write the `why` of counted lines (for --verbose). */
    private readonly explain = true,
  ) {
    this.periodMs = settings.periodMinutes * 60_000
    const oneLog = (settings.instances ?? []).filter((i) => i.logs.length === 1 && !/[*?[\]{}]/.test(i.logs[0]?.path ?? '*')).map((i) => i.name)
    this.ledger = new AttemptLedger(data.ledger, new Set(oneLog))
  }

  /** The entries by instance and key, made at the first event (a run that reads no new line needs none). */
  private index(): void {
    if (this.indexed) return
    this.indexed = true
    for (const e of this.data.entries) this.entriesOf(e.instance).set(e.ip, stateOf(e))
  }

  private entriesOf(instance: string): Map<string, EntryState> {
    let m = this.byKey.get(instance)
    if (m === undefined) {
      m = new Map()
      this.byKey.set(instance, m)
    }
    return m
  }

  apply(event: SourcedEvent): Decision {
    const {settings, periodMs} = this
    this.index()
    if (event.outcome === 'success' && settings.resetOnSuccess === true && event.ip !== null && event.doubt === undefined) {
      const entry = this.byKey.get(event.instance)?.get(this.factsOf(event.ip).key)?.entry
      const earlier = entry?.failures.filter((t) => t <= event.time).length ?? 0
      if (entry !== undefined && earlier > 0 && !isBlockActive(entry, event.time)) {
        entry.failures = entry.failures.filter((t) => t > event.time)
        return {action: 'reset', event, why: `${entry.ip}: successful login, ${earlier} earlier failure(s) forgotten (resetOnSuccess)`}
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
    let state = facts.instance === event.instance ? facts.state : null
    if (state === null) {
      const entries = this.entriesOf(event.instance)
      state = entries.get(key) ?? null
      if (state === null) {
        const made = newEntry(key, event.instance, event.time, this.nameOf(name))
        state = {entry: made, sigs: []}
        entries.set(key, state)
        this.data.entries.push(made)
      }
      facts.instance = event.instance
      facts.state = state
    }
    const entry = state.entry
    entry.attempts++
    entry.firstSeen = Math.min(entry.firstSeen, event.time)
    const users = entry.users
    // users.indexOf(name), looking at a name only where the signature agrees.
    if (state.sigs.length !== users.length) state.sigs = users.map(userSig)
    const sigs = state.sigs
    const sig = userSig(name)
    let seen = -1
    for (let i = 0; i < sigs.length; i++) {
      if (sigs[i] === sig && users[i] === name) {
        seen = i
        break
      }
    }
    // The entry keeps its own copy of a name (not the log line it was cut from), once.
    const user = seen !== -1 ? (users[seen] as string) : name === entry.lastUser ? entry.lastUser : this.nameOf(name)
    if (event.time >= entry.lastSeen) {
      entry.lastSeen = event.time
      entry.lastUser = user
    }
    if (users.length <= MAX_USERS) {
      placeLast(users, seen, user)
      placeLast(sigs, seen, sig)
    } else {
      // More names than are kept (a database written otherwise): as always, one name goes per line.
      if (seen !== -1) {
        users.splice(seen, 1)
        sigs.splice(seen, 1)
      }
      users.push(user)
      sigs.push(sig)
      users.shift()
      sigs.shift()
    }
    if (entry.blockedAt !== null && (entry.blockedUntil === null || entry.blockedUntil > event.time)) {
      return {action: 'already-blocked', event, key, why: `${key} is already blocked`}
    }
    insertSorted(entry.failures, event.time)
    const newest = entry.failures[entry.failures.length - 1] ?? event.time
    const keepFrom = newest - periodMs - SKEW_MS
    dropBefore(entry.failures, keepFrom)
    const start = findWindow(entry.failures, settings.maxAttempts, periodMs)
    if (start === -1) {
      return {
        action: 'counted',
        event,
        key,
        // Built only when asked for (--verbose): most lines are counted and most runs do not ask.
        why: this.explain ? `${key}: ${entry.failures.length} of ${settings.maxAttempts} failures within ${minutes(settings.periodMinutes)}` : '',
      }
    }
    const trigger = entry.failures[start + settings.maxAttempts - 1] ?? event.time
    const lengthMin = blockLength(settings, entry.blocks)
    entry.blockedAt = trigger
    entry.blockedUntil = lengthMin === 0 ? null : trigger + lengthMin * 60_000
    const repeat = entry.blocks > 0 && lengthMin !== settings.blockMinutes ? ` (block ${entry.blocks + 1} of this address: escalated)` : ''
    entry.blocks++
    entry.failures = []
    const length = lengthMin === 0 ? 'until deleted' : `for ${minutes(lengthMin)}${repeat}`
    const stale = entry.blockedUntil !== null && entry.blockedUntil <= this.now ? ' (already over: the lines are old)' : ''
    return {
      action: 'blocked',
      event,
      key,
      why: `${key}: ${settings.maxAttempts} failures within ${minutes(settings.periodMinutes)}: blocked ${length}${stale}`,
      blockedAt: trigger,
      blockedUntil: entry.blockedUntil,
    }
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
      f = {never: neverBlockReason(ip, this.whitelist), key: blockKey(ip, this.settings.ipv6Prefix ?? 128, this.whitelist), instance: null, state: null, counted: false}
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
  const horizon = now - settings.periodMinutes * 60_000 - SKEW_MS
  const forget = now - (settings.escalation?.forgetDays ?? 30) * 86_400_000
  const before = data.entries.length
  data.entries = data.entries.filter((e) => {
    if (e.blockedAt !== null || e.lastSeen >= horizon) return true
    // Block history is kept for escalation, until forgetDays after the last block ended.
    if (!(e.blocks > 0 && Math.max(e.lastBlockEnd ?? 0, e.lastSeen) >= forget)) return false
    if (e.failures.length > 0 || e.users.length > 0 || e.lastUser !== '') compacted++
    if (e.failures.length > 0) e.failures = []
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
