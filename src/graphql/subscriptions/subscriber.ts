import type { ExecutionResult } from 'graphql';
import { SubscriberTooSlowError } from '../../errors.js';

/**
 * One subscription's stream of results: an async iterator the transport (SSE, graphql-ws) drains,
 * fed by the hub. Its queue is bounded: a subscriber that does not drain it ends with a
 * `SUBSCRIBER_TOO_SLOW` error instead of growing memory without bound, and the others never wait
 * for it.
 */
export class Subscriber implements AsyncIterableIterator<ExecutionResult> {
  readonly #queue: ExecutionResult[] = [];
  readonly #limit: number;
  #waiting: ((result: IteratorResult<ExecutionResult>) => void) | undefined;
  #done = false;
  readonly #onEnd: (subscriber: Subscriber) => void;

  /** `onEnd`: told once, however the stream ends (completed, dropped, or left by its client). */
  constructor(limit: number, onEnd: (subscriber: Subscriber) => void) {
    this.#limit = limit;
    this.#onEnd = onEnd;
  }

  /** Queues a result; false when the subscriber was dropped for not keeping up (or had ended). */
  push(result: ExecutionResult): boolean {
    if (this.#done) return false;
    const waiting = this.#waiting;
    if (waiting) {
      this.#waiting = undefined;
      waiting({ value: result, done: false });
      return true;
    }
    if (this.#queue.length >= this.#limit) {
      this.#queue.length = 0;
      this.#queue.push({ errors: [new SubscriberTooSlowError(this.#limit)] });
      this.#end();
      return false;
    }
    this.#queue.push(result);
    return true;
  }

  /** Ends the stream after what is queued (a shutdown). */
  complete(): void {
    this.#end();
    if (this.#queue.length === 0) this.#settleWaiting();
  }

  next(): Promise<IteratorResult<ExecutionResult>> {
    const value = this.#queue.shift();
    if (value) return Promise.resolve({ value, done: false });
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.#waiting = resolve));
  }

  /** The client went away (the transport stops iterating). */
  return(): Promise<IteratorResult<ExecutionResult>> {
    this.#queue.length = 0;
    this.#end();
    this.#settleWaiting();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<ExecutionResult> {
    return this;
  }

  #end(): void {
    if (this.#done) return;
    this.#done = true;
    this.#onEnd(this);
  }

  #settleWaiting(): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.({ value: undefined, done: true });
  }
}
