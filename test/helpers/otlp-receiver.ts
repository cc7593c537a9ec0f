/**
 * An OTLP/HTTP trace receiver on loopback, like a collector's: it takes POST /v1/traces in
 * protobuf (decoded here from the wire format of opentelemetry-proto's trace.proto, written
 * independently of the exporter's encoder) or JSON, gzip or not, and keeps every span it got in
 * one shape for both.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { gunzipSync } from 'node:zlib';

export type AttrValue = string | number | boolean | null | AttrValue[];

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  /** ns since the epoch. */
  start: bigint;
  end: bigint;
  attributes: Record<string, AttrValue>;
  events: Array<{ name: string; time: bigint; attributes: Record<string, AttrValue> }>;
  status: { code: number; message: string };
  resource: Record<string, AttrValue>;
  scope: { name: string; version: string };
}

export interface ReceivedRequest {
  contentType: string;
  encoding: string;
  headers: IncomingMessage['headers'];
  spans: ReceivedSpan[];
}

export interface Receiver {
  url: string;
  requests: ReceivedRequest[];
  spans(): ReceivedSpan[];
  /** What the next requests are answered: a status code, or `hang` (never answered). */
  answer: number | 'hang';
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const hanging = new Set<IncomingMessage>();
  const receiver: Receiver = {
    url: '',
    requests,
    spans: () => requests.flatMap((r) => r.spans),
    answer: 200,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (receiver.answer === 'hang') {
        hanging.add(req);
        return;
      }
      if (receiver.answer !== 200) {
        res.writeHead(receiver.answer).end();
        return;
      }
      let body = Buffer.concat(chunks);
      const encoding = String(req.headers['content-encoding'] ?? '');
      if (encoding === 'gzip') body = gunzipSync(body);
      const contentType = String(req.headers['content-type'] ?? '');
      const spans = contentType.includes('json') ? fromJson(JSON.parse(body.toString('utf8'))) : fromProtobuf(body);
      requests.push({ contentType, encoding, headers: req.headers, spans });
      res.writeHead(200, { 'content-type': contentType.includes('json') ? 'application/json' : 'application/x-protobuf' }).end(contentType.includes('json') ? '{}' : undefined);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  receiver.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return receiver;
}

// ── protobuf wire format ───────────────────────────────────────────────────────────────────────

type Field = { n: number; wire: number; varint?: bigint; bytes?: Buffer; fixed64?: Buffer; fixed32?: Buffer };

function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let i = 0;
  const varint = (): bigint => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[i++]!;
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const n = key >> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ n, wire, varint: varint() });
    else if (wire === 1) out.push({ n, wire, fixed64: buf.subarray(i, (i += 8)) });
    else if (wire === 2) {
      const len = Number(varint());
      out.push({ n, wire, bytes: buf.subarray(i, (i += len)) });
    } else if (wire === 5) out.push({ n, wire, fixed32: buf.subarray(i, (i += 4)) });
    else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

const str = (f: Field | undefined) => f?.bytes?.toString('utf8') ?? '';
const hex = (f: Field | undefined) => f?.bytes?.toString('hex') ?? '';
const one = (fs: Field[], n: number) => fs.find((f) => f.n === n);
const many = (fs: Field[], n: number) => fs.filter((f) => f.n === n);

function anyValue(buf: Buffer): AttrValue {
  const f = fields(buf)[0];
  if (!f) return null;
  switch (f.n) {
    case 1:
      return str(f);
    case 2:
      return f.varint === 1n;
    case 3:
      return Number(BigInt.asIntN(64, f.varint!));
    case 4:
      return f.fixed64!.readDoubleLE(0);
    case 5:
      return many(fields(f.bytes!), 1).map((v) => anyValue(v.bytes!));
    default:
      return null;
  }
}

function keyValues(fs: Field[]): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const kv of fs) {
    const parts = fields(kv.bytes!);
    const value = one(parts, 2);
    out[str(one(parts, 1))] = value ? anyValue(value.bytes!) : null;
  }
  return out;
}

function fromProtobuf(body: Buffer): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const rs of many(fields(body), 1)) {
    const rsf = fields(rs.bytes!);
    const resourceField = one(rsf, 1);
    const resource = resourceField ? keyValues(many(fields(resourceField.bytes!), 1)) : {};
    for (const ss of many(rsf, 2)) {
      const ssf = fields(ss.bytes!);
      const scopeField = one(ssf, 1);
      const sf = scopeField ? fields(scopeField.bytes!) : [];
      const scope = { name: str(one(sf, 1)), version: str(one(sf, 2)) };
      for (const s of many(ssf, 2)) {
        const f = fields(s.bytes!);
        const statusField = one(f, 15);
        const st = statusField ? fields(statusField.bytes!) : [];
        spans.push({
          traceId: hex(one(f, 1)),
          spanId: hex(one(f, 2)),
          parentSpanId: hex(one(f, 4)),
          name: str(one(f, 5)),
          kind: Number(one(f, 6)?.varint ?? 0n),
          start: one(f, 7)?.fixed64?.readBigUInt64LE(0) ?? 0n,
          end: one(f, 8)?.fixed64?.readBigUInt64LE(0) ?? 0n,
          attributes: keyValues(many(f, 9)),
          events: many(f, 11).map((e) => {
            const ef = fields(e.bytes!);
            return { time: one(ef, 1)?.fixed64?.readBigUInt64LE(0) ?? 0n, name: str(one(ef, 2)), attributes: keyValues(many(ef, 3)) };
          }),
          status: { message: str(one(st, 2)), code: Number(one(st, 3)?.varint ?? 0n) },
          resource,
          scope,
        });
      }
    }
  }
  return spans;
}

// ── JSON ───────────────────────────────────────────────────────────────────────────────────────

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

function jsonValue(v: Json): AttrValue {
  if (!v) return null;
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return Number(v.doubleValue);
  if ('arrayValue' in v) return (v.arrayValue.values ?? []).map(jsonValue);
  return null;
}

function jsonAttributes(list: Json[] | undefined): Record<string, AttrValue> {
  return Object.fromEntries((list ?? []).map((kv: Json) => [kv.key, jsonValue(kv.value)]));
}

function fromJson(body: Json): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const rs of body.resourceSpans ?? []) {
    const resource = jsonAttributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      const scope = { name: ss.scope?.name ?? '', version: ss.scope?.version ?? '' };
      for (const s of ss.spans ?? []) {
        spans.push({
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId ?? '',
          name: s.name,
          kind: s.kind ?? 0,
          start: BigInt(s.startTimeUnixNano),
          end: BigInt(s.endTimeUnixNano),
          attributes: jsonAttributes(s.attributes),
          events: (s.events ?? []).map((e: Json) => ({ name: e.name, time: BigInt(e.timeUnixNano), attributes: jsonAttributes(e.attributes) })),
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
          resource,
          scope,
        });
      }
    }
  }
  return spans;
}

/** A span's start or end as ms since the epoch. */
export const ms = (ns: bigint) => Number(ns / 1000n) / 1000;
