// What every browser test shares: the built page served and Chromium launched for a test file (node:test
// hooks), the lab page opened in a fresh browser context with what it logs and requests recorded, and the
// waits for the Run button and the status line.
import { before, after } from 'node:test';
import { chromium } from 'playwright-core';
import { serveDist, BASE_ARGS } from './serve.mjs';

/** The Run button once it can be pressed: the worker is ready and every field holds a valid value. */
export const RUN_READY = '[data-testid="run"]:not([disabled])';

/**
 * Waits until the Run button can be pressed, in a page, a frame, or a frame locator (an iframe's
 * document, which has no waitForSelector).
 */
export function waitForRun(target, timeout = 120_000) {
  return target.waitForSelector ? target.waitForSelector(RUN_READY, { timeout }) : target.locator(RUN_READY).waitFor({ timeout });
}

/** Waits until the status line reads `s` (done, running, failed, cancelled…). */
export function waitForStatus(page, s, timeout = 300_000) {
  return page.waitForFunction(
    (want) => document.querySelector('[data-testid="status"]')?.textContent === want, s, { timeout });
}

/** A site before it is started: dist/ not yet served, no browser yet. */
function newSite(prefix, args) {
  const site = {
    /** Filled in by start(): the Chromium, the dist/ server and its origin (http://127.0.0.1:port). */
    browser: undefined, server: undefined, origin: undefined,
    /** The folder the app is served under: '/' or, say, '/backdoor-lab/'. */
    prefix,
    /** Opens the lab page at `fragment` (see openLab). */
    openLab: (fragment, options) => openLab(site, fragment, options),
    async start() {
      ({ server: site.server, origin: site.origin } = await serveDist({ prefix }));
      site.browser = await chromium.launch({
        executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
        args: [...BASE_ARGS, ...args],
        // playwright gives every launch a fresh, temporary profile (--user-data-dir).
      });
    },
    async close() {
      await site.browser?.close();
      site.server?.close();
    },
  };
  return site;
}

/**
 * Registers a test file's `before` and `after` hooks: before its tests, `check()` if given (what the file
 * needs besides the page; if it throws, nothing is served or launched), then dist/ is served (under
 * `prefix`) and Chromium launched with BASE_ARGS and `args`, then `setup(site)` if given (what the file
 * serves besides); after them, the browser and the server are closed. Returns the site, whose browser,
 * server and origin are filled in once `before` has run (read them inside tests and hooks).
 */
export function labHooks({ prefix = '/', args = [], check, setup } = {}) {
  const site = newSite(prefix, args);
  // One hook: node:test runs a file's later `before` hooks even when an earlier one failed.
  before(async () => {
    await check?.();
    await site.start();
    await setup?.(site);
  });
  after(() => site.close());
  return site;
}

/** The same as labHooks, without node:test (for a script): the site is started now; close() it when done. */
export async function startLab({ prefix = '/', args = [] } = {}) {
  const site = newSite(prefix, args);
  await site.start();
  return site;
}

/**
 * A page object: the lab page at `fragment` (a fragment like '#v=1&epochs=3', or '' for the defaults;
 * a leading '/' is the app's folder itself and is dropped) in a fresh browser context, recording:
 *  - requests: the URL of every request the page made;
 *  - consoleErrors: the text of every console error; consoleLogs: every console message, "type: text";
 *  - pageErrors: the message of every uncaught exception.
 * Options:
 *  - ready: wait for the Run button before returning (else call lab.ready());
 *  - longTasks: record the main thread's long tasks from the first script on (read with lab.longTasks());
 *  - prepare(context): run on the new context before its page opens (routes, say);
 *  - anything else is an option of browser.newContext (viewport, acceptDownloads, bypassCSP…).
 */
export async function openLab(site, fragment, { ready = false, longTasks = false, prepare, ...contextOptions } = {}) {
  const context = await site.browser.newContext(contextOptions);
  await prepare?.(context);
  const page = await context.newPage();
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  const consoleErrors = [];
  const consoleLogs = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
    consoleLogs.push(`${m.type()}: ${m.text()}`);
  });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  if (longTasks) {
    await page.addInitScript(() => {
      window.__longTasks = [];
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) window.__longTasks.push({ start: e.startTime, duration: e.duration });
      }).observe({ type: 'longtask', buffered: true });
    });
  }
  await page.goto(`${site.origin}${site.prefix}${fragment.replace(/^\//, '')}`);
  if (ready) await waitForRun(page);
  const id = (t) => page.locator(`[data-testid="${t}"]`);
  return {
    page, context, requests, consoleErrors, consoleLogs, pageErrors, id,
    text: async (t) => (await id(t).textContent()).trim(),
    ready: () => waitForRun(page),
    status: (s, timeout) => waitForStatus(page, s, timeout),
    hash: () => page.evaluate(() => decodeURIComponent(location.hash)),
    now: () => page.evaluate(() => performance.now()),
    longTasks: () => {
      if (!longTasks) throw new Error('long tasks are recorded only when the page is opened with { longTasks: true }');
      return page.evaluate(() => window.__longTasks);
    },
  };
}
