import { readFileSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closedAncestor } from '../../src/db/setup/embedded.js';

/** An OS account, as `/etc/passwd` lists it. */
export interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

/** The account PostgreSQL and PgBouncer run as when we are root (Debian's packages create it). */
const SERVICE_ACCOUNT = 'postgres';

/**
 * The OS user that runs PostgreSQL and PgBouncer: both refuse to run as root, so as root it is
 * `postgres`; otherwise undefined, meaning "as ourselves".
 */
export function serviceUser(): OsUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const entry = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((line) => line.split(':'))
    .find((fields) => fields[0] === SERVICE_ACCOUNT);
  if (!entry) {
    throw new Error(
      `we run as root, and PostgreSQL and PgBouncer refuse root, but the OS user "${SERVICE_ACCOUNT}" ` +
        `does not exist: install Debian's postgresql package (it creates it)`,
    );
  }
  return { name: SERVICE_ACCOUNT, uid: Number(entry[2]), gid: Number(entry[3]) };
}

/**
 * Creates `path` (which must not exist yet), or a fresh folder under the system temp folder named
 * `<prefix>XXXXXX` when `path` is undefined, private (0700) and owned by `owner`. Returns its path.
 */
export async function createPrivateDir(path: string | undefined, prefix: string, owner: OsUser | undefined): Promise<string> {
  let dir: string;
  if (path) {
    await mkdir(path, { mode: 0o700 });
    dir = path;
  } else {
    const base = tmpdir();
    // The service user must be able to reach its folder (TMPDIR under /root would not do).
    const closed = owner ? closedAncestor(join(base, 'x')) : undefined;
    if (closed) throw new Error(`the OS user "${owner?.name}" cannot enter ${closed}: set TMPDIR to a folder it can reach`);
    dir = await mkdtemp(join(base, prefix));
  }
  await chmod(dir, 0o700);
  if (owner) await chown(dir, owner.uid, owner.gid);
  return dir;
}

/** Writes a file only `owner` (and root) can read: configs that hold passwords. */
export async function writePrivateFile(path: string, content: string, owner: OsUser | undefined): Promise<void> {
  await writeFile(path, content, { mode: 0o600 });
  if (owner) await chown(path, owner.uid, owner.gid);
}
