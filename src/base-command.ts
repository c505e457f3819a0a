/**
 * What every rcguard command shares: --config and --verbose, building the
 * core context, and turning errors into one line and a documented exit code.
 */
import {Command, Flags, type Interfaces} from '@oclif/core'
import {DEFAULT_CONFIG_PATH, loadConfig, type LoadedConfig} from './core/config/config.js'
import {systemClock} from './core/clock.js'
import {ExitCode, RcguardError} from './core/errors.js'
import {createBackend, ExecaRunner} from './core/firewall/index.js'
import type {GuardContext} from './core/run/context.js'
import {JsonStore} from './core/store/json-store.js'
import {looseWrites} from './core/config/permissions.js'
import {escapeJson, escapeText} from './core/text/escape.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>

export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override baseFlags = {
    config: Flags.string({
      char: 'c',
      summary: `Configuration file (default ${DEFAULT_CONFIG_PATH}).`,
      env: 'RCGUARD_CONFIG',
      helpGroup: 'GLOBAL',
    }),
    verbose: Flags.boolean({
      char: 'v',
      summary: 'Explain every step; print a stack trace on internal errors.',
      default: false,
      helpGroup: 'GLOBAL',
    }),
  }

  protected flags!: BaseFlags<T>
  /** External commands run, in order, for --verbose. */
  protected readonly commandsRun: string[] = []

  protected async loadContext(options: {keepText?: boolean} = {}): Promise<GuardContext & {loaded: LoadedConfig}> {
    const explicit = this.flags.config !== undefined
    const loaded = await loadConfig(this.flags.config ?? DEFAULT_CONFIG_PATH, explicit)
    const {config} = loaded
    const runner = new ExecaRunner((line) => this.commandsRun.push(line), config.firewall.timeoutSeconds * 1000)
    for (const w of await looseWrites(loaded.path, config)) this.warning(w)
    return {
      config,
      loaded,
      store: new JsonStore(config.database),
      firewall: createBackend(config, runner),
      makeBackend: (name, prefix) => createBackend(config, runner, name, prefix),
      now: systemClock(),
      keepText: options.keepText ?? false,
    }
  }

  /**
   * A problem that does not stop the command: one line on stderr, never
   * wrapped (oclif's warn() wraps to the terminal width, which breaks cron mail
   * and grep).
   */
  protected warning(message: string): void {
    this.complain(`rcguard: warning: ${message}`)
  }

  /** Prints a line on stderr, also in --json mode. */
  protected complain(line: string): void {
    process.stderr.write(`${escapeText(line, {lines: true})}\n`)
  }

  /**
   * Every line for stdout passes the one escape (core/text/escape.ts): file
   * names from a glob, tools' messages and anything else from outside that
   * reached a line are shown, never acted on by the terminal.
   */
  public override log(message = '', ...args: unknown[]): void {
    super.log(escapeText(message, {lines: true}), ...args)
  }

  /** Output whose outside text was escaped cell by cell, with rcguard's own colours (the list table). */
  protected logColoured(text: string): void {
    if (!this.jsonEnabled()) process.stdout.write(`${text}\n`)
  }

  /** --json documents: the same data, with every character a terminal could act on written as \\uXXXX. */
  protected override logJson(json: unknown): void {
    process.stdout.write(`${escapeJson(JSON.stringify(json, null, 2))}\n`)
  }

  protected override async catch(err: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    if (err instanceof RcguardError) {
      process.exitCode = err.exitCode
      if (this.jsonEnabled()) {
        this.logJson({error: {message: err.message, exitCode: err.exitCode, kind: err.name}})
      }
      // A cron run that finds another run busy stays quiet (cron mails any output).
      if (!(err.exitCode === ExitCode.BUSY && this.quietWhenBusy())) {
        this.complain(`rcguard: ${err.message}`)
        if (this.flags?.verbose && err.detail !== undefined) this.complain(err.detail)
      }
      return undefined
    }
    if (err.oclif !== undefined) {
      // oclif's own errors (bad flags, missing arguments): one line, its exit code, also in --json mode.
      const exit = err.oclif.exit ?? ExitCode.USAGE
      process.exitCode = exit
      if (exit === 0) return undefined
      const lines = err.message.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('See more help'))
      // "Missing 1 required arg:" and "Parsing --minutes" say what is wrong on their next line.
      let first = lines[0] ?? 'invalid command line'
      if ((first.endsWith(':') || first.startsWith('Parsing --')) && lines[1] !== undefined) first = `${first.replace(/:$/, '')}: ${lines[1]}`
      if (this.jsonEnabled()) this.logJson({error: {message: first, exitCode: exit, kind: 'UsageError'}})
      this.complain(`rcguard: ${first} (see rcguard ${this.id ?? ''} --help)`.replace('  ', ' '))
      return undefined
    }
    process.exitCode = ExitCode.INTERNAL
    if (this.jsonEnabled()) this.logJson({error: {message: err.message, exitCode: ExitCode.INTERNAL, kind: 'InternalError'}})
    this.complain(`rcguard: internal error: ${err.message}${this.flags?.verbose ? '' : ' (run with --verbose for details)'}`)
    if (this.flags?.verbose && err.stack !== undefined) this.complain(err.stack)
    return undefined
  }

  /** Commands run by cron override this to exit quietly when the lock is busy. */
  protected quietWhenBusy(): boolean {
    return false
  }

  public override async init(): Promise<void> {
    await super.init()
    const {flags} = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (this.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    })
    this.flags = flags as BaseFlags<T>
  }
}
