/**
 * The podscope command line (cli/main.ts parseArgs, cli/client.ts): what each command takes, and
 * the one-line usage error (exit code 64) for anything else.
 */
import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../src/cli/main.js';
import { CliError, errorMessage } from '../../src/cli/client.js';

/** The usage error parseArgs throws, as [message, exit code]. */
function refusal(argv: string[]): [string, number] {
  try {
    parseArgs(argv);
  } catch (err) {
    if (err instanceof CliError) return [err.message, err.exitCode];
    throw err;
  }
  throw new Error(`accepted ${argv.join(' ')}`);
}

describe('commands', () => {
  it('serves when no command is given', () => {
    expect(parseArgs([]).command).toBe('serve');
  });

  it.each(['serve', 'demo', 'status', 'workflow', 'queue', 'jobs', 'memory', 'artifacts', 'logs', 'wait', 'help'])('knows %s', (command) => {
    expect(parseArgs([command]).command).toBe(command);
  });

  it('refuses an unknown command', () => {
    expect(refusal(['statsu'])).toEqual(['unknown command "statsu"', 64]);
  });

  it('refuses a stray argument after the command', () => {
    expect(refusal(['status', 'extra'])).toEqual(['unexpected argument "extra" for `podscope status`', 64]);
  });
});

describe('options', () => {
  it('takes a value after the option or after =', () => {
    expect(parseArgs(['wait', '--job', 'j1', '--timeout=30']).flags).toEqual(
      new Map<string, string | true>([
        ['job', 'j1'],
        ['timeout', '30'],
      ]),
    );
  });

  it('keeps an = inside a value', () => {
    expect(parseArgs(['logs', '--grep=a=b']).flags.get('grep')).toBe('a=b');
  });

  it('takes boolean flags without a value', () => {
    const a = parseArgs(['logs', '--follow', '--json']);
    expect(a.flags.get('follow')).toBe(true);
    expect(a.flags.get('json')).toBe(true);
  });

  it('reads -h and --help as help for any command', () => {
    expect(parseArgs(['status', '-h']).flags.get('h')).toBe(true);
    expect(parseArgs(['wait', '--help']).flags.get('help')).toBe(true);
  });

  it('refuses an option the command does not take, suggesting the one meant', () => {
    expect(refusal(['wait', '--jbo', 'x'])).toEqual(['unknown option --jbo for `podscope wait` (did you mean --job?)', 64]);
    expect(refusal(['logs', '--lin', '5'])).toEqual(['unknown option --lin for `podscope logs` (did you mean --lines?)', 64]);
  });

  it('refuses an option of another command without a suggestion when none is close', () => {
    expect(refusal(['status', '--follow'])).toEqual(['unknown option --follow for `podscope status`', 64]);
  });

  it('refuses an option that needs a value and has none', () => {
    expect(refusal(['wait', '--job'])).toEqual(['--job needs a value', 64]);
    expect(refusal(['wait', '--job', '--json'])).toEqual(['--job needs a value', 64]);
  });

  it('refuses a --url that is not http or https', () => {
    expect(refusal(['status', '--url', 'localhost:9188'])).toEqual(['--url must be an http:// or https:// URL (got "localhost:9188")', 64]);
    expect(parseArgs(['status', '--url', 'https://abc-9188.proxy.runpod.net']).flags.get('url')).toBe('https://abc-9188.proxy.runpod.net');
  });

  it.each(['0', '-1', 'ten', '10000000', '1.5'])('refuses --lines %s', (lines) => {
    expect(refusal(['logs', '--lines', lines])[0]).toMatch(/^--lines must be a whole number from 1 to 1000000/);
  });

  it('takes --lines from 1 to 1000000', () => {
    expect(parseArgs(['logs', '--lines', '1']).flags.get('lines')).toBe('1');
    expect(parseArgs(['logs', '--lines', '1000000']).flags.get('lines')).toBe('1000000');
  });

  it('quotes at most a short piece of a bad value', () => {
    const [message] = refusal(['status', '--url', `ftp://${'x'.repeat(500)}`]);
    expect(message.length).toBeLessThan(160);
  });
});

describe('errorMessage', () => {
  it('gives the error envelope’s code and message', () => {
    expect(errorMessage({ error: { code: 'NOT_FOUND', message: 'No job j1.' } }, 404)).toBe('NOT_FOUND: No job j1.');
  });

  it('falls back to the HTTP status for any other body', () => {
    expect(errorMessage('<html>bad gateway</html>', 502)).toBe('HTTP 502');
    expect(errorMessage(null, 500)).toBe('HTTP 500');
  });
});
