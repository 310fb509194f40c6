import type { Plugin } from 'graphql-yoga';
import type { Readiness } from '../../operating/readiness.js';

/**
 * Serves `GET <endpoint>` (and HEAD) from `readiness`: 200 when ready, 503 otherwise, with the
 * report as JSON either way (`{ ready, reason?, message?, pool }`). It answers before any GraphQL
 * processing, so a probe never takes a request's place. The path must match exactly: graphql-yoga's
 * own readiness plugin also answers any URL that merely ends in the endpoint
 * (`/graphql?x=/ready`), which would turn GraphQL requests into database pings.
 * (`/health`, "the process is alive", is graphql-yoga's own and touches nothing.)
 */
export function useReadiness(readiness: Readiness, endpoint = '/ready'): Plugin {
  return {
    async onRequest({ request, url, endResponse, fetchAPI }) {
      if (url.pathname !== endpoint || (request.method !== 'GET' && request.method !== 'HEAD')) return;
      // check() reports failures in its result; should it ever throw, still answer "not ready".
      const report = await readiness.check().catch((error: unknown) => ({
        ready: false,
        message: error instanceof Error ? error.message : String(error),
      }));
      endResponse(
        new fetchAPI.Response(JSON.stringify(report), {
          status: report.ready ? 200 : 503,
          headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
        }),
      );
    },
  };
}
