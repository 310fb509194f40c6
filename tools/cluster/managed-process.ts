import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { withTimeout } from '../../src/operating/readiness.js';
import type { OsUser } from './service-user.js';

/** How a process ended. */
export interface ProcessExit {
  /** The exit code, or null when a signal ended it. */
  code: number | null;
  /** The signal that ended it, if any. */
  signal: NodeJS.Signals | null;
}

/** One rung of a stop ladder: send `signal`, then wait up to `waitMs` for the exit. */
export interface StopStep {
  signal: NodeJS.Signals;
  waitMs: number;
}

/** Options of {@link spawnManaged}. */
export interface ManagedProcessOptions {
  /** Names the process in errors and logs (`primary`, `pgbouncer`, `instance-2`). */
  name: string;
  /** Absolute path of the program. */
  command: string;
  args: readonly string[];
  /** The child's whole environment (nothing is inherited unless passed here). */
  env: NodeJS.ProcessEnv;
  /** @default the current directory */
  cwd?: string;
  /** Run as this OS user instead of ours (PostgreSQL and PgBouncer refuse root). */
  runAs?: OsUser;
  /**
   * The signal sent if our own process exits while this one still runs, so an aborted test or a
   * crash leaves nothing behind (PostgreSQL wants SIGQUIT: it then ends its backends too).
   * @default 'SIGKILL'
   */
  abandonSignal?: NodeJS.Signals;
  /** Receives every line the child prints, stdout and stderr alike (e.g. `--verbose`). */
  onLine?: (line: string) => void;
}

/** Lines kept for error messages; older ones are dropped. */
const TAIL_LINES = 200;
/** How long after its exit we still read a process's output. */
const OUTPUT_GRACE_MS = 200;

/**
 * A child process we started and will stop by its PID: its output is kept (the last
 * {@link TAIL_LINES} lines) so that every failure can name the process and what it said last.
 */
export class ManagedProcess {
  /** See {@link ManagedProcessOptions.name}. */
  readonly name: string;
  /** The PID we signal; never another process's. */
  readonly pid: number;
  /** Resolves once the process has exited (it never rejects). */
  readonly exited: Promise<ProcessExit>;
  readonly #child: ChildProcess;
  readonly #lines: string[] = [];
  readonly #lineListeners = new Set<(line: string) => void>();
  #exit: ProcessExit | undefined;

  /** Use {@link spawnManaged}. */
  constructor(child: ChildProcess, options: ManagedProcessOptions) {
    if (child.pid === undefined) throw new Error(`${options.name}: ${options.command} could not be started`);
    this.name = options.name;
    this.pid = child.pid;
    this.#child = child;
    const onLine = (line: string) => {
      this.#lines.push(line);
      if (this.#lines.length > TAIL_LINES) this.#lines.shift();
      options.onLine?.(line);
      for (const listener of this.#lineListeners) listener(line);
    };
    if (child.stdout) createInterface({ input: child.stdout }).on('line', onLine);
    if (child.stderr) createInterface({ input: child.stderr }).on('line', onLine);
    let outputClosed = false;
    child.once('close', () => (outputClosed = true));
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        // 'exit' can come before the last lines are read; they explain why it exited. Wait for
        // the pipes to close, but not for long: a grandchild may hold them open.
        const settle = () => {
          this.#exit ??= { code, signal };
          resolve(this.#exit);
        };
        if (outputClosed) return settle();
        child.once('close', settle);
        setTimeout(settle, OUTPUT_GRACE_MS).unref();
      });
    });
  }

  /** True until the process has exited. */
  get running(): boolean {
    return this.#exit === undefined;
  }

  /** The last `count` lines it printed, for error messages. */
  tail(count = 30): string {
    return this.#lines.slice(-count).join('\n');
  }

  /** An error naming this process and ending with its last lines. */
  failure(message: string): Error {
    return new Error(`${this.name} (pid ${this.pid}): ${message}\n--- last lines of ${this.name}:\n${this.tail()}`);
  }

  /**
   * Resolves with the first line (already printed or still to come) that matches `pattern`;
   * rejects if the process exits first or after `timeoutMs`, naming the process.
   */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
    for (const line of this.#lines) {
      const match = pattern.exec(line);
      if (match) return Promise.resolve(match);
    }
    return new Promise((resolve, reject) => {
      const finish = (outcome: () => void) => {
        clearTimeout(timer);
        this.#lineListeners.delete(listener);
        outcome();
      };
      const listener = (line: string) => {
        const match = pattern.exec(line);
        if (match) finish(() => resolve(match));
      };
      const timer = setTimeout(
        () => finish(() => reject(this.failure(`no line matching ${pattern} within ${timeoutMs} ms`))),
        timeoutMs,
      );
      this.#lineListeners.add(listener);
      void this.exited.then((exit) =>
        finish(() => reject(this.failure(`exited (${describeExit(exit)}) before printing ${pattern}`))),
      );
    });
  }

  /**
   * Stops the process by its PID: each step sends its signal and waits for the exit; the last
   * step should be SIGKILL. Returns how it ended; at once if it had already exited.
   */
  async stop(ladder: readonly StopStep[]): Promise<ProcessExit> {
    for (const { signal, waitMs } of ladder) {
      if (this.#exit) return this.#exit;
      this.#child.kill(signal);
      const exit = await withTimeout(this.exited, waitMs);
      if (exit) return exit;
    }
    if (this.#exit) return this.#exit;
    throw this.failure(`still running after ${ladder.map((step) => step.signal).join(', ')}`);
  }
}

/** Processes still running, for the last-resort cleanup when our own process exits. */
const live = new Map<ManagedProcess, NodeJS.Signals>();
let exitHookInstalled = false;

/**
 * Starts `options.command` with piped output. As long as it runs, our process's `exit` event
 * sends it {@link ManagedProcessOptions.abandonSignal}, by PID: a test that throws half-way or a
 * tool that crashes leaves no server behind.
 */
export function spawnManaged(options: ManagedProcessOptions): ManagedProcess {
  const child = spawn(options.command, options.args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    // A process group of its own: a Ctrl-C in the terminal reaches only us, and we stop the
    // cluster in order (load balancer first, database last) instead of every process at once.
    detached: true,
    ...(options.runAs ? { uid: options.runAs.uid, gid: options.runAs.gid } : {}),
  });
  // Without a listener a failed spawn (ENOENT, EACCES) would be an uncaught error; the pid check
  // in the constructor reports it instead.
  child.on('error', () => undefined);
  const managed = new ManagedProcess(child, options);
  live.set(managed, options.abandonSignal ?? 'SIGKILL');
  void managed.exited.then(() => live.delete(managed));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const [leftOver, signal] of live) {
        try {
          process.kill(leftOver.pid, signal);
        } catch {
          // It exited in the meantime; nothing to clean up.
        }
      }
    });
  }
  return managed;
}

/** `exit 1` or `signal SIGKILL`. */
export function describeExit(exit: ProcessExit): string {
  return exit.signal ? `signal ${exit.signal}` : `exit ${exit.code}`;
}
