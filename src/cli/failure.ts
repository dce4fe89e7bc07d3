// How the granary command reports the error that ended it: one line people can act on for the errors it expects
// (bad input, an unreachable store, a missing mountpoint, wrong credentials...), whose messages say what to fix; the
// stack too for a bug, or when asked for with --log-level debug.
//
// Expected and unexpected errors are told apart by type. granary reports every problem of its input or surroundings
// as an Error (or a subclass: ObjectStoreError, MountpointError, a system error with a code...) whose message names
// the fix; the built-in types that JavaScript and Node raise for faults in the code itself (TypeError on a property
// of undefined, RangeError, ReferenceError, a failed assert...) are bugs. A value thrown that is no Error is one too.
import { AssertionError } from 'node:assert';
import { inspect } from 'node:util';

/** The error types that mean a bug in granary, not a problem with what it was given. */
const BUG_TYPES: ReadonlyArray<new (...args: never[]) => Error> = [TypeError, RangeError, ReferenceError, SyntaxError, EvalError, URIError, AssertionError];

/** Whether `error` is a bug in granary rather than an expected failure. */
export function isBug(error: unknown): boolean {
  return !(error instanceof Error) || BUG_TYPES.some((type) => error instanceof type);
}

/**
 * What granary prints on stderr for the error that ended it: `granary: MESSAGE`, one line, for an expected error;
 * with the stack (and its causes) below for a bug, or with `debug`.
 */
export function failureReport(error: unknown, options: { debug: boolean }): string {
  const message = error instanceof Error ? error.message : String(error);
  if (!isBug(error)) {
    // A message may span lines (an object store's answer): it stays one line, the way it is reported everywhere.
    const line = `granary: ${message.trim().replace(/\s*\n\s*/g, ' ')}\n`;
    return options.debug ? `${line}${inspect(error)}\n` : line;
  }
  return `granary: unexpected error (a bug in granary; please report it with this output): ${message}\n${inspect(error)}\n`;
}
