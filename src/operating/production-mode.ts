/**
 * Imported first by the process entries (`src/main.ts`, the bench server), before graphql-js
 * loads: graphql-js reads `NODE_ENV` once, when it loads, and outside production it checks every
 * `instanceof` of its own classes for a second copy of itself (a helpful message for a bundling
 * mistake, and a noticeable cost on the nested workload W2). `npm start` is how the server
 * is run in production; a `NODE_ENV` set by the user is kept.
 */

/**
 * `NODE_ENV` as the user set it, before this module defaulted it; undefined when unset. What the
 * user asked for decides what they must choose explicitly (`AUTH_MODE`, src/config.ts), not our
 * default.
 */
export const NODE_ENV_SET_BY_USER: string | undefined = process.env['NODE_ENV'];

process.env['NODE_ENV'] ??= 'production';

