/**
 * Reading `ipset save` dumps without a string per member: the fingerprint
 * that decides "no change" must see every difference, in any order.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {hostOrCidr} from '../../src/core/firewall/backend.js'
import {Fingerprint, IpsetBackend, membersOf, parseIpsetSave} from '../../src/core/firewall/ipset.js'

const ours = (name: string) => name.startsWith('rcguard-')

function dump(sets: Record<string, {family: 'inet' | 'inet6'; members: string[]}>): string {
  const out: string[] = []
  for (const [name, set] of Object.entries(sets)) {
    out.push(`create ${name} hash:net family ${set.family} hashsize 1024 maxelem 65536 bucketsize 12 initval 0x2a41c5c8`)
    for (const m of set.members) out.push(`add ${name} ${m}`)
  }
  return `${out.join('\n')}\n`
}

test('a dump is read into its sets, with family, size and a fingerprint of the members', () => {
  const text = dump({
    'rcguard-master-4': {family: 'inet', members: ['203.0.113.7', '198.51.100.0/24']},
    'other-tool': {family: 'inet', members: ['192.0.2.1']},
    'rcguard-master-6': {family: 'inet6', members: ['2001:db8::bad']},
  })
  const sets = parseIpsetSave(text, ours)
  assert.deepEqual([...sets.keys()], ['rcguard-master-4', 'rcguard-master-6'])
  const v4 = sets.get('rcguard-master-4')
  assert.equal(v4?.family, 'inet')
  assert.equal(v4?.maxelem, 65_536)
  assert.equal(v4?.type, 'hash:net')
  assert.equal(sets.get('rcguard-master-6')?.family, 'inet6')
  // Hosts are written without /32, networks with their prefix, as ipset prints them.
  assert.ok(v4?.members.equals(new Fingerprint().addNetworks(['198.51.100.0/24', '203.0.113.7/32'], 'inet')))
  assert.ok(sets.get('rcguard-master-6')?.members.equals(new Fingerprint().addNetworks(['2001:db8::bad/128'], 'inet6')))
  assert.ok(!v4?.members.equals(new Fingerprint().addNetworks(['198.51.100.0/24', '203.0.113.8/32'], 'inet')))
  assert.ok(!v4?.members.equals(new Fingerprint().addNetworks(['198.51.100.0/24'], 'inet')))
  assert.deepEqual([...membersOf(text, 'rcguard-master-4')].sort(), ['198.51.100.0/24', '203.0.113.7'])
  assert.deepEqual([...membersOf(text, 'other-tool')], ['192.0.2.1'])
})

test('members followed by options (timeout, comment) are read up to the first space', () => {
  const text = 'create rcguard-a-4 hash:net family inet hashsize 1024 maxelem 65536\nadd rcguard-a-4 192.0.2.9 timeout 300\n'
  assert.ok(parseIpsetSave(text, ours).get('rcguard-a-4')?.members.equals(new Fingerprint().addNetworks(['192.0.2.9/32'], 'inet')))
})

test('a dump with a line that is neither create nor add is refused whole', () => {
  assert.throws(() => parseIpsetSave('create rcguard-a-4 hash:net family inet\nWarning: kernel module too old\n', ours), /neither "create" nor "add"/)
  assert.equal(parseIpsetSave('', ours).size, 0)
})

test('an IPv6 /32 is a network, not a host: ipset and nft are given it with its prefix', () => {
  assert.equal(hostOrCidr('2001:db8::/32'), '2001:db8::/32')
  assert.equal(hostOrCidr('2001:db8::1/128'), '2001:db8::1')
  assert.equal(hostOrCidr('192.0.2.1/32'), '192.0.2.1')
  const text = dump({'rcguard-x-6': {family: 'inet6', members: ['2001:db8::/32']}})
  assert.ok(parseIpsetSave(text, ours).get('rcguard-x-6')?.members.equals(new Fingerprint().addNetworks(['2001:db8::/32'], 'inet6')))
  const fw = new IpsetBackend({prefix: 'rcguard', runner: {run: async () => ({stdout: '', stderr: '', exitCode: 0})}, action: 'DROP', chains: ['INPUT']})
  assert.match(fw.render({instances: [{name: 'master', ports: [443], v4: [], v6: ['2001:db8::/32']}]}), /^add rcguard-master-6t 2001:db8::\/32$/m)
})

test('property: the fingerprint ignores order and sees any added, removed or changed member', () => {
  const v4 = fc.oneof(fc.ipV4().map((a) => `${a}/32`), fc.tuple(fc.ipV4(), fc.integer({min: 8, max: 31})).map(([a, p]) => `${a}/${p}`))
  const v6 = fc.tuple(fc.array(fc.integer({min: 1, max: 0xffff}), {minLength: 8, maxLength: 8}), fc.constantFrom(128, 64, 48, 32)).map(([g, p]) => `${g.map((x) => x.toString(16)).join(':')}/${p}`)
  for (const [family, address, host] of [['inet', v4, '/32'], ['inet6', v6, '/128']] as const) {
    fc.assert(
      fc.property(fc.uniqueArray(address, {minLength: 1, maxLength: 300}), fc.nat(), address, (networks, k, other) => {
        const shown = (n: string) => (n.endsWith(host) ? n.slice(0, -host.length) : n)
        const text = dump({'rcguard-x': {family, members: [...networks].reverse().map(shown)}})
        const live = parseIpsetSave(text, ours).get('rcguard-x')?.members
        assert.ok(live !== undefined)
        assert.ok(live.equals(new Fingerprint().addNetworks(networks, family)))
        const i = k % networks.length
        const without = networks.filter((_, j) => j !== i)
        assert.ok(!live.equals(new Fingerprint().addNetworks(without, family)), 'one removed')
        if (!networks.map(shown).includes(shown(other))) {
          assert.ok(!live.equals(new Fingerprint().addNetworks([...networks, other], family)), 'one added')
          assert.ok(!live.equals(new Fingerprint().addNetworks([...without, other], family)), 'one replaced')
        }
      }),
      {seed: 20261125, numRuns: 300},
    )
  }
})
