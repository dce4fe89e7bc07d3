// One layout for every subcommand's help: each option's description ends with one parenthesis that says, in
// this order, whether it is required, its choices and its default, spelled the same way whether commander knows
// the default or the description states it; descriptions wrap at the terminal's width (80 off a terminal) for
// every subcommand alike, however long its option names.
import type { Command, Help, Option } from 'commander';

/** Narrowest description column that still wraps (commander's 40 left the subcommands with long flags unwrapped). */
const MIN_WIDTH_TO_WRAP = 20;

/** A default worth stating: not a boolean flag's false, not an empty list. */
function shownDefault(option: Option): string | undefined {
  if (option.defaultValueDescription !== undefined) return option.defaultValueDescription;
  const value: unknown = option.defaultValue;
  if (value === undefined || value === false) return undefined;
  if (Array.isArray(value)) return value.length > 0 ? value.join(',') : undefined;
  return String(value);
}

/** A description that states its own default at its end, "… (default: x)", split into the two. */
const STATED_DEFAULT = /^([\s\S]*?)\s*\(default: ([^()]*(?:\([^()]*\)[^()]*)*)\)$/;

/** An option's description with its facts in one parenthesis: (required; choices: a, b; default: x). */
export function optionDescription(option: Option): string {
  const stated = STATED_DEFAULT.exec(option.description);
  const description = stated ? (stated[1] as string) : option.description;
  const facts: string[] = [];
  if (option.mandatory) facts.push('required');
  if (option.argChoices) facts.push(`choices: ${option.argChoices.join(', ')}`);
  const fallback = shownDefault(option) ?? stated?.[2];
  if (fallback !== undefined) facts.push(`default: ${fallback}`);
  return facts.length > 0 ? `${description} (${facts.join('; ')})` : description;
}

/** The help configuration of the program; subcommands made after it inherit it. */
export const HELP_LAYOUT: Partial<Help> = { optionDescription, minWidthToWrap: MIN_WIDTH_TO_WRAP };

/** Every command under `program`, depth first, the program itself included. */
export function allCommands(program: Command): Command[] {
  return [program, ...program.commands.flatMap((command) => allCommands(command))];
}
