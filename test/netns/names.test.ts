/**
 * The naming rules of src/core/firewall/names.ts against the real tools, in
 * a network namespace: every word refused as an nft prefix is one nft
 * refuses (or a keyword of a later nft), names rcguard takes are names nft
 * takes, the iptables and ipset length limits are the tools' own, and the
 * names the configuration lets through work end to end while the others are
 * a configuration error before any tool runs. Skips without root (and fails
 * under CI=true).
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {appendLines, burst, cli, netns, oneLine, requireRoot, setup, at, nowEnv} from '../helpers/env.js'

/** Keywords of nftables releases after 1.0.6, which 1.0.6 itself still takes as names. */
const LATER = new Set(['destroy', 'geneve', 'gre', 'gretap', 'last', 'rules', 'tunnel', 'tunnels', 'vni', 'vxlan'])

/** Words of the nft language that only mean something in some places, which nft takes as names. */
const TAKEN = ['rcguard', 'filter', 'nat', 'route', 'input', 'output', 'forward', 'prerouting', 'postrouting', 'ingress', 'egress', 'saddr', 'daddr', 'dport', 'sport', 'any', 'on', 'off', 'version', 'stateful', 'elem', 'name', 'packets', 'bytes', 'level', 'Log', 'TABLE', 'x', 'a1_b2c3d4e']

/** The table as rcguard declares, replaces, lists and deletes it, checked by nft without changing anything. */
function script(table: string, set = 'master_v4'): string {
  return `table inet ${table} {}\ndelete table inet ${table}\ntable inet ${table} {\n  comment "managed by rcguard"\n  set ${set} {\n    type ipv4_addr\n  }\n  chain input {\n    type filter hook input priority -10; policy accept;\n    tcp dport { 443 } ip saddr @${set} drop comment "rcguard 0123456789ab"\n  }\n}\n`
}

test('nft refuses every word the configuration refuses as a prefix, and takes the names it lets through', async (t) => {
  if (!requireRoot(t)) return
  const {NFT_KEYWORDS} = await import('../../src/core/firewall/names.js')
  const ns = await netns(t)
  const takes = async (table: string, set?: string): Promise<boolean> => {
    const checked = await ns.run('nft', ['-c', '-f', '-'], script(table, set))
    const listed = await ns.run('nft', ['-j', 'list', 'table', 'inet', table])
    return checked.exitCode === 0 && !/syntax error/.test(listed.stderr)
  }
  const takenNow: string[] = []
  for (const word of NFT_KEYWORDS) if (await takes(word)) takenNow.push(word)
  assert.deepEqual(takenNow.filter((w) => !LATER.has(w)), [], 'refused by the configuration but taken by this nft')
  for (const word of TAKEN) {
    assert.ok(!NFT_KEYWORDS.has(word), word)
    assert.ok(await takes(word), `nft takes ${word}`)
  }
  // Instance names as nft set names: "-" → "_", a leading digit behind "_"; a bare leading digit is refused.
  for (const set of ['webmail_2_v4', '_2nd_v4', '_x_v4', '_123_v4']) assert.ok(await takes('rcguard', set), set)
  assert.ok(!(await takes('rcguard', '2nd_v4')))
})

test('iptables and ipset take names exactly as long as names.ts allows, and no longer', async (t) => {
  if (!requireRoot(t)) return
  const {IPSET_NAME_MAX, IPTABLES_CHAIN_MAX} = await import('../../src/core/firewall/names.js')
  const ns = await netns(t)
  for (const tool of ['iptables-restore', 'ip6tables-restore', 'iptables-legacy-restore']) {
    if (tool.includes('legacy') && (await ns.run('sh', ['-c', `command -v ${tool}`])).exitCode !== 0) continue
    const chain = (n: number) => `r${'x'.repeat(n - 1)}`
    const restore = (name: string) => ns.run(tool, ['--noflush'], `*filter\n:${name} - [0:0]\n-A ${name} -m comment --comment "managed by rcguard"\n-A INPUT -p tcp -m multiport --dports 443 -m comment --comment "managed by rcguard" -j ${name}\nCOMMIT\n`)
    assert.equal((await restore(chain(IPTABLES_CHAIN_MAX))).exitCode, 0, tool)
    const long = await restore(chain(IPTABLES_CHAIN_MAX + 1))
    assert.notEqual(long.exitCode, 0, tool)
    assert.match(long.stderr, new RegExp(`too long|${IPTABLES_CHAIN_MAX} chars max`), tool)
  }
  const set = (n: number) => `r${'x'.repeat(n - 1)}`
  assert.equal((await ns.run('ipset', ['create', set(IPSET_NAME_MAX), 'hash:net', 'initval', '0x12345678'])).exitCode, 0)
  const long = await ns.run('ipset', ['create', set(IPSET_NAME_MAX + 1), 'hash:net'])
  assert.notEqual(long.exitCode, 0)
  assert.match(long.stderr, new RegExp(`longer than ${IPSET_NAME_MAX} characters`))
})

test('nftables: an instance named 2nd blocks (its sets are _2nd_v4, _2nd_v6); a prefix that is an nft word is exit 3 before any tool runs', async (t) => {
  if (!requireRoot(t)) return
  const ns = await netns(t)
  const s = setup(t)
  writeFileSync(s.config, JSON.stringify({database: s.db, instances: [{name: '2nd', logs: [s.log], ports: [443]}], firewall: {backend: 'nftables'}}))
  appendLines(s.log, burst(at(0), '203.0.113.7', 6))
  const r = await cli(['hacks', '--config', s.config], {netns: ns.name, env: nowEnv(3)})
  assert.equal(r.exitCode, 0, r.stderr)
  assert.match((await ns.run('nft', ['list', 'set', 'inet', 'rcguard', '_2nd_v4'])).stdout, /elements = \{ 203\.0\.113\.7 \}/)

  const ns2 = await netns(t)
  writeFileSync(s.config, JSON.stringify({database: s.db, instances: [{name: 'master', logs: [s.log], ports: [443]}], firewall: {backend: 'nftables', prefix: 'counter'}}))
  const bad = await cli(['hacks', '--config', s.config], {netns: ns2.name, env: nowEnv(4)})
  assert.equal(bad.exitCode, 3, bad.stderr)
  oneLine(bad, 'prefix', /^rcguard: invalid configuration in .*: firewall\.prefix: "counter" is a word of the nft language, which nft cannot read as a table name \(firewall\.backend is nftables\): choose another prefix, e\.g\. rcguard$/)
  assert.equal((await ns2.run('nft', ['list', 'ruleset'])).stdout, '', 'no tool ran')
})
