/**
 * The shadowing check (firewall/shadow.ts) over listings the real tools
 * printed (test/fixtures/shadow: iptables-save and ip6tables-save of
 * iptables 1.8.9 (nf_tables), `nft -j -t list ruleset` of nft 1.0.6): which
 * foreign rules take a blocked address's packets past rcguard's, which do
 * not, and what the warnings and notes say.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {parseSave} from '../../src/core/firewall/iptables.js'
import {iptablesShadows, isWarning, nftShadows, ruleWords, shadowReport, type OwnHookRule, type Shadow} from '../../src/core/firewall/shadow.js'
import type {InstanceRules} from '../../src/core/firewall/backend.js'
import {ROOT} from '../helpers/env.js'

const fixture = (name: string) => readFileSync(join(ROOT, 'test', 'fixtures', 'shadow', name), 'utf8')
const isOurs = (rule: string) => / -j rcguard-/.test(rule) || / --match-set rcguard-/.test(rule)

const master: InstanceRules = {name: 'master', ports: [80, 443], v4: ['198.51.100.7/32', '203.0.113.7/32'], v6: ['2001:db8:6:1::/64']}
const webmail2: InstanceRules = {name: 'webmail2', ports: [8443], v4: ['203.0.113.7/32'], v6: []}

/** The findings as short lines: kind, where the deciding rule is, instance, ports, what gets through. */
function brief(shadows: Shadow[]): string[] {
  return shadows.map((s) => {
    const last = s.path[s.path.length - 1]
    return `${s.family} ${s.kind} ${s.path.map((p) => p.where).join(' > ')} | ${s.instance} ${s.ports}${s.sources.length > 0 ? ` ${s.sources.join(' and ')}` : ''} | ${s.through === null ? '?' : s.through.join(',')}${last === undefined ? '' : ''}`
  })
}

test('iptables-save words: quoted comments with escaped quotes are one word', () => {
  assert.deepEqual(ruleWords('-A INPUT -p tcp -m comment --comment "the \\"proxy\\" range" -j ACCEPT'), ['-A', 'INPUT', '-p', 'tcp', '-m', 'comment', '--comment', 'the "proxy" range', '-j', 'ACCEPT'])
})

test('iptables: which rules above rcguard\'s hook rules let a blocked address past them, and which cannot', () => {
  const table = parseSave(fixture('iptables-input.save'))
  const hooks: OwnHookRule[] = [
    {instance: master, rule: '-A INPUT -p tcp -m multiport --dports 80,443 -j rcguard-master'},
    {instance: webmail2, rule: '-A INPUT -p tcp -m multiport --dports 8443 -j rcguard-webmail2'},
  ]
  assert.deepEqual(brief(iptablesShadows(table, 4, hooks, isOurs)), [
    // -i lo, --dport 22, udp, a local source, a loopback destination, fragments, icmp, LOG and a DROP for a network are not;
    // the port range 8000:9000 misses 80 and 443.
    '4 accept INPUT rule 11 | master tcp ports 80, 443 from 198.51.100.0/24 | 198.51.100.7/32',
    '4 accept INPUT rule 12 | master tcp ports 80, 443 from 192.0.2.1-192.0.2.9 | ',
    '4 established INPUT rule 13 | master tcp ports 80, 443 | 198.51.100.7/32,203.0.113.7/32',
    // The jump to fw-user, whose second rule accepts 443 (its first, port 22, does not).
    '4 accept INPUT rule 15 > fw-user rule 2 | master tcp port 443 | 198.51.100.7/32,203.0.113.7/32',
    '4 accept INPUT rule 10 | webmail2 tcp port 8443 | 203.0.113.7/32',
    '4 accept INPUT rule 11 | webmail2 tcp port 8443 from 198.51.100.0/24 | ',
    '4 accept INPUT rule 12 | webmail2 tcp port 8443 from 192.0.2.1-192.0.2.9 | ',
    '4 established INPUT rule 13 | webmail2 tcp port 8443 | 203.0.113.7/32',
  ])
})

test('iptables: a missing hook rule is put first by this run: nothing shadows it', () => {
  const table = parseSave(fixture('iptables-input.save'))
  assert.deepEqual(iptablesShadows(table, 4, [{instance: master, rule: '-A INPUT -p tcp -m multiport --dports 80,443,8080 -j rcguard-master'}], isOurs), [])
})

test('iptables: RETURN under policy DROP and in a chain jumped to are not bypasses; NFQUEUE and a foreign set are; DOCKER-USER is checked from FORWARD', () => {
  const table = parseSave(fixture('iptables-policy.save'))
  const hooks: OwnHookRule[] = [
    {instance: master, rule: '-A INPUT -p tcp -m multiport --dports 80,443 -m set --match-set rcguard-master-4 src -j DROP'},
    {instance: master, rule: '-A DOCKER-USER -p tcp -m conntrack --ctorigdstport 80 --ctdir ORIGINAL -m set --match-set rcguard-master-4 src -j DROP'},
    {instance: master, rule: '-A DOCKER-USER -p tcp -m conntrack --ctorigdstport 443 --ctdir ORIGINAL -m set --match-set rcguard-master-4 src -j DROP'},
  ]
  const found = iptablesShadows(table, 4, hooks, isOurs)
  assert.deepEqual(brief(found), [
    '4 queue INPUT rule 3 | master tcp ports 80, 443 | 198.51.100.7/32,203.0.113.7/32',
    '4 accept INPUT rule 4 | master tcp ports 80, 443 from set friends | ?',
    // The ACCEPT of port 80 in DOCKER-USER comes before rcguard's rule for 443, not for 80, and covers only 80.
  ])
  assert.equal(isWarning(found[1] as Shadow), false, 'a foreign set\'s members are unknown: a note, not a warning')

  // Without the jump from FORWARD, DOCKER-USER is never reached.
  table.rules.set('FORWARD', [])
  assert.deepEqual(brief(iptablesShadows(table, 4, hooks.slice(1, 2), isOurs)), ['4 unreached FORWARD | master tcp ports 80, 443 | 198.51.100.7/32,203.0.113.7/32'])
  // A RETURN above rcguard's rule in DOCKER-USER goes back to FORWARD.
  table.rules.set('FORWARD', ['-A FORWARD -p tcp -m tcp --dport 8080 -j ACCEPT', '-A FORWARD -j DOCKER-USER'])
  table.rules.set('DOCKER-USER', ['-A DOCKER-USER -j RETURN', ...(table.rules.get('DOCKER-USER') ?? [])])
  assert.deepEqual(brief(iptablesShadows(table, 4, hooks.slice(1, 2), isOurs)), [
    // In FORWARD, --dport is the port after Docker's DNAT: any guarded port may have become 8080.
    '4 accept FORWARD rule 1 | master tcp port 80 | 198.51.100.7/32,203.0.113.7/32',
    '4 return DOCKER-USER rule 1 | master tcp port 80 | 198.51.100.7/32,203.0.113.7/32',
  ])
})

test('iptables: an instance guarding every port is shadowed by other protocols too; a goto whose chain falls through applies the policy', () => {
  const table = parseSave(fixture('iptables-goto.save'))
  const all: InstanceRules = {name: 'all', ports: 'all', v4: ['203.0.113.9/32'], v6: []}
  assert.deepEqual(brief(iptablesShadows(table, 4, [{instance: all, rule: '-A INPUT -j rcguard-all'}], isOurs)), [
    '4 accept INPUT rule 1 | all port 53 | 203.0.113.9/32',
    '4 goto INPUT rule 2 | all port 25 | 203.0.113.9/32',
  ])
})

test('ip6tables: a source network holding a blocked /64, and a negated one, let it through; icmpv6 does not', () => {
  const table = parseSave(fixture('ip6tables-input.save'))
  const found = iptablesShadows(table, 6, [{instance: master, rule: '-A INPUT -p tcp -m multiport --dports 80,443 -j rcguard-master'}], isOurs)
  assert.deepEqual(brief(found), [
    '6 accept INPUT rule 2 | master tcp port 443 from 2001:db8:6::/48 | 2001:db8:6:1::/64',
    '6 accept INPUT rule 3 | master tcp ports 80, 443 outside 2001:db8:7::/48 | 2001:db8:6:1::/64',
  ])
  assert.ok(found.every(isWarning))
  assert.equal(found[0]?.tool, 'ip6tables')
})

const nftItems = (JSON.parse(fixture('nft-input.json')) as {nftables: unknown[]}).nftables
const nftMaster: InstanceRules = {name: 'master', ports: [80, 443], v4: ['198.51.100.7/32', '203.0.113.7/32'], v6: ['2001:db8::bad/128']}

test('nftables: foreign accepts never bypass rcguard\'s chain; rewrites before it do, unless to a guarded port', () => {
  const found = nftShadows(nftItems, {table: 'rcguard', chains: [{name: 'input', hook: 'input', priority: -10}]}, {instances: [nftMaster]})
  assert.deepEqual(brief(found), [
    // iptables-nft's DNAT (Docker publishing 443), reached from PREROUTING's jump to DOCKER.
    '4 forward chain PREROUTING in table ip nat (hook prerouting priority -100), handle 3 > chain DOCKER in table ip nat, handle 5 | master tcp port 443 | 198.51.100.7/32,203.0.113.7/32',
    // inet filter's accepts at priority -100: nothing. 443 redirected to 8443, for both families; 80 to 443 is still guarded; lo is not remote.
    '4 port chain pre in table inet proxy (hook prerouting priority -100), handle 5 | master tcp port 443 | 198.51.100.7/32,203.0.113.7/32',
    '6 port chain pre in table inet proxy (hook prerouting priority -100), handle 5 | master tcp port 443 | 2001:db8::bad/128',
    '4 port chain pre in table inet proxy (hook prerouting priority -100), handle 6 > chain more in table inet proxy, handle 7 | master tcp port 80 from 198.51.100.0/24 | 198.51.100.7/32',
    // ip raw4's udp rewrite is not tcp; its source rewrite is, for 203.0.113.0/24 only.
    '4 source chain early in table ip raw4 (hook prerouting priority -300), handle 3 | master tcp port 443 from 203.0.113.0/24 | 203.0.113.7/32',
    '6 port chain early6 in table ip6 mangle6 (hook prerouting priority -300), handle 2 | master tcp port 80 | 2001:db8::bad/128',
    // ip tonat's dnat of 8000-8100 misses the guarded ports.
  ])
  const report = shadowReport(found)
  assert.equal(report.warnings.length, 5, report.warnings.join('\n'))
  assert.ok(
    report.warnings.includes(
      'IPv4 and IPv6 (nftables): chain pre in table inet proxy (hook prerouting priority -100), handle 5 "redirect to :8443 (comment: to the proxy)" changes the destination of tcp port 443 to port 8443 before rcguard\'s chain input (hook input priority -10) sees the packets (instance master): blocked addresses get through (rcguard hacks --verbose says what to do)',
    ),
    report.warnings.join('\n'),
  )
  assert.ok(report.notes.includes("what to do: rcguard matches the port a packet has when its chain sees it: add port 8443 to instance master's ports, or remove the rewrite"))
})

test('nftables: with rcguard\'s prerouting chain (priority -150) first, destination NAT at -100 comes too late to matter; rewrites at -300 do not', () => {
  const own = {table: 'rcguard', chains: [{name: 'input', hook: 'input' as const, priority: -10}, {name: 'prerouting', hook: 'prerouting' as const, priority: -150}]}
  assert.deepEqual(brief(nftShadows(nftItems, own, {instances: [nftMaster]})), [
    '4 source chain early in table ip raw4 (hook prerouting priority -300), handle 3 | master tcp port 443 from 203.0.113.0/24 | 203.0.113.7/32',
    '6 port chain early6 in table ip6 mangle6 (hook prerouting priority -300), handle 2 | master tcp port 80 | 2001:db8::bad/128',
  ])
  // An instance guarding every port: a port rewrite changes nothing rcguard matches.
  const all: InstanceRules = {...nftMaster, ports: 'all'}
  assert.deepEqual(brief(nftShadows(nftItems, own, {instances: [all]})).map((l) => l.split(' | ')[0]), ['4 source chain early in table ip raw4 (hook prerouting priority -300), handle 3'])
})

test('reports: one warning per shadowing rule on every call, naming it; source-restricted ones without a blocked address inside are notes', () => {
  const table = parseSave(fixture('iptables-input.save'))
  const found = iptablesShadows(table, 4, [{instance: master, rule: '-A INPUT -p tcp -m multiport --dports 80,443 -j rcguard-master'}], isOurs)
  const {warnings, notes} = shadowReport(found)
  assert.deepEqual(warnings, [
    'IPv4 (iptables): INPUT rule 11 "-A INPUT -s 198.51.100.0/24 -p tcp -j ACCEPT" accepts tcp ports 80, 443 from 198.51.100.0/24 before rcguard\'s rules for master: 1 blocked network(s) there get through (198.51.100.7) (rcguard hacks --verbose says what to do)',
    'IPv4 (iptables): INPUT rule 13 "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT" accepts packets of connections already open (conntrack ESTABLISHED/RELATED) on tcp ports 80, 443 before rcguard\'s rules for master: a blocked address keeps the connections it has open, and one kept alive can go on trying passwords (rcguard hacks --verbose says what to do)',
    'IPv4 (iptables): INPUT rule 15 "-A INPUT ! -i lo -j fw-user" (through fw-user rule 2 "-A fw-user -p tcp -m tcp --dport 443 -j ACCEPT") accepts tcp port 443 before rcguard\'s rules for master: blocked addresses get through (rcguard hacks --verbose says what to do)',
  ])
  assert.ok(notes.includes('IPv4 (iptables): INPUT rule 12 "-A INPUT -m iprange --src-range 192.0.2.1-192.0.2.9 -j ACCEPT" accepts tcp ports 80, 443 from 192.0.2.1-192.0.2.9 before rcguard\'s rules for master: no blocked address is there now, but one blocked later would get through'), notes.join('\n'))
  assert.ok(
    notes.includes(
      'shadowed: IPv4 (iptables): INPUT rule 16 "-A INPUT -p tcp -m multiport --dports 80,443 -j rcguard-master" (for master) comes after INPUT rule 15 "-A INPUT ! -i lo -j fw-user" (through fw-user rule 2 "-A fw-user -p tcp -m tcp --dport 443 -j ACCEPT"), which accepts tcp port 443 first',
    ),
    notes.join('\n'),
  )
  assert.ok(notes.some((n) => n.startsWith('what to do: put rcguard\'s rule first again: "iptables -D INPUT -p tcp -m multiport --dports 80,443 -j rcguard-master", then "rcguard hacks"')))
  assert.deepEqual(shadowReport(found).warnings, warnings, 'the same every time: nothing is held back')
  assert.deepEqual(shadowReport([]), {warnings: [], notes: []})
})

test('reports: control characters in a rule (a comment) are escaped', () => {
  const table = parseSave('*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m comment --comment "\u001b[31mred" -j ACCEPT\n-A INPUT -p tcp -m multiport --dports 80,443 -j rcguard-master\nCOMMIT\n')
  const {warnings} = shadowReport(iptablesShadows(table, 4, [{instance: master, rule: '-A INPUT -p tcp -m multiport --dports 80,443 -j rcguard-master'}], isOurs))
  assert.equal(warnings.length, 1)
  assert.ok(!warnings[0]?.includes('\u001b'), warnings[0])
  assert.match(warnings[0] ?? '', /\\x1b\[31mred/)
})
