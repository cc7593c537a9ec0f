/** Who may read /debug/* and /metrics (contract section 3), as a pure rule. */
import { describe, expect, it } from 'vitest';
import { checkAccess, constantTimeEqual, isLoopback } from '../../src/http/access.js';
import { ApiError } from '../../src/http/errors.js';

const TOKEN = 'podscope-token-0123456789';

function refusal(token: string | undefined, req: Parameters<typeof checkAccess>[1]): ApiError | null {
  try {
    checkAccess(token, req);
    return null;
  } catch (err) {
    return err as ApiError;
  }
}

describe('loopback addresses', () => {
  it.each(['127.0.0.1', '127.3.4.5', '::1', '::ffff:127.0.0.1'])('%s is loopback', (a) => expect(isLoopback(a)).toBe(true));
  it.each(['10.0.0.1', '100.64.3.7', '::ffff:10.0.0.1', '0.0.0.0', '128.0.0.1', '', undefined])('%s is not', (a) => expect(isLoopback(a)).toBe(false));
});

describe('with PODSCOPE_TOKEN set', () => {
  it('lets a request with the token through, from anywhere', () => {
    expect(refusal(TOKEN, { authorization: `Bearer ${TOKEN}`, forwarded: true, remoteAddress: '100.64.3.7' })).toBeNull();
  });

  it('accepts the scheme in any case and trailing blanks', () => {
    expect(refusal(TOKEN, { authorization: `bearer ${TOKEN}  `, forwarded: false, remoteAddress: '127.0.0.1' })).toBeNull();
  });

  it('refuses a wrong token with 401 and a WWW-Authenticate challenge', () => {
    const e = refusal(TOKEN, { authorization: 'Bearer wrong-token-000000', forwarded: false, remoteAddress: '127.0.0.1' })!;
    expect([e.status, e.code, e.message]).toEqual([401, 'UNAUTHORIZED', 'The bearer token is not valid.']);
    expect(e.headers['WWW-Authenticate']).toBe('Bearer realm="podscope"');
  });

  it('refuses a loopback client without the token: with a token, loopback is no exception', () => {
    const e = refusal(TOKEN, { authorization: undefined, forwarded: false, remoteAddress: '127.0.0.1' })!;
    expect([e.status, e.message]).toEqual([401, 'This endpoint needs a bearer token.']);
  });

  it('refuses another scheme carrying the token', () => {
    expect(refusal(TOKEN, { authorization: `Basic ${TOKEN}`, forwarded: false, remoteAddress: '127.0.0.1' })?.status).toBe(401);
  });
});

describe('without a token', () => {
  it('lets a direct loopback client through', () => {
    expect(refusal(undefined, { authorization: undefined, forwarded: false, remoteAddress: '::1' })).toBeNull();
  });

  it('refuses a loopback connection that came through a proxy (RunPod reaches the pod from inside)', () => {
    const e = refusal(undefined, { authorization: undefined, forwarded: true, remoteAddress: '127.0.0.1' })!;
    expect([e.status, e.code]).toEqual([403, 'FORBIDDEN']);
    expect(e.help).toMatch(/PODSCOPE_TOKEN/);
  });

  it('refuses a remote client', () => {
    expect(refusal(undefined, { authorization: undefined, forwarded: false, remoteAddress: '100.64.3.7' })?.status).toBe(403);
  });
});

describe('comparing tokens', () => {
  it('is true only for equal strings, whatever their lengths', () => {
    expect(constantTimeEqual(TOKEN, TOKEN)).toBe(true);
    expect(constantTimeEqual(TOKEN, `${TOKEN}x`)).toBe(false);
    expect(constantTimeEqual('', TOKEN)).toBe(false);
  });
});
