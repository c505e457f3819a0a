/**
 * Notifications through bin/run.js: one digest per hacks run that changed
 * blocks, to a real SMTP server on loopback and to a command; nothing when
 * nothing changed; a failing notifier is a warning and the run still succeeds.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import type {AddressInfo} from 'node:net'
import {join} from 'node:path'
import {SMTPServer} from 'smtp-server'
import {appendLines, burst, cli, setup, T0, at, nowEnv, digestRecorder} from '../helpers/env.js'

async function smtp(t: {after: (fn: () => Promise<void>) => void}): Promise<{port: number; messages: string[]}> {
  const messages: string[] = []
  const server = new SMTPServer({
    logger: false,
    disabledCommands: ['STARTTLS', 'AUTH'],
    onData(stream, _session, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => {
        messages.push(Buffer.concat(chunks).toString('utf8'))
        callback()
      })
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return {port: (server.server.address() as AddressInfo).port, messages}
}

test('one mail per run that blocks or releases, listing address, instance, attempts, users and length', async (t) => {
  const {port, messages} = await smtp(t)
  const s = setup(t)
  const {argv: recorderArgv, recorded} = digestRecorder(s.dir)
  writeFileSync(
    s.config,
    JSON.stringify({
      database: s.db,
      instances: [{name: 'master', logs: [s.log], ports: [443]}],
      firewall: {backend: 'none'},
      notify: {
        email: {to: ['admin@example.com'], from: 'rcguard@mail.example.com', transport: {smtp: {host: '127.0.0.1', port}}},
        command: {argv: recorderArgv},
        onExpiry: true,
      },
    }),
  )
  appendLines(s.log, [
    ...burst(at(0), '203.0.113.7', 6).map((l, i) => l.replace('alice@example.com', `user${i}@example.com`)),
    ...burst(at(0), '2001:db8::66', 7),
  ])
  const r = await cli(['hacks', '--verbose', '--config', s.config], {env: nowEnv(3)})
  assert.equal(r.exitCode, 0, r.stderr)
  assert.match(r.stdout, /^notified admin@example\.com by e-mail/m)
  assert.equal(messages.length, 1, 'one digest for the run, not one mail per address')
  const mail = messages[0] ?? ''
  assert.match(mail, /^To: admin@example\.com/m)
  assert.match(mail, /^From: rcguard@mail\.example\.com/m)
  assert.match(mail, /^Subject: \[rcguard\] .*: 2 blocked/m)
  assert.match(mail, /203\.0\.113\.7/)
  assert.match(mail, /2001:db8::66/)
  assert.match(mail, /user5@example\.com/)
  const digests = readFileSync(recorded, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as {blocked: {ip: string; instance: string; attempts: number; users: string[]; minutes: number}[]; released: unknown[]})
  assert.equal(digests.length, 1)
  assert.deepEqual(
    digests[0]?.blocked.map((b) => [b.ip, b.instance, b.attempts, b.minutes]).sort(),
    [['2001:db8::66', 'master', 7, 60], ['203.0.113.7', 'master', 6, 60]].sort(),
  )
  assert.ok(digests[0]?.blocked.find((b) => b.ip === '203.0.113.7')?.users.includes('user5@example.com'))

  // Nothing changed: no mail, no command.
  await cli(['hacks', '--config', s.config], {env: nowEnv(4)})
  assert.equal(messages.length, 1)
  // The blocks end: one more digest, of releases (onExpiry).
  const later = await cli(['hacks', '--config', s.config], {env: nowEnv(70)})
  assert.match(later.stdout, /unblocked 203\.0\.113\.7/)
  assert.equal(messages.length, 2)
  assert.match(messages[1] ?? '', /2 released/)
})

test('a notifier that fails is a warning: the run succeeds and the blocks stand', async (t) => {
  const s = setup(t)
  writeFileSync(
    s.config,
    JSON.stringify({
      database: s.db,
      instances: [{name: 'master', logs: [s.log], ports: [443]}],
      firewall: {backend: 'none'},
      notify: {
        email: {to: ['admin@example.com'], transport: {smtp: {host: '127.0.0.1', port: 1, timeoutSeconds: 2}}},
        command: {argv: [join(s.dir, 'missing-notifier')]},
      },
    }),
  )
  appendLines(s.log, burst(at(0), '203.0.113.8', 6))
  const r = await cli(['hacks', '--config', s.config], {env: nowEnv(3)})
  assert.equal(r.exitCode, 0, r.stderr)
  assert.match(r.stdout, /blocked 203\.0\.113\.8/)
  assert.match(r.stderr, /^rcguard: warning: notification by e-mail via smtp 127\.0\.0\.1:1 failed/m)
  assert.match(r.stderr, /^rcguard: warning: notification by command .*missing-notifier failed/m)
  assert.equal(existsSync(s.db), true)
})
