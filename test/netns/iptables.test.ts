/**
 * The iptables backend against the real kernel: every test runs the CLI
 * inside a network namespace it creates (ip netns add), so the host's own
 * rules are never touched. Without root these tests skip with the reason;
 * with CI=true a skip fails.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {appendLines, burst, cli, netns, requireRoot, setup, stripSaveComments, type Setup, T0, at, nowEnv} from '../helpers/env.js'

/** Two instances: master on 80,443 reading userlogins.log; webmail2 on 8443 reading its own log. */
function twoInstances(t: Parameters<typeof setup>[0], extra: Record<string, unknown> = {}): Setup & {log2: string} {
  const s = setup(t)
  const log2 = join(s.dir, 'webmail2.log')
  writeFileSync(log2, '')
  writeFileSync(
    s.config,
    JSON.stringify({
      database: s.db,
      instances: [
        {name: 'master', logs: [s.errorsLog, s.log], ports: [80, 443]},
        {name: 'webmail2', logs: [log2], ports: [8443]},
      ],
      firewall: {backend: 'iptables'},
      ...extra,
    }),
  )
  return {...s, log2}
}

async function save(ns: Awaited<ReturnType<typeof netns>>, six = false): Promise<string> {
  const r = await ns.run(six ? 'ip6tables-save' : 'iptables-save', ['-t', 'filter'])
  assert.equal(r.exitCode, 0, r.stderr)
  return stripSaveComments(r.stdout)
}

function rcguardLines(text: string): string[] {
  return text.split('\n').filter((l) => l.includes('rcguard'))
}

test('a block becomes one DROP in the instance chain, jumped to for that instance\'s ports only; IPv6 too', async (t) => {
  if (!requireRoot(t)) return
  const ns = await netns(t)
  const s = twoInstances(t)
  appendLines(s.log, [...burst(at(0), '203.0.113.7', 6), ...burst(at(0), '2001:db8::bad', 6)])
  const r = await cli(['hacks', '--config', s.config], {netns: ns.name, env: nowEnv(3)})
  assert.equal(r.exitCode, 0, r.stderr)
  assert.deepEqual(rcguardLines(await save(ns)), [
    ':rcguard-master - [0:0]',
    ':rcguard-webmail2 - [0:0]',
    '-A INPUT -p tcp -m multiport --dports 8443 -m comment --comment "managed by rcguard" -j rcguard-webmail2',
    '-A INPUT -p tcp -m multiport --dports 80,443 -m comment --comment "managed by rcguard" -j rcguard-master',
    '-A rcguard-master -m comment --comment "managed by rcguard"',
    '-A rcguard-master -s 203.0.113.7/32 -j DROP',
    '-A rcguard-webmail2 -m comment --comment "managed by rcguard"',
  ])
  assert.deepEqual(rcguardLines(await save(ns, true)), [
    ':rcguard-master - [0:0]',
    ':rcguard-webmail2 - [0:0]',
    '-A INPUT -p tcp -m multiport --dports 8443 -m comment --comment "managed by rcguard" -j rcguard-webmail2',
    '-A INPUT -p tcp -m multiport --dports 80,443 -m comment --comment "managed by rcguard" -j rcguard-master',
    '-A rcguard-master -m comment --comment "managed by rcguard"',
    '-A rcguard-master -s 2001:db8::bad/128 -j DROP',
    '-A rcguard-webmail2 -m comment --comment "managed by rcguard"',
  ])
  // The other instance's attacker lands in its own chain only.
  appendLines(s.log2, burst(at(4), '198.18.5.5', 6))
  await cli(['hacks', '--config', s.config], {netns: ns.name, env: nowEnv(7)})
  const after = rcguardLines(await save(ns))
  assert.ok(after.includes('-A rcguard-webmail2 -s 198.18.5.5/32 -j DROP'))
  assert.ok(!after.includes('-A rcguard-master -s 198.18.5.5/32 -j DROP'))
})

test('a second hacks run with nothing new changes nothing: iptables-save identical, no restore run', async (t) => {
  if (!requireRoot(t)) return
  const ns = await netns(t)
  const s = twoInstances(t)
  appendLines(s.log, burst(at(0), '203.0.113.8', 6))
  await cli(['hacks', '--config', s.config], {netns: ns.name, env: nowEnv(3)})
  const before4 = await save(ns)
  const before6 = await save(ns, true)
  const r = await cli(['hacks', '--verbose', '--config', s.config], {netns: ns.name, env: nowEnv(4)})
  assert.equal(r.exitCode, 0, r.stderr)
  assert.match(r.stdout, /firewall already as wanted: nothing applied/)
  assert.doesNotMatch(r.stdout, /ran: ip6?tables-restore/)
  assert.equal(await save(ns), before4)
  assert.equal(await save(ns, true), before6)
})

test('unblock removes the rule and the entry; a new burst blocks again', async (t) => {
  if (!requireRoot(t)) return
  const ns = await netns(t)
  const s = twoInstances(t)
  appendLines(s.log, burst(at(0), '203.0.113.9', 6))
  await cli(['hacks', '--config', s.config], {netns: ns.name, env: nowEnv(3)})
  assert.ok((await save(ns)).includes('-A rcguard-master -s 203.0.113.9/32 -j DROP'))
  const u = await cli(['unblock', '203.0.113.9', '--config', s.config], {netns: ns.name, env: nowEnv(4)})
  assert.equal(u.exitCode, 0, u.stderr)
  assert.match(u.stdout, /firewall updated/)
  assert.ok(!(await save(ns)).includes('203.0.113.9'))
  appendLines(s.log, burst(at(5), '203.0.113.9', 6))
  await cli(['hacks', '--config', s.config], {netns: ns.name, env: nowEnv(8)})
  assert.ok((await save(ns)).includes('-A rcguard-master -s 203.0.113.9/32 -j DROP'))
})

test('whitelist removes the rule now and a new burst never blocks', async (t) => {
  if (!requireRoot(t)) return
  const ns = await netns(t)
  const s = twoInstances(t)
  appendLines(s.log, burst(at(0), '192.0.2.77', 6))
  await cli(['hacks', '--config', s.config], {netns: ns.name, env: nowEnv(3)})
  const w = await cli(['whitelist', '192.0.2.0/24', '--config', s.config], {netns: ns.name, env: nowEnv(4)})
  assert.equal(w.exitCode, 0, w.stderr)
  assert.ok(!(await save(ns)).includes('192.0.2.77'))
  appendLines(s.log, burst(at(5), '192.0.2.77', 12))
  await cli(['hacks', '--config', s.config], {netns: ns.name, env: nowEnv(10)})
  assert.ok(!(await save(ns)).includes('192.0.2.77'))
})

test('expiry removes the rule', async (t) => {
  if (!requireRoot(t)) return
  const ns = await netns(t)
  const s = twoInstances(t, {blockMinutes: 30})
  appendLines(s.log, burst(at(0), '198.18.0.9', 6))
  await cli(['hacks', '--config', s.config], {netns: ns.name, env: nowEnv(3)})
  assert.ok((await save(ns)).includes('198.18.0.9'))
  await cli(['hacks', '--config', s.config], {netns: ns.name, env: nowEnv(20)})
  assert.ok((await save(ns)).includes('198.18.0.9'))
  const r = await cli(['hacks', '--config', s.config], {netns: ns.name, env: nowEnv(32)})
  assert.match(r.stdout, /unblocked 198\.18\.0\.9/)
  assert.ok(!(await save(ns)).includes('198.18.0.9'))
})

test('flush removes every rcguard chain and jump; a rule the test added itself survives', async (t) => {
  if (!requireRoot(t)) return
  const ns = await netns(t)
  const s = twoInstances(t)
  const foreign = ['-A', 'INPUT', '-s', '10.99.0.1/32', '-p', 'tcp', '--dport', '22', '-j', 'ACCEPT']
  assert.equal((await ns.run('iptables', ['-w', ...foreign])).exitCode, 0)
  assert.equal((await ns.run('iptables', ['-w', '-N', 'other-tool'])).exitCode, 0)
  appendLines(s.log, [...burst(at(0), '203.0.113.10', 6), ...burst(at(0), '2001:db8::10', 6)])
  await cli(['hacks', '--config', s.config], {netns: ns.name, env: nowEnv(3)})
  assert.ok(rcguardLines(await save(ns)).length > 0)
  const f = await cli(['flush', '--yes', '--config', s.config], {netns: ns.name})
  assert.equal(f.exitCode, 0, f.stderr)
  assert.match(f.stdout, /firewall rules removed/)
  const v4 = await save(ns)
  assert.deepEqual(rcguardLines(v4), [])
  assert.deepEqual(rcguardLines(await save(ns, true)), [])
  assert.ok(v4.includes('-A INPUT -s 10.99.0.1/32 -p tcp -m tcp --dport 22 -j ACCEPT'))
  assert.ok(v4.includes(':other-tool - [0:0]'))
})

test('drift is repaired: a rule or jump removed by someone else comes back on the next run', async (t) => {
  if (!requireRoot(t)) return
  const ns = await netns(t)
  const s = twoInstances(t)
  appendLines(s.log, burst(at(0), '203.0.113.11', 6))
  await cli(['hacks', '--config', s.config], {netns: ns.name, env: nowEnv(3)})
  const wanted = await save(ns)
  await ns.run('iptables', ['-w', '-F', 'rcguard-master'])
  assert.equal((await ns.run('iptables', ['-w', '-D', 'INPUT', '-p', 'tcp', '-m', 'multiport', '--dports', '8443', '-m', 'comment', '--comment', 'managed by rcguard', '-j', 'rcguard-webmail2'])).exitCode, 0)
  await ns.run('iptables', ['-w', '-A', 'rcguard-master', '-s', '192.0.2.250/32', '-j', 'DROP'])
  const r = await cli(['hacks', '--verbose', '--config', s.config], {netns: ns.name, env: nowEnv(4)})
  assert.match(r.stdout, /drift: IPv4: chain rcguard-master differs/)
  assert.match(r.stdout, /drift: IPv4: rule "-A INPUT -p tcp -m multiport --dports 8443 -m comment --comment "managed by rcguard" -j rcguard-webmail2" is missing/)
  assert.deepEqual(new Set(rcguardLines(await save(ns))), new Set(rcguardLines(wanted)))
})

test('enabled: false removes all rules; a removed instance\'s chain goes away', async (t) => {
  if (!requireRoot(t)) return
  const ns = await netns(t)
  const s = twoInstances(t)
  appendLines(s.log, burst(at(0), '203.0.113.12', 6))
  await cli(['hacks', '--config', s.config], {netns: ns.name, env: nowEnv(3)})
  writeFileSync(
    s.config,
    JSON.stringify({database: s.db, instances: [{name: 'master', logs: [s.log], ports: [443]}], firewall: {backend: 'iptables'}}),
  )
  await cli(['hacks', '--config', s.config], {netns: ns.name, env: nowEnv(4)})
  assert.deepEqual(rcguardLines(await save(ns)), [
    ':rcguard-master - [0:0]',
    '-A INPUT -p tcp -m multiport --dports 443 -m comment --comment "managed by rcguard" -j rcguard-master',
    '-A rcguard-master -m comment --comment "managed by rcguard"',
    '-A rcguard-master -s 203.0.113.12/32 -j DROP',
  ])
  writeFileSync(
    s.config,
    JSON.stringify({enabled: false, database: s.db, instances: [{name: 'master', logs: [s.log], ports: [443]}], firewall: {backend: 'iptables'}}),
  )
  const r = await cli(['hacks', '--config', s.config], {netns: ns.name, env: nowEnv(5)})
  assert.equal(r.exitCode, 0, r.stderr)
  assert.deepEqual(rcguardLines(await save(ns)), [])
  assert.deepEqual(rcguardLines(await save(ns, true)), [])
})
