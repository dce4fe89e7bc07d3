import { capturingLogger } from '../log/logger';
import { PeerError } from './peer-client';
import { TokenRefusals } from './token-refusals';

describe('TokenRefusals', () => {
  it('counts every 401, warns once per server, and ignores other failures', () => {
    const lines: Array<Record<string, unknown>> = [];
    const refusals = new TokenRefusals(capturingLogger(lines, 'info'));
    const a = 'http://10.0.0.5:7070';
    const b = 'http://10.0.0.6:7070';
    for (let probe = 0; probe < 5; probe++) expect(refusals.note(a, new PeerError('Unauthorized', `${a} answered 401`, 401))).toBe(true);
    expect(refusals.note(b, new PeerError('Unauthorized', `${b} answered 401`, 401))).toBe(true);
    expect(refusals.note(a, new PeerError('Unavailable', 'connection refused'))).toBe(false);
    expect(refusals.note(a, new Error('not a peer error'))).toBe(false);
    expect(refusals.total).toBe(6);
    expect(lines.map((line) => [line.level, line.peer])).toEqual([[40, a], [40, b]]);
    expect(lines[0]?.msg).toMatch(/^the cache server http:\/\/10\.0\.0\.5:7070 refused the cache token \(401\): check --cache-token-file \/ the cluster token Secret/);
  });
});
