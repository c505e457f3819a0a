/**
 * `rcguard flush --invalid`: the way out of a database that fails
 * validation because of some of its records (an entry whose address is no
 * address, a whitelist network that is none, a nonsense position), without
 * editing the JSON by hand and without losing the rest. The records at
 * fault are listed, the file as it was is kept beside it (a new file, never
 * overwritten), and the database is written without them; then the firewall
 * is brought in line with it, as after `unblock`.
 *
 * The list is read without the lock, so that waiting for the admin's answer
 * never holds up a cron run; what is removed is read again under the lock and
 * must be the same list, or nothing is done.
 */
import {StoreError} from '../errors.js'
import type {InvalidRecord} from '../store/diagnose.js'
import {InvalidStoreError} from '../store/json-store.js'
import type {StoreData} from '../store/schema.js'
import type {Store} from '../store/store.js'

export interface RepairResult {
  /** The records at fault (none: the database is valid, nothing was done). */
  records: InvalidRecord[]
  /** Whether they were removed (false: not confirmed, or there were none). */
  removed: boolean
  /** Where the file as it was is kept, once removed. */
  kept: string | null
  firewallChanged: boolean
}

async function invalidOf(store: Store): Promise<InvalidStoreError | null> {
  try {
    await store.read()
    return null
  } catch (err) {
    if (err instanceof InvalidStoreError) return err
    throw err
  }
}

const same = (a: InvalidRecord[], b: InvalidRecord[]): boolean => JSON.stringify(a) === JSON.stringify(b)

export async function removeInvalid(
  store: Store,
  confirm: (records: InvalidRecord[]) => Promise<boolean>,
  sync: (data: StoreData) => Promise<{changed: boolean}>,
): Promise<RepairResult> {
  const seen = await invalidOf(store)
  if (seen === null) return {records: [], removed: false, kept: null, firewallChanged: false}
  const records = seen.diagnosis.records
  if (!(await confirm(records))) return {records, removed: false, kept: null, firewallChanged: false}
  return store.withLock({wait: true}, async () => {
    const now = await invalidOf(store)
    if (now === null || now.diagnosis.repaired === null || !same(now.diagnosis.records, records)) {
      throw new StoreError(`database ${store.location} changed while the invalid records were listed; nothing was removed: run "rcguard flush --invalid" again`)
    }
    const kept = await store.keepCopy(now.bytes, 'invalid')
    await store.write(now.diagnosis.repaired)
    const fw = await sync(now.diagnosis.repaired)
    return {records, removed: true, kept, firewallChanged: fw.changed}
  })
}
