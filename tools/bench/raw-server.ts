import type { IncomingMessage, ServerResponse } from 'node:http';
import type pg from 'pg';

/**
 * The baseline the benchmark compares poolgraph with: what Node and `pg` can do on this machine
 * with no GraphQL at all. `POST /W1` and `POST /W2` read the request body (the same GraphQL
 * request poolgraph gets, but never parsed), run ONE hand-written statement on a connection of
 * the same pool settings, and send the same JSON bytes poolgraph sends.
 *
 * Both statements use the extended protocol with parameters, like poolgraph's (Kysely sends
 * unnamed parameterised statements), so the baseline does not win by protocol alone.
 */

/** W1: the first 20 items' numbers; pg's rows are already `{ number }` objects. */
const W1_SQL = 'select number from items order by id limit $1';

/**
 * W2 in one statement: the first 20 categories, each with its item count and, through a LATERAL
 * subquery on `(category_id, id)`, its first 10 items as a JSON array (pg parses `json` columns),
 * each item carrying its category's name.
 */
const W2_SQL = `
  select c.name,
         (select count(*) from items where items.category_id = c.id)::int as "itemCount",
         coalesce(page.items, '[]'::json) as items
  from (select id, name from categories order by id limit $1) as c
  left join lateral (
    select json_agg(json_build_object('id', i.id::text, 'number', i.number, 'category', json_build_object('name', c.name))
                    order by i.id) as items
    from (select id, number from items where items.category_id = c.id order by id limit $2) as i
  ) as page on true
  order by c.id`;

/** What a bench server has answered: requests, and the SQL statements they ran. */
export interface ServerCounters {
  requests: number;
  statements: number;
}

/** Creates the baseline's request listener over `pool`. */
export function createRawHandler(pool: pg.Pool, counters: ServerCounters) {
  const answers: Record<string, () => Promise<unknown>> = {
    '/W1': async () => ({ items: (await pool.query(W1_SQL, [20])).rows }),
    '/W2': async () => ({ categories: (await pool.query(W2_SQL, [20, 10])).rows }),
  };
  return (req: IncomingMessage, res: ServerResponse): void => {
    const answer = req.method === 'POST' ? answers[req.url ?? ''] : undefined;
    if (!answer) {
      res.writeHead(404).end();
      return;
    }
    // Read the whole request body, as any server must, before answering.
    req.on('data', () => undefined);
    req.on('end', () => {
      counters.requests += 1;
      counters.statements += 1;
      answer().then(
        (data) => send(res, 200, JSON.stringify({ data })),
        (error: unknown) => send(res, 500, JSON.stringify({ errors: [{ message: String(error) }] })),
      );
    });
  };
}

function send(res: ServerResponse, status: number, json: string): void {
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(json),
  });
  res.end(json);
}
