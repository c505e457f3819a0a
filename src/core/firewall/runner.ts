/**
 * The one place external commands are run: execa with argument arrays, never
 * a shell. cron's PATH lacks /usr/sbin, where iptables lives, so the sbin
 * directories are appended to the search path.
 */
import {FirewallError} from '../errors.js'

export interface RunResult {
  stdout: string
  stderr: string
  exitCode: number
}

export interface RunOptions {
  /** Text given on standard input. */
  input?: string
}

export interface Runner {
  run(command: string, args: string[], options?: RunOptions): Promise<RunResult>
}

const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin']

/** Debian package that provides each command, for the "how to fix" part of errors. */
const PACKAGE_OF: Record<string, string> = {
  iptables: 'iptables',
  'iptables-save': 'iptables',
  'iptables-restore': 'iptables',
  ip6tables: 'iptables',
  'ip6tables-save': 'iptables',
  'ip6tables-restore': 'iptables',
  ipset: 'ipset',
  nft: 'nftables',
}

export function searchPath(path: string | undefined): string {
  const parts = (path ?? '').split(':').filter((p) => p !== '')
  for (const dir of SBIN) if (!parts.includes(dir)) parts.push(dir)
  return parts.join(':')
}

export class ExecaRunner implements Runner {
  constructor(
    private readonly onRun: (line: string) => void = () => undefined,
    private readonly timeoutMs = 60_000,
  ) {}

  async run(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
    this.onRun([command, ...args].join(' '))
    // execa loads with the first command run: a run with nothing to apply (backend none, or no change) runs none.
    const {execa} = await import('execa')
    // The tool runs in a process group of its own, so that at the deadline the
    // whole group goes: a child it left behind holding its output would
    // otherwise keep rcguard (and its lock) waiting.
    const subprocess = execa(command, args, {
      input: options.input,
      reject: false,
      detached: true,
      stripFinalNewline: false,
      env: {PATH: searchPath(process.env.PATH), LC_ALL: 'C'},
      extendEnv: true,
    })
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      try {
        if (subprocess.pid !== undefined) process.kill(-subprocess.pid, 'SIGKILL')
      } catch {
        subprocess.kill('SIGKILL')
      }
    }, this.timeoutMs)
    const result = await subprocess.finally(() => clearTimeout(timer))
    if (timedOut) {
      throw new FirewallError(`${command} did not finish within ${this.timeoutMs / 1000} s and was stopped; the next run retries`)
    }
    const errno = (result.cause as NodeJS.ErrnoException | undefined)?.code
    if (errno === 'ENOENT') {
      const pkg = PACKAGE_OF[command]
      throw new FirewallError(
        `${command} not found: install it${pkg === undefined ? '' : ` (apt-get install ${pkg})`} or choose another firewall.backend`,
      )
    }
    if (result.exitCode === undefined) {
      throw new FirewallError(`${command} could not be run: ${result.shortMessage}`)
    }
    return {stdout: String(result.stdout), stderr: String(result.stderr), exitCode: result.exitCode}
  }
}

/** The first meaningful line of a tool's error output. */
export function firstErrorLine(stderr: string): string {
  return (
    stderr
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l !== '' && !l.startsWith('Try `')) ?? 'no error text'
  )
}

/** A hint for errors that come from a missing kernel feature rather than from rcguard's input. */
export function toolHint(stderr: string): string {
  if (/do you need to insmod|Table does not exist|Kernel error received: (?:set type not supported|Unknown error|Protocol not supported)|Operation not supported/i.test(stderr)) {
    return ' (the kernel lacks a module this backend needs: try "modprobe ip_tables ip6_tables ip_set nf_tables", or choose another firewall.backend)'
  }
  return ''
}
