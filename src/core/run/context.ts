/**
 * What every use case runs over: the context a command builds (configuration,
 * store, firewall, clock), and the few rules every one of them shares: which
 * addresses are never blocked, what an address is counted as, and the
 * database as the configuration counts it.
 */
import {type Config, proxyAddress} from '../config/config.js'
import type {BackendName, FirewallBackend} from '../firewall/index.js'
import {blockKey, hostAddresses, NetworkList, parseCidr} from '../net/ip.js'
import {mergeIntoNetworks} from '../decisions/networks.js'
import type {Entry, StoreData} from '../store/schema.js'
import type {Store} from '../store/store.js'

export interface GuardContext {
  config: Config
  store: Store
  firewall: FirewallBackend
  now: () => number
  /** Keep each matched line's text in its event (for --verbose). */
  keepText?: boolean
  /** Another backend (the one used before a switch, or all of them for flush). */
  makeBackend?: (name: BackendName, prefix: string) => FirewallBackend
}


export interface BlockInfo {
  ip: string
  instance: string
  attempts: number
  lastUser: string
  /** User names tried, most recent last (at most 10). */
  users: string[]
  blockedAt: number
  blockedUntil: number | null
  /** The rule that made the block (decisions/windows.ts); absent: not known (a block of an older rcguard). */
  rule?: string
  /** The failed logins that caused this block (within the blocking window); absent: not counted by a window (a network's swarm, an account under attack, an older block). */
  failures?: number
}


/** Never blocked: the configured whitelist, trusted proxies, this host's own addresses and the admin's whitelist. */
export function neverBlockSources(config: Config, data: StoreData): {cidr: string; label: string}[] {
  return [
    ...config.whitelist.map((c) => ({cidr: c, label: `whitelisted in the configuration (${parseCidr(c)?.text ?? c})`})),
    ...config.trustedProxies.map(proxyAddress).map((c) => ({cidr: c, label: `a trusted proxy (${parseCidr(c)?.text ?? c})`})),
    ...hostAddresses().map((ip) => ({cidr: ip, label: "this host's own address"})),
    ...data.whitelist.map((w) => ({cidr: w.cidr, label: `whitelisted (${w.cidr})`})),
  ]
}

export function whitelistOf(config: Config, data: StoreData): NetworkList {
  return new NetworkList(neverBlockSources(config, data))
}

/** What an address or entry is counted and blocked as under this configuration (see blockKey). */
export function keyOf(config: Config, never: NetworkList): (ip: string) => string {
  return (ip) => blockKey(ip, config.firewall.ipv6Prefix, never)
}

/**
 * The database as the configuration counts it: entries of an older key (IPv6
 * addresses from before per-network counting, another ipv6Prefix) merged into
 * their network's entry. Saved with the command's next write.
 */
export async function readData(ctx: GuardContext): Promise<StoreData> {
  return (await readDataTracked(ctx)).data
}

/** readData, and whether the merge changed the data (so it must be written even if nothing else does). */
export async function readDataTracked(ctx: GuardContext): Promise<{data: StoreData; merged: boolean}> {
  const data = await ctx.store.read()
  const merged = ctx.config.firewall.ipv6Prefix < 128 ? mergeIntoNetworks(data, keyOf(ctx.config, whitelistOf(ctx.config, data))) > 0 : false
  return {data, merged}
}

export function blockInfo(e: Entry, failures?: number): BlockInfo {
  return {
    ip: e.ip,
    instance: e.instance,
    attempts: e.attempts,
    lastUser: e.lastUser,
    // An entry from before users were recorded (schema 1) knows only its last user.
    users: e.users.length > 0 ? e.users : [e.lastUser],
    blockedAt: e.blockedAt ?? 0,
    blockedUntil: e.blockedUntil,
    ...(e.rule === undefined ? {} : {rule: e.rule}),
    ...(failures === undefined ? {} : {failures}),
  }
}
