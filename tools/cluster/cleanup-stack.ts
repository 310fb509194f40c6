/**
 * Cleanups of things started one after another, run in reverse order (the load balancer before
 * the servers behind it, PgBouncer before the database). A cleanup that fails does not stop the
 * others; the failures are thrown together at the end.
 */
export class CleanupStack {
  readonly #cleanups: { what: string; cleanup: () => Promise<unknown> }[] = [];

  /** Registers `cleanup` for something just started; `what` names it in failures. */
  defer(what: string, cleanup: () => Promise<unknown>): void {
    this.#cleanups.push({ what, cleanup });
  }

  /**
   * Runs every cleanup, last registered first, each once; empties the stack. Rejects with an
   * `AggregateError` naming every cleanup that failed, after all have run.
   */
  async unwind(): Promise<void> {
    const failures: Error[] = [];
    for (let next = this.#cleanups.pop(); next; next = this.#cleanups.pop()) {
      try {
        await next.cleanup();
      } catch (error) {
        failures.push(new Error(`stopping ${next.what} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error }));
      }
    }
    if (failures.length > 0) throw new AggregateError(failures, failures.map((failure) => failure.message).join('\n'));
  }
}
