import { describe, expect, it } from 'vitest';
import { usePostgresStatements } from '../support/postgres-statements.js';
import { useTestEnvironment } from '../support/server.js';
import { bearer, TEST_TOKENS, tokenFor } from '../support/tokens.js';

describe('who may do what, with tokens required for writes (AUTH_MODE=jwt), as the server role row-level security binds', () => {
  const t = useTestEnvironment({ size: 1, maxOverflow: 0 }, { connectAs: 'app', auth: { tokens: TEST_TOKENS } });
  const statements = usePostgresStatements(() => t.database);

  async function post(query: string, headers: Record<string, string> = {}, variables?: Record<string, unknown>) {
    return t.server.graphql(query, variables, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
      body: JSON.stringify({ query, variables }),
    });
  }

  async function create(token: string | undefined, number: number) {
    const response = await post(`mutation { createItem(input: { number: ${number} }) { id ownerId } }`, token ? bearer(token) : {});
    return response;
  }

  it('serves anonymous reads as before: one statement, no transaction, no claims', async (context) => {
    const { result, seen } = await statements.during(context, () => post('{ items(first: 3) { number ownerId } }'));
    expect(result.body.errors).toBeUndefined();
    expect(result.body.data?.['items']).toHaveLength(3);
    expect(seen.byKind, seen.listing).toEqual({ begin: 0, setLocal: 0, data: 1, commit: 0, rollback: 0 });
  });

  it('refuses a write without a token with 401 UNAUTHENTICATED and a Bearer challenge, and writes nothing', async () => {
    const [before] = await t.database.query<{ count: number }>('select count(*)::int as count from items');
    const response = await create(undefined, 5);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer');
    expect(response.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const [after] = await t.database.query<{ count: number }>('select count(*)::int as count from items');
    expect(after?.count).toBe(before?.count);
  });

  it("lets a caller change only their own items: another's update or delete is FORBIDDEN and the row unchanged", async () => {
    const alice = await tokenFor('alice');
    const bob = await tokenFor('bob');
    const created = await create(alice, 41);
    expect(created.body.errors).toBeUndefined();
    const item = created.body.data?.['createItem'] as { id: string; ownerId: string };
    expect(item.ownerId).toBe('alice');

    const update = await post(`mutation { updateItem(id: "${item.id}", input: { label: "bob was here" }) { label } }`, bearer(bob));
    expect(update.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const remove = await post(`mutation { deleteItem(id: "${item.id}") }`, bearer(bob));
    expect(remove.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const [row] = await t.database.query<{ label: string; owner_id: string }>('select label, owner_id from items where id = $1', [item.id]);
    expect(row).toEqual({ label: '', owner_id: 'alice' });

    const own = await post(`mutation { updateItem(id: "${item.id}", input: { label: "mine" }) { label ownerId } }`, bearer(alice));
    expect(own.body).toEqual({ data: { updateItem: { label: 'mine', ownerId: 'alice' } } });
    const admin = await post(`mutation { updateItem(id: "${item.id}", input: { label: "admin's" }) { label } }`, bearer(await tokenFor('carol', 'admin')));
    expect(admin.body).toEqual({ data: { updateItem: { label: "admin's" } } });
    // Seeded rows have no owner: only an admin may change them.
    const seeded = await post('mutation { deleteItem(id: "1") }', bearer(bob));
    expect(seeded.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');

    expect((await post('mutation { updateItem(id: "99999999", input: { label: "x" }) { id } }', bearer(bob))).body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await post('mutation { deleteItem(id: "99999999") }', bearer(bob))).body).toEqual({ data: { deleteItem: false } });
    expect((await post(`mutation { deleteItem(id: "${item.id}") }`, bearer(alice))).body).toEqual({ data: { deleteItem: true } });
  });

  it('lets PostgreSQL, not the resolver, decide: a resolver that updates every row changes only the caller\'s', async () => {
    const dave = await tokenFor('dave');
    await create(dave, 1);
    await create(dave, 2);
    const response = await post('mutation { relabelEveryItem(label: "dave") }', bearer(dave));
    expect(response.body).toEqual({ data: { relabelEveryItem: 2 } });
    const [count] = await t.database.query<{ count: number }>("select count(*)::int as count from items where label = 'dave'");
    expect(count?.count).toBe(2);
  });

  it('shows the caller\'s claims to PostgreSQL, on the request\'s connection', async () => {
    const response = await post('{ sessionSeen { claims } }', bearer(await tokenFor('alice', 'editor')));
    const claims: unknown = JSON.parse((response.body.data?.['sessionSeen'] as { claims: string }).claims);
    expect(claims).toMatchObject({ sub: 'alice', role: 'editor' });
  });

  it('sends the claims with a single statement (W1) in the same round trip, without BEGIN/COMMIT', async (context) => {
    const alice = await tokenFor('alice');
    const released = t.server.released.length;
    const { result, seen } = await statements.during(context, () => post('{ items { number } }', bearer(alice)));
    expect(result.body.errors).toBeUndefined();
    expect(seen.calls(/set_config/)).toBe(1);
    // The items statement and the set_config before it.
    expect(seen.byKind, seen.listing).toEqual({ begin: 0, setLocal: 0, data: 2, commit: 0, rollback: 0 });
    expect(t.server.released[released]?.statements, 'round trips').toBe(1);
  });

  it('sends the claims with a single write (W4, selecting its ownerId) in the same round trip, without BEGIN/COMMIT', async (context) => {
    const alice = await tokenFor('alice');
    const { result, seen } = await statements.during(context, () =>
      post('mutation { createItem(input: { number: 7, label: "x", categoryId: "1" }) { id ownerId } }', bearer(alice)),
    );
    expect(result.body.errors).toBeUndefined();
    expect(seen.calls(/set_config/)).toBe(1);
    // The INSERT and the set_config before it (a `;` ping, when the connection sat idle, is not counted).
    expect(seen.byKind, seen.listing).toEqual({ begin: 0, setLocal: 0, data: 2, commit: 0, rollback: 0 });
  });

  it('runs an operation of several statements in one transaction, the claims pipelined with its first', async (context) => {
    const alice = await tokenFor('alice');
    const released = t.server.released.length;
    const { result, seen } = await statements.during(context, () => post('{ items(first: 2) { number category { name } } }', bearer(alice)));
    expect(result.body.errors).toBeUndefined();
    expect(seen.calls(/set_config/)).toBe(1);
    expect(seen.byKind, seen.listing).toMatchObject({ begin: 1, commit: 1, data: 3 });
    // items (with BEGIN and the claims), categories, COMMIT.
    expect(t.server.released[released]?.statements).toBe(3);
  });
});

describe('who may do what with AUTH_MODE=open: anyone may write, still as the role row-level security binds', () => {
  const t = useTestEnvironment({}, { connectAs: 'app', auth: { mode: 'open' } });

  it('lets an anonymous caller create, change and delete items, owned by nobody', async () => {
    const created = await t.server.graphql('mutation { createItem(input: { number: 3 }) { id ownerId } }');
    expect(created.body.errors).toBeUndefined();
    const item = created.body.data?.['createItem'] as { id: string; ownerId: string | null };
    expect(item.ownerId).toBeNull();
    const seeded = await t.server.graphql('mutation { updateItem(id: "1", input: { label: "anyone" }) { label } }');
    expect(seeded.body).toEqual({ data: { updateItem: { label: 'anyone' } } });
    expect((await t.server.graphql(`mutation { deleteItem(id: "${item.id}") }`)).body).toEqual({ data: { deleteItem: true } });
  });

  it('refuses a token it has no key to verify, rather than serving it as anonymous', async () => {
    const response = await t.server.graphql('{ items(first: 1) { id } }', undefined, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...bearer(await tokenFor('alice')) },
      body: JSON.stringify({ query: '{ items(first: 1) { id } }' }),
    });
    expect(response.status).toBe(401);
    expect(response.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});
