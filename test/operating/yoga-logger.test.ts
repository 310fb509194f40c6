import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { toYogaLogger } from '../../src/logger.js';

/** A pino logger at `level` whose lines land in the returned array. */
function capture(level: string) {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level }, destination), lines };
}

describe("graphql-yoga's log lines", () => {
  it('go to pino at the level asked, an Error as err and the rest as the message', () => {
    const { logger, lines } = capture('debug');
    const yogaLogger = toYogaLogger(logger);
    yogaLogger.debug('Processing GraphQL Parameters', { a: 1 });
    yogaLogger.warn('careful', new Error('why'));
    yogaLogger.error(new Error('masked'));
    expect(lines).toEqual([
      expect.objectContaining({ level: 20, msg: 'Processing GraphQL Parameters {"a":1}' }),
      expect.objectContaining({ level: 40, msg: 'careful', err: expect.objectContaining({ message: 'why' }) }),
      // Errors yoga reports are logged by useRequestLog with their request id; its copy is debug.
      expect.objectContaining({ level: 20, msg: '', err: expect.objectContaining({ message: 'masked' }) }),
    ]);
  });

  it('below the logger level write nothing, and build no message', () => {
    const { logger, lines } = capture('info');
    const yogaLogger = toYogaLogger(logger);
    // Building the message would serialise this argument, which throws.
    const unserialisable = {
      toJSON() {
        throw new Error('the message was built');
      },
    };
    expect(() => yogaLogger.debug('Processing GraphQL Parameters', unserialisable)).not.toThrow();
    yogaLogger.error(new Error('masked'));
    yogaLogger.info('kept');
    expect(lines).toEqual([expect.objectContaining({ level: 30, msg: 'kept' })]);
  });
});
