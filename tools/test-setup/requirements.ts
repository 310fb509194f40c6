import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { HAPROXY_BINARY } from '../cluster/haproxy.js';
import { PGBOUNCER_BINARY } from '../cluster/pgbouncer.js';
import { installedPostgres, postgresVersion } from '../cluster/postgres-install.js';

/**
 * The browser the GraphiQL test drives (Debian's `chromium`; playwright-core downloads none).
 * `CHROMIUM_PATH` points it at another one.
 */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** A program the test suite runs that npm does not install: it comes from a Debian package. */
export interface SystemRequirement {
  /** What it is, for messages: `PgBouncer`. */
  name: string;
  /** The Debian package that brings it. */
  debianPackage: string;
  /** The tests that need it, for the message when it is missing. */
  neededBy: string;
  /** Its version line when installed (`PgBouncer 1.18.0`), undefined when missing. */
  installed(): string | undefined;
}

/** The first line a program prints for `args`, or its path when it prints nothing we can read. */
function firstLine(program: string, args: readonly string[]): string {
  try {
    return execFileSync(program, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0]?.trim() || program;
  } catch {
    return program;
  }
}

/**
 * Everything the suite needs besides npm's packages and the embedded PostgreSQL (an npm package):
 * the cluster tests' PostgreSQL server, PgBouncer and HAProxy, and the GraphiQL test's Chromium.
 * Checking all four takes a few stat calls and four `--version` runs (under a second).
 */
export const SYSTEM_REQUIREMENTS: readonly SystemRequirement[] = [
  {
    name: 'PostgreSQL server',
    debianPackage: 'postgresql',
    neededBy: 'the cluster, PgBouncer, replica and HAProxy tests (test/topology)',
    installed() {
      // Whatever major version is there: the newest is the one the cluster runs.
      const newest = installedPostgres()[0];
      return newest && `PostgreSQL ${postgresVersion(newest.binDir)} (${newest.binDir})`;
    },
  },
  {
    name: 'PgBouncer',
    debianPackage: 'pgbouncer',
    neededBy: 'test/topology/pgbouncer.test.ts and the cluster tests',
    installed: () => (existsSync(PGBOUNCER_BINARY) ? firstLine(PGBOUNCER_BINARY, ['--version']) : undefined),
  },
  {
    name: 'HAProxy',
    debianPackage: 'haproxy',
    neededBy: 'test/topology/haproxy-failover.test.ts and test/topology/cluster.test.ts',
    installed: () => (existsSync(HAPROXY_BINARY) ? firstLine(HAPROXY_BINARY, ['-v']) : undefined),
  },
  {
    name: 'Chromium',
    debianPackage: 'chromium',
    neededBy: 'test/http/graphiql-browser.test.ts',
    installed: () => (existsSync(CHROMIUM_PATH) ? `${firstLine(CHROMIUM_PATH, ['--version'])} (${CHROMIUM_PATH})` : undefined),
  },
];

/** The one command that installs `packages` on Debian (what a non-root user is told to run). */
export function aptInstallCommand(packages: readonly string[]): string {
  return `sudo apt-get install -y ${packages.join(' ')}`;
}

/** Where the setup keeps apt-get's output, shown only when it fails. */
export const APT_LOG = join(process.env.TMPDIR ?? '/tmp', 'poolgraph-test-setup-apt.log');
