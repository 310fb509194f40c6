/**
 * The first step of `npm test`: makes sure the programs the suite runs that npm cannot install
 * (Debian's PostgreSQL server, PgBouncer, HAProxy and Chromium) are there, so that a fresh clone on
 * a fresh machine passes `npm install && npm test` with nothing installed by hand.
 *
 * - Everything present: prints one line per program with its version and exits 0 (under a second;
 *   no apt-get at all).
 * - Something missing, running as root: `apt-get update` and `apt-get install` of the missing
 *   packages (non-interactive, quiet; about 2½ minutes on a fresh machine, most of it Chromium),
 *   then checks again.
 * - Something missing, not root: one line naming the `apt-get install` command to run, exit 1.
 *   Nothing is skipped instead: a suite that quietly ran less would look green.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { APT_LOG, aptInstallCommand, SYSTEM_REQUIREMENTS, type SystemRequirement } from './requirements.js';

/** How long apt-get may wait for another apt-get (another checkout's setup) to release dpkg's lock. */
const DPKG_LOCK_TIMEOUT_S = 600;

/** Each requirement with the version line it printed, or undefined when it is missing: one check each. */
function check(): { requirement: SystemRequirement; version: string | undefined }[] {
  return SYSTEM_REQUIREMENTS.map((requirement) => ({ requirement, version: requirement.installed() }));
}

function missing(checked: ReturnType<typeof check>): SystemRequirement[] {
  return checked.filter(({ version }) => version === undefined).map(({ requirement }) => requirement);
}

/** Runs apt-get with its output appended to {@link APT_LOG}; true when it exited 0. */
function aptGet(args: readonly string[]): boolean {
  const result = spawnSync('apt-get', ['-q', '-o', `DPkg::Lock::Timeout=${DPKG_LOCK_TIMEOUT_S}`, ...args], {
    // No prompts (tzdata, services), and no pager.
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', APT_LISTCHANGES_FRONTEND: 'none' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  writeFileSync(APT_LOG, `$ apt-get ${args.join(' ')}\n${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? String(result.error) : ''}\n`, { flag: 'a' });
  return result.status === 0;
}

function main(): number {
  let checked = check();
  let absent = missing(checked);
  if (absent.length > 0) {
    const packages = absent.map((requirement) => requirement.debianPackage);
    const isRoot = process.getuid?.() === 0;
    if (!isRoot) {
      console.error(
        `npm test needs ${absent.map((r) => r.name).join(', ')} (for ${absent.map((r) => r.neededBy).join('; ')}): run \`${aptInstallCommand(packages)}\`, then npm test again`,
      );
      return 1;
    }
    const started = Date.now();
    console.log(`test setup: installing ${packages.join(' ')} with apt-get (once per machine; up to about 2½ minutes)…`);
    writeFileSync(APT_LOG, '');
    // Installing PostgreSQL or PgBouncer may start Debian's own services on 5432 and 6432 where the
    // init system allows it; the suite uses neither port, so they are left alone.
    const installed = aptGet(['update', '-qq']) && aptGet(['install', '-y', '-qq', ...packages]);
    checked = check();
    absent = missing(checked);
    if (!installed || absent.length > 0) {
      console.error(readFileSync(APT_LOG, 'utf8').split('\n').slice(-30).join('\n'));
      console.error(`test setup: apt-get could not install ${absent.map((r) => r.debianPackage).join(' ') || packages.join(' ')} (full log: ${APT_LOG})`);
      return 1;
    }
    console.log(`test setup: installed in ${Math.round((Date.now() - started) / 1000)} s`);
  }
  console.log(`test setup: Node ${process.version}`);
  for (const { version } of checked) console.log(`test setup: ${version}`);
  return 0;
}

process.exitCode = main();
