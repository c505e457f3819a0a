/**
 * npm run bench, part: the cost of the windows beside the first rule.
 * Prints figures, asserts nothing.
 *
 * BENCH_WINDOW_ADDRESSES addresses (default 100,000) each fail
 * BENCH_WINDOW_FAILURES times (default 4) within an hour, trying two user
 * names (BENCH_WINDOW_NAMES=1: one), the lines of all addresses interleaved in time order (a wide, slow
 * attack: what the windows are for, and the worst case for their memory).
 * The lines are plugin lines (F4), which wait for no twin: what is timed is
 * the decisions, not the attempt ledger.
 * The same events go through the Decider with, side by side in one run:
 *   (1) the first rule alone (`windows: []`), the anchor;
 *   (w) the default windows (24 failures and 5 user names within 60 min);
 *   (n) the default windows and networkBlock (/24, 10 addresses in 60 min)
 *       as the pipeline runs it: the addresses are 391 swarms of /24s, so
 *       each /24 is blocked at its tenth address and the failures from inside
 *       it count against it from then on.
 * Each is run in a child process of its own (--expose-gc), BENCH_WINDOW_RUNS
 * times (default 5) alternating, and reported as the median time per event
 * (the decisions), the time per entry of writing the rows back into the
 * entries (flush), the heap per entry after the run (garbage collected, the
 * decider's rows still held), and the bytes per entry of the database file.
 */
import {spawnSync} from 'node:child_process'
import {fileURLToPath} from 'node:url'
import {Decider, type DecisionSettings, type SourcedEvent} from '../src/core/decisions/decide.js'
import {DEFAULT_WINDOWS} from '../src/core/decisions/windows.js'
import {NetworkWatch} from '../src/core/decisions/networks.js'
import {NetworkList} from '../src/core/net/ip.js'
import {emptyData} from '../src/core/store/schema.js'
import {encodeEntry} from '../src/core/store/codec.js'

const SELF = fileURLToPath(import.meta.url)
const N = Number(process.env.BENCH_WINDOW_ADDRESSES ?? 100_000)
const K = Number(process.env.BENCH_WINDOW_FAILURES ?? 4)
const RUNS = Number(process.env.BENCH_WINDOW_RUNS ?? 5)
/** User names per address: 2 (default, the user window's worst case here) or 1 (a bot on one name). */
const NAMES = Number(process.env.BENCH_WINDOW_NAMES ?? 2)
const T0 = Date.UTC(2026, 11, 1, 8, 0, 0)
type Mode = '1' | 'w' | 'n'

function events(): SourcedEvent[] {
  const out: SourcedEvent[] = []
  // Round k: every address once, in order; the rounds 15 minutes apart, so no address reaches 6 in 10 minutes.
  for (let k = 0; k < K; k++) {
    for (let i = 0; i < N; i++) {
      const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
      const time = T0 + k * 15 * 60_000 + Math.floor((i / N) * 10 * 60_000)
      // The name as the parser gives it: a piece of the line's text (not a string built for it).
      const line = `Failed login for user${NAMES === 1 || (i + k) % 2 === 0 ? i % 997 : (i * 7) % 1009}@example.com from ${ip}`
      const user = line.slice(17, line.indexOf(' from '))
      out.push({grammar: 'F4', outcome: 'failure', time, ip, user, session: null, errorCode: 0, counted: true, reason: '', instance: 'master', file: 'f', lineNo: out.length})
    }
  }
  return out
}

function child(mode: Mode): void {
  const evs = events()
  const gc = (globalThis as {gc?: () => void}).gc ?? (() => undefined)
  gc()
  const before = process.memoryUsage().heapUsed
  const data = emptyData()
  // One log (userlogins): its F2 lines wait for no twin in another log, as in a real run.
  const settings: DecisionSettings = {instances: [{name: 'master', logs: [{path: '/var/log/roundcube/userlogins.log'}]}], maxAttempts: 6, periodMinutes: 10, blockMinutes: 60, windows: mode === '1' ? [] : DEFAULT_WINDOWS}
  const decider = new Decider(data, settings, new NetworkList([]), T0 + 3_600_000, false)
  const watch = mode === 'n' ? new NetworkWatch([], {ipv4Prefix: 24, ipv6Prefix: 48, minAddresses: 10, periodMinutes: 60}, () => null) : null
  let blocked = 0
  const start = process.hrtime.bigint()
  for (const e of evs) {
    const d = decider.apply(e)
    if (d.action === 'blocked') blocked++
    // As the pipeline does: a hit blocks the network, and failures from inside it count against it, not for it.
    if (watch !== null && d.key !== undefined && d.inside !== true && (d.action === 'counted' || d.action === 'blocked' || d.action === 'already-blocked')) {
      const hit = watch.add(e.instance, d.key, e.time)
      if (hit !== null) {
        if (decider.blockEntry(hit.instance, hit.network, hit.at, 'network:10/60', e).action === 'blocked') blocked++
        watch.clear(hit.instance, hit.network)
      }
    }
  }
  const applied = process.hrtime.bigint()
  decider.flush()
  const ns = Number(applied - start) / evs.length
  const flushNs = Number(process.hrtime.bigint() - applied) / Math.max(1, data.entries.length)
  gc()
  // The events are still held (evs is used below): the heap grown is what the entries and the decider keep.
  const heap = process.memoryUsage().heapUsed - before
  let bytes = 0
  for (const e of data.entries) bytes += encodeEntry(e).length + 2
  process.stdout.write(JSON.stringify({ns, flushNs, heapPerEntry: heap / data.entries.length, filePerEntry: bytes / data.entries.length, entries: data.entries.length, blocked, events: evs.length, keep: watch === null ? 0 : 1}))
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? Number.NaN
}

if (process.argv[2] === '--child') child(process.argv[3] as Mode)
else {
  const modes: Mode[] = ['1', 'w', 'n']
  const got = new Map<Mode, {ns: number; flushNs: number; heapPerEntry: number; filePerEntry: number; entries: number; blocked: number; events: number}[]>(modes.map((m) => [m, []]))
  for (let r = 0; r < RUNS; r++) {
    for (const m of modes) {
      const p = spawnSync(process.execPath, ['--expose-gc', '--max-old-space-size=4096', '--import', 'tsx', SELF, '--child', m], {encoding: 'utf8', maxBuffer: 1 << 20})
      if (p.status !== 0) throw new Error(`bench child ${m} failed: ${p.stderr}`)
      got.get(m)?.push(JSON.parse(p.stdout))
    }
  }
  const name: Record<Mode, string> = {'1': 'first rule alone (anchor)', w: 'default windows', n: 'default windows + networkBlock'}
  const base = got.get('1') ?? []
  const anchor = {ns: median(base.map((x) => x.ns)), flush: median(base.map((x) => x.flushNs)), heap: median(base.map((x) => x.heapPerEntry)), file: median(base.map((x) => x.filePerEntry))}
  console.log(`windows: ${N} addresses x ${K} failures, ${NAMES} user name(s) each (${(N * K).toLocaleString('en')} events), median of ${RUNS} runs each, alternating`)
  for (const m of modes) {
    const xs = got.get(m) ?? []
    const ns = median(xs.map((x) => x.ns))
    const flush = median(xs.map((x) => x.flushNs))
    const heap = median(xs.map((x) => x.heapPerEntry))
    const file = median(xs.map((x) => x.filePerEntry))
    const pct = (v: number, a: number): string => (m === '1' ? '' : ` (${v >= a ? '+' : ''}${(((v - a) / a) * 100).toFixed(0)}%)`)
    console.log(
      `  ${name[m].padEnd(32)} ${ns.toFixed(0).padStart(5)} ns/event${pct(ns, anchor.ns)}  flush ${flush.toFixed(0)} ns/entry${pct(flush, anchor.flush)}  heap ${heap.toFixed(0)} B/entry${pct(heap, anchor.heap)}  file ${file.toFixed(0)} B/entry${pct(file, anchor.file)}  entries ${xs[0]?.entries}  blocked ${xs[0]?.blocked}`,
    )
  }
}
