/**
 * firewall.ipv6Prefix against the real kernel: an attacker that uses a new
 * address of its /64 for every attempt. Six failures from six addresses of
 * one /64 make `rcguard hacks` block the /64 itself (the nftables set, the
 * ipset set or the ip6tables chain holds it), so a real packet from a
 * seventh address of that /64, sent over a veth pair, is dropped; another
 * /64 and another port still get through, and `rcguard unblock` of that
 * seventh address lifts the block. For every backend, in network namespaces
 * this test creates (the host's own rules are never touched); skips without
 * root, and fails under CI=true.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {execa} from 'execa'
import {connect as reach, listen, sh} from '../helpers/packets.js'
import {appendLines, at, cli, f2, netns, nowEnv, requireRoot, setup} from '../helpers/env.js'

const SERVER = '2001:db8:5::1'
/** The attacker's /64, not the server's: a network holding one of the host's own addresses is never blocked. */
const NET = '2001:db8:6:1::/64'
const ATTEMPTS = [1, 2, 3, 4, 5, 6].map((h) => `2001:db8:6:1::${h}`)
const SEVENTH = '2001:db8:6:1:ffff::7'
const OTHER_NET = '2001:db8:6:2::7'
const GUARDED = 8443
const UNGUARDED = 8080


/** What the backend holds for the instance's IPv6 blocks, as text. */
async function rules(server: Awaited<ReturnType<typeof netns>>, backend: string): Promise<string> {
  if (backend === 'nftables') return (await server.run('nft', ['list', 'set', 'inet', 'rcguard', 'master_v6'])).stdout
  const save = (await server.run('ip6tables-save', ['-t', 'filter'])).stdout
  if (backend === 'iptables') return save
  return `${save}\n${(await server.run('ipset', ['list', 'rcguard-master-6'])).stdout}`
}

for (const backend of ['nftables', 'ipset', 'iptables'] as const) {
  test(`${backend}: six addresses of one /64 block the /64; a packet from a seventh is dropped until unblock`, async (t) => {
    if (!requireRoot(t)) return
    const server = await netns(t)
    const client = await netns(t)
    const veth = `rcv${server.name.slice(-6)}`
    await execa('ip', ['link', 'add', `${veth}s`, 'netns', server.name, 'type', 'veth', 'peer', 'name', `${veth}c`, 'netns', client.name])
    await sh(server.name, ['ip', '-6', 'addr', 'add', `${SERVER}/64`, 'dev', `${veth}s`, 'nodad'])
    await sh(server.name, ['ip', 'link', 'set', `${veth}s`, 'up'])
    await sh(server.name, ['ip', 'link', 'set', 'lo', 'up'])
    await sh(server.name, ['ip', '-6', 'route', 'add', '2001:db8:6::/48', 'dev', `${veth}s`])
    for (const a of [SEVENTH, OTHER_NET]) await sh(client.name, ['ip', '-6', 'addr', 'add', `${a}/64`, 'dev', `${veth}c`, 'nodad'])
    await sh(client.name, ['ip', 'link', 'set', `${veth}c`, 'up'])
    await sh(client.name, ['ip', '-6', 'route', 'add', '2001:db8:5::/64', 'dev', `${veth}c`])

    listen(t, server.name, [GUARDED, UNGUARDED])
    const connect = (port: number, local: string): Promise<string> => reach(client.name, SERVER, port, local)
    for (let i = 0; i < 50 && (await connect(UNGUARDED, OTHER_NET)) !== 'open'; i++) await new Promise((r) => setTimeout(r, 100))
    const matrix = async () => ({
      seventh: await connect(GUARDED, SEVENTH),
      seventhOtherPort: await connect(UNGUARDED, SEVENTH),
      otherNet: await connect(GUARDED, OTHER_NET),
    })
    const allOpen = {seventh: 'open', seventhOtherPort: 'open', otherNet: 'open'}
    assert.deepEqual(await matrix(), allOpen, 'before any block')

    const s = setup(t)
    writeFileSync(
      s.config,
      JSON.stringify({database: s.db, instances: [{name: 'master', logs: [s.log], ports: [GUARDED, 443]}], firewall: {backend, ipv6Prefix: 64}}),
    )
    appendLines(s.log, ATTEMPTS.map((ip, i) => f2(at(0, i * 20), ip)))
    const h = await cli(['hacks', '--config', s.config], {netns: server.name, env: nowEnv(3)})
    assert.equal(h.exitCode, 0, h.stderr)
    assert.match(h.stdout, /^blocked 2001:db8:6:1::\/64 on master/m)

    const live = await rules(server, backend)
    if (backend === 'nftables') assert.match(live, /flags interval\n\t+elements = \{ 2001:db8:6:1::\/64 \}/)
    if (backend === 'ipset') {
      assert.match(live, /^2001:db8:6:1::\/64$/m)
      assert.match(live, /-A INPUT -p tcp -m multiport --dports 8443,443 -m set --match-set rcguard-master-6 src -m comment --comment "managed by rcguard" -j DROP/)
    }
    if (backend === 'iptables') assert.match(live, /^-A rcguard-master -s 2001:db8:6:1::\/64 -j DROP$/m)
    for (const ip of ATTEMPTS) assert.doesNotMatch(live, new RegExp(`${ip.replace(/[.:]/g, '\\$&')}(/128)?\\b`), `no rule for the single address ${ip}`)
    assert.deepEqual(await matrix(), {...allOpen, seventh: 'timeout'}, `after the block of ${NET}`)

    const u = await cli(['unblock', SEVENTH, '--config', s.config], {netns: server.name, env: nowEnv(4)})
    assert.equal(u.exitCode, 0, u.stderr)
    assert.match(u.stdout, new RegExp(`^${SEVENTH.replace(/[.:]/g, '\\$&')}: network 2001:db8:6:1::/64 unblocked and forgotten`, 'm'))
    assert.deepEqual(await matrix(), allOpen, 'after unblock of the seventh address')
  })
}
