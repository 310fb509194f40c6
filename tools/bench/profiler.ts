/**
 * The CPU profiler of a bench server process (poolgraph's `server.ts` and every peer), driven by
 * `POST ${PROFILE_PATH}/start` and `/stop` (protocol.ts): V8's sampling profiler, the one
 * `node --cpu-prof` uses, run over the measured window only, so that poolgraph's profile and a
 * peer's of the same run can be read side by side with `npm run bench:profile`.
 */
import { writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Session } from 'node:inspector/promises';
import { PROFILE_PATH } from './protocol.js';

/**
 * Answers a profile request and returns true, or returns false for any other request. The
 * profile goes to `file` (the process's `BENCH_PROFILE_FILE`); without one, profiling is refused.
 */
export type ProfileHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

/** The profile endpoint of a process whose profile goes to `file` (undefined: not profiled). */
export function createProfileHandler(file: string | undefined): ProfileHandler {
  const session = file ? new Session() : undefined;
  session?.connect();

  async function profile(action: string): Promise<void> {
    if (!session || !file) throw new Error('this server was started without BENCH_PROFILE_FILE');
    if (action === 'start') {
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    } else if (action === 'stop') {
      const { profile: result } = await session.post('Profiler.stop');
      await writeFile(file, JSON.stringify(result));
    } else {
      throw new Error(`unknown profile action: ${action}`);
    }
  }

  return (req, res) => {
    if (!req.url?.startsWith(`${PROFILE_PATH}/`)) return false;
    profile(req.url.slice(PROFILE_PATH.length + 1)).then(
      () => res.writeHead(204).end(),
      (error: unknown) => res.writeHead(500).end(String(error)),
    );
    return true;
  };
}

/** Starts or stops the profiler of the bench server at `origin` (see {@link createProfileHandler}). */
export async function requestProfile(origin: string, action: 'start' | 'stop'): Promise<void> {
  const response = await fetch(`${origin}${PROFILE_PATH}/${action}`, { method: 'POST' });
  if (!response.ok) throw new Error(`profiling failed: ${await response.text()}`);
}
