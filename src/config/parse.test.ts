import { z } from 'zod';
import { parseConfig } from './parse';

describe('parseConfig', () => {
  const schema = z
    .object({
      name: z.string().min(1, 'NAME is empty'),
      size: z.number().int().default(4),
      nested: z.object({ port: z.number().max(65535, 'at most 65535') }).default({ port: 1 }),
      hosts: z.array(z.string().regex(/^[a-z]+$/, 'not a host')).default([]),
    })
    .refine((config) => config.size < 100, { message: 'too big as a whole' });
  const parse = parseConfig(schema, 'test');

  it('returns the options with their defaults', () => {
    expect(parse({ name: 'x' })).toEqual({ name: 'x', size: 4, nested: { port: 1 }, hosts: [] });
  });

  it('throws one error naming the role and every problem with its field, "config" for the whole', () => {
    expect(() => parse({ name: '', nested: { port: 70000 } })).toThrow('invalid test configuration: name: NAME is empty; nested.port: at most 65535');
    expect(() => parse({ name: 'x', size: 500 })).toThrow('invalid test configuration: config: too big as a whole');
  });

  it('names the flag of each field the caller names, an array item by its array\'s flag, and the field alone otherwise', () => {
    const flags = { name: '--name', 'nested.port': '--port', hosts: '--host' };
    expect(() => parse({ name: '', nested: { port: 70000 }, hosts: ['ok', 'Not OK'] }, flags)).toThrow(
      'invalid test configuration: --name (name): NAME is empty; --port (nested.port): at most 65535; --host (hosts.1): not a host',
    );
    expect(() => parse({ name: 'x', size: 500 }, flags)).toThrow('invalid test configuration: config: too big as a whole');
  });
});
