/**
 * Bounds every configuration document is held to, whether it is read as
 * JSON (document.ts) or as YAML (yaml.ts): its nesting, checked on the text
 * before any parser sees it, and no NUL in any string.
 */
import {ConfigError} from '../errors.js'

/** Far deeper than any configuration (about 6), far below where the parser's recursion fails (about 1000). */
export const MAX_DEPTH = 64

/**
 * An upper bound of the document's nesting, and the first line where it
 * exceeds `limit` (0 when it does not): block nesting by indentation and
 * leading `- `, `? `, `: ` indicators, plus flow nesting by `[` and `{`.
 * Brackets are counted even inside quotes and comments, which can only make
 * the bound larger: a real configuration stays far below the limit anyway.
 */
export function deepLine(text: string, limit: number): number {
  const indents: number[] = []
  let flow = 0
  let lineNo = 0
  for (const line of text.split('\n')) {
    lineNo++
    let col = 0
    while (line[col] === ' ') col++
    const rest = line.slice(col)
    if (flow === 0 && rest.trim() !== '' && !rest.startsWith('#')) {
      while (indents.length > 0 && (indents[indents.length - 1] ?? 0) >= col) indents.pop()
      indents.push(col)
      // "- - - x": each indicator opens one more level.
      let at = col
      while (/^[-?:]( |$)/.test(line.slice(at))) {
        at += 1
        while (line[at] === ' ') at++
        indents.push(at - 1)
      }
    }
    if (indents.length + flow > limit) return lineNo
    for (const c of rest) {
      if (c === '[' || c === '{') {
        flow++
        if (indents.length + flow > limit) return lineNo
      } else if ((c === ']' || c === '}') && flow > 0) {
        flow--
      }
    }
  }
  return 0
}

/** Refuses a text that nests more than MAX_DEPTH levels (see deepLine). */
export function checkDepth(text: string, path: string): void {
  const deep = deepLine(text, MAX_DEPTH)
  if (deep > 0) {
    throw new ConfigError(`configuration file ${path} is refused: it nests more than ${MAX_DEPTH} levels deep (line ${deep})`)
  }
}

/** A string holding NUL can be no path, name or address: refuse it by key (fs would throw on it much later). */
export function checkStrings(value: unknown, path: string, where: string[] = []): void {
  // Aliases inside anchors can nest deeper than the text does: still a bounded walk.
  if (where.length > 2 * MAX_DEPTH) throw new ConfigError(`configuration file ${path} is refused: through its aliases it nests more than ${2 * MAX_DEPTH} levels deep`)
  if (typeof value === 'string') {
    if (value.includes('\u0000')) {
      throw new ConfigError(`invalid configuration in ${path}: ${where.join('.') || '(top level)'}: holds a NUL character`)
    }
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => checkStrings(v, path, [...where, String(i)]))
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) checkStrings(v, path, [...where, k])
  }
}
