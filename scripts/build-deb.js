#!/usr/bin/env node
/**
 * npm run deb: builds the Debian package rcguard_<version>_all.deb from the
 * bundle (npm run build, which the deb script runs first), the committed man
 * pages and the templates in packaging/deb/ (see packaging/deb/README.md).
 *
 *   node scripts/build-deb.js                 write the .deb into the repository's root
 *   node scripts/build-deb.js --out-dir DIR   write it into DIR (test/deb/package.test.ts)
 *
 * Environment:
 *   RCGUARD_DEB_VERSION     the package version (default: package.json's), so that a
 *                           test can build two versions and upgrade from one to the other
 *   RCGUARD_DEB_MAINTAINER  the Maintainer field (default below)
 *   SOURCE_DATE_EPOCH       the date of the changelog entry and of every file in the
 *                           package (default: the last commit's), so a build is repeatable
 *
 * No network and no node_modules in the package: dist/cli.js and its chunks
 * hold everything the CLI runs (esbuild bundles every dependency; the two
 * require()s left in it, typescript and picomatch, are optional and guarded).
 * The .deb is made with dpkg-deb --root-owner-group, so no fakeroot is needed.
 */
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {
  chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync,
} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join, relative, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const templates = join(root, 'packaging', 'deb')
const LIB = 'usr/lib/rcguard'
const DOC = 'usr/share/doc/rcguard'
const DEFAULT_MAINTAINER = 'rcguard developers <rcguard@example.org>'

function fail(message) {
  process.stderr.write(`build-deb: ${message}\n`)
  process.exit(1)
}

function parseArgs(argv) {
  let outDir = root
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out-dir' && argv[i + 1] !== undefined) outDir = resolve(argv[++i])
    else fail(`unexpected argument ${argv[i]}\nusage: node scripts/build-deb.js [--out-dir DIR]`)
  }
  return {outDir}
}

function sourceDateEpoch() {
  const env = process.env.SOURCE_DATE_EPOCH
  if (env !== undefined && /^\d+$/.test(env)) return Number(env)
  try {
    return Number(execFileSync('git', ['log', '-1', '--format=%ct'], {cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore']}).trim())
  } catch {
    return Math.floor(lstatSync(join(root, 'package.json')).mtimeMs / 1000)
  }
}

/** The package names of node_modules files the shipped bundle holds, with their licences. */
function bundledPackages() {
  const meta = JSON.parse(readFileSync(join(root, 'dist', 'meta.json'), 'utf8'))
  const names = new Set()
  for (const [file, output] of Object.entries(meta.outputs)) {
    if (!file.endsWith('.js') || file === 'dist/index.js') continue
    for (const input of Object.keys(output.inputs)) {
      const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input)
      if (m) names.add(m[1])
    }
  }
  return [...names].sort().map((name) => {
    const pkg = JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8'))
    const license = typeof pkg.license === 'string' ? pkg.license : (pkg.license?.type ?? 'see its package')
    return {name, version: pkg.version, license}
  })
}

const MIT = `Permission is hereby granted, free of charge, to any person obtaining a
copy of this software and associated documentation files (the "Software"),
to deal in the Software without restriction, including without limitation
the rights to use, copy, modify, merge, publish, distribute, sublicense,
and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:
.
The above copyright notice and this permission notice shall be included
in all copies or substantial portions of the Software.
.
THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING
FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
DEALINGS IN THE SOFTWARE.`

function copyright(bundled) {
  const indent = (text) => text.split('\n').map((l) => ` ${l}`).join('\n')
  const list = bundled.map((p) => `${p.name} ${p.version} (${p.license})`).join('\n')
  return `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: rcguard

Files: *
Copyright: 2026 rcguard developers
License: MIT

Files: ${LIB}/dist/*
Copyright: 2026 rcguard developers, and the authors of the bundled packages
License: MIT
Comment: dist/cli.js and dist/chunks/ are an esbuild bundle of rcguard and of
 these npm packages, whose licence texts are kept at the end of each file:
${indent(list)}

License: MIT
${indent(MIT)}
`
}

function rfc2822(epoch) {
  const d = new Date(epoch * 1000)
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getUTCDay()]
  const month = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getUTCMonth()]
  const p = (n) => String(n).padStart(2, '0')
  return `${day}, ${p(d.getUTCDate())} ${month} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`
}

function main() {
  const {outDir} = parseArgs(process.argv.slice(2))
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
  const version = process.env.RCGUARD_DEB_VERSION || pkg.version
  if (!/^[0-9][A-Za-z0-9.+~-]*$/.test(version) || version.endsWith('-')) fail(`${version} is not a Debian version`)
  const maintainer = process.env.RCGUARD_DEB_MAINTAINER || DEFAULT_MAINTAINER
  for (const f of ['dist/cli.js', 'dist/meta.json', 'oclif.manifest.json', 'man/rcguard.8', 'man/rcguard.yml.5']) {
    if (!existsSync(join(root, f))) fail(`${f} is missing: run npm run build (and npm run man) first, or npm run deb`)
  }
  const epoch = sourceDateEpoch()
  const stage = mkdtempSync(join(tmpdir(), 'rcguard-deb-'))
  try {
    const files = [] // [path in the package, mode]
    const put = (path, content, mode) => {
      const dest = join(stage, path)
      mkdirSync(dirname(dest), {recursive: true})
      writeFileSync(dest, content)
      chmodSync(dest, mode)
      files.push(path)
    }
    const copy = (from, path, mode) => put(path, readFileSync(join(root, from)), mode)
    const gz = (from, path) => put(path, execFileSync('gzip', ['-9n', '-c', join(root, from)]), 0o644)

    // The CLI: the bundle, bin/run.js (which finds ../dist/cli.js and oclif
    // the package.json beside it) and the manifest. No node_modules.
    const runtimePackage = {
      name: pkg.name, version: pkg.version, description: pkg.description, license: pkg.license, type: pkg.type,
      bin: pkg.bin, engines: pkg.engines, oclif: pkg.oclif,
    }
    put(`${LIB}/package.json`, `${JSON.stringify(runtimePackage, null, 2)}\n`, 0o644)
    copy('oclif.manifest.json', `${LIB}/oclif.manifest.json`, 0o644)
    copy('bin/run.js', `${LIB}/bin/run.js`, 0o755)
    copy('dist/cli.js', `${LIB}/dist/cli.js`, 0o644)
    for (const chunk of readdirSync(join(root, 'dist', 'chunks')).filter((f) => f.endsWith('.js')).sort()) {
      copy(`dist/chunks/${chunk}`, `${LIB}/dist/chunks/${chunk}`, 0o644)
    }
    copy('packaging/deb/rcguard.launcher', 'usr/bin/rcguard', 0o755)

    gz('man/rcguard.8', 'usr/share/man/man8/rcguard.8.gz')
    gz('man/rcguard.yml.5', 'usr/share/man/man5/rcguard.yml.5.gz')

    // 0600: the configuration may hold an SMTP password (notify.email.transport.smtp).
    copy('packaging/deb/rcguard.yml', 'etc/rcguard/rcguard.yml', 0o600)
    copy('packaging/deb/rcguard.cron', 'etc/cron.d/rcguard', 0o644)
    for (const unit of ['rcguard.service', 'rcguard.timer', 'rcguard-watch.service']) {
      copy(`packaging/deb/${unit}`, `lib/systemd/system/${unit}`, 0o644)
    }

    put(`${DOC}/copyright`, copyright(bundledPackages()), 0o644)
    copy('packaging/deb/README.Debian', `${DOC}/README.Debian`, 0o644)
    const entry = `rcguard (${version}) unstable; urgency=medium\n\n  * rcguard ${pkg.version}: see its CHANGELOG.md.\n\n -- ${maintainer}  ${rfc2822(epoch)}\n`
    const native = !version.includes('-')
    put(`${DOC}/${native ? 'changelog.gz' : 'changelog.Debian.gz'}`, execFileSync('gzip', ['-9n', '-c'], {input: entry}), 0o644)
    if (!native) gz('CHANGELOG.md', `${DOC}/changelog.gz`)
    copy('packaging/deb/lintian-overrides', 'usr/share/lintian/overrides/rcguard', 0o644)

    // DEBIAN/: control, conffiles, maintainer scripts, md5sums.
    const conffiles = readFileSync(join(templates, 'conffiles'), 'utf8')
    for (const c of conffiles.split('\n').filter((l) => l !== '')) {
      if (!files.includes(c.slice(1))) fail(`packaging/deb/conffiles names ${c}, which the package does not install`)
    }
    // Installed-Size as dpkg-gencontrol counts it: KiB per file, rounded up, and 1 per directory.
    let kib = 0
    const walk = (dir) => {
      for (const name of readdirSync(dir)) {
        const p = join(dir, name)
        const st = lstatSync(p)
        kib += st.isDirectory() ? 1 : Math.ceil(st.size / 1024)
        if (st.isDirectory()) walk(p)
      }
    }
    walk(stage)
    const control = readFileSync(join(templates, 'control.in'), 'utf8')
      .replace('@VERSION@', version).replace('@MAINTAINER@', maintainer).replace('@INSTALLED_SIZE@', String(kib))
    if (/@[A-Z_]+@/.test(control)) fail(`packaging/deb/control.in: ${/@[A-Z_]+@/.exec(control)[0]} is not filled in`)
    put('DEBIAN/control', control, 0o644)
    put('DEBIAN/conffiles', conffiles, 0o644)
    for (const script of ['postinst', 'prerm', 'postrm']) copy(`packaging/deb/${script}`, `DEBIAN/${script}`, 0o755)
    const conf = new Set(conffiles.split('\n').map((l) => l.slice(1)))
    const sums = files
      .filter((f) => !f.startsWith('DEBIAN/') && !conf.has(f))
      .sort()
      .map((f) => `${createHash('md5').update(readFileSync(join(stage, f))).digest('hex')}  ${f}\n`)
      .join('')
    put('DEBIAN/md5sums', sums, 0o644)

    // Directories 0755 (mkdir's mode depends on the umask), every date the same.
    const fix = (dir) => {
      for (const name of readdirSync(dir)) {
        const p = join(dir, name)
        if (lstatSync(p).isDirectory()) {
          chmodSync(p, 0o755)
          fix(p)
        }
        utimesSync(p, epoch, epoch)
      }
    }
    chmodSync(stage, 0o755)
    fix(stage)

    mkdirSync(outDir, {recursive: true})
    const deb = join(outDir, `rcguard_${version}_all.deb`)
    execFileSync('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', stage, deb], {
      env: {...process.env, SOURCE_DATE_EPOCH: String(epoch)},
      stdio: ['ignore', 'ignore', 'inherit'],
    })
    process.stdout.write(`${relative(process.cwd(), deb) || deb}: ${files.length - 6} files, ${kib} KiB installed\n`)
  } finally {
    rmSync(stage, {recursive: true, force: true})
  }
}

main()
