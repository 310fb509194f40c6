import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { poolSource } from '../../src/db/request/connection-source.js';
import { RequestScope } from '../../src/db/request/request-scope.js';
import { useTestEnvironment } from '../support/server.js';
import { W2 } from '../support/workloads.js';

const t = useTestEnvironment();

describe('one connection per request (I1)', () => {
  it('runs every statement of a nested query on one backend', async () => {
    // backendPid runs `select pg_backend_pid()` beside the W2 selection, on the request's scope.
    const { response, stats, acquired } = await t.server.measure(`{
      first: backendPid
      categories(first: 20) { name itemCount items(first: 10) { id number category { name } } }
      second: backendPid
    }`);
    expect(response.body.errors).toBeUndefined();
    const { first, second } = response.body.data as { first: number; second: number };
    expect(first).toBe(second);
    expect(acquired).toEqual([first]);
    expect(stats).toMatchObject({ connectionsTaken: 1, backendPid: first });
    expect(stats?.statements).toBeGreaterThanOrEqual(4);
  });

  it('takes one connection for W2 however many loaders it runs', async () => {
    const { response, stats, acquired } = await t.server.measure(W2);
    expect(response.body.errors).toBeUndefined();
    expect(acquired).toHaveLength(1);
    expect(stats?.connectionsTaken).toBe(1);
  });

  it('takes no connection for a request that needs no SQL', async () => {
    const { response, stats, acquired } = await t.server.measure('{ __typename }');
    expect(response.body.data).toEqual({ __typename: 'Query' });
    expect(acquired).toEqual([]);
    expect(stats).toMatchObject({ connectionsTaken: 0, statements: 0, backendPid: null });
  });

  it('takes no connection for a document that fails validation', async () => {
    const released = t.server.released.length;
    const acquired = t.server.acquired.length;
    const { body } = await t.server.graphql('{ items { doesNotExist } }');
    expect(body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(t.server.acquired.length).toBe(acquired);
    expect(t.server.released.length).toBe(released);
  });

  it('gives concurrent requests different connections', async () => {
    const pids = await Promise.all(
      Array.from({ length: 3 }, async () => {
        const { body } = await t.server.graphql('{ backendPid sleep(seconds: 0.2) }');
        return (body.data as { backendPid: number }).backendPid;
      }),
    );
    expect(new Set(pids).size).toBe(3);
  });

  it('keeps each request on its own connection and its own parameters while all share one query compiler', async () => {
    const idle = t.server.server.pool.idleCount;
    const scopes = Array.from({ length: 3 }, () => new RequestScope(poolSource(t.server.server.pool), { poolTimeoutMs: 10_000 }));
    // Three requests' statements built, compiled and sent interleaved, three rounds each.
    const rounds = await Promise.all(
      scopes.map(async (scope, index) => {
        const answers: { pid: number; echo: number }[] = [];
        for (let round = 0; round < 3; round += 1) {
          const { rows } = await sql<{ pid: number; echo: number }>`select pg_backend_pid() as pid, ${index * 10 + round}::int as echo`.execute(scope.db);
          answers.push(rows[0]!);
        }
        return answers;
      }),
    );
    await Promise.all(scopes.map((scope) => scope.release()));
    rounds.forEach((answers, index) => {
      expect(answers.map((answer) => answer.echo)).toEqual([index * 10, index * 10 + 1, index * 10 + 2]);
      expect(new Set(answers.map((answer) => answer.pid)).size).toBe(1);
      expect(scopes[index]!.stats).toMatchObject({ connectionsTaken: 1, statements: 3, backendPid: answers[0]!.pid });
    });
    expect(new Set(rounds.map((answers) => answers[0]!.pid)).size).toBe(3);
    expect(t.server.server.pool.idleCount).toBeGreaterThanOrEqual(idle);
  });
});
