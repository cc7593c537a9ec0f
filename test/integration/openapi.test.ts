/**
 * `GET /openapi.json`: the OpenAPI 3.1 document of podscope's HTTP contract, generated from the
 * schemas that type the views and validate the queries. It is linted by a real validator
 * (@apidevtools/swagger-parser), lists every endpoint podscope serves, and the checker the tests
 * run on every answer (test/helpers/openapi.ts) fails on a field renamed, made nullable or dropped.
 */
import SwaggerParser from '@apidevtools/swagger-parser';
import { describe, expect, it } from 'vitest';
import { LOOPBACK, REMOTE, testPod } from '../helpers/pod.js';
import { mismatch } from '../helpers/openapi.js';

const TOKEN = 'a-token-of-sixteen-chars';

async function documentOf(env: Record<string, string> = {}) {
  const res = await testPod(env).app.request('/openapi.json', {}, LOOPBACK);
  expect(res.status).toBe(200);
  return (await res.json()) as { openapi: string; paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, unknown> } };
}

describe('the OpenAPI document', () => {
  it('is served at /openapi.json as an OpenAPI 3.1 document a real validator accepts', async () => {
    const doc = await documentOf();
    expect(doc.openapi).toBe('3.1.0');
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeTruthy();
  });

  it('stays valid with the development endpoints in it', async () => {
    const doc = await documentOf({ PODSCOPE_ENV: 'development' });
    expect(Object.keys(doc.paths)).toContain('/debug/log-level');
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeTruthy();
  });

  it('is behind the same access rule as /debug', async () => {
    const pod = testPod({ PODSCOPE_TOKEN: TOKEN });
    const statuses = [
      (await pod.app.request('/openapi.json', {}, REMOTE)).status,
      (await pod.app.request('/openapi.json', { headers: { authorization: `Bearer ${TOKEN}` } }, REMOTE)).status,
      (await testPod().app.request('/openapi.json', {}, REMOTE)).status,
    ];
    expect(statuses).toEqual([401, 200, 403]);
  });

  it('lists every endpoint podscope serves, and no other', async () => {
    const pod = testPod({ PODSCOPE_ENV: 'development' });
    const index = (await (await pod.app.request('/debug', {}, LOOPBACK)).json()) as { endpoints: Array<{ path: string; methods: string[] }> };
    const doc = await documentOf({ PODSCOPE_ENV: 'development' });
    const served = index.endpoints.flatMap((e) => e.methods.map((m) => `${m} ${e.path}`)).sort();
    const documented = Object.entries(doc.paths)
      .filter(([path]) => !path.includes('{'))
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    expect(documented).toEqual(served);
  });

  it('names each event type of /debug/events with the schema of its data', async () => {
    const doc = await documentOf();
    const events = Object.keys(doc.components.schemas).filter((k) => k.startsWith('Event_'));
    expect(events).toEqual(expect.arrayContaining(['Event_job_finished', 'Event_gpu_xid', 'Event_gap', 'Event_problem_started']));
  });
});

describe('an answer checked against the document', () => {
  async function statusAnswer() {
    const res = await testPod().app.request('/debug/status', {}, LOOPBACK);
    return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as Record<string, unknown> };
  }
  const check = (a: { status: number; type: string | null }, body: unknown) => mismatch('GET', 'http://pod/debug/status', a.status, a.type, JSON.stringify(body));

  it('passes as podscope gives it', async () => {
    const a = await statusAnswer();
    expect(check(a, a.body)).toBeNull();
  });

  it('fails when a field is renamed', async () => {
    const a = await statusAnswer();
    const { sampled_at, ...rest } = a.body;
    expect(check(a, { ...rest, sampled: sampled_at })).toMatch(/must have required property 'sampled_at'|must NOT have additional properties/);
  });

  it('fails when a field is dropped', async () => {
    const a = await statusAnswer();
    const { problems: _dropped, ...rest } = a.body;
    expect(check(a, rest)).toMatch(/must have required property 'problems'/);
  });

  it('fails when a field that is never null is null', async () => {
    const a = await statusAnswer();
    expect(check(a, { ...a.body, pod_id: null })).toMatch(/body\/pod_id must be string/);
  });

  it('fails when an error answer is not the error envelope', () => {
    expect(mismatch('GET', 'http://pod/debug/workflow?job_id=x', 404, 'application/json', JSON.stringify({ message: 'no such job' }))).toMatch(/must have required property 'error'/);
  });

  it('fails on a status the document does not give the endpoint', () => {
    expect(mismatch('GET', 'http://pod/health', 201, 'application/json', '{}')).toMatch(/which the document does not list/);
  });
});
