import { getCORSHeadersByRequestAndOptions } from '@whatwg-node/server';
import { GraphQLError } from 'graphql';
import { maskErrorKeepingCause } from '../errors.js';

/*
 * What the fast path (./fast-path.ts) copies of graphql-yoga's HTTP layer, in one place. It is
 * the behaviour of the graphql-yoga version below; package.json pins graphql-yoga to that minor
 * version (`~`), and test/http/fast-path.test.ts compares the fast path's answers with
 * graphql-yoga's byte for byte and checks the installed version against this one. Upgrading
 * graphql-yoga means reading its `useResultProcessors`, `processRegularResult`, its CORS default
 * and its request parser again, then moving this number.
 */

/** The graphql-yoga minor version whose HTTP behaviour this module copies. */
export const COPIED_YOGA_VERSION = '5.24';

/** The two media types of graphql-yoga's regular (non-streaming) result processor. */
export type RegularMediaType = 'application/json' | 'application/graphql-response+json';

/** `Content-Type` of a JSON body graphql-yoga reads as UTF-8 (the charset parameter may be left out). */
export const JSON_CONTENT_TYPE = /^application\/json\s*(;\s*charset="?utf-8"?\s*)?$/i;

/** What a client gets when the fast path itself fails, as graphql-yoga masks an unexpected error. */
export const UNEXPECTED_ERROR_BODY = '{"errors":[{"message":"Unexpected error.","extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}';

/** graphql-yoga's result processors, in the order it tries them for a non-subscription request. */
const PROCESSORS: readonly (readonly string[])[] = [
  ['text/event-stream'],
  ['multipart/mixed'],
  ['application/graphql-response+json', 'application/json'],
];

/**
 * The media type graphql-yoga answers a single (non-streaming) result with for this `Accept`
 * header, when it is one of its regular processor's; undefined when it would pick another
 * processor (server-sent events, multipart) or none (406). The same algorithm as graphql-yoga's
 * `useResultProcessors`: the accepted types in reverse order, the last match winning.
 */
export function regularMediaType(accept: string): RegularMediaType | undefined {
  const asked: string[] = [];
  for (const entry of (accept || '*/*').replace(/\s/g, '').toLowerCase().split(',')) {
    const [mediaType = '', ...parameters] = entry.split(';');
    const charset = parameters.find((parameter) => parameter.includes('charset=')) ?? 'charset=utf-8';
    if (charset === 'charset=utf-8') asked.push(mediaType);
  }
  asked.reverse();
  let chosen: string | undefined;
  for (const processor of PROCESSORS) {
    for (const requested of asked) {
      for (const offered of processor) if (matches(offered, requested)) chosen = offered;
    }
  }
  return chosen === 'application/json' || chosen === 'application/graphql-response+json' ? chosen : undefined;
}

function matches(offered: string, requested: string): boolean {
  const [offeredType, offeredSubtype] = offered.split('/');
  const [type, subtype] = requested.split('/');
  return (type === '*' || type === offeredType) && (subtype === '*' || subtype === offeredSubtype);
}

/**
 * Adds graphql-yoga's default CORS headers (no `cors` option: any origin, with credentials) to
 * `headers`. It answers a request without an `Origin` header (not a browser's cross-origin one)
 * with none, so such a request costs nothing here.
 */
export function addDefaultCorsHeaders(request: Request, origin: string | undefined, headers: Record<string, string>): void {
  if (origin === undefined) return;
  for (const [name, value] of Object.entries(getCORSHeadersByRequestAndOptions(request, {}) ?? {})) {
    headers[name.toLowerCase()] = value;
  }
}

/** What graphql-yoga's `handle` answers for an error thrown while producing a result. */
export function thrownAsResult(error: unknown): { errors: GraphQLError[] } {
  const masked = maskErrorKeepingCause(error, 'Unexpected error.');
  return { errors: [masked instanceof GraphQLError ? masked : new GraphQLError(masked.message, { originalError: masked })] };
}
