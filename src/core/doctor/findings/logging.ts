/**
 * What Roundcube logs about a login: log_logins (the userlogins lines),
 * log_session_id (the `<session>` prefix rcguard's anti-framing rules and
 * its twin matching rely on), login_lc (how the errors log writes user
 * names).
 */
import type {Finding} from '../types.js'
import {driverOf, fileLogs, guardLogs, profileName, reads, type DoctorInput} from './context.js'

export function loggingFindings(input: DoctorInput): Finding[] {
  const out: Finding[] = []
  const {roundcube: rc, config} = input
  const file = rc.dirs.configFile
  const logs = guardLogs(config)
  for (const p of rc.profiles) {
    const who = profileName(p)
    const s = p.settings
    const where = p.host === null ? file : p.file
    if (!s.log_logins) {
      out.push({id: 'log-logins-off', severity: 'warning', message: `${who} has log_logins off: only IMAP failures reach a log (the errors log); scripted logins refused for a missing or invalid login token (error 1), logins refused by login_rate_limit (error 4) and empty passwords leave no line at all, so rcguard never counts them`, fix: `set $config['log_logins'] = true; in ${where} and read ${driverOf(p) === 'file' ? (fileLogs({...p, settings: {...s, log_logins: true}}, rc).find((f) => f.name === 'userlogins')?.path ?? 'userlogins.log') : 'its userlogins lines'}`})
    }
    if (s.log_session_id <= 0) {
      const required = logs.filter((g) => g.log.sessionPrefix === 'required')
      if (required.length > 0) {
        out.push({id: 'session-prefix-required', severity: 'error', message: `${who} has log_session_id ${s.log_session_id}: it writes no <session> prefixes, but rcguard requires one on ${required.map((g) => g.log.path).join(', ')} (sessionPrefix: required), so no line there starts an entry and nothing is counted`, fix: `set $config['log_session_id'] = 8; in ${where} (or sessionPrefix: auto)`})
      }
      out.push({id: 'log-session-id-off', severity: 'warning', message: `${who} has log_session_id ${s.log_session_id}: its lines carry no <session> prefix, which no user name can forge; without it a user name with a line feed can write a whole line that looks like Roundcube's, so rcguard reports userlogins failures without counting them (sessionPrefix auto; optional counts them and accepts being framed), and an errors-log line and its userlogins twin are paired by address and time alone, so two attempts of one address within 5 s count once`, fix: `remove log_session_id from ${where} (default 8) or set $config['log_session_id'] = 8;`})
    }
    if (driverOf(p) === 'file') {
      const errors = fileLogs(p, rc).find((f) => f.name === 'errors')
      for (const i of config.instances) {
        if (errors !== undefined && logs.some((g) => g.instance === i.name && reads(g, errors.real, errors.path)) && i.loginLc !== s.login_lc) {
          out.push({id: 'login-lc', severity: 'warning', message: `${who} has login_lc ${s.login_lc}, rcguard's instance ${i.name} assumes loginLc ${i.loginLc}: errors-log user names are read with the wrong case rule, so twins and ambiguous lines are settled wrongly`, fix: `set loginLc: ${s.login_lc} for instance ${i.name}`})
        }
      }
    }
  }
  return out
}
