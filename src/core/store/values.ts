/**
 * What a value in the database may be, beyond its JSON type: the forms
 * rcguard itself writes. A value outside them was not written by rcguard (a
 * hand edit, a damaged or planted file) and would reach the firewall tools,
 * the decisions or the output as something nobody checked, so the database is
 * refused before anything is done or written (see json-store.ts).
 *
 * Each check accepts everything any rcguard version wrote: an instance name
 * is checked against the loosest rule a configuration ever allowed, not
 * today's, so that a database stays readable across upgrades.
 */
import {escapeText} from '../text/escape.js'
import {canonicalIp, isPlainIpv4, parseCidr, type Cidr} from '../net/ip.js'
import {FINGERPRINT_BYTES} from '../logreader/lines.js'

/** The latest time accepted: the end of year 9999. A later one is no date (`list` could not print it) and no block rcguard makes. */
export const MAX_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999)

/** The widest IPv6 network an entry can be: firewall.ipv6Prefix's minimum. */
export const MIN_IPV6_PREFIX = 16

/** The widest IPv4 network an entry can be (a /8: a block of 16 million addresses, as `rcguard block` takes it). */
export const MIN_IPV4_PREFIX = 8

/** The widest network an entry of this family can be. */
export function minPrefix(family: 4 | 6): number {
  return family === 4 ? MIN_IPV4_PREFIX : MIN_IPV6_PREFIX
}

/** Stored text quoted for a message: one line, through the one escape (core/text/escape.ts), at most 80 characters. */
export function quoted(text: string): string {
  return `"${escapeText(text, {max: 80})}"`
}

/**
 * Why `text` is not what an entry's `ip` holds, or null: an IPv4 or IPv6
 * address, an IPv4 network of at least MIN_IPV4_PREFIX bits or an IPv6
 * network of at least MIN_IPV6_PREFIX bits (firewall.ipv6Prefix, `rcguard
 * block NETWORK`), in the canonical form rcguard writes: an address without
 * a prefix, a network as parseCidr writes it (host bits cleared), never a
 * /32 or /128 (that is an address).
 */
export function entryAddressProblem(text: string): string | null {
  // Plain dotted-decimal IPv4 is canonical as it is: most entries, checked without a copy of the text.
  if (isPlainIpv4(text)) return null
  if (!text.includes('/')) {
    const ip = canonicalIp(text)
    if (ip === text) return null
    if (ip === null) return `${quoted(text)} is not an IPv4 or IPv6 address`
    return `${quoted(text)} is not in the form rcguard writes (${ip})`
  }
  const net = parseCidr(text)
  if (net === null) return `${quoted(text)} is not an IPv4 or IPv6 address or network`
  const min = minPrefix(net.family)
  if (net.prefix < min) return `${quoted(text)} is wider than the widest network rcguard blocks (/${min})`
  const canonical = entryText(net)
  if (canonical !== text) return `${quoted(text)} is not in the form rcguard writes (${canonical})`
  return null
}

/** The text an entry holds for a network: its canonical CIDR text, or a single address (a /32 or /128) without prefix. */
export function entryText(net: Cidr): string {
  return net.prefix === (net.family === 4 ? 32 : 128) ? net.text.slice(0, net.text.indexOf('/')) : net.text
}

/**
 * Why `text` is not the network of a networkBlock record (decisions/networks.ts),
 * or null: canonical CIDR text written with its prefix, an IPv4 network of at
 * least MIN_IPV4_PREFIX bits or an IPv6 one of at least MIN_IPV6_PREFIX.
 */
export function networkProblem(text: string): string | null {
  const net = text.includes('/') ? parseCidr(text) : null
  if (net === null) return `${quoted(text)} is not an IPv4 or IPv6 network`
  const min = net.family === 4 ? MIN_IPV4_PREFIX : MIN_IPV6_PREFIX
  if (net.prefix < min) return `${quoted(text)} is wider than the widest network rcguard blocks (/${min})`
  if (net.text !== text) return `${quoted(text)} is not in the form rcguard writes (${net.text})`
  return null
}

/** Why `text` is not a whitelist entry's `cidr` (canonical CIDR text, as `rcguard whitelist` stores it), or null. */
export function whitelistCidrProblem(text: string): string | null {
  const net = parseCidr(text)
  if (net === null) return `${quoted(text)} is not an IPv4 or IPv6 address or network`
  if (net.text !== text) return `${quoted(text)} is not in the form rcguard writes (${net.text})`
  return null
}

/** Instance names as any configuration accepted them (it becomes part of firewall object names). */
const INSTANCE = /^[A-Za-z0-9_-]{1,16}$/

/** Instance names found valid: a database repeats the same few in every entry. */
const validInstances = new Set<string>()

export function instanceProblem(text: string): string | null {
  if (validInstances.has(text)) return null
  if (!INSTANCE.test(text)) return `${quoted(text)} is not an instance name (1 to 16 letters, digits, "-" or "_")`
  if (validInstances.size < 256) validInstances.add(text)
  return null
}

/** A log's position is kept under its absolute path. */
export function logPathProblem(text: string): string | null {
  return text.startsWith('/') && !text.includes('\u0000') ? null : `${quoted(text)} is not the absolute path of a log`
}

/** What fingerprintOf writes: 32 hex digits. */
export function fingerprintProblem(text: string): string | null {
  return /^[0-9a-f]{32}$/.test(text) ? null : `${quoted(text)} is not a fingerprint (32 hex digits)`
}

export {FINGERPRINT_BYTES}
