/**
 * Every test file: each answer a test fetches from podscope (it carries x-request-id; ComfyUI's
 * and the simulator's do not) is held to the OpenAPI document before the test sees it.
 */
import { checkAnswer } from './openapi.js';

const original = globalThis.fetch;

globalThis.fetch = async function checkedFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const res = await original(input, init);
  if (res.headers.has('x-request-id')) {
    const url = input instanceof Request ? input.url : String(input);
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
    await checkAnswer(method, url, res);
  }
  return res;
};
