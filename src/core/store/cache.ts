/**
 * A store that remembers what it last wrote, for a long-running process
 * (`rcguard watch`): the next read, when the file on disk is still the very
 * one it wrote (same device, inode, size and modification time), hands back
 * the data it wrote instead of reading, parsing and validating the file again.
 * Any other writer replaces the file by rename (a new inode), so its changes
 * are always read.
 *
 * The data is lent, not shared: a read takes it out of the cache, and only a
 * write puts it back. A cycle that failed half way, having changed the data
 * in memory without saving it, leaves nothing behind: the next read is the
 * file's. Every write happens under the store's lock, and the stamp is taken
 * under the same lock right after it, so it is the stamp of this write.
 */
import {stat} from 'node:fs/promises'
import type {StoreData} from './schema.js'
import type {LockOptions, Store} from './store.js'

interface Stamp {
  dev: bigint
  ino: bigint
  size: bigint
  mtimeNs: bigint
}

async function stampOf(path: string): Promise<Stamp | null> {
  try {
    const s = await stat(path, {bigint: true})
    return {dev: s.dev, ino: s.ino, size: s.size, mtimeNs: s.mtimeNs}
  } catch {
    return null
  }
}

function same(a: Stamp, b: Stamp): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs
}

export class CachingStore implements Store {
  private kept: {data: StoreData; stamp: Stamp} | null = null
  /** The stamp of the file the data last handed out was read from (null: from memory, or no file). */
  private readFrom: Stamp | null = null
  private servedFromMemory = false
  /** Reads served from memory and from the file, for --verbose and tests. */
  readonly reads = {cached: 0, file: 0}

  constructor(private readonly inner: Store) {}

  get location(): string {
    return this.inner.location
  }

  async read(): Promise<StoreData> {
    const kept = this.kept
    this.kept = null
    const now = await stampOf(this.inner.location)
    if (kept !== null && now !== null && same(now, kept.stamp)) {
      this.reads.cached++
      this.readFrom = now
      this.servedFromMemory = true
      return kept.data
    }
    this.reads.file++
    this.servedFromMemory = false
    // Under the lock nobody writes between this stat and the read.
    const data = await this.inner.read()
    this.readFrom = now
    return data
  }

  get migrating(): boolean {
    return !this.servedFromMemory && this.inner.migrating
  }

  /** Not written: served again as long as the file is the one it was read from. */
  unchanged(data: StoreData): void {
    if (this.readFrom !== null && !this.migrating) this.kept = {data, stamp: this.readFrom}
  }

  async write(data: StoreData): Promise<void> {
    this.kept = null
    await this.inner.write(data)
    const stamp = await stampOf(this.inner.location)
    if (stamp !== null) this.kept = {data, stamp}
  }

  keepCopy(bytes: Buffer, tag: string): Promise<string> {
    return this.inner.keepCopy(bytes, tag)
  }

  withLock<T>(options: LockOptions, fn: () => Promise<T>): Promise<T> {
    return this.inner.withLock(options, fn)
  }
}
