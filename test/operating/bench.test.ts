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

interface LiveSummary {
  correct: boolean;
  live: {
    workload: string;
    subscribers: number;
    status: string;
    note?: string;
    correct: boolean;
    writes?: number;
    received?: number;
    expected?: number;
    lagMs?: { p50: number; p99: number };
    ticks?: number;
    statementsPerTick?: number;
    statements?: { reads: number; items: number; categories: number; other: number; claims: number };
    peakConnections?: number;
    serverCpuMsPerDelivery?: number;
  }[];
}

describe('npm run bench W6 (a 1 s smoke run of live updates)', () => {
  it('delivers every row to every subscriber at two counts, at most 3 statements per tick at either, one listener beside the pool', { timeout: 120_000 }, async () => {
    const { stdout } = await promisify(execFile)(
      'npm',
      ['run', '--silent', 'bench', '--', '--seconds', '1', '--warmup-seconds', '0', '--attempts', '1', '--workloads', 'W6', '--live-subscribers', '40,10', '--no-write'],
      { cwd: REPO_ROOT, timeout: 110_000, env: { ...process.env, DATABASE_URL: '' } },
    ).catch((error: { stdout?: string; stderr?: string }) => {
      throw new Error(`bench failed:\n${error.stdout ?? ''}\n${error.stderr ?? ''}`);
    });
    const summary = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as LiveSummary;
    expect(summary.live.map((m) => `${m.workload} ${m.subscribers} ${m.status}${m.note ? `: ${m.note}` : ''}`)).toEqual(['W6 40 ok', 'W6 10 ok']);
    expect(summary.correct).toBe(true);
    for (const m of summary.live) {
      // 200 rows in 1 s; 9 in 10 subscribers take every row, 1 in 10 one category's (a tenth of the rows).
      expect(m.writes).toBe(200);
      expect(m.received).toBe(m.expected);
      expect(m.expected).toBe(200 * (m.subscribers - Math.floor(m.subscribers / 10)) + 20 * Math.floor(m.subscribers / 10));
      expect(m.lagMs?.p99).toBeGreaterThan(0);
      // A tick: the read of the outbox, then at most one load of items and one of categories,
      // however many subscribers the rows go to; nothing else.
      expect(m.ticks).toBeGreaterThan(0);
      expect(m.statementsPerTick).toBeLessThanOrEqual(3);
      expect({ other: m.statements?.other, claims: m.statements?.claims }).toEqual({ other: 0, claims: 0 });
      expect(m.statements?.items).toBeLessThanOrEqual(m.statements?.reads ?? 0);
      // The pool (10) and the listener.
      expect(m.peakConnections).toBeGreaterThanOrEqual(2);
      expect(m.peakConnections).toBeLessThanOrEqual(11);
      expect(m.serverCpuMsPerDelivery).toBeGreaterThan(0);
    }
  });
});
