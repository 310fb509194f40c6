import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Where Debian's `postgresql-<major>` packages put their programs: one folder per major version
 * (`/usr/lib/postgresql/15/bin` on Debian 12, `…/17/bin` on Debian 13), several side by side when
 * more than one is installed.
 */
export const DEBIAN_POSTGRES_ROOT = '/usr/lib/postgresql';

/** The programs the cluster runs from a server's folder: a client-only install lacks them. */
const SERVER_PROGRAMS = ['initdb', 'postgres', 'pg_basebackup'] as const;

/** One installed PostgreSQL server version. */
export interface PostgresInstall {
  /** Its major version, `15`. */
  major: number;
  /** The folder holding `initdb`, `postgres` and `pg_basebackup`. */
  binDir: string;
}

/**
 * Every PostgreSQL server version installed under `root`, newest first. A folder counts only when
 * it holds all of {@link SERVER_PROGRAMS} (a client package also makes `…/<major>/bin`).
 * Reads the folder each call (a few `stat`s), so an install made meanwhile is seen.
 */
export function installedPostgres(root: string = DEBIAN_POSTGRES_ROOT): PostgresInstall[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((name) => /^\d+$/.test(name))
    .map((name) => ({ major: Number(name), binDir: join(root, name, 'bin') }))
    .filter(({ binDir }) => SERVER_PROGRAMS.every((program) => existsSync(join(binDir, program))))
    .sort((a, b) => b.major - a.major);
}

/**
 * The folder of the newest installed PostgreSQL server, which the cluster uses unless told
 * otherwise. Throws, naming the install command, when there is none: the version is not fixed
 * because each Debian release brings its own (`apt-get install postgresql` gives 15 on Debian 12,
 * 17 on Debian 13).
 */
export function newestPostgresBinDir(root: string = DEBIAN_POSTGRES_ROOT): string {
  const newest = installedPostgres(root)[0];
  if (!newest) {
    throw new Error(
      `no PostgreSQL server found under ${root}/<version>/bin: install Debian's (apt-get install postgresql), ` +
        'or run npm test as root once, which installs it',
    );
  }
  return newest.binDir;
}

/**
 * The full version of the server in `binDir`, `15.18`, from `postgres --version` (the one thing
 * `postgres` does as root). Takes a few milliseconds; for messages and test logs that must say
 * which version a result came from.
 */
export function postgresVersion(binDir: string): string {
  const output = execFileSync(join(binDir, 'postgres'), ['--version'], { encoding: 'utf8' });
  // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
  return /\(PostgreSQL\)\s+(\S+)/.exec(output)?.[1] ?? output.trim();
}

/** Fails early, with the fix, when the server programs the cluster runs are missing from `binDir`. */
export function requirePostgresBinaries(binDir: string): void {
  for (const program of SERVER_PROGRAMS) {
    if (!existsSync(join(binDir, program))) {
      throw new Error(
        `${join(binDir, program)} not found: install Debian's PostgreSQL server ` +
          `(apt-get install postgresql) or pass binDir`,
      );
    }
  }
}
