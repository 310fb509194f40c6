import { describeExit, type ManagedProcessOptions, spawnManaged } from './managed-process.js';

/**
 * Runs a one-shot program (initdb, pg_basebackup) to completion. Rejects, naming the program and
 * its last lines, when it exits non-zero or is still running after `timeoutMs` (then it is killed
 * by its PID first).
 */
export async function runToCompletion(options: ManagedProcessOptions & { timeoutMs: number }): Promise<void> {
  const child = spawnManaged(options);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), options.timeoutMs)));
  try {
    const outcome = await Promise.race([child.exited, timedOut]);
    if (outcome === 'timeout') {
      await child.stop([{ signal: 'SIGKILL', waitMs: 5_000 }]);
      throw child.failure(`did not finish within ${options.timeoutMs} ms`);
    }
    if (outcome.code !== 0) throw child.failure(`failed (${describeExit(outcome)})`);
  } finally {
    clearTimeout(timer);
  }
}
