/**
 * Adversary review of networkBlock and accountAlert through bin/run.js: what
 * one attacker host can make rcguard do to others. Backend none. Each test
 * states the behaviour that should hold; they fail while it does not.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {appendLines, at, cli, cliJson, f2, nowEnv, oneLogConfig, setup, type Setup} from '../helpers/env.js'

interface Row {
  ip: string
  state: string
  rule?: string
}

async function hacks(s: Setup, min: number): Promise<string> {
  const r = await cli(['hacks', '--config', s.config], {env: nowEnv(min)})
  assert.equal(r.exitCode, 0, `hacks at ${min}: ${r.stderr}`)
  return r.stdout
}

const blockedRows = async (s: Setup, min: number): Promise<Row[]> => (await cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(min)})).filter((r) => r.state === 'blocked')

test('adversary: one host rotating through the addresses of its own /64 must not get its whole /48 blocked (default firewall.ipv6Prefix 128)', async (t) => {
  const s = setup(t)
  oneLogConfig(s, {networkBlock: {minAddresses: 10, periodMinutes: 60}})
  await hacks(s, -1)
  // The attacker: one machine, ten privacy addresses of 2001:db8:5:1::/64, one failure each.
  const lines = Array.from({length: 10}, (_, i) => f2(at(0, i * 10), `2001:db8:5:1::${(i + 1).toString(16)}`, `guess${i}`))
  // A neighbour of the same /48 (another customer's /64) who mistyped once.
  lines.push(f2(at(3), '2001:db8:5:77::1', 'neighbour@example.org'))
  appendLines(s.log, lines)
  await hacks(s, 4)
  const blocked = await blockedRows(s, 4)
  assert.ok(!blocked.some((r) => r.ip === '2001:db8:5::/48'), `one /64 blocked its /48 (and every neighbour in it): ${JSON.stringify(blocked)}`)
})

test('adversary: with firewall.ipv6Prefix 64, the addresses of one /64 are one address for accountAlert (no report, no block of the owner)', async (t) => {
  const s = setup(t)
  oneLogConfig(s, {accountAlert: {minAddresses: 5, periodMinutes: 30, block: true}}, {ipv6Prefix: 64})
  await hacks(s, -1)
  const lines: string[] = []
  // The owner mistypes twice from home, as anyone does.
  lines.push(f2(at(0), '198.51.100.7', 'victim@example.org'))
  // One attacker host: five addresses of its one /64 (one entry, one block, one "address" for networkBlock).
  for (let i = 0; i < 5; i++) lines.push(f2(at(1, i * 10), `2001:db8:9:1::${i + 1}`, 'victim@example.org'))
  lines.push(f2(at(3), '198.51.100.7', 'victim@example.org'))
  appendLines(s.log, lines)
  const out = await hacks(s, 4)
  assert.doesNotMatch(out, /under attack/, 'one /64 is one attacker, not five addresses')
  const blocked = await blockedRows(s, 4)
  assert.ok(!blocked.some((r) => r.ip === '198.51.100.7'), `the owner was blocked because one /64 counted five times: ${JSON.stringify(blocked)}`)
})
