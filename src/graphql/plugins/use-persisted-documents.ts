import type { GraphQLParams, Plugin } from 'graphql-yoga';
import { usePersistedOperations } from '@graphql-yoga/plugin-persisted-operations';
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
  const documents = new Map(Object.entries(options.documents));
  return usePersistedOperations({
    allowArbitraryOperations: options.mode === 'allow',
    extractPersistedOperationId(params: PersistedParams) {
      if (typeof params.documentId === 'string') return params.documentId;
      const persistedQuery = params.extensions?.['persistedQuery'] as { sha256Hash?: unknown } | undefined;
      return typeof persistedQuery?.sha256Hash === 'string' ? persistedQuery.sha256Hash : null;
    },
    getPersistedOperation(id) {
      return documents.get(id) ?? documents.get(`sha256:${id}`) ?? null;
    },
    customErrors: {
      notFound: {
        message: 'Unknown persisted document: no document of the manifest has this hash.',
        extensions: { code: ErrorCode.PersistedDocumentNotFound },
      },
      persistedQueryOnly: {
        message: 'This server only runs persisted documents: send a document hash (documentId), not a query.',
        extensions: { code: ErrorCode.PersistedDocumentsOnly, http: { status: 400 } },
      },
      keyNotFound: {
        message: 'Send a document hash (documentId) or a query.',
        extensions: { code: ErrorCode.PersistedDocumentIdRequired, http: { status: 400 } },
      },
    },
  });
}
