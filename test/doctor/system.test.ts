/**
 * doctor's checks of the machine around rcguard: the backend's tools, the
 * schedule (cron, rcguard.timer, rcguard-watch), the database. The schedule
 * is looked for under a temp root (RCGUARD_DOCTOR_ROOT), never the host's.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdirSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {cli, tempDir} from '../helpers/env.js'
import {validateConfig} from '../../src/core/config/config.js'
import {backendFindings, scheduleFindings} from '../../src/core/doctor/findings/system.js'
import {cleanGuard, rcFixture, requireRoundcube} from './fixture.js'

const cfg = (firewall: Record<string, unknown>) => validateConfig({firewall}, 'test', '/')

test('backend tools: missing ones are an error naming the package; backend none is a warning', (t) => {
  const empty = tempDir(t)
  const [nft] = backendFindings(cfg({backend: 'nftables'}), empty)
  assert.equal(nft?.id, 'backend-tools')
  assert.equal(nft?.severity, 'error')
  // PATH is searched with the sbin directories added (as runs do): perl is never there.
  assert.match(nft?.message ?? '', /needs (nft, )?perl, not found/)
  assert.match(nft?.fix ?? '', /apt-get install nftables perl/)
  const dir = tempDir(t)
  for (const tool of ['iptables-restore', 'ip6tables-restore']) writeFileSync(join(dir, tool), '', {mode: 0o755})
  assert.deepEqual(backendFindings(cfg({backend: 'iptables'}), dir), [])
  assert.deepEqual(backendFindings(cfg({backend: 'none'}), empty).map((f) => f.id), ['backend-none'])
})

test('schedule: nothing scheduled is a warning; cron and the timer both are a warning; watch beside cron is fine', (t) => {
  const root = tempDir(t)
  assert.deepEqual(scheduleFindings(root).map((f) => f.id), ['not-scheduled'])
  mkdirSync(join(root, 'etc/cron.d'), {recursive: true})
  writeFileSync(join(root, 'etc/cron.d/rcguard'), '# * * * * * root rcguard hacks\nMAILTO=root\n')
  assert.deepEqual(scheduleFindings(root).map((f) => f.id), ['not-scheduled'], 'a commented line schedules nothing')
  writeFileSync(join(root, 'etc/cron.d/rcguard'), 'PATH=/usr/sbin:/usr/bin\n* * * * * root rcguard hacks\n')
  assert.deepEqual(scheduleFindings(root), [])
  const wants = join(root, 'etc/systemd/system/timers.target.wants')
  mkdirSync(wants, {recursive: true})
  symlinkSync('/dev/null', join(wants, 'rcguard.timer'))
  assert.deepEqual(scheduleFindings(root).map((f) => f.id), ['scheduled-twice'])
  rmSync(join(root, 'etc/cron.d/rcguard'))
  assert.deepEqual(scheduleFindings(root), [])
  rmSync(join(wants, 'rcguard.timer'))
  const multi = join(root, 'etc/systemd/system/multi-user.target.wants')
  mkdirSync(multi, {recursive: true})
  symlinkSync('/dev/null', join(multi, 'rcguard-watch.service'))
  assert.deepEqual(scheduleFindings(root), [])
})

test("a database that fails validation: an error with the store's own repair as its fix, exit 2", async (t) => {
  if (!requireRoundcube(t)) return
  const f = rcFixture(t)
  writeFileSync(join(f.dir, 'db.json'), JSON.stringify({schemaVersion: 4, entries: [{ip: '300.1.2.3'}], whitelist: [], positions: {}}), {mode: 0o600})
  const r = await cli(['doctor', '--config', cleanGuard(f), '--roundcube', f.rcDir], f.cliOptions)
  assert.equal(r.exitCode, 2, r.stdout + r.stderr)
  assert.match(r.stdout, /^error: database: database .* fails validation at entries\.0\.ip.*; fix: .*rcguard flush/m)
  assert.equal(r.stdout.trim().split('\n').length, 1)
})
