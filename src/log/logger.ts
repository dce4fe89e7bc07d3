import pino from 'pino';

/** Field names whose values are secrets wherever they appear in a logged object. */
export const SECRET_FIELDS = ['secrets', 'secretAccessKey', 'accessKeyID', 'accessKeyId', 'sessionToken', 'token', 'authorization', 'credentials'];

/** The logger type every module takes. */
export type Logger = pino.Logger;

/** Builds the process's structured JSON logger (to stderr); secret fields are redacted at any depth up to 3. */
export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  const paths = SECRET_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]);
  return pino(
    {
      name: options.name ?? 'granary',
      level: options.level ?? process.env.GRANARY_LOG_LEVEL ?? 'info',
      redact: { paths, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ fd: 2, sync: false }),
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
