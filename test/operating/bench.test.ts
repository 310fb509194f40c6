import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface BenchSummary {
  serverNode: string;
  correct: boolean;
  ratios: { w1PoolgraphToRaw?: number; w1PooledToUnpooled?: number };
  measurements: {
    target: string;
    workload: string;
    status: string;
    requests?: number;
    mismatches?: number;
    non2xx?: number;
    errors?: number;
    statementsPerRequest?: number;
    peakConnections?: number;
  }[];
}

describe('npm run bench (a 1 s smoke run of W1)', () => {
  it('loads poolgraph, raw and unpooled with right answers only, one statement per request, within the pool', { timeout: 90_000 }, async () => {
    const { stdout } = await promisify(execFile)(
      'npm',
      ['run', '--silent', 'bench', '--', '--seconds', '1', '--warmup-seconds', '0', '--connections', '8', '--workloads', 'W1', '--no-write', '--attempts', '1'],
      // The bench's own embedded PostgreSQL, whatever the test run uses.
      { cwd: REPO_ROOT, timeout: 80_000, env: { ...process.env, DATABASE_URL: '' } },
    ).catch((error: { stdout?: string; stderr?: string }) => {
      throw new Error(`bench failed:\n${error.stdout ?? ''}\n${error.stderr ?? ''}`);
    });
    const summary = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as BenchSummary;

    expect(summary.correct).toBe(true);
    // Without --node the servers run on the Node of the run (npm run test:node24: 24).
    expect(summary.serverNode).toBe(process.version);
    expect(summary.measurements.map((m) => `${m.target} ${m.workload} ${m.status}`)).toEqual([
      'poolgraph W1 ok',
      'raw W1 ok',
      'unpooled W1 ok',
    ]);
    for (const m of summary.measurements) {
      expect(m.requests).toBeGreaterThan(0);
      expect({ mismatches: m.mismatches, non2xx: m.non2xx, errors: m.errors }).toEqual({ mismatches: 0, non2xx: 0, errors: 0 });
      // pg_stat_statements' count over the requests the server answered: one each.
      expect(m.statementsPerRequest).toBeCloseTo(1, 2);
      expect(m.peakConnections).toBeLessThanOrEqual(10);
    }
    expect(summary.ratios.w1PoolgraphToRaw).toBeGreaterThan(0);
    expect(summary.ratios.w1PooledToUnpooled).toBeGreaterThan(0);
  });
});
