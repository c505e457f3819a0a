/**
 * rcguard init: writes a configuration from a real Roundcube configuration
 * (fixture.ts), which rcguard's own loader accepts, then runs doctor.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {cli} from '../helpers/env.js'
import {loadConfig} from '../../src/core/config/config.js'
import {looseWrites} from '../../src/core/config/permissions.js'
import {rcFixture, requireRoundcube} from './fixture.js'

test('init writes a commented configuration rcguard loads, mode 0600, and exits with doctor\'s status', async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t, "$config['proxy_whitelist'] = ['192.0.2.10'];")
  const path = join(f.dir, 'etc', 'rcguard.yml')
  const r = await cli(['init', '--config', path, '--roundcube', f.rcDir], f.cliOptions)
  assert.equal(r.exitCode, 0, r.stdout + r.stderr)
  assert.match(r.stdout, new RegExp(`^wrote ${path}\\nok: `))
  assert.equal(statSync(path).mode & 0o777, 0o600)
  const text = readFileSync(path, 'utf8')
  assert.match(text, /^# rcguard configuration, written by rcguard init/)
  const {config} = await loadConfig(path, true)
  assert.deepEqual(config.instances[0]?.logs.map((l) => [l.path, l.format]), [[f.userlogins, 'file'], [f.errors, 'file']])
  assert.deepEqual(config.trustedProxies, ['192.0.2.10'])
  assert.ok(['nftables', 'ipset', 'iptables'].includes(config.firewall.backend))
  assert.deepEqual(await looseWrites(path, config), [])
})

test('init: syslog and a date format are written so that doctor finds nothing to fix in them', async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t, "$config['log_date_format'] = 'Y-m-d H:i:s'; $config['log_logins'] = false;")
  const path = join(f.dir, 'rcguard.yml')
  const r = await cli(['init', '--config', path, '--roundcube', f.rcDir, '--json'], f.cliOptions)
  const doc = JSON.parse(r.stdout) as {written: string; status: number; findings: {id: string}[]}
  assert.equal(doc.written, path)
  assert.deepEqual(doc.findings.map((x) => x.id), ['log-logins-off'])
  assert.equal(r.exitCode, 1)
  const {config} = await loadConfig(path, true)
  assert.deepEqual(config.instances[0]?.logs.map((l) => [l.path, l.dateFormat]), [[f.errors, 'Y-m-d H:i:s']])
  const g = rcFixture(t, "$config['log_driver'] = 'syslog'; $config['syslog_id'] = 'webmail';")
  const p2 = join(g.dir, 'rcguard.yml')
  await cli(['init', '--config', p2, '--roundcube', g.rcDir], g.cliOptions)
  const c2 = (await loadConfig(p2, true)).config
  assert.deepEqual(c2.instances[0]?.logs.map((l) => [l.path, l.format, l.ident]), [['/var/log/syslog', 'auto', 'webmail']])
})

test('init refuses to overwrite an existing file without --force (one line, exit 3); --force overwrites', async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t)
  const path = join(f.dir, 'rcguard.yml')
  writeFileSync(path, 'maxAttempts: 3\n', {mode: 0o600})
  const r = await cli(['init', '--config', path, '--roundcube', f.rcDir], f.cliOptions)
  assert.equal(r.exitCode, 3)
  assert.equal(r.stdout, '')
  assert.deepEqual(r.stderr.trim().split('\n'), [`rcguard: ${path} exists: not overwritten (rcguard init --force replaces it)`])
  assert.equal(readFileSync(path, 'utf8'), 'maxAttempts: 3\n')
  const forced = await cli(['init', '--force', '--config', path, '--roundcube', f.rcDir], f.cliOptions)
  assert.equal(forced.exitCode, 0, forced.stdout + forced.stderr)
  assert.match(readFileSync(path, 'utf8'), /written by rcguard init/)
  assert.equal(statSync(path).mode & 0o777, 0o600)
})

test('init refuses a directory others can write (one line, exit 3, nothing written), and makes a missing one 0700', async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t)
  const open = join(f.dir, 'shared')
  mkdirSync(open)
  chmodSync(open, 0o777) // writable by every user, not sticky: anyone could swap the file for a link
  const path = join(open, 'rcguard.yml')
  const r = await cli(['init', '--config', path, '--roundcube', f.rcDir], f.cliOptions)
  assert.equal(r.exitCode, 3, r.stdout + r.stderr)
  assert.equal(r.stdout, '')
  assert.match(r.stderr.trim(), new RegExp(`^rcguard: not writing ${path}: ${open} is writable by every user \\(mode 0777\\), .*; fix: chown root:root ${open} && chmod 700 ${open}$`))
  assert.deepEqual(readdirSync(open), [], 'nothing written there, not even a temporary file')

  const fresh = join(f.dir, 'new', 'rcguard.yml')
  const made = await cli(['init', '--config', fresh, '--roundcube', f.rcDir], f.cliOptions)
  assert.ok([0, 1, 2].includes(made.exitCode), made.stdout + made.stderr)
  assert.equal(statSync(join(f.dir, 'new')).mode & 0o777, 0o700)
  assert.match(readFileSync(fresh, 'utf8'), /written by rcguard init/)
})
