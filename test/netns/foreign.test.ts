/**
 * Firewall objects that bear rcguard's names but are not rcguard's, against
 * the real nft, ipset and iptables, each test in a network namespace of its
 * own: a same-named nft table (Debian's `inet filter`, and tables of other
 * families), ipset sets of another type (used by a rule and by none, and at
 * the name of the temporary swap set), iptables chains with rcguard's prefix
 * (at a name rcguard needs and at another, used by a rule), and rcguard's own
 * objects held by someone else's rule. The tools' own listings show the
 * foreign objects unchanged after hacks and flush; refusals are one line,
 * exit 5, naming the object, why and the fix, and promise no retry. An
 * upgrade from objects rcguard made before it marked them adopts them, once.
 * Skips without root (and fails under CI=true).
 */
import {test, type TestContext} from 'node:test'
import assert from 'node:assert/strict'
import {createHash, createHmac} from 'node:crypto'
import {readFileSync, writeFileSync} from 'node:fs'
import {appendLines, burst, cli, netns, oneLine, requireRoot, setup, stripSaveComments, type CliResult, type Setup, at, nowEnv} from '../helpers/env.js'

type Ns = Awaited<ReturnType<typeof netns>>
type Backend = 'iptables' | 'ipset' | 'nftables'

const MARK = 'managed by rcguard'

/**
 * The initval rcguard gives an ipset set, computed here on its own (not imported): sets made by one
 * release must still be recognised by the next, so the derivation may never change unnoticed.
 */
function seedOf(name: string): string {
  const id = readFileSync('/etc/machine-id', 'utf8').trim()
  const n = createHmac('sha256', `rcguard ipset initval ${id}`).update(name).digest().readUInt32BE(0) || 1
  return `0x${n.toString(16).padStart(8, '0')}`
}
const ATTACKER = '203.0.113.7'

async function run(ns: Ns, cmd: string, args: string[], input?: string): Promise<string> {
  const r = await ns.run(cmd, args, input)
  assert.equal(r.exitCode, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`)
  return r.stdout
}

/** Everything the three tools list in the namespace (iptables-save without its timestamp lines). */
async function world(ns: Ns): Promise<string> {
  return [
    stripSaveComments(await run(ns, 'iptables-save', [])),
    stripSaveComments(await run(ns, 'ip6tables-save', [])),
    await run(ns, 'ipset', ['save']),
    await run(ns, 'nft', ['list', 'ruleset']),
  ].join('\n# ---\n')
}

function configure(s: Setup, firewall: Record<string, unknown>, instances: {name: string; ports: number[]}[] = [{name: 'master', ports: [80, 443]}]): void {
  writeFileSync(s.config, JSON.stringify({database: s.db, instances: instances.map((i) => ({...i, logs: [s.log]})), firewall}))
}

/** A namespace and a configuration with ATTACKER's six failures in the log, not yet run. */
async function prepare(t: TestContext, firewall: Record<string, unknown>): Promise<{ns: Ns; s: Setup}> {
  const ns = await netns(t)
  const s = setup(t)
  configure(s, firewall)
  appendLines(s.log, burst(at(0), ATTACKER, 6))
  return {ns, s}
}

async function hacks(ns: Ns, s: Setup, minute: number, verbose = false): Promise<CliResult> {
  return cli(['hacks', ...(verbose ? ['--verbose'] : []), '--config', s.config], {netns: ns.name, env: nowEnv(minute)})
}

/** A refusal: exit 5, one line naming what and why, with the fix, and no promise that a retry helps. */
function refused(r: CliResult, ...patterns: RegExp[]): string {
  assert.equal(r.exitCode, 5, `${r.stdout}${r.stderr}`)
  const line = oneLine(r, 'refusal', /^rcguard: /, /: refused, nothing was changed; /, ...patterns)
  assert.doesNotMatch(line, /retries/, 'no retry is promised for what only the admin can resolve')
  return line
}

/** The database still recorded the block (a firewall refusal never loses one). */
async function stillBlocked(s: Setup): Promise<void> {
  const r = await cli(['list', '--json', '--state', 'blocked', '--config', s.config], {env: nowEnv(5)})
  assert.equal(r.exitCode, 0, r.stderr)
  assert.match(r.stdout, new RegExp(ATTACKER.replace(/\./g, '\\.')))
}

const DEBIAN_NFT = `table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		iif "lo" accept
		tcp dport 22 accept
	}

	chain forward {
		type filter hook forward priority filter; policy drop;
	}

	chain output {
		type filter hook output priority filter; policy accept;
	}
}
table ip filter {
	chain input {
		type filter hook input priority filter; policy accept;
		ip saddr 10.0.0.0/8 counter packets 0 bytes 0 accept
	}
}
`

test('nftables, firewall.prefix filter: Debian\'s own inet filter table is refused, not replaced; flush leaves it; tables of other families are untouched', async (t) => {
  if (!requireRoot(t)) return
  const {ns, s} = await prepare(t, {backend: 'nftables', prefix: 'filter'})
  await run(ns, 'nft', ['-f', '-'], DEBIAN_NFT)
  const before = await world(ns)
  for (const minute of [3, 4]) {
    const r = await hacks(ns, s, minute)
    refused(r, /^rcguard: table inet filter is not rcguard's \(it has no comment "managed by rcguard"\)/, /choose another firewall\.prefix/)
    assert.doesNotMatch(r.stdout, /firewall rules corrected/)
    assert.equal(await world(ns), before, 'every table exactly as it was')
  }
  await stillBlocked(s)
  const f = await cli(['flush', '--yes', '--config', s.config], {netns: ns.name})
  assert.equal(f.exitCode, 0, f.stderr)
  oneLine(f, 'flush', /^rcguard: warning: table inet filter left alone: it is not rcguard's/)
  assert.equal(await world(ns), before, 'flush deleted no table')
  // Another prefix works beside Debian's table, which stays as it was.
  configure(s, {backend: 'nftables', prefix: 'rcguard'})
  appendLines(s.log, burst(at(6), ATTACKER, 6))
  const ok = await hacks(ns, s, 9)
  assert.equal(ok.exitCode, 0, ok.stderr)
  assert.match(await run(ns, 'nft', ['list', 'table', 'inet', 'rcguard']), /comment "managed by rcguard"/)
  assert.equal(await run(ns, 'nft', ['list', 'table', 'inet', 'filter']), before.match(/^table inet filter \{[\s\S]*?^\}$/m)?.[0])
})

/** The table rcguard made before it marked it: the same declaration, without the comment. */
function oldNftTable(elements: string[]): string {
  const rules = ['tcp dport { 80, 443 } ip saddr @master_v4 drop', 'tcp dport { 80, 443 } ip6 saddr @master_v6 drop']
  const digest = (r: string) => createHash('sha256').update(r).digest('hex').slice(0, 12)
  return `table inet rcguard {
  set master_v4 {
    type ipv4_addr
${elements.length > 0 ? `    elements = { ${elements.join(', ')} }\n` : ''}  }
  set master_v6 {
    type ipv6_addr
  }
  chain input {
    type filter hook input priority -10; policy accept;
${rules.map((r) => `    ${r} comment "rcguard ${digest(r)}"`).join('\n')}
  }
}
`
}

test('nftables: a look-alike of rcguard\'s table (its exact shape, no mark) is refused when the database does not record rcguard\'s table', async (t) => {
  if (!requireRoot(t)) return
  const {ns, s} = await prepare(t, {backend: 'nftables'})
  await run(ns, 'nft', ['-f', '-'], oldNftTable(['192.0.2.1']))
  await run(ns, 'nft', ['add', 'table', 'ip', 'rcguard'])
  const before = await world(ns)
  refused(await hacks(ns, s, 3), /^rcguard: table inet rcguard is not rcguard's/)
  assert.equal(await world(ns), before)
})

/** Objects exactly as rcguard made them before it marked them, holding ATTACKER's block. */
async function installOld(ns: Ns, backend: Backend): Promise<void> {
  if (backend === 'nftables') {
    await run(ns, 'nft', ['-f', '-'], oldNftTable([ATTACKER]))
  } else if (backend === 'iptables') {
    await run(ns, 'iptables-restore', ['--noflush'], `*filter\n:rcguard-master - [0:0]\n-A rcguard-master -s ${ATTACKER}/32 -j DROP\n-A INPUT -p tcp -m multiport --dports 80,443 -j rcguard-master\nCOMMIT\n`)
    await run(ns, 'ip6tables-restore', ['--noflush'], '*filter\n:rcguard-master - [0:0]\n-A INPUT -p tcp -m multiport --dports 80,443 -j rcguard-master\nCOMMIT\n')
  } else {
    await run(ns, 'ipset', ['restore'], `create rcguard-master-4 hash:net family inet hashsize 1024 maxelem 65536\nadd rcguard-master-4 ${ATTACKER}\ncreate rcguard-master-6 hash:net family inet6 hashsize 1024 maxelem 65536\n`)
    for (const [tool, fam] of [['iptables-restore', 4], ['ip6tables-restore', 6]] as const) {
      await run(ns, tool, ['--noflush'], `*filter\n-A INPUT -p tcp -m multiport --dports 80,443 -m set --match-set rcguard-master-${fam} src -j DROP\nCOMMIT\n`)
    }
  }
}

/** Whether every object of rcguard's in the namespace carries its mark, and ATTACKER is blocked. */
async function assertMarked(ns: Ns, backend: Backend): Promise<void> {
  if (backend === 'nftables') {
    const table = await run(ns, 'nft', ['list', 'table', 'inet', 'rcguard'])
    assert.match(table, /^\tcomment "managed by rcguard"$/m, table)
    assert.match(table, new RegExp(`elements = \\{ ${ATTACKER.replace(/\./g, '\\.')} \\}`))
    return
  }
  for (const tool of ['iptables-save', 'ip6tables-save']) {
    const save = stripSaveComments(await run(ns, tool, ['-t', 'filter']))
    const hooks = save.split('\n').filter((l) => l.startsWith('-A INPUT') && l.includes('rcguard-master'))
    assert.equal(hooks.length, 1, save)
    assert.match(hooks[0] ?? '', / -m comment --comment "managed by rcguard" -j /)
    if (backend === 'iptables') assert.match(save, /^-A rcguard-master -m comment --comment "managed by rcguard"\n/m, save)
  }
  if (backend === 'iptables') assert.match(await run(ns, 'iptables', ['-S', 'rcguard-master']), new RegExp(`-s ${ATTACKER.replace(/\./g, '\\.')}/32 -j DROP`))
  if (backend === 'ipset') {
    const saved = await run(ns, 'ipset', ['save'])
    for (const set of ['rcguard-master-4', 'rcguard-master-6']) assert.match(saved, new RegExp(`^create ${set} hash:net .* initval ${seedOf(set)}$`, 'm'), saved)
    assert.match(saved, new RegExp(`^add rcguard-master-4 ${ATTACKER.replace(/\./g, '\\.')}$`, 'm'))
    assert.doesNotMatch(saved, /^create rcguard-master-[46][tuvw] hash:net /m, 'no temporary set of rcguard\'s left')
  }
}

for (const backend of ['nftables', 'iptables', 'ipset'] as const) {
  test(`${backend}: an upgrade adopts the objects rcguard made before it marked them, once; a later look-alike is refused`, async (t) => {
    if (!requireRoot(t)) return
    const {ns, s} = await prepare(t, {backend: 'none'})
    // The database of a run before the upgrade: the block, and the record of the backend rcguard applied.
    assert.equal((await hacks(ns, s, 3)).exitCode, 0)
    const db = JSON.parse(readFileSync(s.db, 'utf8')) as {firewall?: unknown}
    db.firewall = {backend, prefix: 'rcguard'}
    writeFileSync(s.db, JSON.stringify(db))
    await installOld(ns, backend)
    await run(ns, 'nft', ['add', 'table', 'ip', 'rcguard'])
    configure(s, {backend})

    const r = await hacks(ns, s, 4, true)
    assert.equal(r.exitCode, 0, r.stderr)
    assert.match(r.stdout, /^drift: .*(adopted and marked|its mark is missing)/m)
    await assertMarked(ns, backend)
    assert.deepEqual((JSON.parse(readFileSync(s.db, 'utf8')) as {firewall?: unknown}).firewall, {backend, prefix: 'rcguard', marked: true})
    const again = await hacks(ns, s, 5, true)
    assert.equal(again.exitCode, 0, again.stderr)
    assert.match(again.stdout, /firewall already as wanted: nothing applied/)

    // Now that rcguard's objects are marked, an unmarked object of the same shape is someone else's.
    if (backend === 'nftables') {
      await run(ns, 'nft', ['delete', 'table', 'inet', 'rcguard'])
    } else {
      const f = await cli(['flush', '--yes', '--config', s.config], {netns: ns.name})
      assert.equal(f.exitCode, 0, f.stderr)
      assert.equal(f.stderr, '')
      appendLines(s.log, burst(at(6), ATTACKER, 6))
    }
    await installOld(ns, backend)
    const before = await world(ns)
    refused(await hacks(ns, s, 9), backend === 'iptables' ? /^rcguard: IPv4: chain rcguard-master is not rcguard's/ : backend === 'ipset' ? /^rcguard: ipset set rcguard-master-4 is not rcguard's \(its initval 0x[0-9a-f]{8} is not rcguard's mark/ : /^rcguard: table inet rcguard is not rcguard's/)
    assert.equal(await world(ns), before)
    assert.match(await run(ns, 'nft', ['list', 'tables']), /^table ip rcguard$/m, 'the ip table of that name was never touched')
  })
}

test('ipset: a set of another type with rcguard\'s name, used by someone\'s rule: refused naming the rule; nothing changes; once it is gone the run converges', async (t) => {
  if (!requireRoot(t)) return
  const {ns, s} = await prepare(t, {backend: 'ipset'})
  await run(ns, 'ipset', ['create', 'rcguard-master-4', 'hash:ip'])
  await run(ns, 'ipset', ['add', 'rcguard-master-4', '10.1.1.1'])
  await run(ns, 'iptables', ['-w', '-A', 'INPUT', '-m', 'set', '--match-set', 'rcguard-master-4', 'src', '-j', 'ACCEPT'])
  const before = await world(ns)
  for (const minute of [3, 4]) {
    refused(
      await hacks(ns, s, minute),
      /^rcguard: ipset set rcguard-master-4 is not rcguard's \(it is a hash:ip set; rcguard makes hash:net; the rule "-A INPUT -m set --match-set rcguard-master-4 src -j ACCEPT" uses it\)/,
      /choose another firewall\.prefix, or destroy or rename that set/,
    )
    assert.equal(await world(ns), before)
  }
  await stillBlocked(s)
  const f = await cli(['flush', '--yes', '--config', s.config], {netns: ns.name})
  assert.equal(f.exitCode, 0, f.stderr)
  assert.equal(await world(ns), before, 'flush destroyed no set and deleted no rule')
  // The admin removes the rule and the set: the next run converges.
  await run(ns, 'iptables', ['-w', '-D', 'INPUT', '-m', 'set', '--match-set', 'rcguard-master-4', 'src', '-j', 'ACCEPT'])
  await run(ns, 'ipset', ['destroy', 'rcguard-master-4'])
  appendLines(s.log, burst(at(6), ATTACKER, 6))
  const r = await hacks(ns, s, 9)
  assert.equal(r.exitCode, 0, r.stderr)
  await assertMarked(ns, 'ipset')
})

test('ipset: sets with rcguard\'s prefix that are someone else\'s, used by no rule, are never destroyed: one at a wanted name refuses, one at the temporary set\'s name is stepped around, another is left alone', async (t) => {
  if (!requireRoot(t)) return
  const {ns, s} = await prepare(t, {backend: 'ipset'})
  await run(ns, 'ipset', ['create', 'rcguard-master-6', 'hash:ip', 'family', 'inet6'])
  const before = await world(ns)
  refused(await hacks(ns, s, 3), /^rcguard: ipset set rcguard-master-6 is not rcguard's \(it is a hash:ip set; rcguard makes hash:net\)/)
  assert.equal(await world(ns), before)
  await run(ns, 'ipset', ['destroy', 'rcguard-master-6'])

  // A set of another type at the temporary set's name, and one at a name rcguard does not use.
  await run(ns, 'ipset', ['create', 'rcguard-master-4t', 'hash:ip'])
  await run(ns, 'ipset', ['add', 'rcguard-master-4t', '10.2.2.2'])
  await run(ns, 'ipset', ['create', 'rcguard-whitelist', 'hash:net'])
  await run(ns, 'ipset', ['add', 'rcguard-whitelist', '10.3.0.0/16'])
  const foreign = async () => `${await run(ns, 'ipset', ['save', 'rcguard-master-4t'])}${await run(ns, 'ipset', ['save', 'rcguard-whitelist'])}`
  const theirs = await foreign()
  for (const minute of [4, 5]) {
    const r = await hacks(ns, s, minute, true)
    assert.equal(r.exitCode, 0, r.stderr)
    assert.match(r.stdout, /^firewall: ipset set rcguard-whitelist left alone: it is not rcguard's \(rcguard makes no set of that name\)$/m)
    assert.equal(await foreign(), theirs)
  }
  await assertMarked(ns, 'ipset')
  const f = await cli(['flush', '--yes', '--config', s.config], {netns: ns.name})
  assert.equal(f.exitCode, 0, f.stderr)
  assert.match(f.stderr, /^rcguard: warning: ipset set rcguard-whitelist left alone/m)
  assert.equal(await foreign(), theirs)
  assert.deepEqual((await run(ns, 'ipset', ['list', '-n'])).trim().split('\n').sort(), ['rcguard-master-4t', 'rcguard-whitelist'])
})

test('ipset: rcguard\'s own set, no longer wanted but used by someone else\'s rule, is emptied and kept with a line naming that rule; it goes once the rule does', async (t) => {
  if (!requireRoot(t)) return
  const ns = await netns(t)
  const s = setup(t)
  configure(s, {backend: 'ipset'}, [{name: 'master', ports: [80, 443]}, {name: 'old', ports: [8443]}])
  appendLines(s.log, burst(at(0), ATTACKER, 6))
  assert.equal((await hacks(ns, s, 3)).exitCode, 0)
  await run(ns, 'ipset', ['add', 'rcguard-old-4', '192.0.2.9'])
  const rule = ['INPUT', '-p', 'udp', '-m', 'set', '--match-set', 'rcguard-old-4', 'src', '-j', 'LOG']
  await run(ns, 'iptables', ['-w', '-A', ...rule])
  configure(s, {backend: 'ipset'})
  for (const minute of [4, 5]) {
    const r = await hacks(ns, s, minute)
    assert.equal(r.exitCode, 5, r.stderr)
    const line = oneLine(r, 'held set', /^rcguard: ipset set rcguard-old-4 is no longer wanted, but the rule "-A INPUT -p udp -m set --match-set rcguard-old-4 src -j LOG", which is not rcguard's, uses it: rcguard emptied the set and keeps it; delete that rule/)
    assert.doesNotMatch(line, /retries/)
    assert.equal((await run(ns, 'ipset', ['list', 'rcguard-old-4'])).match(/^Number of entries: (\d+)$/m)?.[1], '0')
    assert.match(await run(ns, 'iptables', ['-S', 'INPUT']), /-A INPUT -p udp -m set --match-set rcguard-old-4 src -j LOG/, 'the foreign rule stays')
    assert.doesNotMatch(await run(ns, 'ipset', ['list', '-n']), /rcguard-old-6/, 'the set nobody holds went')
  }
  await assertMarked(ns, 'ipset')
  await run(ns, 'iptables', ['-w', '-D', ...rule])
  const r = await hacks(ns, s, 6)
  assert.equal(r.exitCode, 0, r.stderr)
  assert.doesNotMatch(await run(ns, 'ipset', ['list', '-n']), /rcguard-old/)
})

test('iptables: a chain named as rcguard\'s instance chain, made by someone else and jumped to by their rule, is refused; nothing changes; flush leaves it', async (t) => {
  if (!requireRoot(t)) return
  const {ns, s} = await prepare(t, {backend: 'iptables'})
  await run(ns, 'iptables', ['-w', '-N', 'rcguard-master'])
  await run(ns, 'iptables', ['-w', '-A', 'rcguard-master', '-s', '10.0.0.0/8', '-j', 'ACCEPT'])
  await run(ns, 'iptables', ['-w', '-A', 'INPUT', '-j', 'rcguard-master'])
  const before = await world(ns)
  for (const minute of [3, 4]) {
    refused(
      await hacks(ns, s, minute),
      /^rcguard: IPv4: chain rcguard-master is not rcguard's \(its first rule is not rcguard's mark, -m comment --comment "managed by rcguard"; the rule "-A INPUT -j rcguard-master" uses it\)/,
      /choose another firewall\.prefix, or rename or delete that chain/,
    )
    assert.equal(await world(ns), before)
  }
  await stillBlocked(s)
  const f = await cli(['flush', '--yes', '--config', s.config], {netns: ns.name})
  assert.equal(f.exitCode, 0, f.stderr)
  oneLine(f, 'flush', /^rcguard: warning: IPv4: chain rcguard-master left alone: it is not rcguard's/)
  assert.equal(await world(ns), before)
})

test('iptables: a chain with rcguard\'s prefix that rcguard does not use, someone else\'s and jumped to, is left alone and the run converges', async (t) => {
  if (!requireRoot(t)) return
  const {ns, s} = await prepare(t, {backend: 'iptables'})
  await run(ns, 'iptables', ['-w', '-N', 'rcguard-extra'])
  await run(ns, 'iptables', ['-w', '-A', 'rcguard-extra', '-s', '10.0.0.0/8', '-j', 'ACCEPT'])
  await run(ns, 'iptables', ['-w', '-A', 'INPUT', '-p', 'udp', '-j', 'rcguard-extra'])
  await run(ns, 'ip6tables', ['-w', '-N', 'rcguard-empty'])
  const theirs = async () =>
    `${await run(ns, 'iptables', ['-S', 'rcguard-extra'])}${(await run(ns, 'iptables', ['-S', 'INPUT'])).split('\n').filter((l) => !l.includes(MARK)).join('\n')}${await run(ns, 'ip6tables', ['-S', 'rcguard-empty'])}`
  const before = await theirs()
  for (const minute of [3, 4]) {
    const r = await hacks(ns, s, minute, true)
    assert.equal(r.exitCode, 0, r.stderr)
    assert.match(r.stdout, /^firewall: IPv4: chain rcguard-extra left alone: it is not rcguard's/m)
    assert.match(r.stdout, /^firewall: IPv6: chain rcguard-empty left alone: it is not rcguard's \(it is empty, without rcguard's mark/m)
    assert.equal(await theirs(), before)
  }
  await assertMarked(ns, 'iptables')
  const f = await cli(['flush', '--yes', '--config', s.config], {netns: ns.name})
  assert.equal(f.exitCode, 0, f.stderr)
  assert.equal(await theirs(), before)
  assert.doesNotMatch(stripSaveComments(await run(ns, 'iptables-save', [])), /managed by rcguard|rcguard-master/)
})

test('iptables: rcguard\'s own chain, no longer wanted but jumped to by someone else\'s rule, is emptied and kept with a line naming that rule; it goes once the rule does', async (t) => {
  if (!requireRoot(t)) return
  const ns = await netns(t)
  const s = setup(t)
  configure(s, {backend: 'iptables'}, [{name: 'master', ports: [80, 443]}, {name: 'old', ports: [8443]}])
  appendLines(s.log, burst(at(0), ATTACKER, 6))
  assert.equal((await hacks(ns, s, 3)).exitCode, 0)
  await run(ns, 'iptables', ['-w', '-A', 'rcguard-old', '-s', '192.0.2.9/32', '-j', 'DROP'])
  await run(ns, 'iptables', ['-w', '-A', 'FORWARD', '-j', 'rcguard-old'])
  configure(s, {backend: 'iptables'})
  for (const minute of [4, 5]) {
    const r = await hacks(ns, s, minute)
    assert.equal(r.exitCode, 5, r.stderr)
    const line = oneLine(r, 'held chain', /^rcguard: IPv4: chain rcguard-old is no longer wanted, but the rule "-A FORWARD -j rcguard-old", which is not rcguard's, jumps to it: rcguard emptied the chain and keeps it; delete that rule/)
    assert.doesNotMatch(line, /retries/)
    assert.equal(await run(ns, 'iptables', ['-S', 'rcguard-old']), `-N rcguard-old\n-A rcguard-old -m comment --comment "${MARK}"`)
    assert.match(await run(ns, 'iptables', ['-S', 'FORWARD']), /^-A FORWARD -j rcguard-old$/m, 'the foreign rule stays')
    assert.doesNotMatch(await run(ns, 'ip6tables', ['-S']), /rcguard-old/, 'the IPv6 chain nobody holds went')
  }
  await assertMarked(ns, 'iptables')
  await run(ns, 'iptables', ['-w', '-D', 'FORWARD', '-j', 'rcguard-old'])
  const r = await hacks(ns, s, 6)
  assert.equal(r.exitCode, 0, r.stderr)
  assert.doesNotMatch(await run(ns, 'iptables', ['-S']), /rcguard-old/)
})
