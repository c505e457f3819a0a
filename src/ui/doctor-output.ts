import type {DoctorReport} from '../core/doctor/doctor.js'

/** doctor's text: one line per finding, with its fix; a clean report says so. */
export function doctorLines(report: DoctorReport): string[] {
  if (report.findings.length === 0) {
    return [`ok: rcguard's configuration (${report.config ?? 'built-in defaults'}) matches Roundcube's (${report.roundcube?.configDir ?? '?'})`]
  }
  return report.findings.map((f) => `${f.severity}: ${f.id}: ${f.message}; fix: ${f.fix}`)
}
