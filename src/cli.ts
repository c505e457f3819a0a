/**
 * The CLI's one entry: every command, for oclif's "explicit" command discovery
 * (package.json oclif.commands), and oclif's run/flush/Errors for bin/run.js.
 * esbuild bundles this file and everything it imports into dist/cli.js (and
 * dist/chunks/, see scripts/build.js), so a cron run loads a few files instead
 * of hundreds. A new command file must be added here too (test/cli/bundle.test.ts
 * checks that every file of src/commands is).
 */
import Block from './commands/block.js'
import Doctor from './commands/doctor.js'
import Flush from './commands/flush.js'
import Hacks from './commands/hacks.js'
import Init from './commands/init.js'
import List from './commands/list.js'
import Scan from './commands/scan.js'
import Unblock from './commands/unblock.js'
import Watch from './commands/watch.js'
import Whitelist from './commands/whitelist.js'
import {commands as helpCommands} from '@oclif/plugin-help'
import type {Command} from '@oclif/core'

/** rcguard's commands (one per file in src/commands), and `help` from @oclif/plugin-help, bundled rather than loaded as a plugin. */
export const COMMANDS: Record<string, Command.Class> = {block: Block, doctor: Doctor, flush: Flush, hacks: Hacks, init: Init, list: List, scan: Scan, unblock: Unblock, watch: Watch, whitelist: Whitelist, ...helpCommands}

export {Errors, flush, run} from '@oclif/core'
