/**
 * Run control shared by the property tests: every property has its own fixed
 * seed, so a run is reproducible and a failure prints the seed and the shrunk
 * counterexample.
 * - RCGUARD_PROPERTY_RUNS=N multiplies every numRuns (a long soak: 50, 200);
 * - RCGUARD_PROPERTY_SEED=S replaces the fixed seeds (explore other inputs).
 */
import type fc from 'fast-check'

function positive(v: string | undefined): number | undefined {
  const n = Number(v)
  return v !== undefined && Number.isFinite(n) && n > 0 ? n : undefined
}

export const SCALE = positive(process.env.RCGUARD_PROPERTY_RUNS) ?? 1
export const SEED_OVERRIDE = process.env.RCGUARD_PROPERTY_SEED === undefined ? undefined : Number(process.env.RCGUARD_PROPERTY_SEED)

/** fast-check parameters for one property: its own seed, its base number of runs times the soak factor. */
export function params<T>(seed: number, numRuns: number, extra: Partial<fc.Parameters<T>> = {}): fc.Parameters<T> {
  return {seed: SEED_OVERRIDE ?? seed, numRuns: Math.max(1, Math.round(numRuns * SCALE)), ...extra}
}
