/** The order `rcguard list` documents, checked over its JSON rows. */
import assert from 'node:assert/strict'

export interface OrderedRow {
  state: string
  lastSeen: string | null
}

/** Blocked first, then watching, then whitelisted; within each, last seen newest first. */
export function assertListOrder(rows: readonly OrderedRow[]): void {
  const rank: Record<string, number> = {blocked: 0, watching: 1, whitelisted: 2}
  for (let i = 1; i < rows.length; i++) {
    const a = rows[i - 1] as OrderedRow
    const b = rows[i] as OrderedRow
    const d = (rank[a.state] ?? 9) - (rank[b.state] ?? 9)
    assert.ok(d < 0 || (d === 0 && (a.lastSeen ?? '') >= (b.lastSeen ?? '')), `row ${i}: ${JSON.stringify(a)} before ${JSON.stringify(b)}`)
  }
}
