/** The workloads of DESIGN.md that tests count statements and connections for. */

/** W1: 20 rows, 1 statement, 1 connection. */
export const W1 = '{ items { number } }';

/** W2: 20 categories with counts, 10 items each and each item's category; at most 4 statements. */
export const W2 = `{
  categories(first: 20) { name itemCount items(first: 10) { id number category { name } } }
}`;

/** W3: 20 aliased `item(id:)` lookups in one operation; 1 statement. */
export const W3 = `{ ${Array.from({ length: 20 }, (_, i) => `i${i + 1}: item(id: "${i * 37 + 5}") { number label }`).join(' ')} }`;
