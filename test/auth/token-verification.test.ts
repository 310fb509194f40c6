import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CompactSign, exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT, UnsecuredJWT } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createTokenVerifier, MAX_TOKEN_BYTES, type TokenSettings, type TokenVerifier } from '../../src/auth/token-verifier.js';
import { AuthUnavailableError, UnauthenticatedError } from '../../src/errors.js';

// `Authorization: Bearer <JWT>` as a client sees it: which tokens pass, and why others are refused
// (the 401's `reason`). A real key endpoint on 127.0.0.1 counts its hits: "no fetch" is a count.
const SECRET = 'a-test-secret-of-at-least-thirty-two-bytes';
const secretKey = new TextEncoder().encode(SECRET);
const now = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function verifierWith(settings: Partial<TokenSettings>): TokenVerifier {
  return createTokenVerifier({ secret: undefined, jwksUrl: undefined, issuer: undefined, audience: undefined, clockToleranceS: 5, ...settings });
}

function hs256(claims: Record<string, unknown> = { sub: 'alice' }, key: Uint8Array = secretKey): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(key);
}

/** Why `verify` refused the header: the 401's reason, or 'unavailable' for the 503. */
async function refusal(verifier: TokenVerifier, header: string): Promise<string> {
  const error = await verifier.verify(header).then(() => new Error('the header was accepted'), (caught: unknown) => caught);
  if (error instanceof UnauthenticatedError || error instanceof AuthUnavailableError) return error.reason;
  throw error;
}

async function keyPair(kid: string, alg: 'RS256' | 'ES256' = 'RS256') {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } satisfies JWK };
}
type KeyPair = Awaited<ReturnType<typeof keyPair>>;

function signedBy(pair: KeyPair, claims: Record<string, unknown> = { sub: 'alice' }, kid = pair.kid): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: pair.alg, kid }).setExpirationTime('1h').sign(pair.privateKey);
}

/** A JWKS endpoint whose answer the test switches, counting every request it receives. */
type KeyEndpoint = { url: string; hits: number; keys: JWK[]; answer: 'keys' | 'error' | 'hang' | 'not-json' | 'not-a-key-set'; close(): Promise<void> };

const endpoints: Server[] = [];
const stop = (server: Server) => {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(resolve));
};
afterEach(async () => {
  vi.useRealTimers();
  for (const server of endpoints.splice(0)) await stop(server);
});

async function keyEndpoint(keys: JWK[]): Promise<KeyEndpoint> {
  const endpoint: KeyEndpoint = { url: '', hits: 0, keys, answer: 'keys', close: async () => void (await stop(server)) };
  const server = createServer((_request, response) => {
    endpoint.hits += 1;
    if (endpoint.answer === 'hang') return;
    if (endpoint.answer === 'error') return void response.writeHead(500).end('down');
    response.writeHead(200, { 'content-type': 'application/json' });
    if (endpoint.answer === 'not-json') return void response.end('<html>sign in</html>');
    response.end(JSON.stringify(endpoint.answer === 'not-a-key-set' ? { hello: 'world' } : { keys: endpoint.keys }));
  });
  endpoints.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  return endpoint;
}

describe('a request with a valid token', () => {
  it('is anonymous without an Authorization header, and has the identity of its token with one', async () => {
    const verifier = verifierWith({ secret: SECRET });
    expect(await verifier.verify(undefined)).toBeUndefined();
    expect(await verifier.verify(null)).toBeUndefined();
    const token = await hs256({ sub: 'alice', role: 'admin', tenant: 7 });
    const identity = await verifier.verify(`Bearer ${token}`);
    expect(identity).toMatchObject({ subject: 'alice', role: 'admin' });
    expect(JSON.parse(identity?.claimsJson ?? '')).toEqual({ sub: 'alice', role: 'admin', tenant: 7 });
    expect(await verifier.verify(`bEaReR ${token}`)).toBe(identity);
  });

  it('pays verification once when the same token comes again, and again after 60 s', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const verifier = verifierWith({ secret: SECRET });
    const header = `Bearer ${await hs256({ sub: 'alice', exp: now() + 3600 })}`;
    const first = await verifier.verify(header);
    expect(await verifier.verify(header)).toBe(first);
    vi.setSystemTime(Date.now() + 61_000);
    expect(await verifier.verify(header)).not.toBe(first);
  });

  it('is refused once its token expires, even though its verification was cached', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const verifier = verifierWith({ secret: SECRET, clockToleranceS: 5 });
    const header = `Bearer ${await hs256({ sub: 'alice', exp: now() + 10 })}`;
    await verifier.verify(header);
    vi.setSystemTime(Date.now() + 14_000);
    expect((await verifier.verify(header))?.subject).toBe('alice');
    vi.setSystemTime(Date.now() + 3_000);
    expect(await refusal(verifier, header)).toBe('expired');
  });

  it('keeps at most 1000 verified tokens, forgetting the oldest first', async () => {
    const verifier = verifierWith({ secret: SECRET });
    const headers = await Promise.all(Array.from({ length: 1001 }, (_, index) => hs256({ sub: `user-${index}` }).then((t) => `Bearer ${t}`)));
    const identities = [];
    for (const header of headers) identities.push(await verifier.verify(header));
    expect(await verifier.verify(headers[1000]!)).toBe(identities[1000]);
    expect(await verifier.verify(headers[0]!)).not.toBe(identities[0]);
  });
});

describe('a token that is refused, and why', () => {
  const verifier = verifierWith({ secret: SECRET, issuer: 'https://issuer.test', audience: 'poolgraph' });
  const valid = (claims: Record<string, unknown> = {}) => hs256({ sub: 'alice', iss: 'https://issuer.test', aud: 'poolgraph', ...claims });
  const part = (json: string) => Buffer.from(json).toString('base64url');

  it('is malformed when the header is not "Bearer <one JWT>"', async () => {
    const token = await valid();
    const headers = ['', 'Bearer', 'Bearer ', `Basic ${token}`, `Token ${token}`, `Bearer  ${token}`, `Bearer ${token} extra`, `${token}`];
    for (const header of headers) expect(await refusal(verifier, header), JSON.stringify(header.slice(0, 12))).toBe('malformed');
  });

  it('is malformed with broken base64, broken JSON, or not three parts', async () => {
    const [header, payload, signature] = (await valid()).split('.');
    const cases = [
      `${header}.${payload}`, `${header}.${payload}.${signature}.${signature}`, `${header}.${payload}!.${signature}`, `${header}.${payload}=.${signature}`,
      `${part('{"alg":"HS256"}')}x.${payload}.${signature}`, // 21 characters: no base64 has a length of 4n+1
      `${part('{"alg":"HS256"')}.${payload}.${signature}`, `${header}.${part('{"sub":')}.${signature}`, `${part('\u00ff')}.${payload}.${signature}`,
      `${part('null')}.${payload}.${signature}`, `${part('["HS256"]')}.${payload}.${signature}`,
    ];
    for (const token of cases) expect(await refusal(verifier, `Bearer ${token}`), token.slice(0, 30)).toBe('malformed');
  });

  it('is too_large over 8 KB, and a 100 KB header is refused without being decoded', async () => {
    expect(await refusal(verifier, `Bearer ${'a'.repeat(MAX_TOKEN_BYTES)}`)).toBe('too_large');
    const huge = `Bearer ${await valid({ padding: 'x'.repeat(100_000) })}`;
    const started = performance.now();
    for (let i = 0; i < 1000; i += 1) expect(await refusal(verifier, huge)).toBe('too_large');
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('is refused without a fetch or a verification when it is malformed or too large', async () => {
    const pair = await keyPair('k1');
    const endpoint = await keyEndpoint([pair.jwk]);
    const remote = verifierWith({ jwksUrl: endpoint.url });
    const token = await signedBy(pair);
    expect(await refusal(remote, `Bearer ${token}${'A'.repeat(100_000)}`)).toBe('too_large');
    expect(await refusal(remote, `Bearer ${token.split('.').slice(0, 2).join('.')}`)).toBe('malformed');
    expect(await refusal(remote, `Basic ${token}`)).toBe('malformed');
    // A payload of 4n+1 characters is no base64, though a lenient decoder reads it (dropping 6 bits).
    let aligned = token;
    for (let name = 'a'; aligned.split('.')[1]!.length % 4 !== 0; name += 'a') aligned = await signedBy(pair, { sub: name });
    const [header, payload, signature] = aligned.split('.');
    expect(await refusal(remote, `Bearer ${header}.${payload}x.${signature}`)).toBe('malformed');
    expect(await refusal(remote, `Bearer ${part('{"alg":"RS256","kid":"k1"')}.${token.split('.')[1]}.x`)).toBe('malformed');
    expect(endpoint.hits).toBe(0);
  });

  it('is refused for its algorithm when it says alg none, or an algorithm the key kind does not allow', async () => {
    expect(await refusal(verifier, `Bearer ${new UnsecuredJWT({ sub: 'alice' }).encode()}`)).toBe('algorithm');
    const hs512 = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS512' }).sign(new Uint8Array(64));
    expect(await refusal(verifier, `Bearer ${hs512}`)).toBe('algorithm');
    const pair = await keyPair('k1');
    expect(await refusal(verifier, `Bearer ${await signedBy(pair)}`)).toBe('algorithm');
    expect(await refusal(verifierWith({}), `Bearer ${await valid()}`)).toBe('algorithm');
  });

  it('is refused when HS256 is signed with the public key of the key set (HS/RS confusion)', async () => {
    const pair = await keyPair('k1');
    const { publicKey } = await generateKeyPair('RS256', { extractable: true });
    const endpoint = await keyEndpoint([{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256' }]);
    const pem = await exportSPKI(publicKey);
    const forged = await new SignJWT({ sub: 'admin', role: 'admin' }).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).sign(new TextEncoder().encode(pem));
    expect(await refusal(verifierWith({ jwksUrl: endpoint.url }), `Bearer ${forged}`)).toBe('algorithm');
    // With both configured the algorithm picks the key: HS256 goes to the secret, where it fails.
    expect(await refusal(verifierWith({ jwksUrl: endpoint.url, secret: SECRET }), `Bearer ${forged}`)).toBe('signature');
    expect(await refusal(verifierWith({ jwksUrl: endpoint.url, secret: SECRET }), `Bearer ${await signedBy(pair)}`)).toBe('signature');
    expect(await verifierWith({ jwksUrl: endpoint.url, secret: SECRET }).verify(`Bearer ${await hs256()}`)).toMatchObject({ subject: 'alice' });
  });

  it('is refused for its signature when signed with another key or changed after signing', async () => {
    expect(await refusal(verifier, `Bearer ${await hs256({ sub: 'alice' }, new TextEncoder().encode('another-secret-of-thirty-two-bytes!!'))}`)).toBe('signature');
    const [header, , signature] = (await valid()).split('.');
    expect(await refusal(verifier, `Bearer ${header}.${part('{"sub":"mallory","iss":"https://issuer.test","aud":"poolgraph"}')}.${signature}`)).toBe('signature');
  });

  it('is expired or not yet valid beyond the clock tolerance, and accepted within it', async () => {
    expect(await refusal(verifier, `Bearer ${await valid({ exp: now() - 10 })}`)).toBe('expired');
    expect(await refusal(verifier, `Bearer ${await valid({ nbf: now() + 10 })}`)).toBe('not_yet_valid');
    expect(await verifier.verify(`Bearer ${await valid({ exp: now() - 3 })}`)).toMatchObject({ subject: 'alice' });
    expect(await verifier.verify(`Bearer ${await valid({ nbf: now() + 3 })}`)).toMatchObject({ subject: 'alice' });
  });

  it('is refused for its issuer or audience when they are wrong or missing', async () => {
    expect(await refusal(verifier, `Bearer ${await valid({ iss: 'https://evil.test' })}`)).toBe('issuer');
    expect(await refusal(verifier, `Bearer ${await hs256({ sub: 'alice', aud: 'poolgraph' })}`)).toBe('issuer');
    expect(await refusal(verifier, `Bearer ${await valid({ aud: 'another-api' })}`)).toBe('audience');
    expect(await verifier.verify(`Bearer ${await valid({ aud: ['another-api', 'poolgraph'] })}`)).toMatchObject({ subject: 'alice' });
  });

  it('is refused for its claims when they are not an object, or sub or role is not a string', async () => {
    const signRaw = (json: string) => new CompactSign(new TextEncoder().encode(json)).setProtectedHeader({ alg: 'HS256' }).sign(secretKey);
    expect(await refusal(verifier, `Bearer ${await signRaw('["alice"]')}`)).toBe('claims');
    expect(await refusal(verifier, `Bearer ${await signRaw('"alice"')}`)).toBe('claims');
    expect(await refusal(verifier, `Bearer ${await signRaw('{"sub":')}`)).toBe('malformed');
    expect(await refusal(verifier, `Bearer ${await valid({ sub: 42 })}`)).toBe('claims');
    expect(await refusal(verifier, `Bearer ${await valid({ role: ['admin'] })}`)).toBe('claims');
    expect(await refusal(verifier, `Bearer ${await valid({ exp: 'tomorrow' })}`)).toBe('claims');
  });

  it('says why without quoting the token, with an RFC 6750 challenge', async () => {
    const token = await valid({ exp: now() - 60 });
    const error = await verifier.verify(`Bearer ${token}`).then(() => undefined, (caught: unknown) => caught);
    expect(error).toBeInstanceOf(UnauthenticatedError);
    const json = JSON.stringify(error);
    for (const piece of token.split('.')) expect(json).not.toContain(piece);
    expect(json).toContain('Bearer error=\\"invalid_token\\"');
  });
});

describe('tokens signed with keys from a JWKS endpoint', () => {
  it('verify RS256 and ES256 with one fetch, and keep verifying while the endpoint fails or is gone', async () => {
    const [rsa, ec] = await Promise.all([keyPair('rsa-1'), keyPair('ec-1', 'ES256')]);
    const endpoint = await keyEndpoint([rsa.jwk, ec.jwk]);
    const verifier = verifierWith({ jwksUrl: endpoint.url, jwksCooldownMs: 0 });
    expect(await verifier.verify(`Bearer ${await signedBy(rsa)}`)).toMatchObject({ subject: 'alice' });
    expect(await verifier.verify(`Bearer ${await signedBy(ec, { sub: 'bob' })}`)).toMatchObject({ subject: 'bob' });
    expect(endpoint.hits).toBe(1);
    endpoint.answer = 'error';
    // New tokens, so the token cache cannot answer: the cached keys do.
    expect(await verifier.verify(`Bearer ${await signedBy(rsa, { sub: 'carol' })}`)).toMatchObject({ subject: 'carol' });
    await endpoint.close();
    expect(await verifier.verify(`Bearer ${await signedBy(ec, { sub: 'dave' })}`)).toMatchObject({ subject: 'dave' });
    expect(endpoint.hits).toBe(1);
  });

  it('are fetched again in the background every 10 minutes: a failure keeps the old keys, a success drops revoked ones', async () => {
    const [first, next] = await Promise.all([keyPair('k1'), keyPair('k2')]);
    const endpoint = await keyEndpoint([first.jwk]);
    const verifier = verifierWith({ jwksUrl: endpoint.url });
    // The refresh is not awaited by the request: wait for its fetch, and a little for jose to apply it.
    const until = async (hits: number) => {
      for (let waited = 0; endpoint.hits < hits && waited < 2000; waited += 10) await sleep(10);
      await sleep(50);
    };
    vi.useFakeTimers({ toFake: ['Date'] });
    await verifier.verify(`Bearer ${await signedBy(first)}`);
    endpoint.answer = 'error';
    vi.setSystemTime(Date.now() + 11 * 60_000);
    expect(await verifier.verify(`Bearer ${await signedBy(first, { sub: 'bob' })}`)).toMatchObject({ subject: 'bob' });
    await until(2);
    expect(await verifier.verify(`Bearer ${await signedBy(first, { sub: 'carol' })}`)).toMatchObject({ subject: 'carol' });
    expect(endpoint.hits).toBe(2);
    endpoint.answer = 'keys';
    endpoint.keys = [next.jwk];
    vi.setSystemTime(Date.now() + 11 * 60_000);
    expect(await verifier.verify(`Bearer ${await signedBy(first, { sub: 'dave' })}`)).toMatchObject({ subject: 'dave' });
    await until(3);
    expect(await refusal(verifier, `Bearer ${await signedBy(first, { sub: 'erin' })}`)).toBe('unknown_key');
    expect(await verifier.verify(`Bearer ${await signedBy(next)}`)).toMatchObject({ subject: 'alice' });
    expect(endpoint.hits).toBe(3);
  });

  it('fetch again for an unknown kid (a rotated key), at most once per cooldown', async () => {
    const [first, rotated] = await Promise.all([keyPair('k1'), keyPair('k2')]);
    const endpoint = await keyEndpoint([first.jwk]);
    const verifier = verifierWith({ jwksUrl: endpoint.url, jwksCooldownMs: 300 });
    await verifier.verify(`Bearer ${await signedBy(first)}`);
    await sleep(350);
    endpoint.keys = [first.jwk, rotated.jwk];
    expect(await verifier.verify(`Bearer ${await signedBy(rotated)}`)).toMatchObject({ subject: 'alice' });
    expect(endpoint.hits).toBe(2);
    expect(await refusal(verifier, `Bearer ${await signedBy(rotated, {}, 'k3')}`)).toBe('unknown_key');
    expect(await refusal(verifier, `Bearer ${await signedBy(rotated, {}, 'k4')}`)).toBe('unknown_key');
    expect(endpoint.hits).toBe(2);
    await sleep(350);
    expect(await refusal(verifier, `Bearer ${await signedBy(rotated, {}, 'k5')}`)).toBe('unknown_key');
    expect(endpoint.hits).toBe(3);
  });

  it('are refused for their signature when signed by another key under a known kid, and unknown_key for a kid not served', async () => {
    const [served, impostor] = await Promise.all([keyPair('k1'), keyPair('k1')]);
    const verifier = verifierWith({ jwksUrl: (await keyEndpoint([served.jwk])).url });
    expect(await refusal(verifier, `Bearer ${await signedBy(impostor)}`)).toBe('signature');
    expect(await refusal(verifierWith({ jwksUrl: (await keyEndpoint([served.jwk])).url }), `Bearer ${await signedBy(impostor, {}, 'k2')}`)).toBe('unknown_key');
  });

  it('get a 503, not a 401, when the endpoint hangs, fails or sends no key set, and it is not asked again at once', async () => {
    const pair = await keyPair('k1');
    const header = `Bearer ${await signedBy(pair)}`;
    for (const answer of ['hang', 'error', 'not-json', 'not-a-key-set'] as const) {
      const endpoint = await keyEndpoint([pair.jwk]);
      endpoint.answer = answer;
      const verifier = verifierWith({ jwksUrl: endpoint.url, jwksTimeoutMs: 200 });
      const started = performance.now();
      expect(await refusal(verifier, header), answer).toBe('unavailable');
      expect(performance.now() - started, answer).toBeLessThan(2000);
      expect(await refusal(verifier, header), answer).toBe('unavailable');
      expect(endpoint.hits, answer).toBe(1);
    }
    const gone = await keyEndpoint([pair.jwk]);
    await gone.close();
    expect(await refusal(verifierWith({ jwksUrl: gone.url }), header)).toBe('unavailable');
  });

  it('get a 503 for an unknown kid when the endpoint is down after the cooldown, while known keys still verify', async () => {
    const pair = await keyPair('k1');
    const endpoint = await keyEndpoint([pair.jwk]);
    const verifier = verifierWith({ jwksUrl: endpoint.url, jwksCooldownMs: 0 });
    await verifier.verify(`Bearer ${await signedBy(pair)}`);
    endpoint.answer = 'error';
    expect(await refusal(verifier, `Bearer ${await signedBy(pair, {}, 'k9')}`)).toBe('unavailable');
    expect(await verifier.verify(`Bearer ${await signedBy(pair, { sub: 'erin' })}`)).toMatchObject({ subject: 'erin' });
    expect(endpoint.hits).toBe(2);
  });
});

describe('npm run token', () => {
  const run = promisify(execFile);
  const cwd = fileURLToPath(new URL('../..', import.meta.url));
  const command = (args: string[], env: Record<string, string>) => {
    const { AUTH_JWT_SECRET: _secret, AUTH_ISSUER: _issuer, AUTH_AUDIENCE: _audience, ...inherited } = process.env;
    return run(process.execPath, ['--import', 'tsx', 'src/commands/token.ts', ...args], { cwd, env: { ...inherited, ...env } });
  };

  it('prints only a token on stdout that the server accepts, with the role, issuer, audience and ttl asked for', async () => {
    const env = { AUTH_JWT_SECRET: SECRET, AUTH_ISSUER: 'https://issuer.test', AUTH_AUDIENCE: 'poolgraph' };
    const { stdout, stderr } = await command(['--sub', 'alice', '--role', 'admin', '--ttl', '1h'], env);
    expect(stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    expect(stderr).toContain('Authorization: Bearer <token>');
    const verifier = verifierWith({ secret: SECRET, issuer: 'https://issuer.test', audience: 'poolgraph' });
    const identity = await verifier.verify(`Bearer ${stdout.trim()}`);
    expect(identity).toMatchObject({ subject: 'alice', role: 'admin' });
    const claims = JSON.parse(identity?.claimsJson ?? '{}') as { iat: number; exp: number; iss: string; aud: string };
    expect(claims).toMatchObject({ iss: 'https://issuer.test', aud: 'poolgraph' });
    expect(claims.exp - claims.iat).toBe(3600);
  });

  it('fails with one line saying to set AUTH_JWT_SECRET when there is no secret, or the ttl is not understood', async () => {
    const failed = (args: string[], env: Record<string, string>) => command(args, env).then(() => undefined, (error: { code: number; stdout: string; stderr: string }) => error);
    const missing = await failed(['--sub', 'alice'], {});
    expect(missing).toMatchObject({ code: 1, stdout: '' });
    expect(missing?.stderr.trim().split('\n')).toEqual([expect.stringContaining('set AUTH_JWT_SECRET')]);
    expect(await failed(['--sub', 'alice', '--ttl', 'forever'], { AUTH_JWT_SECRET: SECRET })).toMatchObject({ code: 1, stderr: expect.stringContaining('--ttl') });
  });
});
