import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { SignJWT } from 'jose';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { scrape } from '../support/metrics.js';
import { startTestServer, type TestServer, useTestEnvironment } from '../support/server.js';
import { bearer, TEST_SECRET, TEST_TOKENS, tokenFor } from '../support/tokens.js';

/** Every JSON line the server logs. */
const lines: Record<string, unknown>[] = [];
const destination = new Writable({
  write(chunk: Buffer, _encoding, done) {
    for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
    done();
  },
});

const key = new TextEncoder().encode(TEST_SECRET);
const base64url = (text: string) => Buffer.from(text).toString('base64url');
const signed = (claims: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(key);
const now = () => Math.floor(Date.now() / 1000);

describe('a request whose token is bad gets a coded error, takes no connection, and the server goes on serving', () => {
  const t = useTestEnvironment({}, { connectAs: 'app', auth: { tokens: TEST_TOKENS }, logger: pino({ level: 'info' }, destination) });
  const metricsUrl = () => t.server.url.replace('/graphql', '/metrics');

  async function read(authorization: string) {
    return t.server.graphql('{ items(first: 1) { id } }', undefined, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', authorization },
      body: JSON.stringify({ query: '{ items(first: 1) { id } }' }),
    });
  }

  const otherKey = new TextEncoder().encode('another-secret-of-at-least-32-characters');
  const cases: [string, () => Promise<string>, string][] = [
    ['broken base64', async () => 'Bearer ###.@@@.!!!', 'malformed'],
    ['broken JSON', async () => `Bearer ${base64url('{"alg":"HS256"')}.${base64url('{"sub":')}.c2ln`, 'malformed'],
    ['a token signed with another key', async () => `Bearer ${await new SignJWT({ sub: 'eve' }).setProtectedHeader({ alg: 'HS256' }).sign(otherKey)}`, 'signature'],
    ['alg none', async () => `Bearer ${base64url('{"alg":"none"}')}.${base64url('{"sub":"eve","role":"admin"}')}.`, 'algorithm'],
    ['a clock skew beyond the tolerance (expired 60 s ago)', async () => `Bearer ${await signed({ sub: 'eve', exp: now() - 60 })}`, 'expired'],
    ['a clock skew beyond the tolerance (valid only in 60 s)', async () => `Bearer ${await signed({ sub: 'eve', nbf: now() + 60 })}`, 'not_yet_valid'],
    ['claims that are not an object', async () => {
      const header = base64url('{"alg":"HS256","typ":"JWT"}');
      const payload = base64url('["admin"]');
      const { createHmac } = await import('node:crypto');
      const signature = createHmac('sha256', TEST_SECRET).update(`${header}.${payload}`).digest('base64url');
      return `Bearer ${header}.${payload}.${signature}`;
    }, 'claims'],
    ['a 10 KB header', async () => `Bearer ${'a'.repeat(10_000)}`, 'too_large'],
    ['another scheme', async () => 'Basic YWxpY2U6c2VjcmV0', 'malformed'],
  ];

  it.each(cases)('%s: 401 UNAUTHENTICATED with an RFC 6750 challenge, never served as anonymous', async (_name, header, reason) => {
    const before = await scrape(metricsUrl());
    const acquired = t.server.acquired.length;
    const authorization = await header();
    const response = await read(authorization);
    expect(response.status).toBe(401);
    expect(response.body.data ?? null).toBeNull();
    expect(response.body.errors?.map((error) => error.extensions?.code)).toEqual(['UNAUTHENTICATED']);
    const challenge = response.headers.get('www-authenticate') ?? '';
    expect(challenge).toMatch(reason === 'too_large' ? /^Bearer error="invalid_request"/ : /^Bearer error="invalid_token", error_description="[^"]+"$/);
    // Nothing of the token, and no stack, reaches the client.
    const text = JSON.stringify(response.body);
    expect(text).not.toContain(authorization.slice(7, 40));
    expect(text).not.toMatch(/\bat \S+:\d+/);
    expect(t.server.acquired.length, 'no connection taken').toBe(acquired);
    const after = await scrape(metricsUrl());
    expect(after.delta(before, 'poolgraph_auth_failures_total', { reason })).toBe(1);
    // Still serving.
    expect((await t.server.graphql('{ items(first: 1) { id } }')).body.errors).toBeUndefined();
  });

  it('a 100 KB header: 431 with REQUEST_HEADERS_TOO_LARGE, before any GraphQL runs', async () => {
    const response = await read(`Bearer ${'a'.repeat(100_000)}`);
    expect(response.status).toBe(431);
    expect(response.body.errors?.map((error) => error.extensions?.code)).toEqual(['REQUEST_HEADERS_TOO_LARGE']);
    expect((await t.server.graphql('{ items(first: 1) { id } }')).body.errors).toBeUndefined();
  });

  it("logs the caller's sub on the request line, never the token", async () => {
    const token = await tokenFor('log-reader');
    lines.length = 0;
    const response = await t.server.graphql('{ items(first: 1) { id } }', undefined, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...bearer(token) },
      body: JSON.stringify({ query: '{ items(first: 1) { id } }' }),
    });
    expect(response.body.errors).toBeUndefined();
    const requestLines = lines.filter((line) => line['msg'] === 'request');
    expect(requestLines).toEqual([expect.objectContaining({ sub: 'log-reader', status: 200 })]);
    expect(JSON.stringify(lines)).not.toContain(token.split('.')[2]);
  });
});

describe('keys that cannot be fetched', () => {
  let hanging: Server;
  let server: TestServer;
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase();
    // A JWKS endpoint that accepts connections and never answers.
    hanging = createServer(() => undefined);
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    const jwksUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/jwks.json`;
    server = await startTestServer(database.appUrl, {}, { auth: { tokens: { ...TEST_TOKENS, secret: undefined, jwksUrl, jwksTimeoutMs: 300 } } });
  });
  afterAll(async () => {
    await server?.close();
    hanging?.closeAllConnections();
    await new Promise((resolve) => hanging?.close(resolve));
    await database?.drop();
  });

  it('a JWKS endpoint that hangs: 503 AUTH_UNAVAILABLE, and anonymous reads still served', async () => {
    const { privateKey } = await (await import('jose')).generateKeyPair('RS256');
    const token = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(privateKey);
    const response = await server.graphql('{ items(first: 1) { id } }', undefined, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...bearer(token) },
      body: JSON.stringify({ query: '{ items(first: 1) { id } }' }),
    });
    expect(response.status).toBe(503);
    expect(response.body.errors?.map((error) => error.extensions?.code)).toEqual(['AUTH_UNAVAILABLE']);
    expect((await server.graphql('{ items(first: 1) { id } }')).body.errors).toBeUndefined();
  });
});
