/**
 * The firewall as the store wants it: the desired state (per instance, its
 * ports and the networks in force), bringing the backend in line with it, and
 * removing rcguard's objects from every backend.
 */
import type {Config} from '../config/config.js'
import {activeBlocks} from '../decisions/decide.js'
import {FirewallError} from '../errors.js'
import {afterSave, merge} from '../firewall/backend.js'
import {ownershipOf, recordMarked} from '../firewall/ownership.js'
import {installedBackends, type ApplyResult, type BackendName, type DesiredState} from '../firewall/index.js'
import {blockKey, cidrText, familyOf, sortIps, withoutNested} from '../net/ip.js'
import type {StoreData} from '../store/schema.js'
import {type GuardContext, whitelistOf, keyOf} from './context.js'
import {scan} from './pipeline.js'

/**
 * The firewall's desired state from the store: per instance, its ports and
 * the networks in force. Each entry is blocked as blockKey says, the rule the
 * failures are counted by: an IPv6 entry of an older key (an address from
 * before per-network counting) is still widened to firewall.ipv6Prefix (e.g.
 * /64) unless that network would reach a never-blocked one, and a network
 * entry (IPv4 or IPv6) is blocked whole, never when it overlaps a never-blocked
 * address (activeBlocks). An address or network inside another blocked one is
 * left out: the wider rule blocks it already, and an nft interval set refuses
 * overlapping elements.
 */
export function desiredState(config: Config, data: StoreData, now: number): DesiredState {
  const never = whitelistOf(config, data)
  const blocks = activeBlocks(data, never, now)
  const key = keyOf(config, never)
  return {
    instances: config.instances.map((inst) => {
      const ips = blocks.get(inst.name) ?? []
      const v6 = [...new Set(ips.filter((ip) => familyOf(ip) === 6).map((ip) => cidrText(key(ip))))]
      // IPv4 is blocked as stored, already in compareIps's order (activeBlocks); most lists hold addresses only.
      const v4 = ips.filter((ip) => familyOf(ip) === 4)
      const v4Networks = v4.some((ip) => ip.includes('/'))
      return {
        name: inst.name,
        ports: inst.ports,
        v4: v4Networks ? withoutNested(v4.map(cidrText)) : v4.map((ip) => `${ip}/32`),
        v6: withoutNested(sortIps(v6)),
      }
    }),
  }
}

/**
 * Brings the firewall in line with the store (or removes every rule when
 * disabled). When the backend or prefix changed since the last run, the old
 * backend's objects are removed first, so a switch leaves nothing behind.
 */
export async function syncFirewall(ctx: GuardContext, data: StoreData): Promise<ApplyResult> {
  const result: ApplyResult = {changed: false, drift: [], applied: []}
  const current = {backend: ctx.firewall.name, prefix: ctx.config.firewall.prefix}
  const previous = data.firewall
  if (previous !== undefined && (previous.backend !== current.backend || previous.prefix !== current.prefix)) {
    if (previous.backend !== 'none' && ctx.makeBackend !== undefined) {
      const old = await ctx.makeBackend(previous.backend as BackendName, previous.prefix).remove(ownershipOf(previous, previous.backend, previous.prefix))
      old.drift.unshift(`firewall changed from ${previous.backend} (${previous.prefix}) to ${current.backend} (${current.prefix}): old objects removed`)
      merge(result, old)
    }
  }
  const own = ownershipOf(previous, current.backend, current.prefix)
  merge(result, ctx.config.enabled ? await ctx.firewall.apply(desiredState(ctx.config, data, ctx.now()), own) : await ctx.firewall.remove(own))
  if (ctx.config.enabled && result.changed) {
    const cause = previous === undefined ? 'first' : previous.removed === 'flush' ? 'after-flush' : previous.removed === 'disabled' ? 're-enabled' : undefined
    if (cause !== undefined) result.cause = cause
  }
  let write = recordMarked(data, current.backend, current.prefix)
  if (!ctx.config.enabled && data.firewall !== undefined) {
    // Removed on purpose: the run that sets them up again says so (see ApplyResult.cause).
    write ||= data.firewall.removed !== 'disabled'
    data.firewall.removed = 'disabled'
  }
  if (write) await ctx.store.write(data)
  return result
}

/** After the store is saved: a firewall failure names what was kept. */
export function firewallFailed(err: unknown): never {
  if (err instanceof FirewallError) throw afterSave(err)
  throw err
}

/** `scan`: new log lines into the store; no firewall change. */

/**
 * Removes rcguard's objects from every firewall tool present: the current
 * backend's and any other's (a backend used before, a database lost), under
 * the configured prefix and the one last recorded.
 */
export async function removeEverywhere(ctx: GuardContext, data: StoreData | null = null): Promise<ApplyResult> {
  const result = await ctx.firewall.remove(ownershipOf(data?.firewall, ctx.firewall.name, ctx.config.firewall.prefix))
  if (ctx.makeBackend === undefined) return result
  const prefixes = new Set([ctx.config.firewall.prefix, data?.firewall?.prefix ?? ctx.config.firewall.prefix])
  for (const prefix of prefixes) {
    for (const name of installedBackends()) {
      if (name === ctx.firewall.name && prefix === ctx.config.firewall.prefix) continue
      merge(result, await ctx.makeBackend(name, prefix).remove(ownershipOf(data?.firewall, name, prefix)))
    }
  }
  return result
}

