/**
 * npm run bench, part 5: every command at 10,000 / 100,000 / 1,000,000
 * database entries. Prints figures, asserts nothing.
 *
 * For each size a database of the mix in generate-db.ts is generated in the
 * format rcguard 0.1 wrote (schema 3: whole user names, up to ten) and kept
 * in $TMPDIR/rcguard-bench-scale for later runs. The first `hacks` on it
 * migrates it (that run is timed as "migrate"); every other command then
 * runs on a fresh copy of the migrated file, as
 *   /usr/bin/time -f '%e %M' timeout -s KILL LIMIT node bin/run.js CMD --config CFG > /dev/null
 * with firewall.backend none and an empty log (no new lines), and prints its
 * wall time and peak RSS next to the same command on an empty database (its
 * start-up cost) and `node -e 0`. A command that fails is shown with its
 * exit status and the first line it wrote to stderr.
 *
 * BENCH_SCALE_OLD=DIR also runs the rcguard built in DIR (a checkout with
 * dist/ built, e.g. the previous release) on the same schema 3 files, each
 * row beside the current one: the "before" figures.
 * BENCH_SCALE_SIZES=10000,100000 narrows the sizes; BENCH_SCALE_LIMIT is the
 * seconds a command may take before it is killed (default 300).
 */
import {spawnSync} from 'node:child_process'
import {copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {DB_GENERATOR_VERSION, generateDb, INSTANCES} from './generate-db.js'
import {SCHEMA_VERSION} from '../src/core/store/schema.js'

const ROOT = resolve(import.meta.dirname, '..')
const SIZES = (process.env.BENCH_SCALE_SIZES ?? '10000,100000,1000000').split(',').map(Number)
const LIMIT = Number(process.env.BENCH_SCALE_LIMIT ?? 300)
const OLD = process.env.BENCH_SCALE_OLD === undefined || process.env.BENCH_SCALE_OLD === '' ? null : resolve(process.env.BENCH_SCALE_OLD)
/** The bench's "now": the generated databases are current at this time, whenever the bench runs. */
const NOW = Date.UTC(2026, 10, 25, 13, 0, 0)
const ENV = {...process.env, RCGUARD_NOW: new Date(NOW).toISOString(), NO_COLOR: '1'}

const CACHE = join(tmpdir(), 'rcguard-bench-scale')
const WORK = join(CACHE, 'work')

interface Run {
  seconds: number
  rssKB: number
  /** null: it succeeded. */
  failure: string | null
}

/** One command under /usr/bin/time, killed after LIMIT seconds. */
function timed(cmd: string, args: string[], expectStatus = 0): Run {
  const out = join(WORK, 'time.txt')
  rmSync(out, {force: true})
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M %x', '-o', out, 'timeout', '-s', 'KILL', String(LIMIT), cmd, ...args], {
    env: ENV,
    stdio: ['ignore', 'ignore', 'pipe'],
    maxBuffer: 64 << 20,
  })
  const [seconds = 'NaN', rss = 'NaN', status = String(r.status)] = readFileSync(out, 'utf8').trim().split('\n').pop()?.split(' ') ?? []
  const stderr = r.stderr.toString().split('\n').find((l) => l.trim() !== '' && !l.startsWith('Command ')) ?? ''
  const code = Number(status)
  const failure = code === expectStatus ? null : code === 137 || code === -1 ? `killed after ${LIMIT} s` : `exit ${code}: ${stderr.slice(0, 140)}`
  return {seconds: Number(seconds), rssKB: Number(rss), failure}
}

function configFor(dir: string, code: Code): string {
  const log = join(dir, 'empty.log')
  writeFileSync(log, '')
  const config = join(dir, 'rcguard.json')
  writeFileSync(
    config,
    JSON.stringify({
      database: join(dir, 'db', 'db.json'),
      firewall: {backend: 'none'},
      // Enough room for the largest size, so that what is measured is that size (the default ceiling is 200,000);
      // the old code knows no such key.
      ...(code.label === 'old' ? {} : {maxEntries: 2_000_000}),
      instances: INSTANCES.map((name) => ({name, logs: [log], ports: [443]})),
    }),
  )
  return config
}

/** The commands, with the exit status each is expected to end with (on the empty database: nothing to unblock or remove is status 6). */
const COMMANDS: {name: string; args: string[]; status?: number; emptyStatus?: number}[] = [
  {name: 'list', args: ['list']},
  {name: 'list --json', args: ['list', '--json']},
  {name: 'hacks', args: ['hacks']},
  {name: 'hacks --dry-run', args: ['hacks', '--dry-run']},
  {name: 'scan --dry-run', args: ['scan', '--dry-run']},
  {name: 'block IP', args: ['block', '198.51.100.7']},
  // The generator's first address: an entry at every size.
  {name: 'unblock IP', args: ['unblock', '10.0.0.0'], emptyStatus: 6},
  {name: 'whitelist add', args: ['whitelist', '198.51.100.0/24']},
  {name: 'whitelist --remove', args: ['whitelist', '--remove', '192.0.2.0/32'], emptyStatus: 6},
  {name: 'flush --invalid --yes', args: ['flush', '--invalid', '--yes']},
  {name: 'flush --yes', args: ['flush', '--yes']},
]

interface Code {
  label: string
  bin: string
}

const codes: Code[] = [{label: 'new', bin: join(ROOT, 'bin', 'run.js')}]
if (OLD !== null) codes.unshift({label: 'old', bin: join(OLD, 'bin', 'run.js')})

function cell(r: Run | undefined): string {
  if (r === undefined) return '-'
  const fig = `${r.seconds.toFixed(2)} s ${(r.rssKB / 1024).toFixed(0)} MB`
  return r.failure === null ? fig : `FAIL ${fig}`
}

/** Runs `args` of `code` on a fresh copy of `db` (null: no database). */
function runOn(code: Code, dir: string, db: string | null, args: string[], status = 0): Run {
  rmSync(join(dir, 'db'), {recursive: true, force: true})
  mkdirSync(join(dir, 'db'), {mode: 0o700})
  if (db !== null) copyFileSync(db, join(dir, 'db', 'db.json'))
  return timed('node', [code.bin, ...args, '--config', configFor(dir, code)], status)
}

mkdirSync(CACHE, {recursive: true})
rmSync(WORK, {recursive: true, force: true})
mkdirSync(WORK, {recursive: true, mode: 0o700})
const failures: string[] = []
const rows = new Map<string, Map<string, Run>>()
const put = (row: string, col: string, r: Run): void => {
  let m = rows.get(row)
  if (m === undefined) rows.set(row, (m = new Map()))
  m.set(col, r)
  if (r.failure !== null) failures.push(`${row} at ${col}: ${r.failure}`)
}
const sizeRows: string[] = []

try {
  const bare = timed('node', ['-e', '0'])
  for (const code of codes) {
    const dir = join(WORK, code.label)
    mkdirSync(dir, {recursive: true, mode: 0o700})
    for (const c of COMMANDS) put(`${c.name} [${code.label}]`, 'empty', runOn(code, dir, null, c.args, c.emptyStatus ?? c.status))
  }
  for (const n of SIZES) {
    const v3 = join(CACHE, `v3-${n}-g${DB_GENERATOR_VERSION}.json`)
    if (!existsSync(v3)) await generateDb(v3, {entries: n, now: NOW, version: 3})
    const v3Bytes = statSync(v3).size
    const col = n.toLocaleString('en-US')
    for (const code of codes) {
      const dir = join(WORK, code.label)
      mkdirSync(dir, {recursive: true, mode: 0o700})
      // The file as this code keeps it: the first `hacks` migrates it (and prunes it), later runs find it so.
      const migrate = runOn(code, dir, v3, ['hacks'])
      put(`migrate: first hacks [${code.label}]`, col, migrate)
      const base = join(CACHE, `${code.label}-${n}.json`)
      let current = migrate.failure === null ? base : v3
      if (migrate.failure === null) copyFileSync(join(dir, 'db', 'db.json'), base)
      else if (code.label === 'new') {
        // A schema 3 file too large to read (or migrate): the same entries as the current rcguard would have kept them.
        await generateDb(base, {entries: n, now: NOW, version: SCHEMA_VERSION})
        current = base
        sizeRows.push(`${col} entries [new]: the schema 3 file could not be migrated; the commands ran on the same entries generated as schema ${SCHEMA_VERSION}`)
      }
      const bytes = statSync(current).size
      sizeRows.push(
        `${col} entries [${code.label}]: schema 3 file ${(v3Bytes / n).toFixed(0)} B/entry; as ${code.label} keeps it ${(bytes / n).toFixed(0)} B/entry (${(bytes / 1048576).toFixed(1)} MiB)`,
      )
      for (const c of COMMANDS) put(`${c.name} [${code.label}]`, col, runOn(code, dir, current, c.args, c.status))
    }
  }
  const cols = ['empty', ...SIZES.map((n) => n.toLocaleString('en-US'))]
  const width = Math.max(...[...rows.keys()].map((k) => k.length))
  console.log(`node ${process.version}; firewall.backend none; each figure: wall time and peak RSS of one run (/usr/bin/time)`)
  console.log(`node -e 0: ${cell(bare)}`)
  console.log(`${''.padEnd(width)}  ${cols.map((c) => c.padStart(18)).join('  ')}`)
  for (const [name, m] of rows) console.log(`${name.padEnd(width)}  ${cols.map((c) => cell(m.get(c)).padStart(18)).join('  ')}`)
  console.log('')
  console.log('database size:')
  for (const line of sizeRows) console.log(`  ${line}`)
  if (failures.length > 0) {
    console.log('')
    console.log('failed runs:')
    for (const f of failures) console.log(`  ${f}`)
  }
} finally {
  rmSync(WORK, {recursive: true, force: true})
}
