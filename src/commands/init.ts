import {Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {DEFAULT_CONFIG_PATH} from '../core/config/config.js'
import {RcguardError} from '../core/errors.js'

export default class Init extends BaseCommand<typeof Init> {
  static override summary = "Write rcguard's configuration from Roundcube's, then run doctor."
  static override description =
    "Writes /etc/rcguard/rcguard.yml (or --config FILE), mode 0600, from what php reads of Roundcube's configuration: its logs and their formats, its proxies, and the firewall backend installed here (nftables when nft is). An existing file is left alone (exit status 3) unless --force. Then runs doctor on it and exits with its status (0, 1 or 2)."
  static override enableJsonFlag = true
  static override flags = {
    roundcube: Flags.string({summary: "Roundcube's install directory (with config/ inside) or its config directory.", helpValue: 'DIR'}),
    force: Flags.boolean({summary: 'Replace an existing configuration file.', default: false}),
  }
  static override examples = ['<%= config.bin %> init', '<%= config.bin %> init --roundcube /var/www/roundcube --config /etc/rcguard/rcguard.yml --force']

  async run(): Promise<unknown> {
    const path = this.flags.config ?? DEFAULT_CONFIG_PATH
    const {readRoundcube, runDoctor} = await import('../core/doctor/doctor.js')
    const {initConfigText, writeInitConfig} = await import('../core/doctor/init.js')
    const {doctorLines} = await import('../ui/doctor-output.js')
    const rc = await readRoundcube(this.flags.roundcube)
    if ('id' in rc) throw new RcguardError(`${rc.message} (${rc.fix}): nothing written`, 2)
    const {listeners, webPorts} = await import('../core/doctor/findings/ports.js')
    const sockets = await listeners()
    await writeInitConfig(path, initConfigText(rc, {ports: sockets === null ? undefined : webPorts(sockets)}), this.flags.force)
    const report = await runDoctor({configPath: path, roundcubeDir: this.flags.roundcube, systemRoot: process.env.RCGUARD_DOCTOR_ROOT})
    process.exitCode = report.status
    if (this.jsonEnabled()) return {written: path, ...report}
    this.log(`wrote ${path}`)
    for (const line of doctorLines(report)) this.log(line)
    return undefined
  }
}
