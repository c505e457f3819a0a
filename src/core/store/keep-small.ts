/**
 * What every run that writes the database does before it writes: drop the
 * entries that can no longer lead to a block and keep block history compact
 * (decisions/decide.ts pruneEntries), then hold the entries to the ceiling
 * (bounds.ts keepWithin). Returns the run's warning about the ceiling, if any,
 * and whether anything changed.
 */
import {pruneEntries, type DecisionSettings} from '../decisions/decide.js'
import {ceilingWarning, keepWithin} from './bounds.js'
import type {StoreData} from './schema.js'

export function keepSmall(data: StoreData, settings: DecisionSettings & {maxEntries: number}, now: number): {warnings: string[]; changed: boolean} {
  const pruned = pruneEntries(data, settings, now)
  const ceiling = keepWithin(data, settings.maxEntries)
  const warning = ceilingWarning(ceiling, settings.maxEntries)
  return {warnings: warning === null ? [] : [warning], changed: pruned > 0 || ceiling.watching + ceiling.history > 0}
}
