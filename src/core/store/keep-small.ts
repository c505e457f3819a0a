/**
 * What every run that writes the database does before it writes: drop the
 * entries that can no longer lead to a block and keep block history compact
 * (decisions/decide.ts pruneEntries), then hold the entries to the ceiling
 * (bounds.ts keepWithin). Returns the run's warning about the ceiling, if any.
 */
import {pruneEntries, type DecisionSettings} from '../decisions/decide.js'
import {ceilingWarning, keepWithin} from './bounds.js'
import type {StoreData} from './schema.js'

export function keepSmall(data: StoreData, settings: DecisionSettings & {maxEntries: number}, now: number): string[] {
  pruneEntries(data, settings, now)
  const warning = ceilingWarning(keepWithin(data, settings.maxEntries), settings.maxEntries)
  return warning === null ? [] : [warning]
}
