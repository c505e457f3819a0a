import {test} from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {blockKey, canonicalIp, cidrContains, compareIps, familyOf, NetworkList, parseCidr, isLoopback} from '../../src/core/net/ip.js'

test('canonicalIp validates strictly and normalises', () => {
  assert.equal(canonicalIp('192.0.2.1'), '192.0.2.1')
  assert.equal(canonicalIp('1.2.3'), null)
  assert.equal(canonicalIp('010.1.1.1'), null)
  assert.equal(canonicalIp('256.1.1.1'), null)
  assert.equal(canonicalIp('2001:DB8::0:1'), '2001:db8::1')
  assert.equal(canonicalIp('::ffff:192.0.2.9'), '192.0.2.9')
  assert.equal(canonicalIp('fe80::1%eth0'), 'fe80::1')
  assert.equal(canonicalIp('[2001:db8::1]'), '2001:db8::1')
  assert.equal(canonicalIp('example.com'), null)
  assert.equal(canonicalIp(''), null)
})

test('parseCidr: bare addresses are host networks, host bits are cleared, bad prefixes refused', () => {
  assert.equal(parseCidr('192.0.2.7')?.text, '192.0.2.7/32')
  assert.equal(parseCidr('192.0.2.7/24')?.text, '192.0.2.0/24')
  assert.equal(parseCidr('2001:db8::1/64')?.text, '2001:db8::/64')
  assert.equal(parseCidr('::1')?.text, '::1/128')
  assert.equal(parseCidr('192.0.2.0/33'), null)
  assert.equal(parseCidr('192.0.2.0/x'), null)
  assert.equal(parseCidr('10.0.0.0/8/8'), null)
})

test('NetworkList matches across forms; loopback is recognised', () => {
  const l = new NetworkList(['198.51.100.0/24', '2001:db8::/32'])
  assert.equal(l.has('198.51.100.200'), true)
  assert.equal(l.has('::ffff:198.51.100.9'), true)
  assert.equal(l.has('198.51.101.1'), false)
  assert.equal(l.has('2001:db8:1::5'), true)
  assert.equal(l.has('2001:db9::5'), false)
  assert.equal(isLoopback('127.8.9.10'), true)
  assert.equal(isLoopback('::1'), true)
  assert.equal(isLoopback('192.0.2.1'), false)
})

test('compareIps orders IPv4 numerically before IPv6', () => {
  const ips = ['2001:db8::2', '192.0.2.10', '192.0.2.9', '10.0.0.1', '2001:db8::1']
  assert.deepEqual([...ips].sort(compareIps), ['10.0.0.1', '192.0.2.9', '192.0.2.10', '2001:db8::1', '2001:db8::2'])
})

test('NetworkList.overlapping finds a network sharing any address; familyOf reads CIDR text', () => {
  const l = new NetworkList(['198.51.100.0/24', '2001:db8:1:2::99'])
  assert.equal(l.overlapping('2001:db8:1:2::/64')?.text, '2001:db8:1:2::99/128')
  assert.equal(l.overlapping('2001:db8:1:3::/64'), undefined)
  assert.equal(l.overlapping('198.51.0.0/16')?.text, '198.51.100.0/24')
  assert.equal(l.overlapping('198.51.100.7')?.text, '198.51.100.0/24')
  assert.equal(familyOf('2001:db8::/64'), 6)
  assert.equal(familyOf('192.0.2.0/24'), 4)
})

test('property: blockKey of an IPv6 address is the network parseCidr computes, for every prefix', () => {
  const none = new NetworkList([])
  fc.assert(
    fc.property(fc.ipV6(), fc.integer({min: 16, max: 127}), (text, prefix) => {
      const ip = canonicalIp(text)
      if (ip === null || ip.includes('.') || isLoopback(ip)) return
      const want = parseCidr(`${ip}/${prefix}`)?.text
      const got = blockKey(ip, prefix, none)
      // Only ::/P networks (which hold ::1) fall back to the address.
      assert.equal(got, want === `::/${prefix}` ? ip : want)
    }),
    {seed: 64, numRuns: 2000},
  )
})

test('property: NetworkList matches an address as cidrContains does, IPv4 and IPv6, in the list\'s order', () => {
  const [List, contains, cidr] = [NetworkList, cidrContains, parseCidr]
  const v6 = fc.oneof(fc.ipV6(), fc.constantFrom('::', '::1', '::ffff:192.0.2.1', '2001:db8::', '2001:DB8::1', '2001:db8:0:0:1::1', 'fe80::1%eth0', '1::2::3', ':::', '2001:db8::1.2.3.4', '12345::1'))
  const address = fc.oneof(fc.ipV4(), v6, fc.constantFrom('10.0.0.1', '010.0.0.1', '1.2.3', ''))
  const network = fc.tuple(fc.oneof(fc.ipV4(), fc.ipV6(), fc.constantFrom('2001:db8::', '10.0.0.0', '::ffff:10.0.0.0')), fc.integer({min: 0, max: 128})).map(([a, p]) => cidr(`${a}/${p}`) ?? cidr(a))
  fc.assert(
    fc.property(fc.array(network, {maxLength: 6}), address, (nets, ip) => {
      const list = new List(nets.filter((n) => n !== null))
      const expected = nets.filter((n) => n !== null).find((n) => contains(n, ip))
      assert.equal(list.match(ip)?.text, expected?.text, `${ip} in ${nets.map((n) => n?.text).join(' ')}`)
    }),
    {seed: 99, numRuns: 3000},
  )
})

test('property: parseCidr of plain IPv4, with or without a prefix, is what ipaddr.js makes of it', async () => {
  const {default: ipaddr} = await import('ipaddr.js')
  const {ipSortKey} = await import('../../src/core/net/ip.js')
  const octet = fc.nat({max: 255})
  const prefixText = fc.oneof(fc.nat({max: 40}).map(String), fc.constantFrom('032', '08', '', '1a', '-1', '0000', ' 8'))
  fc.assert(
    fc.property(fc.tuple(octet, octet, octet, octet), fc.option(prefixText, {nil: undefined}), (o, prefix) => {
      const text = prefix === undefined ? o.join('.') : `${o.join('.')}/${prefix}`
      const got = parseCidr(text)
      const valid = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= 32)
      if (!valid) return assert.equal(got, null, text)
      const bits = prefix === undefined ? 32 : Number(prefix)
      const expected = ipaddr.IPv4.networkAddressFromCIDR(`${o.join('.')}/${bits}`)
      assert.equal(got?.text, `${expected.toString()}/${bits}`, text)
      assert.equal(got?.family, 4)
      assert.equal(got?.prefix, bits)
      assert.deepEqual(got?.network.toByteArray(), expected.toByteArray())
      if (prefix === undefined) assert.equal(ipSortKey(text), `4:${o.map((b) => b.toString(16).padStart(2, '0')).join('')}:032`)
    }),
    {numRuns: 3000},
  )
})

test('property: a long IPv4 list (searched by its index) matches as cidrContains does, first in the list\'s order', () => {
  // A narrow space, so that addresses fall inside, between and beside overlapping networks.
  const address = fc.tuple(fc.nat({max: 3}), fc.nat({max: 255})).map(([c, d]) => `10.0.${c}.${d}`)
  const network = fc.tuple(address, fc.integer({min: 20, max: 32})).map(([a, p]) => parseCidr(`${a}/${p}`))
  fc.assert(
    fc.property(fc.array(network, {minLength: 5, maxLength: 40}), fc.array(address, {minLength: 1, maxLength: 20}), (nets, ips) => {
      const valid = nets.filter((n) => n !== null)
      const list = new NetworkList(valid)
      for (const ip of ips) assert.equal(list.match(ip)?.text, valid.find((n) => cidrContains(n, ip))?.text, `${ip} in ${valid.map((n) => n.text).join(' ')}`)
    }),
    {seed: 7, numRuns: 2000},
  )
})

test('property: IPv6 read by hand (canonicalIp, parseCidr, ipSortKey) is what ipaddr.js makes of it', async () => {
  const {default: ipaddr} = await import('ipaddr.js')
  const {isIP} = await import('node:net')
  const {ipSortKey} = await import('../../src/core/net/ip.js')
  // Groups of zeros in runs of every length, so that the run `::` stands for is chosen among equals.
  const group = fc.oneof(fc.constant(0), fc.constant(0), fc.nat({max: 0xffff}), fc.constantFrom(0xffff, 1))
  const spelled = fc.tuple(fc.array(group, {minLength: 8, maxLength: 8}), fc.boolean(), fc.boolean()).map(([g, upper, padded]) => {
    const text = g.map((x) => (padded ? x.toString(16).padStart(4, '0') : x.toString(16))).join(':')
    return upper ? text.toUpperCase() : text
  })
  const address = fc.oneof(spelled, fc.ipV6(), fc.constantFrom('::', '::1', '1::', '0:0:1::', '1:0:0:2:0:0:3:4', '::ffff:c000:201', '::ffff:192.0.2.1', '::192.0.2.1', '::0.0.0.1', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '1::2::3', '12345::', ':1::2', '1::2:', ':::', '1:::2', 'g::1', '::1:', '::1::', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', 'a:b', '1:2:3:4:5:6:7:8::', '::0:0:0:0:0:0:0:0', '00000::1', 'fFfF::'))
  fc.assert(
    fc.property(address, fc.integer({min: 0, max: 128}), (text, prefix) => {
      const reference = (): string | null => {
        if (isIP(text) !== 6) return null
        // ipaddr.js reads the compatible form ::a.b.c.d as mapped: it means ::0:a.b.c.d.
        const a = ipaddr.IPv6.parse(/^::\d+\.\d+\.\d+\.\d+$/.test(text) ? `::0:${text.slice(2)}` : text)
        return a.isIPv4MappedAddress() ? a.toIPv4Address().toString() : a.toString()
      }
      const canonical = reference()
      assert.equal(canonicalIp(text), canonical, text)
      if (canonical === null || canonical.includes('.')) return
      const net = parseCidr(`${text}/${prefix}`)
      const expected = ipaddr.IPv6.networkAddressFromCIDR(`${canonical}/${prefix}`)
      assert.equal(net?.text, `${expected.toString()}/${prefix}`, `${text}/${prefix}`)
      assert.deepEqual(net?.network.toByteArray(), expected.toByteArray())
      const bytes = ipaddr.parse(canonical).toByteArray().map((b) => b.toString(16).padStart(2, '0')).join('')
      assert.equal(ipSortKey(canonical), `6:${bytes}:128`)
    }),
    {seed: 11, numRuns: 5000},
  )
})

test('IPv4-compatible IPv6 written with embedded IPv4 (::a.b.c.d) is the one address of its hex spelling, not IPv4', () => {
  // ipaddr.js reads "::a.b.c.d" alone as IPv4-mapped: it became a.b.c.d while "::0:a.b.c.d" and "::102:304" stayed IPv6.
  assert.equal(canonicalIp('::1.2.3.4'), '::102:304')
  assert.equal(canonicalIp('::0:1.2.3.4'), '::102:304')
  assert.equal(canonicalIp('::102:304'), '::102:304')
  assert.equal(canonicalIp('::0.0.0.1'), '::1')
  assert.ok(isLoopback(canonicalIp('::0.0.0.1') as string))
  assert.equal(parseCidr('::1.2.3.4/120')?.text, '::102:300/120')
  // Mapped IPv4 is still IPv4.
  assert.equal(canonicalIp('::ffff:1.2.3.4'), '1.2.3.4')
})
