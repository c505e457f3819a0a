/**
 * npm run bench: prints figures, asserts nothing.
 *
 * 1. Start-up cost of the cron job: wall time of `rcguard hacks` (the
 *    bundled CLI, bin/run.js over dist/) when the logs gained no new line
 *    (the common case, every minute), against `node -e 0`: median of
 *    BENCH_RUNS runs each (15), the three taken in turn so that a busy
 *    machine weighs on all alike, and the ratios. Once with a JSON
 *    configuration (read without the YAML parser) and once with the same
 *    configuration as YAML, as /etc/rcguard/rcguard.yml usually is.
 *    BENCH_BASELINE_BIN=/path/to/other/bin/run.js adds that build's run
 *    (JSON configuration) to the turn, e.g. an older commit built elsewhere.
 */
import {execFileSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'

const ROOT = resolve(import.meta.dirname, '..')
const BIN = join(ROOT, 'bin', 'run.js')
const RUNS = Number(process.env.BENCH_RUNS ?? 15)
const BASELINE = process.env.BENCH_BASELINE_BIN

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2
}

function timeRun(cmd: string, args: string[]): number {
  const t = process.hrtime.bigint()
  execFileSync(cmd, args, {stdio: 'ignore'})
  return Number(process.hrtime.bigint() - t) / 1e6
}

const dir = mkdtempSync(join(tmpdir(), 'rcguard-bench-'))
try {
  const log = join(dir, 'userlogins.log')
  const lines: string[] = []
  for (let i = 0; i < 1000; i++) {
    lines.push(`[25-Nov-2026 13:00:${String(i % 60).padStart(2, '0')} +0000]: <s${i}> Failed login for u${i} from 198.18.${i % 250}.${(i * 7) % 250} in session s${i}x (error: 0)`)
  }
  writeFileSync(log, `${lines.join('\n')}\n`)
  const settings = {database: join(dir, 'db.json'), instances: [{name: 'master', logs: [log], ports: [443]}], firewall: {backend: 'none'}}
  const json = join(dir, 'rcguard.json')
  writeFileSync(json, JSON.stringify(settings))
  const yaml = join(dir, 'rcguard.yml')
  writeFileSync(
    yaml,
    `# rcguard.yml(5)\ndatabase: ${settings.database}\ninstances:\n  - name: master\n    logs: [${log}]\n    ports: [443]\nfirewall:\n  backend: none\n`,
  )
  // The baseline build has a database of its own (its format may be older).
  const baselineJson = join(dir, 'baseline.json')
  writeFileSync(baselineJson, JSON.stringify({...settings, database: join(dir, 'db-baseline.json')}))
  // First run reads the log; every later run finds no new line.
  execFileSync('node', [BIN, 'hacks', '--config', json], {stdio: 'ignore'})
  if (BASELINE !== undefined) execFileSync('node', [BASELINE, 'hacks', '--config', baselineJson], {stdio: 'ignore'})
  const runs = {bare: [] as number[], json: [] as number[], yaml: [] as number[], baseline: [] as number[]}
  for (let i = 0; i < RUNS; i++) {
    runs.bare.push(timeRun('node', ['-e', '0']))
    runs.json.push(timeRun('node', [BIN, 'hacks', '--config', json]))
    runs.yaml.push(timeRun('node', [BIN, 'hacks', '--config', yaml]))
    if (BASELINE !== undefined) runs.baseline.push(timeRun('node', [BASELINE, 'hacks', '--config', baselineJson]))
  }
  const mb = median(runs.bare)
  const line = (label: string, xs: number[]) =>
    `${label.padEnd(44)} median ${median(xs).toFixed(1).padStart(6)} ms (min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)})${xs === runs.bare ? '' : `  ${(median(xs) / mb).toFixed(2)} x node -e 0`}`
  console.log(`1. start-up: node ${process.version}, ${RUNS} runs each, in turn; firewall.backend none; bundle dist/cli.js`)
  console.log(line('node -e 0', runs.bare))
  console.log(line('rcguard hacks, no new log lines, JSON config', runs.json))
  console.log(line('rcguard hacks, no new log lines, YAML config', runs.yaml))
  if (BASELINE !== undefined) console.log(`${line('the same, JSON config, BENCH_BASELINE_BIN', runs.baseline)}  (${BASELINE})`)
} finally {
  rmSync(dir, {recursive: true, force: true})
}
