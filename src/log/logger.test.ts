import { createLogger, type LogFormat } from './logger';

/** The lines a logger of `format` writes for `log`. */
function linesOf(format: LogFormat, level: string, log: (logger: ReturnType<typeof createLogger>) => void): string[] {
  const written: string[] = [];
  const logger = createLogger({ format, level, name: 'granary-test', destination: { write: (line) => void written.push(line) } });
  log(logger);
  return written.join('').split('\n').filter((line) => line !== '');
}

describe('createLogger', () => {
  it('writes text lines: time, level name, logger name, message, then key=value fields', () => {
    const [line] = linesOf('text', 'info', (logger) => logger.warn({ volumeId: 'vol-1', attempts: 3, reason: 'two words' }, 'store slow'));
    expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARN {2}granary-test: store slow volumeId=vol-1 attempts=3 reason="two words"$/);
  });

  it('redacts secrets in text lines as in JSON lines', () => {
    for (const format of ['text', 'json'] as const) {
      const output = linesOf(format, 'info', (logger) => logger.info({ credentials: { secretAccessKey: 'hunter2' }, peer: { token: 's3cret' } }, 'connecting')).join('\n');
      expect(output).not.toMatch(/hunter2|s3cret/);
      expect(output).toContain('[redacted]');
    }
  });

  it("keeps JSON's numeric level and adds the level's name", () => {
    const [line] = linesOf('json', 'info', (logger) => logger.error('boom'));
    expect(JSON.parse(line!)).toMatchObject({ level: 50, levelName: 'error', name: 'granary-test', msg: 'boom', pid: process.pid });
  });

  it("shows an error's stack in text only at debug level", () => {
    const error = new Error('disk gone');
    const atInfo = linesOf('text', 'info', (logger) => logger.error({ err: error }, 'failed'));
    expect(atInfo).toEqual([expect.stringMatching(/ERROR granary-test: failed err="disk gone"$/)]);
    const atDebug = linesOf('text', 'debug', (logger) => logger.error({ err: error }, 'failed'));
    expect(atDebug.length).toBeGreaterThan(2);
    expect(atDebug[1]).toBe('    Error: disk gone');
    expect(atDebug[2]).toMatch(/^ {8}at /);
  });
});
