import { buildProgram } from './index';
import { allCommands, optionDescription } from './help-layout';
import { Option } from 'commander';

describe('the help of every subcommand', () => {
  const commands = allCommands(buildProgram());
  const named = commands.map((command) => [command.name(), command] as const);

  it.each(named)('%s: states each default one way, "(… default: x)" at the end, and marks required options', (_name, command) => {
    const help = command.helpInformation();
    expect(help).not.toMatch(/\(default [^:]/);
    expect(help).not.toMatch(/default: "/); // commander's JSON-quoted form
    for (const option of command.options) {
      const text = optionDescription(option);
      expect(text.match(/default: /g)?.length ?? 0).toBeLessThanOrEqual(1);
      if (/default: /.test(text)) expect(text).toMatch(/default: [^;]*\)$/);
      if (option.mandatory) expect(text).toMatch(/\(required[;)]/);
    }
  });

  it.each(named)('%s: wraps its descriptions within 80 columns, long flags or not', (_name, command) => {
    // A line may pass 80 only with one word that cannot be broken (a long path).
    for (const line of command.helpInformation().split('\n')) {
      if (line.length > 80) expect(line.trim().split(/\s+/).some((word) => word.length > 40)).toBe(true);
    }
  });
});

describe('optionDescription', () => {
  it("puts required, the choices and the default in one parenthesis, whether commander or the description knows the default", () => {
    expect(optionDescription(new Option('--mode <mode>', 'services to serve').choices(['a', 'b']).makeOptionMandatory())).toBe('services to serve (required; choices: a, b)');
    expect(optionDescription(new Option('--level <level>', 'log level').choices(['x', 'y']).default('y'))).toBe('log level (choices: x, y; default: y)');
    expect(optionDescription(new Option('--format <f>', 'a format (default: text on a terminal (a TTY))').choices(['text', 'json']))).toBe('a format (choices: text, json; default: text on a terminal (a TTY))');
    expect(optionDescription(new Option('--read-only', 'mount read-only').default(false))).toBe('mount read-only');
    expect(optionDescription(new Option('--uid <uid>', 'owner uid'))).toBe('owner uid');
  });
});
