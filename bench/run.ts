/**
 * npm run bench: prints figures, asserts nothing.
 *
 * 1. Start-up cost of the cron job: wall time of `rcguard hacks` when the
 *    logs gained no new line (the common case, every minute), against
 *    `node -e 0`, median of several runs, and their ratio.
 */
import {execFileSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'

const ROOT = resolve(import.meta.dirname, '..')
const BIN = join(ROOT, 'bin', 'run.js')
const RUNS = Number(process.env.BENCH_RUNS ?? 15)

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2
}

function timeRuns(cmd: string, args: string[]): number[] {
  const out: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const t = process.hrtime.bigint()
    execFileSync(cmd, args, {stdio: 'ignore'})
    out.push(Number(process.hrtime.bigint() - t) / 1e6)
  }
  return out
}

const dir = mkdtempSync(join(tmpdir(), 'rcguard-bench-'))
try {
  const log = join(dir, 'userlogins.log')
  const lines: string[] = []
  for (let i = 0; i < 1000; i++) {
    lines.push(`[25-Nov-2026 13:00:${String(i % 60).padStart(2, '0')} +0000]: <s${i}> Failed login for u${i} from 198.18.${i % 250}.${(i * 7) % 250} in session s${i}x (error: 0)`)
  }
  writeFileSync(log, `${lines.join('\n')}\n`)
  const config = join(dir, 'rcguard.yml')
  writeFileSync(
    config,
    JSON.stringify({database: join(dir, 'db.json'), instances: [{name: 'master', logs: [log], ports: [443]}], firewall: {backend: 'none'}}),
  )
  // First run reads the log; every later run finds no new line.
  execFileSync('node', [BIN, 'hacks', '--config', config], {stdio: 'ignore'})
  const hacks = timeRuns('node', [BIN, 'hacks', '--config', config])
  const bare = timeRuns('node', ['-e', '0'])
  const mh = median(hacks)
  const mb = median(bare)
  console.log(`node ${process.version}, ${RUNS} runs each, firewall.backend none`)
  console.log(`rcguard hacks, no new log lines: median ${mh.toFixed(1)} ms (min ${Math.min(...hacks).toFixed(1)}, max ${Math.max(...hacks).toFixed(1)})`)
  console.log(`node -e 0:                       median ${mb.toFixed(1)} ms (min ${Math.min(...bare).toFixed(1)}, max ${Math.max(...bare).toFixed(1)})`)
  console.log(`ratio hacks / node -e 0: ${(mh / mb).toFixed(2)}`)
} finally {
  rmSync(dir, {recursive: true, force: true})
}
