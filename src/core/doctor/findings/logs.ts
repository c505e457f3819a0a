/**
 * Logs: where Roundcube writes its login lines (log_driver, log_dir,
 * log_file_ext, syslog_id, syslog_facility, log_date_format,
 * per_user_logging) against the logs rcguard reads and their formats.
 */
import type {Finding} from '../types.js'
import {driverOf, facilityName, fileLogs, guardLogs, profileName, reads, SYSLOG_FORMATS, syslogFileOf, type DoctorInput, type GuardLog} from './context.js'

const DEFAULT_DATE_FORMAT = 'd-M-Y H:i:s O'

export function logFindings(input: DoctorInput): Finding[] {
  const out: Finding[] = []
  const {roundcube: rc, config} = input
  const logs = guardLogs(config)
  /** rcguard logs that some profile writes to, by driver. */
  const used = new Set<GuardLog>()
  // A log at a file-driver path (<log_dir>/errors.log, userlogins.log) of any profile, whatever its driver, is no syslog or stdout log.
  const fileOfAnyProfile = (g: GuardLog): boolean => rc.profiles.some((p) => fileLogs({...p, settings: {...p.settings, log_logins: true}}, rc).some((f) => reads(g, f.real, f.path)))
  const configFile = rc.dirs.configFile

  for (const p of rc.profiles) {
    const who = profileName(p)
    const s = p.settings
    const driver = driverOf(p)
    if (driver === 'file') {
      const files = fileLogs(p, rc)
      const readers = files.map((f) => ({f, by: logs.filter((g) => reads(g, f.real, f.path))}))
      for (const {by} of readers) for (const g of by) used.add(g)
      const errors = readers.find((r) => r.f.name === 'errors')
      const userlogins = readers.find((r) => r.f.name === 'userlogins')
      if (readers.every((r) => r.by.length === 0)) {
        const paths = files.map((f) => f.path).join(' and ')
        out.push({id: 'log-not-read', severity: 'error', message: `${who} writes its login lines to ${paths} (log_driver file, log_dir ${s.log_dir === '' ? '(default)' : s.log_dir}), and rcguard reads neither: it sees none of that Roundcube's failed logins`, fix: `add ${files.map((f) => f.path).join(' and ')} to instances[].logs in ${input.configPath ?? '/etc/rcguard/rcguard.yml'}`})
      } else if (userlogins !== undefined && userlogins.by.length === 0) {
        out.push({id: 'log-not-read', severity: 'warning', message: `${who} writes ${userlogins.f.path} (log_logins is on) and rcguard does not read it: logins refused before IMAP (error 1, scripts without a login token; error 4, login_rate_limit) are only in that log`, fix: `add ${userlogins.f.path} to instances[].logs`})
      }
      for (const r of readers) {
        for (const g of r.by) {
          if (g.log.format !== 'auto' && g.log.format !== 'file') {
            out.push({id: 'log-format', severity: 'error', message: `log ${g.log.path} is read as format ${g.log.format}, but ${who} writes it with the file driver ([date]: lines): no line of it is recognised`, fix: `set format: file (or auto) for ${g.log.path}`})
          }
          if (s.log_date_format !== DEFAULT_DATE_FORMAT && g.log.dateFormat !== s.log_date_format) {
            const sev = g.log.dateFormat === undefined ? 'warning' : 'error'
            out.push({id: 'log-date-format', severity: sev, message: `${who} writes dates as log_date_format '${s.log_date_format}', but rcguard reads ${g.log.path} ${g.log.dateFormat === undefined ? 'with its built-in date shapes' : `as '${g.log.dateFormat}'`}: lines whose date it cannot read are skipped`, fix: `set dateFormat: '${s.log_date_format}' for ${g.log.path}`})
          }
        }
      }
      if (errors !== undefined && errors.by.length > 0 && s.per_user_logging) {
        out.push({id: 'per-user-logging', severity: 'info', message: `${who} has per_user_logging on: lines of logged-in users may go to ${errors.f.path.replace(/[^/]*$/, '')}<user>/, but login attempts (no user yet) and userlogins stay in the logs rcguard reads`, fix: 'nothing to change'})
      }
      // A userlogins file rcguard reads while log_logins is off: Roundcube never writes it.
      if (!s.log_logins) {
        const would = fileLogs({...p, settings: {...s, log_logins: true}}, rc).find((f) => f.name === 'userlogins')
        if (would !== undefined) for (const g of logs.filter((g) => reads(g, would.real, would.path))) used.add(g)
      }
    } else if (driver === 'syslog') {
      const fmtOk = (g: GuardLog): boolean => SYSLOG_FORMATS.has(g.log.format) || (g.log.format === 'auto' && !fileOfAnyProfile(g))
      const readers = logs.filter(fmtOk)
      const facility = facilityName(s.syslog_facility)
      const where = syslogFileOf(s.syslog_facility)
      if (readers.length === 0) {
        out.push({id: 'log-not-read', severity: 'error', message: `${who} logs to syslog (log_driver syslog, syslog_id ${s.syslog_id}, facility ${facility}), and rcguard reads no syslog log: it sees none of that Roundcube's failed logins`, fix: where === null ? `have rsyslog write ${facility}.* to a file (e.g. ${facility}.* /var/log/roundcube-syslog.log) and add it with format: auto and ident: ${s.syslog_id}` : `add ${where} (format: auto, ident: ${s.syslog_id}) to instances[].logs`})
        continue
      }
      const named = readers.filter((g) => g.log.ident === s.syslog_id)
      for (const g of named) used.add(g)
      if (named.length === 0) {
        for (const g of readers) used.add(g)
        out.push({id: 'syslog-ident', severity: 'error', message: `${who} logs to syslog as '${s.syslog_id}' (syslog_id), but rcguard reads ${readers.map((g) => g.log.path).join(', ')} for the identity '${readers[0]?.log.ident ?? 'roundcube'}': no line is taken as Roundcube's`, fix: `set ident: ${s.syslog_id} for the syslog log`})
      }
    } else {
      const readers = logs.filter((g) => g.log.format === 'stdout' || (g.log.format === 'auto' && !fileOfAnyProfile(g)))
      for (const g of readers) used.add(g)
      if (readers.length === 0) {
        out.push({id: 'log-not-read', severity: 'error', message: `${who} writes its logs to the web server's standard output (log_driver stdout), and rcguard reads no log of that format: it sees none of that Roundcube's failed logins`, fix: `add the file the web server or php-fpm writes its output to (or the container log) with format: stdout`})
      }
    }
  }

  // A log rcguard reads that Roundcube never writes (a wrong path, or userlogins with log_logins off).
  for (const g of logs) {
    if (used.has(g)) {
      const userlogins = rc.profiles.find((p) => driverOf(p) === 'file' && !p.settings.log_logins && fileLogs({...p, settings: {...p.settings, log_logins: true}}, rc).some((f) => f.name === 'userlogins' && reads(g, f.real, f.path)))
      const alsoWritten = rc.profiles.some((p) => driverOf(p) === 'file' && fileLogs(p, rc).some((f) => reads(g, f.real, f.path)))
      if (userlogins !== undefined && !alsoWritten) {
        out.push({id: 'log-never-written', severity: 'warning', message: `rcguard reads ${g.log.path}, but ${profileName(userlogins)} has log_logins off and never writes it`, fix: `set $config['log_logins'] = true; in ${configFile}`})
      }
      continue
    }
    const fileDirs = rc.profiles.filter((p) => driverOf(p) === 'file').map((p) => fileLogs(p, rc).map((f) => f.path).join(', '))
    out.push({id: 'log-never-written', severity: 'warning', message: `rcguard reads ${g.log.path} (instance ${g.instance}), which Roundcube never writes${fileDirs.length > 0 ? ` (its login lines go to ${fileDirs.join('; ')})` : ''}`, fix: `correct the path in instances[].logs, or remove it`})
  }
  return out
}
