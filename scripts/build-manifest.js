#!/usr/bin/env node
// Writes oclif.manifest.json from the commands the bundle exports (dist/cli.js,
// package.json oclif.commands), so that oclif reads the command list, flags
// and help texts from it instead of deriving them from every command class at
// each start. Same content as `oclif manifest`, without the heavy oclif dev
// package. (Measured with the bundle: no difference either way for a no-op
// hacks run; kept because it is what oclif expects of a published CLI.)
import {writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {Plugin} from '@oclif/core'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const plugin = new Plugin({root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true, isRoot: true})
await plugin.load()
writeFileSync(join(root, 'oclif.manifest.json'), `${JSON.stringify(plugin.manifest, null, 2)}\n`)
console.log(`oclif.manifest.json: ${Object.keys(plugin.manifest.commands).length} commands`)
