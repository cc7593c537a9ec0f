/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The page (GET /) in a real browser: Debian's chromium driven by puppeteer-core, against the
 * demo (the simulated ComfyUI, two fake GPUs answering from the real H200 capture, a workload
 * with an OOM every ten jobs) with a token set, so the browser logs in first.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { DEMO_JOB_KINDS, demoJobId, startDemo, type Demo } from '../../src/demo.js';
import { until } from '../helpers/wait.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const TOKEN = 'page-token-0123456789abcdef';
/** The demo's first job that runs out of GPU memory. */
const OOM_JOB = demoJobId(DEMO_JOB_KINDS.oom);

// CI installs Debian's chromium; a developer machine without it skips, CI never does.
describe.skipIf(!CHROMIUM && !process.env.CI)('the page in a real browser', () => {
  let demo: Demo;
  let browser: Browser;
  let page: Page;
  let base: string;
  const consoleErrors: string[] = [];
  const foreign: string[] = [];
  /** Answers of 400 or more the browser got (the wrong token's 401 is expected, and cleared). */
  const failures: string[] = [];

  beforeAll(async () => {
    demo = await startDemo({ env: { PODSCOPE_PORT: '0', PODSCOPE_HOST: '127.0.0.1', PODSCOPE_TOKEN: TOKEN, LOG_LEVEL: 'silent' }, gpus: 2, stepMs: 120, quiet: true });
    base = demo.url.replace(/\/$/, '');
    if (!CHROMIUM) throw new Error('chromium is not installed (apt-get install chromium)');
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 1000 });
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    page.on('response', (r) => {
      if (r.status() >= 400) failures.push(`${r.status()} ${r.request().method()} ${r.url()}`);
    });
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (!['data:', 'blob:'].includes(u.protocol) && u.host !== new URL(base).host) foreign.push(r.url());
    });
  }, 60_000);

  /** Focuses a job's button in one step inside the page, so a redraw cannot come between. */
  const focusJob = (id: string) =>
    until(() =>
      page.evaluate((sel) => {
        const b = document.querySelector<HTMLElement>(sel);
        b?.focus();
        return b !== null && document.activeElement === b;
      }, `#jobs tr[data-job="${id}"] button`),
    );

  afterAll(async () => {
    await browser?.close();
    await demo?.close();
  });

  it('sends a browser without a session to the login page, and refuses a wrong token there', async () => {
    await page.goto(`${base}/`, { waitUntil: 'domcontentloaded' });
    expect(new URL(page.url()).pathname).toBe('/login');
    await page.type('input[name=token]', 'not-the-token');
    await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), page.click('button[type=submit]')]);
    expect(await page.$eval('[role=alert]', (e) => e.textContent)).toMatch(/not the pod’s PODSCOPE_TOKEN/);
    expect(failures).toEqual([`401 POST ${base}/login`]);
    failures.length = 0;
    consoleErrors.length = 0;
  });

  it('logs in with the token and opens the page, the token nowhere in it', async () => {
    await page.type('input[name=token]', TOKEN);
    await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), page.click('button[type=submit]')]);
    expect(new URL(page.url()).pathname).toBe('/');
    expect(page.url()).not.toContain(TOKEN);
    expect(await page.content()).not.toContain(TOKEN);
    const cookies = await browser.cookies();
    const session = cookies.find((c) => c.name === 'podscope_session')!;
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
  });

  it('shows the pod’s status and a card per GPU from the fake nvidia-smi, with charts', async () => {
    await page.waitForFunction(() => document.querySelectorAll('article.gpu').length === 2, { timeout: 20_000 });
    expect(await page.$eval('#pod-status', (e) => e.textContent)).toMatch(/^(idle|processing|degraded|starting)$/);
    const titles = await page.$$eval('article.gpu h3', (hs) => hs.map((h) => h.textContent));
    expect(titles).toEqual(['GPU 0 · NVIDIA H200', 'GPU 1 · NVIDIA H200']);
    await page.waitForFunction(() => document.querySelectorAll('article.gpu canvas').length >= 8, { timeout: 20_000 });
  });

  it('links to the OpenAPI document, which the session opens', async () => {
    const href = await page.$eval('a#api', (a) => (a as HTMLAnchorElement).href);
    expect(new URL(href).pathname).toBe('/openapi.json');
    const doc = await page.evaluate(async (url) => (await fetch(url)).json(), href);
    expect(doc.openapi).toBe('3.1.0');
  });

  it('advances the running job’s steps without a reload', async () => {
    const steps = async () => page.$$eval('#job td.steps', (tds) => tds.map((t) => t.textContent).join(','));
    await page.waitForFunction(() => [...document.querySelectorAll('#job td.steps')].some((t) => /^\d+\/\d+$/.test(t.textContent ?? '') && !/^(\d+)\/\1$/.test(t.textContent ?? '')), { timeout: 30_000 });
    const first = await steps();
    await until(async () => (await steps()) !== first || null, 30_000);
  }, 60_000);

  it('opens an OOM job from the recent jobs, with its error and forensics', async () => {
    // Opened while it may still be queued: the detail follows the job to its end.
    await page.waitForSelector(`#jobs tr[data-job="${OOM_JOB}"] button`, { timeout: 60_000 });
    // A locator clicks the button as it is now: the list may be redrawn between finding it and clicking.
    await page.locator(`#jobs tr[data-job="${OOM_JOB}"] button`).click();
    await page.waitForSelector('#detail:not([hidden])', { timeout: 10_000 });
    await page.waitForSelector('#detail:not([hidden]) .job-error', { timeout: 60_000 }).catch(async (e) => {
      throw new Error(`${e.message}; answers over 400: ${failures.join(', ')}; console: ${consoleErrors.join(' | ')}; detail: ${await page.$eval('#detail', (d) => d.outerHTML.slice(0, 1500))}; live: ${await page.$eval('#live', (d) => d.textContent)}`);
    });
    // The log's OOM line may come before ComfyUI's record of the error: the detail follows.
    await page.waitForFunction(() => /OutOfMemoryError/.test(document.querySelector('#detail .job-error')?.textContent ?? ''), { timeout: 60_000 }).catch(async (e) => {
      const api = await (await fetch(`${base}/debug/workflow?job_id=${OOM_JOB}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json();
      throw new Error(`${e.message}; api: ${JSON.stringify(api).slice(0, 300)}; live: ${await page.$eval('#live', (d) => d.textContent)}; detail: ${await page.$eval('#detail-body', (d) => d.textContent?.slice(0, 300))}`);
    });
    expect(await page.$eval('#detail .forensics', (e) => e.textContent)).toMatch(/"oom": true/);
    await page.keyboard.press('Escape');
    expect(await page.$eval('#detail', (e) => (e as HTMLElement).hidden)).toBe(true);
  }, 120_000);

  it('keeps the keyboard on a job while the list of jobs is redrawn', async () => {
    await page.waitForSelector('#jobs tr[data-job="job_0002"] button', { timeout: 60_000 });
    await focusJob('job_0002');
    // The demo keeps running jobs, so the list is redrawn; the focused button is then a new node.
    await page.evaluate(() => ((document.activeElement as HTMLElement & { stale?: boolean }).stale = true));
    await page.waitForFunction(() => !(document.querySelector('#jobs tr[data-job="job_0002"] button') as (HTMLElement & { stale?: boolean }) | null)?.stale, { timeout: 60_000 });
    expect(await page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.open)).toBe('job_0002');
  }, 90_000);

  it('opens a job from the keyboard, and closes it with Escape', async () => {
    await page.waitForSelector('#jobs tr[data-job="job_0002"] button', { timeout: 60_000 });
    await focusJob('job_0002');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.getElementById('detail-id')?.textContent === 'job_0002' && !document.getElementById('detail')!.hidden, { timeout: 10_000 });
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('detail');
    await page.keyboard.press('Escape');
    expect(await page.$eval('#detail', (e) => (e as HTMLElement).hidden)).toBe(true);
  }, 90_000);

  it('tails the log', async () => {
    await page.waitForFunction(() => (document.getElementById('log')?.childNodes.length ?? 0) > 0, { timeout: 20_000 });
  });

  it('shows a row per ComfyUI with its GPU, and shows one instance’s jobs when it is chosen', async () => {
    await page.waitForFunction(() => document.querySelectorAll('#instances tr[data-instance]').length === 2, { timeout: 20_000 });
    const rows = await page.$$eval('#instances tr[data-instance]', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].slice(0, 3).map((td) => td.textContent)));
    expect(rows.map(([name, , gpu]) => [name, gpu])).toEqual([
      ['gpu0', 'GPU 0'],
      ['gpu1', 'GPU 1'],
    ]);
    await page.waitForFunction(() => new Set([...document.querySelectorAll('#jobs tr[data-job] td:nth-child(2)')].map((td) => td.textContent)).size === 2, { timeout: 30_000 });
    await page.select('#instance', 'gpu1');
    await page.waitForFunction(() => {
      const cells = [...document.querySelectorAll('#jobs tr[data-job] td:nth-child(2)')].map((td) => td.textContent);
      return cells.length > 0 && cells.every((c) => c === 'gpu1');
    }, { timeout: 20_000 });
    await page.select('#instance', '');
    await page.waitForFunction(() => new Set([...document.querySelectorAll('#jobs tr[data-job] td:nth-child(2)')].map((td) => td.textContent)).size === 2, { timeout: 20_000 });
  }, 60_000);

  it('reads at a glance at 1400 px: GPU cards side by side, each value on one line with its unit, no node duration a bare dash, times in UTC', async () => {
    await page.waitForFunction(() => document.querySelectorAll('article.gpu canvas').length >= 8, { timeout: 20_000 });
    const layout = await page.evaluate(() => {
      const cards = [...document.querySelectorAll<HTMLElement>('article.gpu')];
      const values = [...document.querySelectorAll<HTMLElement>('article.gpu .v')];
      const durations = [...document.querySelectorAll<HTMLElement>('#job td:nth-child(5)')].map((td) => td.textContent ?? '');
      const times = [...document.querySelectorAll<HTMLElement>('time')].map((t) => t.textContent ?? '');
      return {
        tops: cards.map((c) => c.getBoundingClientRect().top),
        width: cards[0]!.getBoundingClientRect().width,
        valueLines: values.map((v) => v.getClientRects().length),
        durations,
        times,
      };
    });
    expect(new Set(layout.tops).size).toBe(1);
    expect(layout.width).toBeGreaterThan(500);
    expect(layout.valueLines.every((n) => n === 1)).toBe(true);
    expect(layout.durations.length).toBeGreaterThan(0);
    expect(layout.durations.filter((d) => d.trim() === '–' || d.trim() === '')).toEqual([]);
    expect(layout.times.length).toBeGreaterThan(0);
    expect(layout.times.every((t) => /^\d\d:\d\d:\d\d UTC$/.test(t))).toBe(true);
    mkdirSync('test-results', { recursive: true });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: 'test-results/page-1400.png' });
  }, 40_000);

  it('fits a 390 px phone without scrolling sideways', async () => {
    await page.setViewport({ width: 390, height: 844, isMobile: true, deviceScaleFactor: 2 });
    try {
      await page.waitForFunction(() => document.querySelectorAll('article.gpu').length === 2, { timeout: 20_000 });
      const { scroll, cardsStacked } = await page.evaluate(() => {
        const cards = [...document.querySelectorAll<HTMLElement>('article.gpu')].map((c) => c.getBoundingClientRect());
        return { scroll: document.documentElement.scrollWidth, cardsStacked: cards[1]!.top > cards[0]!.top };
      });
      expect(scroll).toBeLessThanOrEqual(390);
      expect(cardsStacked).toBe(true);
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: 'test-results/page-390.png' });
    } finally {
      await page.setViewport({ width: 1400, height: 1000 });
    }
  }, 40_000);

  it('made no request to another host and logged no console error; a screenshot is kept', async () => {
    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/page.png', fullPage: true });
    expect(foreign).toEqual([]);
    expect(failures).toEqual([]);
    expect(consoleErrors, consoleErrors.join('\n')).toEqual([]);
  });

  it('logs out: the session ends and the page asks for the token again', async () => {
    await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), page.click('#logout button')]);
    expect(new URL(page.url()).pathname).toBe('/login');
    expect((await browser.cookies()).find((c) => c.name === 'podscope_session')).toBeUndefined();
    await page.goto(`${base}/`, { waitUntil: 'domcontentloaded' });
    expect(new URL(page.url()).pathname).toBe('/login');
  });
});
