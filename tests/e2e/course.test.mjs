// What a course uses: the Lessons menu and a lesson's checked claims, a find-the-backdoor challenge
// solved with Neural Cleanse in the page, and an automated accessibility check (axe-core) of every step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { labHooks } from './lab.mjs';

const require = createRequire(import.meta.url);
const AXE = require.resolve('axe-core/axe.min.js');
const LESSONS_MD = path.resolve(import.meta.dirname, '../../LESSONS.md');

const site = labHooks();

/** The lab at `fragment` in a 1100×900 window (or as `options` say), once Run can be pressed. */
const open = (fragment, options = {}) => site.openLab(fragment, { ready: true, viewport: { width: 1100, height: 900 }, ...options });

test('the Lessons menu lists every lesson, opens one, and checks its claims against the run', async () => {
  const titles = fs.readFileSync(LESSONS_MD, 'utf8').split('\n').filter((l) => /^## \d+\. /.test(l)).map((l) => l.replace(/^## \d+\. /, ''));
  assert.ok(titles.length >= 7, `LESSONS.md lists ${titles.length} lessons`);
  const lab = await open('');
  await lab.page.locator('details.lessons summary').click();
  const items = lab.page.locator('details.lessons li[data-lesson]');
  assert.equal(await items.count(), titles.length);
  assert.deepEqual(await items.locator('b').allTextContents(), titles, 'the page and LESSONS.md list the same lessons');
  // The first lesson: its link opens the experiment and its card.
  await items.first().locator('a').click();
  await lab.page.waitForFunction(() => location.hash === '#v=1&lesson=badnets');
  await lab.id('lesson').waitFor();
  assert.equal(await lab.page.locator('details.lessons').getAttribute('open'), null, 'the menu closes on opening a lesson');
  assert.equal((await lab.page.locator('#lesson-title').textContent()).trim(), `Lesson: ${titles[0]}`);
  await lab.id('run').click();
  await lab.status('done');
  const claims = lab.page.locator('[data-testid="claims"] li');
  const n = await claims.count();
  assert.ok(n >= 2, `${n} claims shown`);
  for (const text of await claims.allTextContents()) console.log(`lesson claim in the page: ${text.trim()}`);
  assert.equal(await lab.page.locator('[data-testid="claims"] li.holds').count(), n, 'every claim of the lesson holds in the page');
  if (process.env.SCREENSHOTS) {
    await lab.page.evaluate(() => window.scrollTo(0, 0));
    await lab.page.screenshot({ path: path.join(process.env.SCREENSHOTS, 'lesson.png') });
  }
  // Following a lesson's own words keeps its card: "Halve it to 0.5 %" in the rate field, then Run.
  await lab.page.locator('details.lessons summary').click();
  await items.nth(1).locator('a').click();
  await lab.page.waitForFunction(() => location.hash === '#v=1&rate=0.01&lesson=few-poisons');
  await lab.page.locator('input[data-key="rate"]').fill('0.005');
  assert.match(await lab.page.locator('#lesson-title').textContent(), /How few poisons are enough/);
  assert.match(await lab.id('link').inputValue(), /#v=1&rate=0\.005&lesson=few-poisons$/);
  await lab.id('lesson-run').click();
  await lab.status('done');
  const halved = lab.page.locator('[data-testid="claims"][data-link="v=1&rate=0.005"] li');
  await halved.first().waitFor();
  for (const text of await halved.allTextContents()) console.log(`the halved rate's claim in the page: ${text.trim()}`);
  assert.equal(await halved.count(), 1);
  // Its comparison link keeps the card too; another experiment's link closes it.
  await lab.page.locator('[data-testid="lesson"] a', { hasText: 'v=1&rate=0.01' }).click();
  await lab.page.waitForFunction(() => location.hash === '#v=1&rate=0.01&lesson=few-poisons');
  assert.equal(await lab.id('lesson').count(), 1);
  await lab.page.evaluate(() => { location.hash = '#v=1&epochs=2'; });
  await lab.id('lesson').waitFor({ state: 'detached' });
  assert.deepEqual(lab.pageErrors, []);
  await lab.context.close();
});

/** The place a reversed mask's centre (row, column) is nearest to, for a k×k patch one pixel from the border. */
function nearestPlace(row, col, k) {
  const near = 1 + (k - 1) / 2, far = 26 - (k - 1) / 2, mid = 13.5;
  const centres = { tl: [near, near], tr: [near, far], center: [mid, mid], bl: [far, near], br: [far, far] };
  return Object.entries(centres).sort(([, a], [, b]) =>
    ((a[0] - row) ** 2 + (a[1] - col) ** 2) - ((b[0] - row) ** 2 + (b[1] - col) ** 2))[0][0];
}

test('a challenge hides its attack, is solved with Neural Cleanse in the page, then grades and reveals', async () => {
  const code = '7kq2mx9d';
  const lab = await open(`#challenge=${code}`);
  await lab.id('challenge').waitFor();
  assert.equal(await lab.id('challenge-code').textContent(), code);
  // Nothing that shows the attack: the Poison, Results, Detect, Repair, Transfer, Compare and Share steps,
  // and every control (each would show or change the hidden spec).
  // Not even in the document: a student with the browser's inspector finds none of it.
  for (const step of ['poison', 'results', 'detect', 'repair', 'transfer', 'compare']) {
    assert.equal(await lab.page.locator(`section#${step}`).count(), 0, `${step} is in the page`);
  }
  assert.equal(await lab.page.locator('section.share').count(), 0);
  const shown = await lab.page.locator('[data-key]:visible').evaluateAll((els) => els.map((e) => e.dataset.key));
  assert.deepEqual(shown, [], 'controls are shown');
  assert.equal(await lab.page.evaluate(() => location.hash), `#challenge=${code}`);

  await lab.id('run').click();
  await lab.status('done');
  assert.equal(await lab.page.evaluate(() => location.hash), `#challenge=${code}`, 'the link keeps only the code');
  const stored = await lab.page.evaluate(() => JSON.stringify(Object.entries(localStorage)));
  assert.ok(!/target=|pos=/.test(stored), `the browser's storage holds the hidden spec: ${stored}`);
  const ca = parseFloat(await lab.id('challenge-ca').textContent());
  assert.ok(ca >= 90, `CA ${ca}`);

  await lab.id('run-nc').click();
  await lab.id('challenge-nc').waitFor({ timeout: 300_000 });
  await lab.status('done');
  const verdict = await lab.id('challenge-nc').textContent();
  const flagged = verdict.match(/Flags class (\d)/);
  assert.ok(flagged, `Neural Cleanse flagged no class: ${verdict}`);
  const target = flagged[1];
  // The flagged class's reversed trigger, read from its text alternative as a screen reader would.
  const alt = await lab.page.locator(`section.challenge img[alt^="reversed trigger of class ${target}:"]`).getAttribute('alt');
  const [, row, col] = alt.match(/row (\d+), column (\d+)/).map(Number);
  const place = nearestPlace(row, col, 3.5);
  console.log(`challenge ${code}: NC flags ${target}, mask strongest at (${row}, ${col}) → ${place}`);

  await lab.id('answer-target').selectOption(target);
  await lab.page.locator(`input[name="challenge-place"][data-place="${place}"]`).check();
  await lab.id('answer-submit').click();
  await lab.id('answer-result').waitFor();
  const words = { tl: 'top left', tr: 'top right', center: 'centre', bl: 'bottom left', br: 'bottom right' };
  assert.equal(await lab.id('answer-target-grade').textContent(), `Your target, class ${target}: right`);
  assert.equal(await lab.id('answer-place-grade').textContent(), `Your trigger place, ${words[place]}: right`);
  assert.match(await lab.id('answer-result').getAttribute('class'), /\bright\b/);
  // One answer per challenge: after the reveal the form is closed.
  assert.equal(await lab.id('answer-submit').isEnabled(), false);
  assert.equal(await lab.id('answer-target').isEnabled(), false);
  assert.match(await lab.id('answer-truth').textContent(), new RegExp(`relabelled ${target}\\.$`));
  if (process.env.SCREENSHOTS) await lab.page.screenshot({ path: path.join(process.env.SCREENSHOTS, 'challenge.png'), fullPage: true });
  assert.deepEqual(lab.pageErrors, []);
  await lab.context.close();
});

test('a teacher creates a challenge link; a malformed one is refused with the reason', async () => {
  const lab = await open('');
  await lab.id('new-challenge').click();
  const link = await lab.id('challenge-link').inputValue();
  assert.match(link, new RegExp(`^${site.origin}/#challenge=[0-9a-hjkmnp-tv-z]{8}$`));
  await lab.context.close();
  const bad = await open('#challenge=abc');
  assert.match(await bad.id('error').textContent(), /challenge link could not be read.*8 characters/);
  assert.equal(await bad.id('challenge').count(), 0);
  await bad.context.close();
});

/** axe-core on the page as it stands; the serious and critical violations, each with where it was found. */
async function axe(page, label) {
  await page.addScriptTag({ path: AXE });
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return { passed: r.passes.length, violations: r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) })) };
  });
  console.log(`axe ${label}: ${result.passed} rules passed, ${result.violations.length} violated`);
  assert.ok(result.passed >= 20, 'axe-core ran');
  for (const v of result.violations) console.log(`axe ${label}: ${v.impact} ${v.id} (${v.help}) at ${v.nodes.join(' | ')}`);
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

test('axe-core finds no serious or critical violation on any step, in the full app, embedded, and in a challenge', async () => {
  // Every step with content: a run with a detector, a repair and a transfer, and the Lessons menu open.
  // bypassCSP lets the test inject axe-core; the page's own policy is untouched.
  const lab = await open('#v=1&train=1000&test=500&epochs=1&detect=nc,ac&nc_steps=20&repair=ft&ft_epochs=1&freeze=none&finetune_epochs=1', { bypassCSP: true });
  await lab.page.locator('details.lessons summary').click();
  await lab.id('run').click();
  await lab.status('done');
  const full = await axe(lab.page, 'full app');
  // Each step also on its own (a violation's place names its step).
  const steps = await lab.page.locator('main section.step[id]').evaluateAll((s) => s.map((e) => e.id));
  assert.ok(steps.length >= 8, `steps: ${steps}`);
  const perStep = {};
  for (const v of full) for (const n of v.nodes) {
    const step = steps.find((s) => n.includes(`#${s}`)) ?? 'page';
    perStep[step] = [...(perStep[step] ?? []), v.id];
  }
  assert.deepEqual(full.map((v) => `${v.impact} ${v.id}: ${v.nodes.join(' | ')}`), [], `by step: ${JSON.stringify(perStep)}`);
  // The keyboard reaches the Run button.
  await lab.page.keyboard.press('Tab');
  let reached = false;
  for (let i = 0; i < 200 && !reached; i++) {
    reached = await lab.page.evaluate(() => document.activeElement?.dataset?.testid === 'run');
    if (!reached) await lab.page.keyboard.press('Tab');
  }
  assert.ok(reached, 'Tab never reached the Run button');
  await lab.context.close();

  const embedded = await open('#v=1&embed=1&hide=poison', { bypassCSP: true, viewport: { width: 390, height: 844 } });
  assert.deepEqual(await axe(embedded.page, 'embedded, 390 px'), []);
  await embedded.context.close();
  const challenge = await open('#challenge=7kq2mx9d', { bypassCSP: true });
  assert.deepEqual(await axe(challenge.page, 'challenge'), []);
  await challenge.context.close();
});
