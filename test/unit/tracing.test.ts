/** Request ids and W3C trace context (https://www.w3.org/TR/trace-context/), as podscope reads and makes them. */
import { describe, expect, it } from 'vitest';
import { newSpanId, newTraceId, newUuid, parseTraceparent, requestIdFrom, traceFrom } from '../../src/http/tracing.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

describe('reading a traceparent', () => {
  it('takes a version-00 header with its trace and parent ids', () => {
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-01`)).toEqual({ traceId: TRACE, spanId: SPAN });
  });

  it('ignores surrounding whitespace', () => {
    expect(parseTraceparent(`  00-${TRACE}-${SPAN}-00 `)).toEqual({ traceId: TRACE, spanId: SPAN });
  });

  it('takes a later version by its known prefix, extra fields and all', () => {
    expect(parseTraceparent(`01-${TRACE}-${SPAN}-01-what-comes-next`)).toEqual({ traceId: TRACE, spanId: SPAN });
  });

  it.each([
    ['version ff', `ff-${TRACE}-${SPAN}-01`],
    ['version 00 with extra fields', `00-${TRACE}-${SPAN}-01-extra`],
    ['an all-zero trace id', `00-${'0'.repeat(32)}-${SPAN}-01`],
    ['an all-zero parent id', `00-${TRACE}-${'0'.repeat(16)}-01`],
    ['upper-case hex', `00-${TRACE.toUpperCase()}-${SPAN}-01`],
    ['a short trace id', `00-${TRACE.slice(1)}-${SPAN}-01`],
    ['garbage', 'not a traceparent'],
    ['nothing', ''],
  ])('rejects %s', (_name, header) => {
    expect(parseTraceparent(header)).toBeNull();
  });
});

describe('the trace context of a request', () => {
  it('continues the caller trace when its traceparent is valid', () => {
    expect(traceFrom(`00-${TRACE}-${SPAN}-01`)).toEqual({ traceId: TRACE, spanId: SPAN, propagated: true });
  });

  it('starts a trace of its own otherwise', () => {
    const t = traceFrom('garbage');
    expect(t.propagated).toBe(false);
    expect(t.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(t.spanId).toMatch(/^[0-9a-f]{16}$/);
  });

  it('makes ids that differ every time and are never all zeros, across pool refills', () => {
    const traces = new Set<string>();
    const spans = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      traces.add(newTraceId());
      spans.add(newSpanId());
    }
    expect(traces.size).toBe(2000);
    expect(spans.size).toBe(2000);
    expect([...traces, ...spans].some((id) => /^0+$/.test(id))).toBe(false);
  });
});

describe('request ids', () => {
  it('echoes a well-formed X-Request-Id', () => {
    expect(requestIdFrom('harness-42.a:b=c+d')).toBe('harness-42.a:b=c+d');
  });

  it.each([['with a space', 'a b'], ['with a tab', 'a\tb'], ['with markup', '<script>'], ['too long', 'x'.repeat(129)], ['empty', '']])('replaces one %s with a UUID', (_name, header) => {
    expect(requestIdFrom(header)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('makes a UUID when there is none', () => {
    expect(requestIdFrom(undefined)).not.toBe(requestIdFrom(undefined));
  });

  it('makes version 4 UUIDs of every variant nibble, all distinct, across pool refills', () => {
    const ids = new Set(Array.from({ length: 5000 }, () => newUuid()));
    expect(ids.size).toBe(5000);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set([...ids].map((id) => id[19])).size).toBe(4);
  });
});
