/**
 * npm run bench, part 7: cluster mode (cluster: in the configuration, see
 * CLUSTER in rcguard(8)). Prints figures, asserts nothing. The bench starts a
 * redis-server of its own on a unix socket in a temporary directory (no
 * persistence) and stops it at the end, on error too. Every rcguard run is
 * the real CLI (bin/run.js over dist/), firewall.backend none, default rules
 * (6 in 10 min, 24 in 60 min, 5 users in 60 min).
 *
 * 1. Push rate: a log of BENCH_CLUSTER_FAILURES failures (default 50,000)
 *    from BENCH_CLUSTER_ADDRESSES addresses (default 10,000, one user name
 *    each), stamped with the real time over the last 30 minutes, so that each
 *    address has fewer failures than any rule needs (5 by default) and every
 *    failure is pushed and kept. One `rcguard hacks` reads it with cluster
 *    set, against the same log with no cluster (the anchor), side by side in
 *    one run: BENCH_CLUSTER_RUNS rounds (default 3), each with a fresh log,
 *    fresh databases and an empty Redis (FLUSHALL; the scripts stay cached,
 *    as on a Redis that has served a run before), the anchor and the cluster
 *    run taken in turn. Medians of the wall times; the push's own rate
 *    N / (cluster - anchor) and the overall rate N / cluster. Redis's count
 *    of failures held after each cluster run is printed beside (it should be
 *    N), with the script calls and the time Redis spent in them (INFO
 *    commandstats). BENCH_CLUSTER_CPU_PROF=DIR writes a --cpu-prof of the first
 *    cluster run into DIR.
 * 2. From the failure that completes a window on one node to the block on
 *    another: nodes a and b (a database and a log each, one Redis). a's log
 *    gets 3 failures of one address and a runs; b's log gets 3 more (the 6th
 *    completes the first rule, 6 in 10 min, only over both nodes), b runs
 *    (decide, push, claim: it blocks), then a runs (it takes the block). Real
 *    time, no RCGUARD_NOW, lines stamped with the real time.
 *    BENCH_CLUSTER_TRIALS trials (default 3), fresh databases and Redis
 *    each; medians of b's and a's run times, and the latency under cron
 *    every minute as the formula with them.
 * 3. A no-op run (nothing new in the log, after a first run that read it):
 *    `rcguard hacks` with no cluster, with cluster set, and with cluster set
 *    to a unix socket that does not exist (Redis down: its first run's
 *    failures wait in its database, as they would), in turn,
 *    BENCH_CLUSTER_NOOP_RUNS runs each (default 15): medians, the
 *    differences to the run with no cluster, and how many of the runs
 *    rewrote the database (its mtime). Once over a 1,000-line log (250
 *    addresses), once over the log of 1. (a database of ADDRESSES entries;
 *    no Redis-down run there).
 */
import {execFile, execFileSync, spawn, type ChildProcess} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join, resolve} from 'node:path'

const ROOT = resolve(import.meta.dirname, '..')
const BIN = join(ROOT, 'bin', 'run.js')
const FAILURES = Number(process.env.BENCH_CLUSTER_FAILURES ?? 50_000)
const ADDRESSES = Math.min(Number(process.env.BENCH_CLUSTER_ADDRESSES ?? 10_000), 131_072)
const RUNS = Number(process.env.BENCH_CLUSTER_RUNS ?? 3)
const TRIALS = Number(process.env.BENCH_CLUSTER_TRIALS ?? 3)
const NOOP_RUNS = Number(process.env.BENCH_CLUSTER_NOOP_RUNS ?? 15)
const CPU_PROF = process.env.BENCH_CLUSTER_CPU_PROF
const SPAN_MS = 30 * 60_000

const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const p2 = (n: number): string => String(n).padStart(2, '0')
let session = 0
function line(t: number, ip: string, user: string): string {
  const d = new Date(t)
  session++
  const stamp = `[${p2(d.getUTCDate())}-${months[d.getUTCMonth()]}-${d.getUTCFullYear()} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} +0000]`
  return `${stamp}: <c${session}> Failed login for ${user} from ${ip} in session c${session}x (error: 0)\n`
}

/** The a-th address of 198.18.0.0/15 (the benchmarking network). */
function address(a: number): string {
  const n = 0xc6120000 + a
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2
}
const ms = (x: number): string => `${x.toFixed(1)} ms`
const spread = (xs: number[]): string => `median ${ms(median(xs)).padStart(10)} (min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)})`

/** The node child running now (rcguard), stopped with the bench. */
let current: ChildProcess | null = null
function run(args: string[]): Promise<string> {
  return new Promise((done, fail) => {
    current = execFile('node', args, {maxBuffer: 1 << 28}, (err, stdout) => {
      current = null
      if (err === null) done(stdout)
      else fail(err)
    })
  })
}
/** Runs `rcguard hacks --json` (asynchronously, so that a signal stops the bench and its Redis at once): its wall time (ms) and its report. */
async function hacks(config: string, extra: string[] = []): Promise<{ms: number; report: {newlyBlocked: {ip?: string}[]; warnings: string[]}}> {
  const t = process.hrtime.bigint()
  const stdout = await run([...extra, BIN, 'hacks', '--json', '--config', config])
  const took = Number(process.hrtime.bigint() - t) / 1e6
  return {ms: took, report: JSON.parse(stdout)}
}

const base = mkdtempSync(join(tmpdir(), 'rcguard-bench-cluster-'))
chmodSync(base, 0o700)
const SOCK = join(base, 'redis.sock')
let redis: ChildProcess | null = null
const alive = (c: ChildProcess | null): c is ChildProcess => c !== null && c.exitCode === null && c.signalCode === null
/** Stops the rcguard run in progress and Redis, and removes the temporary directory. */
async function cleanUp(): Promise<void> {
  for (const c of [current, redis]) {
    if (!alive(c)) continue
    const gone = new Promise((done) => c.once('exit', done))
    c.kill('SIGTERM')
    await gone
  }
  rmSync(base, {recursive: true, force: true})
}
process.on('exit', () => {
  if (alive(redis)) redis.kill('SIGTERM')
})
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    void cleanUp().finally(() => process.exit(130))
  })
}

function cli(...args: string[]): string {
  return execFileSync('redis-cli', ['-s', SOCK, ...args]).toString().trim()
}
async function startRedis(): Promise<void> {
  redis = spawn('redis-server', ['--port', '0', '--unixsocket', SOCK, '--unixsocketperm', '700', '--dir', base, '--save', '', '--appendonly', 'no', '--logfile', join(base, 'redis.log')], {stdio: 'ignore'})
  for (let i = 0; i < 500; i++) {
    if (existsSync(SOCK)) {
      try {
        if (cli('PING') === 'PONG') return
      } catch {
        // not yet
      }
    }
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error('redis-server did not start (see its log in the temporary directory)')
}
/** The failures Redis holds (members of every failure set), and its blocks. */
function held(): {failures: number; blocks: number} {
  const lua = "local n, b = 0, 0 for _, k in ipairs(redis.call('KEYS', 'rcguard:f:*')) do n = n + redis.call('ZCARD', k) end for _, k in ipairs(redis.call('KEYS', 'rcguard:b:*')) do b = b + redis.call('HLEN', k) end return {n, b}"
  const [failures, blocks] = cli('EVAL', lua, '0').split('\n').map(Number)
  return {failures: failures ?? Number.NaN, blocks: blocks ?? Number.NaN}
}

/** A node: its own directory, log, database (directory mode 0700) and configuration (0600). */
function node(dir: string, name: string, redisUrl: string | null): {config: string; log: string} {
  mkdirSync(join(dir, 'db'), {recursive: true, mode: 0o700})
  chmodSync(dir, 0o700)
  const log = join(dir, 'userlogins.log')
  writeFileSync(log, '')
  const config = join(dir, 'rcguard.json')
  const settings = {database: join(dir, 'db', 'db.json'), instances: [{name: 'master', logs: [log], ports: [443]}], firewall: {backend: 'none'}, ...(redisUrl === null ? {} : {cluster: {redis: redisUrl, node: name}})}
  writeFileSync(config, JSON.stringify(settings), {mode: 0o600})
  return {config, log}
}

/** The log of 1.: FAILURES failures of ADDRESSES addresses in turn (one user name each), over the 30 min before `now`. */
function pushLog(now: number): string {
  const parts: string[] = []
  for (let i = 0; i < FAILURES; i++) {
    const a = i % ADDRESSES
    parts.push(line(now - SPAN_MS + Math.floor((i * SPAN_MS) / FAILURES), address(a), `user${a}`))
  }
  return parts.join('')
}

let round = 0
function fresh(): string {
  const dir = join(base, `r${round++}`)
  mkdirSync(dir, {mode: 0o700})
  return dir
}

try {
  await startRedis()
  const version = cli('INFO', 'server').match(/redis_version:(\S+)/)?.[1] ?? '?'
  console.log(`cluster: node ${process.version}, redis-server ${version} on a unix socket, firewall.backend none, bundle dist/cli.js`)

  // 1. Push rate.
  const perAddress = FAILURES / ADDRESSES
  const anchor: number[] = []
  const cluster: number[] = []
  const kept: string[] = []
  for (let r = 0; r < RUNS; r++) {
    const dir = fresh()
    const plain = node(join(dir, 'plain'), 'a', null)
    const shared = node(join(dir, 'shared'), 'a', `unix://${SOCK}`)
    const text = pushLog(Date.now())
    writeFileSync(plain.log, text)
    writeFileSync(shared.log, text)
    cli('FLUSHALL')
    cli('CONFIG', 'RESETSTAT')
    anchor.push((await hacks(plain.config)).ms)
    const prof = CPU_PROF !== undefined && r === 0 ? ['--cpu-prof', '--cpu-prof-dir', resolve(CPU_PROF)] : []
    const r1 = await hacks(shared.config, prof)
    cluster.push(r1.ms)
    const h = held()
    const scripts = [...cli('INFO', 'commandstats').matchAll(/^cmdstat_eval(?:sha)?:calls=(\d+),usec=(\d+)/gm)].reduce((t, m) => ({calls: t.calls + Number(m[1]), usec: t.usec + Number(m[2])}), {calls: 0, usec: 0})
    kept.push(`${h.failures} held, ${h.blocks} blocks, ${r1.report.newlyBlocked.length} blocked, ${scripts.calls} script calls taking ${(scripts.usec / 1000).toFixed(0)} ms in Redis${r1.report.warnings.length > 0 ? `, warning: ${r1.report.warnings[0]}` : ''}`)
    rmSync(dir, {recursive: true, force: true})
  }
  const mc = median(cluster)
  const ma = median(anchor)
  console.log(`1. push rate: ${FAILURES} failures from ${ADDRESSES} addresses (${perAddress.toFixed(1)} each, over 30 min), one rcguard hacks each, ${RUNS} rounds in turn`)
  console.log(`   no cluster (anchor)               ${spread(anchor)}`)
  console.log(`   cluster set, Redis reached         ${spread(cluster)}`)
  console.log(`   the push's own rate  N / (cluster - anchor) = ${FAILURES} / ${(mc - ma).toFixed(0)} ms = ${Math.round(FAILURES / ((mc - ma) / 1000))} failures/s`)
  console.log(`   overall              N / cluster            = ${FAILURES} / ${mc.toFixed(0)} ms = ${Math.round(FAILURES / (mc / 1000))} failures/s`)
  console.log(`   Redis after each cluster run: ${kept.join('; ')}`)
  if (CPU_PROF !== undefined) console.log(`   --cpu-prof of the first cluster run in ${resolve(CPU_PROF)}`)

  // 2. Latency: the window completed on b, the block on a.
  const bRuns: number[] = []
  const aRuns: number[] = []
  const aFirst: number[] = []
  const seen: string[] = []
  for (let t = 0; t < TRIALS; t++) {
    const dir = fresh()
    const a = node(join(dir, 'a'), 'a', `unix://${SOCK}`)
    const b = node(join(dir, 'b'), 'b', `unix://${SOCK}`)
    cli('FLUSHALL')
    const ip = address(1000 + t)
    let text = ''
    for (let i = 0; i < 3; i++) text += line(Date.now() - (6 - i) * 1000, ip, 'alice')
    writeFileSync(a.log, text)
    aFirst.push((await hacks(a.config)).ms)
    text = ''
    for (let i = 3; i < 6; i++) text += line(Date.now() - (6 - i) * 1000, ip, 'alice')
    writeFileSync(b.log, text)
    const rb = await hacks(b.config)
    bRuns.push(rb.ms)
    const ra = await hacks(a.config)
    aRuns.push(ra.ms)
    const list = JSON.parse(await run([BIN, 'list', '--json', '--config', a.config])) as {ip: string; state: string; blockedAt: string | null}[]
    const onA = list.find((e) => e.ip === ip)
    seen.push(`b blocked ${rb.report.newlyBlocked.some((e) => e.ip === ip) ? 'yes' : 'NO'}, a holds it ${onA?.blockedAt != null ? 'yes' : 'NO'}`)
    rmSync(dir, {recursive: true, force: true})
  }
  const mb = median(bRuns)
  const mA = median(aRuns)
  console.log(`2. window completed on node b, block on node a: 3 failures on a (a runs), 3 on b, then b runs, then a; ${TRIALS} trials, real time`)
  console.log(`   a's run pushing its 3 (no block)   ${spread(aFirst)}`)
  console.log(`   b's run: decide + push + claim     ${spread(bRuns)}`)
  console.log(`   a's next run: takes the block      ${spread(aRuns)}`)
  console.log(`   ${seen.join('; ')}`)
  console.log(`   cron every minute: the block holds on b up to 60 s + ${ms(mb)} after the 6th failure, and on a one run interval (up to 60 s) + a's run time ${ms(mA)} = up to ${((60_000 + mA) / 1000).toFixed(2)} s`)
  console.log(`   (a's run takes it when it starts after b's claim; a run of a that starts within b's ${ms(mb)} waits one interval more)`)

  // 3. No-op runs.
  const noopRound = async (title: string, text: string, withDown: boolean): Promise<void> => {
    const dir = fresh()
    const variants = [
      {label: 'no cluster', ...node(join(dir, 'none'), 'a', null)},
      {label: 'cluster set, Redis reached', ...node(join(dir, 'up'), 'a', `unix://${SOCK}`)},
      ...(withDown ? [{label: 'cluster set, no socket (Redis down)', ...node(join(dir, 'down'), 'a', `unix://${join(dir, 'no-such-redis.sock')}`)}] : []),
    ].map((v) => ({...v, db: join(dirname(v.config), 'db', 'db.json'), times: [] as number[], rewrites: 0, warning: ''}))
    cli('FLUSHALL')
    for (const v of variants) {
      writeFileSync(v.log, text)
      await hacks(v.config)
    }
    for (let i = 0; i < NOOP_RUNS; i++) {
      for (const v of variants) {
        const before = statSync(v.db).mtimeMs
        const r = await hacks(v.config)
        v.times.push(r.ms)
        if (statSync(v.db).mtimeMs !== before) v.rewrites++
        v.warning = (r.report.warnings[0] ?? '').split(base).join('DIR')
      }
    }
    const mn = median(variants[0]?.times ?? [])
    console.log(`   ${title}`)
    for (const v of variants) {
      const d = median(v.times) - mn
      console.log(`     ${v.label.padEnd(36)} ${spread(v.times)}${v === variants[0] ? '          ' : `  ${d >= 0 ? '+' : ''}${d.toFixed(1).padStart(6)} ms`}  database rewritten by ${v.rewrites} of ${NOOP_RUNS}`)
    }
    for (const v of variants) if (v.warning !== '') console.log(`     (${v.label}: its warning: ${v.warning})`)
    rmSync(dir, {recursive: true, force: true})
  }
  console.log(`3. no-op run: rcguard hacks with nothing new in the log, after a first run that read it; ${NOOP_RUNS} runs each, in turn`)
  {
    const now = Date.now()
    let text = ''
    for (let i = 0; i < 1000; i++) text += line(now - SPAN_MS + i * 1000, address(i % 250), `user${i % 250}`)
    await noopRound('a 1,000-line log, 250 addresses in the database', text, true)
  }
  await noopRound(`the ${FAILURES}-failure log of 1., ${ADDRESSES} addresses in the database`, pushLog(Date.now()), false)
} finally {
  await cleanUp()
}
