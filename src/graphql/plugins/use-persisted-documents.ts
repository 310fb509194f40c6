import type { GraphQLParams, Plugin } from 'graphql-yoga';
import { usePersistedOperations } from '@graphql-yoga/plugin-persisted-operations';
import { GraphQLError } from 'graphql';
import { ErrorCode } from '../../errors.js';

/** How the server treats operations sent by hash. */
export interface PersistedDocumentsOptions {
  /**
   * `allow`: a request may carry a known hash or a full document (GraphiQL keeps working);
   * `only`: every request must carry the hash of a document in the manifest.
   */
  mode: 'allow' | 'only';
  /** The manifest GraphQL Code Generator writes: document hash → document text. */
  documents: Readonly<Record<string, string>>;
}

/** A request's body fields that may name a persisted document. */
type PersistedParams = GraphQLParams & { documentId?: unknown };

/**
 * Serves persisted documents through graphql-yoga's persisted-operations plugin. A request names
 * its document by `documentId` (GraphQL-over-HTTP, what the codegen client preset sends, e.g.
 * `sha256:<hex>`) or by Apollo's `extensions.persistedQuery.sha256Hash` (bare hex). Refusals
 * happen while reading the request, before any context exists, so they never take a connection.
 */
export function usePersistedDocuments(options: PersistedDocumentsOptions): Plugin {
  return usePersistedOperations({
    allowArbitraryOperations: options.mode === 'allow',
    extractPersistedOperationId: persistedIdOf,
    getPersistedOperation: (id) => lookUp(options.documents, id),
    customErrors: {
      notFound: { message: REFUSALS.notFound.message, extensions: { code: REFUSALS.notFound.code } },
      persistedQueryOnly: { message: REFUSALS.only.message, extensions: { code: REFUSALS.only.code, http: { status: 400 } } },
      keyNotFound: { message: REFUSALS.idRequired.message, extensions: { code: REFUSALS.idRequired.code, http: { status: 400 } } },
    },
  });
}

/** What each refusal says, over HTTP (the plugin above) and over the WebSocket. */
const REFUSALS = {
  notFound: { message: 'Unknown persisted document: no document of the manifest has this hash.', code: ErrorCode.PersistedDocumentNotFound },
  only: {
    message: 'This server only runs persisted documents: send a document hash (documentId), not a query.',
    code: ErrorCode.PersistedDocumentsOnly,
  },
  idRequired: { message: 'Send a document hash (documentId) or a query.', code: ErrorCode.PersistedDocumentIdRequired },
} as const;

function persistedIdOf(params: Pick<PersistedParams, 'documentId'> & { extensions?: Record<string, unknown> | null | undefined }): string | null {
  if (typeof params.documentId === 'string') return params.documentId;
  const persistedQuery = params.extensions?.['persistedQuery'] as { sha256Hash?: unknown } | undefined;
  return typeof persistedQuery?.sha256Hash === 'string' ? persistedQuery.sha256Hash : null;
}

/** The manifest's document for `id` (`sha256:<hex>`, or bare hex as Apollo sends it). */
function lookUp(documents: Readonly<Record<string, string>>, id: string): string | null {
  for (const key of [id, `sha256:${id}`]) if (Object.hasOwn(documents, key)) return documents[key] ?? null;
  return null;
}

/**
 * The same rules for a transport that bypasses graphql-yoga's request parsing (graphql-ws): the
 * document `params` names or carries, or the refusal the HTTP path would give. `options`
 * undefined: every document is accepted.
 */
export function persistedDocumentOf(
  options: PersistedDocumentsOptions | undefined,
  params: { query?: unknown; documentId?: unknown; extensions?: Record<string, unknown> | null | undefined },
): string | GraphQLError {
  const id = options ? persistedIdOf(params) : null;
  const refuse = (refusal: (typeof REFUSALS)[keyof typeof REFUSALS]) =>
    new GraphQLError(refusal.message, { extensions: { code: refusal.code } });
  if (options && id !== null) return lookUp(options.documents, id) ?? refuse(REFUSALS.notFound);
  if (options?.mode === 'only') return refuse(REFUSALS.only);
  return typeof params.query === 'string' ? params.query : refuse(REFUSALS.idRequired);
}
