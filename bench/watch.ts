/**
 * npm run bench, part 4: how many attempts a client gets in before it is
 * blocked, and watch's memory under load. Prints figures, asserts nothing.
 *
 * (a) watch: the real `rcguard watch` (backend none) left running; a
 *     simulated client appends one failed-login line a second, stamped with
 *     the real time, until watch prints its block. BENCH_WATCH_TRIALS trials
 *     (default 3).
 * (b) cron at a 60 s interval, for comparison: the same client on a
 *     simulated clock (RCGUARD_NOW), its first attempt at a different second
 *     of the cron minute in each trial (0, 15, 30, 45, 59), `rcguard hacks`
 *     run at each minute on the lines written by then.
 * (c) watch under load for BENCH_WATCH_LOAD_S seconds (default 60): 20
 *     failures appended every 100 ms, from 1,000 addresses in turn (each
 *     is blocked after 30 s and goes on failing), watch's RSS sampled every
 *     5 s (ps), and the number of cycles it ran (its stop line): memory
 *     must not grow with the cycles.
 */
import {execFileSync, spawn} from 'node:child_process'
import {appendFileSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'

const ROOT = resolve(import.meta.dirname, '..')
const BIN = join(ROOT, 'bin', 'run.js')
const TRIALS = Number(process.env.BENCH_WATCH_TRIALS ?? 3)
const LOAD_S = Number(process.env.BENCH_WATCH_LOAD_S ?? 60)
const MAX_ATTEMPTS = 6

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const p2 = (n: number): string => String(n).padStart(2, '0')
let session = 0
function line(t: number, ip: string): string {
  const d = new Date(t)
  session++
  const stamp = `[${p2(d.getUTCDate())}-${months[d.getUTCMonth()]}-${d.getUTCFullYear()} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} +0000]`
  return `${stamp}: <b${session}> Failed login for bench${session} from ${ip} in session b${session}x (error: 0)\n`
}

function setup(): {dir: string; config: string; log: string} {
  const dir = mkdtempSync(join(tmpdir(), 'rcguard-bench-watch-'))
  const log = join(dir, 'userlogins.log')
  writeFileSync(log, '')
  const config = join(dir, 'rcguard.json')
  writeFileSync(config, JSON.stringify({database: join(dir, 'db', 'db.json'), instances: [{name: 'master', logs: [log], ports: [443]}], firewall: {backend: 'none'}, maxAttempts: MAX_ATTEMPTS}))
  return {dir, config, log}
}

function startWatch(config: string): {out: string[]; pid: number; stop: () => Promise<void>} {
  const child = spawn('node', [BIN, 'watch', '--config', config], {stdio: ['ignore', 'pipe', 'inherit']})
  const out: string[] = []
  let rest = ''
  child.stdout.on('data', (b: Buffer) => {
    const parts = (rest + b.toString()).split('\n')
    rest = parts.pop() ?? ''
    out.push(...parts)
  })
  const exited = new Promise<void>((r) => child.on('exit', () => r()))
  return {
    out,
    pid: child.pid ?? 0,
    stop: async () => {
      child.kill('SIGTERM')
      await exited
    },
  }
}

async function watchTrial(): Promise<number> {
  const s = setup()
  const w = startWatch(s.config)
  try {
    while (!w.out.some((l) => l.startsWith('rcguard watch: following'))) await sleep(20)
    let attempts = 0
    while (!w.out.some((l) => l.startsWith('blocked 192.0.2.9 ')) && attempts < 120) {
      appendFileSync(s.log, line(Date.now(), '192.0.2.9'))
      attempts++
      await sleep(1_000)
    }
    return attempts
  } finally {
    await w.stop()
    rmSync(s.dir, {recursive: true, force: true})
  }
}

function cronTrial(phaseS: number): number {
  const s = setup()
  try {
    const start = Date.UTC(2026, 10, 25, 13, 0, phaseS)
    let written = 0
    for (let tick = Date.UTC(2026, 10, 25, 13, 1, 0); ; tick += 60_000) {
      while (start + written * 1000 < tick) appendFileSync(s.log, line(start + written++ * 1000, '192.0.2.9'))
      const r = JSON.parse(execFileSync('node', [BIN, 'hacks', '--json', '--config', s.config], {env: {...process.env, RCGUARD_NOW: new Date(tick).toISOString()}}).toString()) as {newlyBlocked: unknown[]}
      if (r.newlyBlocked.length > 0) return written
    }
  } finally {
    rmSync(s.dir, {recursive: true, force: true})
  }
}

function rssKB(pid: number): number {
  try {
    return Number(execFileSync('ps', ['-o', 'rss=', '-p', String(pid)]).toString().trim())
  } catch {
    return Number.NaN
  }
}

async function load(): Promise<{samples: number[]; cycles: string}> {
  const s = setup()
  const w = startWatch(s.config)
  try {
    while (!w.out.some((l) => l.startsWith('rcguard watch: following'))) await sleep(20)
    const samples: number[] = []
    const end = Date.now() + LOAD_S * 1000
    let n = 0
    let nextSample = Date.now()
    while (Date.now() < end) {
      let text = ''
      // 1,000 addresses in turn, 20 a write: each fails every 5 s, is blocked, and goes on failing.
      for (let i = 0; i < 20; i++) text += line(Date.now(), `10.0.${n % 50}.${i + 1}`)
      appendFileSync(s.log, text)
      n++
      if (Date.now() >= nextSample) {
        samples.push(rssKB(w.pid))
        nextSample += 5_000
      }
      await sleep(100)
    }
    await w.stop()
    return {samples, cycles: w.out.at(-1) ?? ''}
  } finally {
    rmSync(s.dir, {recursive: true, force: true})
  }
}

const watchAttempts: number[] = []
for (let i = 0; i < TRIALS; i++) watchAttempts.push(await watchTrial())
const cronAttempts = [0, 15, 30, 45, 59].map(cronTrial)
console.log(`attempts before the block, one attempt a second, maxAttempts ${MAX_ATTEMPTS} (the ${MAX_ATTEMPTS}th completes the window):`)
console.log(`  rcguard watch:             ${watchAttempts.join(', ')} (${TRIALS} trials, real time)`)
console.log(`  cron, hacks every 60 s:    ${cronAttempts.join(', ')} (first attempt at second 0, 15, 30, 45, 59 of the cron minute)`)
const {samples, cycles} = await load()
console.log(`watch under load, ${LOAD_S} s, 20 failures every 100 ms: RSS every 5 s (MB): ${samples.map((k) => (k / 1024).toFixed(0)).join(' ')}`)
console.log(`  ${cycles}`)
