/**
 * Real packets: a server namespace (where rcguard runs and a TCP listener
 * answers on two ports) and a client namespace joined by a veth pair. After
 * a block, a connection from the blocked address to a configured port fails,
 * to another port succeeds, and from another address succeeds; after unblock
 * it succeeds again. IPv4 and IPv6, for every backend. Documentation
 * addresses only, inside namespaces this test creates.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {execa} from 'execa'
import {connect as reach, linkPair, listen, sh} from '../helpers/packets.js'
import {appendLines, burst, cli, netns, requireRoot, setup, T0, at, nowEnv} from '../helpers/env.js'

const SERVER_4 = '192.0.2.1'
const ATTACKER_4 = '192.0.2.66'
const OTHER_4 = '192.0.2.77'
const SERVER_6 = '2001:db8:5::1'
const ATTACKER_6 = '2001:db8:5::66'
const OTHER_6 = '2001:db8:5::77'
const GUARDED = 8443
const UNGUARDED = 8080


for (const backend of ['iptables', 'ipset', 'nftables'] as const) {
  test(`${backend}: a blocked client cannot reach the guarded port, everyone else and other ports can`, async (t) => {
    if (!requireRoot(t)) return
    const server = await netns(t)
    const client = await netns(t)
    const veth = `rcg${server.name.slice(-6)}`
    await linkPair(veth, {ns: server.name, v4: SERVER_4, v6: SERVER_6}, {ns: client.name, v4: [ATTACKER_4, OTHER_4], v6: [ATTACKER_6, OTHER_6]})

    listen(t, server.name, [GUARDED, UNGUARDED])
    const connect = (host: string, port: number, local: string): Promise<string> => reach(client.name, host, port, local)
    // Wait for the listener.
    for (let i = 0; i < 50 && (await connect(SERVER_4, UNGUARDED, OTHER_4)) !== 'open'; i++) await new Promise((r) => setTimeout(r, 100))

    const s = setup(t)
    writeFileSync(s.config, JSON.stringify({database: s.db, instances: [{name: 'master', logs: [s.log], ports: [GUARDED, 443]}], firewall: {backend}}))
    const matrix = async () => ({
      attacker4: await connect(SERVER_4, GUARDED, ATTACKER_4),
      attacker4other: await connect(SERVER_4, UNGUARDED, ATTACKER_4),
      other4: await connect(SERVER_4, GUARDED, OTHER_4),
      attacker6: await connect(SERVER_6, GUARDED, ATTACKER_6),
      attacker6other: await connect(SERVER_6, UNGUARDED, ATTACKER_6),
      other6: await connect(SERVER_6, GUARDED, OTHER_6),
    })
    const allOpen = {attacker4: 'open', attacker4other: 'open', other4: 'open', attacker6: 'open', attacker6other: 'open', other6: 'open'}
    assert.deepEqual(await matrix(), allOpen, 'before any block')

    appendLines(s.log, [...burst(at(0), ATTACKER_4, 6), ...burst(at(0), ATTACKER_6, 6)])
    const h = await cli(['hacks', '--config', s.config], {netns: server.name, env: nowEnv(3)})
    assert.equal(h.exitCode, 0, h.stderr)
    assert.deepEqual(await matrix(), {...allOpen, attacker4: 'timeout', attacker6: 'timeout'}, 'after the block')

    const u = await cli(['unblock', ATTACKER_4, ATTACKER_6, '--config', s.config], {netns: server.name, env: nowEnv(4)})
    assert.equal(u.exitCode, 0, u.stderr)
    assert.deepEqual(await matrix(), allOpen, 'after unblock')
  })
}
