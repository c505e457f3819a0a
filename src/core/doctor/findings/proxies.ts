/**
 * Proxies: Roundcube's proxy_whitelist against rcguard's trustedProxies,
 * both ways, and recent login lines that carry X-Forwarded-For / X-Real-IP
 * from an address rcguard does not trust (a proxy it should trust, or
 * clients sending the headers themselves).
 */
import {readTail} from '../../logreader/reader.js'
import {canonicalIp, cidrContains, hostAddresses, isLoopback, NetworkList, parseCidr} from '../../net/ip.js'
import {parseLine} from '../../parser/parse.js'
import {ProxyList} from '../../parser/proxy.js'
import {proxyAddress} from '../../config/config.js'
import type {Finding} from '../types.js'
import {guardLogs, type DoctorInput} from './context.js'

/** How much of each log's end is read for recent lines. */
const TAIL_BYTES = 512 * 1024

/**
 * Cloudflare's published ranges (cloudflare.com/ips): lines from them reach
 * Roundcube through the CDN, whose own addresses are all this host's
 * firewall ever sees.
 */
const CDN_RANGES = new NetworkList([
  '173.245.48.0/20', '103.21.244.0/22', '103.22.200.0/22', '103.31.4.0/22', '141.101.64.0/18', '108.162.192.0/18',
  '190.93.240.0/20', '188.114.96.0/20', '197.234.240.0/22', '198.41.128.0/17', '162.158.0.0/15', '104.16.0.0/13',
  '104.24.0.0/14', '172.64.0.0/13', '131.0.72.0/22',
  '2400:cb00::/32', '2606:4700::/32', '2803:f800::/32', '2405:b500::/32', '2405:8100::/32', '2a06:98c0::/29', '2c0f:f248::/32',
])
/** At least this many recent login lines before their senders say anything about what is in front. */
const FRONT_MIN_LINES = 20
/** A front: at most this many remote senders carry this share of the lines, with forwarded headers. */
const FRONT_MAX_SENDERS = 3
const FRONT_SHARE = 0.8

function covered(address: string, nets: readonly string[]): boolean {
  const c = parseCidr(address)
  if (c === null) return false
  return nets.some((n) => {
    const net = parseCidr(n)
    return net !== null && net.family === c.family && net.prefix <= c.prefix && cidrContains(net, c.network.toString())
  })
}

export async function proxyFindings(input: DoctorInput): Promise<Finding[]> {
  const out: Finding[] = []
  const {roundcube: rc, config} = input
  const trusted = config.trustedProxies.map(proxyAddress)
  const whitelist = [...new Set(rc.profiles.flatMap((p) => p.settings.proxy_whitelist))]
  for (const w of whitelist) {
    if (parseCidr(w) === null) continue
    if (!covered(w, trusted)) {
      out.push({id: 'proxy-not-trusted', severity: 'error', message: `Roundcube takes ${w} for a reverse proxy (proxy_whitelist), rcguard does not (trustedProxies): every attempt through it counts against ${w} itself, so one client can get the proxy, and everyone behind it, blocked (or, whitelisted, nobody behind it is ever blocked)`, fix: `add ${w} to trustedProxies (with header: x-forwarded-for or x-real-ip, the one it sets)`})
    }
  }
  for (const t of trusted) {
    if (!covered(t, whitelist) && !whitelist.some((w) => covered(w, [t]))) {
      out.push({id: 'trusted-not-proxy', severity: 'warning', message: `rcguard takes clients from the headers of ${t} (trustedProxies), but Roundcube does not list it in proxy_whitelist: if it is not a proxy, any client at ${t} can name whom rcguard blocks`, fix: `if ${t} is your proxy, add it to $config['proxy_whitelist'] in ${rc.dirs.configFile}; if not, remove it from trustedProxies`})
    }
  }
  // Recent lines: REMOTE_ADDR (parsed with no proxy trusted) and whether the line carries a header group.
  const proxies = new ProxyList(config.trustedProxies.map((p) => ({address: proxyAddress(p), header: typeof p === 'string' ? 'roundcube' : p.header})))
  const bySender = new Map<string, number>()
  // Every recent login line's sender (REMOTE_ADDR), remote ones only (a proxy on this host is no front: the firewall sees the clients), and whether it forwarded.
  const front = new Map<string, {lines: number; forwarded: number}>()
  let loginLines = 0
  const local = new Set(hostAddresses())
  const now = Date.now()
  for (const g of guardLogs(config)) {
    const lines = await readTail(g.log.path, TAIL_BYTES).catch(() => [] as string[])
    const format = {format: g.log.format, ident: g.log.ident, sessionPrefix: 'optional' as const, ...(g.log.dateFormat === undefined ? {} : {dateFormat: g.log.dateFormat}), ...(g.log.timezone === undefined ? {} : {timezone: g.log.timezone})}
    for (const line of lines) {
      const forwarded = line.includes('X-Forwarded-For: ') || line.includes('X-Real-IP: ')
      if (!forwarded && !line.includes(' from ')) continue
      const e = parseLine(line, {countErrors: new Set(config.countErrors), trustedProxies: new ProxyList([])}, format, now)
      if (e === null || e.ip === null) continue
      const ip = canonicalIp(e.ip)
      if (ip === null) continue
      if (!isLoopback(ip) && !local.has(ip)) {
        loginLines++
        const f = front.get(ip) ?? {lines: 0, forwarded: 0}
        f.lines++
        if (e.groupStyle !== undefined) f.forwarded++
        front.set(ip, f)
      }
      if (e.groupStyle === undefined || proxies.has(ip)) continue
      bySender.set(ip, (bySender.get(ip) ?? 0) + 1)
    }
  }
  // One finding for Roundcube's own proxies rcguard misses, one for every other sender (a handful shown).
  const drop = 'have the web server drop the headers when there is no proxy (Apache: RequestHeader unset X-Forwarded-For and X-Real-IP; nginx with PHP-FPM: fastcgi_param HTTP_X_FORWARDED_FOR ""; and HTTP_X_REAL_IP "")'
  const senders = [...bySender].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
  const listed = senders.filter(([ip]) => covered(ip, whitelist))
  const others = senders.filter(([ip]) => !covered(ip, whitelist))
  const shown = (list: [string, number][]): string => `${list.slice(0, 5).map(([ip, n]) => `${ip} (${n})`).join(', ')}${list.length > 5 ? ` and ${list.length - 5} more` : ''}`
  const lines = (list: [string, number][]): number => list.reduce((a, [, n]) => a + n, 0)
  if (listed.length > 0) {
    out.push({id: 'forwarded-untrusted', severity: 'warning', message: `${lines(listed)} recent login lines carry X-Forwarded-For/X-Real-IP from Roundcube's proxies ${shown(listed)}, which rcguard does not trust: their clients are counted as the proxy`, fix: `add ${listed.map(([ip]) => ip).join(', ')} to trustedProxies`})
  }
  if (others.length > 0) {
    out.push({id: 'forwarded-untrusted', severity: 'warning', message: `${lines(others)} recent login lines carry X-Forwarded-For/X-Real-IP from ${others.length} address${others.length === 1 ? '' : 'es'} that are not trusted proxies: ${shown(others)}; ${others.length === 1 ? 'a proxy rcguard should trust, or a client' : 'clients'} sending the headers themselves (rcguard ignores them, but Roundcube logs them and plugins may believe them)`, fix: `if one of them is your proxy, add it to trustedProxies (and Roundcube's proxy_whitelist); else ${drop}`})
  }
  out.push(...frontFindings(front, loginLines))
  return out
}

/**
 * A CDN or load balancer in front: most recent login lines come from a few
 * remote addresses that forward their clients, or from a CDN's ranges. The
 * firewall here sees only those addresses, so a block at this host stops no
 * client (and blocking one of them would stop everyone behind it).
 */
function frontFindings(front: Map<string, {lines: number; forwarded: number}>, total: number): Finding[] {
  const cdn = [...front].filter(([ip]) => CDN_RANGES.match(ip) !== undefined)
  // The fewest senders that carry the share of the lines: a front when they are few and (mostly) forward their clients.
  const top: [string, {lines: number; forwarded: number}][] = []
  let topLines = 0
  for (const sender of [...front].sort((a, b) => b[1].lines - a[1].lines || (a[0] < b[0] ? -1 : 1))) {
    if (topLines >= FRONT_SHARE * total) break
    top.push(sender)
    topLines += sender[1].lines
  }
  const forwarding = top.every(([, f]) => f.forwarded * 2 >= f.lines)
  const concentrated = total >= FRONT_MIN_LINES && top.length <= FRONT_MAX_SENDERS && forwarding
  if (cdn.length === 0 && !concentrated) return []
  const senders = cdn.length > 0 ? cdn : top
  const lines = senders.reduce((n, [, f]) => n + f.lines, 0)
  const what = cdn.length > 0 ? "Cloudflare's addresses" : `${senders.length} address${senders.length === 1 ? '' : 'es'} that forward their clients`
  return [
    {
      id: 'behind-front',
      severity: 'warning',
      message: `${lines} of the last ${total} login lines reached Roundcube from ${what} (${senders.map(([ip]) => ip).join(', ')}): a CDN or load balancer is in front, and the firewall here sees only its addresses, so a block at this host stops no client`,
      fix: 'list those addresses in trustedProxies (and Roundcube\'s proxy_whitelist), so attempts count against the real clients and the front is never blocked; block the clients where their traffic enters: the CDN\'s own firewall rules, or rcguard on the load balancer itself',
    },
  ]
}
