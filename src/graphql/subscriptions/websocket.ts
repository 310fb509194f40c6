import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { type DocumentNode, type ExecutionArgs, getOperationAST, GraphQLError } from 'graphql';
import { type PersistedDocumentsOptions, persistedDocumentOf } from '../plugins/use-persisted-documents.js';
import { useServer } from 'graphql-ws/use/ws';
import type { YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer } from 'ws';

/** What {@link attachGraphqlWs} returns. */
export interface GraphqlWsServer {
  /** Closes every socket and stops taking upgrades; the same promise on every call. */
  close(): Promise<void>;
}

/** The `execute`/`subscribe` envelop gives each operation, carried to graphql-ws as its root value. */
interface Enveloped {
  execute(args: ExecutionArgs): unknown;
  subscribe(args: ExecutionArgs): unknown;
}

/**
 * Serves graphql-ws (subprotocol `graphql-transport-ws`) on `server`, on the GraphQL endpoint's
 * path and port, the way graphql-yoga documents it: each subscription goes through yoga's envelop
 * (parse, validation, limits, the caller's identity, the live hub) and the persisted-document
 * rules (`persistedDocuments`, as the server has them), as a request over HTTP does. Queries and
 * mutations are refused here: they go over HTTP. A browser cannot set headers on a WebSocket, so the token may also come
 * as the connection's `connectionParams.authorization` (`Bearer …`); the upgrade request's own
 * `Authorization` header is used otherwise.
 */
export function attachGraphqlWs<ServerContext extends object, UserContext extends object>(
  server: Server,
  yoga: Pick<YogaServerInstance<ServerContext, UserContext>, 'graphqlEndpoint' | 'getEnveloped'>,
  persistedDocuments?: PersistedDocumentsOptions,
): GraphqlWsServer {
  // Upgrades are taken from the server's 'upgrade' event (noServer): attached to the HTTP server
  // itself, ws would re-emit the server's own errors (a port in use) as its own.
  const webSockets = new WebSocketServer({ noServer: true });
  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (new URL(request.url ?? '/', 'http://localhost').pathname !== yoga.graphqlEndpoint) {
      socket.destroy();
      return;
    }
    webSockets.handleUpgrade(request, socket, head, (webSocket) => webSockets.emit('connection', webSocket, request));
  };
  server.on('upgrade', onUpgrade);
  const disposable = useServer(
    {
      execute: (args) => (args.rootValue as Enveloped).execute(args) as never,
      subscribe: (args) => (args.rootValue as Enveloped).subscribe(args) as never,
      onSubscribe: async (context, _id, payload) => {
        const headers = new Headers();
        for (const [name, value] of Object.entries(context.extra.request.headers)) {
          if (typeof value === 'string') headers.set(name, value);
        }
        const fromParams = context.connectionParams?.['authorization'] ?? context.connectionParams?.['Authorization'];
        if (typeof fromParams === 'string') headers.set('authorization', fromParams);
        const request = new Request(`http://localhost${yoga.graphqlEndpoint}`, { method: 'POST', headers });
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          request,
          params: payload,
          liveTransport: 'websocket',
        } as unknown as Parameters<typeof yoga.getEnveloped>[0]);
        // graphql-yoga's request parsing (where persisted documents are read) does not run here.
        const query = persistedDocumentOf(persistedDocuments, payload);
        if (query instanceof GraphQLError) return [query];
        let document: DocumentNode;
        try {
          document = parse(query);
        } catch (error) {
          return [error instanceof GraphQLError ? error : new GraphQLError('The document does not parse.')];
        }
        const errors = validate(schema, document);
        if (errors.length > 0) return errors;
        // A query or mutation's request scope is settled by graphql-yoga's HTTP response hooks,
        // which do not run for a WebSocket: they would keep their connection. Only subscriptions
        // (which borrow connections per tick, through the live hub) are served here.
        if (getOperationAST(document, payload.operationName)?.operation !== 'subscription') {
          return [
            new GraphQLError('This WebSocket serves subscriptions; send queries and mutations over HTTP to the same URL.', {
              extensions: { code: 'BAD_REQUEST' },
            }),
          ];
        }
        let contextValue: unknown;
        try {
          // Builds the caller's identity: a bad token is the client's error, said as one.
          contextValue = await contextFactory();
        } catch (error) {
          if (error instanceof GraphQLError) return [error];
          throw error;
        }
        return {
          schema,
          document,
          operationName: payload.operationName ?? null,
          variableValues: payload.variables ?? null,
          contextValue,
          rootValue: { execute, subscribe },
        };
      },
    },
    webSockets,
  );
  let closed: Promise<void> | undefined;
  return {
    close() {
      closed ??= (async () => {
        server.off('upgrade', onUpgrade);
        for (const socket of webSockets.clients) socket.close(1001, 'the server is shutting down');
        await disposable.dispose();
        await new Promise<void>((resolve) => webSockets.close(() => resolve()));
      })();
      return closed;
    },
  };
}
