/**
 * `Promise.withResolvers` (ES2024; Node 22 and later), installed where it is missing. PostGraphile 5
 * declares Node >= 22 and its SQL executor (`@dataplan/pg`) calls it for every batch of a query:
 * on Node 20 every read then fails ("Cannot read properties of undefined (reading 'items')", the
 * masked TypeError). It is the one Node 22 API the workloads reach, so this exact equivalent lets
 * the PostGraphile peer run on the same Node as poolgraph and the other peers. On Node 22 and
 * later it does nothing.
 */

/** `Promise.withResolvers`' result. */
interface Resolvers<T> {
  promise: Promise<T>;
  resolve: (value: T | PromiseLike<T>) => void;
  reject: (reason?: unknown) => void;
}

/** The Promise constructor as Node 22 has it (ES2023's lib does not declare the method). */
interface PromiseConstructorWithResolvers {
  withResolvers?: <T>() => Resolvers<T>;
}

const promiseConstructor: PromiseConstructor & PromiseConstructorWithResolvers = Promise;
promiseConstructor.withResolvers ??= <T>(): Resolvers<T> => {
  let resolve!: Resolvers<T>['resolve'];
  let reject!: Resolvers<T>['reject'];
  const promise = new Promise<T>((onResolve, onReject) => {
    resolve = onResolve;
    reject = onReject;
  });
  return { promise, resolve, reject };
};
