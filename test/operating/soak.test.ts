import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface SoakSummary {
  requests: number;
  minRequests: number;
  loadSeconds: number;
  responses: Record<string, number>;
  faults: { backendsTerminated: number; postgresRestarts: number };
  connectionsPeak: number;
  connectionsLimit: number;
  connectionsAfter: number;
  idleInTransactionAfter: number;
  writes: { sent: number; acknowledged: number; failed: number; lost: number; phantom: number };
  memoryMiB: { heapGrowth: { baselineMiB: number; endMiB: number; toleranceMiB: number; climbing: boolean; leaking: boolean } | string };
  problems: string[];
}

describe('a short soak: load with backends killed and PostgreSQL restarted', () => {
  it('stays within the pool, loses no acknowledged write, answers every request with a known code, and keeps no heap', { timeout: 120_000 }, async () => {
    // 15 s of load, longer on a slow machine until 500 requests were sent (at most 60 s): the
    // amount of load does not depend on the machine's speed, the time it takes does.
    const { stdout } = await promisify(execFile)(
      'npm',
      ['run', '--silent', 'soak', '--', '--seconds', '15', '--min-requests', '500', '--max-seconds', '60', '--connections', '64'],
      { cwd: REPO_ROOT, timeout: 110_000, env: { ...process.env, POOL_SIZE: '5', POOL_MAX_OVERFLOW: '10' } },
    ).catch((error: { stdout?: string; stderr?: string }) => {
      throw new Error(`soak failed:\n${error.stdout ?? ''}\n${error.stderr ?? ''}`);
    });
    const summary = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as SoakSummary;
    console.info(`soak ${summary.loadSeconds} s x 64: ${JSON.stringify(summary)}`);

    expect(summary.problems).toEqual([]);
    // The heap check ran (it needs --expose-gc): after warm-up, the heap after GC did not keep growing.
    expect(summary.memoryMiB.heapGrowth).toMatchObject({ leaking: false });
    // The faults really happened, and the load really ran.
    expect(summary.faults.postgresRestarts).toBeGreaterThanOrEqual(1);
    expect(summary.faults.backendsTerminated).toBeGreaterThan(0);
    expect(summary.minRequests).toBe(500);
    expect(summary.requests).toBeGreaterThanOrEqual(summary.minRequests);
    // Counted, not assumed: within the pool during the soak, back to POOL_SIZE or fewer after it.
    expect(summary.connectionsPeak).toBeLessThanOrEqual(summary.connectionsLimit);
    expect(summary.connectionsAfter).toBeLessThanOrEqual(5);
    expect(summary.idleInTransactionAfter).toBe(0);
    expect(summary.writes.acknowledged).toBeGreaterThan(0);
    expect(summary.writes).toMatchObject({ lost: 0, phantom: 0 });
    // Every request got an answer: data, or a coded "try again".
    const unexpected = Object.keys(summary.responses).filter(
      (key) => !['200', '503 DATABASE_UNAVAILABLE', '503 DATABASE_BUSY'].includes(key),
    );
    expect(unexpected).toEqual([]);
  });
});
