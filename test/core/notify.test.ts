import {test} from 'node:test'
import assert from 'node:assert/strict'
import {notifySchema, type NotifyConfig} from '../../src/core/notify/config.js'
import {buildDigest, digestText, escapeText, type BlockLike, type Digest} from '../../src/core/notify/digest.js'

const NOW = Date.UTC(2026, 10, 25, 13, 0, 0)
const MIN = 60_000

const BLOCKED: BlockLike[] = [
  {
    ip: '203.0.113.7',
    instance: 'master',
    attempts: 6,
    lastUser: 'bob',
    blockedAt: NOW,
    blockedUntil: NOW + 60 * MIN,
    users: ['alice@example.com', 'bob', 'alice@example.com'],
  },
  {ip: '2001:db8::1', instance: 'webmail', attempts: 12, lastUser: 'admin', blockedAt: NOW - MIN, blockedUntil: null},
]
const RELEASED: BlockLike[] = [
  {ip: '198.51.100.9', instance: 'master', attempts: 8, lastUser: 'carol', blockedAt: NOW - 120 * MIN, blockedUntil: NOW},
]

function digestOf(blocked = BLOCKED, released = RELEASED): Digest {
  const d = buildDigest({host: 'mail.example.org', now: NOW, blocked, released})
  assert.ok(d !== null)
  return d
}

function config(raw: unknown): NotifyConfig {
  return notifySchema.parse(raw)
}

// --- the digest --------------------------------------------------------------

test('nothing blocked or released: no digest', () => {
  assert.equal(buildDigest({host: 'h', now: NOW, blocked: [], released: []}), null)
})

test('the digest: ISO times, block length, distinct users tried', () => {
  const d = digestOf()
  assert.deepEqual(d, {
    host: 'mail.example.org',
    time: '2026-11-25T13:00:00.000Z',
    blocked: [
      {
        ip: '203.0.113.7',
        instance: 'master',
        attempts: 6,
        users: ['alice@example.com', 'bob'],
        blockedAt: '2026-11-25T13:00:00.000Z',
        blockedUntil: '2026-11-25T14:00:00.000Z',
        minutes: 60,
      },
      {
        ip: '2001:db8::1',
        instance: 'webmail',
        attempts: 12,
        users: ['admin'],
        blockedAt: '2026-11-25T12:59:00.000Z',
        blockedUntil: null,
        minutes: null,
      },
    ],
    released: [
      {
        ip: '198.51.100.9',
        instance: 'master',
        attempts: 8,
        users: ['carol'],
        blockedAt: '2026-11-25T11:00:00.000Z',
        blockedUntil: '2026-11-25T13:00:00.000Z',
        minutes: 120,
      },
    ],
  })
})

test('users tried: at most 10, each escaped and capped, empty names left out', () => {
  const users = ['', ...Array.from({length: 15}, (_, i) => `user${i}`)]
  const [b] = digestOf([{...BLOCKED[0]!, users}], []).blocked
  assert.deepEqual(b?.users, Array.from({length: 10}, (_, i) => `user${i}`))
  const [long] = digestOf([{...BLOCKED[0]!, users: ['x'.repeat(500)]}], []).blocked
  assert.equal(long?.users[0], `${'x'.repeat(63)}…`)
  assert.deepEqual(digestOf([{...BLOCKED[0]!, users: undefined, lastUser: ''}], []).blocked[0]?.users, [])
})

test('escaping: control, bidi and line-separator characters, backslashes; the cap never splits a character', () => {
  assert.equal(escapeText('a\r\nb\x00\x1b[31m\x7f\x85'), 'a\\x0d\\x0ab\\x00\\x1b[31m\\x7f\\x85')
  assert.equal(escapeText('evil\u202egnp.exe\u2028x\u200b'), 'evil\\u{202e}gnp.exe\\u{2028}x\\u{200b}')
  assert.equal(escapeText('a\\x0d'), 'a\\\\x0d')
  assert.equal(escapeText('\ud800lone'), '\\u{d800}lone')
  assert.equal(escapeText('jürgen 😀'), 'jürgen 😀')
  assert.equal(escapeText('ab😀cd', 4), 'ab…')
})

test('the text: one subject with counts, an aligned table per section', () => {
  const {subject, text} = digestText(digestOf())
  assert.equal(subject, '[rcguard] mail.example.org: 2 blocked, 1 released')
  assert.equal(
    text,
    [
      'rcguard on mail.example.org at 2026-11-25 13:00:00Z: 2 blocked, 1 released.',
      '',
      'Blocked (2):',
      '  address      instance  attempts  block          until                 users tried',
      '  203.0.113.7  master           6  1 h            2026-11-25 14:00:00Z  alice@example.com, bob',
      '  2001:db8::1  webmail         12  until deleted  -                     admin',
      '',
      'Released (1):',
      '  address       instance  attempts  block  until                 users tried',
      '  198.51.100.9  master           8  2 h    2026-11-25 13:00:00Z  carol',
      '',
      'User names are as the log shows them, with control characters escaped (\\xNN).',
      'See every block with "rcguard list"; lift one with "rcguard unblock ADDRESS".',
      'The digest is attached as JSON (rcguard-digest.json).',
      '',
    ].join('\n'),
  )
  assert.equal(digestText(digestOf(BLOCKED, []), '').subject, 'mail.example.org: 2 blocked')
  assert.equal(digestText(digestOf([], RELEASED), '[fw]').subject, '[fw] mail.example.org: 1 released')
})

// --- the configuration -------------------------------------------------------

test('config: defaults filled in, sendmail when no transport is named', () => {
  assert.deepEqual(config({email: {to: ['root@localhost']}}), {
    email: {to: ['root@localhost'], subjectPrefix: '[rcguard]', transport: {sendmail: {path: '/usr/sbin/sendmail'}}},
    onExpiry: false,
  })
  assert.deepEqual(config({email: {to: ['a@b.example'], transport: {sendmail: null}}}).email?.transport, {
    sendmail: {path: '/usr/sbin/sendmail'},
  })
  assert.deepEqual(config({email: {to: ['a@b.example'], transport: {smtp: {host: 'relay'}}}}).email?.transport, {
    smtp: {host: 'relay', port: 25, secure: false, requireTls: false, timeoutSeconds: 30},
  })
  assert.deepEqual(config({command: {argv: ['/bin/true']}, onExpiry: true}), {
    command: {argv: ['/bin/true'], timeoutSeconds: 30},
    onExpiry: true,
  })
})

test('config: refused with the key path', () => {
  const issues = (raw: unknown) => {
    const r = notifySchema.safeParse(raw)
    assert.equal(r.success, false, JSON.stringify(raw))
    return r.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? []
  }
  assert.deepEqual(issues({}), [': configure at least one channel: email, command or both'])
  assert.deepEqual(issues({onExpiry: true}), [': configure at least one channel: email, command or both'])
  assert.match(issues({email: {to: []}})[0] ?? '', /^email\.to: name at least one recipient/)
  assert.match(issues({email: {to: ['not an address']}})[0] ?? '', /^email\.to\.0: not an e-mail address/)
  assert.match(issues({email: {to: ['-oQ/tmp@x.example']}})[0] ?? '', /^email\.to\.0: .*must not start with "-"/)
  assert.match(issues({email: {to: ['a@b.example'], cc: ['x@y.example']}})[0] ?? '', /^email: Unrecognized key: "cc"/)
  assert.match(issues({email: {to: ['a@b.example'], transport: {}}})[0] ?? '', /^email\.transport: choose exactly one transport/)
  assert.match(
    issues({email: {to: ['a@b.example'], transport: {sendmail: {}, smtp: {host: 'h'}}}})[0] ?? '',
    /^email\.transport: choose exactly one transport/,
  )
  assert.match(issues({email: {to: ['a@b.example'], transport: {smtp: {}}}})[0] ?? '', /^email\.transport\.smtp\.host: /)
  assert.match(
    issues({email: {to: ['a@b.example'], transport: {smtp: {host: 'h', user: 'u'}}}})[0] ?? '',
    /^email\.transport\.smtp: set both user and password/,
  )
  assert.match(issues({command: {argv: []}})[0] ?? '', /^command\.argv: give the program/)
  assert.match(issues({command: {argv: ['']}})[0] ?? '', /^command\.argv: the program/)
  assert.match(issues({command: {argv: ['x'], timeoutSeconds: 0}})[0] ?? '', /^command\.timeoutSeconds: /)
})
