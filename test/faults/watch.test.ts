/**
 * `rcguard watch` (issue 12): the real CLI, left running, against logs that
 * the test writes as Roundcube would, with lines stamped with the real time.
 *
 * - one attempt a second is blocked after at most maxAttempts + 2 attempts;
 * - SIGTERM stops it with exit 0 and the lock free;
 * - rotation, a log removed and recreated: every failure counted once;
 * - a corrupt database: told once, never overwritten, the process lives on
 *   and carries on once the admin moved the file aside;
 * - a failing firewall tool (a netns, the real iptables behind a fake that
 *   fails while a flag file exists): told, retried, the block lands once the
 *   tool works again;
 * - beside cron runs of `hacks` and admin commands: no failure lost or counted
 *   twice, every cron run exits 0 or 75.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {appendLines, cli, cliJson, f2, lockHeld, netns, requireRoot, setup, type Setup} from '../helpers/env.js'
import {sleep, Watcher} from '../helpers/watcher.js'

interface Row {
  ip: string
  state: 'blocked' | 'watching' | 'whitelisted'
  attempts: number
}

function configure(s: Setup, extra: Record<string, unknown> = {}): void {
  writeFileSync(
    s.config,
    JSON.stringify({database: s.db, instances: [{name: 'master', logs: [s.log], ports: [80, 443]}], firewall: {backend: 'none'}, ...extra}),
  )
}

/** One failure line of `ip`, stamped now. */
function fail(s: Setup, ip: string, user = 'alice@example.com'): void {
  appendLines(s.log, [f2(new Date(), ip, user)])
}

async function rows(s: Setup): Promise<Row[]> {
  return cliJson<Row[]>(['list', '--config', s.config])
}

function started(t: {after: (fn: () => Promise<void>) => void}, w: Watcher): Watcher {
  t.after(async () => {
    if (w.alive) await w.stop()
  })
  return w
}

test('one attempt a second is blocked after at most maxAttempts + 2 attempts; SIGTERM stops watch with exit 0 and the lock free', async (t) => {
  const s = setup(t)
  configure(s)
  const w = started(t, new Watcher(s.config))
  await w.waitFor(/^rcguard watch: following 1 log/)
  let attempts = 0
  while (attempts < 12 && w.count(/^blocked 203\.0\.113\.5 /) === 0) {
    fail(s, '203.0.113.5')
    attempts++
    await sleep(1_000)
  }
  assert.equal(w.count(/^blocked 203\.0\.113\.5 on master /), 1, w.out.join('\n'))
  assert.ok(attempts <= 6 + 2, `blocked only after ${attempts} attempts (maxAttempts 6)`)
  const blocked = (await rows(s)).find((r) => r.ip === '203.0.113.5')
  assert.equal(blocked?.state, 'blocked')
  assert.equal(await w.stop(), 0, w.err.join('\n'))
  assert.match(w.out.at(-1) ?? '', /^rcguard watch: stopped after \d+ cycle\(s\)$/)
  assert.deepEqual(w.err, [])
  assert.equal(await lockHeld(`${s.db}.lock`), false)
})

test('rotation and a log removed then recreated: every failure counted once, the missing log told once', async (t) => {
  const s = setup(t)
  configure(s)
  const w = started(t, new Watcher(s.config))
  await w.waitFor(/^rcguard watch: following/)
  for (let i = 0; i < 3; i++) fail(s, '198.51.100.20')
  await sleep(2_000)
  // logrotate's default: rename, then a new empty file.
  renameSync(s.log, `${s.log}.1`)
  writeFileSync(s.log, '')
  for (let i = 0; i < 2; i++) fail(s, '198.51.100.20')
  await sleep(2_000)
  assert.equal((await rows(s)).find((r) => r.ip === '198.51.100.20')?.attempts, 5)
  // Gone for a while: the warning once, not once a second.
  rmSync(s.log)
  await sleep(3_500)
  assert.ok(w.alive)
  const missing = w.err.filter((l) => l.includes(s.log))
  assert.ok(missing.length <= 1, `told ${missing.length} times:\n${w.err.join('\n')}`)
  writeFileSync(s.log, '')
  fail(s, '198.51.100.20')
  await w.waitFor(/^blocked 198\.51\.100\.20 on master .*\(6 failed logins/)
  assert.equal(await w.stop(), 0)
})

test('a corrupt database: told once, never overwritten, watch lives on and carries on once it is moved aside', async (t) => {
  const s = setup(t)
  configure(s)
  const w = started(t, new Watcher(s.config))
  await w.waitFor(/^rcguard watch: following/)
  fail(s, '192.0.2.30')
  await sleep(1_500)
  assert.ok(existsSync(s.db))
  const corrupt = '{"schemaVersion": 3, "entries": [ not json\n'
  writeFileSync(s.db, corrupt)
  for (let i = 0; i < 3; i++) {
    fail(s, '192.0.2.30')
    await sleep(1_000)
  }
  await w.waitFor(/is corrupt/, 10_000, 'err')
  await sleep(2_000)
  assert.ok(w.alive, 'watch died of a corrupt database')
  assert.equal(w.count(/is corrupt/, 'err'), 1, w.err.join('\n'))
  assert.equal(readFileSync(s.db, 'utf8'), corrupt, 'the corrupt database was overwritten')
  // The admin's recovery (rcguard(8) RECOVERY): move it aside; the next cycle starts afresh.
  renameSync(s.db, `${s.db}.bad`)
  for (let i = 0; i < 6; i++) fail(s, '192.0.2.31')
  await w.waitFor(/^blocked 192\.0\.2\.31 on master /, 15_000)
  assert.equal(await w.stop(), 0)
})

test('a failing firewall tool: told, the blocks saved, retried until the tool works, then the block is in the kernel', async (t) => {
  if (!requireRoot(t)) return
  const ns = await netns(t)
  const s = setup(t)
  configure(s, {firewall: {backend: 'iptables'}})
  const bin = join(s.dir, 'fakebin')
  mkdirSync(bin)
  const broken = join(s.dir, 'broken')
  for (const tool of ['iptables-restore', 'ip6tables-restore']) {
    writeFileSync(
      join(bin, tool),
      `#!/bin/sh\nif [ -e ${broken} ]; then echo "${tool} (fake): injected failure" >&2; exit 1; fi\nexec /usr/sbin/${tool} "$@"\n`,
      {mode: 0o755},
    )
  }
  writeFileSync(broken, '')
  const w = started(t, new Watcher(s.config, {netns: ns.name, env: {PATH: `${bin}:${process.env.PATH ?? ''}`}}))
  await w.waitFor(/^rcguard watch: following/)
  for (let i = 0; i < 6; i++) fail(s, '203.0.113.40')
  await w.waitFor(/^blocked 203\.0\.113\.40 on master /)
  await w.waitFor(/injected failure/, 10_000, 'err')
  assert.equal((await rows(s)).find((r) => r.ip === '203.0.113.40')?.state, 'blocked', 'the block was not saved')
  assert.ok(w.alive)
  rmSync(broken)
  const end = Date.now() + 15_000
  let save = ''
  while (Date.now() < end) {
    save = (await ns.run('iptables-save', [])).stdout
    if (save.includes('203.0.113.40')) break
    await sleep(500)
  }
  assert.match(save, /^-A rcguard-master -s 203\.0\.113\.40\/32 -j DROP$/m)
  assert.equal(await w.stop(), 0)
})

test('beside cron runs of hacks and admin commands: no failure lost or counted twice, cron runs exit 0 or 75', async (t) => {
  const s = setup(t)
  configure(s)
  const w = started(t, new Watcher(s.config))
  await w.waitFor(/^rcguard watch: following/)
  const written = new Map<string, number>()
  let stop = false
  const codes: number[] = []
  const cron = (async () => {
    while (!stop) {
      const r = await cli(['hacks', '--config', s.config])
      codes.push(r.exitCode)
      if (r.exitCode !== 0 && r.exitCode !== 75) assert.fail(`hacks exited ${r.exitCode}: ${r.stderr}`)
      if (r.exitCode === 75) assert.equal(r.stderr, '')
    }
  })()
  const admin = (async () => {
    for (let i = 0; i < 3; i++) {
      const r = await cli(['block', `192.0.2.${200 + i}`, '--config', s.config])
      assert.equal(r.exitCode, 0, r.stderr)
      await sleep(700)
    }
  })()
  // 40 addresses, 1 to 5 failures each (none reaches the limit), in interleaved rounds.
  for (let round = 0; round < 5; round++) {
    const lines: string[] = []
    for (let a = 0; a < 40; a++) {
      if (a % 5 < round) continue
      const ip = `198.18.0.${a + 1}`
      written.set(ip, (written.get(ip) ?? 0) + 1)
      lines.push(f2(new Date(), ip))
    }
    appendLines(s.log, lines)
    await sleep(600)
  }
  await admin
  await sleep(2_000)
  stop = true
  await cron
  assert.equal(await w.stop(), 0, w.err.join('\n'))
  const final = await cli(['hacks', '--config', s.config])
  assert.equal(final.exitCode, 0, final.stderr)
  const byIp = new Map((await rows(s)).map((r) => [r.ip, r]))
  for (const [ip, n] of written) assert.equal(byIp.get(ip)?.attempts, n, `${ip}: ${n} failures written`)
  for (let i = 0; i < 3; i++) assert.equal(byIp.get(`192.0.2.${200 + i}`)?.state, 'blocked')
  assert.ok(codes.length > 0)
})

test('the windows beside the first rule keep their state across watch cycles: a scanner\'s fifth name, each read by a cycle of its own, blocks it by the user window', async (t) => {
  const s = setup(t)
  configure(s)
  const w = started(t, new Watcher(s.config))
  await w.waitFor(/^rcguard watch: following 1 log/)
  const now = Date.now()
  const names = ['admin', 'root', 'info', 'test', 'webmaster']
  for (const [i, user] of names.entries()) {
    // 9 minutes apart on the log's clock, the last a minute ago: only the user window (5 names within 60 min) can block.
    appendLines(s.log, [f2(new Date(now - (4 - i) * 9 * 60_000 - 60_000), '203.0.113.9', user)])
    await sleep(1_500)
    if (i < 4) assert.equal(w.count(/^blocked 203\.0\.113\.9 /), 0, w.out.join('\n'))
  }
  const line = await w.waitFor(/^blocked 203\.0\.113\.9 on master /)
  assert.match(line, / by 5 user names within 60 min /)
  assert.equal(await w.stop(), 0, w.err.join('\n'))
  const cycles = Number(/stopped after (\d+) cycle/.exec(w.out.at(-1) ?? '')?.[1] ?? 0)
  assert.ok(cycles >= 1 + names.length, `each line read by a cycle of its own (${cycles} cycles)`)
})
