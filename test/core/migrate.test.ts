/**
 * Store schema migrations (src/core/store/migrate.ts): a real version 1
 * database (test/fixtures/store/db-v1.json, as rcguard 0.1 wrote it) comes
 * up to the current schema with defaults filled and every other value kept;
 * the input is never changed; current files pass through; the registry has a
 * step for every version up to SCHEMA_VERSION; and properties: every
 * document of values rcguard writes that the version 1 schema accepted
 * migrates to one the current schema accepts, and any other is refused only
 * at records that `flush --invalid` can remove.
 *
 * V1 below is a frozen copy of the version 1 schema (src/core/store/schema.ts
 * before version 2): it is what "a valid version 1 file" means, whatever the
 * current schema becomes.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, readFileSync, rmSync, statSync, writeFileSync as write} from 'node:fs'
import {join} from 'node:path'
import fc from 'fast-check'
import {z} from 'zod'
import {migrations, upgrade} from '../../src/core/store/migrate.js'
import {dataSchema, emptyData, SCHEMA_VERSION} from '../../src/core/store/schema.js'
import {JsonStore} from '../../src/core/store/json-store.js'
import {diagnose} from '../../src/core/store/diagnose.js'
import {MAX_TIME} from '../../src/core/store/values.js'
import {boundUsers, cutUser} from '../../src/core/store/bounds.js'
import {canonicalIp, parseCidr} from '../../src/core/net/ip.js'
import {envInt, tempDir} from '../helpers/env.js'

const FIXTURE = new URL('../fixtures/store/db-v1.json', import.meta.url)

// ---------------------------------------------------------------------------
// The version 1 schema, frozen

const ms = z.number().int().nonnegative()
const ENVELOPES = ['file', 'stdout', 'php', 'syslog', 'rfc3339', 'journal-json'] as const

const V1 = z.object({
  schemaVersion: z.literal(1),
  entries: z.array(
    z.object({
      ip: z.string(),
      instance: z.string(),
      failures: z.array(ms),
      attempts: z.number().int().nonnegative(),
      firstSeen: ms,
      lastSeen: ms,
      lastUser: z.string(),
      blockedAt: ms.nullable(),
      blockedUntil: ms.nullable(),
      blocks: z.number().int().nonnegative(),
      lastBlockEnd: ms.optional(),
      users: z.array(z.string()).optional(),
      comment: z.string().optional(),
      recent: z.array(z.object({session: z.string(), grammar: z.string(), time: ms})),
    }),
  ),
  whitelist: z.array(z.object({cidr: z.string(), comment: z.string().nullable(), added: ms})),
  positions: z.record(
    z.string(),
    z.object({
      dev: z.number(),
      ino: z.number(),
      offset: z.number().int().nonnegative(),
      line: z.number().int().nonnegative(),
      fingerprint: z.string(),
      fingerprintBytes: z.number().int().nonnegative(),
      parser: z.object({envelope: z.enum(ENVELOPES).optional(), prefixed: z.boolean().optional()}).optional(),
    }),
  ),
  firewall: z.object({backend: z.string(), prefix: z.string()}).optional(),
})

type V1Data = z.infer<typeof V1>

/** What migrating a valid version 1 document must give: the three defaults, version 2, nothing else changed. */
/**
 * What a version 1 file becomes: the defaults of version 2, then version 3's ledger made of the entries' recent
 * twin lines, then version 4's user names, cut and at most 3 (the most recent).
 */
function expectedCurrent(v1: V1Data): unknown {
  return {
    ...v1,
    schemaVersion: 4,
    entries: v1.entries.map(({recent: _recent, ...e}) => ({
      ...e,
      lastUser: cutUser(e.lastUser),
      users: boundUsers(e.users ?? []),
      comment: e.comment ?? null,
      lastBlockEnd: e.lastBlockEnd ?? null,
    })),
    ledger: {
      twins: v1.entries.flatMap((e) =>
        e.recent
          .filter((r) => r.grammar === 'F1' || r.grammar === 'F2')
          .map((r) => ({instance: e.instance, session: r.session, grammar: r.grammar, time: r.time, ip: e.ip, counted: true})),
      ),
      accounts: [],
    },
  }
}

function readFixture(): V1Data {
  return JSON.parse(readFileSync(FIXTURE, 'utf8')) as V1Data
}

/** The first validation problem, as the store reports it. */
function firstIssue(data: unknown): string | null {
  const parsed = dataSchema.safeParse(data)
  if (parsed.success) return null
  const issue = parsed.error.issues[0]
  return issue === undefined ? '' : issue.path.map(String).join('.')
}

// ---------------------------------------------------------------------------
// The fixture

test('the fixture is a version 1 file that the current schema refuses as it stands', () => {
  const raw = readFixture()
  assert.equal(V1.safeParse(raw).success, true, 'valid version 1')
  assert.deepEqual(V1.parse(raw), raw, 'nothing in it that version 1 would drop')
  assert.equal(dataSchema.safeParse(raw).success, false, 'needs migrating')
  // What makes it a useful fixture: every optional field both present and absent.
  const has = (k: 'users' | 'comment' | 'lastBlockEnd') => raw.entries.map((e) => e[k] !== undefined)
  for (const k of ['users', 'comment', 'lastBlockEnd'] as const) {
    assert.ok(has(k).includes(true) && has(k).includes(false), `${k}: some entries with it, some without`)
  }
  assert.ok(raw.firewall !== undefined)
  assert.ok(raw.whitelist.some((w) => w.comment === null) && raw.whitelist.some((w) => w.comment !== null))
  assert.ok(Object.values(raw.positions).some((p) => p.parser?.envelope !== undefined))
  assert.ok(Object.values(raw.positions).some((p) => p.parser === undefined))
})

test('a version 1 database migrates to one the current schema accepts: defaults filled, every other value kept', () => {
  const raw = readFixture()
  const {data, from, steps} = upgrade(raw)
  assert.equal(from, 1)
  assert.equal(steps.length, SCHEMA_VERSION - 1)
  assert.match(steps[0] ?? '', /^1 -> 2: /)
  const parsed = dataSchema.safeParse(data)
  assert.ok(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues[0]))
  assert.deepEqual(data, expectedCurrent(raw))
  assert.deepEqual(parsed.data, data, 'validation drops and changes nothing')
  const byIp = new Map(parsed.data.entries.map((e) => [e.ip, e]))
  // Written before users were recorded: none; a block by hand: its comment; an empty comment stays empty.
  assert.deepEqual(byIp.get('198.51.100.23')?.users, [])
  assert.equal(byIp.get('198.51.100.23')?.comment, null)
  assert.equal(byIp.get('198.51.100.23')?.lastBlockEnd, null)
  assert.deepEqual(byIp.get('203.0.113.7')?.users, ['postmaster', 'admin', 'info@example.org'])
  assert.equal(byIp.get('192.0.2.200')?.comment, 'ticket 42')
  assert.equal(byIp.get('203.0.113.99')?.comment, '')
  assert.equal(byIp.get('203.0.113.99')?.lastBlockEnd, raw.entries.find((e) => e.ip === '203.0.113.99')?.lastBlockEnd)
  // And it survives the store's write and read back.
  assert.deepEqual(dataSchema.parse(JSON.parse(JSON.stringify(parsed.data))), parsed.data)
})

test('migrating leaves its input as it was and shares nothing with it', () => {
  const raw = readFixture()
  const before = structuredClone(raw)
  const {data} = upgrade(raw)
  assert.deepEqual(raw, before, 'input unchanged')
  for (const m of migrations) {
    const input = structuredClone(before) as unknown as Record<string, unknown>
    const snapshot = structuredClone(input)
    m.up(input)
    assert.deepEqual(input, snapshot, `step ${m.from} -> ${m.to} leaves its input alone`)
  }
  // Changing the result (as the guard does to entries in place) must not reach the input.
  const out = data as V1Data
  out.entries[0]?.failures.push(1)
  ;(data as {ledger: {twins: unknown[]}}).ledger.twins.splice(0)
  out.whitelist.pop()
  for (const p of Object.values(out.positions)) p.offset = 0
  assert.deepEqual(raw, before, 'input unchanged after the result was changed')
})

test('a document already at the current version passes through untouched, with no steps', () => {
  const empty = emptyData()
  assert.deepEqual(upgrade(empty), {data: empty, from: SCHEMA_VERSION, steps: []})
  assert.equal(upgrade(empty).data, empty)
  const current = upgrade(readFixture()).data
  const again = upgrade(current)
  assert.equal(again.data, current)
  assert.deepEqual(again.steps, [])
  assert.equal(again.from, SCHEMA_VERSION)
})

test('what cannot be migrated comes back as it was, for validation (or the newer-version check) to refuse', () => {
  const cases: [unknown, number][] = [
    [null, NaN],
    ['text', NaN],
    [42, NaN],
    [[1, 2], NaN],
    [{entries: []}, NaN],
    [{schemaVersion: '1', entries: []}, NaN],
    [{schemaVersion: 0, entries: []}, 0],
    [{schemaVersion: -1, entries: []}, -1],
    [{schemaVersion: 1.5, entries: []}, 1.5],
    [{schemaVersion: SCHEMA_VERSION + 1, entries: [], future: true}, SCHEMA_VERSION + 1],
  ]
  for (const [doc, from] of cases) {
    const r = upgrade(doc)
    assert.equal(r.data, doc, JSON.stringify(doc))
    assert.deepEqual(r.steps, [])
    assert.ok(Object.is(r.from, from), `${JSON.stringify(doc)}: from ${r.from}`)
  }
})

test('a broken version 1 file migrates without throwing and still fails validation where it did', () => {
  // The cases test/faults/input.test.ts and test/core/config-store.test.ts write.
  const cases: [unknown, string][] = [
    [{schemaVersion: 1, entries: [{ip: '203.0.113.50'}], whitelist: [], positions: {}}, 'entries.0.instance'],
    [{schemaVersion: 1, entries: 'no', whitelist: [], positions: {}}, 'entries'],
    [{schemaVersion: 1, entries: [null, 3, 'x', []], whitelist: [], positions: {}}, 'entries.0'],
    [{schemaVersion: 1, entries: [{...readFixture().entries[0], users: 'alice'}], whitelist: [], positions: {}}, 'entries.0.users'],
    [{schemaVersion: 1, entries: []}, 'whitelist'],
  ]
  for (const [doc, where] of cases) {
    const {data, steps} = upgrade(doc)
    assert.equal(steps.length, SCHEMA_VERSION - 1)
    assert.equal(firstIssue(data), where, JSON.stringify(doc))
  }
})

test('the registry has one step per version, from 1 up to SCHEMA_VERSION (bumping the version needs a migration)', () => {
  assert.equal(migrations[0]?.from, 1, 'starts at version 1')
  for (const [i, m] of migrations.entries()) {
    assert.equal(m.to, m.from + 1, `step ${i} goes up one version`)
    if (i > 0) assert.equal(m.from, migrations[i - 1]?.to, `step ${i} starts where step ${i - 1} ends`)
    assert.match(m.summary, /^[^\n]{10,}$/, `step ${i} says what it does on one line`)
  }
  assert.equal(migrations.at(-1)?.to, SCHEMA_VERSION, 'ends at SCHEMA_VERSION')
  // Each step also sets the version it promises.
  let doc: Record<string, unknown> = {schemaVersion: 1, entries: [], whitelist: [], positions: {}}
  for (const m of migrations) {
    doc = m.up(doc)
    assert.equal(doc.schemaVersion, m.to)
  }
  assert.equal(firstIssue(doc), null)
})

// ---------------------------------------------------------------------------
// Property: every valid version 1 document migrates to a valid current one

const SEED = envInt('RCGUARD_PROPERTY_SEED', 20261125)
const RUNS = 300 * envInt('RCGUARD_PROPERTY_RUNS', 1)

/**
 * Version 1 documents of any values the version 1 schema accepts (`any`), or of the values rcguard
 * writes (the current schema checks values as well as types: canonical addresses, instance names,
 * times before the year 10000, absolute log paths, fingerprints, a known backend).
 */
function documentsV1(values: 'rcguard' | 'any') {
  const real = values === 'rcguard'
  const time = fc.integer({min: 0, max: real ? MAX_TIME : Number.MAX_SAFE_INTEGER})
  const text = fc.string({unit: 'binary', maxLength: 12})
  const count = fc.integer({min: 0, max: 1_000_000})
  const v6 = fc.ipV6().map((a) => canonicalIp(a) ?? '::2')
  const ip = real ? fc.oneof(fc.ipV4(), v6) : fc.oneof(fc.ipV4(), fc.ipV6(), text)
  const cidr = real
    ? fc.oneof(
        fc.tuple(fc.ipV4(), fc.integer({min: 0, max: 32})).map(([a, p]) => parseCidr(`${a}/${p}`)?.text ?? '192.0.2.0/24'),
        fc.tuple(v6, fc.integer({min: 0, max: 128})).map(([a, p]) => parseCidr(`${a}/${p}`)?.text ?? '2001:db8::/32'),
      )
    : text
  const instance = real ? fc.stringMatching(/^[A-Za-z0-9_-]{1,16}$/) : text
  const entryV1 = fc.record(
    {
      ip,
      instance,
      failures: fc.array(time, {maxLength: 5}),
      attempts: count,
      firstSeen: time,
      lastSeen: time,
      lastUser: text,
      blockedAt: fc.option(time, {nil: null}),
      blockedUntil: fc.option(time, {nil: null}),
      blocks: count,
      lastBlockEnd: time,
      users: fc.array(text, {maxLength: 10}),
      comment: text,
      recent: fc.array(fc.record({session: text, grammar: fc.constantFrom('F1', 'F2', 'L1'), time}), {maxLength: 3}),
    },
    {requiredKeys: ['ip', 'instance', 'failures', 'attempts', 'firstSeen', 'lastSeen', 'lastUser', 'blockedAt', 'blockedUntil', 'blocks', 'recent']},
  )
  const positionV1 = fc.record(
    {
      dev: real ? fc.integer({min: 0, max: 2 ** 32}) : fc.double({noNaN: true, noDefaultInfinity: true}),
      ino: real ? fc.integer({min: 0, max: Number.MAX_SAFE_INTEGER}) : fc.double({noNaN: true, noDefaultInfinity: true}),
      offset: time,
      line: count,
      fingerprint: fc.string({unit: fc.constantFrom(...'0123456789abcdef'), minLength: 32, maxLength: 32}),
      fingerprintBytes: fc.integer({min: 0, max: 256}),
      parser: fc.record({envelope: fc.constantFrom(...ENVELOPES), prefixed: fc.boolean()}, {requiredKeys: []}),
    },
    {requiredKeys: ['dev', 'ino', 'offset', 'line', 'fingerprint', 'fingerprintBytes']},
  )
  const path = real ? fc.string({maxLength: 20}).map((p) => `/${p.replace(/\0/g, '')}`) : fc.string({maxLength: 20})
  return fc.record(
    {
      schemaVersion: fc.constant(1 as const),
      entries: fc.array(entryV1, {maxLength: 6}),
      whitelist: fc.array(fc.record({cidr, comment: fc.option(text, {nil: null}), added: time}), {maxLength: 3}),
      positions: fc.dictionary(path, positionV1, {maxKeys: 3}),
      firewall: real ? fc.record({backend: fc.constantFrom('iptables', 'ipset', 'nftables', 'none'), prefix: fc.stringMatching(/^[A-Za-z][A-Za-z0-9_]{0,9}$/)}) : fc.record({backend: text, prefix: text}),
    },
    {requiredKeys: ['schemaVersion', 'entries', 'whitelist', 'positions']},
  )
}

test('property: every document of values rcguard writes that the version 1 schema accepts migrates to one the current schema accepts, values kept', () => {
  fc.assert(
    fc.property(documentsV1('rcguard'), (generated) => {
      // As a file holds it: what JSON keeps.
      const raw = JSON.parse(JSON.stringify(generated)) as V1Data
      const v1 = V1.safeParse(raw)
      assert.ok(v1.success, 'the generator makes valid version 1 documents')
      const before = structuredClone(raw)
      const {data, from, steps} = upgrade(raw)
      assert.deepEqual(raw, before, 'input unchanged')
      assert.equal(from, 1)
      assert.equal(steps.length, SCHEMA_VERSION - 1)
      const parsed = dataSchema.safeParse(data)
      assert.ok(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues[0]))
      assert.deepEqual(data, expectedCurrent(v1.data))
    }),
    {seed: SEED, numRuns: RUNS},
  )
})

test('property: any document the version 1 schema accepts migrates to a valid one, or to one whose faults are records that flush --invalid removes', () => {
  fc.assert(
    fc.property(documentsV1('any'), (generated) => {
      const raw = JSON.parse(JSON.stringify(generated)) as V1Data
      assert.ok(V1.safeParse(raw).success)
      const {data} = upgrade(raw)
      if (dataSchema.safeParse(data).success) return
      const {records, repaired} = diagnose(data)
      assert.ok(records.length > 0, 'a fault is found in some record')
      assert.ok(repaired !== null && dataSchema.safeParse(repaired).success, `without them the database is valid: ${JSON.stringify(records)}`)
    }),
    {seed: SEED, numRuns: RUNS},
  )
})

// ---------------------------------------------------------------------------
// The real store, end to end

test('rcguard reads a version 1 database, keeps its bytes as db.json.v1 (0600) at the first write, and never overwrites that copy', async (t) => {
  const db = join(tempDir(t), 'db.json')
  const v1 = readFileSync(FIXTURE)
  write(db, v1, {mode: 0o600})
  const store = new JsonStore(db)

  const data = await store.withLock({wait: false}, () => store.read())
  assert.equal(data.schemaVersion, SCHEMA_VERSION)
  assert.deepEqual(readFileSync(db), v1, 'reading changes nothing on disk')
  assert.equal(existsSync(`${db}.v1`), false)

  await store.withLock({wait: false}, async () => store.write(await store.read()))
  assert.deepEqual(readFileSync(`${db}.v1`), v1, 'the original bytes are kept')
  assert.equal(statSync(`${db}.v1`).mode & 0o777, 0o600)
  assert.equal(JSON.parse(readFileSync(db, 'utf8')).schemaVersion, SCHEMA_VERSION)

  // A second older file (restored by hand) migrated again: the first copy stands.
  const edited = Buffer.from(v1.toString('utf8').replace('"whitelist":[', '"whitelist":[ '))
  write(db, edited)
  await store.withLock({wait: false}, async () => store.write(await store.read()))
  assert.deepEqual(readFileSync(`${db}.v1`), v1)

  // A current file writes no copy.
  rmSync(`${db}.v1`)
  await store.withLock({wait: false}, async () => store.write(await store.read()))
  assert.equal(existsSync(`${db}.v1`), false)
})

test('a version 1 database that is still invalid after migrating says so, and is left as it was', async (t) => {
  const db = join(tempDir(t), 'db.json')
  const bad = JSON.stringify({schemaVersion: 1, entries: [{ip: '203.0.113.9'}], whitelist: [], positions: {}})
  write(db, bad)
  await assert.rejects(new JsonStore(db).read(), /fails validation at entries\.0\.\w+: .* \(after migrating it from schema version 1\); it was left untouched/)
  assert.equal(readFileSync(db, 'utf8'), bad)
})

test('a schema 3 database with long lists of long user names becomes a valid schema 4 one with the same blocks, its names cut and few, the file smaller and the old one kept as db.json.v3', async (t) => {
  const db = join(tempDir(t), 'db.json')
  const now = Date.UTC(2026, 10, 25, 13, 0, 0)
  const {generateDb} = await import('../../bench/generate-db.js')
  await generateDb(db, {entries: 2000, now, version: 3})
  const v3 = readFileSync(db)
  const old = JSON.parse(v3.toString('utf8')) as {schemaVersion: number; entries: {ip: string; instance: string; users: string[]; lastUser: string; blockedAt: number | null; blockedUntil: number | null; blocks: number; lastBlockEnd: number | null}[]}
  assert.equal(old.schemaVersion, 3)
  assert.ok(old.entries.some((e) => e.users.length === 10) && old.entries.some((e) => e.users.some((u) => u.length > 500)), 'long lists of long names')

  const store = new JsonStore(db)
  await store.withLock({wait: false}, async () => store.write(await store.read()))
  assert.deepEqual(readFileSync(`${db}.v3`), v3, 'the schema 3 file is kept as it was')
  const text = readFileSync(db, 'utf8')
  const file = JSON.parse(text) as {schemaVersion: number}
  assert.equal(file.schemaVersion, 4)
  assert.ok(text.length < v3.length / 2, `${text.length} bytes against ${v3.length}`)
  const data = await store.read()
  assert.equal(data.entries.length, old.entries.length)
  const block = (e: (typeof old.entries)[number]) => [e.ip, e.instance, e.blockedAt, e.blockedUntil, e.blocks, e.lastBlockEnd]
  assert.deepEqual(data.entries.map(block), old.entries.map(block), 'every block, its times and its count, as it was')
  old.entries.forEach((e, i) => {
    const now4 = data.entries[i]
    assert.ok(now4 !== undefined)
    assert.deepEqual(now4.users, boundUsers(e.users))
    assert.ok(now4.users.length <= 3 && now4.users.every((u) => u.length <= 64))
    assert.equal(now4.lastUser, cutUser(e.lastUser))
    // The most recent names are the ones kept.
    assert.equal(now4.users.at(-1), cutUser(e.users.at(-1) ?? ''))
  })
  assert.ok(dataSchema.safeParse(data).success)
})
