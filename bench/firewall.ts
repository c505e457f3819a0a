/**
 * npm run bench, part 3: firewall backends against the real kernel. Prints
 * figures, asserts nothing.
 *
 * For iptables, ipset and nftables (BENCH_FW_BACKENDS, a comma-separated
 * choice of them), and N blocked addresses (BENCH_FW_SIZES,
 * default 1000,10000,100000; 80% IPv4 from 198.18.0.0/15, 20% IPv6 /128 from
 * 2001:db8::/32, all distinct, one instance `master` on ports 80 and 443):
 *   (1) apply from empty,
 *   (2) apply again with no change (which must report changed: false); for
 *       nftables this is the check cache's path (generation unchanged: the
 *       elements are not listed), so
 *   (2b) the same once more after deleting the check cache, which lists and
 *       compares every element, is shown beside it,
 *   (3) apply after 1% of the addresses were replaced (a busy minute),
 * each the median of BENCH_FW_RUNS (3) runs, every run in a fresh network
 * namespace (`ip netns add`, deleted afterwards even on failure): the
 * host's rules are never touched. The timed code runs inside the namespace,
 * in a child (`ip netns exec NS node --import tsx bench/firewall.ts --child
 * BACKEND N`) that prints one JSON line with its figures, the time spent in
 * each external command, and the live element counts read back afterwards.
 * A child gets BENCH_FW_TIMEOUT seconds (300); one that runs out is shown as
 * "timed out", and larger sizes of that backend are not tried.
 *
 * Needs root (network namespaces); without it, prints why it skipped and
 * exits 0.
 */
import {execFileSync, spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

const ROOT = resolve(import.meta.dirname, '..')
const SELF = fileURLToPath(import.meta.url)
const BACKENDS = ['iptables', 'ipset', 'nftables'] as const
type Backend = (typeof BACKENDS)[number]

/** Time and bytes spent in one external command (iptables-save, ipset save, nft -j list ..., nft -f ...) during one apply. */
interface CommandCost {
  calls: number
  ms: number
  inBytes: number
  outBytes: number
}

interface Phase {
  ms: number
  changed: boolean
  /** Wall time per external command, keyed like "iptables-save", "ipset restore" or "nft -f". */
  commands: Record<string, CommandCost>
}

interface ChildReport {
  backend: Backend
  n: number
  v4: number
  v6: number
  empty: Phase
  same: Phase
  /** No change, with the check cache deleted first: every element listed and compared. */
  listed: Phase
  change: Phase
  /** Live elements read back after the 1% change: rules, set members or set elements, per family. */
  live: {v4: number; v6: number}
}

// ---------------------------------------------------------------- the child

/** N distinct addresses: 80% IPv4 in 198.18.0.0/15 (scattered by an odd stride), 20% IPv6 /128 in 2001:db8::/32. */
function addresses(v4Count: number, v6Count: number): {v4: string[]; v6: string[]} {
  const v4: string[] = []
  // 198.18.0.0/15 holds 131,072 addresses; 7919 is odd, so i*7919 mod 2^17 never repeats.
  for (let i = 0; i < v4Count; i++) {
    const k = (i * 7919) % 131_072
    v4.push(`198.${18 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}`)
  }
  const v6: string[] = []
  const hex = (x: number) => x.toString(16)
  for (let i = 0; i < v6Count; i++) {
    // Distinct through i itself (last two groups); the third and fourth spread them over 2001:db8::/32.
    // No group is 0, so the text is canonical (RFC 5952) as ipset and nft print it back.
    const a = Math.imul(i + 1, 2_654_435_761) >>> 0
    v6.push(`2001:db8:${hex((a >>> 16) | 1)}:${hex((a & 0xffff) | 1)}::${hex(0x1000 + (i >>> 12))}:${hex(0x1000 + (i & 0xfff))}`)
  }
  return {v4, v6}
}

function ipv4Key(a: string): number {
  return a.split('.').reduce((n, part) => n * 256 + Number(part), 0)
}

/** Sorted as rcguard's desiredState sorts them (numerically), with the /32 or /128 suffix. */
function cidrs(v4: string[], v6: string[]): {v4: string[]; v6: string[]} {
  const v6Key = (a: string) => {
    const [head = '', tail = ''] = a.split('::')
    const h = head.split(':')
    const t = tail === '' ? [] : tail.split(':')
    return [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t].map((g) => g.padStart(4, '0')).join('')
  }
  return {
    v4: [...v4].sort((a, b) => ipv4Key(a) - ipv4Key(b)).map((a) => `${a}/32`),
    v6: [...v6].sort((a, b) => (v6Key(a) < v6Key(b) ? -1 : v6Key(a) > v6Key(b) ? 1 : 0)).map((a) => `${a}/128`),
  }
}

async function child(backend: Backend, n: number): Promise<void> {
  const {validateConfig} = await import('../src/core/config/config.js')
  const {createBackend, ExecaRunner} = await import('../src/core/firewall/index.js')
  type Runner = import('../src/core/firewall/index.js').Runner

  // The real runner, with the wall time of each command noted on the way.
  const inner = new ExecaRunner()
  let costs: Record<string, CommandCost> = {}
  const runner: Runner = {
    async run(command, args, options) {
      const key = command === 'nft' ? (args.includes('-f') ? 'nft -f' : `nft ${args.join(' ')}`) : command === 'ipset' ? `ipset ${args[0] ?? ''}` : command
      const t = process.hrtime.bigint()
      const r = await inner.run(command, args, options)
      const c = (costs[key] ??= {calls: 0, ms: 0, inBytes: 0, outBytes: 0})
      c.calls++
      c.ms += Number(process.hrtime.bigint() - t) / 1e6
      c.inBytes += Buffer.byteLength(options?.input ?? '')
      c.outBytes += Buffer.byteLength(r.stdout)
      return r
    },
  }
  // The database path only places the check cache: a directory of the run's own, never /var/lib/rcguard.
  const dir = mkdtempSync(join(tmpdir(), 'rcguard-bench-fw-'))
  const config = validateConfig({database: join(dir, 'db.json'), firewall: {backend}}, 'bench', process.cwd())
  const fw = createBackend(config, runner, backend)

  const v4Count = Math.round(n * 0.8)
  const v6Count = n - v4Count
  const swap = Math.round(n / 100)
  const swap4 = Math.round(swap * 0.8)
  const swap6 = swap - swap4
  // One pool with room for the 1% of new addresses; the first N are blocked at first.
  const pool = addresses(v4Count + swap4, v6Count + swap6)
  const first = cidrs(pool.v4.slice(0, v4Count), pool.v6.slice(0, v6Count))
  // The change: every 100th address (of each family) gives way to one not blocked before.
  const dropEvery = <T>(xs: T[], k: number) => {
    const step = k === 0 ? Infinity : xs.length / k
    const gone = new Set(Array.from({length: k}, (_, j) => Math.floor(j * step)))
    return xs.filter((_, i) => !gone.has(i))
  }
  const next = cidrs(
    [...dropEvery(pool.v4.slice(0, v4Count), swap4), ...pool.v4.slice(v4Count)],
    [...dropEvery(pool.v6.slice(0, v6Count), swap6), ...pool.v6.slice(v6Count)],
  )
  const state = (s: {v4: string[]; v6: string[]}) => ({instances: [{name: 'master', ports: [80, 443], v4: s.v4, v6: s.v6}]})

  const timed = async (s: {v4: string[]; v6: string[]}): Promise<Phase> => {
    const desired = state(s)
    costs = {}
    const t = process.hrtime.bigint()
    const r = await fw.apply(desired)
    return {ms: Number(process.hrtime.bigint() - t) / 1e6, changed: r.changed, commands: costs}
  }
  const empty = await timed(first)
  const same = await timed(first)
  rmSync(join(dir, 'db.json.fwcheck'), {force: true})
  const listed = await timed(first)
  const change = await timed(next)
  rmSync(dir, {recursive: true, force: true})

  const out = (cmd: string, args: string[]) => execFileSync(cmd, args, {encoding: 'utf8', maxBuffer: 1 << 30})
  const lines = (text: string, prefix: string) => text.split('\n').filter((l) => l.startsWith(prefix)).length
  let live: ChildReport['live']
  if (backend === 'iptables') {
    live = {
      v4: lines(out('iptables-save', ['-t', 'filter']), '-A rcguard-master '),
      v6: lines(out('ip6tables-save', ['-t', 'filter']), '-A rcguard-master '),
    }
  } else if (backend === 'ipset') {
    live = {v4: lines(out('ipset', ['save', 'rcguard-master-4']), 'add '), v6: lines(out('ipset', ['save', 'rcguard-master-6']), 'add ')}
  } else {
    const elems = (set: string) => {
      const j = JSON.parse(out('nft', ['-j', 'list', 'set', 'inet', 'rcguard', set])) as {nftables: {set?: {elem?: unknown[]}}[]}
      return j.nftables.reduce((k, o) => k + (o.set?.elem?.length ?? 0), 0)
    }
    live = {v4: elems('master_v4'), v6: elems('master_v6')}
  }
  const report: ChildReport = {backend, n, v4: next.v4.length, v6: next.v6.length, empty, same, listed, change, live}
  process.stdout.write(`${JSON.stringify(report)}\n`)
}

// ---------------------------------------------------------------- the parent

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2
}

function ip(args: string[]): void {
  execFileSync('ip', args, {stdio: ['ignore', 'ignore', 'pipe']})
}

/** Why network namespaces cannot be used here, or null when they can. */
function whyNot(): string | null {
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces (ip netns add); run it as root to measure'
  const name = `rcgb-${randomBytes(4).toString('hex')}`
  try {
    ip(['netns', 'add', name])
  } catch (err) {
    const stderr = String((err as {stderr?: unknown}).stderr ?? (err as Error).message).trim()
    return `ip netns add failed: ${stderr.split('\n')[0] ?? ''}`
  }
  try {
    ip(['netns', 'del', name])
  } catch {
    // nothing to clean up beyond what ip already did
  }
  return null
}

type Outcome = {ok: true; report: ChildReport} | {ok: false; timedOut: boolean; why: string; ms: number}

/** One child in a fresh namespace, deleted afterwards whatever happened. */
async function runChild(backend: Backend, n: number, timeoutS: number): Promise<Outcome> {
  const ns = `rcgb-${randomBytes(4).toString('hex')}`
  ip(['netns', 'add', ns])
  const t = process.hrtime.bigint()
  try {
    // Its own process group, so a timeout ends node and the tool it is waiting on.
    const proc = spawn('ip', ['netns', 'exec', ns, 'node', '--import', 'tsx', SELF, '--child', backend, String(n)], {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      try {
        process.kill(-(proc.pid ?? 0), 'SIGKILL')
      } catch {
        // already gone
      }
    }, timeoutS * 1000)
    const code = await new Promise<number | string>((done) => proc.on('close', (c, sig) => done(c ?? sig ?? -1)))
    clearTimeout(timer)
    const ms = Number(process.hrtime.bigint() - t) / 1e6
    if (timedOut) return {ok: false, timedOut: true, why: `timed out after ${timeoutS} s`, ms}
    if (code !== 0) {
      const gist = stderr.split('\n').find((l) => /Error|rcguard|failed|refused/i.test(l)) ?? stderr.split('\n')[0] ?? ''
      return {ok: false, timedOut: false, why: `exit ${code}: ${gist.trim().slice(0, 200)}`, ms}
    }
    return {ok: true, report: JSON.parse(stdout.trim().split('\n').pop() ?? '') as ChildReport}
  } finally {
    try {
      ip(['netns', 'del', ns])
    } catch (err) {
      process.stderr.write(`could not delete network namespace ${ns}: ${(err as Error).message}\n`)
    }
  }
}

interface Cell {
  backend: Backend
  n: number
  reports: ChildReport[]
  /** Set when a run failed or timed out (the rest of this cell was not run), or the cell was skipped. */
  failure: {kind: 'timed out' | 'failed' | 'not run'; why: string} | null
}

const num = (x: number) => Math.round(x).toLocaleString('en-US')
const secs = (ms: number) => `${(ms / 1000).toFixed(3)} s`
const bytes = (b: number) => (b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB` : `${(b / 1e3).toFixed(1)} kB`)

type PhaseName = 'empty' | 'same' | 'listed' | 'change'

/** Per command, the median over runs of its time in one phase; what is left is rcguard's own (JS) time. */
function breakdown(reports: ChildReport[], phase: PhaseName): string {
  const keys = [...new Set(reports.flatMap((r) => Object.keys(r[phase].commands)))]
  const total = median(reports.map((r) => r[phase].ms))
  const parts = keys
    .map((k) => {
      const ms = median(reports.map((r) => r[phase].commands[k]?.ms ?? 0))
      const c = reports[0]?.[phase].commands[k]
      const calls = c === undefined || c.calls === 1 ? '' : ` x${c.calls}`
      const io = c === undefined ? '' : [c.inBytes > 0 ? `stdin ${bytes(c.inBytes)}` : '', c.outBytes > 0 ? `stdout ${bytes(c.outBytes)}` : ''].filter((x) => x !== '').join(', ')
      return {k, ms, text: `${k}${calls} ${secs(ms)}${io === '' ? '' : ` (${io})`}`}
    })
    .sort((a, b) => b.ms - a.ms)
  const own = median(reports.map((r) => r[phase].ms - Object.values(r[phase].commands).reduce((s, c) => s + c.ms, 0)))
  // Commands run at once (ipset's three reads) overlap: then what is left is no measure of rcguard's own time.
  const rest = own > 0 ? `in-process (parse, diff, build text) ${secs(own)}` : 'in-process (not separable: commands ran at once and overlap)'
  return `total ${secs(total)} = ${[...parts.map((p) => p.text), rest].join(' + ')}`
}

async function main(): Promise<void> {
  const why = whyNot()
  if (why !== null) {
    console.log(`\nfirewall backends: skipped: ${why}`)
    return
  }
  const chosen = (process.env.BENCH_FW_BACKENDS ?? BACKENDS.join(',')).split(',').map((b) => b.trim())
  const backends = BACKENDS.filter((b) => chosen.includes(b))
  const sizes = (process.env.BENCH_FW_SIZES ?? '1000,10000,100000')
    .split(',')
    .map((s) => Number(s.trim().replace(/_/g, '')))
    .filter((x) => Number.isInteger(x) && x > 0)
    .sort((a, b) => a - b)
  const runs = Number(process.env.BENCH_FW_RUNS ?? 3)
  const timeoutS = Number(process.env.BENCH_FW_TIMEOUT ?? 300)
  const tools = ['iptables', 'ipset', 'nft'].map((t) => {
    try {
      return execFileSync(t, ['--version'], {encoding: 'utf8'}).split('\n')[0]?.trim() ?? t
    } catch {
      return `${t} missing`
    }
  })
  console.log('')
  console.log(
    `firewall backends: node ${process.version}, kernel ${execFileSync('uname', ['-r'], {encoding: 'utf8'}).trim()}, ${tools.join('; ')}; median of ${runs} runs, each in a fresh network namespace; child timeout ${timeoutS} s`,
  )
  console.log('  N blocked addresses: 80% IPv4 /32, 20% IPv6 /128, one instance on ports 80,443; "1% change" replaces N/100 of them')

  const cells: Cell[] = []
  for (const backend of backends) {
    let stop: string | null = null
    for (const n of sizes) {
      const cell: Cell = {backend, n, reports: [], failure: null}
      cells.push(cell)
      if (stop !== null) {
        cell.failure = {kind: 'not run', why: stop}
        continue
      }
      for (let i = 0; i < runs; i++) {
        process.stderr.write(`  ${backend} ${num(n)}: run ${i + 1}/${runs}...\n`)
        const o = await runChild(backend, n, timeoutS)
        if (o.ok) {
          cell.reports.push(o.report)
          continue
        }
        cell.failure = {kind: o.timedOut ? 'timed out' : 'failed', why: o.why}
        stop = `${num(n)} ${cell.failure.kind}`
        break
      }
    }
  }

  const head = ['backend', 'N', 'from empty', 'no change', 'no change, no cache', '1% change', 'live elements after (v4+v6)']
  const widths = [9, 8, 12, 12, 19, 12, 0]
  const row = (cols: string[]) =>
    console.log(`  ${cols.map((c, i) => (i === 0 || i === 6 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ')}`)
  row(head)
  for (const c of cells) {
    if (c.reports.length === 0) {
      row([c.backend, num(c.n), c.failure?.kind ?? '', '', '', '', c.failure?.why ?? ''])
      continue
    }
    const m = (p: PhaseName) => secs(median(c.reports.map((r) => r[p].ms)))
    const r0 = c.reports[0] as ChildReport
    const liveOk = c.reports.every((r) => r.live.v4 === r.v4 && r.live.v6 === r.v6)
    const notes: string[] = []
    if (c.reports.some((r) => r.same.changed || r.listed.changed)) notes.push('NO-CHANGE RE-APPLY CHANGED SOMETHING')
    if (c.reports.some((r) => !r.empty.changed || !r.change.changed)) notes.push('an apply reported no change')
    if (c.reports.length < runs) notes.push(`only ${c.reports.length} of ${runs} runs: ${c.failure?.why ?? ''}`)
    row([
      c.backend,
      num(c.n),
      m('empty'),
      m('same'),
      m('listed'),
      m('change'),
      `${num(r0.live.v4)}+${num(r0.live.v6)} ${liveOk ? 'as wanted' : `WANTED ${num(r0.v4)}+${num(r0.v6)}`}${notes.length > 0 ? `; ${notes.join('; ')}` : ''}`,
    ])
  }

  const TARGET_N = 100_000
  for (const backend of (['ipset', 'nftables'] as const).filter((b) => backends.includes(b))) {
    const c = cells.find((x) => x.backend === backend && x.n === TARGET_N)
    for (const [label, phase, limit] of [
      [`${num(TARGET_N)} from empty under 2 s`, 'empty', 2000],
      ['no-change re-apply under 0.3 s', 'same', 300],
    ] as const) {
      let verdict: string
      if (c === undefined) verdict = `not measured (${num(TARGET_N)} not in BENCH_FW_SIZES)`
      else if (c.reports.length === 0) verdict = `not met (${c.failure?.why ?? 'no run'})`
      else {
        const ms = median(c.reports.map((r) => r[phase].ms))
        verdict = `${ms < limit ? 'met' : 'NOT met'} (${secs(ms)})`
      }
      console.log(`  target ${backend}, ${label}: ${verdict}`)
    }
  }

  console.log('  where the time goes, at the largest size each backend finished (median per command; in-process = the rest):')
  for (const backend of backends) {
    const done = cells.filter((c) => c.backend === backend && c.reports.length > 0)
    const c = done[done.length - 1]
    if (c === undefined) continue
    for (const [label, phase] of [
      ['from empty', 'empty'],
      ['no change ', 'same'],
      ['no change, no cache', 'listed'],
      ['1% change ', 'change'],
    ] as const) {
      console.log(`    ${backend} ${num(c.n)} ${label}: ${breakdown(c.reports, phase)}`)
    }
  }
}

if (process.argv[2] === '--child') {
  const backend = process.argv[3] as Backend
  if (!BACKENDS.includes(backend)) throw new Error(`--child: unknown backend ${backend}`)
  await child(backend, Number(process.argv[4]))
} else {
  await main()
}
