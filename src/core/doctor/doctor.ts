/**
 * `rcguard doctor`: reads rcguard's configuration and Roundcube's real one
 * (roundcube.ts, by php) and reports every place they disagree, one finding
 * each with its fix (types.ts). Nothing is changed.
 */
import {DEFAULT_CONFIG_PATH, loadConfig, type LoadedConfig} from '../config/config.js'
import {RcguardError} from '../errors.js'
import {findRoundcube, readRoundcubeConfig, roundcubeDirs, RoundcubeReadError, type RoundcubeConfig, type RoundcubeDirs} from './roundcube.js'
import {doctorStatus, type Finding} from './types.js'
import {logFindings} from './findings/logs.js'
import {loggingFindings} from './findings/logging.js'
import {proxyFindings} from './findings/proxies.js'
import {listeners, portFindings} from './findings/ports.js'
import {backendFindings, clusterFindings, kernelFindings, rulesFindings, scheduleFindings, storeFindings} from './findings/system.js'

export interface DoctorOptions {
  /** rcguard's configuration file; undefined: the default path (built-in defaults when missing). */
  configPath?: string
  /** `--roundcube DIR`; undefined: the usual places (roundcube.ts). */
  roundcubeDir?: string
  php?: string
  /** Where /etc and /var are looked for by the scheduling checks: `/` but in tests (RCGUARD_DOCTOR_ROOT). */
  systemRoot?: string
}

export interface DoctorReport {
  findings: Finding[]
  status: 0 | 1 | 2
  /** rcguard's configuration file, or null for the built-in defaults. */
  config: string | null
  roundcube: RoundcubeDirs | null
}

/** Where Roundcube's configuration is, or a finding saying it is not. */
export function locateRoundcube(dir: string | undefined): RoundcubeDirs | Finding {
  const dirs = dir === undefined ? findRoundcube() : roundcubeDirs(dir)
  if (dirs !== null) return dirs
  return {
    id: 'roundcube-not-found',
    severity: 'error',
    message: dir === undefined ? 'no Roundcube configuration in /var/lib/roundcube, /etc/roundcube, /usr/share/roundcube, /var/www/roundcube or /var/www/html' : `${dir} holds no Roundcube configuration (neither config.inc.php nor config/config.inc.php)`,
    fix: 'name Roundcube\'s install directory or its config directory with --roundcube DIR',
  }
}

/** Roundcube's configuration, or the finding that says why it cannot be read. */
export async function readRoundcube(dir: string | undefined, php?: string): Promise<RoundcubeConfig | Finding> {
  const dirs = locateRoundcube(dir)
  if ('id' in dirs) return dirs
  try {
    return await readRoundcubeConfig(dirs, {php})
  } catch (err) {
    if (err instanceof RoundcubeReadError) return {id: err.kind === 'no-defaults' ? 'roundcube-defaults-missing' : err.kind, severity: 'error', message: err.message, fix: err.fix}
    throw err
  }
}

export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const findings: Finding[] = []
  let loaded: LoadedConfig | null = null
  const path = options.configPath ?? DEFAULT_CONFIG_PATH
  try {
    loaded = await loadConfig(path, options.configPath !== undefined)
  } catch (err) {
    if (!(err instanceof RcguardError)) throw err
    findings.push({id: 'rcguard-config', severity: 'error', message: err.message, fix: options.configPath === undefined && path === DEFAULT_CONFIG_PATH ? 'correct it, or write one with rcguard init' : 'correct it'})
  }
  const rc = await readRoundcube(options.roundcubeDir, options.php)
  if ('id' in rc) findings.push(rc)
  if (loaded !== null && !('id' in rc)) {
    if (loaded.path === null) findings.push({id: 'rcguard-config-missing', severity: 'warning', message: `${DEFAULT_CONFIG_PATH} does not exist: rcguard runs on its built-in defaults`, fix: 'write one with rcguard init'})
    for (const file of rc.unreadHosts) findings.push({id: 'roundcube-host-config', severity: 'warning', message: `include_host_config names ${file}, which php could not read: its settings are not checked`, fix: `create it, or remove it from include_host_config`})
    const input = {config: loaded.config, configPath: loaded.path, roundcube: rc}
    findings.push(...logFindings(input), ...loggingFindings(input), ...(await proxyFindings(input)))
  }
  if (loaded !== null) {
    findings.push(...backendFindings(loaded.config), ...scheduleFindings(options.systemRoot ?? '/'), ...(await storeFindings(loaded.config)), ...(await clusterFindings(loaded.config)))
    // The machine's sockets and live rules, only for the machine itself (a test's systemRoot is not where they are).
    const itself = options.systemRoot === undefined || options.systemRoot === '/'
    if (itself) {
      const kernel = await kernelFindings(loaded.config)
      // A kernel that refuses the backend cannot list its rules either: that one finding says it.
      findings.push(...kernel, ...(kernel.length > 0 ? [] : await rulesFindings(loaded.config)))
    }
    const sockets = itself ? await listeners() : null
    if (sockets !== null) findings.push(...portFindings(loaded.config, sockets))
  }
  return {findings, status: doctorStatus(findings), config: loaded?.path ?? null, roundcube: 'id' in rc ? null : rc.dirs}
}
