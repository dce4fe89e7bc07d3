import pino from 'pino';
import { formatTextLine } from './text-line';

/** Field names whose values are secrets wherever they appear in a logged object. */
export const SECRET_FIELDS = ['secrets', 'secretAccessKey', 'accessKeyID', 'accessKeyId', 'sessionToken', 'token', 'authorization', 'credentials'];

/** The logger type every module takes. */
export type Logger = pino.Logger;

/** How log lines are written: text for people at a terminal, JSON (pino's, plus levelName) for machines. */
export const LOG_FORMATS = ['text', 'json'] as const;

/** One of LOG_FORMATS. */
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Where a logger writes its lines (stderr unless a test gives its own). */
export interface LogDestination {
  write(line: string): void;
  flush?(callback: (error?: Error) => void): void;
}

let processLogFormat: LogFormat | undefined;

/** Sets the format of the loggers createLogger builds from now on in this process (the CLI's --log-format). */
export function setLogFormat(format: LogFormat): void {
  processLogFormat = format;
}

/** The format createLogger uses when not told: the one set, else text when stderr is a terminal, else JSON (Pods, tests, log files). */
export function defaultLogFormat(): LogFormat {
  return processLogFormat ?? (process.stderr.isTTY ? 'text' : 'json');
}

// Every stderr destination made, so that flushLogs() can write out what they still buffer before the CLI prints its
// last line (an error): they write asynchronously and would otherwise land after it, or not at all before exit().
const stderrDestinations = new Set<LogDestination>();

/** Resolves once every logger createLogger built has written out what it buffered. */
export async function flushLogs(): Promise<void> {
  await Promise.all([...stderrDestinations].map((destination) => new Promise<void>((resolve) => (destination.flush ? destination.flush(() => resolve()) : resolve()))));
}

/** Levels at which a text line shows the stacks of the errors it carries. */
const STACK_LEVELS = new Set(['debug', 'trace']);

/**
 * Builds the process's logger (to stderr, or `destination`), in `format` (default defaultLogFormat()); secret fields
 * are redacted at any depth up to 3, in either format. JSON lines keep pino's numeric `level` (what the tests and
 * log readers compare) and add its name as `levelName`.
 */
export function createLogger(options: { level?: string; name?: string; format?: LogFormat; destination?: LogDestination } = {}): Logger {
  const paths = SECRET_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]);
  const level = options.level ?? process.env.GRANARY_LOG_LEVEL ?? 'info';
  const format = options.format ?? defaultLogFormat();
  let destination = options.destination;
  if (!destination) {
    destination = pino.destination({ fd: 2, sync: false });
    stderrDestinations.add(destination);
  }
  const target = destination;
  const stacks = STACK_LEVELS.has(level);
  // pino serializes (and redacts) first; the text line is made from its output, so redaction holds in text too.
  const stream: LogDestination = format === 'json'
    ? target
    : { write: (line) => target.write(formatTextLine(line, { stacks })), ...(target.flush && { flush: (callback) => target.flush?.(callback) }) };
  return pino(
    {
      name: options.name ?? 'granary',
      level,
      redact: { paths, censor: '[redacted]' },
      // A terminal shows one process: its pid on every line is noise there.
      base: format === 'json' ? { pid: process.pid } : {},
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label, number) => ({ level: number, levelName: label }) },
    },
    stream,
  );
}

/** A logger that discards everything, for tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** A logger that keeps each line, parsed, in `lines` (pino's numeric levels: 30 info, 40 warn, 50 error), for tests of what is logged. */
export function capturingLogger(lines: Array<Record<string, unknown>>, level = 'debug'): Logger {
  return pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
}
