/**
 * Secrets (src/secrets.ts): which variables hold one, and how known values, bearer credentials and
 * URL passwords are scrubbed from text before it leaves podscope.
 */
import { describe, expect, it } from 'vitest';
import { REDACTED, Scrubber, isSecretName, redactEnvValue, redactUrlCredentials } from '../../src/secrets.js';

describe('isSecretName', () => {
  it.each(['PODSCOPE_TOKEN', 'RUNPOD_API_KEY', 'HF_TOKEN', 'AWS_SECRET_ACCESS_KEY', 'DB_PASSWORD', 'FTP_PASSWD', 'GCP_CREDENTIALS', 'BASIC_AUTH', 'SSH_PRIVATE_KEY', 'civitai_api_key'])(
    'says %s holds a secret',
    (name) => {
      expect(isSecretName(name)).toBe(true);
    },
  );

  it.each(['COMFYUI_URL', 'RUNPOD_POD_ID', 'RUNPOD_GPU_COUNT', 'PATH', 'HOME', 'PODSCOPE_PORT'])('says %s does not', (name) => {
    expect(isSecretName(name)).toBe(false);
  });

  it('makes an exception for PODSCOPE_JOB_ID_KEY, whose value names a field', () => {
    expect(isSecretName('PODSCOPE_JOB_ID_KEY')).toBe(false);
  });
});

describe('redactUrlCredentials', () => {
  it('masks the password of a URL and keeps the user', () => {
    expect(redactUrlCredentials('proxy at http://bob:hunter22@10.0.0.1:3128/')).toBe(`proxy at http://bob:${REDACTED}@10.0.0.1:3128/`);
  });

  it('masks every URL in a text', () => {
    expect(redactUrlCredentials('a redis://u:p1@h b postgres://v:p2@k')).toBe(`a redis://u:${REDACTED}@h b postgres://v:${REDACTED}@k`);
  });

  it('leaves a URL without a password alone', () => {
    expect(redactUrlCredentials('http://bob@host/ and https://host:8188/x')).toBe('http://bob@host/ and https://host:8188/x');
  });
});

describe('redactEnvValue', () => {
  it('hides the whole value of a secret variable', () => {
    expect(redactEnvValue('HF_TOKEN', 'hf_abcdef123456')).toBe(REDACTED);
  });

  it('masks only the URL password of another variable', () => {
    expect(redactEnvValue('COMFYUI_URL', 'http://u:pw@127.0.0.1:8188')).toBe(`http://u:${REDACTED}@127.0.0.1:8188`);
  });

  it('shows a plain value as it is', () => {
    expect(redactEnvValue('RUNPOD_POD_ID', 'abc123xyz')).toBe('abc123xyz');
  });
});

describe('Scrubber', () => {
  const TOKEN = 'tok_4f9a0c2e7d1b';

  it('replaces a known secret value wherever it appears', () => {
    const s = new Scrubber([TOKEN]);
    expect(s.scrub(`got ${TOKEN} and "${TOKEN}"`)).toBe(`got ${REDACTED} and "${REDACTED}"`);
  });

  it('replaces a secret as it appears inside a JSON string', () => {
    const secret = 'pa"ss\\word1';
    const s = new Scrubber([secret]);
    const json = JSON.stringify({ v: secret });
    expect(s.scrub(json)).toBe(`{"v":"${REDACTED}"}`);
  });

  it('replaces a longer secret whole when it contains a shorter one', () => {
    const s = new Scrubber(['abcdef', 'abcdefghij']);
    expect(s.scrub('x abcdefghij y')).toBe(`x ${REDACTED} y`);
  });

  it('ignores values too short to be secrets, and plain booleans', () => {
    const s = new Scrubber(['1', 'abc', 'true', 'FALSE', 'yes', 'on', '  ']);
    expect(s.size).toBe(0);
    expect(s.scrub('retry 1 of 3: true')).toBe('retry 1 of 3: true');
  });

  it('trims a value before keeping it', () => {
    const s = new Scrubber(['  secret-value  ']);
    expect(s.scrub('the secret-value leaked')).toBe(`the ${REDACTED} leaked`);
  });

  it('masks bearer and basic credentials it was never told of', () => {
    const s = new Scrubber([]);
    expect(s.scrub('Authorization: Bearer eyJhbGciOi.abc.def')).toBe(`Authorization: Bearer ${REDACTED}`);
    expect(s.scrub('authorization: basic dXNlcjpwYXNz')).toBe(`authorization: basic ${REDACTED}`);
  });

  it('leaves the words bearer and basic alone when no credential follows', () => {
    const s = new Scrubber([]);
    expect(s.scrub('a basic test of the bearer')).toBe('a basic test of the bearer');
  });

  it('masks URL passwords', () => {
    expect(new Scrubber([]).scrub('http://a:b@c')).toBe(`http://a:${REDACTED}@c`);
  });

  it('finds secret values by variable name in an environment, and takes extra values', () => {
    const s = Scrubber.fromEnv({ HF_TOKEN: 'hf_abcdefgh', COMFYUI_URL: 'http://x', PODSCOPE_JOB_ID_KEY: 'job_id_key' }, ['extra-secret', undefined]);
    expect(s.size).toBe(2);
    expect(s.scrub('hf_abcdefgh extra-secret job_id_key http://x')).toBe(`${REDACTED} ${REDACTED} job_id_key http://x`);
  });

  it('takes each value of an OTLP headers list as a secret of its own, decoded as it is sent', () => {
    const s = Scrubber.fromEnv({ OTEL_EXPORTER_OTLP_HEADERS: 'x-honeycomb-team=hc4f9a2c77,authorization=Basic%20dXNlcjpwYXNz' });
    expect(s.scrub('team hc4f9a2c77 auth Basic dXNlcjpwYXNz')).toBe(`team ${REDACTED} auth ${REDACTED}`);
  });

  it('tells whether a text holds a known value', () => {
    const s = new Scrubber([TOKEN]);
    expect(s.containsSecret(`a ${TOKEN}`)).toBe(true);
    expect(s.containsSecret('nothing here')).toBe(false);
  });

  it('scrubValues replaces known values only, leaving bearer words and URLs for the log scrub', () => {
    const s = new Scrubber([TOKEN]);
    expect(s.scrubValues(`${TOKEN} Bearer abcdefgh http://a:b@c`)).toBe(`${REDACTED} Bearer abcdefgh http://a:b@c`);
  });

  it.each([
    ['a known value', 'x tok_4f9a0c2e7d1b', true],
    ['a URL', 'see http://host/', true],
    ['a bearer word', 'Bearer abc', true],
    ['plain text', 'GET /debug/status 200', false],
  ])('needsScrub is true for text with %s', (_name, text, needs) => {
    expect(new Scrubber([TOKEN]).needsScrub(text)).toBe(needs);
  });

  it('never needs a scrub where scrub would change nothing it knows of', () => {
    const s = new Scrubber([TOKEN]);
    for (const text of ['/health', '/debug/workflow?job_id=abc', 'abc-123', 'GET /metrics 200']) {
      expect(s.needsScrub(text)).toBe(false);
      expect(s.scrub(text)).toBe(text);
    }
  });
});
