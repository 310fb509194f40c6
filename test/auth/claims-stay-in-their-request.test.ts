import { describe, expect, it } from 'vitest';
import { eventually, useTestEnvironment } from '../support/server.js';
import { leaveAtGate } from '../support/test-schema.js';
import { bearer, TEST_TOKENS, tokenFor } from '../support/tokens.js';

/**
 * I7 (docs/design.md): the claims set for one request never reach the next request on the same
 * backend, whichever way the first one ended. One pooled connection, so every request below runs
 * on the same backend, which each check confirms with pg_backend_pid().
 */
describe('a caller\'s claims stay in their request', () => {
  const t = useTestEnvironment({ size: 1, maxOverflow: 0, statementTimeoutMs: 300 }, { connectAs: 'app', auth: { tokens: TEST_TOKENS } });

  async function post(query: string, headers: Record<string, string> = {}, signal?: AbortSignal) {
    return t.server.graphql(query, undefined, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
      body: JSON.stringify({ query }),
      ...(signal ? { signal } : {}),
    });
  }

  /** What the next, anonymous request sees on the one backend. */
  async function nextRequestSees(): Promise<{ pid: number; claims: string | null }> {
    const response = await post('{ sessionSeen { pid claims } }');
    return response.body.data?.['sessionSeen'] as { pid: number; claims: string | null };
  }

  async function onlyBackend(): Promise<number> {
    return (await nextRequestSees()).pid;
  }

  const cases: [string, string][] = [
    ['after a request that succeeded (several statements: its own transaction)', '{ sessionSeen { claims } items(first: 1) { id } }'],
    ['after a single statement (an implicit transaction)', '{ items(first: 1) { id } }'],
    ['after a SQL error', '{ failingSql }'],
    ['after a statement timeout', '{ sleep(seconds: 2) }'],
    ['after a failed write', 'mutation { createItem(input: { number: 1, categoryId: "99999999" }) { id } }'],
  ];

  it.each(cases)('%s', async (_name, query) => {
    const pid = await onlyBackend();
    const acquired = t.server.acquired.length;
    await post(query, bearer(await tokenFor('mallory', 'admin')));
    expect(t.server.acquired.slice(acquired), 'the request ran on the one backend').toEqual([pid]);
    expect(await nextRequestSees()).toEqual({ pid, claims: '' });
  });

  it('after the client went away mid-request', async () => {
    const pid = await onlyBackend();
    const acquired = t.server.acquired.length;
    const released = t.server.released.length;
    const token = await tokenFor('mallory', 'admin');
    const left = await leaveAtGate(
      'claims-abort',
      (signal) => post('{ sessionSeen { claims } waitThenSelect(gate: "claims-abort") }', bearer(token), signal),
      { whileWaiting: () => eventually(() => t.server.released.length > released, 5_000) },
    );
    expect(left).toEqual({ reached: true, ready: true, aborted: true, whileWaiting: true });
    expect(t.server.acquired.slice(acquired)).toEqual([pid]);
    expect(await nextRequestSees()).toEqual({ pid, claims: '' });
  });
});
