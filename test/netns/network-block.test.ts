/**
 * networkBlock against the real kernel: a log with a swarm of 30 addresses of
 * 198.51.100.0/24 (each failing twice, too rarely to be blocked alone) and
 * `rcguard hacks` run in a server namespace. For every backend: the kernel's
 * own listing (the iptables chain, the ipset set, the nft set) holds the /24
 * and no address of it alone, a second run finds nothing to change, and real
 * packets from two different addresses of the network (one of the swarm, one
 * that never failed) are dropped while one from outside passes. When the /24
 * holds a whitelisted address, the listing holds no element of it, and
 * packets from the whitelisted address and the rest of the swarm pass. In
 * network namespaces this test creates (the host's own rules are never
 * touched); skips without root, and fails under CI=true.
 */
import {test, type TestContext} from 'node:test'
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {connect as reach, firewallListing, linkPair, listen, listingHolds, sh} from '../helpers/packets.js'
import {appendLines, at, cli, cliJson, f2, netns, nowEnv, requireRoot, setup} from '../helpers/env.js'

const SERVER_4 = '192.0.2.1'
const SERVER_6 = '2001:db8:5::1'
const NET = '198.51.100.0/24'
/** One address of the swarm and one of the /24 that never failed. */
const SWARMER = '198.51.100.7'
const QUIET = '198.51.100.250'
/** Outside the /24: passes. */
const FREE = '203.0.113.20'
/** Whitelisted in the second case: its /24 is never blocked. */
const WHITELISTED = '198.51.100.200'
const GUARDED = 8443



/** 30 addresses of the /24 (1 to 30), one failure each, 10 s apart, twice: 15 min between the passes. */
function swarm(): string[] {
  const ips = Array.from({length: 30}, (_, i) => `198.51.100.${i + 1}`)
  return [0, 15].flatMap((min) => ips.map((ip, i) => f2(at(min, i * 10), ip)))
}

/** Two namespaces joined by a veth pair, a listener on GUARDED in the server, rcguard's config for `backend`; every address open. */
async function world(t: TestContext, backend: string, whitelist: string[]) {
  const server = await netns(t)
  const client = await netns(t)
  const stem = `rcw${server.name.slice(-6)}`
  // The client's addresses are /32s in another /24 than the server's: routes both ways.
  await linkPair(stem, {ns: server.name, v4: SERVER_4, v6: SERVER_6}, {ns: client.name, v4: [], v6: []})
  for (const a of [SWARMER, QUIET, FREE, WHITELISTED]) await sh(client.name, ['ip', 'addr', 'add', `${a}/32`, 'dev', `${stem}c`])
  await sh(client.name, ['ip', 'route', 'add', '192.0.2.0/24', 'dev', `${stem}c`])
  for (const net of [NET, '203.0.113.0/24']) await sh(server.name, ['ip', 'route', 'add', net, 'dev', `${stem}s`])
  listen(t, server.name, [GUARDED])
  const from = (local: string): Promise<string> => reach(client.name, SERVER_4, GUARDED, local)
  for (let i = 0; i < 50 && (await from(FREE)) !== 'open'; i++) await new Promise((r) => setTimeout(r, 100))
  const s = setup(t)
  writeFileSync(
    s.config,
    JSON.stringify({
      database: s.db,
      whitelist: ['127.0.0.0/8', '::1', ...whitelist],
      instances: [{name: 'master', logs: [s.log], ports: [GUARDED]}],
      firewall: {backend},
      windows: [],
      networkBlock: {minAddresses: 10, periodMinutes: 60},
    }),
  )
  const run = (args: string[], min: number) => cli([...args, '--config', s.config], {netns: server.name, env: nowEnv(min)})
  return {server, s, run, from}
}

for (const backend of ['iptables', 'ipset', 'nftables'] as const) {
  test(`${backend}: hacks blocks a swarm's /24 as one network: the kernel holds it, two addresses of it are dropped, one outside passes`, async (t) => {
    if (!requireRoot(t)) return
    const {server, s, run, from} = await world(t, backend, [])
    const probe = [SWARMER, QUIET, FREE]
    const matrix = async (): Promise<Record<string, string>> => Object.fromEntries(await Promise.all(probe.map(async (a) => [a, await from(a)])))
    assert.deepEqual(await matrix(), {[SWARMER]: 'open', [QUIET]: 'open', [FREE]: 'open'}, 'before any block')

    // The log's first read, empty: every swarm line written after it counts.
    const first = await run(['hacks'], -1)
    assert.equal(first.exitCode, 0, first.stderr)
    appendLines(s.log, swarm())
    const h = await run(['hacks'], 25)
    assert.equal(h.exitCode, 0, h.stderr)
    assert.deepEqual(
      h.stdout.split('\n').filter((l) => l.startsWith('blocked ')),
      [`blocked ${NET} on master until 2026-11-25 14:01:30Z by 10 addresses of the network within 60 min (50 failed logins, last user "alice@example.com")`],
    )
    // Real packets: one address of the swarm and one of the /24 that never failed are dropped, one outside passes.
    assert.deepEqual(await matrix(), {[SWARMER]: 'timeout', [QUIET]: 'timeout', [FREE]: 'open'}, 'the /24 is dropped, the address outside passes')

    // rcguard's list and the kernel's own listing hold the network, and no address of it alone.
    const list = await run(['list'], 25)
    assert.match(list.stdout, /^198\.51\.100\.0\/24 +blocked .* 10 addrs in 60m /m)

    const kernel = await firewallListing(server, backend)
    assert.ok(listingHolds(kernel, NET), `the kernel holds ${NET}:\n${kernel}`)
    assert.ok(!/198\.51\.100\.(?!0\/24)/.test(kernel), `no address of the /24 alone:\n${kernel}`)
    const again = await cliJson<{firewall: {changed: boolean; drift: string[]}}>(['hacks', '--config', s.config], {netns: server.name, env: nowEnv(26)})
    assert.deepEqual([again.firewall.changed, again.firewall.drift], [false, []])
  })

  test(`${backend}: a swarm in a /24 that holds a whitelisted address blocks no network; the whitelisted address and the swarm pass`, async (t) => {
    if (!requireRoot(t)) return
    const {server, s, run, from} = await world(t, backend, [WHITELISTED])
    const first = await run(['hacks'], -1)
    assert.equal(first.exitCode, 0, first.stderr)
    appendLines(s.log, [...swarm(), f2(at(20), WHITELISTED), f2(at(20, 5), WHITELISTED)])
    const h = await run(['hacks'], 25)
    assert.equal(h.exitCode, 0, h.stderr)
    assert.deepEqual(h.stdout.split('\n').filter((l) => l.startsWith('blocked ')), [])
    assert.deepEqual(
      h.stderr.split('\n').filter((l) => l.includes('networkBlock')),
      [`rcguard: warning: networkBlock: ${NET} on master is not blocked: it holds what is never blocked: whitelisted in the configuration (198.51.100.200/32)`],
    )
    const kernel = await firewallListing(server, backend)
    assert.ok(!listingHolds(kernel, NET), `no ${NET} in the kernel:\n${kernel}`)
    assert.ok(!kernel.includes('198.51.100.'), `no element of the /24 at all:\n${kernel}`)
    assert.deepEqual(
      Object.fromEntries(await Promise.all([WHITELISTED, SWARMER, QUIET, FREE].map(async (a) => [a, await from(a)]))),
      {[WHITELISTED]: 'open', [SWARMER]: 'open', [QUIET]: 'open', [FREE]: 'open'},
    )
  })
}
