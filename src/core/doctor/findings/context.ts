/** What the findings look at: rcguard's configuration and Roundcube's, read once. */
import {existsSync, realpathSync} from 'node:fs'
import {basename, dirname, join} from 'node:path'
import type {Config, LogConfig} from '../../config/config.js'
import {logDirOf, type RoundcubeConfig, type RoundcubeProfile} from '../roundcube.js'

export interface DoctorInput {
  config: Config
  /** rcguard's configuration file, or null for the built-in defaults. */
  configPath: string | null
  roundcube: RoundcubeConfig
}

/** One log of rcguard's configuration, with the instance it belongs to. */
export interface GuardLog {
  instance: string
  log: LogConfig
  /** The path with its directory's links resolved (for comparison with Roundcube's). */
  real: string
}

/** A path with the links of its existing part resolved. */
export function realPath(path: string): string {
  if (existsSync(path)) {
    try {
      return realpathSync(path)
    } catch {
      return path
    }
  }
  const dir = dirname(path)
  return dir === path ? path : join(realPath(dir), basename(path))
}

export function guardLogs(config: Config): GuardLog[] {
  return config.instances.flatMap((i) => i.logs.map((log) => ({instance: i.name, log, real: realPath(log.path)})))
}

export const SYSLOG_FORMATS = new Set(['syslog', 'rfc3339', 'journal-json'])

/** The name of a profile for messages: `Roundcube` or `Roundcube for host mail.example.com`. */
export function profileName(p: RoundcubeProfile): string {
  return p.host === null ? 'Roundcube' : `Roundcube for host ${p.host} (include_host_config)`
}

/** The file-driver files a profile writes login lines to: errors always, userlogins with log_logins. */
export function fileLogs(p: RoundcubeProfile, rc: RoundcubeConfig): {name: 'errors' | 'userlogins'; path: string; real: string}[] {
  const dir = logDirOf(p.settings, rc.dirs)
  const names: ('errors' | 'userlogins')[] = p.settings.log_logins ? ['errors', 'userlogins'] : ['errors']
  return names.map((name) => {
    const raw = join(dir, `${name}${p.settings.log_file_ext}`)
    // Shown and compared with links resolved (Debian: /var/lib/roundcube/logs is /var/log/roundcube).
    const real = realPath(raw)
    return {name, path: real, real}
  })
}

/** The driver as rcube::write_log treats it: syslog, stdout, or (anything else) file. */
export function driverOf(p: RoundcubeProfile): 'file' | 'syslog' | 'stdout' {
  const d = p.settings.log_driver
  return d === 'syslog' || d === 'stdout' ? d : 'file'
}

const GLOB = /[*?[\]{}]/

/** Whether a log of rcguard's reads the file at `real` (its path, or a simple glob matching it). */
export function reads(g: GuardLog, real: string, path: string): boolean {
  if (!GLOB.test(g.log.path)) return g.real === real || g.log.path === path
  const re = new RegExp(`^${g.log.path.replace(/[.+^$()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`)
  return re.test(path) || re.test(real)
}

/** The syslog facility names of syslog(3), by number. */
export function facilityName(n: number): string {
  const names: Record<number, string> = {0: 'kern', 8: 'user', 16: 'mail', 24: 'daemon', 32: 'auth', 40: 'syslog', 48: 'lpr', 56: 'news', 64: 'uucp', 72: 'cron', 80: 'authpriv', 88: 'ftp'}
  if (n >= 128 && n <= 184 && n % 8 === 0) return `local${(n - 128) / 8}`
  return names[n] ?? `facility ${n}`
}

/** Where Debian's rsyslog puts a facility's messages. */
export function syslogFileOf(facility: number): string | null {
  if (facility === 16) return '/var/log/mail.log'
  if (facility === 32 || facility === 80) return '/var/log/auth.log'
  if (facility >= 128) return null
  return '/var/log/syslog'
}
