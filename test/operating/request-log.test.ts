import { Writable } from 'node:stream';
import { pino } from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { eventually, resolverFinished, useTestEnvironment } from '../support/server.js';
import { leaveAtGate, resolverRuns } from '../support/test-schema.js';
import { W2 } from '../support/workloads.js';

/** Every JSON line the server logs, captured in process through a pino destination stream. */
const lines: Record<string, unknown>[] = [];
const destination = new Writable({
  write(chunk: Buffer, _encoding, done) {
    for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
    done();
  },
});

const t = useTestEnvironment({}, { logger: pino({ level: 'info' }, destination) });

beforeEach(() => {
  lines.length = 0;
});

const requestLines = () => lines.filter((line) => line.msg === 'request');

describe('one log line per request, with a request id', () => {
  it('takes the id from x-request-id, logs one line carrying it, and returns it in the header', async () => {
    const response = await t.server.graphql(`query CategoryPages ${W2.trim()}`, undefined, {
      headers: { 'content-type': 'application/json', accept: 'application/json', 'x-request-id': 'abc' },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toBe('abc');

    const carrying = lines.filter((line) => JSON.stringify(line).includes('abc'));
    expect(carrying).toHaveLength(1);
    const stats = t.server.released.at(-1);
    expect(carrying[0]).toMatchObject({
      level: 30,
      msg: 'request',
      requestId: 'abc',
      method: 'POST',
      path: '/graphql',
      status: 200,
      operationName: 'CategoryPages',
      statements: stats?.statements,
      connection: 'taken',
      acquireWaitMs: expect.any(Number),
      heldMs: expect.any(Number),
      durationMs: expect.any(Number),
    });
    expect(stats?.statements).toBe(2);
    expect(carrying[0]).not.toHaveProperty('errors');
  });

  it('generates an id when none (or an unacceptable one) is sent', async () => {
    for (const sent of [undefined, 'has spaces', 'x'.repeat(129), 'a;b', '<script>']) {
      lines.length = 0;
      const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
      if (sent !== undefined) headers['x-request-id'] = sent;
      const response = await t.server.graphql('{ __typename }', undefined, { headers });
      const id = response.headers.get('x-request-id');
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(requestLines()).toEqual([
        expect.objectContaining({ requestId: id, statements: 0, connection: 'none', operationName: 'Anonymous' }),
      ]);
    }
  });

  it('logs a masked error with its cause and the request id; the client sees only "Unexpected error."', async () => {
    const response = await t.server.graphql('query Hidden { failingAfterSql }', undefined, {
      headers: { 'content-type': 'application/json', accept: 'application/json', 'x-request-id': 'req-masked-1' },
    });
    expect(response.body.errors?.[0]?.message).toBe('Unexpected error.');
    expect(JSON.stringify(response.body)).not.toContain('internal detail');

    const errors = lines.filter((line) => line.level === 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      requestId: 'req-masked-1',
      path: 'failingAfterSql',
      err: { message: 'internal detail that must not reach clients', stack: expect.stringContaining('test-schema.ts') },
    });
    expect(requestLines()).toEqual([
      expect.objectContaining({ requestId: 'req-masked-1', operationName: 'Hidden', errors: ['INTERNAL_SERVER_ERROR'], statements: 1 }),
    ]);
  });

  it('logs the PostgreSQL error behind a masked SQL failure, which clients never see', async () => {
    const response = await t.server.graphql('{ failingSql }', undefined, {
      headers: { 'content-type': 'application/json', accept: 'application/json', 'x-request-id': 'req-sql-1' },
    });
    expect(JSON.stringify(response.body)).not.toContain('division by zero');
    expect(lines.filter((line) => line.level === 50)).toEqual([
      expect.objectContaining({ requestId: 'req-sql-1', err: expect.objectContaining({ message: 'division by zero' }) }),
    ]);
  });

  it('logs a request whose client went away once, marked aborted', async () => {
    // Through the fast path (a JSON POST) and through graphql-yoga's own handler (a GET).
    const query = 'query Abandoned { waitThenSelect(gate: "abandoned") }';
    const requests = [
      (signal: AbortSignal) =>
        t.server.graphql(query, undefined, {
          headers: { 'content-type': 'application/json', accept: 'application/json', 'x-request-id': 'left-post' },
          signal,
        }),
      (signal: AbortSignal) =>
        fetch(`${t.server.url}?query=${encodeURIComponent(query)}`, {
          headers: { accept: 'application/json', 'x-graphql-yoga-csrf': '1', 'x-request-id': 'left-get' },
          signal,
        }),
    ];
    for (const [index, send] of requests.entries()) {
      lines.length = 0;
      const finished = resolverRuns.finished.get('waitThenSelect') ?? 0;
      // Written when the client left, while the resolver still waits at the gate.
      const left = await leaveAtGate('abandoned', send, {
        whileWaiting: () => eventually(() => lines.some((line) => line.level === 30), 5_000),
      });
      expect(left).toEqual({ reached: true, ready: true, aborted: true, whileWaiting: true });
      // The resolver goes on after the abort; its end must not write a second line.
      expect(await resolverFinished('waitThenSelect', finished)).toBe(true);
      expect(lines.filter((line) => line.level === 30)).toEqual([
        expect.objectContaining({
          msg: 'request aborted',
          requestId: index === 0 ? 'left-post' : 'left-get',
          method: index === 0 ? 'POST' : 'GET',
          operationName: 'Abandoned',
          aborted: true,
          connection: 'none',
          statements: 0,
        }),
      ]);
    }
  });

  it('names the operation of a document refused after parsing (a mutation by GET)', async () => {
    const query = encodeURIComponent('mutation Sneaky { createItem(input: { number: 1 }) { id } }');
    const response = await fetch(`${t.server.url}?query=${query}`, {
      headers: { accept: 'application/json', 'x-graphql-yoga-csrf': '1', 'x-request-id': 'by-get' },
    });
    expect(response.status).toBe(405);
    expect(requestLines()).toEqual([
      expect.objectContaining({ requestId: 'by-get', method: 'GET', status: 405, operationName: 'Sneaky', statements: 0 }),
    ]);
  });

  it('probes (/health, /ready, /metrics) get an id but no info line', async () => {
    for (const path of ['/health', '/ready', '/metrics']) {
      const response = await fetch(new URL(path, t.server.url), { headers: { 'x-request-id': `probe-${path.slice(1)}` } });
      expect(response.status).toBe(200);
      expect(response.headers.get('x-request-id')).toBe(`probe-${path.slice(1)}`);
    }
    expect(lines.filter((line) => (line.level as number) >= 30 && line.msg === 'request')).toEqual([]);
  });
});
