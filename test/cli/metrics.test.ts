/**
 * metrics.textfile through the CLI: what a hacks run writes for node_exporter
 * (values, counters across runs, the atomic replace, a failed run, a file that
 * cannot be written, a dry run), and promtool's verdict on it.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {execa} from 'execa'
import {appendLines, at, burst, cli, f2, nowEnv, oneLogConfig, setup, stderrLines, type Setup} from '../helpers/env.js'
import {parseSamples} from '../../src/core/metrics/exposition.js'
import {sleep, Watcher} from '../helpers/watcher.js'

function withMetrics(t: Parameters<typeof setup>[0], extra: Record<string, unknown> = {}): Setup & {prom: string; promDir: string} {
  const s = setup(t)
  const promDir = join(s.dir, 'textfile')
  mkdirSync(promDir)
  const prom = join(promDir, 'rcguard.prom')
  oneLogConfig(s, {whitelist: ['127.0.0.0/8', '198.51.100.0/24'], windows: [{maxUsers: 3, periodMinutes: 60}], metrics: {textfile: prom}, ...extra})
  return {...s, prom, promDir}
}

const read = (prom: string): Map<string, number> => parseSamples(readFileSync(prom, 'utf8'))
const v = (m: Map<string, number>, key: string): number | undefined => m.get(key)

const LINES = 'rcguard_log_lines_read_total{instance="master"}'
const COUNTED = 'rcguard_login_failures_total{instance="master",counted="true"}'
const IGNORED = 'rcguard_login_failures_total{instance="master",counted="false"}'
const BY = (reason: string): string => `rcguard_blocks_total{instance="master",reason="${reason}"}`
const ACTIVE = (family: string): string => `rcguard_active_blocks{instance="master",family="${family}"}`
const ERRORS = (stage: string): string => `rcguard_errors_total{stage="${stage}"}`
const SUCCESS = 'rcguard_last_run_success_timestamp_seconds'

/** 6 failures of one IPv4 address (first rule), 3 user names of one IPv6 address (users window), 2 of a whitelisted network, an unrelated line. */
function attack(log: string): number {
  const lines = [
    ...burst(at(0), '192.0.2.50', 6),
    f2(at(1, 0), '2001:db8::7', 'a@example.com'),
    f2(at(1, 10), '2001:db8::7', 'b@example.com'),
    f2(at(1, 20), '2001:db8::7', 'c@example.com'),
    f2(at(1, 30), '198.51.100.9'),
    f2(at(1, 40), '198.51.100.9'),
    '[25-Nov-2026 13:01:50 +0000]: a line that is no login at all',
  ]
  appendLines(log, lines)
  return lines.length
}

test('hacks writes the textfile: lines read, failures counted or not, blocks by rule kind, blocks in force by family', async (t) => {
  const s = withMetrics(t)
  const n = attack(s.log)
  const r = await cli(['hacks', '--config', s.config], {env: nowEnv(3)})
  assert.equal(r.exitCode, 0, r.stderr)
  const m = read(s.prom)
  assert.equal(v(m, LINES), n)
  assert.equal(v(m, COUNTED), 9)
  assert.equal(v(m, IGNORED), 2, 'the whitelisted network\'s failures are never-block: counted="false"')
  assert.equal(v(m, BY('failures')), 1)
  assert.equal(v(m, BY('users')), 1)
  for (const reason of ['network', 'account', 'hand']) assert.equal(v(m, BY(reason)), 0, reason)
  assert.equal(v(m, ACTIVE('ipv4')), 1)
  assert.equal(v(m, ACTIVE('ipv6')), 1)
  assert.equal(v(m, SUCCESS), at(3).getTime() / 1000)
  for (const stage of ['config', 'store', 'log', 'firewall', 'notify', 'other']) assert.equal(v(m, ERRORS(stage)), 0, stage)
  assert.equal(v(m, 'rcguard_firewall_drift_repairs_total'), 0)
  // No address or user name anywhere in the file.
  assert.doesNotMatch(readFileSync(s.prom, 'utf8'), /192\.0\.2|2001:db8|198\.51|example\.com/)
  assert.equal(statSync(s.prom).mode & 0o777, 0o644, 'node_exporter runs as another user: the file must be readable')
})

test('counters survive runs, a run with nothing new adds nothing, and the file is replaced whole each time (no temp file left)', async (t) => {
  const s = withMetrics(t)
  const n = attack(s.log)
  assert.equal((await cli(['hacks', '--config', s.config], {env: nowEnv(3)})).exitCode, 0)
  const first = statSync(s.prom)
  const text1 = readFileSync(s.prom, 'utf8')
  // Nothing new: the same counters, a new file (a rename, not an append or a rewrite in place), a later success time.
  const dbBefore = statSync(s.db, {bigint: true}).mtimeNs
  const r2 = await cli(['hacks', '--config', s.config], {env: nowEnv(4)})
  assert.equal(r2.exitCode, 0, r2.stderr)
  assert.equal(statSync(s.db, {bigint: true}).mtimeNs, dbBefore, 'a no-op run rewrote the database for its metrics')
  const m2 = read(s.prom)
  assert.equal(v(m2, LINES), n)
  assert.equal(v(m2, COUNTED), 9)
  assert.equal(v(m2, BY('failures')), 1)
  assert.equal(v(m2, SUCCESS), at(4).getTime() / 1000)
  assert.notEqual(statSync(s.prom).ino, first.ino, 'the file was rewritten in place, not replaced')
  const text2 = readFileSync(s.prom, 'utf8')
  assert.equal(text2.match(/^# TYPE /gm)?.length, text1.match(/^# TYPE /gm)?.length, 'the file was appended to')
  // More lines: added to what was counted.
  appendLines(s.log, burst(at(5), '203.0.113.4', 6))
  assert.equal((await cli(['hacks', '--config', s.config], {env: nowEnv(7)})).exitCode, 0)
  const m3 = read(s.prom)
  assert.equal(v(m3, LINES), n + 6)
  assert.equal(v(m3, COUNTED), 15)
  assert.equal(v(m3, BY('failures')), 2)
  assert.equal(v(m3, ACTIVE('ipv4')), 2)
  assert.deepEqual(readdirSync(s.promDir), ['rcguard.prom'], 'a temporary file was left beside the textfile')
  // The counters are in the database too: with the textfile gone, they carry on from there.
  const db = readFileSync(s.db, 'utf8')
  assert.match(db, /"metrics":\{"series":\{/)
  writeFileSync(s.prom, '')
  assert.equal((await cli(['hacks', '--config', s.config], {env: nowEnv(8)})).exitCode, 0)
  assert.equal(v(read(s.prom), LINES), n + 6)
})

test('an older database without metrics loads, and counting starts from it', async (t) => {
  const s = withMetrics(t)
  // A database written by this rcguard without metrics configured.
  oneLogConfig(s)
  appendLines(s.log, burst(at(0), '192.0.2.50', 2))
  assert.equal((await cli(['hacks', '--config', s.config], {env: nowEnv(1)})).exitCode, 0)
  assert.doesNotMatch(readFileSync(s.db, 'utf8'), /"metrics"/, 'without metrics.textfile the database carries no metrics')
  oneLogConfig(s, {metrics: {textfile: s.prom}})
  appendLines(s.log, burst(at(2), '192.0.2.50', 1))
  const r = await cli(['hacks', '--config', s.config], {env: nowEnv(3)})
  assert.equal(r.exitCode, 0, r.stderr)
  assert.equal(v(read(s.prom), COUNTED), 1)
})

test('a failed run still writes the textfile: its error counted, the last success time kept; the next run keeps the count', async (t) => {
  const s = withMetrics(t)
  attack(s.log)
  assert.equal((await cli(['hacks', '--config', s.config], {env: nowEnv(3)})).exitCode, 0)
  const good = readFileSync(s.db)
  writeFileSync(s.db, '{')
  const r = await cli(['hacks', '--config', s.config], {env: nowEnv(4)})
  assert.equal(r.exitCode, 4, r.stderr)
  const m = read(s.prom)
  assert.equal(v(m, ERRORS('store')), 1)
  assert.equal(v(m, SUCCESS), at(3).getTime() / 1000, 'a failed run advanced the last success time')
  assert.equal(v(m, COUNTED), 9, 'the counters were lost with the database')
  assert.equal(v(m, ACTIVE('ipv4')), 1)
  writeFileSync(s.db, good)
  appendLines(s.log, [f2(at(4), '203.0.113.9')])
  assert.equal((await cli(['hacks', '--config', s.config], {env: nowEnv(5)})).exitCode, 0)
  const after = read(s.prom)
  assert.equal(v(after, ERRORS('store')), 1, 'the error counted by the failed run was forgotten')
  assert.equal(v(after, SUCCESS), at(5).getTime() / 1000)
  assert.match(readFileSync(s.db, 'utf8'), /rcguard_errors_total\{stage=\\"store\\"\}":1/, 'the next write keeps the count in the database')
})

test('a textfile that cannot be written is one warning line; the run succeeds and blocks all the same', async (t) => {
  const s = withMetrics(t)
  const prom = join(s.dir, 'no-such-dir', 'rcguard.prom')
  oneLogConfig(s, {metrics: {textfile: prom}})
  appendLines(s.log, burst(at(0), '192.0.2.50', 6))
  const r = await cli(['hacks', '--config', s.config], {env: nowEnv(3)})
  assert.equal(r.exitCode, 0, r.stderr)
  assert.match(r.stdout, /^blocked 192\.0\.2\.50 /m)
  const lines = stderrLines(r)
  assert.equal(lines.length, 1, r.stderr)
  assert.match(lines[0] ?? '', /cannot write the metrics textfile .*no-such-dir\/rcguard\.prom: .*ENOENT.*the run itself is not affected/)
})

test('a dry run writes neither the textfile nor the database', async (t) => {
  const s = withMetrics(t)
  attack(s.log)
  const r = await cli(['hacks', '--dry-run', '--config', s.config], {env: nowEnv(3)})
  assert.equal(r.exitCode, 0, r.stderr)
  assert.equal(existsSync(s.prom), false)
  assert.equal(existsSync(s.db), false)
})

test('a block by hand is counted as reason="hand" in the next run\'s textfile', async (t) => {
  const s = withMetrics(t)
  assert.equal((await cli(['hacks', '--config', s.config], {env: nowEnv(1)})).exitCode, 0)
  const b = await cli(['block', '203.0.113.77', '--config', s.config], {env: nowEnv(2)})
  assert.equal(b.exitCode, 0, b.stderr)
  assert.equal((await cli(['hacks', '--config', s.config], {env: nowEnv(3)})).exitCode, 0)
  const m = read(s.prom)
  assert.equal(v(m, BY('hand')), 1)
  assert.equal(v(m, ACTIVE('ipv4')), 1)
})

test('a log that cannot be read is an error of stage "log"', async (t) => {
  const s = withMetrics(t)
  oneLogConfig(s, {metrics: {textfile: s.prom}, instances: [{name: 'master', logs: [join(s.dir, 'missing-*.log')], ports: [443]}]})
  const r = await cli(['hacks', '--config', s.config], {env: nowEnv(1)})
  assert.equal(r.exitCode, 0, r.stderr)
  assert.equal(v(read(s.prom), ERRORS('log')), 1)
})

test('promtool check metrics passes on the textfile with no warning or lint problem', async (t) => {
  const promtool = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p))
  if (promtool === undefined) {
    const reason = 'promtool is not installed (Debian package prometheus)'
    if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}: the metrics lint must run in CI`)
    t.skip(reason)
    return
  }
  const s = withMetrics(t)
  attack(s.log)
  assert.equal((await cli(['hacks', '--config', s.config], {env: nowEnv(3)})).exitCode, 0)
  // A failed run's file too.
  writeFileSync(s.db, '{')
  await cli(['hacks', '--config', s.config], {env: nowEnv(4)})
  const r = await execa(promtool, ['check', 'metrics'], {input: readFileSync(s.prom), reject: false})
  assert.equal(r.exitCode, 0, `${r.stdout}${r.stderr}`)
  assert.equal(`${r.stdout}${r.stderr}`.trim(), '', 'promtool reported problems')
})

test('watch writes the textfile after each cycle', async (t) => {
  const s = withMetrics(t)
  const w = new Watcher(s.config)
  t.after(async () => {
    if (w.alive) await w.stop()
  })
  await w.waitFor(/^rcguard watch: following/)
  appendLines(s.log, burst(new Date(Date.now() - 60_000), '192.0.2.50', 6, 1))
  await w.waitFor(/^blocked 192\.0\.2\.50 /m)
  // The textfile is written after the cycle's report: wait for it.
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline && (!existsSync(s.prom) || v(read(s.prom), COUNTED) !== 6)) await sleep(50)
  const m = read(s.prom)
  assert.equal(v(m, COUNTED), 6)
  assert.equal(v(m, BY('failures')), 1)
  assert.equal(v(m, ACTIVE('ipv4')), 1)
  assert.equal(await w.stop(), 0)
})
