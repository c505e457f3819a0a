/**
 * Issue 5 through bin/run.js: escalation of repeat offenders on a controlled
 * clock, never-block rules, manual blocks, list filters and --quiet.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {networkInterfaces} from 'node:os'
import {appendLines, burst, cli, cliJson, setup, T0, at, nowEnv} from '../helpers/env.js'

interface Row {
  ip: string
  state: string
  instance: string | null
  blockedAt: string | null
  blockedUntil: string | null
  blocks: number
  comment: string | null
}

function configure(s: ReturnType<typeof setup>, extra: Record<string, unknown> = {}): void {
  writeFileSync(
    s.config,
    JSON.stringify({
      database: s.db,
      blockMinutes: 60,
      instances: [
        {name: 'master', logs: [s.log], ports: [443]},
        {name: 'other', logs: [s.errorsLog], ports: [8443]},
      ],
      firewall: {backend: 'none'},
      ...extra,
    }),
  )
}

test('repeat offenders: 60, 120, 240 min, then the cap; unblock forgets the history', async (t) => {
  const s = setup(t)
  configure(s, {escalation: {factor: 2, maxMinutes: 300}})
  const lengths: number[] = []
  let min = 0
  for (let round = 0; round < 4; round++) {
    appendLines(s.log, burst(at(min), '203.0.113.7', 6, 10))
    await cli(['hacks', '--config', s.config], {env: nowEnv(min + 1)})
    const row = (await cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(min + 1)}))[0]
    assert.equal(row?.state, 'blocked')
    const length = (Date.parse(row?.blockedUntil ?? '') - Date.parse(row?.blockedAt ?? '')) / 60_000
    lengths.push(length)
    assert.equal(row?.blocks, round + 1)
    min += length + 5
    const r = await cli(['hacks', '--config', s.config], {env: nowEnv(min)})
    assert.match(r.stdout, /unblocked 203\.0\.113\.7 on master: its block is over/)
  }
  assert.deepEqual(lengths, [60, 120, 240, 300])
  await cli(['unblock', '203.0.113.7', '--config', s.config], {env: nowEnv(min)})
  appendLines(s.log, burst(at(min), '203.0.113.7', 6, 10))
  await cli(['hacks', '--config', s.config], {env: nowEnv(min + 1)})
  const row = (await cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(min + 1)}))[0]
  assert.equal(Date.parse(row?.blockedUntil ?? '') - Date.parse(row?.blockedAt ?? ''), 60 * 60_000, 'delete means forget')
})

test('factor 1 never escalates; the history is forgotten after forgetDays', async (t) => {
  const s = setup(t)
  configure(s, {escalation: {factor: 1}})
  appendLines(s.log, burst(at(0), '203.0.113.8', 6))
  await cli(['hacks', '--config', s.config], {env: nowEnv(2)})
  await cli(['hacks', '--config', s.config], {env: nowEnv(70)})
  appendLines(s.log, burst(at(71), '203.0.113.8', 6))
  await cli(['hacks', '--config', s.config], {env: nowEnv(73)})
  let row = (await cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(73)}))[0]
  assert.equal(Date.parse(row?.blockedUntil ?? '') - Date.parse(row?.blockedAt ?? ''), 60 * 60_000)

  const s2 = setup(t)
  configure(s2, {escalation: {forgetDays: 2}})
  appendLines(s2.log, burst(at(0), '203.0.113.9', 6))
  await cli(['hacks', '--config', s2.config], {env: nowEnv(2)})
  await cli(['hacks', '--config', s2.config], {env: nowEnv(70)})
  assert.equal((await cliJson<Row[]>(['list', '--config', s2.config], {env: nowEnv(70)}))[0]?.blocks, 1)
  await cli(['hacks', '--config', s2.config], {env: nowEnv(70 + 3 * 24 * 60)})
  assert.deepEqual(await cliJson<Row[]>(['list', '--config', s2.config], {env: nowEnv(70 + 3 * 24 * 60)}), [])
  appendLines(s2.log, burst(at(70 + 3 * 24 * 60), '203.0.113.9', 6))
  await cli(['hacks', '--config', s2.config], {env: nowEnv(75 + 3 * 24 * 60)})
  row = (await cliJson<Row[]>(['list', '--config', s2.config], {env: nowEnv(75 + 3 * 24 * 60)}))[0]
  assert.equal(Date.parse(row?.blockedUntil ?? '') - Date.parse(row?.blockedAt ?? ''), 60 * 60_000)
})

test('never blocked: loopback, this host, trusted proxies, whitelisted networks, whatever the log says; block refuses them too', async (t) => {
  const s = setup(t)
  const own = Object.values(networkInterfaces())
    .flat()
    .map((a) => a?.address ?? '')
    .find((a) => a !== '' && !a.startsWith('127.') && a !== '::1' && !a.startsWith('fe80'))
  configure(s, {whitelist: ['198.51.100.0/24'], trustedProxies: ['192.0.2.10']})
  const addresses = ['127.0.0.9', '::1', '198.51.100.77', '192.0.2.10', ...(own === undefined ? [] : [own])]
  appendLines(s.log, addresses.flatMap((ip) => burst(at(0), ip, 10)))
  const r = await cli(['hacks', '--verbose', '--config', s.config], {env: nowEnv(5)})
  assert.equal(r.exitCode, 0, r.stderr)
  assert.doesNotMatch(r.stdout, /^blocked/m)
  if (own !== undefined) assert.match(r.stdout, new RegExp(`${own.replace(/[.:]/g, '\\$&')} is never blocked: this host's own address`))
  assert.match(r.stdout, /from trusted proxy 192\.0\.2\.10, but no X-Forwarded-For or X-Real-IP header/)
  for (const ip of addresses) {
    const b = await cli(['block', ip, '--config', s.config], {env: nowEnv(6)})
    assert.equal(b.exitCode, 2, `block ${ip}`)
    assert.match(b.stderr, /is never blocked/)
  }
  assert.deepEqual(await cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(6)}), [])
})

test('block by hand: every instance or one, for --minutes or until deleted, with a comment; list filters', async (t) => {
  const s = setup(t)
  configure(s)
  const b = await cli(['block', '203.0.113.20', '--minutes', '15', '--comment', 'ticket 42', '--config', s.config], {env: nowEnv(0)})
  assert.equal(b.exitCode, 0, b.stderr)
  assert.match(b.stdout, /203\.0\.113\.20: blocked on master for 15 min\n203\.0\.113\.20: blocked on other for 15 min/)
  await cli(['block', '2001:db8::20', '--minutes', '0', '--instance', 'other', '--config', s.config], {env: nowEnv(0)})
  appendLines(s.log, burst(at(0), '192.0.2.30', 2))
  await cli(['hacks', '--config', s.config], {env: nowEnv(1)})
  const all = await cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(1)})
  assert.deepEqual(
    all.map((r) => [r.ip, r.instance, r.state, r.comment]).sort(),
    [
      ['192.0.2.30', 'master', 'watching', null],
      ['2001:db8::20', 'other', 'blocked', null],
      ['203.0.113.20', 'master', 'blocked', 'ticket 42'],
      ['203.0.113.20', 'other', 'blocked', 'ticket 42'],
    ].sort(),
  )
  assert.equal(all.find((r) => r.ip === '2001:db8::20')?.blockedUntil, null)
  const blockedOther = await cliJson<Row[]>(['list', '--state', 'blocked', '--instance', 'other', '--config', s.config], {env: nowEnv(1)})
  assert.deepEqual(blockedOther.map((r) => r.ip).sort(), ['2001:db8::20', '203.0.113.20'])
  const inNet = await cliJson<Row[]>(['list', '--ip', '203.0.113.0/24', '--config', s.config], {env: nowEnv(1)})
  assert.deepEqual(inNet.map((r) => r.instance).sort(), ['master', 'other'])
  const table = await cli(['list', '--config', s.config], {env: nowEnv(1)})
  assert.match(table.stdout, /in 14 min/)
  assert.match(table.stdout, /until deleted/)
  assert.match(table.stdout, /ticket 42/)
  assert.match(table.stdout, /3 blocked, 1 watching, 0 whitelisted/)
  const expired = await cli(['hacks', '--config', s.config], {env: nowEnv(16)})
  assert.match(expired.stdout, /unblocked 203\.0\.113\.20 on master/)
  const bad = await cli(['list', '--ip', 'nonsense', '--config', s.config])
  assert.equal(bad.exitCode, 2)
})

test('unblock --quiet: an unknown address is no error', async (t) => {
  const s = setup(t)
  configure(s)
  const loud = await cli(['unblock', '192.0.2.99', '--config', s.config])
  assert.equal(loud.exitCode, 6)
  const quiet = await cli(['unblock', '192.0.2.99', '--quiet', '--config', s.config])
  assert.equal(quiet.exitCode, 0, quiet.stderr)
  const wq = await cli(['whitelist', '--remove', '192.0.2.0/24', '-q', '--config', s.config])
  assert.equal(wq.exitCode, 0, wq.stderr)
})

test('list colours states on a colour terminal and prints plain text otherwise (cron mail, NO_COLOR)', async (t) => {
  const s = setup(t)
  configure(s)
  await cli(['block', '203.0.113.40', '--instance', 'master', '--config', s.config], {env: nowEnv(0)})
  await cli(['whitelist', '198.51.100.0/24', '--config', s.config], {env: nowEnv(0)})
  // eslint-disable-next-line no-control-regex
  const ansi = /\u001b\[/
  const plain = await cli(['list', '--config', s.config], {env: {...nowEnv(1), NO_COLOR: '1', FORCE_COLOR: '0'}})
  assert.doesNotMatch(plain.stdout, ansi)
  assert.match(plain.stdout, /203\.0\.113\.40 .*blocked/)
  const colour = await cli(['list', '--config', s.config], {env: {...nowEnv(1), NO_COLOR: '', FORCE_COLOR: '1'}})
  assert.match(colour.stdout, /\u001b\[31mblocked\u001b\[39m/)
  assert.match(colour.stdout, /\u001b\[32mwhitelisted\u001b\[39m/)
})
