/**
 * The admin's actions on a cluster node (block, unblock, whitelist): made on
 * the cluster, so every node's next run follows them. The action is worked
 * out on this node's database as always (admin.ts); what it changed (blocks
 * by hand made, blocks lifted, whitelist entries added or removed) is then
 * written to Redis, before the database itself. Redis unreachable: the
 * command fails with nothing changed, here or there (a lift made here alone
 * would come back at the next run, from the cluster's block).
 */
import {ExitCode, RcguardError} from '../errors.js'
import {ClusterClient, ClusterUnreachable} from '../cluster/client.js'
import type {Config} from '../config/config.js'
import type {StoreData} from '../store/schema.js'
import {isBlockActive} from '../decisions/decide.js'

/** What an admin action changed, for the cluster: taken before the change (snapshot) and compared after. */
export interface AdminSnapshot {
  blocked: Map<string, {at: number | null}>
  /** Every entry (blocked or watched): one that goes is forgotten on the cluster too. */
  entries: Set<string>
  whitelist: Set<string>
}

export function snapshot(data: StoreData, now: number): AdminSnapshot {
  return {
    blocked: new Map(data.entries.filter((e) => isBlockActive(e, now)).map((e) => [`${e.instance} ${e.ip}`, {at: e.blockedAt}])),
    entries: new Set(data.entries.map((e) => `${e.instance} ${e.ip}`)),
    whitelist: new Set(data.whitelist.map((w) => w.cidr)),
  }
}

/** Writes to Redis what the action changed between `before` and `data`; throws RcguardError (exit 8) when Redis cannot be reached. */
export async function shareAdminChange(config: Config, before: AdminSnapshot, data: StoreData, now: number): Promise<void> {
  const cluster = config.cluster
  if (cluster === undefined) return
  const after = snapshot(data, now)
  // Blocks lifted, and entries forgotten (unblock of a watched address, whitelist): gone on the cluster too.
  const lifted = [...new Set([...before.blocked.keys(), ...before.entries])].filter((id) => (before.blocked.has(id) && !after.blocked.has(id)) || (before.entries.has(id) && !after.entries.has(id)))
  // Their failures waiting for Redis go with them.
  if (data.cluster !== undefined && lifted.length > 0) {
    const gone = new Set(lifted)
    data.cluster.outbox = data.cluster.outbox.filter((f) => !gone.has(`${f.instance} ${f.key}`))
  }
  const made = data.entries.filter((e) => e.rule === 'hand' && isBlockActive(e, now) && before.blocked.get(`${e.instance} ${e.ip}`)?.at !== e.blockedAt)
  const added = data.whitelist.filter((w) => !before.whitelist.has(w.cidr))
  const removed = [...before.whitelist].filter((c) => !after.whitelist.has(c))
  if (lifted.length + made.length + added.length + removed.length === 0) return
  let client: ClusterClient | null = null
  try {
    client = await ClusterClient.connect(cluster)
    const keys = client.keys
    const offset = await client.clockOffset(now)
    const redisTime = now + offset
    for (const w of added) {
      await client.call((r) => r.rcWhitelist(2, keys.whitelist(), keys.whitelistRemoved(), redisTime, '1', w.cidr, JSON.stringify({comment: w.comment, added: w.added + offset})))
    }
    for (const cidr of removed) await client.call((r) => r.rcWhitelist(2, keys.whitelist(), keys.whitelistRemoved(), redisTime, '0', cidr, ''))
    for (const id of lifted) {
      const [instance, key] = id.split(' ') as [string, string]
      await client.call((r) => r.rcUnblock(4, keys.blocks(instance), keys.failures(instance, key), keys.successes(instance), keys.tombstones(instance), redisTime, key))
    }
    for (const e of made) {
      const at = (e.blockedAt ?? now) + offset
      const blockMs = e.blockedUntil === null ? 0 : Math.max(1, e.blockedUntil - (e.blockedAt ?? now))
      await client.call((r) =>
        r.rcClaim(3, keys.blocks(e.instance), keys.failures(e.instance, e.ip), keys.tombstones(e.instance), redisTime, e.ip, at, 'hand', cluster.node, blockMs, 1, blockMs, config.escalation.forgetDays * 86_400_000, '1', e.comment ?? ''),
      )
    }
  } catch (err) {
    if (!(err instanceof ClusterUnreachable)) throw err
    throw new RcguardError(`cluster: ${err.message}: nothing was changed, on this node or the cluster; try again when Redis answers (or remove cluster: from the configuration to act on this node alone)`, ExitCode.CLUSTER)
  } finally {
    await client?.close()
  }
}

/**
 * `flush --cluster`: every key rcguard keeps in Redis under the prefix for the configured instances goes
 * (failures, blocks, tombstones, the nodes' record; the whitelist only with `all`), and a marker says when, so that every node drops at its
 * next run the blocks it holds from before (otherwise it would push them again as blocks Redis lost).
 * Returns how many keys were removed; throws RcguardError (exit 8) when Redis cannot be reached.
 */
export async function flushCluster(config: Config, all: boolean, now: number): Promise<number> {
  const cluster = config.cluster
  if (cluster === undefined) throw new RcguardError('flush --cluster: there is no cluster: section in the configuration', ExitCode.USAGE)
  let client: ClusterClient | null = null
  try {
    client = await ClusterClient.connect(cluster)
    const keys = client.keys
    const redisTime = now + (await client.clockOffset(now))
    const {patterns, single} = keys.flushable(config.instances.map((i) => i.name), all)
    let removed = await client.call((r) => r.unlink(...single))
    for (const pattern of patterns) {
      let cursor = '0'
      do {
        const [next, found] = await client.call((r) => r.scan(cursor, 'MATCH', pattern, 'COUNT', 1000))
        cursor = next
        if (found.length > 0) removed += await client.call((r) => r.unlink(...found))
      } while (cursor !== '0')
    }
    await client.call((r) => r.set(keys.flushed(), JSON.stringify({at: redisTime, all})))
    return removed
  } catch (err) {
    if (!(err instanceof ClusterUnreachable)) throw err
    throw new RcguardError(`cluster: ${err.message}: nothing was changed, on this node or the cluster; try again when Redis answers`, ExitCode.CLUSTER)
  } finally {
    await client?.close()
  }
}
