/** Query parameters in podscope's own words: what each accepts, and the sentence for each way to get it wrong. */
import { Hono } from 'hono';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { intParam, jobIdParam, parseQuery, querySpec } from '../../src/http/query.js';
import { ApiError } from '../../src/http/errors.js';

const spec = querySpec({ lines: intParam(1, 1000).optional(), job_id: jobIdParam.optional(), level: z.enum(['info', 'warn']).optional() });

async function parse(query: string): Promise<unknown> {
  const app = new Hono();
  app.get('/x', (c) => c.json(parseQuery(c, spec)));
  app.onError((err) => Response.json(err instanceof ApiError ? { error: err.code, message: err.message, details: err.details } : { error: String(err) }, { status: 400 }));
  return (await app.request(`/x${query}`)).json();
}

describe('integer parameters', () => {
  it('takes a whole number in range', async () => {
    expect(await parse('?lines=250')).toEqual({ lines: 250 });
  });

  it.each(['abc', '-1', '+5', '1.5', '1e3', '0', '1001', '99999999999999999999999', ''])('answers %j with the same sentence', async (v) => {
    expect(await parse(`?lines=${encodeURIComponent(v)}`)).toEqual({
      error: 'INVALID_PARAMETER',
      message: 'lines must be an integer from 1 to 1000.',
      details: { parameter: 'lines', problem: 'must be an integer from 1 to 1000' },
    });
  });
});

describe('job ids', () => {
  it('takes any printable ASCII without spaces', async () => {
    expect(await parse('?job_id=job_01%3Aa-b.c')).toEqual({ job_id: 'job_01:a-b.c' });
  });

  it.each([
    ['a space', 'a%20b', 'must be printable ASCII without spaces'],
    ['nothing', '', 'must not be empty'],
    ['201 characters', 'x'.repeat(201), 'must be at most 200 characters'],
  ])('refuses %s', async (_name, v, problem) => {
    expect(await parse(`?job_id=${v}`)).toMatchObject({ error: 'INVALID_PARAMETER', details: { parameter: 'job_id', problem } });
  });
});

describe('the query as a whole', () => {
  it('ignores parameters it does not know', async () => {
    expect(await parse('?lines=3&color=blue&__proto__=x')).toEqual({ lines: 3 });
  });

  it('counts a parameter given twice by its first value', async () => {
    expect(await parse('?lines=3&lines=abc')).toEqual({ lines: 3 });
  });

  it('names the first bad parameter', async () => {
    expect(await parse('?level=loud&lines=2')).toMatchObject({ error: 'INVALID_PARAMETER', details: { parameter: 'level' } });
  });
});
