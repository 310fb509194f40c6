import { pino, type Logger, type LevelWithSilent } from 'pino';
import type { YogaLogger } from 'graphql-yoga';

/** Creates the process logger: JSON lines on stdout at `level`. */
export function createLogger(level: LevelWithSilent = 'info'): Logger {
  return pino({ name: 'poolgraph', level });
}

/**
 * Adapts a pino logger to graphql-yoga's logger interface (variadic `console`-style calls): an
 * `Error` among the arguments is logged as `err`, the rest joined into the message.
 */
export function toYogaLogger(logger: Logger): YogaLogger {
  const forward =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (...args: unknown[]): void => {
      const err = args.find((arg) => arg instanceof Error);
      const message = args
        .filter((arg) => arg !== err)
        .map((arg) => (typeof arg === 'string' ? arg : JSON.stringify(arg)))
        .join(' ');
      if (err) logger[level]({ err }, message);
      else logger[level](message);
    };
  return { debug: forward('debug'), info: forward('info'), warn: forward('warn'), error: forward('error') };
}
