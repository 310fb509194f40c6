/**
 * `npm run token -- --sub alice [--role admin] [--ttl 1h]`: prints an HS256 token signed with
 * `AUTH_JWT_SECRET`, with `iss` and `aud` from `AUTH_ISSUER` and `AUTH_AUDIENCE` when they are set,
 * for trying the server by hand and in scripts: only the token goes to stdout, so
 * `TOKEN=$(npm run -s token -- --sub alice)` works; the hint goes to stderr.
 */
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import { ConfigError, loadConfig } from '../config.js';

/** `--ttl` units, in seconds. */
const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

function fail(message: string): never {
  process.stderr.write(`poolgraph: ${message}\n`);
  process.exit(1);
}

/** `30s`, `15m`, `1h`, `7d` → seconds; checked before anything is signed. */
function ttlSeconds(value: string): number {
  const match = /^(\d{1,6})([smhd])$/.exec(value);
  const seconds = match === null ? 0 : Number(match[1]) * (UNITS[match[2] ?? ''] ?? 0);
  if (seconds <= 0) fail(`--ttl must be a positive whole number followed by s, m, h or d (like 15m or 1h), got "${value}"`);
  return seconds;
}

/** The options, or one line and exit 1 for an unknown or incomplete one (not a stack trace). */
function readArguments() {
  try {
    return parseArgs({
      options: {
        sub: { type: 'string' },
        role: { type: 'string' },
        ttl: { type: 'string', default: '1h' },
      },
    }).values;
  } catch (error) {
    return fail(error instanceof Error ? error.message : String(error));
  }
}

const values = readArguments();

/** The same settings the server verifies with (a wrong one is reported as `npm start` would). */
function tokenSettings() {
  try {
    return loadConfig().auth.tokens;
  } catch (error) {
    return fail(error instanceof ConfigError ? error.message : String(error));
  }
}

const { secret, issuer, audience } = tokenSettings();
if (secret === undefined) fail('set AUTH_JWT_SECRET to the secret the server verifies tokens with');
if (values.sub === undefined || values.sub === '') fail('--sub is required: the subject (user id) the token is for');
const ttl = ttlSeconds(values.ttl);

const now = Math.floor(Date.now() / 1000);
const jwt = new SignJWT(values.role === undefined ? {} : { role: values.role })
  .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
  .setSubject(values.sub)
  .setIssuedAt(now)
  .setExpirationTime(now + ttl);
if (issuer !== undefined) jwt.setIssuer(issuer);
if (audience !== undefined) jwt.setAudience(audience);

const token = await jwt.sign(new TextEncoder().encode(secret));
process.stdout.write(`${token}\n`);
process.stderr.write('send it as the header Authorization: Bearer <token>\n');
