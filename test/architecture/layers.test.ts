import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));

/**
 * The layers of docs/design.md, lowest first: a module may import its own layer and those below
 * it, never one above. The first prefix that matches a file (relative to src/) names its layer.
 * `http` and `db/setup` share a rank but stay apart, and `http` imports nothing but shared values.
 */
const LAYERS: readonly { name: string; rank: number; prefixes: readonly string[]; importsOnly?: readonly string[] }[] = [
  { name: 'shared values', rank: 0, prefixes: ['errors.ts', 'limits.ts', 'logger.ts'] },
  { name: 'db/schema', rank: 1, prefixes: ['db/schema.ts'] },
  { name: 'db/request', rank: 2, prefixes: ['db/request/'] },
  { name: 'db/pools', rank: 3, prefixes: ['db/pools/'] },
  // The live-update listener: a connection of its own, beside the pools.
  { name: 'db/events', rank: 3, prefixes: ['db/events/'] },
  { name: 'db/setup', rank: 4, prefixes: ['db/setup/'] },
  // The HTTP adapter knows graphql-yoga, not our database or GraphQL code.
  { name: 'http', rank: 4, prefixes: ['http/'], importsOnly: ['http', 'shared values'] },
  // Verifying tokens knows nothing of GraphQL, HTTP servers or the database.
  { name: 'auth', rank: 4, prefixes: ['auth/'], importsOnly: ['auth', 'shared values'] },
  { name: 'repositories', rank: 5, prefixes: ['repositories/'] },
  { name: 'loaders', rank: 6, prefixes: ['loaders/'] },
  { name: 'operating', rank: 7, prefixes: ['operating/'] },
  { name: 'graphql', rank: 8, prefixes: ['graphql/', 'generated/'] },
  { name: 'app', rank: 9, prefixes: ['app.ts', 'server-options.ts'] },
  { name: 'process', rank: 10, prefixes: ['main.ts', 'config.ts', 'index.ts', 'commands/'] },
];

function layerOf(file: string) {
  const path = relative(SRC, file);
  const layer = LAYERS.find((candidate) => candidate.prefixes.some((prefix) => path.startsWith(prefix)));
  if (!layer) throw new Error(`${path} is in no layer: add it to LAYERS and docs/design.md`);
  return layer;
}

function sourceFiles(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(folder, entry.name)) : entry.name.endsWith('.ts') ? [join(folder, entry.name)] : [],
  );
}

/** Every relative import of `file`, type-only ones included, as absolute `.ts` paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found = [...text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)];
  return found.map((match) => resolve(dirname(file), match[1]!.replace(/\.js$/, '.ts')));
}

const files = sourceFiles(SRC);
const graph = new Map(files.map((file) => [file, importsOf(file)]));

describe('the source tree a newcomer reads', () => {
  it('imports only downwards, from a layer to the layers below it', () => {
    const upward: string[] = [];
    for (const [file, imports] of graph) {
      const from = layerOf(file);
      for (const target of imports) {
        const to = layerOf(target);
        const outside = from.importsOnly !== undefined && !from.importsOnly.includes(to.name);
        if (outside || to.rank > from.rank || (to.rank === from.rank && to.name !== from.name)) {
          upward.push(`${relative(SRC, file)} (${from.name}) imports ${relative(SRC, target)} (${to.name})`);
        }
      }
    }
    expect(upward).toEqual([]);
  });

  it('has no import circle, type-only imports included', () => {
    const circles: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (file: string, path: string[]): void => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'visiting') {
        circles.push([...path.slice(path.indexOf(file)), file].map((each) => relative(SRC, each)).join(' → '));
        return;
      }
      state.set(file, 'visiting');
      for (const target of graph.get(file) ?? []) visit(target, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of files) visit(file, []);
    expect(circles).toEqual([]);
  });

  it('keeps every source file under 350 lines', () => {
    const long = files
      .filter((file) => !file.includes('/generated/'))
      .map((file) => ({ file: relative(SRC, file), lines: readFileSync(file, 'utf8').trimEnd().split('\n').length }))
      .filter(({ lines }) => lines > 350);
    expect(long).toEqual([]);
  });
});
