/**
 * Overlapping runs (issue 6). Ten `hacks` started together, with `block`,
 * `unblock` and `whitelist` among them, while the log grows, repeated: every
 * process exits 0 or with the documented busy code 75, nothing else is said,
 * no admin change and no failure line is lost or counted twice, and the
 * firewall (in a network namespace of the test's own) equals the store.
 * Also the lock's own contract: a stale lock left by a killed process is
 * recovered; a live one makes `hacks` exit 75 quietly and an admin command
 * wait a few seconds, then fail with 75 and a clear message.
 *
 * RCGUARD_FAULT_TRIALS sets the rounds of the iptables overlap (default 3;
 * a third as many, at least 1, for nftables and the stale-lock race), so the
 * file stays under a minute by default; RCGUARD_FAULT_SEED replays a run (the
 * seed is printed).
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {pathToFileURL} from 'node:url'
import lockfile from 'proper-lockfile'
import {appendLines, cli, cliJson, f2, netns, requireRoot, ROOT, setup, stripSaveComments, type CliResult, envInt, seededRandom} from '../helpers/env.js'

const ROUNDS = envInt('RCGUARD_FAULT_TRIALS', 3)
const SEED = envInt('RCGUARD_FAULT_SEED', (Date.now() % 2_147_483_647) + 1)

const random = seededRandom
const T0 = new Date(Date.UTC(2026, 10, 25, 13, 0, 0))
const at = (min: number) => new Date(T0.getTime() + min * 60_000)
/**
 * Every process sees the same "now": the log's lines fall between 2 and 11
 * minutes before it, inside the window, so no entry is pruned or expires
 * and an address's attempts are exactly its lines.
 */
const ENV = {RCGUARD_NOW: at(13).toISOString()}
/** proper-lockfile's retries for admin commands (json-store.ts): 100 ms × 1.3^i, at most 1 s, 10 times ≈ 4.2 s. */
const ADMIN_WAIT_MS = Array.from({length: 10}, (_, i) => Math.min(100 * 1.3 ** i, 1000)).reduce((a, b) => a + b, 0)
const BUSY_ADMIN = /^rcguard: another rcguard process holds the lock \S+\.lock; try again in a moment\n?$/

interface Row {
  ip: string
  state: 'blocked' | 'watching' | 'whitelisted'
  attempts: number
}

interface Run extends CliResult {
  kind: 'hacks' | 'block' | 'unblock' | 'whitelist'
  arg: string
  ms: number
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function timed(kind: Run['kind'], arg: string, args: string[], ns: string): Promise<Run> {
  const t = performance.now()
  const r = await cli(args, {netns: ns, env: ENV})
  return {...r, kind, arg, ms: performance.now() - t}
}

type Ns = Awaited<ReturnType<typeof netns>>

/** The IPv4 addresses the firewall blocks for instance master. */
async function firewallBlocked(ns: Ns, backend: 'iptables' | 'nftables'): Promise<string[]> {
  if (backend === 'iptables') {
    const save = await ns.run('iptables-save', ['-t', 'filter'])
    assert.equal(save.exitCode, 0, save.stderr)
    const ours = stripSaveComments(save.stdout)
      .split('\n')
      .filter((l) => l.startsWith('-A rcguard-master '))
    const ips = ours.map((l) => /^-A rcguard-master -s (\S+)\/32 -j DROP$/.exec(l)?.[1] ?? `unexpected rule: ${l}`)
    return ips.sort()
  }
  const set = await ns.run('nft', ['list', 'set', 'inet', 'rcguard', 'master_v4'])
  assert.equal(set.exitCode, 0, set.stderr)
  const elements = /elements = \{([^}]*)\}/.exec(set.stdout)?.[1] ?? ''
  return (elements.match(/\d+\.\d+\.\d+\.\d+/g) ?? []).sort()
}

async function rows(config: string, ns: string): Promise<Row[]> {
  return cliJson<Row[]>(['list', '--config', config], {netns: ns, env: ENV})
}

async function assertFirewallEqualsStore(ns: Ns, backend: 'iptables' | 'nftables', config: string, when: string): Promise<void> {
  const blocked = (await cliJson<Row[]>(['list', '--state', 'blocked', '--config', config], {netns: ns.name, env: ENV})).map((r) => r.ip).sort()
  assert.deepEqual(await firewallBlocked(ns, backend), blocked, `${when}: the firewall's blocked addresses differ from list --state blocked`)
}

async function overlap(t: Parameters<typeof setup>[0], backend: 'iptables' | 'nftables', rounds: number): Promise<void> {
  const seed = SEED + (backend === 'nftables' ? 1 : 0)
  const rnd = random(seed)
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)] as T
  const ns = await netns(t)
  const s = setup(t, {firewall: {backend}})
  const hacks = ['hacks', '--config', s.config]

  // Lines appended, per address: each line names its address once.
  const expected = new Map<string, number>()
  const logPool = Array.from({length: 120}, (_, i) => (i < 60 ? `203.0.113.${i + 1}` : `198.51.100.${i - 59}`))
  const lines = (addresses: number, maxPerAddress: number): string[] => {
    const out: string[] = []
    for (let i = 0; i < addresses; i++) {
      const ip = pick(logPool)
      const n = 1 + Math.floor(rnd() * maxPerAddress)
      for (let k = 0; k < n; k++) out.push(f2(new Date(at(2).getTime() + Math.floor(rnd() * 9 * 60) * 1000), ip, `user${Math.floor(rnd() * 50)}@example.com`))
      expected.set(ip, (expected.get(ip) ?? 0) + n)
    }
    // Interleave the addresses, as parallel PHP workers would.
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1))
      ;[out[i], out[j]] = [out[j] as string, out[i] as string]
    }
    return out
  }

  // A first run learns the (empty) logs' positions; one address is blocked by hand so round 1 has one to unblock.
  const first = await cli(hacks, {netns: ns.name, env: ENV})
  assert.equal(first.exitCode, 0, first.stderr)
  const pre = await cli(['block', '192.0.2.1', '--config', s.config], {netns: ns.name, env: ENV})
  assert.equal(pre.exitCode, 0, pre.stderr)

  const blockedByHand = new Set<string>(['192.0.2.1'])
  const unblocked = new Set<string>()
  const whitelisted = new Set<string>()
  const gaveUp = new Set<string>()
  const runs: Run[] = []
  let nextBlock = 2

  for (let round = 1; round <= rounds; round++) {
    appendLines(s.log, lines(25, 7))
    const started: Promise<Run>[] = []
    for (let i = 0; i < 10; i++) started.push(timed('hacks', '', hacks, ns.name))
    const admin = (kind: Run['kind'], arg: string, args: string[]): void => {
      started.push(sleep(Math.floor(rnd() * 600)).then(() => timed(kind, arg, args, ns.name)))
    }
    for (let i = 0; i < 2; i++) {
      const ip = `192.0.2.${nextBlock++}`
      admin('block', ip, ['block', ip, '--comment', `round ${round}`, '--config', s.config])
    }
    const target = [...blockedByHand].find((ip) => !unblocked.has(ip))
    if (target !== undefined) {
      unblocked.add(target)
      admin('unblock', target, ['unblock', target, '--config', s.config])
    }
    const cidr = `198.18.${round % 256}.${1 + Math.floor(round / 256)}/32`
    admin('whitelist', cidr, ['whitelist', cidr, '--comment', `round ${round}`, '--config', s.config])
    // The log keeps growing while they run.
    const growing = [0, 1, 2].map(() => sleep(Math.floor(rnd() * 800)).then(() => appendLines(s.log, lines(3, 4))))
    const done = await Promise.all(started)
    await Promise.all(growing)
    runs.push(...done)

    for (const r of done) {
      const what = `round ${round}: rcguard ${r.kind} ${r.arg}`.trimEnd()
      if (r.kind === 'hacks') {
        assert.ok(r.exitCode === 0 || r.exitCode === 75, `${what} exited ${r.exitCode}: ${r.stderr}`)
        assert.equal(r.stderr, '', `${what} (exit ${r.exitCode}) said something on stderr`)
        if (r.exitCode === 75) assert.equal(r.stdout, '', `${what}: a busy cron run must stay quiet`)
        continue
      }
      if (r.exitCode === 75) {
        assert.match(r.stderr, BUSY_ADMIN, `${what}: exit 75 without the busy message`)
        assert.ok(r.ms >= ADMIN_WAIT_MS - 200, `${what} gave up after ${Math.round(r.ms)} ms: it must wait about ${Math.round(ADMIN_WAIT_MS)} ms first`)
        gaveUp.add(r.arg)
        if (r.kind === 'unblock') unblocked.delete(r.arg)
        continue
      }
      assert.equal(r.exitCode, 0, `${what} exited ${r.exitCode}: ${r.stderr}`)
      assert.equal(r.stderr, '', `${what} said something on stderr`)
      if (r.kind === 'block') blockedByHand.add(r.arg)
      if (r.kind === 'whitelist') whitelisted.add(r.arg)
    }
    // Nobody runs between rounds: whoever held the lock last left the firewall as its store.
    await assertFirewallEqualsStore(ns, backend, s.config, `after round ${round}`)
  }

  // A last quiet run reads what the overlapping ones left.
  const last = await cli(hacks, {netns: ns.name, env: ENV})
  assert.equal(last.exitCode, 0, last.stderr)
  assert.equal(last.stderr, '')

  const final = await rows(s.config, ns.name)
  const byIp = new Map(final.map((r) => [r.ip, r]))
  for (const [ip, n] of expected) {
    assert.equal(byIp.get(ip)?.attempts, n, `${ip}: ${n} failure line(s) appended, ${byIp.get(ip)?.attempts ?? 'no entry'} counted`)
  }
  for (const ip of blockedByHand) {
    if (unblocked.has(ip)) assert.equal(byIp.get(ip), undefined, `${ip} was unblocked (exit 0) but is in the store`)
    else assert.equal(byIp.get(ip)?.state, 'blocked', `${ip} was blocked by hand (exit 0) but is ${byIp.get(ip)?.state ?? 'not in the store'}`)
  }
  for (const cidr of whitelisted) assert.equal(byIp.get(cidr)?.state, 'whitelisted', `${cidr} was whitelisted (exit 0) but is not`)
  for (const arg of gaveUp) {
    if (!unblocked.has(arg) && !blockedByHand.has(arg) && !whitelisted.has(arg)) {
      assert.equal(byIp.get(arg), undefined, `${arg}: its command gave up (exit 75) but changed the store`)
    }
  }
  const known = new Set([...expected.keys(), ...blockedByHand, ...whitelisted])
  assert.deepEqual(final.filter((r) => !known.has(r.ip)), [], 'entries nobody made')
  const blockedNow = final.filter((r) => r.state === 'blocked').map((r) => r.ip).sort()
  assert.deepEqual(await firewallBlocked(ns, backend), blockedNow, "at the end: the firewall's blocked addresses differ from the store's")
  assert.ok(final.some((r) => r.state === 'blocked' && expected.has(r.ip)), 'some log address should have been blocked automatically')

  const busyHacks = runs.filter((r) => r.kind === 'hacks' && r.exitCode === 75).length
  const busyAdmin = runs.filter((r) => r.kind !== 'hacks' && r.exitCode === 75).length
  const adminRuns = runs.filter((r) => r.kind !== 'hacks')
  const slowest = Math.max(...adminRuns.map((r) => r.ms))
  console.log(
    `concurrency: ${rounds} round${rounds === 1 ? '' : 's'}, ${runs.length} processes, ${busyHacks + busyAdmin} busy exits ` +
      `(${backend}, seed ${seed}; hacks ${busyHacks} of ${runs.length - adminRuns.length}; admin commands that waited and gave up ${busyAdmin} of ${adminRuns.length}, the slowest took ${Math.round(slowest)} ms); ` +
      `${[...expected.values()].reduce((a, b) => a + b, 0)} failure lines from ${expected.size} addresses, each counted once`,
  )
}

test('10 hacks runs together with block, unblock and whitelist, repeated, on a growing log: no lost update, no double count, firewall = store (iptables)', async (t) => {
  if (!requireRoot(t)) return
  await overlap(t, 'iptables', ROUNDS)
})

test('the same overlap with the nftables backend', async (t) => {
  if (!requireRoot(t)) return
  await overlap(t, 'nftables', Math.ceil(ROUNDS / 3))
})

/** Makes the lock directory as proper-lockfile does (mkdir), with an mtime `ageMs` in the past. */
function plantLock(db: string, ageMs: number): string {
  const lock = `${db}.lock`
  mkdirSync(dirname(db), {recursive: true, mode: 0o700})
  mkdirSync(lock)
  const when = new Date(Date.now() - ageMs)
  utimesSync(lock, when, when)
  return lock
}

test('a lock left by a killed process is recovered: 10 hacks and 2 admin commands race to take it over; every line counted once', async (t) => {
  const s = setup(t)
  const rnd = random(SEED + 7)
  const trials = Math.ceil(ROUNDS / 3)
  const expected = new Map<string, number>()
  const made = new Set<string>()
  for (let trial = 1; trial <= trials; trial++) {
    const batch: string[] = []
    for (let i = 0; i < 40; i++) {
      const ip = `203.0.113.${1 + Math.floor(rnd() * 200)}`
      batch.push(f2(new Date(at(2).getTime() + Math.floor(rnd() * 540) * 1000), ip))
      expected.set(ip, (expected.get(ip) ?? 0) + 1)
    }
    appendLines(s.log, batch)
    // As a run killed by SIGKILL leaves it, seen by cron's next run a minute later: older than the 30 s stale time.
    const lock = plantLock(s.db, 60_000)
    const ip = `192.0.2.${100 + trial}`
    const cidr = `198.18.9.${trial}/32`
    const done = await Promise.all([
      ...Array.from({length: 10}, () => cli(['hacks', '--config', s.config], {env: ENV})),
      cli(['block', ip, '--config', s.config], {env: ENV}),
      cli(['whitelist', cidr, '--config', s.config], {env: ENV}),
    ])
    for (const r of done) {
      assert.ok(r.exitCode === 0 || r.exitCode === 75, `exit ${r.exitCode}: ${r.stderr}`)
      if (r.exitCode === 0) assert.equal(r.stderr, '')
    }
    assert.ok(done.some((r) => r.exitCode === 0), 'nobody recovered the stale lock')
    const [blockRun, whiteRun] = done.slice(10)
    if (blockRun?.exitCode === 0) made.add(ip)
    if (whiteRun?.exitCode === 0) made.add(cidr)
    assert.equal(existsSync(lock), false, 'every holder released the lock')
  }
  const last = await cli(['hacks', '--config', s.config], {env: ENV})
  assert.equal(last.exitCode, 0, last.stderr)
  const final = await cliJson<Row[]>(['list', '--config', s.config], {env: ENV})
  const byIp = new Map(final.map((r) => [r.ip, r.attempts]))
  const miscounted = [...expected].filter(([ip, n]) => byIp.get(ip) !== n)
  // Nothing here removes a block or a whitelist entry: each one made must still be there.
  const lost = [...made].filter((x) => !byIp.has(x)).length
  console.log(`concurrency: stale lock taken over ${trials} time(s) by 12 racing processes, ${lost} admin change(s) lost, ${miscounted.length} address(es) miscounted`)
  // Counts and positions are one atomic file, so even two holders cannot count a line twice.
  assert.deepEqual(miscounted, [], 'addresses whose attempts differ from their lines')
  // A lost admin change here would be the takeover race of the next test, which makes it happen every
  // time; at random it is rare (2 double holds in 150 races of 12 processes, measured with proper-lockfile
  // alone): reported above, not failed on, so that the suite stays steady while that bug is open.
})

test(
  'a stale lock taken over by two processes at once (one paused between its stale check and its rmdir): never two holders, no lost admin change',
  {todo: 'bug: proper-lockfile 4.1.2 stale takeover (stat, rmdir, mkdir) lets a late process remove the fresh lock another has just taken; both hold it and the block is lost (moxystudio/node-proper-lockfile#121)'},
  async (t) => {
    const s = setup(t)
    // Enough lines that hacks holds the lock for a good while.
    const lines: string[] = []
    for (let i = 0; i < 10_000; i++) lines.push(f2(new Date(at(2).getTime() + (i % 540) * 1000), `198.51.100.${1 + (i % 200)}`))
    appendLines(s.log, lines)
    const lock = plantLock(s.db, 60_000)
    // Fault injection in the real CLI (a preload patching graceful-fs, which proper-lockfile uses):
    // its first rmdir of the lock, the stale takeover's, waits for a go file.
    const park = join(s.dir, 'park')
    const preload = join(s.dir, 'park.mjs')
    writeFileSync(
      preload,
      `import {createRequire} from 'node:module'
import {existsSync, writeFileSync} from 'node:fs'
const gfs = createRequire(${JSON.stringify(join(ROOT, 'package.json'))})('graceful-fs')
const rmdir = gfs.rmdir
let parked = false
gfs.rmdir = function (path, ...rest) {
  if (parked || !String(path).endsWith('.lock')) return rmdir.call(this, path, ...rest)
  parked = true
  writeFileSync(${JSON.stringify(`${park}.parked`)}, '')
  const wait = () => (existsSync(${JSON.stringify(`${park}.go`)}) ? rmdir.call(this, path, ...rest) : setTimeout(wait, 5))
  wait()
}
`,
    )
    const until = async (what: string, ok: () => boolean): Promise<void> => {
      const end = Date.now() + 30_000
      while (!ok()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
        await sleep(5)
      }
    }
    // B (an admin's block) sees the lock stale and pauses just before removing it.
    let bDone = false
    const b = cli(['block', '192.0.2.77', '--config', s.config], {env: {...ENV, NODE_OPTIONS: `--import ${pathToFileURL(preload).href}`}}).finally(() => {
      bDone = true
    })
    await until('block to find the lock stale', () => existsSync(`${park}.parked`) || bDone)
    if (!existsSync(`${park}.parked`)) {
      assert.fail(`block took the stale lock over without the rmdir this test pauses (exit ${(await b).exitCode}): the takeover changed, adapt the fault injection`)
    }
    // A (cron's hacks) takes the stale lock over as it should...
    const a = cli(['hacks', '--config', s.config], {env: ENV})
    await until('hacks to take the lock over', () => existsSync(lock) && statSync(lock).mtimeMs > Date.now() - 10_000)
    await sleep(100)
    // ...then B goes on: it removes A's fresh lock and makes its own.
    writeFileSync(`${park}.go`, '')
    const [rb, ra] = await Promise.all([b, a])
    assert.equal(ra.exitCode, 0, ra.stderr)
    assert.ok(rb.exitCode === 0 || rb.exitCode === 75, `block exited ${rb.exitCode}: ${rb.stderr}`)
    const rowsNow = await cliJson<Row[]>(['list', '--config', s.config], {env: ENV})
    if (rb.exitCode === 0) {
      assert.equal(rowsNow.find((r) => r.ip === '192.0.2.77')?.state, 'blocked', 'block 192.0.2.77 exited 0, but the concurrent hacks run overwrote it: both held the lock')
    }
    assert.equal(rowsNow.filter((r) => r.state !== 'whitelisted' && r.ip !== '192.0.2.77').reduce((n, r) => n + r.attempts, 0), 10_000)
  },
)

test('a lock younger than the stale time is respected: hacks exits 75 quietly and changes nothing', async (t) => {
  const s = setup(t)
  appendLines(s.log, [f2(at(5), '203.0.113.51')])
  const lock = plantLock(s.db, 20_000)
  const r = await cli(['hacks', '--config', s.config], {env: ENV})
  assert.equal(r.exitCode, 75)
  assert.equal(r.stdout, '')
  assert.equal(r.stderr, '')
  assert.equal(existsSync(s.db), false, 'nothing was written')
  assert.equal(existsSync(lock), true, 'the lock was left alone')
})

test('a live lock: an admin command waits about 4 s, then exits 75 with a clear message; hacks exits 75 at once and quietly', async (t) => {
  const s = setup(t)
  mkdirSync(dirname(s.db), {recursive: true, mode: 0o700})
  writeFileSync(s.db, '{"schemaVersion":1,"entries":[],"whitelist":[],"positions":{}}\n', {mode: 0o600})
  // Held by this (live) process exactly as rcguard holds it.
  const release = await lockfile.lock(s.db, {lockfilePath: `${s.db}.lock`, realpath: false, stale: 30_000, update: 5_000})
  t.after(() => release().catch(() => undefined))

  const timedCli = async (args: string[]) => {
    const t0 = performance.now()
    const r = await cli(args, {env: ENV})
    return {...r, ms: performance.now() - t0}
  }
  const [b, j, h] = await Promise.all([
    timedCli(['block', '192.0.2.7', '--config', s.config]),
    timedCli(['whitelist', '198.18.0.1', '--json', '--config', s.config]),
    timedCli(['hacks', '--config', s.config]),
  ])
  assert.equal(b.exitCode, 75, b.stderr)
  assert.match(b.stderr, BUSY_ADMIN)
  assert.ok(b.stderr.includes(`${s.db}.lock`), 'the message names the lock file')
  assert.ok(b.ms >= ADMIN_WAIT_MS - 200, `gave up after ${Math.round(b.ms)} ms`)
  assert.ok(b.ms < 20_000, `waited ${Math.round(b.ms)} ms`)
  // --json: the error as JSON on stdout, the line on stderr, the same code.
  assert.equal(j.exitCode, 75)
  assert.equal(JSON.parse(j.stdout).error.exitCode, 75)
  assert.match(j.stderr, BUSY_ADMIN)
  // cron's run: at once and quietly.
  assert.equal(h.exitCode, 75)
  assert.equal(h.stdout, '')
  assert.equal(h.stderr, '')
  assert.ok(h.ms < b.ms, `hacks took ${Math.round(h.ms)} ms: it must not wait`)
  assert.equal(JSON.parse(readFileSync(s.db, 'utf8')).entries.length, 0, 'nothing was changed')

  await release()
  const ok = await cli(['block', '192.0.2.7', '--config', s.config], {env: ENV})
  assert.equal(ok.exitCode, 0, ok.stderr)
})
