/**
 * `rcguard init`: a first /etc/rcguard/rcguard.yml made from what doctor
 * reads of Roundcube (roundcube.ts): the logs it writes and their formats,
 * its proxies, the firewall backend installed here. Commented, so the admin
 * sees what each value is for; never written over an existing file unless
 * forced; mode 0600 (rcguard's permission checks refuse a file others can
 * write, and a notify section may later hold a password).
 */
import {constants} from 'node:fs'
import {link, open, rename, unlink} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'
import {resolveTrusted, shown} from '../config/trust.js'
import {ExitCode, RcguardError, errorMessage} from '../errors.js'
import {detectBackend} from '../firewall/index.js'
import {parseCidr} from '../net/ip.js'
import type {RoundcubeConfig} from './roundcube.js'
import {driverOf, facilityName, fileLogs, profileName, syslogFileOf} from './findings/context.js'

const DEFAULT_DATE_FORMAT = 'd-M-Y H:i:s O'
const q = (s: string): string => JSON.stringify(s)

export interface InitChoices {
  /** The backend to write; default: the one `auto` would pick here (nft when installed). */
  backend?: string
  /** The ports the web server listens on (findings/ports.ts); default 80 and 443. */
  ports?: number[]
}

/** The configuration text for the Roundcube read. */
export function initConfigText(rc: RoundcubeConfig, choices: InitChoices = {}): string {
  const logs: string[] = []
  const seen = new Set<string>()
  const add = (path: string, lines: string[], why: string): void => {
    if (seen.has(path)) return
    seen.add(path)
    logs.push(`      # ${why}`, `      - path: ${q(path)}`, ...lines.map((l) => `        ${l}`))
  }
  for (const p of rc.profiles) {
    const s = p.settings
    const who = profileName(p)
    const driver = driverOf(p)
    if (driver === 'file') {
      // userlogins first: with log_logins it holds every attempt (its errors-log twin counts once).
      for (const f of [...fileLogs(p, rc)].reverse()) {
        const extra = ['format: file']
        if (s.log_date_format !== DEFAULT_DATE_FORMAT) extra.push(`dateFormat: ${q(s.log_date_format)}`)
        add(f.path, extra, `${who}: its ${f.name} log (log_driver file)`)
      }
    } else if (driver === 'syslog') {
      const file = syslogFileOf(s.syslog_facility) ?? '/var/log/roundcube-syslog.log'
      const why = syslogFileOf(s.syslog_facility) === null ? `${who}: syslog facility ${facilityName(s.syslog_facility)}; have rsyslog write it to this file` : `${who}: syslog (facility ${facilityName(s.syslog_facility)})`
      add(file, ['format: auto', `ident: ${q(s.syslog_id)}`], why)
    } else {
      add('/var/log/php-fpm.log', ['format: stdout'], `${who}: log_driver stdout; name the file the web server or php-fpm writes its output to`)
    }
  }
  const proxies = [...new Set(rc.profiles.flatMap((p) => p.settings.proxy_whitelist))].filter((w) => parseCidr(w) !== null)
  const backend = choices.backend ?? detectBackend()
  const main = rc.profiles[0]
  const loginLc = main?.settings.login_lc ?? 2
  const out = [
    `# rcguard configuration, written by rcguard init from Roundcube's configuration in ${rc.dirs.configDir}.`,
    '# man rcguard.yml(5) describes every key; rcguard doctor checks this file against Roundcube.',
    '',
    '# Block after maxAttempts failures within periodMinutes, for blockMinutes (longer each time it comes back).',
    'maxAttempts: 6',
    'periodMinutes: 10',
    'blockMinutes: 60',
    'database: /var/lib/rcguard/db.json',
    '',
    '# Never blocked: add your own networks.',
    'whitelist:',
    '  - 127.0.0.0/8',
    '  - "::1"',
    '',
    "# Reverse proxies in front of Roundcube (its proxy_whitelist): clients are read from their headers.",
    '# Name the header each one sets (header: x-forwarded-for or x-real-ip) when you know it.',
    proxies.length === 0 ? 'trustedProxies: []' : 'trustedProxies:',
    ...proxies.map((p) => `  - ${q(p)}`),
    '',
    'instances:',
    '  - name: master',
    `    # Roundcube's login_lc`,
    `    loginLc: ${loginLc}`,
    `    # The ports the web server serves Roundcube on${choices.ports !== undefined && choices.ports.length > 0 ? ' (where it listens now, by ss)' : ''}: blocked addresses lose these.`,
    `    ports: [${(choices.ports !== undefined && choices.ports.length > 0 ? choices.ports : [80, 443]).join(', ')}]`,
    '    logs:',
    ...logs,
    '',
    'firewall:',
    `    # ${backend === 'nftables' ? 'nft is installed' : backend === 'ipset' ? 'ipset and iptables are installed, nft is not' : 'nft and ipset are not installed'}`,
    `    backend: ${backend}`,
    '    action: DROP',
    '    chains: [INPUT]',
    '',
  ]
  return out.join('\n')
}

/**
 * Writes text to path: refused when path exists and not force (exit status 3),
 * else written whole (a temporary file, then link or rename) with mode 0600, into a directory nobody
 * but root (or the user running rcguard) can write; refused otherwise (exit status 3).
 */
export async function writeInitConfig(path: string, text: string, force: boolean): Promise<void> {
  // Written as root: into a directory nobody else can write, reached by its real path (config/trust.ts, as the
  // database's), so no link swapped in on the way makes the write land elsewhere. Missing: made 0700.
  let found
  try {
    found = await resolveTrusted(dirname(path), {leaf: 'directory', create: true})
  } catch (err) {
    throw new RcguardError(`cannot create the directory ${shown(dirname(path))} for ${path}: ${errorMessage(err)}`, ExitCode.CONFIG)
  }
  if (found.kind === 'untrusted') {
    throw new RcguardError(`not writing ${path}: ${shown(found.at)} ${found.reason}, so whoever can write there could replace the configuration or aim the write elsewhere; fix: ${found.fix}`, ExitCode.CONFIG)
  }
  if (found.kind === 'missing') throw new RcguardError(`cannot create the directory ${shown(dirname(path))} for ${path}`, ExitCode.CONFIG)
  const name = basename(path)
  path = join(found.real, name)
  const tmp = join(found.real, `.${name}.${process.pid}.tmp`)
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
  try {
    await fh.writeFile(text)
    await fh.chmod(0o600)
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    if (force) await rename(tmp, path)
    else await link(tmp, path)
  } catch (err) {
    await unlink(tmp).catch(() => undefined)
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new RcguardError(`${path} exists: not overwritten (rcguard init --force replaces it)`, ExitCode.CONFIG)
    throw new RcguardError(`cannot write ${path}: ${errorMessage(err)}`, ExitCode.CONFIG)
  }
  if (!force) await unlink(tmp).catch(() => undefined)
}
