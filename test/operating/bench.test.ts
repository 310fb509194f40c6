import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface BenchSummary {
  serverNode: string;
  serverRole: string;
  correct: boolean;
  ratios: { w1PoolgraphToRaw?: number; w1PooledToUnpooled?: number; w1TokenToW1?: number };
  measurements: {
    target: string;
    workload: string;
    status: string;
    requests?: number;
    mismatches?: number;
    bodiesChecked?: number;
    non2xx?: number;
    errors?: number;
    statementsPerRequest?: number;
    claimStatementsPerRequest?: number;
    roundTripsPerRequest?: number;
    peakConnections?: number;
  }[];
}

describe('npm run bench (a 1 s smoke run of W1 and W1-token)', () => {
  it('loads poolgraph (W1 and W1-token), raw and unpooled, checks every body (all right), one round trip per request, within the pool', { timeout: 120_000 }, async () => {
    const { stdout } = await promisify(execFile)(
      'npm',
      // One attempt per target: the bench measures a run again (up to 3 times, 5 s apart) when
      // other processes used the CPU, which on a shared machine tripled this test's time. The
      // test checks answers and counts, not speed, so a disturbed run is as good as any.
      [
        'run', '--silent', 'bench', '--', '--seconds', '1', '--warmup-seconds', '0', '--attempts', '1',
        '--connections', '8', '--workloads', 'W1,W1-token', '--no-write',
      ],
      // The bench's own embedded PostgreSQL, whatever the test run uses.
      { cwd: REPO_ROOT, timeout: 110_000, env: { ...process.env, DATABASE_URL: '' } },
    ).catch((error: { stdout?: string; stderr?: string }) => {
      throw new Error(`bench failed:\n${error.stdout ?? ''}\n${error.stderr ?? ''}`);
    });
    const summary = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as BenchSummary;

    expect(summary.correct).toBe(true);
    // Without --node the servers run on the Node of the run (npm run test:node24: 24).
    expect(summary.serverNode).toBe(process.version);
    // The servers log in as poolgraph_app, which row-level security binds, as npm start requires in jwt mode.
    expect(summary.serverRole).toMatch(/^`poolgraph_app` \(no superuser, no BYPASSRLS/);
    // W1-token only on poolgraph: raw verifies no tokens, unpooled is measured on W1 alone.
    expect(summary.measurements.map((m) => `${m.target} ${m.workload} ${m.status}`)).toEqual([
      'poolgraph W1 ok',
      'poolgraph W1-token ok',
      'raw W1 ok',
      'unpooled W1 ok',
    ]);
    for (const m of summary.measurements) {
      expect(m.requests).toBeGreaterThan(0);
      expect({ mismatches: m.mismatches, non2xx: m.non2xx, errors: m.errors }).toEqual({ mismatches: 0, non2xx: 0, errors: 0 });
      // Every answer was compared with the expected body, not a sample of them.
      expect(m.bodiesChecked).toBe(m.requests);
      // Round trips, the server's own count: one per request, with a token or without.
      expect(m.roundTripsPerRequest).toBeCloseTo(1, 2);
      // pg_stat_statements' count over the requests the server answered: one each, and with a
      // token one more, the set_config of the caller's claims pipelined in that round trip.
      const claims = m.workload === 'W1-token' ? 1 : 0;
      expect({ statements: m.statementsPerRequest?.toFixed(2), setConfig: m.claimStatementsPerRequest?.toFixed(2) }).toEqual({
        statements: (1 + claims).toFixed(2),
        setConfig: claims.toFixed(2),
      });
      expect(m.peakConnections).toBeLessThanOrEqual(10);
    }
    // The ratios are reported, not asserted: a 1 s run on a shared machine says nothing about
    // speed. This test is about the bench itself: it loads all three targets, checks every body
    // and counts statements in PostgreSQL; speed targets belong to a full `npm run bench`.
    expect(Object.keys(summary.ratios)).toEqual(expect.arrayContaining(['w1PoolgraphToRaw', 'w1PooledToUnpooled', 'w1TokenToW1']));
  });
});
