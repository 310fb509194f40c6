/** What the bench's parent process and its server processes agree on. */

import type { PeerName } from './peers.js';

/** What a bench server can be (see `server.ts`). */
export type ServerMode = 'poolgraph' | 'unpooled' | 'raw';

/** What a run measures: one of poolgraph's own server modes, or a peer (`--peers`, `peers.ts`). */
export type BenchTarget = ServerMode | PeerName;

/** The line a bench server prints once it listens; the JSON after it carries the port. */
export const READY_PREFIX = 'bench-server-ready ';

/** The path of a bench server's counters endpoint, answered before the request reaches the app. */
export const STATS_PATH = '/__bench/stats';

/**
 * POST `${PROFILE_PATH}/start` and `/stop`: a server started with `BENCH_PROFILE_FILE` runs V8's
 * CPU profiler (the one `node --cpu-prof` uses) between the two and writes the profile to that
 * file, so that the profile covers the measured run only, not start-up or warm-up.
 */
export const PROFILE_PATH = '/__bench/profile';
