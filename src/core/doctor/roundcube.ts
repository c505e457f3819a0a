/**
 * Roundcube's own configuration, as Roundcube reads it: a small PHP script,
 * run by the real `php`, includes defaults.inc.php and then config.inc.php
 * the way rcube_config::load_from_file does (each file fills `$config`; the
 * arrays are merged, the later winning), and prints the keys rcguard cares
 * about with json_encode. PHP is never read with regular expressions: a
 * config.inc.php may include other files (Debian's debian-db-roundcube.php),
 * compute values or use constants (LOG_USER, RCUBE_INSTALL_PATH).
 *
 * Directories (`--roundcube DIR`):
 * - an install directory: DIR/config holds config.inc.php (Roundcube's
 *   RCUBE_CONFIG_DIR) and DIR is RCUBE_INSTALL_PATH;
 * - a configuration directory: DIR holds config.inc.php; the install
 *   directory is DIR/.. when that has program/, else DIR itself.
 * defaults.inc.php is looked for where rcube_config looks: the configuration
 * directory, then the install directory's config/ (Debian keeps both in
 * /etc/roundcube, which /var/lib/roundcube/config links to).
 * Without the flag: /var/lib/roundcube (Debian), then /etc/roundcube,
 * /usr/share/roundcube, /var/www/roundcube, /var/www/html.
 *
 * The script's output is untrusted (a config file can print, or set any
 * value): it is validated with zod and bounded in size and time.
 */
import {existsSync, statSync} from 'node:fs'
import {dirname, join, resolve} from 'node:path'
import * as z from 'zod'

export const DEFAULT_ROUNDCUBE_DIRS = ['/var/lib/roundcube', '/etc/roundcube', '/usr/share/roundcube', '/var/www/roundcube', '/var/www/html'] as const

export interface RoundcubeDirs {
  /** RCUBE_CONFIG_DIR: where config.inc.php is. */
  configDir: string
  /** RCUBE_INSTALL_PATH: the cwd of Roundcube's requests, and the base of relative paths. */
  installDir: string
  configFile: string
  /** defaults.inc.php, or null when none was found. */
  defaultsFile: string | null
}

const isDir = (p: string): boolean => {
  try {
    return statSync(p).isDirectory()
  } catch {
    return false
  }
}

/** The directories of the Roundcube at `dir` (see the module comment), or null when it holds no Roundcube configuration. */
export function roundcubeDirs(dir: string): RoundcubeDirs | null {
  const abs = resolve(dir)
  let configDir: string
  let installDir: string
  if (existsSync(join(abs, 'config', 'config.inc.php')) || existsSync(join(abs, 'config', 'defaults.inc.php'))) {
    installDir = abs
    configDir = join(abs, 'config')
  } else if (existsSync(join(abs, 'config.inc.php')) || existsSync(join(abs, 'defaults.inc.php'))) {
    configDir = abs
    installDir = isDir(join(dirname(abs), 'program')) ? dirname(abs) : abs
  } else {
    return null
  }
  const candidates = [join(configDir, 'defaults.inc.php'), join(installDir, 'config', 'defaults.inc.php'), '/usr/share/roundcube/config/defaults.inc.php']
  return {configDir, installDir, configFile: join(configDir, 'config.inc.php'), defaultsFile: candidates.find((c) => existsSync(c)) ?? null}
}

/** The first of the usual places that holds a Roundcube configuration. */
export function findRoundcube(): RoundcubeDirs | null {
  for (const d of DEFAULT_ROUNDCUBE_DIRS) {
    const found = roundcubeDirs(d)
    if (found !== null) return found
  }
  return null
}

/** The keys read: everything about where and how Roundcube logs, and whom it takes for a proxy. */
export const KEYS = ['log_driver', 'log_dir', 'log_file_ext', 'log_date_format', 'log_session_id', 'syslog_id', 'syslog_facility', 'per_user_logging', 'log_logins', 'proxy_whitelist', 'login_lc'] as const

/**
 * Includes the files as rcube_config does. argv: defaults, config (may be
 * missing), install dir, config dir. Warnings go to stderr (display_errors);
 * anything the files print is dropped (ob_start, as Roundcube does).
 */
const SCRIPT = String.raw`
error_reporting(E_ALL & ~E_NOTICE & ~E_DEPRECATED & ~E_WARNING);
$a = $argv; array_shift($a); if (isset($a[0]) && $a[0] === '--') array_shift($a);
list($defaults, $main, $install, $cfgdir) = $a;
$install = rtrim($install, '/') . '/'; $cfgdir = rtrim($cfgdir, '/') . '/';
define('INSTALL_PATH', $install); define('RCUBE_INSTALL_PATH', $install);
define('RCMAIL_CONFIG_DIR', rtrim($cfgdir, '/')); define('RCUBE_CONFIG_DIR', $cfgdir);
set_include_path($cfgdir . PATH_SEPARATOR . $install . PATH_SEPARATOR . get_include_path());
function rcguard_load($rcguard_file) {
  ob_start(); include $rcguard_file; ob_end_clean();
  if (isset($config) && is_array($config)) return $config;
  if (isset($rcmail_config) && is_array($rcmail_config)) return $rcmail_config;
  return null;
}
$keys = json_decode($a[4], true);
$pick = function ($c) use ($keys) { $o = []; foreach ($keys as $k) if (array_key_exists($k, $c)) $o[$k] = $c[$k]; return $o; };
$d = rcguard_load($defaults);
if ($d === null) { fwrite(STDERR, "defaults.inc.php sets no \$config array\n"); exit(3); }
if (is_file($main) && !is_readable($main)) { fwrite(STDERR, "cannot read $main: run as root (or as a member of its group)\n"); exit(4); }
$hasMain = is_file($main);
$c = $hasMain ? rcguard_load($main) : null;
$all = array_merge($d, is_array($c) ? $c : []);
$hosts = [];
if (!empty($all['include_host_config']) && is_array($all['include_host_config'])) {
  foreach ($all['include_host_config'] as $host => $file) {
    if (!is_string($file)) continue;
    $path = $file[0] === '/' ? $file : $cfgdir . $file;
    $h = is_file($path) && is_readable($path) ? rcguard_load($path) : null;
    $hosts[] = ['host' => (string)$host, 'file' => $path, 'loaded' => is_array($h), 'config' => $pick(array_merge($all, is_array($h) ? $h : []))];
  }
}
ob_start(); ob_end_clean();
echo json_encode(['main' => $hasMain, 'mainLoaded' => is_array($c), 'config' => $pick($all), 'hosts' => $hosts], JSON_PARTIAL_OUTPUT_ON_ERROR | JSON_INVALID_UTF8_SUBSTITUTE | JSON_UNESCAPED_SLASHES);
`

const flag = z.union([z.boolean(), z.number(), z.string(), z.null()]).transform((v) => (typeof v === 'string' ? v !== '' && v !== '0' : Boolean(v)))
const text = (fallback: string) => z.union([z.string(), z.number(), z.null()]).transform((v) => (v === null ? fallback : String(v)))
const int = (fallback: number) => z.union([z.number(), z.string(), z.boolean(), z.null()]).transform((v) => {
  const n = typeof v === 'boolean' ? Number(v) : typeof v === 'string' ? Number.parseInt(v, 10) : (v ?? fallback)
  return Number.isFinite(n) ? Math.trunc(n) : fallback
})

/** The keys as Roundcube would use them; absent keys take the values rcube.php falls back to. */
export const roundcubeSettingsSchema = z.object({
  log_driver: text('file').default('file'),
  log_dir: text('').default(''),
  log_file_ext: text('.log').default('.log'),
  log_date_format: text('d-M-Y H:i:s O').default('d-M-Y H:i:s O'),
  log_session_id: int(8).default(8),
  syslog_id: text('roundcube').default('roundcube'),
  syslog_facility: int(8).default(8),
  per_user_logging: flag.default(false),
  log_logins: flag.default(false),
  proxy_whitelist: z.union([z.array(z.union([z.string(), z.number()]).transform(String)).max(10_000), z.string().transform((s) => (s === '' ? [] : [s])), z.null().transform(() => [])]).default([]),
  login_lc: int(2).default(2),
})

export type RoundcubeSettings = z.infer<typeof roundcubeSettingsSchema>

const outputSchema = z.object({
  main: z.boolean(),
  mainLoaded: z.boolean(),
  config: roundcubeSettingsSchema,
  hosts: z.array(z.object({host: z.string().max(1024), file: z.string().max(4096), loaded: z.boolean(), config: roundcubeSettingsSchema})).max(1000),
})

/** One configuration Roundcube runs with: its main one, or one of include_host_config's. */
export interface RoundcubeProfile {
  /** null: the main configuration; else the HTTP host include_host_config names. */
  host: string | null
  /** The file this profile's last values came from. */
  file: string
  settings: RoundcubeSettings
}

export interface RoundcubeConfig {
  dirs: RoundcubeDirs
  /** config.inc.php exists (else Roundcube runs on its defaults). */
  main: boolean
  profiles: RoundcubeProfile[]
  /** Host files include_host_config names that could not be read. */
  unreadHosts: string[]
}

/** Why Roundcube's configuration could not be read: one line, and its fix. */
export class RoundcubeReadError extends Error {
  constructor(
    message: string,
    readonly kind: 'php-missing' | 'php-failed' | 'no-defaults' | 'bad-output',
    readonly fix: string,
  ) {
    super(message)
  }
}

export interface ReadOptions {
  /** The php binary (default: `php` on PATH). */
  php?: string
  timeoutMs?: number
}

/** The largest output accepted from the script: far above the keys read. */
const MAX_OUTPUT = 4 * 1024 * 1024

/** Runs php on the configuration at dirs (see the module comment). */
export async function readRoundcubeConfig(dirs: RoundcubeDirs, options: ReadOptions = {}): Promise<RoundcubeConfig> {
  if (dirs.defaultsFile === null) {
    throw new RoundcubeReadError(`no defaults.inc.php in ${dirs.configDir} or ${join(dirs.installDir, 'config')}: not a Roundcube 1.x configuration`, 'no-defaults', `point --roundcube at Roundcube's install directory or its config directory`)
  }
  const php = options.php ?? 'php'
  // execa loads only for doctor and init (a cron run of hacks never loads it: test/cli/bundle.test.ts).
  const {execa} = await import('execa')
  const r = await execa(php, ['-d', 'display_errors=stderr', '-d', 'log_errors=0', '-d', 'html_errors=0', '-r', SCRIPT, '--', dirs.defaultsFile, dirs.configFile, dirs.installDir, dirs.configDir, JSON.stringify(KEYS)], {
    cwd: dirs.installDir,
    reject: false,
    timeout: options.timeoutMs ?? 20_000,
    maxBuffer: MAX_OUTPUT,
    stdin: 'ignore',
    env: {...process.env, LC_ALL: 'C'},
    extendEnv: true,
    stripFinalNewline: true,
  })
  if (r.failed && (r as {code?: string}).code === 'ENOENT') {
    throw new RoundcubeReadError(`php not found on PATH: rcguard doctor runs php to read Roundcube's configuration`, 'php-missing', 'apt-get install php-cli (or put the php Roundcube runs with on PATH)')
  }
  if (r.timedOut) throw new RoundcubeReadError(`php took longer than ${Math.round((options.timeoutMs ?? 20_000) / 1000)} s to read ${dirs.configFile}`, 'php-failed', `run php -l ${dirs.configFile} and look at what it includes`)
  const stderr = String(r.stderr ?? '').split('\n').filter((l) => l.trim() !== '').slice(-1)[0] ?? ''
  if (r.exitCode !== 0) {
    throw new RoundcubeReadError(`php could not read Roundcube's configuration in ${dirs.configDir} (exit ${String(r.exitCode)})${stderr === '' ? '' : `: ${stderr.slice(0, 300)}`}`, 'php-failed', `run php -l ${dirs.configFile}; doctor must run as a user that can read it (root)`)
  }
  let doc: unknown
  try {
    doc = JSON.parse(String(r.stdout))
  } catch {
    throw new RoundcubeReadError(`php printed no JSON reading ${dirs.configDir}`, 'bad-output', `run php -l ${dirs.configFile}`)
  }
  const parsed = outputSchema.safeParse(doc)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new RoundcubeReadError(`Roundcube's configuration in ${dirs.configDir} holds a value rcguard cannot use: ${issue === undefined ? 'invalid' : `${issue.path.join('.')}: ${issue.message}`}`, 'bad-output', `correct that key in ${dirs.configFile}`)
  }
  const out = parsed.data
  const profiles: RoundcubeProfile[] = [{host: null, file: out.main ? dirs.configFile : dirs.defaultsFile, settings: out.config}]
  for (const h of out.hosts) if (h.loaded) profiles.push({host: h.host, file: h.file, settings: h.config})
  return {dirs, main: out.main, profiles, unreadHosts: out.hosts.filter((h) => !h.loaded).map((h) => h.file)}
}

/** The directory Roundcube's file driver writes to (rcube::write_log): log_dir, else <install>/logs; relative to the install directory. */
export function logDirOf(settings: RoundcubeSettings, dirs: RoundcubeDirs): string {
  const d = settings.log_dir === '' ? join(dirs.installDir, 'logs') : settings.log_dir
  return resolve(dirs.installDir, d)
}
