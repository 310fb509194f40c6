/** A process a wait depends on: if it exits, the wait is over; its last lines explain failures. */
export interface Watched {
  readonly name: string;
  readonly running: boolean;
  tail(count?: number): string;
}

/** Options of {@link waitUntil}. */
export interface WaitOptions {
  /** What we wait for, for the error: `the replica to stream from the primary`. */
  what: string;
  timeoutMs: number;
  /** Pause between two checks. @default 100 */
  intervalMs?: number;
  /** Stop at once if this process exits; name it and its last lines in any failure. */
  watch?: Watched;
}

/**
 * Calls `check` until it returns a value other than undefined, and returns that value. A check
 * that throws counts as "not yet" (a server still starting refuses connections); the last such
 * error is named when the wait times out. Bounded by `timeoutMs`, so by time and count alike.
 */
export async function waitUntil<T>(check: () => Promise<T | undefined>, options: WaitOptions): Promise<T> {
  const { what, timeoutMs, intervalMs = 100, watch } = options;
  const deadline = Date.now() + timeoutMs;
  const fail = (reason: string) =>
    new Error(`${reason} waiting for ${what}${watch ? `\n--- last lines of ${watch.name}:\n${watch.tail()}` : ''}`);
  let lastError: unknown;
  for (;;) {
    if (watch && !watch.running) throw fail(`${watch.name} exited while`);
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() + intervalMs > deadline) break;
    await sleep(intervalMs);
  }
  const because = lastError === undefined ? '' : ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`;
  throw fail(`timed out after ${timeoutMs} ms${because}`);
}

/** Resolves after `ms`. */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
