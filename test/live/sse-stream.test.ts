import { GraphQLError } from 'graphql';
import { describe, expect, it } from 'vitest';
import { sseNextEvent } from '../../src/graphql/subscriptions/sse-stream.js';

/**
 * The bytes of the live SSE stream (src/graphql/subscriptions/sse-stream.ts), which replaces
 * graphql-yoga's for the hub's subscriptions: the same events, encoded once per result object.
 * The streams themselves are tested end to end over HTTP (subscriptions*.test.ts).
 */
describe('a live result on the SSE stream', () => {
  it('is one GraphQL-over-SSE next event with the result as its data', () => {
    const result = { data: { itemCreated: { id: '7', number: 3 } } };
    expect(sseNextEvent(result).toString()).toBe(`event: next\ndata: ${JSON.stringify(result)}\n\n`);
  });

  it('is encoded once for all the subscribers it goes to', () => {
    const result = { data: { itemDeleted: '9' } };
    expect(sseNextEvent(result)).toBe(sseNextEvent(result));
    // Another object with the same content is another result: no cache keyed on content.
    expect(sseNextEvent({ ...result })).not.toBe(sseNextEvent(result));
  });

  it('keeps the server\'s own extensions (http, unexpected) from the client, and the code', () => {
    const error = new GraphQLError('This subscription was ended.', {
      extensions: { code: 'SUBSCRIBER_TOO_SLOW', http: { status: 500 }, unexpected: true },
    });
    const event = sseNextEvent({ errors: [error], extensions: { http: { status: 500 } } }).toString();
    const data = JSON.parse(event.slice(event.indexOf('data: ') + 6)) as unknown;
    expect(data).toEqual({ errors: [{ message: 'This subscription was ended.', extensions: { code: 'SUBSCRIBER_TOO_SLOW' } }] });
  });
});
