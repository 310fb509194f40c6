import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { closedAncestor, resolveDataDir } from '../../src/db/setup/embedded.js';

/**
 * As root, PostgreSQL runs as the user `postgres`, which must traverse every parent of the data
 * directory. These checks use real folders with real modes under the system temp folder.
 */

const folders: string[] = [];

afterAll(async () => {
  await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
});

/** A new folder under the system temp folder with exactly `mode`. */
async function folderWithMode(mode: number): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), 'poolgraph-data-dir-test-'));
  folders.push(folder);
  await chmod(folder, mode);
  return folder;
}

describe('closedAncestor: the folder that keeps other users out of a path', () => {
  it('names a parent of mode 700', async () => {
    const closed = await folderWithMode(0o700);
    expect(closedAncestor(join(closed, 'data'))).toBe(closed);
  });

  it('skips parents that do not exist yet', async () => {
    const closed = await folderWithMode(0o700);
    expect(closedAncestor(join(closed, 'not', 'yet', 'data'))).toBe(closed);
  });

  it('finds a closed folder further up, past an open one', async () => {
    const closed = await folderWithMode(0o700);
    const open = join(closed, 'open');
    await mkdir(open);
    await chmod(open, 0o755);
    expect(closedAncestor(join(open, 'data'))).toBe(closed);
  });

  it('names the nearest closed folder when there are several', async () => {
    const closed = await folderWithMode(0o700);
    const inner = join(closed, 'inner');
    await mkdir(inner);
    await chmod(inner, 0o700);
    expect(closedAncestor(join(inner, 'data'))).toBe(inner);
  });

  it('finds nothing below folders of mode 755, or 711 (traversable, not listable)', async () => {
    expect(closedAncestor(join(await folderWithMode(0o755), 'data'))).toBeUndefined();
    expect(closedAncestor(join(await folderWithMode(0o711), 'data'))).toBeUndefined();
  });
});

describe('resolveDataDir: where the embedded PostgreSQL keeps its data', () => {
  it('uses the requested folder when its parents are open', async () => {
    const dataDir = join(await folderWithMode(0o755), 'data');
    expect(resolveDataDir(dataDir)).toBe(dataDir);
  });

  // Only root can make a folder it cannot enter itself yet `postgres` must traverse: elsewhere the
  // test is skipped, and its name says why.
  const isRoot = process.getuid?.() === 0;
  it.runIf(isRoot)(
    `moves a data dir below a closed folder to the same temp folder on every start, and says so (as root, like CI)${isRoot ? '' : ': skipped, not running as root'}`,
    async () => {
      const requested = join(await folderWithMode(0o700), 'data');
      const warnings: string[] = [];
      const logger = pino(
        { level: 'warn' },
        new Writable({
          write(chunk: Buffer, _encoding, done) {
            warnings.push(chunk.toString());
            done();
          },
        }),
      );

      const used = resolveDataDir(requested, logger);
      expect(dirname(used)).toBe(tmpdir());
      expect(basename(used)).toMatch(/^poolgraph-data-/);
      expect(resolveDataDir(requested)).toBe(used);
      // Another requested folder gets a fallback of its own.
      expect(resolveDataDir(join(await folderWithMode(0o700), 'data'))).not.toBe(used);

      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(used);
      expect(warnings[0]).toContain(requested);
    },
  );
});
