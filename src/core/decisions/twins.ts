/**
 * The unmatched twin lines of the attempt ledger (attempts.ts), kept without
 * an object per line.
 *
 * Every counted F1 and F2 line waits here for its twin until the ledger
 * prunes it, a few thousand lines later. Kept as objects (a record, a list
 * per session, the line's session and address strings) they would outlive
 * the young generation line after line, and be copied into the old one; an
 * errors log alone has no twins at all. So a record is a row of typed
 * column arrays that are reused: its session packed into a number (session
 * prefixes are up to 8 of 64 characters in practice; longer ones are kept as
 * text), its address as a number when it is plain IPv4 (as text otherwise).
 * Per instance, a hash table from session to the session's newest row; each
 * row links to the session's row before it.
 *
 * Rows keep the order the records came in: save() and the choice between
 * equally close twins depend on it.
 */
import {ipv4Key} from '../net/ip.js'
import type {TwinRecord} from '../store/schema.js'

/** The 5-second bucket of a time: the unit the ledger prunes by. */
export function bucket(time: number, window: number): number {
  return Math.floor(time / window)
}

/** No row. */
const NONE = -1
const NO_SENDERS: readonly string[] = []

/** [A-Za-z0-9,-]: the characters of a session prefix, as 1 to 64. */
function sessionDigit(c: number): number {
  if (c >= 97 && c <= 122) return c - 96
  if (c >= 65 && c <= 90) return c - 38
  if (c >= 48 && c <= 57) return c + 5
  if (c === 44) return 63
  if (c === 45) return 64
  return 0
}

/** A session of up to 8 such characters as a number (base 65, 0 for the empty one), or -1. */
export function packSession(s: string): number {
  if (s.length > 8) return -1
  let v = 0
  for (let i = s.length - 1; i >= 0; i--) {
    const d = sessionDigit(s.charCodeAt(i))
    if (d === 0) return -1
    v = v * 65 + d
  }
  return v
}

const SESSION_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789,-'

function unpackSession(v: number): string {
  let s = ''
  for (let x = v; x > 0; x = Math.floor(x / 65)) s += SESSION_CHARS[(x % 65) - 1]
  return s
}

function ipv4Text(v: number): string {
  const u = v >>> 0
  return `${u >>> 24}.${(u >>> 16) & 255}.${(u >>> 8) & 255}.${u & 255}`
}

/** An open-addressing table from packed sessions to rows: no object per entry. */
class SessionTable {
  private keys: Float64Array
  private rows: Int32Array
  private used = 0

  /** Room for `expected` sessions without growing. */
  constructor(expected = 8) {
    let size = 16
    while (size < expected * 2) size *= 2
    this.keys = new Float64Array(size).fill(-1)
    this.rows = new Int32Array(size)
  }

  private slotOf(key: number): number {
    const mask = this.keys.length - 1
    const lo = key >>> 0
    const hi = Math.floor(key / 4_294_967_296) >>> 0
    let slot = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b) & mask
    while (this.keys[slot] !== -1 && this.keys[slot] !== key) slot = (slot + 1) & mask
    return slot
  }

  get(key: number): number {
    const slot = this.slotOf(key)
    return this.keys[slot] === key ? (this.rows[slot] as number) : NONE
  }

  set(key: number, row: number): void {
    const slot = this.slotOf(key)
    if (this.keys[slot] !== key) {
      this.keys[slot] = key
      this.used++
    }
    this.rows[slot] = row
    if (this.used * 2 > this.keys.length) this.grow()
  }

  private grow(): void {
    const keys = this.keys
    const rows = this.rows
    this.keys = new Float64Array(keys.length * 2).fill(-1)
    this.rows = new Int32Array(keys.length * 2)
    this.used = 0
    for (let i = 0; i < keys.length; i++) if (keys[i] !== -1) this.set(keys[i] as number, rows[i] as number)
  }
}

/** Per instance: newest row per session (packed, or as text when it does not pack). */
interface Heads {
  packed: SessionTable
  text: Map<string, number>
}

/** How a row's address is kept. */
const IP_NONE = 0
const IP_V4 = 1
const IP_TEXT = 2

export class TwinStore {
  private size = 0
  private capacity = 0
  private instance: string[] = []
  /** Packed session, or -1 (then in sessionText). */
  private session = new Float64Array(0)
  private sessionText: (string | undefined)[] = []
  /** 1: F1, 2: F2. */
  private grammar = new Uint8Array(0)
  private time = new Float64Array(0)
  private ipKind = new Uint8Array(0)
  private ipV4 = new Int32Array(0)
  private ipText: (string | undefined)[] = []
  private senders: (string[] | undefined)[] = []
  private counted = new Uint8Array(0)
  /** 0: consumed or pruned. */
  private live = new Uint8Array(0)
  /** The same session's row before this one, or NONE. */
  private prev = new Int32Array(0)
  /** A record read from the store: given back as it was (same object, same key order). */
  private original: (TwinRecord | undefined)[] = []
  private heads = new Map<string, Heads>()
  private liveCount = 0
  /** What find looked up last: add after a find that found nothing needs no second look. */
  private lookedHeads: Heads | undefined
  private lookedInstance = ''
  private lookedSession = ''
  private lookedRow = NONE
  private lookedPacked = -1
  /** The address find was asked about last, and its ipv4Key. */
  private lookedIp: string | null = null
  private lookedV4: number | null = null

  constructor(private readonly window: number) {}

  get count(): number {
    return this.liveCount
  }

  private grow(): void {
    const capacity = Math.max(1024, this.capacity * 2)
    const wider = <T extends Float64Array | Int32Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const b = make(capacity)
      b.set(a)
      return b
    }
    this.session = wider(this.session, (n) => new Float64Array(n))
    this.grammar = wider(this.grammar, (n) => new Uint8Array(n))
    this.time = wider(this.time, (n) => new Float64Array(n))
    this.ipKind = wider(this.ipKind, (n) => new Uint8Array(n))
    this.ipV4 = wider(this.ipV4, (n) => new Int32Array(n))
    this.counted = wider(this.counted, (n) => new Uint8Array(n))
    this.live = wider(this.live, (n) => new Uint8Array(n))
    this.prev = wider(this.prev, (n) => new Int32Array(n))
    // Columns of objects are as long as the capacity (free rows hold nothing): rows are written in place.
    for (const column of [this.instance, this.sessionText, this.ipText, this.senders, this.original] as unknown[][]) {
      column.length = capacity
      column.fill(undefined, this.size)
    }
    this.instance.fill('', this.size)
    this.capacity = capacity
  }

  private headsOf(instance: string, expected?: number): Heads {
    let h = this.heads.get(instance)
    if (h === undefined) {
      h = {packed: new SessionTable(expected), text: new Map()}
      this.heads.set(instance, h)
    }
    return h
  }

  /** Adds a record; `original` is the stored object it came from, if any. */
  add(instance: string, session: string, grammar: 'F1' | 'F2', time: number, ip: string | null, senders: string[] | undefined, counted: boolean, original?: TwinRecord): void {
    if (this.size === this.capacity) this.compact(false)
    const row = this.size++
    const looked = this.lookedHeads !== undefined && this.lookedInstance === instance && this.lookedSession === session
    const packed = looked ? this.lookedPacked : packSession(session)
    this.instance[row] = instance
    this.session[row] = packed
    this.sessionText[row] = packed === -1 ? session : undefined
    this.grammar[row] = grammar === 'F1' ? 1 : 2
    this.time[row] = time
    const v4 = ip === null ? null : ip === this.lookedIp ? this.lookedV4 : ipv4Key(ip)
    this.ipKind[row] = ip === null ? IP_NONE : v4 !== null ? IP_V4 : IP_TEXT
    this.ipV4[row] = v4 ?? 0
    this.ipText[row] = ip !== null && v4 === null ? ip : undefined
    this.senders[row] = senders
    this.counted[row] = counted ? 1 : 0
    this.live[row] = 1
    this.original[row] = original
    const heads = looked ? (this.lookedHeads as Heads) : this.headsOf(instance)
    this.prev[row] = looked ? this.lookedRow : this.headOf(heads, session, packed)
    if (packed === -1) heads.text.set(session, row)
    else heads.packed.set(packed, row)
    this.lookedHeads = undefined
    this.liveCount++
  }

  private headOf(heads: Heads, session: string, packed: number): number {
    return packed === -1 ? (heads.text.get(session) ?? NONE) : heads.packed.get(packed)
  }

  /** The row's address as text. */
  ipOf(row: number): string | null {
    const kind = this.ipKind[row]
    return kind === IP_NONE ? null : kind === IP_V4 ? ipv4Text(this.ipV4[row] as number) : (this.ipText[row] ?? null)
  }

  /** Whether the row's address is `ip` (given with ipv4Key(ip) worked out once). */
  private ipIs(row: number, ip: string, v4: number | null): boolean {
    const kind = this.ipKind[row]
    if (kind === IP_V4) return v4 !== null && this.ipV4[row] === v4
    return kind === IP_TEXT && this.ipText[row] === ip
  }

  /**
   * The closest live record of this instance and session, of the other
   * grammar, at most `within` ms away, that fits: for a line counted against
   * `ip` (with ipv4Key(ip) as `v4`), a record of that address or an
   * ambiguous one naming it; for an ambiguous line (`ip` null), a record of
   * one of its `senders`. Of two equally close, the one of the earlier
   * bucket, then the one that came first. NONE when there is none.
   */
  private find(instance: string, session: string, grammar: 'F1' | 'F2', time: number, within: number, ip: string | null, v4: number | null, senders: readonly string[]): number {
    const heads = this.heads.get(instance)
    const packed = packSession(session)
    let row = heads === undefined ? NONE : this.headOf(heads, session, packed)
    this.lookedHeads = heads
    this.lookedInstance = instance
    this.lookedSession = session
    this.lookedRow = row
    this.lookedPacked = packed
    this.lookedIp = ip
    this.lookedV4 = v4
    const other = grammar === 'F1' ? 2 : 1
    let best = NONE
    let bestGap = Infinity
    let bestBucket = 0
    // Newest first: a row that came earlier wins a tie, so it replaces on equal gap and bucket.
    for (; row !== NONE; row = this.prev[row] as number) {
      if (this.live[row] === 0 || this.grammar[row] !== other) continue
      const t = this.time[row] as number
      const gap = Math.abs(t - time)
      if (gap > within || gap > bestGap) continue
      const b = bucket(t, this.window)
      if (gap === bestGap && b > bestBucket) continue
      if (ip !== null) {
        if (!this.ipIs(row, ip, v4) && !(this.ipKind[row] === IP_NONE && (this.senders[row] ?? []).includes(ip))) continue
      } else {
        const rowIp = this.ipOf(row)
        if (rowIp === null || !senders.includes(rowIp)) continue
      }
      best = row
      bestGap = gap
      bestBucket = b
    }
    return best
  }

  /** The twin of a line counted against `ip`: a record of that address, or an ambiguous one naming it. */
  findFor(instance: string, session: string, grammar: 'F1' | 'F2', time: number, within: number, ip: string): number {
    return this.find(instance, session, grammar, time, within, ip, ipv4Key(ip), NO_SENDERS)
  }

  /** The twin of an ambiguous line: a record of one of its senders. */
  findForSenders(instance: string, session: string, grammar: 'F1' | 'F2', time: number, within: number, senders: readonly string[]): number {
    return this.find(instance, session, grammar, time, within, null, null, senders)
  }

  grammarOf(row: number): 'F1' | 'F2' {
    return this.grammar[row] === 1 ? 'F1' : 'F2'
  }

  countedOf(row: number): boolean {
    return this.counted[row] === 1
  }

  /** Takes a record out (its twin came). */
  consume(row: number): void {
    if (this.live[row] === 0) return
    this.live[row] = 0
    this.liveCount--
  }

  /** The row's session (for grouping). */
  private sessionKey(row: number): string | number {
    const packed = this.session[row] as number
    return packed === -1 ? (this.sessionText[row] as string) : packed
  }

  /**
   * Drops, for each instance `horizon` names, every 5-second bucket of a
   * session whose records are all older than the horizon (as the ledger
   * always did: per session and bucket). Only the horizon's own bucket can
   * hold records on both sides of it: its older records stay when a newer
   * one of the same session is there.
   */
  prune(horizonOf: (instance: string) => number | undefined): void {
    // Asked once per instance, not per row (twice per row, every few thousand lines).
    let askedFor: string | undefined
    let answer: number | undefined
    const horizon = (instance: string): number | undefined => {
      if (instance !== askedFor) {
        askedFor = instance
        answer = horizonOf(instance)
      }
      return answer
    }
    const edgeLive = new Map<string, Set<string | number>>()
    for (let row = 0; row < this.size; row++) {
      if (this.live[row] === 0) continue
      const instance = this.instance[row] as string
      const h = horizon(instance)
      const t = this.time[row] as number
      if (h === undefined || t < h || bucket(t, this.window) !== bucket(h, this.window)) continue
      let set = edgeLive.get(instance)
      if (set === undefined) {
        set = new Set()
        edgeLive.set(instance, set)
      }
      set.add(this.sessionKey(row))
    }
    for (let row = 0; row < this.size; row++) {
      if (this.live[row] === 0) continue
      const instance = this.instance[row] as string
      const h = horizon(instance)
      const t = this.time[row] as number
      if (h === undefined || t >= h) continue
      if (bucket(t, this.window) === bucket(h, this.window) && edgeLive.get(instance)?.has(this.sessionKey(row)) === true) continue
      this.live[row] = 0
      this.liveCount--
    }
    this.compact(true)
  }

  /** Moves the live rows together (in order) and links them again; `always`: even when few rows are dead. */
  private compact(always: boolean): void {
    this.lookedHeads = undefined
    if (!always && this.size - this.liveCount < this.size / 4) {
      this.grow()
      return
    }
    let to = 0
    for (let row = 0; row < this.size; row++) {
      if (this.live[row] === 0) continue
      if (to !== row) {
        this.instance[to] = this.instance[row] as string
        this.session[to] = this.session[row] as number
        this.sessionText[to] = this.sessionText[row]
        this.grammar[to] = this.grammar[row] as number
        this.time[to] = this.time[row] as number
        this.ipKind[to] = this.ipKind[row] as number
        this.ipV4[to] = this.ipV4[row] as number
        this.ipText[to] = this.ipText[row]
        this.senders[to] = this.senders[row]
        this.counted[to] = this.counted[row] as number
        this.live[to] = 1
        this.original[to] = this.original[row]
      }
      to++
    }
    // Dropped rows let go of their objects.
    this.instance.fill('', to, this.size)
    this.sessionText.fill(undefined, to, this.size)
    this.ipText.fill(undefined, to, this.size)
    this.senders.fill(undefined, to, this.size)
    this.original.fill(undefined, to, this.size)
    this.live.fill(0, to, this.size)
    this.size = to
    this.heads = new Map()
    for (let row = 0; row < to; row++) {
      // Room for the rows until the next prune as well: a table that grows rehashes all it holds.
      const heads = this.headsOf(this.instance[row] as string, this.capacity)
      const packed = this.session[row] as number
      const text = this.sessionText[row] as string
      this.prev[row] = this.headOf(heads, text, packed)
      if (packed === -1) heads.text.set(text, row)
      else heads.packed.set(packed, row)
    }
    if (this.size === this.capacity) this.grow()
  }

  /** The live records, in the order they came, as stored records. */
  *records(): Generator<TwinRecord> {
    for (let row = 0; row < this.size; row++) {
      if (this.live[row] === 0) continue
      const original = this.original[row]
      if (original !== undefined) {
        yield original
        continue
      }
      const instance = this.instance[row] as string
      const packed = this.session[row] as number
      const session = packed === -1 ? (this.sessionText[row] as string) : unpackSession(packed)
      const grammar = this.grammarOf(row)
      const time = this.time[row] as number
      const ip = this.ipOf(row)
      const counted = this.counted[row] === 1
      const senders = this.senders[row]
      // The key order the ledger always wrote them in.
      yield senders === undefined ? {instance, session, grammar, time, ip, counted} : {instance, session, grammar, time, ip, senders, counted}
    }
  }
}
