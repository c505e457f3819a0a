/**
 * The store behind an interface: one JSON file on this host (json-store.ts).
 * Every node keeps its own, cluster nodes too: their log positions, their
 * entries and the blocks they hold. What the nodes of a cluster share
 * (failures, blocks, the whitelist) lives in Redis beside it (core/cluster,
 * run/cluster-sync.ts), and each run makes this store hold the cluster's
 * blocks, so the rest of rcguard reads one store whether it is alone or not.
 */
import type {StoreData} from './schema.js'

export interface LockOptions {
  /** Wait for a busy lock (admin commands) or give up at once (cron runs). */
  wait: boolean
}

export interface Store {
  /** Where the data lives, for messages. */
  readonly location: string
  /** Reads and validates the data; a missing store reads as empty. Throws StoreError. */
  read(): Promise<StoreData>
  /** The data last read was brought up from an older schema: it must be written (with the old file kept). */
  readonly migrating: boolean
  /** The data last read was not changed and will not be written: a store that keeps what it wrote may keep this. */
  unchanged?(data: StoreData): void
  /** Replaces the data atomically. */
  write(data: StoreData): Promise<void>
  /** Keeps `bytes` (the data as it was before a repair) in a new file beside the store, tagged; returns its name. */
  keepCopy(bytes: Buffer, tag: string): Promise<string>
  /** Runs fn while holding the store's exclusive lock. Throws BusyError when it cannot be had. */
  withLock<T>(options: LockOptions, fn: () => Promise<T>): Promise<T>
}
