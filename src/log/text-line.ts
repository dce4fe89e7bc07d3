// pino writes JSON; people at a terminal read text. There is no pino-pretty in this project's dependencies (and no
// registry to fetch it from), so this turns one of pino's JSON lines, already redacted, into one text line.

/** How a JSON log line is turned into text. */
export interface TextLineOptions {
  /** Append an error field's stack (and its causes') below the line: at debug and trace levels. */
  stacks: boolean;
}

/** Fields the text line shows in its head (or leaves out) rather than as key=value. */
const HEAD_FIELDS = new Set(['time', 'level', 'levelName', 'name', 'msg', 'v']);

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** A value as key=value shows it: bare when it is a word, else as JSON (quoted, escaped). */
function show(value: unknown): string {
  if (typeof value === 'string') return /^[\w./:@+-]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/** Whether a logged value is an error serialized by pino (it has a message and a stack). */
function isSerializedError(value: unknown): value is { message: string; stack?: string } {
  return typeof value === 'object' && value !== null && typeof (value as { message?: unknown }).message === 'string' && 'stack' in value;
}

/**
 * One of pino's JSON lines as text: `TIME LEVEL name: message key=value ...`, then, with `stacks`, each error's stack
 * indented below. A line that is not JSON comes back as it was.
 */
export function formatTextLine(json: string, options: TextLineOptions): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const level = LEVEL_NAMES[entry.level as number] ?? String(entry.levelName ?? entry.level).toUpperCase();
  const head = [String(entry.time ?? ''), level.padEnd(5), `${String(entry.name ?? 'granary')}:`, String(entry.msg ?? '')];
  const stacks: string[] = [];
  for (const [key, value] of Object.entries(entry)) {
    if (HEAD_FIELDS.has(key)) continue;
    if (isSerializedError(value)) {
      head.push(`${key}=${show(value.message)}`);
      if (options.stacks && value.stack) stacks.push(value.stack);
      continue;
    }
    head.push(`${key}=${show(value)}`);
  }
  const indented = stacks.map((stack) => stack.replace(/^/gm, '    '));
  return `${[head.join(' '), ...indented].join('\n')}\n`;
}
