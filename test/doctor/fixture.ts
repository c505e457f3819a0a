/**
 * Real Roundcube configurations for doctor's tests: Debian's /etc/roundcube
 * (roundcube-core) copied into a temp directory, with the settings each case
 * needs appended to its config.inc.php as PHP, and read by the real php. The
 * host's /etc/roundcube is only read, never changed.
 *
 * Without php or Roundcube's defaults the tests skip and say why; under
 * CI=true that is a failure (CI installs php-cli and roundcube-core).
 */
import {copyFileSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync, appendFileSync} from 'node:fs'
import {join} from 'node:path'
import type {TestContext} from 'node:test'
import {execaSync} from 'execa'
import {tempDir} from '../helpers/env.js'

export const RC_SOURCE = '/etc/roundcube'

function missing(): string | null {
  try {
    execaSync('php', ['-v'])
  } catch {
    return 'php is not installed (apt-get install php-cli)'
  }
  if (!existsSync(join(RC_SOURCE, 'defaults.inc.php')) && !existsSync('/usr/share/roundcube/config/defaults.inc.php')) return `no Roundcube defaults.inc.php in ${RC_SOURCE} (apt-get install roundcube-core)`
  if (!existsSync(join(RC_SOURCE, 'config.inc.php'))) return `no ${RC_SOURCE}/config.inc.php (apt-get install roundcube-core)`
  return null
}

/** True when the test can run; else it is skipped with the reason (a failure under CI=true). */
export function requireRoundcube(t: TestContext): boolean {
  const reason = missing()
  if (reason === null) return true
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}: doctor tests must run in CI`)
  t.skip(reason)
  return false
}

export interface RcFixture {
  /** The temp directory: rc/ is Roundcube's config dir, logs/ its log_dir. */
  dir: string
  rcDir: string
  logDir: string
  errors: string
  userlogins: string
  /** A system root whose /etc/cron.d/rcguard runs rcguard (doctor's scheduling checks look there, not at the host). */
  root: string
  /** For cli(): RCGUARD_DOCTOR_ROOT set to root. */
  cliOptions: {env: Record<string, string>}
  /** Appends PHP to the copied config.inc.php. */
  php(code: string): void
  /** Writes an rcguard configuration (JSON, which is YAML) and returns its path. */
  guard(config: Record<string, unknown>): string
}

/**
 * A copy of the host's Roundcube configuration, made deterministic: file
 * driver into the fixture's logs/, log_logins on, session prefixes, no
 * proxies, no host configurations. Then `extra` (PHP) is appended.
 */
export function rcFixture(t: {after: (fn: () => void) => void}, extra = ''): RcFixture {
  const dir = tempDir(t, 'rcguard-doctor-')
  const rcDir = join(dir, 'rc')
  const logDir = join(dir, 'logs')
  mkdirSync(rcDir)
  mkdirSync(logDir)
  for (const name of readdirSync(RC_SOURCE)) {
    const from = join(RC_SOURCE, name)
    if (statSync(from).isFile()) copyFileSync(from, join(rcDir, name))
  }
  if (!existsSync(join(rcDir, 'defaults.inc.php'))) copyFileSync('/usr/share/roundcube/config/defaults.inc.php', join(rcDir, 'defaults.inc.php'))
  const errors = join(logDir, 'errors.log')
  const userlogins = join(logDir, 'userlogins.log')
  writeFileSync(errors, '')
  writeFileSync(userlogins, '')
  const php = (code: string): void => appendFileSync(join(rcDir, 'config.inc.php'), `\n${code}\n`)
  php(
    [
      '// rcguard test fixture',
      "$config['log_driver'] = 'file';",
      `$config['log_dir'] = ${JSON.stringify(`${logDir}/`)};`,
      "$config['log_file_ext'] = '.log';",
      "$config['log_date_format'] = 'd-M-Y H:i:s O';",
      "$config['log_session_id'] = 8;",
      "$config['log_logins'] = true;",
      "$config['per_user_logging'] = false;",
      "$config['proxy_whitelist'] = [];",
      "$config['login_lc'] = 2;",
      "$config['include_host_config'] = false;",
    ].join('\n'),
  )
  if (extra !== '') php(extra)
  const root = join(dir, 'root')
  mkdirSync(join(root, 'etc', 'cron.d'), {recursive: true})
  writeFileSync(join(root, 'etc', 'cron.d', 'rcguard'), 'PATH=/usr/sbin:/usr/bin:/sbin:/bin\n* * * * * root rcguard hacks\n')
  let n = 0
  return {
    root,
    cliOptions: {env: {RCGUARD_DOCTOR_ROOT: root}},
    dir,
    rcDir,
    logDir,
    errors,
    userlogins,
    php,
    guard(config) {
      const path = join(dir, `rcguard-${++n}.yml`)
      writeFileSync(path, JSON.stringify({database: join(dir, 'db.json'), ...config}))
      return path
    },
  }
}

/** The rcguard configuration that matches the fixture as made: both logs, no proxies. */
export function cleanGuard(f: RcFixture, instance: Record<string, unknown> = {}, top: Record<string, unknown> = {}): string {
  return f.guard({instances: [{name: 'master', ports: [443], logs: [f.userlogins, f.errors], ...instance}], ...top})
}
