/**
 * The configuration file's text to a value for the schema. rcguard reads
 * YAML 1.2, of which JSON is a part; a file that is plain JSON is read with
 * JSON.parse, which gives the value the YAML reading would, and the YAML
 * parser (yaml.ts and the yaml package, a good part of a cron run's start)
 * is loaded only for a file that is not. The two readings differ only where
 * JSON.parse is more lenient, and there the file goes the YAML way, so every
 * refusal stays the same: repeated keys (JSON.parse keeps the last one) and
 * too deep a nesting are left to yaml.ts.
 */
import {checkStrings, deepLine, MAX_DEPTH} from './limits.js'

/**
 * How many `:` stand outside strings in a text that is valid JSON: one for
 * each member of each object, however many of them share a key.
 */
function memberSeparators(text: string): number {
  let count = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // backslash: the next character is escaped
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c === 0x3a) {
      count++
    }
  }
  return count
}

/** How many members the objects in a parsed JSON value have, all told. */
function members(value: unknown): number {
  if (Array.isArray(value)) return value.reduce((n: number, v) => n + members(v), 0)
  if (typeof value !== 'object' || value === null) return 0
  let n = 0
  for (const v of Object.values(value)) n += 1 + members(v)
  return n
}

/** The value of a text that is plain JSON, with every key once; undefined for anything else (YAML, or JSON that yaml.ts must judge). */
export function parseJsonDocument(text: string): {value: unknown} | undefined {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (deepLine(text, MAX_DEPTH) > 0 || memberSeparators(text) !== members(value)) return undefined
  return {value}
}

/** The document's value. Throws ConfigError, with the same message for a JSON file as for its YAML reading. */
export async function parseConfigDocument(text: string, path: string): Promise<unknown> {
  const json = parseJsonDocument(text)
  if (json === undefined) {
    const {parseConfigYaml} = await import('./yaml.js')
    return parseConfigYaml(text, path)
  }
  checkStrings(json.value, path)
  return json.value
}
