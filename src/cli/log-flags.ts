// The --log-format flag every subcommand that logs takes, shared so they spell and apply it the same way (as
// cache-flags.ts shares the cache flags). Each subcommand keeps its own --log-level (their defaults differ).
import { Option } from 'commander';
import { LOG_FORMATS, setLogFormat, type LogFormat } from '../log/logger';

/** The log flags as commander parses them (any subcommand's). */
export interface LogFlags {
  logLevel?: string;
  logFormat?: LogFormat;
}

/** The --log-format text|json option (default: text when stderr is a terminal, else json). */
export function logFormatOption(): Option {
  return new Option('--log-format <format>', 'log lines on stderr as text (time, level, name, message, key=value fields) or JSON (default: text when stderr is a terminal, else json)').choices(LOG_FORMATS);
}

let runningLogLevel: string | undefined;

/** Applies the log flags of the subcommand about to run (the program's preAction hook) before its action builds a logger. */
export function applyLogFlags(flags: LogFlags): void {
  if (flags.logFormat !== undefined) setLogFormat(flags.logFormat);
  runningLogLevel = flags.logLevel;
}

/** Whether the running subcommand logs at debug or trace level, where an error is shown with its stack. */
export function debugLogging(): boolean {
  const level = runningLogLevel ?? process.env.GRANARY_LOG_LEVEL;
  return level === 'debug' || level === 'trace';
}
