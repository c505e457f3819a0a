#!/usr/bin/env node
// Development entry: runs the TypeScript sources through tsx (no build needed).
// Use: node --import tsx bin/dev.js <command> ...
import {execute} from '@oclif/core'

await execute({development: true, dir: import.meta.url})
