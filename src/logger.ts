import { pino, type Logger, type LevelWithSilent } from 'pino';
import pinoPretty from 'pino-pretty';
import type { YogaLogger } from 'graphql-yoga';

/** How log lines are written: JSON (for machines) or pretty, coloured lines (for a person). */
export type LogFormat = 'json' | 'pretty';

/** The process's logger, and a way to print text for a person in order with its lines. */
export interface ProcessOutput {
  logger: Logger;
  /** Writes `text` to stdout after every line logged before it (the start banner). */
  print(text: string): void;
}

/**
 * Creates the process logger on stdout at `level` (JSON lines may go to another file descriptor,
 * `fd`: `npm run bench:cpu` writes them to /dev/null): one JSON object per line, or with `pretty`,
 * pino-pretty's coloured lines for a person at a terminal. Pretty formatting runs in this thread
 * (a stream, not a worker transport): it costs more per line, which only matters under load, and
 * load is not what a terminal is for.
 */
export function createProcessOutput(level: LevelWithSilent = 'info', format: LogFormat = 'json', fd = 1): ProcessOutput {
  const options = { name: 'poolgraph', level };
  if (format === 'json') {
    // pino's default destination, made here to print through it: its writes are asynchronous (a
    // line logged under load does not block), so text written to stdout directly could overtake
    // lines still queued; the start banner did, and a test reading the lines logged before it
    // missed them.
    const destination = pino.destination({ dest: fd, sync: false });
    return { logger: pino(options, destination), print: (text) => void destination.write(text) };
  }
  // sync: main() calls process.exit() right after its last line, which must not be lost.
  const pretty = pinoPretty({ colorize: true, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' });
  return { logger: pino(options, pretty), print: (text) => void process.stdout.write(text) };
}

/** The logger of {@link createProcessOutput}, for callers that print nothing beside it. */
export function createLogger(level: LevelWithSilent = 'info', format: LogFormat = 'json'): Logger {
  return createProcessOutput(level, format).logger;
}

/**
 * `LOG_FORMAT=auto` decides by where stdout goes: pretty for a terminal (`npm start` by a person),
 * JSON for a pipe or a file (containers, log shippers, tests).
 */
export function resolveLogFormat(setting: 'auto' | LogFormat, stdoutIsTerminal: boolean): LogFormat {
  if (setting !== 'auto') return setting;
  return stdoutIsTerminal ? 'pretty' : 'json';
}

/**
 * Adapts a pino logger to graphql-yoga's logger interface (variadic `console`-style calls): an
 * `Error` among the arguments is logged as `err`, the rest joined into the message.
 *
 * graphql-yoga calls `error` only to report an error it masks, without the request it belongs to
 * (and up to twice for one error). poolgraph logs every masked error itself, once, with its cause
 * and the request id (`useRequestLog`), so yoga's copies go to `debug`.
 */
export function toYogaLogger(logger: Logger): YogaLogger {
  const forward =
    (level: 'debug' | 'info' | 'warn') =>
    (...args: unknown[]): void => {
      // graphql-yoga logs at debug twice for every operation: build no message nobody will read.
      if (!logger.isLevelEnabled(level)) return;
      const err = args.find((arg) => arg instanceof Error);
      const message = args
        .filter((arg) => arg !== err)
        .map((arg) => (typeof arg === 'string' ? arg : JSON.stringify(arg)))
        .join(' ');
      if (err) logger[level]({ err }, message);
      else logger[level](message);
    };
  return { debug: forward('debug'), info: forward('info'), warn: forward('warn'), error: forward('debug') };
}
