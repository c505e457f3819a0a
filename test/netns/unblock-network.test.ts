/**
 * `unblock ADDR` against the real kernel when a wider network block holds
 * ADDR (issue 11): a /48 blocked while firewall.ipv6Prefix was 48 still
 * holds an address after the prefix went to 64. unblock of that address
 * must not say "unblocked": it exits 7 naming the /48, and the kernel still
 * lists the /48 and still drops a real packet from the address, exactly as
 * rcguard says; `unblock` of the /48 then lifts it. For every backend, in
 * network namespaces this test creates (the host's own rules are never
 * touched); skips without root, and fails under CI=true.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {execa} from 'execa'
import {connect as reach, listen, sh} from '../helpers/packets.js'
import {cli, netns, nowEnv, oneLine, requireRoot, setup, type Setup} from '../helpers/env.js'

const SERVER = '2001:db8:5::1'
/** The attacker's /48, not the server's: a network holding one of the host's own addresses is never blocked. */
const WIDE = '2001:db8:7::/48'
const CLIENT = '2001:db8:7:1::5'
const GUARDED = 8443

/** What the backend holds for the instance's IPv6 blocks, as text. */
async function rules(server: Awaited<ReturnType<typeof netns>>, backend: string): Promise<string> {
  if (backend === 'nftables') return (await server.run('nft', ['list', 'set', 'inet', 'rcguard', 'master_v6'])).stdout
  const save = (await server.run('ip6tables-save', ['-t', 'filter'])).stdout
  if (backend === 'iptables') return save
  return `${save}\n${(await server.run('ipset', ['list', 'rcguard-master-6'])).stdout}`
}

const HOLDS_WIDE = /2001:db8:7::\/48/

for (const backend of ['nftables', 'ipset', 'iptables'] as const) {
  test(`${backend}: unblock of an address a /48 still blocks exits 7 naming it, and the kernel still drops it; unblock of the /48 lifts it`, async (t) => {
    if (!requireRoot(t)) return
    const server = await netns(t)
    const client = await netns(t)
    const veth = `rcu${server.name.slice(-6)}`
    await execa('ip', ['link', 'add', `${veth}s`, 'netns', server.name, 'type', 'veth', 'peer', 'name', `${veth}c`, 'netns', client.name])
    await sh(server.name, ['ip', '-6', 'addr', 'add', `${SERVER}/64`, 'dev', `${veth}s`, 'nodad'])
    await sh(server.name, ['ip', 'link', 'set', `${veth}s`, 'up'])
    await sh(server.name, ['ip', 'link', 'set', 'lo', 'up'])
    await sh(server.name, ['ip', '-6', 'route', 'add', WIDE, 'dev', `${veth}s`])
    await sh(client.name, ['ip', '-6', 'addr', 'add', `${CLIENT}/64`, 'dev', `${veth}c`, 'nodad'])
    await sh(client.name, ['ip', 'link', 'set', `${veth}c`, 'up'])
    await sh(client.name, ['ip', '-6', 'route', 'add', '2001:db8:5::/64', 'dev', `${veth}c`])
    listen(t, server.name, [GUARDED])
    const packet = (): Promise<string> => reach(client.name, SERVER, GUARDED, CLIENT)
    for (let i = 0; i < 50 && (await packet()) !== 'open'; i++) await new Promise((r) => setTimeout(r, 100))
    assert.equal(await packet(), 'open', 'before any block')

    const s = setup(t)
    const configure = (c: Setup, ipv6Prefix: number): void =>
      writeFileSync(c.config, JSON.stringify({database: c.db, instances: [{name: 'master', logs: [c.log], ports: [GUARDED]}], firewall: {backend, ipv6Prefix}}))
    configure(s, 48)
    const b = await cli(['block', CLIENT, '--minutes', '0', '--config', s.config], {netns: server.name, env: nowEnv(0)})
    assert.equal(b.exitCode, 0, b.stderr)
    assert.match(b.stdout, /^2001:db8:7::\/48 \(network of 2001:db8:7:1::5\): blocked on master until deleted$/m)
    assert.match(await rules(server, backend), HOLDS_WIDE, 'the kernel holds the /48')
    assert.equal(await packet(), 'timeout', 'dropped while the /48 is blocked')

    configure(s, 64)
    const u = await cli(['unblock', CLIENT, '--config', s.config], {netns: server.name, env: nowEnv(1)})
    assert.equal(u.exitCode, 7, `${u.stdout}${u.stderr}`)
    assert.equal(u.stdout, '', 'nothing of its own was unblocked, and nothing says so')
    oneLine(u, 'unblock inside the /48', /^rcguard: 2001:db8:7:1::5 is still blocked by the network 2001:db8:7::\/48 on master until deleted: "rcguard unblock 2001:db8:7::\/48" lifts it$/)
    assert.match(await rules(server, backend), HOLDS_WIDE, 'the kernel still holds the /48, as rcguard says')
    assert.equal(await packet(), 'timeout', 'and still drops the address')

    const lift = await cli(['unblock', WIDE, '--config', s.config], {netns: server.name, env: nowEnv(2)})
    assert.equal(lift.exitCode, 0, lift.stderr)
    assert.match(lift.stdout, /^2001:db8:7::\/48: unblocked and forgotten/m)
    assert.doesNotMatch(await rules(server, backend), HOLDS_WIDE, 'the /48 is gone from the kernel')
    assert.equal(await packet(), 'open', 'after unblock of the /48')
  })
}
