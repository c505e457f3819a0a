/**
 * The unmatched twin lines of the attempt ledger (attempts.ts), kept without
 * an object per line.
 *
 * Every counted F1 and F2 line waits here for its twin until the ledger
 * prunes it, a few thousand lines later: as objects (a record, a list per
 * session) they would outlive the young generation and be copied into the
 * old one, line after line, most of them never matched (an errors log alone
 * has no twins). So the records are rows of column arrays that are reused;
 * per instance, a Map from session to the newest row of that session, and
 * each row links to the session's row before it.
 *
 * Rows keep the order the records came in, which is what save() and the
 * choice between equally close twins depend on.
 */
import type {TwinRecord} from '../store/schema.js'

/** The 5-second bucket of a time: the unit the ledger prunes by. */
export function bucket(time: number, window: number): number {
  return Math.floor(time / window)
}

/** No row. */
const NONE = -1

export class TwinStore {
  private size = 0
  private capacity = 0
  private instance: string[] = []
  private session: string[] = []
  private grammar: ('F1' | 'F2')[] = []
  private time = new Float64Array(0)
  private ip: (string | null)[] = []
  private senders: (string[] | undefined)[] = []
  private counted = new Uint8Array(0)
  /** 0: consumed or pruned. */
  private live = new Uint8Array(0)
  /** The same session's row before this one, or NONE. */
  private prev = new Int32Array(0)
  /** A record read from the store: given back as it was (same object, same key order). */
  private original: (TwinRecord | undefined)[] = []
  /** Per instance, per session, its newest live or consumed row (walk prev from there). */
  private heads = new Map<string, Map<string, number>>()
  private liveCount = 0
  /** The session find looked up last, and its newest row: add after a find that found nothing needs no second look. */
  private lookedInstance: string | undefined
  private lookedSession: string | undefined
  private lookedSessions: Map<string, number> | undefined
  private lookedRow = NONE

  constructor(private readonly window: number) {}

  get count(): number {
    return this.liveCount
  }

  private grow(): void {
    const capacity = Math.max(1024, this.capacity * 2)
    // The columns of strings are as long as the capacity (free rows hold ''/null): rows are written in place.
    this.instance.length = capacity
    this.session.length = capacity
    this.grammar.length = capacity
    this.ip.length = capacity
    this.senders.length = capacity
    this.original.length = capacity
    this.instance.fill('', this.size)
    this.session.fill('', this.size)
    this.grammar.fill('F1', this.size)
    this.ip.fill(null, this.size)
    this.senders.fill(undefined, this.size)
    this.original.fill(undefined, this.size)
    const time = new Float64Array(capacity)
    time.set(this.time)
    this.time = time
    const counted = new Uint8Array(capacity)
    counted.set(this.counted)
    this.counted = counted
    const live = new Uint8Array(capacity)
    live.set(this.live)
    this.live = live
    const prev = new Int32Array(capacity)
    prev.set(this.prev)
    this.prev = prev
    this.capacity = capacity
  }

  /** Adds a record; `original` is the stored object it came from, if any. */
  add(instance: string, session: string, grammar: 'F1' | 'F2', time: number, ip: string | null, senders: string[] | undefined, counted: boolean, original?: TwinRecord): void {
    if (this.size === this.capacity) this.compact(false)
    const row = this.size++
    this.instance[row] = instance
    this.session[row] = session
    this.grammar[row] = grammar
    this.time[row] = time
    this.ip[row] = ip
    this.senders[row] = senders
    this.counted[row] = counted ? 1 : 0
    this.live[row] = 1
    this.original[row] = original
    const looked = this.lookedSessions !== undefined && this.lookedInstance === instance && this.lookedSession === session
    let sessions = looked ? this.lookedSessions : this.heads.get(instance)
    if (sessions === undefined) {
      sessions = new Map()
      this.heads.set(instance, sessions)
    }
    this.prev[row] = looked ? this.lookedRow : (sessions.get(session) ?? NONE)
    sessions.set(session, row)
    this.lookedSessions = undefined
    this.liveCount++
  }

  /**
   * The closest live record of this instance and session, of the other
   * grammar, at most `within` ms away, that `fits`: of two equally close, the
   * one of the earlier bucket, then the one that came first. NONE when there
   * is none.
   */
  find(instance: string, session: string, grammar: string, time: number, within: number, fits: (ip: string | null, senders: readonly string[] | undefined) => boolean): number {
    const sessions = this.heads.get(instance)
    let row = sessions?.get(session) ?? NONE
    this.lookedInstance = instance
    this.lookedSession = session
    this.lookedSessions = sessions
    this.lookedRow = row
    let best = NONE
    let bestGap = Infinity
    let bestBucket = 0
    // Newest first: a row that came earlier wins a tie, so it replaces on equal gap and bucket.
    for (; row !== NONE; row = this.prev[row] as number) {
      if (this.live[row] === 0 || this.grammar[row] === grammar) continue
      const t = this.time[row] as number
      const gap = Math.abs(t - time)
      if (gap > within || gap > bestGap) continue
      const b = bucket(t, this.window)
      if (gap === bestGap && b > bestBucket) continue
      if (!fits(this.ip[row] ?? null, this.senders[row])) continue
      best = row
      bestGap = gap
      bestBucket = b
    }
    return best
  }

  ipOf(row: number): string | null {
    return this.ip[row] ?? null
  }

  grammarOf(row: number): 'F1' | 'F2' {
    return this.grammar[row] as 'F1' | 'F2'
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

  /**
   * Drops, for each instance `horizon` names, every 5-second bucket of a
   * session whose records are all older than the horizon (as the ledger
   * always did: per session and bucket). Only the horizon's own bucket can
   * hold records on both sides of it: its older records stay when a newer
   * one of the same session is there.
   */
  prune(horizon: (instance: string) => number | undefined): void {
    // The sessions whose edge bucket holds a record at or after the horizon.
    const edgeLive = new Map<string, Set<string>>()
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
      set.add(this.session[row] as string)
    }
    for (let row = 0; row < this.size; row++) {
      if (this.live[row] === 0) continue
      const instance = this.instance[row] as string
      const h = horizon(instance)
      const t = this.time[row] as number
      if (h === undefined || t >= h) continue
      if (bucket(t, this.window) === bucket(h, this.window) && edgeLive.get(instance)?.has(this.session[row] as string) === true) continue
      this.live[row] = 0
      this.liveCount--
    }
    this.compact(true)
  }

  /** Moves the live rows together (in order) and links them again; `always`: even when few rows are dead. */
  private compact(always: boolean): void {
    this.lookedSessions = undefined
    if (!always && this.size - this.liveCount < this.size / 4) {
      this.grow()
      return
    }
    let to = 0
    for (let row = 0; row < this.size; row++) {
      if (this.live[row] === 0) continue
      if (to !== row) {
        this.instance[to] = this.instance[row] as string
        this.session[to] = this.session[row] as string
        this.grammar[to] = this.grammar[row] as 'F1' | 'F2'
        this.time[to] = this.time[row] as number
        this.ip[to] = this.ip[row] ?? null
        this.senders[to] = this.senders[row]
        this.counted[to] = this.counted[row] as number
        this.live[to] = 1
        this.original[to] = this.original[row]
      }
      to++
    }
    // Dropped rows let go of their strings.
    this.instance.fill('', to, this.size)
    this.session.fill('', to, this.size)
    this.ip.fill(null, to, this.size)
    this.senders.fill(undefined, to, this.size)
    this.original.fill(undefined, to, this.size)
    this.live.fill(0, to, this.size)
    this.size = to
    this.heads = new Map()
    for (let row = 0; row < to; row++) {
      const instance = this.instance[row] as string
      let sessions = this.heads.get(instance)
      if (sessions === undefined) {
        sessions = new Map()
        this.heads.set(instance, sessions)
      }
      const session = this.session[row] as string
      this.prev[row] = sessions.get(session) ?? NONE
      sessions.set(session, row)
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
      const senders = this.senders[row]
      // The key order the ledger always wrote them in.
      yield senders === undefined
        ? {instance: this.instance[row] as string, session: this.session[row] as string, grammar: this.grammar[row] as 'F1' | 'F2', time: this.time[row] as number, ip: this.ip[row] ?? null, counted: this.counted[row] === 1}
        : {instance: this.instance[row] as string, session: this.session[row] as string, grammar: this.grammar[row] as 'F1' | 'F2', time: this.time[row] as number, ip: this.ip[row] ?? null, senders, counted: this.counted[row] === 1}
    }
  }
}
