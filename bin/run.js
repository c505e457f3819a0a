#!/usr/bin/env node
// The bundle (npm run build): oclif and the commands in one file and the chunks it imports.
import {Errors, flush, run} from '../dist/cli.js'

// oclif's own error printer wraps and decorates its messages; rcguard's
// errors are one line on stderr, for cron mail and for scripts.
try {
  await run(process.argv.slice(2), import.meta.url)
  await flush()
} catch (err) {
  if (err instanceof Errors.ExitError) {
    process.exitCode = err.oclif.exit
  } else {
    const exit = err?.oclif?.exit
    let message = String(err?.message ?? err).split('\n')[0].trim()
    const unknown = /^command (\S+) not found/.exec(message)
    if (unknown) message = `unknown command "${unknown[1].replaceAll(':', ' ')}" (see rcguard --help)`
    process.stderr.write(`rcguard: ${message}\n`)
    process.exitCode = typeof exit === 'number' ? exit : 2
  }
}
