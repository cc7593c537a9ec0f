/**
 * Query-string validation: every parameter a route reads is checked with zod, and a bad one
 * answers 400 with the envelope naming the parameter and what it accepts. Unknown parameters are
 * ignored; a parameter given twice counts by its first value.
 */
import { z } from 'zod';
import type { Context } from 'hono';
import { ApiError } from './errors.js';

/** `format=json|text`: JSON, or the text view curl users read. */
export const formatParam = z.enum(['json', 'text'], { message: 'must be json or text' });

export const jobIdParam = z
  .string()
  .min(1, { message: 'must not be empty' })
  .max(200, { message: 'must be at most 200 characters' })
  .regex(/^[\x21-\x7e]+$/, { message: 'must be printable ASCII without spaces' });

/** A route's query parameters, compiled once (building a zod schema per request is costly). */
export interface QuerySpec<T extends z.ZodRawShape> {
  keys: string[];
  schema: z.ZodObject<T>;
}

export function querySpec<T extends z.ZodRawShape>(shape: T): QuerySpec<T> {
  return { keys: Object.keys(shape), schema: z.object(shape) };
}

export function parseQuery<T extends z.ZodRawShape>(c: Context, spec: QuerySpec<T>): z.infer<z.ZodObject<T>> {
  const raw: Record<string, string> = {};
  let any = false;
  for (const key of spec.keys) {
    const v = c.req.query(key);
    if (v !== undefined) {
      raw[key] = v;
      any = true;
    }
  }
  const r = spec.schema.safeParse(any ? raw : {});
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const parameter = String(issue.path[0] ?? 'query');
  throw new ApiError(400, 'INVALID_PARAMETER', `${parameter} ${issue.message}.`, {
    details: { parameter, problem: issue.message },
    help: 'GET /debug lists each endpoint; see docs/api.md for the parameters it takes.',
  });
}

/**
 * An integer query parameter from `min` to `max`, with one sentence for every way to get it wrong
 * (letters, a sign, a fraction, or more digits than any integer podscope takes).
 */
export function intParam(min: number, max: number) {
  const message = `must be an integer from ${min} to ${max}`;
  return z
    .string()
    .regex(/^\d{1,15}$/, { message })
    .transform(Number)
    .pipe(z.number().int().min(min, { message }).max(max, { message }));
}

/** `instance=NAME`: which ComfyUI instance; checked against the names there are by {@link pickInstance}. */
export const instanceParam = z.string().min(1, { message: 'must not be empty' }).max(100, { message: 'must be at most 100 characters' });

/** /ready's parameters. */
export const readyQuery = querySpec({ instance: instanceParam.optional() });

/** The instance `name` names, or a 400 that lists the names there are. */
export function pickInstance<C extends { name: string }>(instances: { byName(name: string): C | undefined; names(): string[] }, name: string): C {
  const found = instances.byName(name);
  if (found) return found;
  const names = instances.names();
  throw new ApiError(400, 'INVALID_PARAMETER', `instance must name a ComfyUI instance podscope follows: ${names.join(', ')}.`, {
    details: { parameter: 'instance', problem: 'no such instance', instances: names },
  });
}
