/**
 * The configuration's YAML, parsed so that no document can crash, hang or
 * exhaust rcguard: plain YAML 1.2 (core schema: no merge keys, no
 * `!!binary`, `!!set`, `!!js/...` or other tags beyond the core ones), at
 * most MAX_DEPTH levels of nesting (limits.ts: checked on the text before the parser
 * sees it: the parser recurses, and a few thousand `[` crash Node outright),
 * unique keys (checked here in linear time: the parser's own check is
 * quadratic), and aliases that expand at most MAX_ALIAS_COUNT-fold ("billion
 * laughs"). Every refusal is a ConfigError naming the file and the line.
 */
import {isAlias, isMap, isScalar, LineCounter, parseDocument, visit, type Document, type Node} from 'yaml'
import {ConfigError} from '../errors.js'
import {checkDepth, checkStrings} from './limits.js'

/** What yaml's toJS allows by default, said explicitly: alias uses times the aliases inside the anchor's value. */
const MAX_ALIAS_COUNT = 100

/** The core schema's tags: writing one out (`!!str 0123`) changes nothing rcguard cannot read. */
const CORE_TAGS = new Set(['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((t) => `tag:yaml.org,2002:${t}`))

function lineOf(counter: LineCounter, node: {range?: [number, number, number] | null} | undefined): string {
  const pos = node?.range?.[0]
  return pos === undefined ? '' : ` (line ${counter.linePos(pos).line})`
}

/** Refuses what the parser accepts but rcguard will not: other tags, keys that are not plain, repeated keys, dangling aliases. */
function checkNodes(doc: Document, path: string, counter: LineCounter): void {
  const anchors = new Set<string>()
  let problem: string | null = null
  visit(doc, {
    Node(_key, node: Node) {
      if (node.tag !== undefined && !CORE_TAGS.has(node.tag)) {
        problem = `the tag ${node.tag.replace(/^tag:yaml\.org,2002:/, '!!')}${lineOf(counter, node)} is not supported: rcguard reads plain YAML`
        return visit.BREAK
      }
      if (isAlias(node)) {
        if (!anchors.has(node.source)) {
          problem = `the alias *${node.source}${lineOf(counter, node)} names no anchor before it`
          return visit.BREAK
        }
      } else if (node.anchor !== undefined) {
        anchors.add(node.anchor)
      }
      if (isMap(node)) {
        const seen = new Set<string>()
        for (const pair of node.items) {
          const key = pair.key as Node | null
          if (key !== null && !isScalar(key)) {
            problem = `a key${lineOf(counter, key)} is ${isAlias(key) ? 'an alias' : 'a list or a map'}: keys must be plain words`
            return visit.BREAK
          }
          const text = key === null ? '' : String(key.value)
          if (seen.has(text)) {
            problem = `the key ${JSON.stringify(text)}${lineOf(counter, key ?? undefined)} appears twice in the same map`
            return visit.BREAK
          }
          seen.add(text)
        }
      }
      return undefined
    },
  })
  if (problem !== null) throw new ConfigError(`configuration file ${path} is refused: ${problem as string}`)
}

/** The document's value, for the schema to validate. Throws ConfigError. */
export function parseConfigYaml(text: string, path: string): unknown {
  checkDepth(text, path)
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, {
    prettyErrors: false,
    lineCounter,
    version: '1.2',
    schema: 'core',
    merge: false,
    resolveKnownTags: false,
    uniqueKeys: false,
    strict: true,
  })
  const yamlError = (first: {pos: [number, number]; message: string}): ConfigError => {
    const line = lineCounter.linePos(first.pos[0]).line
    return new ConfigError(`configuration file ${path} is not valid YAML (line ${line}): ${first.message.split('\n')[0] ?? ''}`)
  }
  if (doc.errors[0] !== undefined) throw yamlError(doc.errors[0])
  // Under a "%YAML 1.1" directive the parser would take yes/no for booleans, 1:20 for 80, and merge keys.
  const version = doc.directives?.yaml
  if (version?.explicit === true && version.version !== '1.2') {
    throw new ConfigError(`configuration file ${path} is refused: it declares %YAML ${version.version}, and rcguard reads YAML 1.2 only: remove the directive (write true/false for booleans)`)
  }
  checkNodes(doc, path, lineCounter)
  // A warning would let a value through as something else than it says: refuse it too.
  if (doc.warnings[0] !== undefined) throw yamlError(doc.warnings[0])
  let value: unknown
  try {
    value = doc.toJS({maxAliasCount: MAX_ALIAS_COUNT})
  } catch (err) {
    const message = (err as Error).message
    if (/alias count/i.test(message)) {
      throw new ConfigError(
        `configuration file ${path} is refused: its aliases would expand it more than ${MAX_ALIAS_COUNT}-fold (a "billion laughs" document): write the values out`,
      )
    }
    if (err instanceof RangeError) throw new ConfigError(`configuration file ${path} is refused: through its aliases it nests too deeply`)
    throw new ConfigError(`configuration file ${path} cannot be read as YAML: ${message.split('\n')[0] ?? ''}`)
  }
  checkStrings(value, path)
  return value
}
