import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';

const manifestSchema = z.record(z.string(), z.string());

/**
 * Reads a persisted-documents manifest (the JSON object hash → document that GraphQL Code
 * Generator's client preset writes). A missing file is an empty manifest, unless `required`
 * (`PERSISTED_DOCUMENTS=only`, where an empty manifest would refuse every request): then it is an
 * error naming the path and what to do.
 */
export function readPersistedDocumentsManifest(path: string, required: boolean): Record<string, string> {
  const file = resolve(path);
  if (!existsSync(file)) {
    if (!required) return {};
    throw new Error(
      `PERSISTED_DOCUMENTS=only needs a manifest, and ${file} does not exist: run \`npm run codegen\` ` +
        'or set PERSISTED_DOCUMENTS_MANIFEST to the persisted-documents.json your codegen writes',
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`PERSISTED_DOCUMENTS_MANIFEST: ${file} is not JSON (${(error as Error).message})`);
  }
  const manifest = manifestSchema.safeParse(parsed);
  if (!manifest.success) {
    throw new Error(`PERSISTED_DOCUMENTS_MANIFEST: ${file} must be a JSON object of hash to document text`);
  }
  return manifest.data;
}
