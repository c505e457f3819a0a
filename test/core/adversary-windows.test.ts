/**
 * Adversary review of the windows, the network entries' `inside` path and the
 * Decider's network index (decisions/windows.ts, decide.ts). Each test states
 * the behaviour that should hold; they fail while it does not.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {activeBlocks, Decider, newEntry, type DecisionSettings, type SourcedEvent} from '../../src/core/decisions/decide.js'
import {NetworkList} from '../../src/core/net/ip.js'
import {emptyData} from '../../src/core/store/schema.js'

const MIN = 60_000
const T0 = Date.UTC(2026, 11, 1, 8, 0, 0)

function ev(ip: string, user: string, time: number, n = 0): SourcedEvent {
  return {grammar: 'F4', outcome: 'failure', time, ip, user, session: null, errorCode: null, counted: true, reason: 'r', instance: 'master', file: 'f', lineNo: n} as SourcedEvent
}

test('adversary: an address inside a blocked network entry that the firewall no longer enforces (it now overlaps the whitelist) is still judged on its own', () => {
  // 198.51.100.0/24 was blocked by networkBlock; later the admin whitelisted a partner at 198.51.100.7.
  const data = emptyData()
  const net = newEntry('198.51.100.0/24', 'master', T0 - 5 * MIN)
  net.blockedAt = T0 - 5 * MIN
  net.blockedUntil = T0 + 600 * MIN
  net.blocks = 1
  net.rule = 'network:10/60'
  data.entries.push(net)
  const whitelist = new NetworkList(['198.51.100.7/32'])
  // The firewall drops the /24: it holds what is never blocked.
  assert.equal(activeBlocks(data, whitelist, T0).get('master')?.includes('198.51.100.0/24') ?? false, false)
  const decider = new Decider(data, {maxAttempts: 6, periodMinutes: 10, blockMinutes: 60, windows: []}, whitelist, T0, false)
  // An attacker at 198.51.100.9 then guesses 50 passwords in 5 minutes: nothing blocks it at the firewall…
  const actions = Array.from({length: 50}, (_, i) => decider.apply(ev('198.51.100.9', 'alice', T0 + i * 6000, i)))
  decider.flush()
  // …so its failures must count against it and the first rule must block it.
  assert.ok(actions.some((d) => d.action === 'blocked' && d.key === '198.51.100.9'), `actions: ${[...new Set(actions.map((d) => d.action))].join(',')}`)
  assert.ok(activeBlocks(data, whitelist, T0 + 10 * MIN).get('master')?.includes('198.51.100.9'), 'the attacker is blocked by the firewall')
})

test('adversary: filler guesses on one name between fresh names must not let a scanner slip past a long user window', () => {
  // Every failure time within the longest window is kept with its name's tag: the fillers push no name out.
  const settings: DecisionSettings = {maxAttempts: 6, periodMinutes: 10, blockMinutes: 60, windows: [{maxUsers: 2, periodMinutes: 1}, {maxUsers: 5, periodMinutes: 1440}]}
  const decider = new Decider(emptyData(), settings, new NetworkList([]), T0, false)
  const names: string[] = []
  // Fresh name, then 64 guesses on one account, 2.5 min apart (4 per 10 min: under the first rule), five times: 6 names in 650 min.
  for (let k = 0; k < 5; k++) {
    names.push(`scan${k}`)
    for (let i = 0; i < 64; i++) names.push('admin')
  }
  const decisions = names.map((u, i) => decider.apply(ev('203.0.113.50', u, T0 + i * 2.5 * MIN, i)))
  const blocked = decisions.find((d) => d.action === 'blocked')
  assert.equal(blocked?.rule, 'users:5/1440', `6 distinct names within ${(names.length * 2.5) / 60} h; decided: ${blocked?.rule ?? 'never blocked'}`)
})
