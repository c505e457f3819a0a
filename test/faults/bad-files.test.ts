/**
 * Bad files (issue 11): a configuration that is no regular file (a FIFO, a
 * device, a socket, hundreds of MB), hostile YAML (an alias bomb, deep
 * nesting, tags, YAML 1.1, repeated keys, NULs), and a database holding values
 * rcguard never writes. Each must end in one line and its documented exit
 * status (3 configuration, 4 database), never an internal error or a hang,
 * and a database that fails is never rewritten (same bytes, same mtime) until
 * the admin removes its faulty records with `rcguard flush --invalid`, which
 * keeps the file as it was beside it.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import {dirname, join} from 'node:path'
import {execa} from 'execa'
import {BIN, cli, cliJson, lockHeld, oneLine, setup, STACK, at, nowEnv, type CliResult, type Setup, pool} from '../helpers/env.js'

function escape(text: string): RegExp {
  return new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
}

/** Runs the CLI, killed after `ms`: a hang is a failure, not a stuck test. */
async function cliWithin(args: string[], ms: number, env: Record<string, string> = {}): Promise<CliResult & {timedOut: boolean; elapsed: number}> {
  const started = Date.now()
  const r = await execa('node', [BIN, ...args], {reject: false, env: {NO_COLOR: '1', ...env}, input: '', timeout: ms, forceKillAfterDelay: 1000})
  return {stdout: String(r.stdout), stderr: String(r.stderr), exitCode: r.exitCode ?? -1, timedOut: r.timedOut, elapsed: Date.now() - started}
}

function baseConfig(s: Setup): Record<string, unknown> {
  return {database: s.db, firewall: {backend: 'none'}, instances: [{name: 'master', logs: [s.log], ports: [80, 443]}]}
}

const T = at(-30).getTime()

function entry(ip: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ip,
    instance: 'master',
    failures: [],
    attempts: 6,
    firstSeen: T,
    lastSeen: T,
    lastUser: 'alice',
    blockedAt: T,
    blockedUntil: null,
    blocks: 1,
    lastBlockEnd: null,
    users: ['alice'],
    comment: null,
    ...extra,
  }
}

/** A current database: one blocked address and one whitelisted network (what must not be lost), plus `extra`. */
function database(extra: {entries?: unknown[]; whitelist?: unknown[]; positions?: Record<string, unknown>; top?: Record<string, unknown>} = {}): Record<string, unknown> {
  return {
    schemaVersion: 3,
    entries: [entry('203.0.113.50'), ...(extra.entries ?? [])],
    whitelist: [{cidr: '192.0.2.0/24', comment: 'office', added: T}, ...(extra.whitelist ?? [])],
    positions: extra.positions ?? {},
    ledger: {twins: [], accounts: []},
    ...extra.top,
  }
}

function writeDb(s: Setup, doc: unknown): {bytes: Buffer; mtimeMs: number} {
  mkdirSync(dirname(s.db), {recursive: true, mode: 0o700})
  writeFileSync(s.db, `${JSON.stringify(doc)}\n`, {mode: 0o600})
  // An mtime in the past, so that even a rewrite within the same clock tick shows.
  utimesSync(s.db, new Date(T), new Date(T))
  return {bytes: readFileSync(s.db), mtimeMs: statSync(s.db).mtimeMs}
}

function assertUntouched(s: Setup, before: {bytes: Buffer; mtimeMs: number}, what: string): void {
  assert.deepEqual(readFileSync(s.db), before.bytes, `${what}: the database is byte-identical`)
  assert.equal(statSync(s.db).mtimeMs, before.mtimeMs, `${what}: the database was not rewritten (mtime)`)
}

// ---------------------------------------------------------------------------
// The configuration file

test('a configuration that is a FIFO, a device or a socket: no hang, exit 3, one line saying what it is; one of 300 MB: exit 3 at once', async (t) => {
  const s = setup(t)
  const fifo = join(s.dir, 'fifo.yml')
  await execa('mkfifo', [fifo])
  const sock = join(s.dir, 'sock.yml')
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(sock, resolve))
  t.after(() => server.close())
  // Sparse: 300 MB that take no disk.
  const huge = join(s.dir, 'huge.yml')
  const fd = openSync(huge, 'w')
  ftruncateSync(fd, 300 * 1024 * 1024)
  closeSync(fd)
  const cases: {what: string; args: string[]; env?: Record<string, string>; path: string; says: RegExp}[] = [
    {what: 'FIFO by --config', args: ['hacks', '--config', fifo], path: fifo, says: /is a FIFO \(named pipe\), not a regular file: name the configuration file itself$/},
    {what: 'FIFO by RCGUARD_CONFIG', args: ['list'], env: {RCGUARD_CONFIG: fifo}, path: fifo, says: /is a FIFO \(named pipe\), not a regular file/},
    {what: '/dev/zero', args: ['hacks', '--config', '/dev/zero'], path: '/dev/zero', says: /is a character device, not a regular file/},
    {what: '/dev/null', args: ['list', '--config', '/dev/null'], path: '/dev/null', says: /is a character device, not a regular file/},
    {what: 'a socket', args: ['hacks', '--config', sock], path: sock, says: /is a socket, not a regular file/},
    {what: '300 MB', args: ['hacks', '--config', huge], path: huge, says: /is larger than 256 KiB \(314572800 bytes\), the most a configuration file may be: is it the right file\?$/},
  ]
  await pool(cases, 2, async (c) => {
    const r = await cliWithin(c.args, 20_000, c.env)
    assert.equal(r.timedOut, false, `${c.what}: rcguard hung (killed after ${r.elapsed} ms)`)
    assert.equal(r.exitCode, 3, `${c.what}: ${r.stderr}`)
    oneLine(r, c.what, new RegExp(`^rcguard: configuration file ${escape(c.path).source} `), c.says)
    assert.equal(r.stdout, '', c.what)
  })
  assert.equal(existsSync(s.db), false, 'no database was made')
})

/** An alias bomb: ten levels of nine aliases each, a billion strings once expanded. */
function aliasBomb(): string {
  const lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
  for (let i = 1; i < 10; i++) {
    const prev = String.fromCharCode(97 + i - 1)
    const cur = String.fromCharCode(97 + i)
    lines.push(`${cur}: &${cur} [${Array.from({length: 9}, () => `*${prev}`).join(', ')}]`)
  }
  return `lol:\n${lines.map((l) => `  ${l}`).join('\n')}\n`
}

test('hostile YAML (an alias bomb, deep nesting, tags, YAML 1.1, a repeated key, a dangling alias, NUL and control bytes): exit 3, one line naming the file and the line; never exit 1, never a hang', async (t) => {
  const s = setup(t)
  const valid = `database: ${JSON.stringify(s.db)}\nfirewall: {backend: none}\ninstances: [{name: master, logs: [${JSON.stringify(s.log)}], ports: [80]}]\n`
  const indented = Array.from({length: 200}, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n')
  const cases: {what: string; text: string | Buffer; says: RegExp}[] = [
    {what: 'alias bomb', text: valid + aliasBomb(), says: /is refused: its aliases would expand it more than 100-fold \(a "billion laughs" document\): write the values out$/},
    {what: '100000 [', text: `${valid}x: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`, says: /is refused: it nests more than 64 levels deep \(line 4\)$/},
    {what: '200 indented levels', text: `${valid}${indented}\n`, says: /is refused: it nests more than 64 levels deep \(line \d+\)$/},
    {what: 'a !!js/function tag', text: valid.replace('database: ', 'database: !!js/function '), says: /is refused: the tag !!js\/function \(line 1\) is not supported: rcguard reads plain YAML$/},
    {what: 'a !!binary tag', text: `${valid}whitelist: [!!binary aGVsbG8=]\n`, says: /the tag !!binary \(line 4\) is not supported/},
    {what: 'a local tag', text: `${valid}enabled: !secret true\n`, says: /the tag !secret \(line 4\) is not supported/},
    {what: '%YAML 1.1', text: `%YAML 1.1\n---\nenabled: no\n${valid}`, says: /declares %YAML 1\.1, and rcguard reads YAML 1\.2 only/},
    {what: 'a repeated key', text: `${valid}maxAttempts: 3\nmaxAttempts: 1000\n`, says: /is refused: the key "maxAttempts" \(line 5\) appears twice in the same map$/},
    {what: 'a dangling alias', text: `${valid}blockMinutes: *forever\n`, says: /is refused: the alias \*forever \(line 4\) names no anchor before it$/},
    {what: 'a key that is a list', text: `${valid}? [maxAttempts]\n: 3\n`, says: /a key \(line 4\) is a list or a map: keys must be plain words/},
    {what: 'a NUL escape in a path', text: `${valid.replace(JSON.stringify(s.db), JSON.stringify(`${s.db}\u0000.x`))}`, says: /^rcguard: invalid configuration in .*: database: holds a NUL character$/},
    {what: 'a raw escape byte', text: `${valid}# \u001b[31mred\n`, says: /holds the control character U\+001B at line 4, which YAML does not allow/},
    {what: 'bytes that are not UTF-8', text: Buffer.concat([Buffer.from(valid), Buffer.from([0xff, 0xfe, 0x0a])]), says: /is not UTF-8 text: is it the right file\?$/},
    {what: 'two documents', text: `${valid}---\nmaxAttempts: 1\n`, says: /is not valid YAML \(line 4\)/},
  ]
  const results = await pool(cases, 2, async (c) => {
    const file = join(s.dir, `${c.what.replace(/[^a-z0-9]+/gi, '-')}.yml`)
    writeFileSync(file, c.text)
    const r = await cliWithin(['hacks', '--config', file], 30_000, nowEnv(1))
    return {c, file, r}
  })
  for (const {c, file, r} of results) {
    assert.equal(r.timedOut, false, `${c.what}: rcguard hung (killed after ${r.elapsed} ms)`)
    assert.doesNotMatch(r.stderr, /internal error/, c.what)
    assert.equal(r.exitCode, 3, `${c.what}: ${r.stderr.slice(0, 300)}`)
    oneLine(r, c.what, new RegExp(`^rcguard: (configuration file|invalid configuration in) ${escape(file).source}`), c.says)
  }
  assert.equal(existsSync(s.db), false, 'nothing ran: no database was made')
})

// ---------------------------------------------------------------------------
// The database

const BAD_RECORDS: {what: string; doc: () => Record<string, unknown>; where: RegExp; record: RegExp}[] = [
  {what: 'an ip that is no address', doc: () => database({entries: [entry('300.1.2.3')]}), where: /entries\.1\.ip: "300\.1\.2\.3" is not an IPv4 or IPv6 address/, record: /removes the entry of "300\.1\.2\.3" on "master"/},
  {what: 'a cidr that is no network', doc: () => database({whitelist: [{cidr: '10.0.0.0/33', comment: null, added: T}]}), where: /whitelist\.1\.cidr: "10\.0\.0\.0\/33" is not an IPv4 or IPv6 address or network/, record: /removes the whitelist entry "10\.0\.0\.0\/33"/},
  {what: 'an IPv6 /0 (every IPv6 address)', doc: () => database({entries: [entry('::/0')]}), where: /entries\.1\.ip: "::\/0" is wider than the widest network rcguard blocks \(\/16\)/, record: /removes the entry of "::\/0"/},
  {what: 'an IPv4 network wider than /8', doc: () => database({entries: [entry('10.0.0.0/7')]}), where: /entries\.1\.ip: "10\.0\.0\.0\/7" is wider than the widest network rcguard blocks \(\/8\)/, record: /flush --invalid/},
  {what: 'an IPv4 network with host bits', doc: () => database({entries: [entry('198.51.100.7/24')]}), where: /entries\.1\.ip: "198\.51\.100\.7\/24" is not in the form rcguard writes \(198\.51\.100\.0\/24\)/, record: /flush --invalid/},
  {what: 'an address written as a /32', doc: () => database({entries: [entry('198.51.100.7/32')]}), where: /entries\.1\.ip: "198\.51\.100\.7\/32" is not in the form rcguard writes \(198\.51\.100\.7\)/, record: /flush --invalid/},
  {what: 'an address not in canonical form', doc: () => database({entries: [entry('2001:DB8::0:1')]}), where: /entries\.1\.ip: "2001:DB8::0:1" is not in the form rcguard writes \(2001:db8::1\)/, record: /flush --invalid/},
  {what: 'an instance name no configuration allows', doc: () => database({entries: [entry('198.51.100.9', {instance: 'x; drop'})]}), where: /entries\.1\.instance: "x; drop" is not an instance name/, record: /flush --invalid/},
  {what: 'a time past the year 9999', doc: () => database({entries: [entry('198.51.100.10', {blockedUntil: 9e15})]}), where: /entries\.1\.blockedUntil: a time after the year 9999/, record: /flush --invalid/},
  {what: 'a negative count', doc: () => database({entries: [entry('198.51.100.11', {attempts: -5})]}), where: /entries\.1\.attempts: Too small/, record: /flush --invalid/},
  {
    what: 'a fingerprint of 10^12 bytes',
    doc: () => database({positions: {'/var/log/roundcube/errors.log': {dev: 1, ino: 2, offset: 0, line: 0, fingerprint: '0'.repeat(32), fingerprintBytes: 1e12}}}),
    where: /positions\.\/var\/log\/roundcube\/errors\.log\.fingerprintBytes: Too big/,
    record: /removes the position kept for the log "\/var\/log\/roundcube\/errors\.log"/,
  },
  {what: 'a position under a relative path', doc: () => database({positions: {'logs/x': {dev: 1, ino: 2, offset: 0, line: 0, fingerprint: '0'.repeat(32), fingerprintBytes: 0}}}), where: /positions\.logs\/x: /, record: /flush --invalid/},
  {what: 'an unknown firewall backend', doc: () => database({top: {firewall: {backend: 'sh -c reboot', prefix: 'rcguard'}}}), where: /firewall\.backend: /, record: /removes the note of the firewall backend and prefix in use/},
]

test('a database holding a value rcguard never writes: exit 4 from every command, one line naming the record and "flush --invalid"; never rewritten (bytes and mtime)', async (t) => {
  const commands = [['list'], ['unblock', '203.0.113.50'], ['whitelist', '--remove', '192.0.2.0/24'], ['block', '198.51.100.1'], ['scan'], ['list', '--json']]
  const runs = BAD_RECORDS.flatMap((bad, i) => [
    {bad, args: ['hacks']},
    {bad, args: commands[i % commands.length] ?? ['list']},
  ])
  await pool(runs, 2, async ({bad, args}) => {
    const s = setup(t)
    writeFileSync(s.config, JSON.stringify(baseConfig(s)))
    const before = writeDb(s, bad.doc())
    const what = `${bad.what}: ${args.join(' ')}`
    const r = await cli([...args, '--config', s.config], {env: nowEnv(1)})
    assert.equal(r.exitCode, 4, `${what}: ${r.stderr}${r.stdout}`)
    const line = oneLine(r, what, new RegExp(`^rcguard: database ${escape(s.db).source} fails validation at `), bad.where, /; it was left untouched: "rcguard flush --invalid" /, bad.record)
    assert.match(line, /and a copy of the file \(see rcguard\(8\), RECOVERY\)$/, what)
    if (args.includes('--json')) assert.deepEqual((JSON.parse(r.stdout) as {error: {exitCode: number}}).error.exitCode, 4)
    else assert.equal(r.stdout, '', what)
    assertUntouched(s, before, what)
    assert.deepEqual(readdirSync(dirname(s.db)).filter((n) => n !== 'db.json.lock'), ['db.json'], `${what}: no temp file left`)
    assert.equal(await lockHeld(`${s.db}.lock`), false, `${what}: the lock is free`)
  })
})

test('flush --invalid: lists the faulty records, keeps the file as it was beside it, removes only them; the blocks and the whitelist stay', async (t) => {
  const s = setup(t)
  writeFileSync(s.config, JSON.stringify(baseConfig(s)))
  const doc = database({
    entries: [entry('300.1.2.3'), entry('198.51.100.20', {blockedUntil: 9e15})],
    whitelist: [{cidr: '10.0.0.0/33', comment: 'typo', added: T}],
    positions: {'/var/log/x.log': {dev: 1, ino: 2, offset: 0, line: 0, fingerprint: 'zz', fingerprintBytes: 0}},
  })
  const before = writeDb(s, doc)

  // The stored text of a faulty record, typed as an argument: the answer is the way out, not "not an address".
  for (const args of [['whitelist', '--remove', '10.0.0.0/33'], ['unblock', '300.1.2.3']]) {
    const r = await cli([...args, '--config', s.config], {env: nowEnv(1)})
    assert.equal(r.exitCode, 4, `${args.join(' ')}: ${r.stderr}`)
    oneLine(r, args.join(' '), new RegExp(`^rcguard: "${escape(args.at(-1) ?? '').source}" is not an address or network, but the database ${escape(s.db).source} holds it in the (whitelist )?entry `), /which fails validation: "rcguard flush --invalid" removes it/)
  }
  assertUntouched(s, before, 'after the stored texts were typed')

  // Not on a terminal and without --yes: the list, then a usage error; nothing changed.
  const ask = await cli(['flush', '--invalid', '--config', s.config], {env: nowEnv(1)})
  assert.equal(ask.exitCode, 2, ask.stderr)
  oneLine(ask, 'flush --invalid without --yes', /^rcguard: flush --invalid needs --yes when not run on a terminal$/)
  const listed = ask.stdout.trim().split('\n')
  assert.deepEqual(
    listed.map((l) => l.split(':')[1]?.trim()),
    ['entries.1', 'entries.2', 'whitelist.1', 'positions./var/log/x.log'],
    ask.stdout,
  )
  assert.match(listed[0] ?? '', /^invalid: entries\.1: the entry of "300\.1\.2\.3" on "master": ip: "300\.1\.2\.3" is not an IPv4 or IPv6 address$/)
  assertUntouched(s, before, 'flush --invalid without --yes')

  const done = await cli(['flush', '--invalid', '--yes', '--config', s.config], {env: nowEnv(1)})
  assert.equal(done.exitCode, 0, done.stderr)
  const kept = /the database as it was is kept as (\S+); firewall unchanged$/m.exec(done.stdout)?.[1]
  assert.ok(kept !== undefined, done.stdout)
  assert.match(done.stdout, /^removed 4 invalid records; /m)
  assert.equal(dirname(kept), dirname(s.db))
  assert.deepEqual(readFileSync(kept), before.bytes, 'the copy holds the file as it was')
  assert.equal(statSync(kept).mode & 0o777, 0o600)

  const rows = await cliJson<{ip: string; state: string}[]>(['list', '--config', s.config], {env: nowEnv(2)})
  assert.deepEqual(rows.map((r) => [r.ip, r.state]), [['203.0.113.50', 'blocked'], ['192.0.2.0/24', 'whitelisted']], 'the valid records are kept')

  const again = await cli(['flush', '--invalid', '--config', s.config], {env: nowEnv(2)})
  assert.equal(again.exitCode, 0, again.stderr)
  assert.equal(again.stdout.trim(), `database ${s.db} has no invalid records: nothing to remove`)

  // A fault outside any record: no item-wise repair; the RECOVERY advice, and the file as it was.
  const broken = writeDb(s, {...database(), entries: 'none'})
  const no = await cli(['flush', '--invalid', '--yes', '--config', s.config], {env: nowEnv(3)})
  assert.equal(no.exitCode, 4, no.stderr)
  oneLine(no, 'unrepairable', /fails validation at entries: .*; it was left untouched: move it aside and run "rcguard flush --yes" to start afresh/)
  assertUntouched(s, broken, 'unrepairable')
  assert.doesNotMatch(`${no.stdout}${no.stderr}`, STACK)
})
