import { type Plugin, useReadinessCheck } from 'graphql-yoga';
import type { Readiness } from '../readiness.js';

/**
 * Serves `GET <endpoint>` from `readiness`: 200 when ready, 503 otherwise, with the report as
 * JSON either way (`{ ready, reason?, message?, pool }`). graphql-yoga's readiness plugin does the
 * routing; it answers before any GraphQL processing, so a probe never takes a request's place.
 * (`/health`, "the process is alive", is graphql-yoga's own and touches nothing.)
 */
export function useReadiness(readiness: Readiness, endpoint = '/ready'): Plugin {
  return useReadinessCheck({
    endpoint,
    async check({ fetchAPI }) {
      const report = await readiness.check();
      return new fetchAPI.Response(JSON.stringify(report), {
        status: report.ready ? 200 : 503,
        headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
      });
    },
  });
}
