import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { ManagedProcess, StopStep } from './managed-process.js';

/**
 * A server process of the cluster that lives in a folder of its own (HAProxy, PgBouncer): its
 * PID, its log, and how it is stopped (by PID, along its stop ladder) and destroyed (stopped, then
 * its folder deleted).
 */
export abstract class ManagedService {
  /** Names it in errors and listings. */
  abstract readonly name: string;
  /** Its folder: configuration, sockets, what it writes. */
  readonly dir: string;
  readonly #process: ManagedProcess;
  readonly #stopLadder: readonly StopStep[];

  protected constructor(process: ManagedProcess, dir: string, stopLadder: readonly StopStep[]) {
    this.#process = process;
    this.dir = dir;
    this.#stopLadder = stopLadder;
  }

  /** Its PID while it runs. */
  get pid(): number | undefined {
    return this.#process.running ? this.#process.pid : undefined;
  }

  /** True until it has exited. */
  get running(): boolean {
    return this.#process.running;
  }

  /** Its last log lines. */
  tail(count?: number): string {
    return this.#process.tail(count);
  }

  /** Stops it by PID along its stop ladder (SIGTERM, then SIGKILL if it lingers). */
  async stop(): Promise<void> {
    await this.#process.stop(this.#stopLadder);
  }

  /** Stops it and deletes its folder. */
  async destroy(): Promise<void> {
    await this.stop();
    if (existsSync(this.dir)) await rm(this.dir, { recursive: true, force: true });
  }
}
