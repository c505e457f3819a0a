/**
 * npm run bench, part 2: scan throughput. Prints figures, asserts nothing.
 *
 * On a generated errors log of BENCH_LINES lines (default 1,000,000; see
 * generate-log.ts for the mix), and on one a quarter of that size, each the
 * median of BENCH_SCAN_RUNS (3) runs:
 *   (a) `grep -c 'Login failed' FILE`, spawned, wall time;
 *   (f) `fail2ban-regex FILE /etc/fail2ban/filter.d/roundcube-auth.conf`
 *       (fail2ban's own Roundcube filter), spawned, wall time, one run
 *       (BENCH_F2B_RUNS), when fail2ban-regex and the filter are installed
 *       ("not installed" otherwise): what a fail2ban user compares with;
 *   (b) rcguard's core: scanFile() from src/core/run/pipeline.ts over the whole file
 *       as on a cron run's first read, in a child Node process (this file
 *       with --child), timed inside the child, with its peak RSS. A first
 *       read only decides the lines of the last window before the log's
 *       newest line, so it seeks there and counts the lines before it;
 *   (r) the same with --replay: every line parsed and decided, the cost of a
 *       `scan --replay` and of catching up on a log full of recent lines;
 *   (c) the full CLI: `node bin/run.js scan --dry-run --log FILE --config CFG
 *       --json` > /dev/null, wall time, with its peak RSS; and the same
 *       without --json (--json streams every recognised line, so it parses
 *       all of them); and `--replay` without --json (every line parsed and
 *       decided, as in (r), with the bundle's start-up and the report). A
 *       CLI run that fails (say, out of heap) is reported with its time and
 *       peak RSS at failure, and not repeated.
 *   (o) with BENCH_SCAN_BASELINE=REV (a git revision, e.g. main's): (b) and
 *       (r) of that revision's code (its tree extracted to a temporary
 *       directory, its own bench/scan.ts child), in the same run, each of
 *       its runs just before one of this code's: the figures before and
 *       after a change side by side.
 * Then throughput (MB/s, lines/s), the ratios to grep and to fail2ban-regex,
 * peak RSS at both sizes (is memory flat in the file size?), and the top
 * self-time functions of one (b) and one (r) run under `node --cpu-prof`.
 *
 * Generated logs are kept in $TMPDIR/rcguard-bench-scan and reused.
 */
import {spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, relative, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {GENERATOR_VERSION, generateLog} from './generate-log.js'

const ROOT = resolve(import.meta.dirname, '..')
const SELF = fileURLToPath(import.meta.url)
const BIN = join(ROOT, 'bin', 'run.js')
const TIME = '/usr/bin/time'

interface ChildReport {
  scanMs: number
  /** process.hrtime.bigint() (ns, CLOCK_MONOTONIC) around scanFile, to cut the CPU profile to the scan. */
  scanStartNs: string
  scanEndNs: string
  bytes: number
  lines: number
  events: number
  failures: number
  counted: number
  addresses: number
  blocked: number
  /** Heap in use just after scanFile returned, its result still referenced. */
  heapUsedKB: number
  /** process.resourceUsage().maxRSS inside the child (kB). */
  maxRssKB: number
}

/** The child: one core scan of FILE, a JSON report on stdout. */
async function child(file: string, dir: string, replay: boolean): Promise<void> {
  const {validateConfig} = await import('../src/core/config/config.js')
  const {createBackend, ExecaRunner} = await import('../src/core/firewall/index.js')
  const {scanFile} = await import('../src/core/run/pipeline.js')
  const {JsonStore} = await import('../src/core/store/json-store.js')
  const config = validateConfig(
    {database: join(dir, 'db.json'), instances: [{name: 'master', logs: [file], ports: [443]}], firewall: {backend: 'none'}},
    'bench',
    dir,
  )
  const ctx = {
    config,
    store: new JsonStore(config.database),
    firewall: createBackend(config, new ExecaRunner(() => {})),
    now: () => Date.now(),
    keepText: false,
  }
  const t = process.hrtime.bigint()
  const result = await scanFile(ctx, file, {instance: 'master', replay})
  const t1 = process.hrtime.bigint()
  const report: ChildReport = {
    scanMs: Number(t1 - t) / 1e6,
    scanStartNs: String(t),
    scanEndNs: String(t1),
    bytes: result.files.reduce((n, f) => n + f.bytes, 0),
    lines: result.files.reduce((n, f) => n + f.lines, 0),
    events: result.files.reduce((n, f) => n + f.events, 0),
    failures: result.stats.failures,
    counted: result.stats.counted,
    addresses: result.stats.addresses,
    blocked: result.newlyBlocked.length,
    heapUsedKB: Math.round(process.memoryUsage().heapUsed / 1024),
    maxRssKB: process.resourceUsage().maxRSS,
  }
  process.stdout.write(`${JSON.stringify(report)}\n`)
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2
}

interface Run {
  wallMs: number
  /** Peak RSS in kB from /usr/bin/time, or null without it. */
  rssKB: number | null
  stdout: string
  /** Why the command failed (its exit and the gist of its stderr), or null. */
  failure: string | null
}

/**
 * Runs a command, its stdout captured or discarded, under /usr/bin/time when
 * present. A failure is returned (tolerate) or thrown.
 */
function run(cmd: string, args: string[], opts: {capture: boolean; dir: string; tolerate?: boolean}): Run {
  const hasTime = existsSync(TIME)
  const rssFile = join(opts.dir, 'rss.txt')
  const [c, a] = hasTime ? [TIME, ['-f', '%M', '-o', rssFile, cmd, ...args]] : [cmd, args]
  const t = process.hrtime.bigint()
  const r = spawnSync(c, a, {
    cwd: ROOT,
    stdio: ['ignore', opts.capture ? 'pipe' : 'ignore', 'pipe'],
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  })
  const wallMs = Number(process.hrtime.bigint() - t) / 1e6
  if (r.error !== undefined) throw r.error
  const rss = hasTime ? Number.parseInt(readFileSync(rssFile, 'utf8').trim().split('\n').pop() ?? '', 10) : Number.NaN
  let failure: string | null = null
  // grep -c exits 1 when it counts 0 lines; anything else is a failure.
  if (r.status !== 0 && !(cmd === 'grep' && r.status === 1)) {
    const fatal = (r.stderr ?? '').split('\n').find((l) => /FATAL ERROR|^rcguard: /.test(l))
    failure = `exit ${r.status ?? r.signal}${fatal === undefined ? '' : `, ${fatal.trim()}`}`
    if (opts.tolerate !== true) throw new Error(`${cmd} ${args.join(' ')}: ${failure}\n${r.stderr}`)
  }
  return {wallMs, rssKB: Number.isFinite(rss) ? rss : null, stdout: r.stdout ?? '', failure}
}

const RUNS = Number(process.env.BENCH_SCAN_RUNS ?? 3)
const F2B_RUNS = Number(process.env.BENCH_F2B_RUNS ?? 1)
const F2B = '/usr/bin/fail2ban-regex'
const F2B_FILTER = '/etc/fail2ban/filter.d/roundcube-auth.conf'

/** fail2ban-regex with fail2ban's Roundcube filter, when both are installed: wall time and its matched count. */
function fail2banRegex(file: string, dir: string): {ms: number; matched: string} | null {
  if (!existsSync(F2B) || !existsSync(F2B_FILTER)) return null
  const runs: Run[] = []
  for (let i = 0; i < F2B_RUNS; i++) runs.push(run(F2B, [file, F2B_FILTER], {capture: true, dir}))
  const matched = /Lines: .*?(\d+) matched/.exec(runs[0]?.stdout ?? '')?.[1] ?? '?'
  return {ms: median(runs.map((r) => r.wallMs)), matched}
}

/** The core child of another revision (BENCH_SCAN_BASELINE), extracted once per bench run. */
function baselineTree(rev: string, dir: string): string {
  const tree = join(dir, `baseline-${rev.replace(/[^\w.-]/g, '_')}`)
  if (existsSync(tree)) return tree
  mkdirSync(tree)
  const archive = spawnSync('git', ['-C', ROOT, 'archive', '--format=tar', rev], {maxBuffer: 512 * 1024 * 1024})
  if (archive.status !== 0) throw new Error(`git archive ${rev}: ${archive.stderr.toString()}`)
  const untar = spawnSync('tar', ['-x', '-C', tree], {input: archive.stdout})
  if (untar.status !== 0) throw new Error(`tar: ${untar.stderr.toString()}`)
  symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'))
  return tree
}

function repeat(fn: () => Run): Run[] {
  return Array.from({length: RUNS}, fn)
}

/** The generated log of `lines` lines, made once and reused. */
function logOf(cacheDir: string, lines: number): {path: string; bytes: number; lines: number} {
  const path = join(cacheDir, `errors-v${GENERATOR_VERSION}-${lines}.log`)
  if (!existsSync(path)) {
    process.stderr.write(`generating ${path}...\n`)
    generateLog(path, {lines})
  }
  return {path, bytes: statSync(path).size, lines}
}

interface CliFigures {
  ms: number
  rssKB: number | null
  /** Set when the run failed: then ms and rssKB are of that one failed run. */
  failure: string | null
}

interface Figures {
  size: {path: string; bytes: number; lines: number}
  grep: {ms: number; count: string}
  /** null: fail2ban-regex or its Roundcube filter is not installed. */
  f2b: {ms: number; matched: string} | null
  /** The same core runs with BENCH_SCAN_BASELINE's code, when set. */
  baseline: {rev: string; coreMs: number; replayMs: number; replayRssKB: number} | null
  core: {ms: number; wallMs: number; rssKB: number; heapUsedKB: number; report: ChildReport}
  /** The same with --replay: every line parsed and decided (no first-read shortcut). */
  replay: {ms: number; rssKB: number; report: ChildReport}
  cliJson: CliFigures
  cliPlain: CliFigures
  cliReplay: CliFigures
}

/** The CLI, RUNS times; a failed run (e.g. out of memory) is reported once and not repeated. */
function cliRuns(args: string[], dir: string): CliFigures {
  const runs: Run[] = []
  for (let i = 0; i < RUNS; i++) {
    const r = run('node', [BIN, ...args], {capture: false, dir, tolerate: true})
    if (r.failure !== null) return {ms: r.wallMs, rssKB: r.rssKB, failure: r.failure}
    runs.push(r)
  }
  const rss = runs.map((r) => r.rssKB).filter((x): x is number => x !== null)
  return {ms: median(runs.map((r) => r.wallMs)), rssKB: rss.length > 0 ? median(rss) : null, failure: null}
}

function measure(size: {path: string; bytes: number; lines: number}, dir: string): Figures {
  const grep = repeat(() => run('grep', ['-c', 'Login failed', size.path], {capture: true, dir}))
  const f2b = fail2banRegex(size.path, dir)
  const rev = process.env.BENCH_SCAN_BASELINE
  const baselineSelf = rev === undefined || rev === '' ? null : join(baselineTree(rev, dir), 'bench', 'scan.ts')
  const child = (self: string, replay: boolean): Run =>
    run('node', ['--import', 'tsx', self, '--child', size.path, dir, ...(replay ? ['--replay'] : [])], {capture: true, dir})
  // With a baseline, its runs and this code's take turns: on a shared machine the load changes over minutes,
  // and runs of one code all before the other's would compare two loads as much as two codes.
  const oldCore: Run[] = []
  const oldReplay: Run[] = []
  const core: Run[] = []
  const replayRuns: Run[] = []
  for (const replay of [false, true]) {
    for (let i = 0; i < RUNS; i++) {
      if (baselineSelf !== null) (replay ? oldReplay : oldCore).push(child(baselineSelf, replay))
      ;(replay ? replayRuns : core).push(child(SELF, replay))
    }
  }
  let baseline: Figures['baseline'] = null
  if (baselineSelf !== null && rev !== undefined) {
    baseline = {
      rev,
      coreMs: median(oldCore.map((r) => (JSON.parse(r.stdout) as ChildReport).scanMs)),
      replayMs: median(oldReplay.map((r) => (JSON.parse(r.stdout) as ChildReport).scanMs)),
      replayRssKB: median(oldReplay.map((r) => r.rssKB ?? 0)),
    }
  }
  const reports = core.map((r) => JSON.parse(r.stdout) as ChildReport)
  const replayReports = replayRuns.map((r) => JSON.parse(r.stdout) as ChildReport)
  const cfg = join(dir, 'rcguard.yml')
  writeFileSync(
    cfg,
    JSON.stringify({database: join(dir, 'db.json'), instances: [{name: 'master', logs: [size.path], ports: [443]}], firewall: {backend: 'none'}}),
  )
  const scanArgs = ['scan', '--dry-run', '--log', size.path, '--config', cfg]
  const first = reports[0]
  if (first === undefined) throw new Error('no core run')
  return {
    size,
    grep: {ms: median(grep.map((r) => r.wallMs)), count: (grep[0]?.stdout ?? '').trim()},
    f2b,
    baseline,
    core: {
      ms: median(reports.map((r) => r.scanMs)),
      wallMs: median(core.map((r) => r.wallMs)),
      rssKB: median(core.map((r, i) => r.rssKB ?? reports[i]?.maxRssKB ?? 0)),
      heapUsedKB: median(reports.map((r) => r.heapUsedKB)),
      report: first,
    },
    replay: {
      ms: median(replayReports.map((r) => r.scanMs)),
      rssKB: median(replayRuns.map((r, i) => r.rssKB ?? replayReports[i]?.maxRssKB ?? 0)),
      report: replayReports[0] ?? first,
    },
    cliJson: cliRuns([...scanArgs, '--json'], dir),
    cliPlain: cliRuns(scanArgs, dir),
    cliReplay: cliRuns([...scanArgs, '--replay'], dir),
  }
}

interface ProfileNode {
  id: number
  callFrame: {functionName: string; url: string; lineNumber: number}
}

interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  samples: number[]
  timeDeltas: number[]
}

/**
 * Top self-time functions of one core run under --cpu-prof, as "name (file)
 * pct%", counting only the samples taken while scanFile ran (V8's sample
 * times and process.hrtime are both CLOCK_MONOTONIC); all samples if none
 * fall in that window.
 */
function profileHint(file: string, dir: string, top: number, replay = false): string {
  const profDir = join(dir, 'prof')
  rmSync(profDir, {recursive: true, force: true})
  mkdirSync(profDir)
  const r = run('node', ['--cpu-prof', '--cpu-prof-dir', profDir, '--import', 'tsx', SELF, '--child', file, dir, ...(replay ? ['--replay'] : [])], {capture: true, dir})
  const child = JSON.parse(r.stdout) as ChildReport
  // The main thread's profile is the largest (tsx's loader thread writes one too).
  const name = readdirSync(profDir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort((a, b) => statSync(join(profDir, b)).size - statSync(join(profDir, a)).size)[0]
  if (name === undefined) return 'no .cpuprofile written'
  const prof = JSON.parse(readFileSync(join(profDir, name), 'utf8')) as CpuProfile
  const byId = new Map(prof.nodes.map((n) => [n.id, n]))
  const from = Number(BigInt(child.scanStartNs) / 1000n)
  const to = Number(BigInt(child.scanEndNs) / 1000n)
  const tally = (windowed: boolean) => {
    const self = new Map<string, number>()
    let total = 0
    let ts = prof.startTime
    prof.samples.forEach((id, i) => {
      const dt = prof.timeDeltas[i] ?? 0
      ts += dt
      if (windowed && (ts < from || ts > to)) return
      const node = byId.get(id)
      if (node === undefined || node.callFrame.functionName === '(idle)') return
      const {functionName, url} = node.callFrame
      const where = url === '' ? '' : ` (${url.startsWith('file://') ? relative(ROOT, fileURLToPath(url)) : url})`
      const key = `${functionName === '' ? '(anonymous)' : functionName}${where}`
      self.set(key, (self.get(key) ?? 0) + dt)
      total += dt
    })
    return {self, total}
  }
  let {self, total} = tally(true)
  let scope = `the ${(total / 1e6).toFixed(2)} s of scanFile`
  if (total === 0) {
    ;({self, total} = tally(false))
    scope = 'the whole process'
  }
  const list = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, us]) => `${k} ${((100 * us) / total).toFixed(1)}%`)
    .join(', ')
  return `(${scope}) ${list}`
}

const mb = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000)
const lps = (lines: number, ms: number) => lines / (ms / 1000)
const fmtMiB = (kb: number | null) => (kb === null ? 'n/a' : `${(kb / 1024).toFixed(0)} MiB`)
const num = (x: number) => Math.round(x).toLocaleString('en-US')

function report(f: Figures): void {
  const {bytes, lines} = f.size
  const c = f.core.report
  console.log(`${f.size.path}: ${(bytes / 1e6).toFixed(1)} MB, ${num(lines)} lines`)
  console.log(`  grep -c 'Login failed': ${f.grep.count}; rcguard: ${num(c.events)} events, ${num(c.failures)} failed logins, ${num(c.counted)} counted on this first read from ${num(c.addresses)} address(es), ${num(c.blocked)} newly blocked`)
  // Throughput ratios: grep's (and fail2ban-regex's) time over this row's, i.e. this row's throughput over theirs.
  const row = (label: string, ms: number, withRatio: boolean) =>
    console.log(
      `  ${label.padEnd(46)} ${(ms / 1000).toFixed(3).padStart(7)} s ${mb(bytes, ms).toFixed(1).padStart(7)} MB/s ${num(lps(lines, ms)).padStart(11)} lines/s${
        withRatio ? `   rcguard/grep ${(f.grep.ms / ms).toFixed(3)}${f.f2b === null ? '' : `   rcguard/fail2ban-regex ${(f.f2b.ms / ms).toFixed(2)}`}` : ''
      }`,
    )
  row("(a) grep -c 'Login failed'", f.grep.ms, false)
  if (f.f2b === null) console.log(`  ${'(f) fail2ban-regex, roundcube-auth filter'.padEnd(46)} not installed (${F2B}, ${F2B_FILTER})`)
  else row(`(f) fail2ban-regex roundcube-auth: ${f.f2b.matched} matched`, f.f2b.ms, false)
  const vsF2b = (ms: number) => (f.f2b === null ? '' : `; ${(f.f2b.ms / ms).toFixed(1)}x fail2ban-regex's throughput`)
  row('(b) core scanFile, time inside the child', f.core.ms, true)
  row('    (b) child wall time, with node+tsx start', f.core.wallMs, true)
  row('(r) core scanFile --replay: every line decided', f.replay.ms, true)
  console.log(`      (r) ${num(f.replay.report.failures)} failed logins, ${num(f.replay.report.counted)} counted, peak RSS ${fmtMiB(f.replay.rssKB)}${vsF2b(f.replay.ms)}`)
  if (f.baseline !== null) {
    const o = f.baseline
    row(`(o) ${o.rev}: core scanFile`, o.coreMs, true)
    row(`(o) ${o.rev}: core scanFile --replay`, o.replayMs, true)
    console.log(`      (o) --replay peak RSS ${fmtMiB(o.replayRssKB)}; this code is ${(o.replayMs / f.replay.ms).toFixed(2)}x as fast on --replay${f.f2b === null ? '' : `, ${o.rev} ${(f.f2b.ms / o.replayMs).toFixed(1)}x fail2ban-regex`}`)
  }
  const cli = (label: string, c: CliFigures) => {
    if (c.failure === null) row(label, c.ms, true)
    else console.log(`  ${label.padEnd(46)} FAILED after ${(c.ms / 1000).toFixed(1)} s: ${c.failure}`)
  }
  cli('(c) CLI scan --dry-run --log --json', f.cliJson)
  cli('    (c) the same without --json', f.cliPlain)
  cli('    (c) --replay, without --json', f.cliReplay)
  if (f.cliReplay.failure === null) console.log(`      (c) --replay${vsF2b(f.cliReplay.ms)}`)
  const failed = (c: CliFigures) => (c.failure === null ? '' : ' at failure')
  console.log(
    `  peak RSS: (b) ${fmtMiB(f.core.rssKB)} (heap in use after scanFile ${fmtMiB(f.core.heapUsedKB)}), (c) --json ${fmtMiB(f.cliJson.rssKB)}${failed(f.cliJson)}, (c) without --json ${fmtMiB(f.cliPlain.rssKB)}${failed(f.cliPlain)}, (c) --replay ${fmtMiB(f.cliReplay.rssKB)}${failed(f.cliReplay)}`,
  )
}

async function main(): Promise<void> {
  const lines = Number(process.env.BENCH_LINES ?? 1_000_000)
  const small = Math.round(lines / 4)
  const cacheDir = join(tmpdir(), 'rcguard-bench-scan')
  mkdirSync(cacheDir, {recursive: true})
  const dir = mkdtempSync(join(tmpdir(), 'rcguard-bench-'))
  try {
    const big = logOf(cacheDir, lines)
    const quarter = logOf(cacheDir, small)
    console.log('')
    console.log(
      `scan throughput: node ${process.version}, median of ${RUNS} runs, firewall.backend none, LANG=${process.env.LANG ?? ''} LC_ALL=${process.env.LC_ALL ?? ''}, peak RSS from ${existsSync(TIME) ? '/usr/bin/time -f %M' : 'process.resourceUsage()'}, MB = 10^6 bytes`,
    )
    const fb = measure(big, dir)
    report(fb)
    const fq = measure(quarter, dir)
    report(fq)
    const grow = (a: number | null, b: number | null) => {
      if (a === null || b === null) return 'n/a'
      return `${fmtMiB(b)} -> ${fmtMiB(a)} (${a >= b ? '+' : ''}${((a - b) / 1024).toFixed(0)} MiB, ${(((a - b) * 1024) / (big.lines - quarter.lines)).toFixed(0)} B per extra line)`
    }
    console.log(`peak RSS, ${num(quarter.lines)} -> ${num(big.lines)} lines:`)
    console.log(`  (b) core scanFile:        ${grow(fb.core.rssKB, fq.core.rssKB)}; heap after scan ${fmtMiB(fq.core.heapUsedKB)} -> ${fmtMiB(fb.core.heapUsedKB)}`)
    const note = (a: CliFigures, b: CliFigures) => (a.failure !== null || b.failure !== null ? ' (a run failed: its peak at failure)' : '')
    console.log(`  (c) CLI --json:           ${grow(fb.cliJson.rssKB, fq.cliJson.rssKB)}${note(fb.cliJson, fq.cliJson)}`)
    console.log(`  (c) CLI without --json:   ${grow(fb.cliPlain.rssKB, fq.cliPlain.rssKB)}${note(fb.cliPlain, fq.cliPlain)}`)
    console.log(`  (c) CLI --replay:         ${grow(fb.cliReplay.rssKB, fq.cliReplay.rssKB)}${note(fb.cliReplay, fq.cliReplay)}`)
    console.log(`  (r) core --replay:        ${grow(fb.replay.rssKB, fq.replay.rssKB)}`)
    console.log(`profile of one (b) run on ${num(big.lines)} lines, top self time ${profileHint(big.path, dir, 5)}`)
    console.log(`profile of one (r) run on ${num(big.lines)} lines, top self time ${profileHint(big.path, dir, 8, true)}`)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

if (process.argv[2] === '--child') {
  await child(process.argv[3] ?? '', process.argv[4] ?? '', process.argv[5] === '--replay')
} else {
  await main()
}
