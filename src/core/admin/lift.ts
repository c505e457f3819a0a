/**
 * `unblock` and `whitelist --remove`, as changes to the database's data:
 * what each argument removes, and what still holds for it afterwards, so that
 * neither command says "unblocked" (or "removed") while the address is still
 * blocked (or still never blocked) because of something else.
 *
 * `unblock ADDR` deletes the entries inside ADDR's own scope: the entry it
 * counts against (its IPv6 network with firewall.ipv6Prefix, else the
 * address) and any narrower one. A wider network entry that holds it (a /48
 * kept from an earlier ipv6Prefix, a /64 kept after ipv6Prefix was raised to
 * 128, an IPv4 or IPv6 network blocked by hand) is other addresses' block as well: it is not lifted on the way, but
 * named, with the command that lifts it.
 *
 * `whitelist --remove NET` deletes the database's whitelist entry of exactly
 * NET; whatever else keeps all of NET from being blocked (a wider database
 * entry, the configuration's whitelist or trusted proxies, this host's own
 * addresses, loopback) is named.
 */
import type {Config} from '../config/config.js'
import {proxyAddress} from '../config/config.js'
import {isBlockActive, neverBlockReason} from '../decisions/decide.js'
import {cidrsOverlap, cidrText, compareIps, hostAddresses, parseCidr, type Cidr, type NetworkList} from '../net/ip.js'
import type {Entry, StoreData} from '../store/schema.js'

/** Something the command did not change that still decides the argument's fate. */
export interface StillInForce {
  /** The argument, canonical. */
  arg: string
  /** unblock: the network whose block still covers it; whitelist: the network that still keeps it from being blocked. */
  by: string
  /** unblock: the instance of that block. */
  instance?: string
  /** unblock: when that block ends (null: until deleted). */
  until?: number | null
  /** whitelist: where that network comes from, e.g. `the configuration's whitelist`. */
  source?: string
  /** What to do about it: a command, or what to change. */
  fix: string
}

export interface Removal {
  done: string[]
  notFound: string[]
  stillInForce: StillInForce[]
}

export interface UnblockRules {
  now: number
  /** What an address or network is counted and blocked as (blockKey under this configuration). */
  key: (ip: string) => string
  /** What is never blocked (the whitelists, trusted proxies, this host). */
  never: NetworkList
  /** The configured instances: only their entries have rules. */
  instances: ReadonlySet<string>
}

function parsed(e: Entry): Cidr | null {
  return parseCidr(e.ip)
}

function inside(inner: Cidr, outer: Cidr): boolean {
  return inner.prefix >= outer.prefix && cidrsOverlap(inner, outer)
}

export function unblockEntries(data: StoreData, args: readonly string[], rules: UnblockRules): Removal {
  const out: Removal = {done: [], notFound: [], stillInForce: []}
  for (const arg of args) {
    const scope = parseCidr(rules.key(arg)) ?? parseCidr(arg)
    if (scope === null) {
      out.notFound.push(arg)
      continue
    }
    // An address's own scope holds only its own entry (a network entry that holds the address is wider, and
    // named below); otherwise only entries of the scope's family can lie inside it, and only those are parsed.
    const single = scope.prefix === (scope.family === 4 ? 32 : 128) ? scope.text.slice(0, scope.text.indexOf('/')) : null
    const v6 = scope.family === 6
    const matching = data.entries.filter((e) => {
      if (single !== null && !e.ip.includes('/')) return e.ip === single
      if (e.ip.includes(':') !== v6) return false
      const c = parsed(e)
      return c !== null && inside(c, scope)
    })
    if (matching.length > 0) {
      const wasBlocked = matching.some((e) => isBlockActive(e, rules.now))
      const gone = new Set(matching)
      data.entries = data.entries.filter((e) => !gone.has(e))
      const names = [...new Set(matching.map((e) => e.ip))].sort(compareIps)
      const what = names.length === 1 && names[0] === arg ? '' : ` ${names.map((n) => (n.includes('/') ? `network ${n}` : n)).join(', ')}`
      out.done.push(`${arg}:${what} ${wasBlocked ? 'unblocked and forgotten' : 'forgotten (it was not blocked)'}; it is blocked again if it misbehaves again`)
    }
    // What still blocks it: a wider entry whose rule covers the scope, as desiredState makes the rules.
    const holders = data.entries.filter((e) => {
      if (!isBlockActive(e, rules.now) || !rules.instances.has(e.instance) || neverBlockReason(e.ip, rules.never) !== null) return false
      const rule = parseCidr(cidrText(rules.key(e.ip)))
      return rule !== null && cidrsOverlap(rule, scope)
    })
    for (const e of holders.sort((a, b) => compareIps(a.ip, b.ip) || a.instance.localeCompare(b.instance))) {
      const rule = cidrText(rules.key(e.ip))
      out.stillInForce.push({arg, by: rule, instance: e.instance, until: e.blockedUntil, fix: `"rcguard unblock ${rule}" lifts it`})
    }
    if (matching.length === 0 && holders.length === 0) out.notFound.push(arg)
  }
  return out
}

/** The first of `list` that holds all of `net`. */
function holding(list: readonly string[], net: Cidr): Cidr | undefined {
  for (const text of list) {
    const c = parseCidr(text)
    if (c !== null && c.prefix <= net.prefix && cidrsOverlap(c, net)) return c
  }
  return undefined
}

/**
 * Who else keeps all of `net` from being blocked once the database's own entry
 * of it is gone, with what to do about it. A never-blocked address inside a
 * removed network (this host's own) is no reason to complain.
 */
function stillNever(config: Config, data: StoreData, net: Cidr): Omit<StillInForce, 'arg'> | null {
  const db = holding(data.whitelist.map((w) => w.cidr), net)
  if (db !== undefined) return {by: db.text, source: "the database's whitelist", fix: `"rcguard whitelist --remove ${db.text}" removes it`}
  const conf = holding(config.whitelist, net)
  if (conf !== undefined) return {by: conf.text, source: "the configuration's whitelist", fix: 'remove it from whitelist in the configuration file'}
  const proxy = holding(config.trustedProxies.map(proxyAddress), net)
  if (proxy !== undefined) return {by: proxy.text, source: 'trustedProxies in the configuration', fix: 'a trusted proxy is never blocked'}
  const host = holding(hostAddresses(), net)
  if (host !== undefined) return {by: host.text, source: "this host's own addresses", fix: "this host's own addresses are never blocked"}
  const loopback = holding(['127.0.0.0/8', '::1/128'], net)
  if (loopback !== undefined) return {by: loopback.text, source: 'loopback', fix: 'loopback is never blocked'}
  return null
}

export function removeFromWhitelist(data: StoreData, cidrs: readonly string[], config: Config): Removal {
  const out: Removal = {done: [], notFound: [], stillInForce: []}
  const removed = new Set<string>()
  for (const cidr of cidrs) {
    const before = data.whitelist.length
    data.whitelist = data.whitelist.filter((w) => w.cidr !== cidr)
    if (data.whitelist.length < before) removed.add(cidr)
  }
  for (const cidr of cidrs) {
    if (removed.has(cidr)) out.done.push(`${cidr}: removed from the whitelist`)
    const net = parseCidr(cidr)
    const still = net === null ? null : stillNever(config, data, net)
    if (still !== null) out.stillInForce.push({arg: cidr, ...still})
    else if (!removed.has(cidr)) out.notFound.push(cidr)
  }
  return out
}
