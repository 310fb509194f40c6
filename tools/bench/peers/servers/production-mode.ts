/**
 * Imported first by every peer server, before graphql-js loads, as poolgraph's bench server
 * imports src/operating/production-mode.ts: graphql-js reads `NODE_ENV` once, when it loads, and
 * outside production checks each `instanceof` of its classes for a second copy of itself (a cost
 * on nested queries). PostGraphile's Grafast reads `GRAPHILE_ENV` the same way (and prints a
 * notice when it is unset). Values set by the caller are kept.
 */
process.env['NODE_ENV'] ??= 'production';
process.env['GRAPHILE_ENV'] ??= 'production';
