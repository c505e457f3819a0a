/**
 * Proxies: Roundcube's proxy_whitelist against rcguard's trustedProxies,
 * both ways, and recent login lines that carry X-Forwarded-For / X-Real-IP
 * from an address rcguard does not trust (a proxy it should trust, or
 * clients sending the headers themselves).
 */
import {readTail} from '../../logreader/reader.js'
import {canonicalIp, cidrContains, parseCidr} from '../../net/ip.js'
import {parseLine} from '../../parser/parse.js'
import {ProxyList} from '../../parser/proxy.js'
import {proxyAddress} from '../../config/config.js'
import type {Finding} from '../types.js'
import {guardLogs, type DoctorInput} from './context.js'

/** How much of each log's end is read for recent lines. */
const TAIL_BYTES = 512 * 1024

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
  const now = Date.now()
  for (const g of guardLogs(config)) {
    const lines = await readTail(g.log.path, TAIL_BYTES).catch(() => [] as string[])
    const format = {format: g.log.format, ident: g.log.ident, sessionPrefix: 'optional' as const, ...(g.log.dateFormat === undefined ? {} : {dateFormat: g.log.dateFormat}), ...(g.log.timezone === undefined ? {} : {timezone: g.log.timezone})}
    for (const line of lines) {
      if (!line.includes('X-Forwarded-For: ') && !line.includes('X-Real-IP: ')) continue
      const e = parseLine(line, {countErrors: new Set(config.countErrors), trustedProxies: new ProxyList([])}, format, now)
      if (e === null || e.ip === null || e.groupStyle === undefined) continue
      const ip = canonicalIp(e.ip)
      if (ip === null || proxies.has(ip)) continue
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
  return out
}
