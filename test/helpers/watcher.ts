/**
 * A running `rcguard watch` for tests: the real CLI as a child process (in a
 * network namespace when asked), its output collected line by line, waited
 * on by pattern, and stopped with SIGTERM.
 */
import {execa, type ResultPromise} from 'execa'
import {BIN} from './env.js'

export class Watcher {
  readonly out: string[] = []
  readonly err: string[] = []
  private readonly child: ResultPromise
  private exited: Promise<number>

  constructor(config: string, options: {netns?: string; env?: Record<string, string>; args?: string[]} = {}) {
    const args = [BIN, 'watch', '--config', config, ...(options.args ?? [])]
    const env = {NO_COLOR: '1', FORCE_COLOR: '0', ...options.env}
    // exec: ip netns exec replaces itself with node, so the signal reaches rcguard.
    this.child =
      options.netns === undefined
        ? execa('node', args, {reject: false, env, buffer: false})
        : execa('ip', ['netns', 'exec', options.netns, 'node', ...args], {reject: false, env, buffer: false})
    const collect = (into: string[]) => {
      let rest = ''
      return (chunk: Buffer) => {
        rest += chunk.toString('utf8')
        const parts = rest.split('\n')
        rest = parts.pop() ?? ''
        into.push(...parts)
      }
    }
    this.child.stdout?.on('data', collect(this.out))
    this.child.stderr?.on('data', collect(this.err))
    this.exited = this.child.then((r) => r.exitCode ?? -1)
  }

  get pid(): number | undefined {
    return this.child.pid
  }

  /** Whether the process is still running. */
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  /** Resolves with the first stdout (or stderr) line matching, or rejects after timeoutMs with all output. */
  async waitFor(pattern: RegExp, timeoutMs = 15_000, stream: 'out' | 'err' = 'out'): Promise<string> {
    const lines = stream === 'out' ? this.out : this.err
    const end = Date.now() + timeoutMs
    for (;;) {
      const hit = lines.find((l) => pattern.test(l))
      if (hit !== undefined) return hit
      if (Date.now() > end || !this.alive) {
        throw new Error(`no ${stream} line matching ${pattern} within ${timeoutMs} ms (alive: ${this.alive})\nstdout:\n${this.out.join('\n')}\nstderr:\n${this.err.join('\n')}`)
      }
      await sleep(50)
    }
  }

  count(pattern: RegExp, stream: 'out' | 'err' = 'out'): number {
    return (stream === 'out' ? this.out : this.err).filter((l) => pattern.test(l)).length
  }

  /** SIGTERM, then the exit status (SIGKILL after killAfterMs). */
  async stop(killAfterMs = 15_000): Promise<number> {
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), killAfterMs)
    try {
      return await this.exited
    } finally {
      clearTimeout(timer)
    }
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
