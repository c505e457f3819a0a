/**
 * An argument of `unblock` or `whitelist --remove` that is no address may be
 * what the admin copied from the database's own faulty record (the message
 * of a database that fails validation quotes it). Then the answer is how to
 * remove that record, not only that the argument is no address.
 */
import {StoreError, UsageError} from '../errors.js'
import {InvalidStoreError} from '../store/json-store.js'
import type {Store} from '../store/store.js'
import {quoted} from '../store/values.js'

/** Each argument parsed; one that does not parse but names an invalid record of the database says how to remove it. */
export async function parseOrHint(ctx: {store: Store}, args: readonly string[], parse: (arg: string) => string): Promise<string[]> {
  const out: string[] = []
  for (const arg of args) {
    try {
      out.push(parse(arg))
    } catch (err) {
      if (!(err instanceof UsageError)) throw err
      const record = await invalidRecordOf(ctx.store, arg)
      if (record === null) throw err
      throw new StoreError(
        `${quoted(arg)} is not an address or network, but the database ${ctx.store.location} holds it in ${record.what} (${record.where}), which fails validation: "rcguard flush --invalid" removes it and every other invalid record, keeping the rest (see rcguard(8), RECOVERY)`,
      )
    }
  }
  return out
}

async function invalidRecordOf(store: Store, text: string): Promise<{what: string; where: string} | null> {
  try {
    await store.read()
    return null
  } catch (err) {
    if (!(err instanceof InvalidStoreError)) return null
    return err.diagnosis.records.find((r) => r.stored === text || r.stored?.trim() === text.trim()) ?? null
  }
}
