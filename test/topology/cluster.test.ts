import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { aliveAmong, startCluster, withDescendants } from '../support/cluster.js';

/** Starting 3 instances compiles the server with tsx 3 times on a 2-core machine. */
const CLUSTER_TEST_TIMEOUT_MS = 180_000;

describe('npm run cluster: primary, replica, PgBouncer, 3 instances and HAProxy on one machine', () => {
  it(
    'answers a query through HAProxy, streams to the replica, and leaves no process behind when stopped',
    async () => {
      const cluster = await startCluster();
      let started: number[] = [];
      try {
        expect(cluster.processes().map((process) => process.name)).toEqual([
          'primary',
          'replica',
          'pgbouncer',
          'instance-1',
          'instance-2',
          'instance-3',
          'haproxy',
        ]);
        started = withDescendants(cluster.processes().map((process) => process.pid));

        const response = await fetch(cluster.graphqlUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: '{ items { number } }' }),
        });
        const body = (await response.json()) as { data?: { items: { number: number }[] }; errors?: unknown[] };
        expect(response.status, JSON.stringify(body)).toBe(200);
        expect(body.errors).toBeUndefined();
        expect(body.data?.items.map((item) => item.number)).toEqual(Array.from({ length: 20 }, (_, index) => index + 1));

        const replication = await cluster.primary.query<{ application_name: string; state: string }>(
          'select application_name, state from pg_stat_replication',
        );
        expect(replication).toEqual([{ application_name: 'poolgraph-replica', state: 'streaming' }]);
        expect((await cluster.haproxy.servers()).map((server) => server.status)).toEqual(['UP', 'UP', 'UP']);
      } finally {
        await cluster.stop();
      }
      expect(started.length).toBeGreaterThan(7);
      expect(aliveAmong(started)).toEqual([]);
      expect(existsSync(cluster.dir)).toBe(false);
    },
    CLUSTER_TEST_TIMEOUT_MS,
  );
});
