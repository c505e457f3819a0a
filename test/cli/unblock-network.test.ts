/**
 * `unblock` never says "unblocked" while the address stays blocked, and
 * `whitelist --remove` never says "removed" while the address stays never
 * blocked (issue 11). unblock deletes the entries of the argument's own scope
 * (the address, or with firewall.ipv6Prefix its network); a wider network
 * entry that still blocks it (a /48 kept from an earlier ipv6Prefix, a /64
 * kept after the prefix went back to 128) is named with its instance, its
 * end and the command that lifts it, and the exit status is 7. Real CLI,
 * backend none; test/netns/unblock-network.test.ts checks the kernel.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import {cli, cliJson, nowEnv, oneLine, setup, type Setup} from '../helpers/env.js'

interface Row {
  ip: string
  state: string
  instance: string | null
  blockedUntil: string | null
}

function configure(s: Setup, firewall: Record<string, unknown>, extra: Record<string, unknown> = {}): void {
  writeFileSync(
    s.config,
    JSON.stringify({
      database: s.db,
      instances: [
        {name: 'master', logs: [s.log], ports: [80, 443]},
        {name: 'imap', logs: [s.errorsLog], ports: [993]},
      ],
      firewall: {backend: 'none', ...firewall},
      ...extra,
    }),
  )
}

const rows = (s: Setup, min: number): Promise<Row[]> => cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(min)})

test('ipv6Prefix 64: unblock of an address inside a /48 kept from ipv6Prefix 48 lifts its own /64 only, names the /48 that still blocks it, exit 7; unblock of the /48 lifts it', async (t) => {
  const s = setup(t)
  configure(s, {ipv6Prefix: 48})
  const b = await cli(['block', '2001:db8:0:1::5', '--instance', 'master', '--minutes', '120', '--config', s.config], {env: nowEnv(0)})
  assert.equal(b.exitCode, 0, b.stderr)
  assert.match(b.stdout, /^2001:db8::\/48 \(network of 2001:db8:0:1::5\): blocked on master for 120 min$/m)

  configure(s, {ipv6Prefix: 64})
  const b2 = await cli(['block', '2001:db8:0:2::9', '--minutes', '30', '--config', s.config], {env: nowEnv(1)})
  assert.equal(b2.exitCode, 0, b2.stderr)
  assert.deepEqual(
    (await rows(s, 1)).map((r) => [r.ip, r.instance]).sort(),
    [['2001:db8:0:2::/64', 'imap'], ['2001:db8:0:2::/64', 'master'], ['2001:db8::/48', 'master']],
  )

  // A neighbour of the /64: its own network goes (as ever), the /48 stays and is named.
  const u = await cli(['unblock', '2001:db8:0:2::7', '--config', s.config], {env: nowEnv(2)})
  assert.equal(u.exitCode, 7, `${u.stdout}${u.stderr}`)
  assert.match(u.stdout, /^2001:db8:0:2::7: network 2001:db8:0:2::\/64 unblocked and forgotten; it is blocked again if it misbehaves again$/m)
  oneLine(u, 'unblock inside the /48', /^rcguard: 2001:db8:0:2::7 is still blocked by the network 2001:db8::\/48 on master until 2026-11-25 15:00:00Z: "rcguard unblock 2001:db8::\/48" lifts it$/)
  assert.deepEqual((await rows(s, 2)).map((r) => [r.ip, r.state, r.instance]), [['2001:db8::/48', 'blocked', 'master']], 'the /48 is still blocked')

  // Nothing of its own to delete: no "unblocked" line at all, the same status, also in --json.
  const again = await cli(['unblock', '2001:db8:0:1::5', '--json', '--config', s.config], {env: nowEnv(3)})
  assert.equal(again.exitCode, 7, again.stderr)
  const out = JSON.parse(again.stdout) as {error: {exitCode: number; message: string}}
  assert.equal(out.error.exitCode, 7)
  assert.match(out.error.message, /^2001:db8:0:1::5 is still blocked by the network 2001:db8::\/48 on master until 2026-11-25 15:00:00Z/)
  assert.equal((await rows(s, 3)).length, 1, 'nothing was deleted')

  const lift = await cli(['unblock', '2001:db8::/48', '--config', s.config], {env: nowEnv(4)})
  assert.equal(lift.exitCode, 0, lift.stderr)
  assert.match(lift.stdout, /^2001:db8::\/48: unblocked and forgotten/m)
  assert.equal(lift.stderr, '')
  assert.deepEqual(await rows(s, 4), [])
})

test('ipv6Prefix raised from 64 to 128: unblock of an address deletes its own entry, and names the /64 still blocking it on each instance (exit 7)', async (t) => {
  const s = setup(t)
  configure(s, {ipv6Prefix: 64})
  assert.equal((await cli(['block', '2001:db8:9:1::1', '--minutes', '0', '--comment', 'ticket 7', '--config', s.config], {env: nowEnv(0)})).exitCode, 0)
  configure(s, {ipv6Prefix: 128})
  assert.equal((await cli(['block', '2001:db8:9:1::2', '--instance', 'imap', '--config', s.config], {env: nowEnv(1)})).exitCode, 0)
  const u = await cli(['unblock', '2001:db8:9:1::2', '--config', s.config], {env: nowEnv(2)})
  assert.equal(u.exitCode, 7, `${u.stdout}${u.stderr}`)
  assert.match(u.stdout, /^2001:db8:9:1::2: unblocked and forgotten;/m)
  oneLine(
    u,
    'unblock under a kept /64',
    /^rcguard: 2001:db8:9:1::2 is still blocked by the network 2001:db8:9:1::\/64 on imap until deleted: "rcguard unblock 2001:db8:9:1::\/64" lifts it; 2001:db8:9:1::2 is still blocked by the network 2001:db8:9:1::\/64 on master until deleted: "rcguard unblock 2001:db8:9:1::\/64" lifts it$/,
  )
  assert.deepEqual((await rows(s, 2)).map((r) => [r.ip, r.instance]).sort(), [['2001:db8:9:1::/64', 'imap'], ['2001:db8:9:1::/64', 'master']])
  // Several arguments: the still-blocked one and an unknown one both reported, the still-blocked status wins.
  const two = await cli(['unblock', '2001:db8:9:1::3', '203.0.113.99', '--config', s.config], {env: nowEnv(3)})
  assert.equal(two.exitCode, 7, two.stderr)
  oneLine(two, 'two arguments', /still blocked by the network 2001:db8:9:1::\/64 on master until deleted: .*; not in the database: 203\.0\.113\.99$/)
})

test('whitelist --remove names what still keeps the address from being blocked (a wider database network, the configuration, a trusted proxy), exit 7; an address on no whitelist is exit 6; a network overlapping the whitelist is never blocked by hand', async (t) => {
  const s = setup(t)
  configure(s, {}, {whitelist: ['127.0.0.0/8', '198.51.100.0/24'], trustedProxies: ['203.0.113.1']})
  // A network inside the configuration's whitelist is refused, so unblock of an address there has nothing wider to name.
  const net = await cli(['block', '198.51.100.0/25', '--config', s.config], {env: nowEnv(0)})
  assert.equal(net.exitCode, 2, net.stderr)
  oneLine(net, 'block of a whitelisted network', /^rcguard: refused: 198\.51\.100\.0\/25 overlaps what is never blocked \(whitelisted in the configuration \(198\.51\.100\.0\/24\)\)$/)
  const w = await cli(['unblock', '198.51.100.7', '--config', s.config], {env: nowEnv(0)})
  assert.equal(w.exitCode, 6, w.stderr)
  oneLine(w, 'unblock of a whitelisted address', /^rcguard: not in the database: 198\.51\.100\.7$/)

  const add = await cli(['whitelist', '192.0.2.0/24', '192.0.2.5', '--config', s.config])
  assert.equal(add.exitCode, 0, add.stderr)

  const exact = await cli(['whitelist', '--remove', '192.0.2.5', '--config', s.config])
  assert.equal(exact.exitCode, 7, `${exact.stdout}${exact.stderr}`)
  assert.match(exact.stdout, /^192\.0\.2\.5\/32: removed from the whitelist$/m)
  oneLine(exact, 'inside a database network', /^rcguard: 192\.0\.2\.5\/32 is still never blocked: 192\.0\.2\.0\/24 in the database's whitelist holds it; "rcguard whitelist --remove 192\.0\.2\.0\/24" removes it$/)
  const db = JSON.parse(readFileSync(s.db, 'utf8')) as {whitelist: {cidr: string}[]}
  assert.deepEqual(db.whitelist.map((w) => w.cidr), ['192.0.2.0/24'], 'the exact entry is gone, the network stays')

  const conf = await cli(['whitelist', '--remove', '198.51.100.7', '--config', s.config])
  assert.equal(conf.exitCode, 7, conf.stderr)
  oneLine(conf, 'in the configuration', /^rcguard: 198\.51\.100\.7\/32 is still never blocked: 198\.51\.100\.0\/24 in the configuration's whitelist holds it; remove it from whitelist in the configuration file$/)

  const proxy = await cli(['whitelist', '--remove', '203.0.113.1', '--config', s.config])
  assert.equal(proxy.exitCode, 7, proxy.stderr)
  oneLine(proxy, 'a trusted proxy', /203\.0\.113\.1\/32 in trustedProxies in the configuration holds it; a trusted proxy is never blocked$/)

  const none = await cli(['whitelist', '--remove', '203.0.113.99', '--config', s.config])
  assert.equal(none.exitCode, 6, none.stderr)
  oneLine(none, 'on no whitelist', /^rcguard: not on the whitelist: 203\.0\.113\.99\/32$/)

  // Removing the network itself: nothing else holds all of it, so it is plainly removed.
  const whole = await cli(['whitelist', '--remove', '192.0.2.0/24', '--config', s.config])
  assert.equal(whole.exitCode, 0, whole.stderr)
  assert.match(whole.stdout, /^192\.0\.2\.0\/24: removed from the whitelist$/m)
  const b = await cli(['block', '192.0.2.5', '--config', s.config], {env: nowEnv(1)})
  assert.equal(b.exitCode, 0, `once removed, it can be blocked: ${b.stderr}`)
})
