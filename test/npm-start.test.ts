import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

/**
 * The README's promise: `npm start` with no `DATABASE_URL` brings up a working GraphQL server on
 * an embedded PostgreSQL, stops cleanly on SIGTERM, keeps its data across restarts, and refuses
 * a bad setting with a readable message. Everything here runs the real `npm start`.
 */

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The first start runs initdb; later ones only start PostgreSQL. */
const START_TIMEOUT_MS = 60_000;
const EXIT_TIMEOUT_MS = 30_000;
const DATABASE_STOP_TIMEOUT_MS = 10_000;
const BANNER = /^poolgraph: GraphiQL at http:\/\/localhost:(\d+)\/graphql$/m;

/** One `npm start` child, with everything it has printed so far. */
interface NpmStart {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
}

const running = new Set<NpmStart>();
const dataDirs: string[] = [];

afterEach(async () => {
  await Promise.all([...running].map(stopForGood));
});

afterAll(async () => {
  await Promise.all(dataDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A fresh, empty folder under the system temp folder, which the `postgres` user can reach. */
async function freshDataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'poolgraph-npm-start-'));
  dataDirs.push(dir);
  return dir;
}

/** Spawns `npm start` as a user would, on the embedded database in `dataDir`. */
function npmStart(dataDir: string, extraEnv: Record<string, string> = {}): NpmStart {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', DATA_DIR: dataDir, ...extraEnv };
  // Without DATABASE_URL the embedded PostgreSQL is used; a HOST of the developer's could make
  // the server unreachable on 127.0.0.1.
  delete env.DATABASE_URL;
  delete env.HOST;
  const child = spawn('npm', ['start'], { cwd: REPO_ROOT, env, shell: false, detached: false });
  const run: NpmStart = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolveExit) => child.once('exit', (code) => resolveExit(code))),
  };
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (run.stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (run.stderr += chunk));
  running.add(run);
  void run.exited.then(() => running.delete(run));
  return run;
}

const isAlive = (run: NpmStart) => run.child.exitCode === null && run.child.signalCode === null;

const sleep = (ms: number) => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

/** Waits for the banner and returns the port it names; fails if the process exits first. */
async function bannerPort(run: NpmStart, timeoutMs = START_TIMEOUT_MS): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = BANNER.exec(run.stdout);
    if (match?.[1]) return Number(match[1]);
    if (!isAlive(run)) throw new Error(`npm start exited before serving:\n${output(run)}`);
    if (Date.now() > deadline) throw new Error(`no banner after ${timeoutMs} ms:\n${output(run)}`);
    await sleep(50);
  }
}

/** The exit code, or a failure naming what the process printed if it does not exit in time. */
async function exitCode(run: NpmStart, timeoutMs = EXIT_TIMEOUT_MS): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${timeoutMs} ms:\n${output(run)}`)), timeoutMs);
  });
  try {
    return await Promise.race([run.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const output = (run: NpmStart) => `--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;

/** Every process (pid and command line) running now; read-only. */
async function processes(): Promise<{ pid: number; ppid: number; args: string }[]> {
  const { stdout } = await promisify(execFile)('ps', ['-ww', '-eo', 'pid=,ppid=,args=']);
  return stdout
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .filter((match) => match !== null)
    .map(([, pid, ppid, args]) => ({ pid: Number(pid), ppid: Number(ppid), args: args ?? '' }));
}

/** True once no PostgreSQL is left in `dataDir`: no postmaster.pid, no process naming it. */
async function databaseStopped(dataDir: string): Promise<boolean> {
  if (existsSync(join(dataDir, 'postmaster.pid'))) return false;
  return !(await processes()).some((entry) => entry.args.includes(dataDir));
}

async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
}

/**
 * Cleanup for a test that failed half-way: SIGTERM (a graceful stop, which also stops
 * PostgreSQL), then SIGKILL for npm and everything below it, each by its pid.
 */
async function stopForGood(run: NpmStart): Promise<void> {
  if (!isAlive(run) || run.child.pid === undefined) return;
  run.child.kill('SIGTERM');
  if (await eventually(async () => !isAlive(run), EXIT_TIMEOUT_MS)) return;
  const all = await processes();
  const tree = [run.child.pid];
  for (let i = 0; i < tree.length; i++) {
    for (const entry of all) if (entry.ppid === tree[i]) tree.push(entry.pid);
  }
  for (const pid of tree.reverse()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  await eventually(async () => !isAlive(run), EXIT_TIMEOUT_MS);
}

interface GraphQLBody {
  data?: Record<string, unknown> | null;
  errors?: { message: string }[];
}

async function graphql(port: number, query: string): Promise<GraphQLBody> {
  const response = await fetch(`http://127.0.0.1:${port}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ query }),
  });
  expect(response.status).toBe(200);
  const body = (await response.json()) as GraphQLBody;
  expect(body.errors).toBeUndefined();
  return body;
}

/** SIGTERM to `npm` (which forwards it to node, thanks to the script's `exec`); must exit 0. */
async function stopWithSigterm(run: NpmStart): Promise<void> {
  expect(run.child.kill('SIGTERM')).toBe(true);
  expect(await exitCode(run), output(run)).toBe(0);
}

describe('npm start without DATABASE_URL (embedded PostgreSQL)', () => {
  it('serves the seeded items, and on SIGTERM exits 0 and leaves no PostgreSQL running', { timeout: 90_000 }, async () => {
    const dataDir = await freshDataDir();
    const run = npmStart(dataDir);
    const port = await bannerPort(run);
    // The data really lives in DATA_DIR (not in a fallback), so the checks below mean something.
    expect(run.stdout).toContain(`database: embedded PostgreSQL in ${dataDir}`);
    expect(existsSync(join(dataDir, 'postmaster.pid'))).toBe(true);

    const { data } = await graphql(port, '{ items { number } }');
    const numbers = (data?.items as { number: number }[]).map((item) => item.number);
    expect(numbers).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));

    await stopWithSigterm(run);
    expect(await eventually(() => databaseStopped(dataDir), DATABASE_STOP_TIMEOUT_MS)).toBe(true);
  });

  it('keeps created items across a restart and does not seed again', { timeout: 150_000 }, async () => {
    const dataDir = await freshDataDir();
    const first = npmStart(dataDir);
    const firstPort = await bannerPort(first);
    const created = await graphql(
      firstPort,
      'mutation { createItem(input: {number: 4242, label: "kept"}) { id } }',
    );
    const id = (created.data?.createItem as { id: string }).id;
    await stopWithSigterm(first);

    const second = npmStart(dataDir);
    const port = await bannerPort(second);
    const { data } = await graphql(
      port,
      `{
        item(id: ${JSON.stringify(id)}) { number label }
        categories(first: 100) { id }
        itemsAfterSeed: items(first: 1, after: "10000") { id }
      }`,
    );
    expect(data?.item).toEqual({ number: 4242, label: 'kept' });
    // A second seed would have truncated and refilled the tables: the created item would be gone.
    expect((data?.categories as unknown[]).length).toBe(100);
    expect(data?.itemsAfterSeed).toEqual([{ id }]);
    await stopWithSigterm(second);
  });

  it('stops the embedded database when SIGTERM arrives while the server is still starting', { timeout: 90_000 }, async () => {
    const dataDir = await freshDataDir();
    const run = npmStart(dataDir);
    // Wait until PostgreSQL runs from this data directory, but the server does not serve yet.
    const started = await eventually(
      async () => !BANNER.test(run.stdout) && (await processes()).some((entry) => entry.args.includes(`postgres -D ${dataDir}`)),
      START_TIMEOUT_MS,
    );
    expect(started, output(run)).toBe(true);
    await stopWithSigterm(run);
    expect(await eventually(() => databaseStopped(dataDir), DATABASE_STOP_TIMEOUT_MS)).toBe(true);
  });

  it('refuses a bad setting with a readable message, before starting anything', { timeout: 30_000 }, async () => {
    const dataDir = await freshDataDir();
    const run = npmStart(dataDir, { POOL_SIZE: 'abc' });
    expect(await exitCode(run, 20_000), output(run)).toBeGreaterThan(0);

    expect(run.stderr).toContain('POOL_SIZE');
    expect(run.stderr).toContain('abc');
    expect(run.stderr).not.toMatch(/^ {4}at /m);
    expect(run.stdout).not.toMatch(BANNER);
    expect(existsSync(join(dataDir, 'PG_VERSION'))).toBe(false);
  });
});
