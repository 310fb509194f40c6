import type { CompiledQuery, Kysely } from 'kysely';
import { registerPreparedStatement } from './prepared-statements.js';

/**
 * The most statement shapes kept compiled. The repositories have a bounded set (a few hundred at
 * most); shapes seen after it are compiled per call, as before.
 */
const MAX_COMPILED_SHAPES = 500;

const compiledByShape = new Map<string, CompiledQuery<unknown>>();

/**
 * The statement `compile` returns, compiled once per `shape` and run again with each call's `values`.
 * Kysely builds and compiles a statement on every call (operation nodes, a visitor over them,
 * frozen objects), a real part of what `{ items { number } }` costs the server, for SQL text
 * that only depends on which clauses and columns the call has.
 *
 * `shape` must name everything the SQL text depends on (the statement, its optional clauses, its
 * columns); `values` must be the statement's parameters, in the order they appear in its SQL.
 * The first compilation of a shape checks the second: it throws if its parameters are not
 * `values`, one for one (`Object.is`), so a wrong order fails the first request, in tests.
 *
 * The cache is the process's, not a Kysely instance's: it assumes what the repositories use, the
 * scope's `db` (one compiler for the process, no plugins, no `withSchema`). A kept statement is
 * registered as a named prepared statement (`registerPreparedStatement`). It keeps the first
 * call's values in its operation nodes, a few kilobytes per shape at most.
 */
function compiledOnce<Row>(shape: string, values: readonly unknown[], compile: () => CompiledQuery<Row>): CompiledQuery<Row> {
  const cached = compiledByShape.get(shape) as CompiledQuery<Row> | undefined;
  if (cached && cached.parameters.length === values.length) return { ...cached, parameters: values };
  const compiled = compile();
  if (compiled.parameters.length !== values.length || compiled.parameters.some((value, index) => !Object.is(value, values[index]))) {
    throw new Error(`compiledOnce(${shape}): the values given are not the statement's parameters, in order`);
  }
  if (compiledByShape.size < MAX_COMPILED_SHAPES) {
    compiledByShape.set(shape, compiled);
    registerPreparedStatement(compiled.sql);
  }
  return compiled;
}

/** Runs the statement {@link compiledOnce} keeps for `shape` on `db` and returns its rows. */
export async function queryCompiledOnce<Row>(
  db: Pick<Kysely<unknown>, 'executeQuery'>,
  shape: string,
  values: readonly unknown[],
  compile: () => CompiledQuery<Row>,
): Promise<Row[]> {
  return (await db.executeQuery(compiledOnce(shape, values, compile))).rows;
}
