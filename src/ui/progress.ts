/**
 * A progress bar on stderr while a large log is read: only on a terminal,
 * never with --json or --quiet, never in cron (no terminal there), and only
 * for reads big enough to take a moment.
 */
import {basename} from 'node:path'
import type cliProgress from 'cli-progress'

/** Reads smaller than this finish before a bar would be worth drawing. */
const MIN_BYTES = 16 * 1024 * 1024

export type ProgressHandler = (file: string, done: number, total: number) => void

export async function progressBar(enabled: boolean, stream: NodeJS.WriteStream = process.stderr): Promise<ProgressHandler | undefined> {
  if (!enabled || stream.isTTY !== true) return undefined
  // Loaded only where a bar can be drawn: never in cron, which has no terminal.
  const {default: cliProgress} = await import('cli-progress')
  let bar: cliProgress.SingleBar | null = null
  return (file, done, total) => {
    if (done < 0) {
      bar?.stop()
      bar = null
      return
    }
    if (bar === null) {
      if (total < MIN_BYTES) return
      bar = new cliProgress.SingleBar(
        {
          stream,
          format: `reading ${basename(file)} [{bar}] {percentage}% | {value}/{total} MB | {eta_formatted} left`,
          hideCursor: true,
          clearOnComplete: true,
        },
        cliProgress.Presets.shades_classic,
      )
      bar.start(Math.round(total / 1e6), 0)
    }
    bar.update(Math.round(done / 1e6))
  }
}
