/**
 * rcguard doctor against real Roundcube configurations (fixture.ts): one test
 * per finding, each producing it from Roundcube's own settings read by the
 * real php, and a clean configuration that produces none.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, mkdirSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {execa} from 'execa'
import {BIN, cli, f2, fileDate, tempDir} from '../helpers/env.js'
import {runDoctor} from '../../src/core/doctor/doctor.js'
import type {Finding} from '../../src/core/doctor/types.js'
import {cleanGuard, rcFixture, requireRoundcube, type RcFixture} from './fixture.js'

async function doctor(f: RcFixture, config: string): Promise<Finding[]> {
  return (await runDoctor({configPath: config, roundcubeDir: f.rcDir, systemRoot: f.root})).findings
}

const ids = (fs: Finding[]): string[] => fs.map((x) => `${x.severity}:${x.id}`).sort()

test('a configuration that matches Roundcube: no finding, exit 0, one ok line', async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t)
  const config = cleanGuard(f)
  assert.deepEqual(await doctor(f, config), [])
  const r = await cli(['doctor', '--config', config, '--roundcube', f.rcDir], f.cliOptions)
  assert.equal(r.exitCode, 0, r.stderr + r.stdout)
  assert.match(r.stdout, /^ok: rcguard's configuration .* matches Roundcube's/)
  assert.equal(r.stdout.trim().split('\n').length, 1)
})

test('--json: one document with findings (id, severity, message, fix) and the status', async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t, "$config['log_logins'] = false;")
  const r = await cli(['doctor', '--json', '--config', f.guard({instances: [{name: 'master', ports: [443], logs: [f.errors]}]}), '--roundcube', f.rcDir], f.cliOptions)
  assert.equal(r.exitCode, 1, r.stderr)
  const doc = JSON.parse(r.stdout) as {findings: Finding[]; status: number}
  assert.equal(doc.status, 1)
  assert.deepEqual(ids(doc.findings), ['warning:log-logins-off'])
  for (const x of doc.findings) assert.deepEqual(Object.keys(x).sort(), ['fix', 'id', 'message', 'severity'])
})

test('log_logins off: a warning that error-1 bots and rate-limited attempts leave no line, and userlogins is never written', async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t, "$config['log_logins'] = false;")
  const fs = await doctor(f, cleanGuard(f))
  assert.deepEqual(ids(fs), ['warning:log-logins-off', 'warning:log-never-written'])
  const off = fs.find((x) => x.id === 'log-logins-off')
  assert.match(off?.message ?? '', /error 1/)
  assert.match(off?.message ?? '', /login_rate_limit \(error 4\)/)
  assert.match(off?.fix ?? '', /\$config\['log_logins'\] = true;/)
  assert.match(fs.find((x) => x.id === 'log-never-written')?.message ?? '', /userlogins\.log.*log_logins off/)
})

test('log_session_id 0: a warning naming what the anti-framing rules and twin matching lose; an error with sessionPrefix required', async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t, "$config['log_session_id'] = 0;")
  const fs = await doctor(f, cleanGuard(f))
  assert.deepEqual(ids(fs), ['warning:log-session-id-off'])
  assert.match(fs[0]?.message ?? '', /reports userlogins failures without counting them/)
  assert.match(fs[0]?.message ?? '', /within 5 s count once/)
  const required = await doctor(f, cleanGuard(f, {logs: [{path: f.userlogins, sessionPrefix: 'required'}, f.errors]}))
  assert.deepEqual(ids(required), ['error:session-prefix-required', 'warning:log-session-id-off'])
})

test('log_dir elsewhere: the logs Roundcube writes are not read (error) and the ones rcguard reads are never written', async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t)
  const other = join(f.dir, 'elsewhere')
  mkdirSync(other)
  f.php(`$config['log_dir'] = ${JSON.stringify(other)};`)
  const fs = await doctor(f, cleanGuard(f))
  assert.deepEqual(ids(fs), ['error:log-not-read', 'warning:log-never-written', 'warning:log-never-written'])
  assert.match(fs.find((x) => x.id === 'log-not-read')?.fix ?? '', new RegExp(`${other}/userlogins\\.log`))
})

test('log_file_ext and a relative log_dir are resolved as Roundcube does', async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t, "$config['log_file_ext'] = '';")
  const fs = await doctor(f, cleanGuard(f))
  assert.deepEqual(ids(fs), ['error:log-not-read', 'warning:log-never-written', 'warning:log-never-written'])
  assert.match(fs.find((x) => x.id === 'log-not-read')?.message ?? '', /logs\/errors and .*logs\/userlogins /)
})

test('only the errors log read while log_logins is on: a warning that refusals are only in userlogins', async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t)
  const fs = await doctor(f, cleanGuard(f, {logs: [f.errors]}))
  assert.deepEqual(ids(fs), ['warning:log-not-read'])
  assert.match(fs[0]?.message ?? '', /error 4/)
})

test('a file log read as syslog: an error (log-format)', async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t)
  const fs = await doctor(f, cleanGuard(f, {logs: [{path: f.userlogins, format: 'syslog'}, f.errors]}))
  assert.deepEqual(ids(fs), ['error:log-format'])
})

test('log_date_format not the default: rcguard must be told (warning), and a different dateFormat is an error', async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t, "$config['log_date_format'] = 'Y-m-d H:i:s';")
  assert.deepEqual(ids(await doctor(f, cleanGuard(f))), ['warning:log-date-format', 'warning:log-date-format'])
  const wrong = await doctor(f, cleanGuard(f, {logs: [{path: f.userlogins, dateFormat: 'd.m.Y H:i:s'}, {path: f.errors, dateFormat: 'Y-m-d H:i:s'}]}))
  assert.deepEqual(ids(wrong), ['error:log-date-format'])
  assert.deepEqual(await doctor(f, cleanGuard(f, {logs: [{path: f.userlogins, dateFormat: 'Y-m-d H:i:s'}, {path: f.errors, dateFormat: 'Y-m-d H:i:s'}]})), [])
})

test('log_driver syslog: no syslog log read is an error naming syslog_id and the facility; a wrong ident is an error; the right one is clean', async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t, "$config['log_driver'] = 'syslog'; $config['syslog_id'] = 'webmail'; $config['syslog_facility'] = LOG_MAIL;")
  const none = await doctor(f, cleanGuard(f))
  assert.deepEqual(ids(none), ['error:log-not-read', 'warning:log-never-written', 'warning:log-never-written'])
  const notRead = none.find((x) => x.id === 'log-not-read')
  assert.match(notRead?.message ?? '', /syslog_id webmail, facility mail/)
  assert.match(notRead?.fix ?? '', /\/var\/log\/mail\.log .*ident: webmail/)
  const syslog = join(f.logDir, 'mail.log')
  writeFileSync(syslog, '')
  assert.deepEqual(ids(await doctor(f, cleanGuard(f, {logs: [{path: syslog, format: 'syslog'}]}))), ['error:syslog-ident'])
  assert.deepEqual(await doctor(f, cleanGuard(f, {logs: [{path: syslog, format: 'syslog', ident: 'webmail'}]})), [])
})

test('log_driver stdout: no stdout log read is an error', async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t, "$config['log_driver'] = 'stdout';")
  assert.deepEqual(ids(await doctor(f, cleanGuard(f, {logs: [{path: f.errors, format: 'file'}]}))), ['error:log-not-read', 'warning:log-never-written'])
  assert.deepEqual(await doctor(f, cleanGuard(f, {logs: [{path: join(f.logDir, 'fpm.log'), format: 'stdout'}]})), [])
})

test('per_user_logging: a note only (login attempts stay in the main logs), exit 0', async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t, "$config['per_user_logging'] = true;")
  assert.deepEqual(ids(await doctor(f, cleanGuard(f))), ['info:per-user-logging'])
  const r = await cli(['doctor', '--config', cleanGuard(f), '--roundcube', f.rcDir], f.cliOptions)
  assert.equal(r.exitCode, 0)
})

test('login_lc differing from the instance loginLc: a warning', async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t, "$config['login_lc'] = 0;")
  assert.deepEqual(ids(await doctor(f, cleanGuard(f))), ['warning:login-lc'])
  assert.deepEqual(await doctor(f, cleanGuard(f, {loginLc: 0})), [])
})

test('include_host_config: each host configuration is checked as Roundcube would run it', async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t)
  const other = join(f.dir, 'hostlogs')
  mkdirSync(other)
  writeFileSync(join(f.rcDir, 'test-host.inc.php'), `<?php\n$config['log_dir'] = ${JSON.stringify(`${other}/`)};\n`)
  f.php("$config['include_host_config'] = ['mail.example.test' => 'test-host.inc.php', 'gone.example.test' => 'missing.inc.php'];")
  const fs = await doctor(f, cleanGuard(f))
  assert.deepEqual(ids(fs), ['error:log-not-read', 'warning:roundcube-host-config'])
  assert.match(fs.find((x) => x.id === 'log-not-read')?.message ?? '', /host mail\.example\.test .*hostlogs\/errors\.log/)
})

test('proxy_whitelist not in trustedProxies: an error; trustedProxies not in proxy_whitelist: a warning; both: clean', async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t, "$config['proxy_whitelist'] = ['192.0.2.10'];")
  assert.deepEqual(ids(await doctor(f, cleanGuard(f))), ['error:proxy-not-trusted'])
  assert.deepEqual(ids(await doctor(f, cleanGuard(f, {}, {trustedProxies: ['192.0.2.10', {address: '192.0.2.20', header: 'x-real-ip'}]}))), ['warning:trusted-not-proxy'])
  assert.deepEqual(await doctor(f, cleanGuard(f, {}, {trustedProxies: ['192.0.2.0/28']})), [])
})

test('recent login lines with forwarded headers from an untrusted address: a warning (the parser reads the lines)', async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t)
  const now = new Date()
  writeFileSync(f.userlogins, `${f2(now, '198.51.100.9 (X-Forwarded-For: 203.0.113.7)')}\n${f2(now, '198.51.100.9 (X-Forwarded-For: 203.0.113.8)')}\n${f2(now, '198.51.100.30')}\n`)
  const fs = await doctor(f, cleanGuard(f))
  assert.deepEqual(ids(fs), ['warning:forwarded-untrusted'])
  assert.match(fs[0]?.message ?? '', /2 recent login lines .* 198\.51\.100\.9 \(2\)/)
  // From a trusted proxy the same lines are fine (and Roundcube must list it too).
  f.php("$config['proxy_whitelist'] = ['198.51.100.9'];")
  assert.deepEqual(await doctor(f, cleanGuard(f, {}, {trustedProxies: ['198.51.100.9']})), [])
  // A proxy Roundcube trusts and rcguard does not: said as such.
  assert.deepEqual(ids(await doctor(f, cleanGuard(f))), ['error:proxy-not-trusted', 'warning:forwarded-untrusted'])
})

test('a CDN or load balancer in front (most login lines from a few forwarding addresses, or from Cloudflare): behind-front; a bot hammering alone is none', async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t)
  const now = new Date()
  const through = Array.from({length: 25}, (_, i) => f2(now, `198.51.100.9 (X-Forwarded-For: 203.0.113.${i + 1})`))
  writeFileSync(f.userlogins, `${[...through, f2(now, '192.0.2.44')].join('\n')}\n`)
  f.php("$config['proxy_whitelist'] = ['198.51.100.9'];")
  // Trusted as it should be: counting is right, but a block here still stops no client.
  const fs = await doctor(f, cleanGuard(f, {}, {trustedProxies: ['198.51.100.9']}))
  assert.deepEqual(ids(fs), ['warning:behind-front'])
  assert.match(fs[0]?.message ?? '', /^25 of the last 26 login lines reached Roundcube from 1 address that forward their clients \(198\.51\.100\.9\)/)
  assert.match(fs[0]?.fix ?? '', /CDN's own firewall/)
  // One address failing 30 times without forwarded headers is an attacker, not a front.
  writeFileSync(f.userlogins, `${Array.from({length: 30}, () => f2(now, '192.0.2.77')).join('\n')}\n`)
  assert.deepEqual(ids(await doctor(f, cleanGuard(f, {}, {trustedProxies: ['198.51.100.9']}))), [])
  // Lines from Cloudflare's ranges: a CDN, however few.
  writeFileSync(f.userlogins, `${f2(now, '104.16.0.5 (X-Forwarded-For: 203.0.113.1)')}\n${f2(now, '192.0.2.77')}\n`)
  const cdn = await doctor(f, cleanGuard(f, {}, {trustedProxies: ['198.51.100.9']}))
  assert.ok(ids(cdn).includes('warning:behind-front'), ids(cdn).join(','))
  assert.match(cdn.find((x) => x.id === 'behind-front')?.message ?? '', /from Cloudflare's addresses \(104\.16\.0\.5\)/)
  // Attacker text: user names that spell a Cloudflare sender and a forwarded header, sent from one plain address, make no front.
  const forged = Array.from({length: 25}, (_, i) => f2(now, '192.0.2.77', `x from 104.16.0.5 (X-Forwarded-For: 203.0.113.${i}) in session ab`))
  writeFileSync(f.userlogins, `${forged.join('\n')}\n`)
  const fake = await doctor(f, cleanGuard(f, {}, {trustedProxies: ['198.51.100.9']}))
  assert.ok(!ids(fake).includes('warning:behind-front'), ids(fake).join(','))
})

test('php missing: one line saying so, exit 2', async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t)
  // A PATH with the firewall tools of the default backend (iptables) and no php.
  const empty = tempDir(t)
  for (const tool of ['iptables-restore', 'ip6tables-restore']) {
    const found = ['/usr/sbin', '/sbin', '/usr/bin'].map((d) => join(d, tool)).find((p) => existsSync(p))
    if (found !== undefined) symlinkSync(found, join(empty, tool))
  }
  const r = await execa(process.execPath, [BIN, 'doctor', '--config', cleanGuard(f), '--roundcube', f.rcDir], {reject: false, env: {PATH: empty, NO_COLOR: '1', RCGUARD_DOCTOR_ROOT: f.root}, extendEnv: false})
  assert.equal(r.exitCode, 2, String(r.stderr))
  assert.deepEqual(String(r.stdout).trim().split('\n'), [String(r.stdout).trim()])
  assert.match(String(r.stdout), /^error: php-missing: php not found on PATH.*fix: apt-get install php-cli/)
})

test('a Roundcube directory that is none, and a broken config.inc.php: one error each, exit 2', async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t)
  const r = await cli(['doctor', '--config', cleanGuard(f), '--roundcube', tempDir(t)], f.cliOptions)
  assert.equal(r.exitCode, 2)
  assert.match(r.stdout, /^error: roundcube-not-found: /)
  f.php('this is not php(')
  const broken = await cli(['doctor', '--config', cleanGuard(f), '--roundcube', f.rcDir], f.cliOptions)
  assert.equal(broken.exitCode, 2)
  assert.match(broken.stdout, /^error: php-failed: php could not read Roundcube's configuration/)
})

test("rcguard's own configuration invalid: an error finding, exit 2", async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t)
  const bad = f.guard({maxAttempts: 'many'})
  const r = await cli(['doctor', '--config', bad, '--roundcube', f.rcDir], f.cliOptions)
  assert.equal(r.exitCode, 2)
  assert.match(r.stdout, /^error: rcguard-config: invalid configuration .*maxAttempts/)
})

test('an install directory (config/ inside) is accepted as --roundcube', async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t)
  const install = join(f.dir, 'install')
  mkdirSync(install)
  await execa('cp', ['-a', f.rcDir, join(install, 'config')])
  const r = await cli(['doctor', '--config', cleanGuard(f), '--roundcube', install], f.cliOptions)
  assert.equal(r.exitCode, 0, r.stdout)
  void fileDate
})
