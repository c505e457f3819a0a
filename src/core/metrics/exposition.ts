/**
 * The Prometheus text exposition format (version 0.0.4), as far as rcguard
 * writes it: families with HELP and TYPE lines, samples without timestamps
 * (node_exporter's textfile collector refuses them), label values escaped.
 * And the way back: the samples of a file rcguard wrote, so the counters it
 * holds are never lower than the last file's (metrics.ts).
 */

/** A series as the store keeps it and the file writes it: `name` or `name{label="value",…}` (values escaped). */
export const SERIES_KEY = /^rcguard_[a-z_]{1,64}(\{[a-z_]{1,32}="(?:[^"\\\n]|\\[\\"n]){0,256}"(,[a-z_]{1,32}="(?:[^"\\\n]|\\[\\"n]){0,256}"){0,3}\})?$/

/** The most series the store keeps (a few per instance: bounded by the configuration, this bounds the file). */
export const MAX_SERIES = 10_000

export type MetricType = 'counter' | 'gauge'

export interface Sample {
  labels: [name: string, value: string][]
  value: number
}

export interface Family {
  name: string
  help: string
  type: MetricType
  samples: Sample[]
}

/** A label value as the exposition format writes it between double quotes: backslash, double quote and line feed escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`))
}

/** HELP text: backslash and line feed escaped (a double quote stays). */
function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === '\n' ? '\\n' : '\\\\'))
}

/** The series' name and labels as written: the key of a sample. */
export function seriesKey(name: string, labels: Sample['labels'] = []): string {
  if (labels.length === 0) return name
  return `${name}{${labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`
}

/** A value as the format writes it: Go's float text for the few values rcguard has (integers, seconds with a fraction). */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Infinity) return '+Inf'
  if (value === -Infinity) return '-Inf'
  return String(value)
}

/** The families as one exposition text, ending in a line feed. */
export function render(families: Family[]): string {
  const out: string[] = []
  for (const f of families) {
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`)
    for (const s of f.samples) out.push(`${seriesKey(f.name, s.labels)} ${formatValue(s.value)}`)
  }
  return `${out.join('\n')}\n`
}

/**
 * The samples of an exposition text rcguard wrote: key → value. Comments,
 * lines of other shapes, series rcguard does not write and values that are
 * no finite non-negative number are passed over: what comes back is only
 * ever a floor for rcguard's own counters.
 */
export function parseSamples(text: string): Map<string, number> {
  const samples = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const space = line.lastIndexOf(' ')
    if (space <= 0) continue
    const key = line.slice(0, space)
    const value = Number(line.slice(space + 1))
    if (!SERIES_KEY.test(key) || !Number.isFinite(value) || value < 0) continue
    samples.set(key, value)
  }
  return samples
}
