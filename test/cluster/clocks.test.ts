/**
 * Nodes whose clocks differ change no decision: node b runs under faketime
 * with its clock a minute off (its log lines, as Roundcube writes them, carry
 * its own clock), and each run moves its times onto Redis's clock by the
 * difference it measures. Two attackers whose failures are split between a
 * and b: one whose true span is 9 min 58 s, inside the 10 minutes of the window
 * (blocked, though b's stamps, a minute fast, would make it 10 min 58 s), one whose true span is
 * 10 min 30 s (not blocked, though b's stamps, a minute slow, would make it
 * 9 min 30 s). On the real clock: no RCGUARD_NOW. Needs root, redis-server
 * and faketime (Debian's faketime package); skips without them, and fails
 * under CI=true.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {execaSync} from 'execa'
import {appendLines, f2, requireRoot} from '../helpers/env.js'
import {requireRedis, startRedis} from '../helpers/redis.js'
import {nodes, type Node} from '../helpers/cluster-nodes.js'

function hasFaketime(): boolean {
  return execaSync('sh', ['-c', 'command -v faketime'], {reject: false}).exitCode === 0
}

async function blocked(n: Node, skew: number): Promise<string[]> {
  const r = await n.runSkewed(['list', '--json'], skew)
  assert.equal(r.exitCode, 0, r.stderr)
  return (JSON.parse(r.stdout) as {ip: string; state: string}[]).filter((e) => e.state === 'blocked').map((e) => e.ip)
}

for (const skew of [60, -60]) {
  test(`a node whose clock is ${skew > 0 ? 'a minute fast' : 'a minute slow'}: the windows count true times (one attacker blocked at 9 min 58 s, one not at 10 min 30 s)`, async (t) => {
    if (!requireRoot(t) || !requireRedis(t)) return
    if (!hasFaketime()) {
      const reason = 'faketime is not installed (apt-get install faketime)'
      if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`)
      t.skip(reason)
      return
    }
    const redis = await startRedis(t)
    const [a, b] = nodes(t, redis)
    assert.ok(a && b)
    // True times, 12 minutes ago onwards; b's lines are stamped with its own clock (true + skew).
    const t0 = Math.floor(Date.now() / 1000) * 1000 - 12 * 60_000
    const on = (node: Node, ip: string, seconds: number[], stamp: number) => appendLines(node.log, seconds.map((s) => f2(new Date(t0 + s * 1000 + stamp), ip, 'x')))
    // The first attacker: 3 on a at 0, 10, 20 s; 3 on b at 9:38, 9:48, 9:58 (2 s inside the window: the clock
    // difference each run measures moves by milliseconds). The second: b's at 10:10, 10:20, 10:30.
    const fast = skew > 0
    const exact = '203.0.113.80'
    const over = '203.0.113.81'
    on(a, exact, [0, 10, 20], 0)
    on(a, over, [0, 10, 20], 0)
    on(b, exact, [578, 588, 598], skew * 1000)
    on(b, over, [610, 620, 630], skew * 1000)
    for (const [n, s] of [[a, 0], [b, skew], [a, 0]] as const) {
      const r = await n.runSkewed(['hacks'], s)
      assert.equal(r.exitCode, 0, r.stderr)
      assert.doesNotMatch(r.stderr, /cluster:/, r.stderr)
    }
    for (const [n, s] of [[a, 0], [b, skew]] as const) {
      const held = await blocked(n, s)
      assert.ok(held.includes(exact), `${n.name}: ${exact} failed 6 times within 9 min 58 s of true time (${fast ? 'b\'s stamps say 10 min 58 s' : 'b\'s stamps say 8 min 58 s'})`)
      assert.ok(!held.includes(over), `${n.name}: ${over} failed over 10 min 30 s of true time`)
    }
  })
}
