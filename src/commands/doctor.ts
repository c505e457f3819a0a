import {Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'

export default class Doctor extends BaseCommand<typeof Doctor> {
  static override summary = "Check rcguard's configuration against Roundcube's real one."
  static override description =
    "Reads Roundcube's configuration with php (defaults.inc.php, then config.inc.php and its includes, and include_host_config's files) and reports each disagreement with rcguard's configuration on one line with its fix. Exit status 0: nothing to fix; 1: warnings; 2: errors. Changes nothing."
  static override enableJsonFlag = true
  static override flags = {
    roundcube: Flags.string({summary: "Roundcube's install directory (with config/ inside) or its config directory (default: /var/lib/roundcube, then /etc/roundcube, …).", helpValue: 'DIR'}),
  }
  static override examples = ['<%= config.bin %> doctor', '<%= config.bin %> doctor --roundcube /var/www/roundcube --json']

  async run(): Promise<unknown> {
    // Loaded here, not at start: the commands cron runs never load doctor's code.
    const {runDoctor} = await import('../core/doctor/doctor.js')
    const {doctorLines} = await import('../ui/doctor-output.js')
    const report = await runDoctor({configPath: this.flags.config, roundcubeDir: this.flags.roundcube, systemRoot: process.env.RCGUARD_DOCTOR_ROOT})
    process.exitCode = report.status
    if (this.jsonEnabled()) return report
    for (const line of doctorLines(report)) this.log(line)
    return undefined
  }
}
