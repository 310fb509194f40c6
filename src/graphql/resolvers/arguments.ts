import { BadUserInputError } from '../../errors.js';

/** The largest value of PostgreSQL's `bigint`, the type of every id. */
const MAX_BIGINT = 9223372036854775807n;

/** A positive integer written without leading zeros. */
const CANONICAL_DIGITS = /^[1-9]\d*$/;

/**
 * Checks that an `ID` argument is one of our ids (a positive integer within `bigint`) and returns
 * it in canonical form ("007" becomes "7"), so that loader keys match the ids rows carry. The value
 * itself is not echoed: it may be huge or hold control characters.
 */
export function parseId(value: string, argument: string): string {
  // The common case, without a BigInt (a cost on every id of W3 and W5): digits with no
  // leading zero, too few to reach 2^63, are already the canonical form. (`_entities` hands over
  // whatever a representation holds, so `value` may not even be a string: the checks below say so.)
  if (typeof value === 'string' && value.length < 19 && CANONICAL_DIGITS.test(value)) return value;
  if (!/^\d{1,19}$/.test(value)) throw invalidId(argument);
  const id = BigInt(value);
  if (id < 1n || id > MAX_BIGINT) throw invalidId(argument);
  return id.toString();
}

/** Like {@link parseId} for an optional argument: absent or null stays undefined. */
export function parseOptionalId(value: string | null | undefined, argument: string): string | undefined {
  return value === null || value === undefined ? undefined : parseId(value, argument);
}

/**
 * Checks a text value before it reaches PostgreSQL, which cannot store NUL characters in `text`
 * and would otherwise fail the statement with an error clients must not see.
 */
export function parseText(value: string, argument: string): string {
  if (value.includes('\u0000')) {
    throw new BadUserInputError(`\`${argument}\` must not contain NUL characters.`);
  }
  return value;
}

function invalidId(argument: string): BadUserInputError {
  return new BadUserInputError(
    `\`${argument}\` must be an id this server returned (a positive integer up to ${MAX_BIGINT}).`,
  );
}
