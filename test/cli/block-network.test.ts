/**
 * `rcguard block NETWORK`: a network in CIDR notation is blocked as one
 * entry, normalized to its canonical text (and the line says so), within the
 * widest networks an entry can be (/8 for IPv4, /16 for IPv6). A network that
 * overlaps anything never blocked (the configuration's or the database's
 * whitelist, a trusted proxy, this host's own addresses, loopback) is refused
 * with one line naming what it overlaps, exit 2, and nothing is blocked.
 * Real CLI, backend none (iptables for --dry-run's rule set);
 * test/netns/network-entry.test.ts checks the kernel.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import {cli, cliJson, nowEnv, oneLine, setup, type Setup} from '../helpers/env.js'
import {hostAddresses, parseCidr} from '../../src/core/net/ip.js'

interface Row {
  ip: string
  state: string
  instance: string | null
  blockedUntil: string | null
  comment: string | null
}

function configure(s: Setup, extra: Record<string, unknown> = {}, firewall: Record<string, unknown> = {}): void {
  writeFileSync(
    s.config,
    JSON.stringify({
      database: s.db,
      instances: [{name: 'master', logs: [s.log], ports: [80, 443]}],
      firewall: {backend: 'none', ...firewall},
      ...extra,
    }),
  )
}

const rows = (s: Setup, min = 1): Promise<Row[]> => cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(min)})
const dbText = (s: Setup): string => {
  try {
    return readFileSync(s.db, 'utf8')
  } catch {
    return ''
  }
}

test('block of an IPv4 network blocks it as one entry, normalized to its canonical text and saying so; list, list --ip and the rule set show the network', async (t) => {
  const s = setup(t)
  configure(s)
  const b = await cli(['block', '198.51.100.7/24', '203.0.113.0/24', '--minutes', '30', '--comment', 'ticket 9', '--config', s.config], {env: nowEnv(0)})
  assert.equal(b.exitCode, 0, b.stderr)
  assert.match(b.stdout, /^198\.51\.100\.0\/24 \(normalized from 198\.51\.100\.7\/24\): blocked on master for 30 min$/m)
  assert.match(b.stdout, /^203\.0\.113\.0\/24: blocked on master for 30 min$/m)
  assert.deepEqual((await rows(s)).map((r) => [r.ip, r.state, r.comment]).sort(), [['198.51.100.0/24', 'blocked', 'ticket 9'], ['203.0.113.0/24', 'blocked', 'ticket 9']])
  const inside = await cliJson<Row[]>(['list', '--ip', '198.51.100.99', '--config', s.config], {env: nowEnv(1)})
  assert.deepEqual(inside.map((r) => r.ip), ['198.51.100.0/24'])
  const table = await cli(['list', '--config', s.config], {env: nowEnv(1)})
  assert.match(table.stdout, /^198\.51\.100\.0\/24 +blocked/m)

  // An address inside the network, and one outside: the rule set holds the network and the outside address only.
  assert.equal((await cli(['block', '198.51.100.9', '192.0.2.200', '--config', s.config], {env: nowEnv(2)})).exitCode, 0)
  configure(s, {}, {backend: 'iptables'})
  const dry = await cli(['hacks', '--dry-run', '--config', s.config], {env: nowEnv(3)})
  assert.equal(dry.exitCode, 0, dry.stderr)
  assert.match(dry.stdout, /-A rcguard-master -s 198\.51\.100\.0\/24 -j DROP/)
  assert.match(dry.stdout, /-A rcguard-master -s 203\.0\.113\.0\/24 -j DROP/)
  assert.match(dry.stdout, /-A rcguard-master -s 192\.0\.2\.200\/32 -j DROP/)
  assert.doesNotMatch(dry.stdout, /198\.51\.100\.9/, 'the address inside the blocked network needs no rule of its own')
  configure(s, {}, {backend: 'nftables'})
  const nft = await cli(['hacks', '--dry-run', '--config', s.config], {env: nowEnv(3)})
  assert.equal(nft.exitCode, 0, nft.stderr)
  assert.match(nft.stdout, /flags interval/)
  assert.match(nft.stdout, /elements = \{ 192\.0\.2\.200, 198\.51\.100\.0\/24, 203\.0\.113\.0\/24 \}/, 'no overlapping elements in the interval set')
})

test('block of a network in --json; a /32 is the address itself; an IPv6 network is kept whole, or widened to ipv6Prefix like an address', async (t) => {
  const s = setup(t)
  configure(s, {}, {ipv6Prefix: 64})
  const b = await cliJson<{done: string[]}>(['block', '198.51.100.0/24', '198.51.100.77/32', '2001:db8:7::/48', '2001:db8:1:2:3::/80', '--config', s.config], {env: nowEnv(0)})
  assert.deepEqual(b.done, [
    '198.51.100.0/24: blocked on master for 60 min',
    '198.51.100.77 (normalized from 198.51.100.77/32): blocked on master for 60 min',
    '2001:db8:7::/48: blocked on master for 60 min',
    '2001:db8:1:2::/64 (network of 2001:db8:1:2:3::/80): blocked on master for 60 min',
  ])
  assert.deepEqual((await rows(s)).map((r) => r.ip).sort(), ['198.51.100.0/24', '198.51.100.77', '2001:db8:1:2::/64', '2001:db8:7::/48'])
  // Blocking the same network again is the same entry, blocked once more.
  const again = await cliJson<{done: string[]}>(['block', '198.51.100.1/24', '--config', s.config], {env: nowEnv(1)})
  assert.deepEqual(again.done, ['198.51.100.0/24 (normalized from 198.51.100.1/24): blocked on master for 120 min'])
  assert.equal((await rows(s, 2)).filter((r) => r.ip === '198.51.100.0/24').length, 1)
})

test('block of a network wider than /8 (IPv4) or /16 (IPv6), or of no network at all, is refused with one line, exit 2, and nothing is blocked', async (t) => {
  const s = setup(t)
  configure(s)
  const cases: [string[], RegExp][] = [
    [['10.0.0.0/7'], /^rcguard: 10\.0\.0\.0\/7 is wider than the widest network rcguard blocks \(\/8 for IPv4\)$/],
    [['0.0.0.0/0'], /^rcguard: 0\.0\.0\.0\/0 is wider than the widest network rcguard blocks \(\/8 for IPv4\)$/],
    [['2001:db8::/15'], /^rcguard: 2001:db8::\/15 is wider than the widest network rcguard blocks \(\/16 for IPv6\)$/],
    [['::/0'], /^rcguard: ::\/0 is wider than the widest network rcguard blocks \(\/16 for IPv6\)$/],
    [['198.51.100.0/33'], /^rcguard: not an IPv4\/IPv6 address or CIDR network: 198\.51\.100\.0\/33$/],
    [['198.51.100.0/'], /^rcguard: not an IPv4\/IPv6 address or CIDR network: 198\.51\.100\.0\/$/],
    [['203.0.113.5', '9.0.0.0/6'], /^rcguard: 9\.0\.0\.0\/6 is wider than the widest network rcguard blocks \(\/8 for IPv4\)$/],
  ]
  for (const [args, line] of cases) {
    const r = await cli(['block', ...args, '--config', s.config], {env: nowEnv(0)})
    assert.equal(r.exitCode, 2, `${args.join(' ')}: ${r.stderr}`)
    oneLine(r, args.join(' '), line)
    assert.equal(r.stdout, '')
  }
  assert.deepEqual(await rows(s), [], 'nothing was blocked')
  // The widest ones are taken.
  const widest = await cli(['block', '10.0.0.0/8', '2001::/16', '--config', s.config], {env: nowEnv(1)})
  assert.equal(widest.exitCode, 0, widest.stderr)
  assert.deepEqual((await rows(s, 2)).map((r) => r.ip).sort(), ['10.0.0.0/8', '2001::/16'])
})

test('block of a network that overlaps anything never blocked is refused with one line naming what it overlaps, exit 2, and nothing is blocked', async (t) => {
  const s = setup(t)
  configure(s, {whitelist: ['127.0.0.0/8', '::1', '198.51.100.200', '2001:db8:9::/48'], trustedProxies: ['203.0.113.1']})
  assert.equal((await cli(['whitelist', '100.64.7.0/24', '--config', s.config])).exitCode, 0)
  const before = dbText(s)
  const cases: [string[], RegExp][] = [
    [['198.51.100.0/24'], /^rcguard: refused: 198\.51\.100\.0\/24 overlaps what is never blocked \(whitelisted in the configuration \(198\.51\.100\.200\/32\)\)$/],
    [['198.51.0.0/16'], /^rcguard: refused: 198\.51\.0\.0\/16 overlaps what is never blocked \(whitelisted in the configuration \(198\.51\.100\.200\/32\)\)$/],
    [['2001:db8:9:1::/64'], /^rcguard: refused: 2001:db8:9:1::\/64 overlaps what is never blocked \(whitelisted in the configuration \(2001:db8:9::\/48\)\)$/],
    [['203.0.113.0/24'], /^rcguard: refused: 203\.0\.113\.0\/24 overlaps what is never blocked \(a trusted proxy \(203\.0\.113\.1\/32\)\)$/],
    [['100.64.0.0/16'], /^rcguard: refused: 100\.64\.0\.0\/16 overlaps what is never blocked \(whitelisted \(100\.64\.7\.0\/24\)\)$/],
    [['127.1.0.0/16'], /^rcguard: refused: 127\.1\.0\.0\/16 overlaps what is never blocked \(loopback \(127\.0\.0\.0\/8\)\)$/],
    [['126.0.0.0/7'], /is wider than the widest network rcguard blocks/],
    [['192.0.2.5', '198.51.100.7/24'], /^rcguard: refused: 198\.51\.100\.0\/24 overlaps what is never blocked \(whitelisted in the configuration \(198\.51\.100\.200\/32\)\)$/],
  ]
  for (const [args, line] of cases) {
    const r = await cli(['block', ...args, '--config', s.config], {env: nowEnv(1)})
    assert.equal(r.exitCode, 2, `${args.join(' ')}: ${r.stderr}`)
    oneLine(r, args.join(' '), line)
    assert.equal(r.stdout, '')
  }
  assert.equal(dbText(s), before, 'the database was not written')
  assert.deepEqual(await rows(s, 2), [{ip: '100.64.7.0/24', state: 'whitelisted', instance: null, blockedUntil: null, comment: null, attempts: 0, firstSeen: null, lastSeen: null, blockedAt: null, lastUser: null, blocks: 0, rule: null}])
  // Both in one line when several are refused; an address keeps its own wording.
  const two = await cli(['block', '198.51.100.0/24', '127.0.0.9', '--config', s.config], {env: nowEnv(1)})
  assert.equal(two.exitCode, 2)
  oneLine(two, 'two refused', /^rcguard: refused: 198\.51\.100\.0\/24 overlaps what is never blocked \(.*\); 127\.0\.0\.9 is never blocked \(loopback\)$/)
})

test("block of a network that holds one of this host's own addresses is refused, naming that address", async (t) => {
  const own = hostAddresses().find((ip) => ip.includes('.') && !ip.startsWith('127.'))
  if (own === undefined) return t.skip('this host has no IPv4 address but loopback')
  const s = setup(t)
  configure(s)
  const net = parseCidr(`${own}/24`)?.text ?? ''
  const r = await cli(['block', net, '--config', s.config], {env: nowEnv(0)})
  assert.equal(r.exitCode, 2, r.stderr)
  oneLine(r, 'host network', new RegExp(`^rcguard: refused: ${net.replace(/[./]/g, '\\$&')} overlaps what is never blocked \\(this host's own address \\(`))
  assert.deepEqual(await rows(s), [])
})

test('unblock of a blocked IPv4 network lifts it and the entries inside it; unblock of an address inside it names the network, exit 7', async (t) => {
  const s = setup(t)
  configure(s)
  assert.equal((await cli(['block', '198.51.100.0/24', '--minutes', '0', '--config', s.config], {env: nowEnv(0)})).exitCode, 0)
  assert.equal((await cli(['block', '198.51.100.9', '198.51.101.9', '--config', s.config], {env: nowEnv(0)})).exitCode, 0)
  const inside = await cli(['unblock', '198.51.100.9', '--config', s.config], {env: nowEnv(1)})
  assert.equal(inside.exitCode, 7, `${inside.stdout}${inside.stderr}`)
  assert.match(inside.stdout, /^198\.51\.100\.9: unblocked and forgotten; it is blocked again if it misbehaves again$/m)
  oneLine(inside, 'inside the /24', /^rcguard: 198\.51\.100\.9 is still blocked by the network 198\.51\.100\.0\/24 on master until deleted: "rcguard unblock 198\.51\.100\.0\/24" lifts it$/)
  const lift = await cli(['unblock', '198.51.100.77/24', '--config', s.config], {env: nowEnv(2)})
  assert.equal(lift.exitCode, 0, lift.stderr)
  assert.match(lift.stdout, /^198\.51\.100\.0\/24: unblocked and forgotten/m)
  assert.deepEqual((await rows(s, 3)).map((r) => r.ip), ['198.51.101.9'])
})
