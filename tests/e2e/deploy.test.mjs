// The site as it is deployed and used in a course: served by a plain static server under a sub-path
// (/backdoor-lab/, as a GitHub project site), embedded with embed=1&hide=... in an iframe of a course
// page on another origin. An experiment runs inside the iframe; hidden controls stay hidden; nothing is
// requested from anywhere but the two origins; "Open in a new tab" opens the full app on the same
// experiment.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { servePage } from './serve.mjs';
import { labHooks, waitForRun } from './lab.mjs';

const PREFIX = '/backdoor-lab/';
const SPEC = 'v=1&seed=1&train=2000&test=500&epochs=2';
let course;
// The app under its folder, and Chromium; then the course page, which needs the app's origin.
const site = labHooks({
  prefix: PREFIX,
  setup: async () => {
    const src = `${site.origin}${PREFIX}#${SPEC}&embed=1&hide=poison,lr`;
    course = await servePage(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ML security, week 3</title>
<style>body { font: 16px system-ui; margin: 0 16px; } iframe { width: 100%; height: 1400px; border: 1px solid #ccc; }</style></head>
<body><h1>Week 3: backdoors</h1><p>Run the experiment below, then answer the questions.</p>
<iframe title="Backdoor Lab" src="${src}"></iframe></body></html>`);
  },
});

after(() => {
  course?.server.close();
});

test('embedded in a course page on another origin, from a sub-path: runs, hides, stays home, opens in a new tab', async () => {
  assert.notEqual(new URL(site.origin).origin, new URL(course.origin).origin);
  const context = await site.browser.newContext({ viewport: { width: 800, height: 900 } });
  const requests = [];
  context.on('request', (r) => requests.push(r.url()));
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(course.origin);
  const lab = page.frameLocator('iframe[title="Backdoor Lab"]');
  const id = (t) => lab.locator(`[data-testid="${t}"]`);
  await waitForRun(lab);

  // Embed mode: no title or sharing panel; the hidden section and control are gone, their neighbours are not.
  assert.equal(await lab.locator('header.top').count(), 0);
  assert.ok(await lab.locator('section.share').isHidden());
  assert.ok(await lab.locator('section#poison').isHidden());
  assert.equal(await lab.locator('[data-key="lr"]').count(), 0);
  assert.equal(await lab.locator('[data-key="epochs"]').count(), 1);
  assert.ok(await lab.locator('section#train').isVisible());

  await id('run').click();
  await lab.locator('[data-testid="status"]', { hasText: /^done$/ }).waitFor({ timeout: 300_000 });
  const ca = parseFloat(await id('clean-acc').textContent());
  const asr = parseFloat(await id('asr').textContent());
  console.log(`in the iframe: CA ${ca} %, ASR ${asr} %`);
  assert.ok(ca >= 85, `CA ${ca}`);
  assert.ok(asr >= 0 && asr <= 100, `ASR ${asr}`);

  if (process.env.SCREENSHOTS) {
    // The course page and the top of the embedded app (its status bar and "Open in a new tab").
    const frame = page.frames().find((f) => f.url().startsWith(site.origin));
    await frame.evaluate(() => window.scrollTo(0, 0));
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(process.env.SCREENSHOTS, 'embed-800.png'), fullPage: false });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: path.join(process.env.SCREENSHOTS, 'embed-390.png'), fullPage: false });
    await page.setViewportSize({ width: 800, height: 900 });
  }

  // Every request went to the course page or to the app under its sub-path: fonts, scripts, wasm, data
  // and the worker all resolved relative to /backdoor-lab/.
  const foreign = requests.filter((u) => !u.startsWith('data:') && !u.startsWith('blob:')
    && !(u === `${course.origin}/`) && !u.startsWith(`${site.origin}${PREFIX}`));
  assert.deepEqual(foreign, [], 'requests outside the course page and the app folder');
  assert.ok(requests.some((u) => u.endsWith('.wasm')) && requests.some((u) => u.includes('/data/')), 'the app loaded its files');

  // "Open in a new tab": the full app (title, every step, the sharing panel) on the same experiment.
  const open = id('open-full');
  const href = await open.getAttribute('href');
  assert.equal(await open.getAttribute('target'), '_blank');
  assert.ok(href.startsWith(`${site.origin}${PREFIX}#`), href);
  assert.ok(!/[#&](embed|hide)=/.test(href), `the full app's link keeps embed or hide: ${href}`);
  const [full] = await Promise.all([context.waitForEvent('page'), open.click()]);
  await waitForRun(full);
  assert.equal(await full.locator('header.top').count(), 1);
  assert.ok(await full.locator('section#poison').isVisible());
  assert.ok(await full.locator('section.share').isVisible());
  assert.equal(await full.locator('[data-key="lr"]').count(), 1);
  const fullLink = await full.locator('[data-testid="link"]').inputValue();
  const inFrame = new URL(href).hash;
  assert.equal(new URL(fullLink).hash, inFrame, 'the new tab holds the embedded experiment');
  assert.equal(decodeURIComponent(inFrame), `#${SPEC}`);
  assert.deepEqual(errors, []);
  await context.close();
});

test('the bare folder name redirects into the app, and nothing outside the folder is served', async () => {
  const res = await fetch(`${site.origin}${PREFIX.slice(0, -1)}`, { redirect: 'manual' });
  assert.equal(res.status, 301);
  assert.equal(res.headers.get('location'), PREFIX);
  assert.equal((await fetch(`${site.origin}/index.html`)).status, 404);
  assert.equal((await fetch(`${site.origin}${PREFIX}`)).status, 200);
});
