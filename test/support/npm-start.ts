import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, expect } from 'vitest';

/**
 * Runs the real `npm start` (the README's command) as a child process, and cleans up after it:
 * every process started here is stopped after each test, by its pid.
 */

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The first start runs initdb; later ones only start PostgreSQL. */
export const START_TIMEOUT_MS = 60_000;
export const EXIT_TIMEOUT_MS = 30_000;
export const DATABASE_STOP_TIMEOUT_MS = 10_000;
export const BANNER = /^poolgraph: GraphiQL at http:\/\/localhost:(\d+)\/graphql$/m;

/** One `npm start` child, with everything it has printed so far. */
export interface NpmStart {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
}

const running = new Set<NpmStart>();

afterEach(async () => {
  await Promise.all([...running].map(stopForGood));
});

/**
 * Spawns `npm start` as a user would, on a free port: on the embedded database in `dataDir`, or
 * on `extraEnv.DATABASE_URL` when given. With `ownProcessGroup`, npm leads a process group of its
 * own, as in a terminal, so a test can signal the whole group (`process.kill(-pid)`), as Ctrl-C
 * does.
 */
export function npmStart(
  dataDir: string | undefined,
  extraEnv: Record<string, string> = {},
  { ownProcessGroup = false }: { ownProcessGroup?: boolean } = {},
): NpmStart {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', ...(dataDir ? { DATA_DIR: dataDir } : {}) };
  // Without DATABASE_URL the embedded PostgreSQL is used; a HOST of the developer's could make
  // the server unreachable on 127.0.0.1.
  delete env.DATABASE_URL;
  delete env.HOST;
  Object.assign(env, extraEnv);
  const child = spawn('npm', ['start'], { cwd: REPO_ROOT, env, shell: false, detached: ownProcessGroup });
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

export const isAlive = (run: NpmStart) => run.child.exitCode === null && run.child.signalCode === null;

export const sleep = (ms: number) => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

/** Waits for the banner and returns the port it names; fails if the process exits first. */
export async function bannerPort(run: NpmStart, timeoutMs = START_TIMEOUT_MS): Promise<number> {
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
export async function exitCode(run: NpmStart, timeoutMs = EXIT_TIMEOUT_MS): Promise<number | null> {
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

export const output = (run: NpmStart) => `--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;

/** Every process (pid and command line) running now; read-only. */
export async function processes(): Promise<{ pid: number; ppid: number; args: string }[]> {
  const { stdout } = await promisify(execFile)('ps', ['-ww', '-eo', 'pid=,ppid=,args=']);
  return stdout
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .filter((match) => match !== null)
    .map(([, pid, ppid, args]) => ({ pid: Number(pid), ppid: Number(ppid), args: args ?? '' }));
}

export async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
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
export async function stopForGood(run: NpmStart): Promise<void> {
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

/** SIGTERM to `npm` (which forwards it to node, thanks to the script's `exec`); must exit 0. */
export async function stopWithSigterm(run: NpmStart): Promise<void> {
  expect(run.child.kill('SIGTERM')).toBe(true);
  expect(await exitCode(run), output(run)).toBe(0);
}
