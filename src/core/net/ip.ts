/**
 * Address handling: strict validation, one canonical text form per address
 * (so that counts aggregate), CIDR parsing and matching.
 *
 * ipaddr.js does the maths; net.isIP does the validation, because
 * ipaddr.isValid() accepts inet_aton shorthands such as "1.2.3" or "010.1.1.1".
 */
import {isIP} from 'node:net'
import {readFileSync} from 'node:fs'
import {networkInterfaces} from 'node:os'
import ipaddr from 'ipaddr.js'

export type Family = 4 | 6

/**
 * Canonical form of one address, or null when the text is not exactly one
 * IPv4 or IPv6 address. IPv6 is lower-case and compressed (RFC 5952), a zone
 * (`%eth0`) is dropped, and IPv4-mapped IPv6 (`::ffff:192.0.2.1`) becomes the
 * IPv4 address. The string returned holds its own characters, never a piece
 * of `text` (which would keep the whole log line alive).
 */
export function canonicalIp(text: string): string | null {
  if (plainIpv4Value(text) !== -1) return ownText(text)
  const known = canonical.get(text)
  if (known !== undefined) return known
  const result = computeCanonicalIp(text)
  if (canonical.size >= CANONICAL_CACHE) canonical.clear()
  canonical.set(text.length < 13 ? text : ` ${text}`.slice(1), result)
  return result
}

/**
 * The value of plain dotted-decimal IPv4 (four parts of 0 to 255 without
 * leading zeros: canonical IPv4 already, the common case, answered without
 * parsing) as an unsigned 32-bit number, or -1 for any other text.
 */
function plainIpv4Value(t: string): number {
  const n = t.length
  if (n < 7 || n > 15) return -1
  let dots = 0
  let digits = 0
  let part = 0
  let value = 0
  for (let i = 0; i < n; i++) {
    const c = t.charCodeAt(i)
    if (c === 46) {
      if (digits === 0) return -1
      dots++
      digits = 0
      value = value * 256 + part
      part = 0
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return -1
      part = part * 10 + (c - 48)
      digits++
      if (part > 255) return -1
    } else {
      return -1
    }
  }
  return dots === 3 && digits > 0 ? value * 256 + part : -1
}

/**
 * A copy of plain IPv4 text that holds its own characters (not a piece of
 * the log line it was cut from, which it would keep alive as long as an
 * entry or a twin record keeps the address).
 */
function ownText(text: string): string {
  // Shorter strings are copies already; concatenating flattens, and the slice refers to that new string.
  return text.length < 13 ? text : ` ${text}`.slice(1)
}

/**
 * The number of a plain dotted-decimal IPv4 address (as canonicalIp writes
 * IPv4) as a signed 32-bit integer (a small integer in V8: a map compares it
 * without a look at memory), or null for any other text.
 */
export function ipv4Key(text: string): number | null {
  const v = plainIpv4Value(text)
  return v === -1 ? null : v | 0
}

/** Whether text is a plain dotted-decimal IPv4 address, as canonicalIp writes IPv4. */
export function isPlainIpv4(t: string): boolean {
  return plainIpv4Value(t) !== -1
}

/** A plain IPv4 address (isPlainIpv4) as a number. */
function ipv4Number(t: string): number {
  let n = 0
  let part = 0
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i)
    if (c === 46) {
      n = n * 256 + part
      part = 0
    } else {
      part = part * 10 + (c - 48)
    }
  }
  return n * 256 + part
}

/**
 * The eight groups of an IPv6 address written in hex groups (at most one
 * `::`, no embedded IPv4, no zone), or null for anything else, which is left
 * to the full parse; also null for an IPv4-mapped address, which rcguard
 * treats as IPv4.
 */
function ipv6Groups(t: string): number[] | null {
  const n = t.length
  if (n < 2 || n > 39) return null
  // At most one `::`; the groups before it and after it, each 1 to 4 hex digits between single colons.
  const gap = t.indexOf('::')
  if (gap !== -1 && t.indexOf('::', gap + 1) !== -1) return null
  const groups: number[] = []
  if (gap === -1) {
    if (!hexGroups(t, 0, n, groups) || groups.length !== 8) return null
  } else {
    if (!hexGroups(t, 0, gap, groups)) return null
    const head = groups.length
    if (!hexGroups(t, gap + 2, n, groups) || groups.length > 7) return null
    groups.splice(head, 0, ...new Array<number>(8 - groups.length).fill(0))
  }
  if (groups[5] === 0xffff && groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0) return null
  return groups
}

/** The colon-separated hex groups of t[from, to) appended to out (none for an empty range); false when any is not 1 to 4 hex digits. */
function hexGroups(t: string, from: number, to: number, out: number[]): boolean {
  if (from === to) return true
  let value = 0
  let digits = 0
  for (let i = from; i < to; i++) {
    const c = t.charCodeAt(i)
    if (c === 58) {
      if (digits === 0) return false
      out.push(value)
      value = 0
      digits = 0
      continue
    }
    const h = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1
    if (h === -1 || ++digits > 4) return false
    value = value * 16 + h
  }
  if (digits === 0) return false
  out.push(value)
  return true
}

/** Whether the first `prefix` bits of two addresses' groups are equal. */
function groupsMatch(a: readonly number[], b: readonly number[], prefix: number): boolean {
  let bits = prefix
  for (let i = 0; i < 8 && bits > 0; i++, bits -= 16) {
    const mask = bits >= 16 ? 0xffff : (0xffff << (16 - bits)) & 0xffff
    if (((a[i] ?? 0) & mask) !== ((b[i] ?? 0) & mask)) return false
  }
  return true
}

/** Log lines repeat the same addresses: remember the answers for the last many. */
const CANONICAL_CACHE = 65_536
const canonical = new Map<string, string | null>()

/**
 * The RFC 5952 text of eight groups, as ipaddr.js writes an IPv6 address:
 * lowercase hex without leading zeros, the first longest run of two or more
 * zero groups as `::` (test/core/ip.test.ts checks the two agree).
 */
function rfc5952(groups: readonly number[]): string {
  let best = -1
  let bestLength = 1
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLength) {
      best = i
      bestLength = j - i
    }
    i = j
  }
  const hex = (from: number, to: number): string => groups.slice(from, to).map((g) => g.toString(16)).join(':')
  return best === -1 ? hex(0, 8) : `${hex(0, best)}::${hex(best + bestLength, 8)}`
}

function computeCanonicalIp(text: string): string | null {
  let t = text.trim()
  if (t.startsWith('[') && t.endsWith(']')) t = t.slice(1, -1)
  const zone = t.indexOf('%')
  if (zone !== -1) {
    // Zones only exist on IPv6 link-local addresses.
    if (isIP(t.slice(0, zone)) !== 6 || !/^[\w.-]+$/.test(t.slice(zone + 1))) return null
    t = t.slice(0, zone)
  }
  // IPv6 written in hex groups, the common form, by hand; the rest (embedded IPv4, IPv4-mapped) by ipaddr.js.
  const groups = ipv6Groups(t)
  if (groups !== null) return rfc5952(groups)
  // `::a.b.c.d` is IPv4-compatible IPv6 (::0:a.b.c.d), which ipaddr.js reads as IPv4-mapped (::ffff:a.b.c.d):
  // written so, one address would have two canonical texts (a.b.c.d and ::0:a.b.c.d's hex spelling).
  if (t.startsWith('::') && isIP(t.slice(2)) === 4) {
    const [a = 0, b = 0, c = 0, d = 0] = t.slice(2).split('.').map(Number)
    return rfc5952([0, 0, 0, 0, 0, 0, a * 256 + b, c * 256 + d])
  }
  const kind = isIP(t)
  if (kind === 0) return null
  if (kind === 4) return ipaddr.IPv4.parse(t).toString()
  const addr = ipaddr.IPv6.parse(t)
  if (addr.isIPv4MappedAddress()) return addr.toIPv4Address().toString()
  return addr.toString()
}

/** The family of an address, or of a network written as CIDR text. */
export function familyOf(ip: string): Family {
  const slash = ip.indexOf('/')
  return isIP(slash === -1 ? ip : ip.slice(0, slash)) === 4 ? 4 : 6
}

export interface Cidr {
  /** Canonical text: network address and prefix, e.g. `192.0.2.0/24`, `2001:db8::/32`. */
  readonly text: string
  readonly family: Family
  readonly prefix: number
  readonly network: ipaddr.IPv4 | ipaddr.IPv6
  /** Why the network is in a list, for messages (e.g. "this host's own address"). */
  readonly label?: string
}

/**
 * Parses `ADDR` or `ADDR/PREFIX`. A bare address is a /32 or /128. Host bits
 * are cleared: `192.0.2.7/24` becomes `192.0.2.0/24`. Returns null when invalid.
 */
export function parseCidr(text: string): Cidr | null {
  const fast = plainIpv4Cidr(text)
  if (fast !== null) return fast
  const t = text.trim()
  const slash = t.indexOf('/')
  const addrText = slash === -1 ? t : t.slice(0, slash)
  const ip = canonicalIp(addrText)
  if (ip === null || addrText.includes('%')) return null
  const family = familyOf(ip)
  const max = family === 4 ? 32 : 128
  let prefix = max
  if (slash !== -1) {
    const p = t.slice(slash + 1)
    if (!/^\d{1,3}$/.test(p)) return null
    prefix = Number(p)
    if (prefix > max) return null
    // An IPv4-mapped IPv6 network written with an IPv6 prefix: keep the IPv4 part.
    if (family === 4 && isIP(addrText) === 6) {
      if (prefix < 96) return null
      prefix -= 96
    }
  }
  if (family === 6) {
    // The canonical text is in hex groups unless it embeds IPv4 (a form ipaddr.js is left to read).
    const groups = ipv6Groups(ip)
    if (groups !== null) {
      let bits = prefix
      for (let i = 0; i < 8; i++, bits -= 16) groups[i] = bits >= 16 ? (groups[i] as number) : bits <= 0 ? 0 : (groups[i] as number) & ((0xffff << (16 - bits)) & 0xffff)
      return {text: `${rfc5952(groups)}/${prefix}`, family, prefix, network: new ipaddr.IPv6(groups)}
    }
  }
  const network =
    family === 4
      ? ipaddr.IPv4.networkAddressFromCIDR(`${ip}/${prefix}`)
      : ipaddr.IPv6.networkAddressFromCIDR(`${ip}/${prefix}`)
  return {text: `${network.toString()}/${prefix}`, family, prefix, network}
}

/**
 * parseCidr of plain IPv4 (plainIpv4Value) with or without a prefix of one
 * to three digits, without writing and parsing the text again: the common
 * case, every entry of a large database; null for anything else, left to
 * parseCidr's general path (test/core/ip.test.ts checks that the two agree).
 */
function plainIpv4Cidr(text: string): Cidr | null {
  const slash = text.indexOf('/')
  const value = plainIpv4Value(slash === -1 ? text : text.slice(0, slash))
  if (value === -1) return null
  let prefix = 32
  if (slash !== -1) {
    const p = text.length - slash - 1
    if (p < 1 || p > 3) return null
    prefix = 0
    for (let i = slash + 1; i < text.length; i++) {
      const c = text.charCodeAt(i)
      if (c < 48 || c > 57) return null
      prefix = prefix * 10 + (c - 48)
    }
    if (prefix > 32) return null
  }
  const size = 2 ** (32 - prefix)
  const n = value - (value % size)
  const network = new ipaddr.IPv4([Math.floor(n / 16_777_216), Math.floor(n / 65_536) % 256, Math.floor(n / 256) % 256, n % 256])
  return {text: `${network.toString()}/${prefix}`, family: 4, prefix, network}
}

export function cidrContains(cidr: Cidr, ip: string): boolean {
  const c = canonicalIp(ip)
  if (c === null) return false
  const addr = ipaddr.parse(c)
  if (addr.kind() !== cidr.network.kind()) return false
  return addr.match(cidr.network, cidr.prefix)
}

/** The last address NetworkList.match parsed: an address is often matched against two lists in a row (loopback, whitelist). */
let lastParsed: {text: string; addr: ipaddr.IPv4 | ipaddr.IPv6} | undefined

function parsedAddress(canonical: string): ipaddr.IPv4 | ipaddr.IPv6 {
  if (lastParsed?.text !== canonical) lastParsed = {text: canonical, addr: ipaddr.parse(canonical)}
  return lastParsed.addr
}

/** A list of networks with a membership test. */
export class NetworkList {
  private readonly cidrs: Cidr[]
  /** Per network, its first and last IPv4 address as numbers (NaN for IPv6): an IPv4 address is matched without parsing. */
  private readonly v4From: Float64Array
  private readonly v4To: Float64Array
  /** The IPv6 networks' indexes, with their groups: an IPv6 address is matched on its groups, parsed once by hand. */
  private readonly v6: {index: number; parts: number[]; prefix: number}[] = []
  /** The IPv4 networks' first addresses in ascending order, and the furthest last address of any network up to each. */
  private readonly v4Starts: Float64Array
  private readonly v4Reach: Float64Array

  constructor(entries: Iterable<string | Cidr | {cidr: string; label: string}>) {
    this.cidrs = []
    for (const e of entries) {
      const text = typeof e === 'string' ? e : 'label' in e && 'cidr' in e ? e.cidr : null
      const parsed = text === null ? (e as Cidr) : parseCidr(text)
      if (parsed === null) throw new Error(`invalid address or network: ${String(text)}`)
      const label = typeof e === 'object' && 'label' in e ? e.label : undefined
      this.cidrs.push(label === undefined ? parsed : {...parsed, label})
    }
    this.v4From = new Float64Array(this.cidrs.length).fill(Number.NaN)
    this.v4To = new Float64Array(this.cidrs.length).fill(Number.NaN)
    this.cidrs.forEach((c, i) => {
      if (c.family === 6) this.v6.push({index: i, parts: (c.network as ipaddr.IPv6).parts, prefix: c.prefix})
      if (c.family !== 4) return
      const start = ipv4Number(c.network.toString())
      this.v4From[i] = start
      this.v4To[i] = start + 2 ** (32 - c.prefix) - 1
    })
    const v4 = this.cidrs.flatMap((c, i) => (c.family === 4 ? [i] : []))
    v4.sort((a, b) => (this.v4From[a] as number) - (this.v4From[b] as number))
    this.v4Starts = Float64Array.from(v4, (i) => this.v4From[i] as number)
    let reach = -1
    this.v4Reach = Float64Array.from(v4, (i) => (reach = Math.max(reach, this.v4To[i] as number)))
  }

  /**
   * Whether some IPv4 network of the list holds address number n: a binary
   * search for the last network starting at or before n, then whether any
   * network up to it reaches n. Most addresses are in none, and are told so
   * in a few steps however long the list (the whitelist of a large database).
   */
  private v4Covered(n: number): boolean {
    let lo = 0
    let hi = this.v4Starts.length - 1
    let last = -1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if ((this.v4Starts[mid] as number) <= n) {
        last = mid
        lo = mid + 1
      } else hi = mid - 1
    }
    return last !== -1 && (this.v4Reach[last] as number) >= n
  }

  /** The first network that contains ip, or undefined. */
  match(ip: string): Cidr | undefined {
    if (this.cidrs.length === 0) return undefined
    if (isPlainIpv4(ip)) {
      // Most addresses: a few comparisons of numbers per network, in the list's order.
      const n = ipv4Number(ip)
      // Then the first in the list's order: its label is the reason given.
      if (this.v4Starts.length > 4 && !this.v4Covered(n)) return undefined
      for (let i = 0; i < this.cidrs.length; i++) {
        if (n >= (this.v4From[i] as number) && n <= (this.v4To[i] as number)) return this.cidrs[i]
      }
      return undefined
    }
    const groups = ipv6Groups(ip)
    if (groups !== null) {
      for (const n of this.v6) if (groupsMatch(groups, n.parts, n.prefix)) return this.cidrs[n.index]
      return undefined
    }
    // The address is parsed once, not once per network (cidrContains): lists are checked for every entry.
    const c = canonicalIp(ip)
    if (c === null) return undefined
    const addr = parsedAddress(c)
    const kind = addr.kind()
    return this.cidrs.find((n) => n.network.kind() === kind && addr.match(n.network, n.prefix))
  }

  has(ip: string): boolean {
    return this.match(ip) !== undefined
  }

  /** The first network that shares any address with `net` (an address, or CIDR text), or undefined. */
  overlapping(net: string | Cidr): Cidr | undefined {
    const c = typeof net === 'string' ? parseCidr(net) : net
    return c === null ? undefined : this.cidrs.find((n) => cidrsOverlap(n, c))
  }
}

const LOOPBACK = new NetworkList(['127.0.0.0/8', '::1/128'])

export function isLoopback(ip: string): boolean {
  return LOOPBACK.has(ip)
}

/** Whether an address, or any address of a network (CIDR text), is loopback. */
export function overlapsLoopback(net: string | Cidr): boolean {
  return LOOPBACK.overlapping(net) !== undefined
}

/** The loopback network (127.0.0.0/8, ::1/128) that shares an address with `net`, or undefined. */
export function loopbackOverlapping(net: string | Cidr): Cidr | undefined {
  return LOOPBACK.overlapping(net)
}

/**
 * Sort key so that lists and rule sets come out in a stable, human order.
 * Takes addresses and networks (CIDR text): by address, then the wider network first.
 */
/**
 * A text that sorts as compareIps does (family, address bytes, prefix), for
 * sorting many addresses: parsed once each rather than at every comparison.
 */
const HEX = Array.from({length: 256}, (_, b) => b.toString(16).padStart(2, '0'))

export function ipSortKey(ip: string): string {
  const v4 = plainIpv4Value(ip)
  if (v4 !== -1) {
    // The common case, without parsing: the four bytes in hex.
    return `4:${HEX[Math.floor(v4 / 16_777_216)]}${HEX[Math.floor(v4 / 65_536) % 256]}${HEX[Math.floor(v4 / 256) % 256]}${HEX[v4 % 256]}:032`
  }
  const [addr = '', prefix] = ip.split('/')
  const family = familyOf(ip)
  let key = `${family}:`
  const groups = ipv6Groups(addr)
  if (groups !== null) for (const g of groups) key += g.toString(16).padStart(4, '0')
  else for (const b of ipaddr.parse(addr).toByteArray()) key += b.toString(16).padStart(2, '0')
  return `${key}:${String(prefix === undefined ? (family === 4 ? 32 : 128) : Number(prefix)).padStart(3, '0')}`
}

/** `ips` in compareIps's order, each address parsed once (ipSortKey): the sort of many addresses. */
export function sortIps(ips: readonly string[]): string[] {
  const keyed = ips.map((ip) => ({ip, key: ipSortKey(ip)}))
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  return keyed.map((k) => k.ip)
}

export function compareIps(a: string, b: string): number {
  const fa = familyOf(a)
  const fb = familyOf(b)
  if (fa !== fb) return fa - fb
  const [aa = '', ap] = a.split('/')
  const [ba2 = '', bp] = b.split('/')
  const ba = ipaddr.parse(aa).toByteArray()
  const bb = ipaddr.parse(ba2).toByteArray()
  for (let i = 0; i < ba.length; i++) {
    const d = (ba[i] ?? 0) - (bb[i] ?? 0)
    if (d !== 0) return d
  }
  const max = fa === 4 ? 32 : 128
  return (ap === undefined ? max : Number(ap)) - (bp === undefined ? max : Number(bp))
}

/** Whether two networks share any address. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false
  const shorter = a.prefix <= b.prefix ? a : b
  const other = shorter === a ? b : a
  return other.network.match(shorter.network, shorter.prefix)
}

/** The network of `prefix` bits that holds ip (IPv6 aggregation). */
export function networkOf(ip: string, prefix: number): Cidr {
  const c = parseCidr(`${ip}/${prefix}`)
  if (c === null) throw new Error(`invalid address ${ip}/${prefix}`)
  return c
}

/**
 * An IPv6 address or network (CIDR text) as its network of `prefix` when it
 * is narrower than that (canonical CIDR text); anything else as it is. What
 * a swarm or an account counts one host as: one machine has a whole /64.
 */
export function widenIpv6(key: string, prefix: number): string {
  if (isPlainIpv4(key) || familyOf(key) === 4) return key
  const slash = key.indexOf('/')
  const own = slash === -1 ? 128 : Number(key.slice(slash + 1))
  if (own <= prefix) return key
  return networkOf(slash === -1 ? key : key.slice(0, slash), prefix).text
}

/**
 * What an address is counted and blocked as: with `ipv6Prefix` below 128, an
 * IPv6 address (or a narrower network) becomes its network of that prefix,
 * as canonical CIDR text (`2001:db8:1:2::/64`), unless that network would
 * overlap one that is never blocked (`never`, or loopback); then it stays as
 * it is. IPv4 addresses, and networks at least as wide as the prefix, stay
 * as they are.
 *
 * The one rule for both the counting (the Decider's entry key) and the
 * firewall (desiredState), so that what is counted is exactly what is blocked.
 */
export function blockKey(ip: string, ipv6Prefix: number, never: NetworkList): string {
  // IPv4 (canonical IPv6 text has no dots): stays, decided from the text, as most entries are.
  if (ipv6Prefix >= 128 || ip.includes('.')) return ip
  const slash = ip.indexOf('/')
  // An entry that already is a network of the prefix or wider: the common case once keyed, decided from the text.
  if (slash !== -1 && Number(ip.slice(slash + 1)) <= ipv6Prefix) return ip
  // A canonical IPv6 address is parsed once (a new address per attempt makes this the Decider's cost per line).
  const c = slash === -1 && isIP(ip) === 6 ? {network: ipaddr.IPv6.parse(ip), prefix: 128} : parseCidr(ip)
  if (c === null || !(c.network instanceof ipaddr.IPv6) || c.prefix <= ipv6Prefix) return ip
  const net = ipv6Network(c.network, ipv6Prefix)
  return overlapsLoopback(net) || never.overlapping(net) !== undefined ? ip : net.text
}

/** The network of `prefix` bits that holds an IPv6 address, without parsing text again. */
function ipv6Network(addr: ipaddr.IPv6, prefix: number): Cidr {
  const parts = addr.parts.map((p, i) => {
    const bits = Math.min(16, Math.max(0, prefix - i * 16))
    return bits === 16 ? p : p & (0xffff << (16 - bits)) & 0xffff
  })
  const network = new ipaddr.IPv6(parts)
  return {text: `${network.toString()}/${prefix}`, family: 6, prefix, network}
}

/** CIDR text of an address or network (an address is a /32 or /128). */
export function cidrText(ip: string): string {
  if (ip.includes('/')) return ip
  return familyOf(ip) === 4 ? `${ip}/32` : `${ip}/128`
}

/**
 * Networks (CIDR text, sorted with compareIps, one family) without those
 * inside another of them: the wider one blocks them already, and nftables
 * refuses overlapping elements in an interval set. CIDR networks either
 * nest or are disjoint, so in that order a nested one follows its container.
 */
export function withoutNested(sorted: readonly string[]): string[] {
  const out: string[] = []
  let container: Cidr | null = null
  for (const text of sorted) {
    const c = parseCidr(text)
    if (c === null) continue
    if (container !== null && c.prefix >= container.prefix && cidrsOverlap(container, c)) continue
    out.push(text)
    container = c
  }
  return out
}

/**
 * This host's own addresses, canonical; never to be blocked. Node lists only
 * interfaces that are up and have a carrier, so the kernel's own tables are
 * read too: every local IPv4 address (/proc/net/fib_trie) and every IPv6
 * address (/proc/net/if_inet6), whatever the link state.
 */
export function hostAddresses(): string[] {
  const out = new Set<string>()
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      const ip = canonicalIp(a.address)
      if (ip !== null) out.add(ip)
    }
  }
  const trie = readProc('/proc/net/fib_trie')
  let last: string | null = null
  for (const line of trie.split('\n')) {
    const leaf = /^\s*\|-- (\S+)$/.exec(line)
    if (leaf !== null) last = leaf[1] ?? null
    else if (last !== null && /\/32 host LOCAL$/.test(line.trim())) {
      const ip = canonicalIp(last)
      if (ip !== null) out.add(ip)
    }
  }
  for (const line of readProc('/proc/net/if_inet6').split('\n')) {
    const hex = line.split(/\s+/)[0] ?? ''
    if (/^[0-9a-f]{32}$/.test(hex)) {
      const ip = canonicalIp(hex.match(/.{4}/g)?.join(':') ?? '')
      if (ip !== null) out.add(ip)
    }
  }
  return [...out]
}

function readProc(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
  }
}
