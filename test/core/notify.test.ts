import {test} from 'node:test'
import assert from 'node:assert/strict'
import {chmodSync, existsSync, readFileSync, writeFileSync} from 'node:fs'
import {createServer, type AddressInfo, type Server, type Socket} from 'node:net'
import {hostname} from 'node:os'
import {join} from 'node:path'
import {SMTPServer} from 'smtp-server'
import {notifySchema, type NotifyConfig} from '../../src/core/notify/config.js'
import {buildDigest, digestText, type BlockLike, type Digest} from '../../src/core/notify/digest.js'
import {notify} from '../../src/core/notify/index.js'
import {tempDir} from '../helpers/env.js'

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
    rule: 'users:5/60',
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

// --- a small MIME reader, enough for nodemailer's output -------------------

interface Part {
  headers: Map<string, string[]>
  body: string
}

function parsePart(raw: string): Part {
  const text = raw.replace(/\r\n/g, '\n')
  const split = text.indexOf('\n\n')
  const head = split === -1 ? text : text.slice(0, split)
  const body = split === -1 ? '' : text.slice(split + 2)
  const headers = new Map<string, string[]>()
  for (const line of head.replace(/\n[ \t]+/g, ' ').split('\n')) {
    const colon = line.indexOf(':')
    if (colon <= 0) continue
    const name = line.slice(0, colon).trim().toLowerCase()
    headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()])
  }
  return {headers, body}
}

function header(p: Part, name: string): string {
  const v = p.headers.get(name.toLowerCase())
  assert.ok(v !== undefined && v.length === 1, `exactly one ${name} header`)
  return v[0] ?? ''
}

function decodeBody(p: Part): string {
  const cte = (p.headers.get('content-transfer-encoding')?.[0] ?? '7bit').toLowerCase()
  if (cte === 'base64') return Buffer.from(p.body.replace(/\s+/g, ''), 'base64').toString('utf8')
  if (cte === 'quoted-printable') {
    const bytes: number[] = []
    const soft = p.body.replace(/=\n/g, '')
    for (let i = 0; i < soft.length; i++) {
      const c = soft[i] ?? ''
      if (c === '=' && /^[0-9A-F]{2}$/i.test(soft.slice(i + 1, i + 3))) {
        bytes.push(parseInt(soft.slice(i + 1, i + 3), 16))
        i += 2
      } else bytes.push(...Buffer.from(c, 'utf8'))
    }
    return Buffer.from(bytes).toString('utf8')
  }
  return p.body
}

interface Mail {
  message: Part
  text: string
  json: unknown
  attachment: Part
}

function readMail(raw: string): Mail {
  const message = parsePart(raw)
  const type = header(message, 'Content-Type')
  const boundary = /boundary="?([^";]+)"?/.exec(type)?.[1]
  assert.ok(type.startsWith('multipart/mixed') && boundary !== undefined, `multipart message, got ${type}`)
  const parts = message.body
    .replace(/\r\n/g, '\n')
    .split(`--${boundary}`)
    .slice(1, -1)
    .map((s) => parsePart(s.replace(/^\n/, '').replace(/\n$/, '')))
  assert.equal(parts.length, 2, 'a text part and the attachment')
  const [textPart, attachment] = parts as [Part, Part]
  assert.match(header(textPart, 'Content-Type'), /^text\/plain; charset=utf-8/i)
  assert.match(header(attachment, 'Content-Type'), /^application\/json/)
  assert.match(header(attachment, 'Content-Disposition'), /^attachment; filename=rcguard-digest\.json$/)
  return {message, text: decodeBody(textPart), json: JSON.parse(decodeBody(attachment)), attachment}
}

// --- servers -----------------------------------------------------------------

interface Received {
  raw: string
  mailFrom: string
  rcptTo: string[]
}

async function listen(server: Server | SMTPServer): Promise<number> {
  const net: Server = server instanceof SMTPServer ? server.server : server
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  return (net.address() as AddressInfo).port
}

/** A real SMTP server on loopback that keeps every message it is given. */
async function smtpServer(t: {after: (fn: () => Promise<void>) => void}, auth?: {user: string; pass: string}) {
  const messages: Received[] = []
  const server = new SMTPServer({
    logger: false,
    disabledCommands: ['STARTTLS'],
    authOptional: auth === undefined,
    allowInsecureAuth: true,
    onAuth(a, _session, callback) {
      if (auth !== undefined && a.username === auth.user && a.password === auth.pass) return callback(null, {user: a.username})
      return callback(new Error('Invalid username or password'))
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => {
        messages.push({
          raw: Buffer.concat(chunks).toString('utf8'),
          mailFrom: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
        })
        callback()
      })
    },
  })
  const port = await listen(server)
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return {port, messages}
}

/** A port that refuses connections: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer()
  const port = await listen(server)
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

function script(dir: string, name: string, body: string): string {
  const path = join(dir, name)
  writeFileSync(path, `#!/bin/sh\n${body}\n`)
  chmodSync(path, 0o755)
  return path
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
        rule: 'users:5/60',
      },
      {
        ip: '2001:db8::1',
        instance: 'webmail',
        attempts: 12,
        users: ['admin'],
        blockedAt: '2026-11-25T12:59:00.000Z',
        blockedUntil: null,
        minutes: null,
        rule: null,
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
        rule: null,
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

test('the text: one subject with counts, an aligned table per section', () => {
  const {subject, text} = digestText(digestOf())
  assert.equal(subject, '[rcguard] mail.example.org: 2 blocked, 1 released')
  assert.equal(
    text,
    [
      'rcguard on mail.example.org at 2026-11-25 13:00:00Z: 2 blocked, 1 released.',
      '',
      'Blocked (2):',
      '  address      instance  attempts  block          until                 by              users tried',
      '  203.0.113.7  master           6  1 h            2026-11-25 14:00:00Z  5 users in 60m  alice@example.com, bob',
      '  2001:db8::1  webmail         12  until deleted  -                     -               admin',
      '',
      'Released (1):',
      '  address       instance  attempts  block  until                 by  users tried',
      '  198.51.100.9  master           8  2 h    2026-11-25 13:00:00Z  -   carol',
      '',
      'User names are as the log shows them, with control and format characters escaped (\\xNN, \\u{N}).',
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

// --- e-mail through a real SMTP server ---------------------------------------

test('SMTP: one message per notify() call, with its headers, the table and the JSON attachment', async (t) => {
  const server = await smtpServer(t)
  const cfg = config({
    email: {
      to: ['admin@example.org', 'oncall@example.org'],
      from: 'guard@mail.example.org',
      transport: {smtp: {host: '127.0.0.1', port: server.port, timeoutSeconds: 5}},
    },
    onExpiry: true,
  })
  const digest = digestOf()
  const logged: string[] = []
  assert.deepEqual(await notify(cfg, digest, {log: (l) => logged.push(l)}), [])
  assert.equal(server.messages.length, 1, 'one digest, not one mail per address')
  assert.equal(logged.length, 1)
  assert.match(logged[0] ?? '', /^notified admin@example\.org, oncall@example\.org by e-mail via smtp 127\.0\.0\.1:\d+ \(<.+>\)$/)

  const received = server.messages[0]!
  assert.equal(received.mailFrom, 'guard@mail.example.org')
  assert.deepEqual(received.rcptTo, ['admin@example.org', 'oncall@example.org'])
  const mail = readMail(received.raw)
  assert.equal(header(mail.message, 'From'), 'guard@mail.example.org')
  assert.equal(header(mail.message, 'To'), 'admin@example.org, oncall@example.org')
  assert.equal(header(mail.message, 'Subject'), '[rcguard] mail.example.org: 2 blocked, 1 released')
  assert.ok(!Number.isNaN(Date.parse(header(mail.message, 'Date'))), 'a valid Date')
  assert.match(header(mail.message, 'Message-ID'), /^<[^<>\s]+@[^<>\s]+>$/)
  assert.equal(header(mail.message, 'MIME-Version'), '1.0')
  assert.equal(header(mail.message, 'Auto-Submitted'), 'auto-generated')
  assert.equal(mail.text, digestText(digest).text)
  const lines = mail.text.split('\n')
  assert.ok(lines.includes('  203.0.113.7  master           6  1 h            2026-11-25 14:00:00Z  5 users in 60m  alice@example.com, bob'))
  assert.ok(lines.includes('  2001:db8::1  webmail         12  until deleted  -                     -               admin'))
  assert.ok(lines.includes('  198.51.100.9  master           8  2 h    2026-11-25 13:00:00Z  -   carol'))
  assert.deepEqual(mail.json, digest)

  assert.deepEqual(await notify(cfg, digest), [])
  assert.equal(server.messages.length, 2, 'a second run, a second message')
})

test('SMTP: From defaults to rcguard@<host name>; non-ASCII survives; releases only with onExpiry', async (t) => {
  const server = await smtpServer(t)
  const email = {to: ['admin@example.org'], transport: {smtp: {host: '127.0.0.1', port: server.port, timeoutSeconds: 5}}}
  const digest = digestOf([{...BLOCKED[0]!, users: ['jürgen']}], RELEASED)
  assert.deepEqual(await notify(config({email}), digest), [])
  const mail = readMail(server.messages[0]!.raw)
  assert.equal(header(mail.message, 'From'), `rcguard@${hostname()}`)
  assert.equal(header(mail.message, 'Subject'), '[rcguard] mail.example.org: 1 blocked', 'releases left out without onExpiry')
  assert.match(mail.text, /  203\.0\.113\.7 .* jürgen\n/)
  assert.ok(!mail.text.includes('198.51.100.9'))
  assert.deepEqual((mail.json as Digest).released, [])

  assert.deepEqual(await notify(config({email}), digestOf([], RELEASED)), [], 'releases only, without onExpiry: nothing to say')
  assert.equal(server.messages.length, 1)
})

test('SMTP with authentication: the right password sends, a wrong one is a warning', async (t) => {
  const server = await smtpServer(t, {user: 'rcguard', pass: 's3cret'})
  const smtp = {host: '127.0.0.1', port: server.port, user: 'rcguard', password: 's3cret', timeoutSeconds: 5}
  assert.deepEqual(await notify(config({email: {to: ['admin@example.org'], transport: {smtp}}}), digestOf()), [])
  assert.equal(server.messages.length, 1)

  const wrong = config({email: {to: ['admin@example.org'], transport: {smtp: {...smtp, password: 'guess'}}}})
  const warnings = await notify(wrong, digestOf())
  assert.equal(warnings.length, 1)
  assert.match(
    warnings[0] ?? '',
    new RegExp(`^notification by e-mail via smtp 127\\.0\\.0\\.1:${server.port} failed: Invalid login: 535 .*\\(check notify\\.email\\.transport\\.smtp\\.user and password\\)$`),
  )
  assert.equal(server.messages.length, 1, 'nothing sent')
  assert.ok(!warnings[0]?.includes('guess'), 'the password is not in the warning')
})

test('SMTP server down: one warning naming smtp and host:port, quickly, no throw', async () => {
  const port = await closedPort()
  const cfg = config({email: {to: ['admin@example.org'], transport: {smtp: {host: '127.0.0.1', port, timeoutSeconds: 3}}}})
  const started = Date.now()
  const warnings = await notify(cfg, digestOf())
  assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`)
  assert.equal(warnings.length, 1)
  assert.match(warnings[0] ?? '', new RegExp(`^notification by e-mail via smtp 127\\.0\\.0\\.1:${port} failed: .*ECONNREFUSED`))
  assert.ok(!warnings[0]?.includes('\n'))
})

test('SMTP server that accepts but never answers: a warning at the timeout', async (t) => {
  const sockets: Socket[] = []
  const silent = createServer((s) => sockets.push(s))
  const port = await listen(silent)
  t.after(() => {
    for (const s of sockets) s.destroy()
    return new Promise<void>((resolve) => silent.close(() => resolve()))
  })
  const cfg = config({email: {to: ['admin@example.org'], transport: {smtp: {host: '127.0.0.1', port, timeoutSeconds: 0.5}}}})
  const started = Date.now()
  const warnings = await notify(cfg, digestOf())
  const took = Date.now() - started
  assert.ok(took >= 400 && took < 3000, `took ${took} ms`)
  assert.equal(warnings.length, 1)
  assert.equal(
    warnings[0],
    `notification by e-mail via smtp 127.0.0.1:${port} failed: Greeting never received (no answer within notify.email.transport.smtp.timeoutSeconds)`,
  )
})

test('a user name cannot inject headers: it is escaped in the body and no Bcc exists', async (t) => {
  const server = await smtpServer(t)
  const evil = 'eve\r\nBcc: evil@example.com\r\n\r\nbody'
  const digest = digestOf([{...BLOCKED[0]!, users: [evil], lastUser: evil}], [])
  const cfg = config({email: {to: ['admin@example.org'], transport: {smtp: {host: '127.0.0.1', port: server.port, timeoutSeconds: 5}}}})
  assert.deepEqual(await notify(cfg, digest), [])
  assert.equal(server.messages.length, 1)
  const received = server.messages[0]!
  assert.deepEqual(received.rcptTo, ['admin@example.org'])
  const mail = readMail(received.raw)
  assert.equal(mail.message.headers.get('bcc'), undefined)
  assert.ok(![...mail.message.headers.values()].flat().some((v) => v.includes('evil@example.com')))
  assert.ok(mail.text.includes('eve\\x0d\\x0aBcc: evil@example.com\\x0d\\x0a\\x0d\\x0abody'))
  assert.ok(!mail.text.split('\n').some((l) => l.startsWith('Bcc')))
  assert.deepEqual((mail.json as Digest).blocked[0]?.users, ['eve\\x0d\\x0aBcc: evil@example.com\\x0d\\x0a\\x0d\\x0abody'])
})

// --- e-mail through the sendmail binary --------------------------------------

test('sendmail: the binary gets -i -f FROM and the recipients, and the message with Unix newlines', async (t) => {
  const dir = tempDir(t)
  const path = script(dir, 'sendmail', `printf '%s\\n' "$@" > '${dir}/argv'\ncat > '${dir}/stdin'`)
  const cfg = config({email: {to: ['root@localhost'], from: 'rcguard@mail.example.org', transport: {sendmail: {path}}}})
  assert.deepEqual(await notify(cfg, digestOf()), [])
  assert.deepEqual(readFileSync(join(dir, 'argv'), 'utf8').split('\n'), ['-i', '-f', 'rcguard@mail.example.org', 'root@localhost', ''])
  const raw = readFileSync(join(dir, 'stdin'), 'utf8')
  assert.ok(!raw.includes('\r'), 'newline: unix')
  const mail = readMail(raw)
  assert.equal(header(mail.message, 'From'), 'rcguard@mail.example.org')
  assert.equal(header(mail.message, 'To'), 'root@localhost')
  assert.equal(header(mail.message, 'Subject'), '[rcguard] mail.example.org: 2 blocked')
  assert.match(header(mail.message, 'Message-ID'), /^<.+@.+>$/)
  assert.ok(!Number.isNaN(Date.parse(header(mail.message, 'Date'))))
  assert.ok(mail.text.split('\n').includes('  203.0.113.7  master           6  1 h            2026-11-25 14:00:00Z  5 users in 60m  alice@example.com, bob'))
  assert.deepEqual(mail.json, {...digestOf(), released: []})
})

test('sendmail failing or missing: a warning naming it, no throw', async (t) => {
  const dir = tempDir(t)
  const failing = script(dir, 'sendmail', `cat > /dev/null\necho "postdrop: warning: unable to look up public/pickup" >&2\nexit 75`)
  const warnings = await notify(config({email: {to: ['root@localhost'], transport: {sendmail: {path: failing}}}}), digestOf())
  assert.deepEqual(warnings, [`notification by e-mail via sendmail ${failing} failed: Sendmail exited with code 75`])

  const missing = join(dir, 'no-such-sendmail')
  const gone = await notify(config({email: {to: ['root@localhost'], transport: {sendmail: {path: missing}}}}), digestOf())
  assert.equal(gone.length, 1)
  assert.match(gone[0] ?? '', new RegExp(`^notification by e-mail via sendmail ${missing} failed: .*ENOENT.*\\(install an MTA such as postfix, or set notify\\.email\\.transport\\.smtp\\)$`))
})

// --- the command channel -----------------------------------------------------

test('command: the digest arrives as JSON on stdin, arguments as they are (no shell)', async (t) => {
  const dir = tempDir(t)
  const recorder = script(dir, 'record', 'cat > "$1"\nprintf "%s\\n" "$2" > "$1.arg"')
  const out = join(dir, 'digest.json')
  const logged: string[] = []
  const cfg = config({command: {argv: [recorder, out, '$(touch pwned); a b']}, onExpiry: true})
  assert.deepEqual(await notify(cfg, digestOf(), {log: (l) => logged.push(l)}), [])
  assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), digestOf())
  assert.equal(readFileSync(`${out}.arg`, 'utf8'), '$(touch pwned); a b\n')
  assert.ok(!existsSync(join(dir, 'pwned')) && !existsSync('pwned'))
  assert.deepEqual(logged, [`ran ${recorder} with the digest on stdin`])
})

test('command: a non-zero exit is a warning with its first stderr line', async (t) => {
  const dir = tempDir(t)
  const failing = script(dir, 'fail', 'cat > /dev/null\necho >&2\necho "webhook: 503 Service Unavailable" >&2\necho "second line" >&2\nexit 3')
  const warnings = await notify(config({command: {argv: [failing]}}), digestOf())
  assert.deepEqual(warnings, [`notification by command ${failing} failed: exit code 3: webhook: 503 Service Unavailable`])
})

test('command: missing, or hung past its timeout, is a warning', async (t) => {
  const dir = tempDir(t)
  assert.deepEqual(await notify(config({command: {argv: ['rcguard-no-such-notifier']}}), digestOf()), [
    'notification by command rcguard-no-such-notifier failed: not found (check notify.command.argv)',
  ])
  const hung = script(dir, 'hang', 'exec sleep 10')
  const started = Date.now()
  const warnings = await notify(config({command: {argv: [hung], timeoutSeconds: 0.3}}), digestOf())
  assert.ok(Date.now() - started < 5000)
  assert.deepEqual(warnings, [`notification by command ${hung} failed: did not finish within 0.3 s`])
})

test('every channel is tried: one failing does not stop the other, each failure is its own line', async (t) => {
  const dir = tempDir(t)
  const server = await smtpServer(t)
  const port = await closedPort()
  const out = join(dir, 'digest.json')
  const recorder = script(dir, 'record', 'cat > "$1"')
  const ok = config({
    email: {to: ['admin@example.org'], transport: {smtp: {host: '127.0.0.1', port: server.port, timeoutSeconds: 5}}},
    command: {argv: [recorder, out]},
  })
  assert.deepEqual(await notify(ok, digestOf()), [])
  assert.equal(server.messages.length, 1)
  assert.ok(existsSync(out))

  const bad = config({
    email: {to: ['admin@example.org'], transport: {smtp: {host: '127.0.0.1', port, timeoutSeconds: 5}}},
    command: {argv: [join(dir, 'missing')]},
  })
  const warnings = await notify(bad, digestOf())
  assert.equal(warnings.length, 2)
  assert.match(warnings[0] ?? '', /^notification by e-mail via smtp /)
  assert.match(warnings[1] ?? '', /^notification by command .*missing failed: not found/)
})

test('a digest of accounts under attack alone: its own section and subject, the name escaped', () => {
  const d = buildDigest({
    host: 'mail',
    now: Date.UTC(2026, 10, 25, 13, 0, 0),
    blocked: [],
    released: [],
    accounts: [{instance: 'master', account: 'x\u001b[2Jroot', addresses: 40, first: Date.UTC(2026, 10, 25, 12, 50, 0), last: Date.UTC(2026, 10, 25, 12, 59, 0)}],
  })
  assert.ok(d !== null)
  assert.equal(d.accounts?.[0]?.account, 'x\\x1b[2Jroot')
  const {subject, text} = digestText(d)
  assert.equal(subject, '[rcguard] mail: 1 account(s) under attack')
  assert.match(text, /^Accounts under attack \(1\):$/m)
  assert.match(text, /^ {2}x\\x1b\[2Jroot +master +40 +2026-11-25 12:50:00Z +2026-11-25 12:59:00Z$/m)
  assert.ok(!text.includes('\u001b'))
})
