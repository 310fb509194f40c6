import type { ExecutionResult } from 'graphql';
import { SubscriberTooSlowError } from '../../errors.js';

/**
 * One subscription's stream of results: an async iterator the transport (SSE, graphql-ws) drains,
 * fed by the hub. Its queue is bounded: a subscriber that still has more than `limit` results
 * unread when the next tick begins ({@link Subscriber.keptUp}) ends with a `SUBSCRIBER_TOO_SLOW`
 * error instead of growing memory without bound, and the others never wait for it. A tick pushes
 * all its results at once (the transports drain them after it), so a burst larger than `limit`
 * drops nobody who reads; memory stays under `limit` + one tick's results.
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

  /** Queues a result: `queued`, or `ended` when the stream had ended (its client left, a shutdown). */
  push(result: ExecutionResult): 'queued' | 'ended' {
    if (this.#done) return 'ended';
    const waiting = this.#waiting;
    if (waiting) {
      this.#waiting = undefined;
      waiting({ value: result, done: false });
      return 'queued';
    }
    this.#queue.push(result);
    return 'queued';
  }

  /**
   * Asked as a tick begins: false, and the stream ends with `SUBSCRIBER_TOO_SLOW` (its unread
   * results dropped), when more than `limit` results from earlier ticks are still unread.
   */
  keptUp(): boolean {
    if (this.#done || this.#queue.length <= this.#limit) return true;
    this.#queue.length = 0;
    this.#queue.push({ errors: [new SubscriberTooSlowError(this.#limit)] });
    this.#end();
    return false;
  }

  /** Ends the stream after what is queued (a shutdown). */
  complete(): void {
    this.#end();
    if (this.#queue.length === 0) this.#settleWaiting();
  }

  /** The next result; one caller at a time (transports never ask twice before an answer). */
  next(): Promise<IteratorResult<ExecutionResult>> {
    const value = this.#queue.shift();
    if (value) return Promise.resolve({ value, done: false });
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    if (this.#waiting) return Promise.reject(new Error('Subscriber.next() called again before its answer'));
    return new Promise((resolve) => (this.#waiting = resolve));
  }

  /**
   * Takes every result queued now, without waiting (the SSE stream writes them as one chunk after
   * {@link next} gave it the first).
   */
  drain(): ExecutionResult[] {
    return this.#queue.splice(0, this.#queue.length);
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
