/**
 * Every firewall backend against the real kernel, each test in a network
 * namespace of its own: golden rule sets, a second run that changes nothing,
 * drift repaired, switching backends without leftovers, flush sparing
 * foreign rules. Skips without root (and fails under CI=true).
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {GETGEN} from '../../src/core/firewall/generation.js'
import {appendLines, burst, cli, netns, requireRoot, setup, stripSaveComments, T0, at, nowEnv} from '../helpers/env.js'

type Ns = Awaited<ReturnType<typeof netns>>
type Backend = 'iptables' | 'ipset' | 'nftables'

function configure(s: ReturnType<typeof setup>, log2: string, firewall: Record<string, unknown>, ports2: unknown = [8443]): void {
  writeFileSync(
    s.config,
    JSON.stringify({
      database: s.db,
      instances: [
        {name: 'master', logs: [s.log], ports: [80, 443]},
        {name: 'webmail2', logs: [log2], ports: ports2},
      ],
      firewall,
    }),
  )
}

async function start(t: Parameters<typeof setup>[0], firewall: Record<string, unknown>, ports2?: unknown) {
  const ns = await netns(t)
  const s = setup(t)
  const log2 = join(s.dir, 'webmail2.log')
  writeFileSync(log2, '')
  configure(s, log2, firewall, ports2)
  appendLines(s.log, [...burst(at(0), '203.0.113.7', 6), ...burst(at(0), '203.0.113.8', 6), ...burst(at(0), '2001:db8::bad', 6)])
  appendLines(log2, burst(at(0), '198.18.5.5', 6))
  const r = await cli(['hacks', '--config', s.config], {netns: ns.name, env: nowEnv(3)})
  assert.equal(r.exitCode, 0, r.stderr)
  return {ns, s, log2}
}

async function out(ns: Ns, cmd: string, args: string[]): Promise<string> {
  const r = await ns.run(cmd, args)
  return r.exitCode === 0 ? r.stdout : ''
}

/** Everything rcguard-related in the namespace, across all tools, without volatile parts. */
async function snapshot(ns: Ns): Promise<string> {
  const v4 = stripSaveComments(await out(ns, 'iptables-save', ['-t', 'filter'])).split('\n').filter((l) => l.includes('rcguard'))
  const v6 = stripSaveComments(await out(ns, 'ip6tables-save', ['-t', 'filter'])).split('\n').filter((l) => l.includes('rcguard'))
  // ipset lists members in hash order: sort them within each set.
  const sets = (await out(ns, 'ipset', ['save']))
    .replace(/ initval 0x[0-9a-f]+/g, '')
    .split('\n')
    .filter((l) => l.includes('rcguard'))
    .map((l) => (l.startsWith('create ') ? `${l.split(' ')[1] ?? ''} 0 ${l}` : `${l.split(' ')[1] ?? ''} 1 ${l}`))
    .sort()
    .map((l) => l.split(' ').slice(2).join(' '))
  const nft = (await out(ns, 'nft', ['list', 'table', 'inet', 'rcguard'])).trim()
  return [`# iptables`, ...v4, `# ip6tables`, ...v6, `# ipset`, ...sets, `# nft`, nft].join('\n').trimEnd()
}

const GOLDEN: Record<Backend, string> = {
  iptables: `# iptables
:rcguard-master - [0:0]
:rcguard-webmail2 - [0:0]
-A INPUT -p tcp -m multiport --dports 8443 -m comment --comment "managed by rcguard" -j rcguard-webmail2
-A INPUT -p tcp -m multiport --dports 80,443 -m comment --comment "managed by rcguard" -j rcguard-master
-A rcguard-master -m comment --comment "managed by rcguard"
-A rcguard-master -s 203.0.113.7/32 -j DROP
-A rcguard-master -s 203.0.113.8/32 -j DROP
-A rcguard-webmail2 -m comment --comment "managed by rcguard"
-A rcguard-webmail2 -s 198.18.5.5/32 -j DROP
# ip6tables
:rcguard-master - [0:0]
:rcguard-webmail2 - [0:0]
-A INPUT -p tcp -m multiport --dports 8443 -m comment --comment "managed by rcguard" -j rcguard-webmail2
-A INPUT -p tcp -m multiport --dports 80,443 -m comment --comment "managed by rcguard" -j rcguard-master
-A rcguard-master -m comment --comment "managed by rcguard"
-A rcguard-master -s 2001:db8::bad/128 -j DROP
-A rcguard-webmail2 -m comment --comment "managed by rcguard"
# ipset
# nft
`,
  ipset: `# iptables
-A INPUT -p tcp -m multiport --dports 8443 -m set --match-set rcguard-webmail2-4 src -m comment --comment "managed by rcguard" -j DROP
-A INPUT -p tcp -m multiport --dports 80,443 -m set --match-set rcguard-master-4 src -m comment --comment "managed by rcguard" -j DROP
# ip6tables
-A INPUT -p tcp -m multiport --dports 8443 -m set --match-set rcguard-webmail2-6 src -m comment --comment "managed by rcguard" -j DROP
-A INPUT -p tcp -m multiport --dports 80,443 -m set --match-set rcguard-master-6 src -m comment --comment "managed by rcguard" -j DROP
# ipset
create rcguard-master-4 hash:net family inet hashsize 1024 maxelem 65536 bucketsize 12
add rcguard-master-4 203.0.113.7
add rcguard-master-4 203.0.113.8
create rcguard-master-6 hash:net family inet6 hashsize 1024 maxelem 65536 bucketsize 12
add rcguard-master-6 2001:db8::bad
create rcguard-webmail2-4 hash:net family inet hashsize 1024 maxelem 65536 bucketsize 12
add rcguard-webmail2-4 198.18.5.5
create rcguard-webmail2-6 hash:net family inet6 hashsize 1024 maxelem 65536 bucketsize 12
# nft
`,
  nftables: `# iptables
# ip6tables
# ipset
# nft
table inet rcguard {
	comment "managed by rcguard"
	set master_v4 {
		type ipv4_addr
		elements = { 203.0.113.7, 203.0.113.8 }
	}

	set master_v6 {
		type ipv6_addr
		elements = { 2001:db8::bad }
	}

	set webmail2_v4 {
		type ipv4_addr
		elements = { 198.18.5.5 }
	}

	set webmail2_v6 {
		type ipv6_addr
	}

	chain input {
		type filter hook input priority filter - 10; policy accept;
		tcp dport { 80, 443 } ip saddr @master_v4 drop comment "rcguard RULE0"
		tcp dport { 80, 443 } ip6 saddr @master_v6 drop comment "rcguard RULE1"
		tcp dport 8443 ip saddr @webmail2_v4 drop comment "rcguard RULE2"
		tcp dport 8443 ip6 saddr @webmail2_v6 drop comment "rcguard RULE3"
	}
}`,
}

function normaliseDigests(text: string): string {
  let n = 0
  return text.replace(/"rcguard [0-9a-f]{12}"/g, () => `"rcguard RULE${n++}"`)
}

for (const backend of ['iptables', 'ipset', 'nftables'] as const) {
  test(`${backend}: golden rule set; a second run changes nothing`, async (t) => {
    if (!requireRoot(t)) return
    const {ns, s} = await start(t, {backend})
    assert.equal(normaliseDigests(await snapshot(ns)), GOLDEN[backend].trimEnd())
    const before = await snapshot(ns)
    const r = await cli(['hacks', '--verbose', '--config', s.config], {netns: ns.name, env: nowEnv(4)})
    assert.equal(r.exitCode, 0, r.stderr)
    assert.match(r.stdout, /firewall already as wanted: nothing applied/)
    assert.doesNotMatch(r.stdout, /ran: (ipset restore|nft -f|ip6?tables-restore)/)
    assert.equal(await snapshot(ns), before)
  })

  test(`${backend}: drift (objects removed, a foreign element added) is repaired by the next run`, async (t) => {
    if (!requireRoot(t)) return
    const {ns, s} = await start(t, {backend})
    const wanted = await snapshot(ns)
    if (backend === 'iptables') {
      await ns.run('iptables', ['-w', '-F', 'rcguard-master'])
      await ns.run('iptables', ['-w', '-A', 'rcguard-webmail2', '-s', '192.0.2.250/32', '-j', 'DROP'])
      assert.equal((await ns.run('ip6tables', ['-w', '-D', 'INPUT', '-p', 'tcp', '-m', 'multiport', '--dports', '80,443', '-m', 'comment', '--comment', 'managed by rcguard', '-j', 'rcguard-master'])).exitCode, 0)
    } else if (backend === 'ipset') {
      assert.equal((await ns.run('iptables', ['-w', '-D', 'INPUT', '-p', 'tcp', '-m', 'multiport', '--dports', '80,443', '-m', 'set', '--match-set', 'rcguard-master-4', 'src', '-m', 'comment', '--comment', 'managed by rcguard', '-j', 'DROP'])).exitCode, 0)
      await ns.run('ipset', ['destroy', 'rcguard-master-4'])
      await ns.run('ipset', ['add', 'rcguard-webmail2-4', '192.0.2.250'])
    } else {
      await ns.run('nft', ['delete', 'set', 'inet', 'rcguard', 'webmail2_v6'])
      await ns.run('nft', ['add', 'element', 'inet', 'rcguard', 'master_v4', '{ 192.0.2.250 }'])
      await ns.run('nft', ['flush', 'chain', 'inet', 'rcguard', 'input'])
    }
    assert.notEqual(await snapshot(ns), wanted)
    const r = await cli(['hacks', '--verbose', '--config', s.config], {netns: ns.name, env: nowEnv(4)})
    assert.equal(r.exitCode, 0, r.stderr)
    assert.match(r.stdout, /^drift: /m)
    // The same rules (a repaired hook rule may stand in another place among rcguard's own).
    const lines = (x: string) => x.split('\n').sort()
    assert.deepEqual(lines(await snapshot(ns)), lines(wanted))
  })

  test(`${backend}: flush removes all of rcguard's objects; foreign rules, sets and tables survive`, async (t) => {
    if (!requireRoot(t)) return
    const ns = await netns(t)
    await ns.run('iptables', ['-w', '-A', 'INPUT', '-s', '10.99.0.1/32', '-p', 'tcp', '--dport', '22', '-j', 'ACCEPT'])
    await ns.run('ipset', ['create', 'other-tool', 'hash:ip'])
    await ns.run('nft', ['add', 'table', 'inet', 'othertool'])
    const s = setup(t)
    writeFileSync(s.config, JSON.stringify({database: s.db, instances: [{name: 'master', logs: [s.log], ports: [443]}], firewall: {backend}}))
    appendLines(s.log, [...burst(at(0), '203.0.113.9', 6), ...burst(at(0), '2001:db8::9', 6)])
    await cli(['hacks', '--config', s.config], {netns: ns.name, env: nowEnv(3)})
    assert.match(await snapshot(ns), /203\.0\.113\.9/)
    const f = await cli(['flush', '--yes', '--config', s.config], {netns: ns.name})
    assert.equal(f.exitCode, 0, f.stderr)
    assert.equal(await snapshot(ns), '# iptables\n# ip6tables\n# ipset\n# nft')
    assert.match(await out(ns, 'iptables-save', ['-t', 'filter']), /-A INPUT -s 10\.99\.0\.1\/32 -p tcp -m tcp --dport 22 -j ACCEPT/)
    assert.match(await out(ns, 'ipset', ['list', '-n']), /other-tool/)
    assert.match(await out(ns, 'nft', ['list', 'tables']), /table inet othertool/)
  })
}

test('switching backend leaves nothing of the old one behind', async (t) => {
  if (!requireRoot(t)) return
  const {ns, s, log2} = await start(t, {backend: 'iptables'})
  for (const [i, backend] of (['ipset', 'nftables', 'iptables', 'nftables', 'ipset'] as const).entries()) {
    configure(s, log2, {backend})
    const r = await cli(['hacks', '--verbose', '--config', s.config], {netns: ns.name, env: nowEnv(4 + i)})
    assert.equal(r.exitCode, 0, r.stderr)
    assert.match(r.stdout, /drift: firewall changed from \w+ \(rcguard\) to \w+ \(rcguard\): old objects removed/)
    assert.equal(normaliseDigests(await snapshot(ns)), GOLDEN[backend].trimEnd(), `after switching to ${backend}`)
  }
})

test('REJECT, ports: all, IPv6 /64 aggregation and the DOCKER-USER chain', async (t) => {
  if (!requireRoot(t)) return
  const ns = await netns(t)
  assert.equal((await ns.run('iptables', ['-w', '-N', 'DOCKER-USER'])).exitCode, 0)
  const {s} = await (async () => {
    const st = setup(t)
    const log2 = join(st.dir, 'webmail2.log')
    writeFileSync(log2, '')
    configure(st, log2, {backend: 'iptables', action: 'REJECT', chains: ['INPUT', 'DOCKER-USER'], ipv6Prefix: 64}, 'all')
    appendLines(st.log, [...burst(at(0), '203.0.113.7', 6), ...burst(at(0), '2001:db8:0:1::bad', 6)])
    appendLines(log2, burst(at(0), '198.18.5.5', 6))
    const r = await cli(['hacks', '--config', st.config], {netns: ns.name, env: nowEnv(3)})
    assert.equal(r.exitCode, 0, r.stderr)
    return {s: st}
  })()
  assert.equal(
    await snapshot(ns),
    `# iptables
:rcguard-master - [0:0]
:rcguard-webmail2 - [0:0]
-A INPUT -m comment --comment "managed by rcguard" -j rcguard-webmail2
-A INPUT -p tcp -m multiport --dports 80,443 -m comment --comment "managed by rcguard" -j rcguard-master
-A DOCKER-USER -m comment --comment "managed by rcguard" -j rcguard-webmail2
-A DOCKER-USER -p tcp -m conntrack --ctorigdstport 443 --ctdir ORIGINAL -m comment --comment "managed by rcguard" -j rcguard-master
-A DOCKER-USER -p tcp -m conntrack --ctorigdstport 80 --ctdir ORIGINAL -m comment --comment "managed by rcguard" -j rcguard-master
-A rcguard-master -m comment --comment "managed by rcguard"
-A rcguard-master -s 203.0.113.7/32 -j REJECT --reject-with icmp-port-unreachable
-A rcguard-webmail2 -m comment --comment "managed by rcguard"
-A rcguard-webmail2 -s 198.18.5.5/32 -j REJECT --reject-with icmp-port-unreachable
# ip6tables
:rcguard-master - [0:0]
:rcguard-webmail2 - [0:0]
-A INPUT -m comment --comment "managed by rcguard" -j rcguard-webmail2
-A INPUT -p tcp -m multiport --dports 80,443 -m comment --comment "managed by rcguard" -j rcguard-master
-A rcguard-master -m comment --comment "managed by rcguard"
-A rcguard-master -s 2001:db8:0:1::/64 -j REJECT --reject-with icmp6-port-unreachable
-A rcguard-webmail2 -m comment --comment "managed by rcguard"
# ipset
# nft
`.trimEnd(),
  )
  void s
})

test('a missing DOCKER-USER chain is one clear line, exit 5, and the database is still saved', async (t) => {
  if (!requireRoot(t)) return
  const ns = await netns(t)
  const s = setup(t)
  writeFileSync(s.config, JSON.stringify({database: s.db, instances: [{name: 'master', logs: [s.log], ports: [443]}], firewall: {backend: 'iptables', chains: ['DOCKER-USER']}}))
  appendLines(s.log, burst(at(0), '203.0.113.9', 6))
  const r = await cli(['hacks', '--config', s.config], {netns: ns.name, env: nowEnv(3)})
  assert.equal(r.exitCode, 5)
  assert.match(r.stderr, /chain DOCKER-USER does not exist: is Docker running\?/)
  assert.match(r.stderr, /the database was saved and the next "rcguard hacks" run retries/)
  const list = await cli(['list', '--json', '--config', s.config], {env: nowEnv(3)})
  assert.match(list.stdout, /203\.0\.113\.9/)
})

test('nftables: widened IPv6 networks make an interval set; REJECT on the input hook; a rerun changes nothing', async (t) => {
  if (!requireRoot(t)) return
  const ns = await netns(t)
  const s = setup(t)
  writeFileSync(s.config, JSON.stringify({database: s.db, instances: [{name: 'master', logs: [s.log], ports: [443]}], firewall: {backend: 'nftables', action: 'REJECT', ipv6Prefix: 64}}))
  appendLines(s.log, [...burst(at(0), '2001:db8:0:1::bad', 6), ...burst(at(0), '203.0.113.7', 6)])
  const r = await cli(['hacks', '--config', s.config], {netns: ns.name, env: nowEnv(3)})
  assert.equal(r.exitCode, 0, r.stderr)
  const table = normaliseDigests(await out(ns, 'nft', ['list', 'table', 'inet', 'rcguard']))
  assert.match(table, /set master_v6 \{\n\t\ttype ipv6_addr\n\t\tflags interval\n\t\telements = \{ 2001:db8:0:1::\/64 \}/)
  assert.match(table, /set master_v4 \{\n\t\ttype ipv4_addr\n\t\telements = \{ 203\.0\.113\.7 \}/)
  assert.match(table, /tcp dport 443 ip6 saddr @master_v6 reject with icmpv6 port-unreachable comment/)
  const again = await cli(['hacks', '--verbose', '--config', s.config], {netns: ns.name, env: nowEnv(4)})
  assert.match(again.stdout, /firewall already as wanted: nothing applied/)
})

test('nftables check cache: an unchanged generation lists nothing; any change, even one element, is seen and repaired', async (t) => {
  if (!requireRoot(t)) return
  const {ns, s} = await start(t, {backend: 'nftables'})
  const wanted = await snapshot(ns)
  let minute = 4
  const run = async () => {
    const r = await cli(['hacks', '--verbose', '--config', s.config], {netns: ns.name, env: nowEnv(minute++)})
    assert.equal(r.exitCode, 0, r.stderr)
    return r.stdout
  }
  const skipped = /^firewall: nf_tables generation \d+ unchanged since the table was last seen as wanted: its elements were not listed again$/m

  // The first run applied the table and remembered the generation its own commit made.
  let o = await run()
  assert.match(o, skipped)
  assert.doesNotMatch(o, /ran: nft -j list table/)
  assert.match(o, /firewall already as wanted: nothing applied/)

  // One foreign element, nothing else touched.
  await ns.run('nft', ['add', 'element', 'inet', 'rcguard', 'master_v4', '{ 192.0.2.250 }'])
  o = await run()
  assert.match(o, /^drift: set master_v4 differs \(0 to add, 1 to remove\)$/m)
  assert.equal(await snapshot(ns), wanted)

  // One wanted element deleted.
  await ns.run('nft', ['delete', 'element', 'inet', 'rcguard', 'master_v6', '{ 2001:db8::bad }'])
  o = await run()
  assert.match(o, /^drift: set master_v6 differs \(1 to add, 0 to remove\)$/m)
  assert.equal(await snapshot(ns), wanted)
  assert.match(await run(), skipped)

  // Someone else's commit elsewhere: listed again, nothing to repair, then quiet again.
  await ns.run('nft', ['add', 'table', 'inet', 'othertool'])
  o = await run()
  assert.doesNotMatch(o, skipped)
  assert.match(o, /ran: nft -j list table inet rcguard/)
  assert.doesNotMatch(o, /^drift:/m)
  assert.match(await run(), skipped)

  // A new block changes the wanted table: replaced whole, without listing what the generation vouches for.
  appendLines(s.log, burst(at(minute), '203.0.113.77', 6))
  o = await run()
  assert.match(o, /blocked 203\.0\.113\.77/)
  assert.match(o, /^drift: set master_v4: the wanted elements changed$/m)
  assert.match(o, /^firewall: nf_tables generation \d+ unchanged since the table was last seen: replaced without listing its elements$/m)
  assert.match(o, /ran: nft -f -/)
  assert.doesNotMatch(o, /ran: nft -j list table/)
  assert.match(await out(ns, 'nft', ['list', 'set', 'inet', 'rcguard', 'master_v4']), /203\.0\.113\.77/)
  assert.match(await run(), skipped)

  // A damaged cache file is only a missed shortcut.
  writeFileSync(`${s.db}.fwcheck`, '{not json')
  o = await run()
  assert.doesNotMatch(o, skipped)
  assert.doesNotMatch(o, /^drift:/m)
  assert.match(await run(), skipped)

  // The same database and cache in a new namespace (a recreated container), even with a token that
  // happens to match there (an inode reused, the generation at the same count): the missing table is seen.
  const ns2 = await netns(t)
  const cached = JSON.parse(readFileSync(`${s.db}.fwcheck`, 'utf8')) as {token: string; digest: string}
  const genid = (await ns2.run('perl', ['-'], GETGEN)).stdout.trim()
  const inode = (await ns2.run('stat', ['-L', '-c', '%i', '/proc/self/ns/net'])).stdout.trim()
  assert.match(genid, /^\d+$/)
  writeFileSync(`${s.db}.fwcheck`, JSON.stringify({token: `${cached.token.split('/')[0]}/${inode}/${genid}`, digest: cached.digest}))
  const r = await cli(['hacks', '--verbose', '--config', s.config], {netns: ns2.name, env: nowEnv(minute++)})
  assert.equal(r.exitCode, 0, r.stderr)
  assert.match(r.stdout, /^drift: table inet rcguard is missing$/m)
  assert.match(await out(ns2, 'nft', ['list', 'set', 'inet', 'rcguard', 'master_v4']), /203\.0\.113\.77/)
})
