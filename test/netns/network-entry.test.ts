/**
 * Network entries against the real kernel: `rcguard block 198.51.100.0/24`
 * and `rcguard block 2001:db8:7::/48` (through the CLI) are one entry each,
 * beside an address entry inside the IPv4 network and one outside it. For
 * every backend: `rcguard list` shows the networks, the kernel holds them
 * (the iptables chain, the ipset set, the nft interval set) without a rule of
 * their own for the address inside, a second run finds nothing to change,
 * real packets from two different addresses of each network are dropped,
 * the blocked address outside is dropped and an address outside passes.
 * `rcguard block` of a network that holds a whitelisted address is refused
 * (exit 2) and the kernel's rules stay byte for byte; `rcguard unblock` of
 * the networks lets their packets through again. In network namespaces this
 * test creates (the host's own rules are never touched); skips without root,
 * and fails under CI=true.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {execa} from 'execa'
import {connect as reach, firewallListing, listen, listingHolds, sh} from '../helpers/packets.js'
import {cli, cliJson, netns, nowEnv, oneLine, requireRoot, setup} from '../helpers/env.js'

const SERVER_4 = '192.0.2.1'
const SERVER_6 = '2001:db8:5::1'
const NET_4 = '198.51.100.0/24'
const NET_6 = '2001:db8:7::/48'
/** Two addresses of each network, neither with an entry of its own. */
const IN_4 = ['198.51.100.7', '198.51.100.250']
const IN_6 = ['2001:db8:7:1::5', '2001:db8:7:ffff::9']
/** An address entry inside the IPv4 network, blocked too. */
const INSIDE_ENTRY = '198.51.100.9'
/** An address entry outside, blocked; and addresses outside with no entry, which pass. */
const OUTSIDE_ENTRY = '203.0.113.9'
const FREE_4 = '203.0.113.20'
const FREE_6 = '2001:db8:8::5'
/** Whitelisted in the configuration: a network that holds it is never blocked. */
const WHITELISTED = '198.51.101.200'
const GUARDED = 8443



for (const backend of ['iptables', 'ipset', 'nftables'] as const) {
  test(`${backend}: block of a /24 and a /48 blocks every address in them as one entry each; a network holding a whitelisted address is refused; unblock lifts them`, async (t) => {
    if (!requireRoot(t)) return
    const server = await netns(t)
    const client = await netns(t)
    const veth = `rcn${server.name.slice(-6)}`
    await execa('ip', ['link', 'add', `${veth}s`, 'netns', server.name, 'type', 'veth', 'peer', 'name', `${veth}c`, 'netns', client.name])
    await sh(server.name, ['ip', 'addr', 'add', `${SERVER_4}/24`, 'dev', `${veth}s`])
    await sh(server.name, ['ip', '-6', 'addr', 'add', `${SERVER_6}/64`, 'dev', `${veth}s`, 'nodad'])
    await sh(server.name, ['ip', 'link', 'set', `${veth}s`, 'up'])
    await sh(server.name, ['ip', 'link', 'set', 'lo', 'up'])
    for (const net of ['198.51.100.0/24', '203.0.113.0/24']) await sh(server.name, ['ip', 'route', 'add', net, 'dev', `${veth}s`])
    for (const net of ['2001:db8:7::/48', '2001:db8:8::/48']) await sh(server.name, ['ip', '-6', 'route', 'add', net, 'dev', `${veth}s`])
    for (const a of [...IN_4, INSIDE_ENTRY, OUTSIDE_ENTRY, FREE_4]) await sh(client.name, ['ip', 'addr', 'add', `${a}/32`, 'dev', `${veth}c`])
    for (const a of [...IN_6, FREE_6]) await sh(client.name, ['ip', '-6', 'addr', 'add', `${a}/128`, 'dev', `${veth}c`, 'nodad'])
    await sh(client.name, ['ip', 'link', 'set', `${veth}c`, 'up'])
    await sh(client.name, ['ip', 'route', 'add', '192.0.2.0/24', 'dev', `${veth}c`])
    await sh(client.name, ['ip', '-6', 'route', 'add', '2001:db8:5::/64', 'dev', `${veth}c`])

    listen(t, server.name, [GUARDED])
    const from = (local: string): Promise<string> => reach(client.name, local.includes(':') ? SERVER_6 : SERVER_4, GUARDED, local)
    for (let i = 0; i < 50 && (await from(FREE_4)) !== 'open'; i++) await new Promise((r) => setTimeout(r, 100))
    const everyone = [...IN_4, INSIDE_ENTRY, OUTSIDE_ENTRY, FREE_4, ...IN_6, FREE_6]
    const matrix = async (): Promise<Record<string, string>> => {
      const out: Record<string, string> = {}
      for (const a of everyone) out[a] = await from(a)
      return out
    }
    const open = Object.fromEntries(everyone.map((a) => [a, 'open']))
    assert.deepEqual(await matrix(), open, 'before any block')

    const s = setup(t)
    writeFileSync(s.config, JSON.stringify({database: s.db, whitelist: ['127.0.0.0/8', '::1', WHITELISTED], instances: [{name: 'master', logs: [s.log], ports: [GUARDED]}], firewall: {backend}}))
    const run = (args: string[], min: number) => cli([...args, '--config', s.config], {netns: server.name, env: nowEnv(min)})

    const b = await run(['block', '198.51.100.7/24', NET_6, '--minutes', '0'], 0)
    assert.equal(b.exitCode, 0, b.stderr)
    assert.match(b.stdout, /^198\.51\.100\.0\/24 \(normalized from 198\.51\.100\.7\/24\): blocked on master until deleted$/m)
    assert.match(b.stdout, /^2001:db8:7::\/48: blocked on master until deleted$/m)
    const a = await run(['block', INSIDE_ENTRY, OUTSIDE_ENTRY, '--minutes', '0'], 1)
    assert.equal(a.exitCode, 0, a.stderr)

    // rcguard's own listing shows the networks, beside the two address entries.
    const list = await run(['list'], 2)
    assert.equal(list.exitCode, 0, list.stderr)
    for (const ip of [NET_4, NET_6, INSIDE_ENTRY, OUTSIDE_ENTRY]) assert.match(list.stdout, new RegExp(`^${ip.replace(/[./]/g, '\\$&')} +blocked`, 'm'), `list shows ${ip}`)
    const inNet = await cliJson<{ip: string}[]>(['list', '--ip', IN_4[1] ?? '', '--config', s.config], {netns: server.name, env: nowEnv(2)})
    assert.deepEqual(inNet.map((r) => r.ip), [NET_4])

    // The kernel holds the networks and the address outside; the address inside needs no rule of its own.
    const blocked = await firewallListing(server, backend)
    for (const net of [NET_4, NET_6]) assert.ok(listingHolds(blocked, net), `the kernel holds ${net}:\n${blocked}`)
    assert.ok(listingHolds(blocked, OUTSIDE_ENTRY) || listingHolds(blocked, `${OUTSIDE_ENTRY}/32`), `the kernel holds ${OUTSIDE_ENTRY}:\n${blocked}`)
    assert.ok(!blocked.includes(INSIDE_ENTRY), `no rule of its own for ${INSIDE_ENTRY}:\n${blocked}`)
    // What the kernel holds reads back as what the database wants: a second run changes nothing.
    const again = await cliJson<{firewall: {changed: boolean; drift: string[]}}>(['hacks', '--config', s.config], {netns: server.name, env: nowEnv(3)})
    assert.deepEqual([again.firewall.changed, again.firewall.drift], [false, []])

    assert.deepEqual(
      await matrix(),
      {...open, ...Object.fromEntries([...IN_4, INSIDE_ENTRY, OUTSIDE_ENTRY, ...IN_6].map((x) => [x, 'timeout']))},
      'every address of the networks is dropped, and the blocked address outside; the others pass',
    )

    // A network that holds a whitelisted address is refused, and nothing changes in the kernel.
    const refused = await run(['block', '198.51.101.0/24'], 4)
    assert.equal(refused.exitCode, 2, refused.stderr)
    oneLine(refused, 'block of a network holding a whitelisted address', /^rcguard: refused: 198\.51\.101\.0\/24 overlaps what is never blocked \(whitelisted in the configuration \(198\.51\.101\.200\/32\)\)$/)
    assert.equal(await firewallListing(server, backend), blocked, 'the firewall is as it was')

    // unblock of the networks lifts them (and the address entry inside the /24); the address outside stays blocked.
    const u = await run(['unblock', NET_4, NET_6], 5)
    assert.equal(u.exitCode, 0, u.stderr)
    assert.match(u.stdout, /^198\.51\.100\.0\/24: network 198\.51\.100\.0\/24, 198\.51\.100\.9 unblocked and forgotten/m)
    assert.match(u.stdout, /^2001:db8:7::\/48: unblocked and forgotten/m)
    const after = await firewallListing(server, backend)
    for (const net of [NET_4, NET_6]) assert.ok(!listingHolds(after, net), `${net} is gone from the kernel:\n${after}`)
    assert.deepEqual(await matrix(), {...open, [OUTSIDE_ENTRY]: 'timeout'}, 'after unblock of the networks')
  })
}
