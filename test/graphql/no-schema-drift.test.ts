import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generate } from '@graphql-codegen/cli';
import type { Types } from '@graphql-codegen/plugin-helpers';
import { buildSubgraphSchema } from '@apollo/subgraph';
import {
  buildClientSchema,
  getIntrospectionQuery,
  type GraphQLSchema,
  introspectionFromSchema,
  type IntrospectionQuery,
  lexicographicSortSchema,
  parse,
  printSchema,
} from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import codegenConfig from '../../codegen.js';
import { useTestEnvironment } from '../support/server.js';
import { testSchemaExtension } from '../support/test-schema.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCHEMA_PATH = join(REPO_ROOT, 'schema.graphql');
const SERVER_TYPES = 'src/generated/resolvers-types.ts';

/** Runs codegen in memory (nothing written) and returns file path → content. */
async function generateInMemory(overrides: Partial<Types.Config> = {}): Promise<Map<string, string>> {
  const outputs = (await generate({ ...codegenConfig, ...overrides, cwd: REPO_ROOT, silent: true }, false)) as Types.FileOutput[];
  return new Map(outputs.map((output) => [resolve(REPO_ROOT, output.filename), output.content]));
}

/** Files whose generated content differs from what is committed. */
function staleFiles(generated: Map<string, string>): string[] {
  return [...generated].filter(([file, content]) => readFileSync(file, 'utf8') !== content).map(([file]) => file);
}

/** A schema printed in a canonical order, descriptions included, for comparing two schemas. */
const canonical = (schema: GraphQLSchema) => printSchema(lexicographicSortSchema(schema));

/** schema.graphql with Item.label renamed: the kind of edit the drift checks must catch. */
const changedSchema = readFileSync(SCHEMA_PATH, 'utf8').replace(/^(\s+)label: String!$/m, '$1title: String!');

let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'poolgraph-drift-'));
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('generated types match schema.graphql', () => {
  it('codegen reproduces every committed file exactly, twice in a row', async () => {
    const first = await generateInMemory();
    const second = await generateInMemory();
    expect([...first.keys()]).toContain(join(REPO_ROOT, SERVER_TYPES));
    expect([...first.keys()].some((file) => file.endsWith('persisted-documents.json'))).toBe(true);
    expect(staleFiles(first)).toEqual([]);
    expect([...second]).toEqual([...first]);
  });

  it('notices when a field of schema.graphql changes (the check can fail)', async () => {
    expect(changedSchema).not.toBe(readFileSync(SCHEMA_PATH, 'utf8'));
    const changedPath = join(scratch, 'schema.graphql');
    await writeFile(changedPath, changedSchema);
    const serverOnly = { [SERVER_TYPES]: codegenConfig.generates[SERVER_TYPES] } as Types.Config['generates'];
    const generated = await generateInMemory({ schema: changedPath, generates: serverOnly });
    expect(staleFiles(generated)).toEqual([join(REPO_ROOT, SERVER_TYPES)]);
  });
});

describe('the schema the server serves is schema.graphql', () => {
  const t = useTestEnvironment();

  async function servedSchema(): Promise<GraphQLSchema> {
    const { body } = await t.server.graphql(getIntrospectionQuery({ descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true }));
    expect(body.errors).toBeUndefined();
    return buildClientSchema(body.data as unknown as IntrospectionQuery);
  }

  /**
   * What a client should see for this SDL: the subgraph schema it declares (federation adds
   * `_service`, `_entities` and their types), as introspection shows it. The test server adds its
   * test-only fields through `extend`, as an embedding program would, so they are added here too.
   */
  const declared = (sdl: string) =>
    canonical(
      buildClientSchema(
        introspectionFromSchema(buildSubgraphSchema([parse(sdl), parse(testSchemaExtension.typeDefs)]), {
          specifiedByUrl: true,
        }),
      ),
    );

  it('serves exactly schema.graphql, descriptions included', async () => {
    const served = canonical(await servedSchema());
    expect(served).toContain('A numbered item, optionally filed under a category.');
    expect(served).toBe(declared(readFileSync(SCHEMA_PATH, 'utf8')));
  });

  it('tells a changed schema.graphql apart from the one served (the check can fail)', async () => {
    expect(canonical(await servedSchema())).not.toBe(declared(changedSchema));
  });
});
