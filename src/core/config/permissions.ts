/**
 * rcguard runs as root and trusts its configuration and its logs. A file or
 * directory anyone may write is reported: through it, anyone could make
 * rcguard block whom they like (a forged log) or nobody (a changed config).
 */
import {stat} from 'node:fs/promises'
import {dirname} from 'node:path'
import type {Config} from './config.js'

async function worldWritable(path: string): Promise<boolean> {
  try {
    const st = await stat(path)
    // A sticky directory (like /tmp) lets nobody replace another user's files.
    return (st.mode & 0o002) !== 0 && !(st.isDirectory() && (st.mode & 0o1000) !== 0)
  } catch {
    return false
  }
}

/** One warning per world-writable configuration file, log or directory holding one. */
export async function looseWrites(configPath: string | null, config: Config): Promise<string[]> {
  const checks: [string, string][] = []
  if (configPath !== null) checks.push([configPath, 'configuration file'], [dirname(configPath), 'configuration directory'])
  for (const instance of config.instances) {
    for (const log of instance.logs) {
      if (!/[*?[\]{}]/.test(log.path)) checks.push([log.path, 'log'])
      checks.push([dirname(log.path), 'log directory'])
    }
  }
  const seen = new Set<string>()
  const out: string[] = []
  for (const [path, what] of checks) {
    if (seen.has(path)) continue
    seen.add(path)
    if (await worldWritable(path)) {
      out.push(`${what} ${path} is writable by every user: anyone could change what rcguard blocks; chmod o-w ${path}`)
    }
  }
  return out
}
