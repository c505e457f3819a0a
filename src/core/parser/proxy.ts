/**
 * Clients behind a trusted reverse proxy. Roundcube logs the proxy's address
 * and the raw X-Real-IP / X-Forwarded-For headers it received; only the part
 * the proxy itself wrote can be believed:
 * - a proxy that SETS X-Real-IP (nginx `proxy_set_header X-Real-IP
 *   $remote_addr`) writes that value; any X-Forwarded-For is the client's;
 * - a proxy that APPENDS to X-Forwarded-For writes its right end; what stands
 *   left of it, and any X-Real-IP, came from the client;
 * - a proxy named without its header gets Roundcube's own rule
 *   (rcube_utils::remote_addr: X-Forwarded-For right to left, the first hop
 *   that is not a trusted proxy; else X-Real-IP), and a line whose two headers
 *   name different clients is refused, since one of them was the client's.
 */
import {canonicalIp, NetworkList} from '../net/ip.js'

export type ProxyHeader = 'x-real-ip' | 'x-forwarded-for' | 'roundcube'

export interface TrustedProxy {
  /** Address or CIDR network. */
  address: string
  header: ProxyHeader
}

/** The trusted proxies, matched by address, each with the header it writes. */
export class ProxyList {
  private readonly nets: NetworkList
  private readonly byLabel: Map<string, ProxyHeader>

  constructor(readonly proxies: readonly TrustedProxy[]) {
    this.nets = new NetworkList(proxies.map((p, i) => ({cidr: p.address, label: String(i)})))
    this.byLabel = new Map(proxies.map((p, i) => [String(i), p.header]))
  }

  /** The header rule of the proxy an address belongs to, or null when it is no trusted proxy. */
  headerOf(ip: string): ProxyHeader | null {
    const m = this.nets.match(ip)
    return m === undefined ? null : (this.byLabel.get(m.label ?? '') ?? 'roundcube')
  }

  has(ip: string): boolean {
    return this.nets.has(ip)
  }

  get size(): number {
    return this.proxies.length
  }
}

export interface ProxyClient {
  /** The client, or null when the proxy's own header names none. */
  ip: string | null
  /** Why there is no client, in the admin's words. */
  why?: string
  /** The headers named two different clients (plain proxy entry): the fix is to name the header. */
  disagree?: boolean
}

const XFF = 'X-Forwarded-For: '
const XRI = 'X-Real-IP: '
const MAX_HOPS = 32

/** The leading X-Real-IP value of a header group, or null (an address only: the rest is another header). */
function realIp(group: string): string | null {
  if (!group.startsWith(XRI)) return null
  const comma = group.indexOf(',', XRI.length)
  return canonicalIp(group.slice(XRI.length, comma === -1 ? undefined : comma).trim())
}

/**
 * Walks X-Forwarded-For from its right end: the first hop that is not a
 * trusted proxy. Stops at the hop that carries the header's label (the
 * header's first hop) and at anything that is not an address.
 */
function forwardedFor(group: string, trusted: ProxyList): ProxyClient {
  let end = group.length
  for (let n = 0; n < MAX_HOPS && end > 0; n++) {
    const comma = group.lastIndexOf(',', end - 1)
    let hop = group.slice(comma + 1, end).trim()
    end = comma === -1 ? 0 : comma
    let first = comma === -1
    if (hop.startsWith(XFF)) {
      hop = hop.slice(XFF.length).trim()
      first = true
    } else if (hop.startsWith(XRI)) {
      return {ip: null, why: 'no X-Forwarded-For hop written by the proxy'}
    } else if (first && !group.startsWith(XFF)) {
      return {ip: null, why: 'no X-Forwarded-For hop written by the proxy'}
    }
    const ip = canonicalIp(hop)
    if (ip === null) return {ip: null, why: `its X-Forwarded-For hop ${JSON.stringify(hop.slice(0, 64))} is not an address`}
    if (!trusted.has(ip)) return {ip}
    if (first) return {ip: null, why: 'every X-Forwarded-For hop is a trusted proxy'}
  }
  return {ip: null, why: 'X-Forwarded-For has too many trusted hops'}
}

/** The client behind trusted proxy `proxy`, from the header group Roundcube logged (null: none). */
export function clientBehindProxy(group: string | null, header: ProxyHeader, trusted: ProxyList): ProxyClient {
  if (group === null) return {ip: null, why: 'no X-Forwarded-For or X-Real-IP header'}
  if (header === 'x-real-ip') {
    const ip = realIp(group)
    return ip === null ? {ip: null, why: 'no X-Real-IP address set by the proxy'} : {ip}
  }
  const hasXff = group.startsWith(XFF) || group.includes(`,${XFF}`)
  const viaXff = hasXff ? forwardedFor(group, trusted) : {ip: null, why: 'no X-Forwarded-For header'}
  if (header === 'x-forwarded-for') return viaXff
  const xri = realIp(group)
  if (viaXff.ip !== null && xri !== null && xri !== viaXff.ip && !trusted.has(xri)) {
    return {ip: null, disagree: true, why: `its headers disagree: X-Real-IP ${xri}, X-Forwarded-For ${viaXff.ip}`}
  }
  if (viaXff.ip !== null) return viaXff
  if (xri !== null && !trusted.has(xri)) return {ip: xri}
  return {ip: null, why: hasXff ? (viaXff.why ?? 'no usable header') : 'no usable X-Forwarded-For or X-Real-IP'}
}

/** Parses the configuration's `trustedProxies` entries. */
export function proxyList(entries: readonly (string | {address: string; header?: 'x-real-ip' | 'x-forwarded-for'})[]): ProxyList {
  return new ProxyList(entries.map((e) => (typeof e === 'string' ? {address: e, header: 'roundcube'} : {address: e.address, header: e.header ?? 'roundcube'})))
}
