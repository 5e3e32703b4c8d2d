// End-to-end tests of the deployment-time defenses in headless Chromium: an input sanitizer chosen in
// the Repair step shows test images before and after it, goes into the link, and a run measures the
// model through it with the raw figures beside.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labHooks, waitForStatus } from './lab.mjs';

const { openLab } = labHooks();

test('an input sanitizer is chosen in the page, previewed, in the link, and measured after a run', async () => {
  const { page, context, consoleErrors: errors } = await openLab('#v=1&train=2000&test=500&epochs=2&seed=3', { ready: true });
  const panel = page.locator('[data-testid="sanitize-panel"]');
  assert.equal(await panel.locator('[data-testid="sanitized"]').count(), 0, 'no preview while off');
  assert.equal(await panel.locator('[data-key="sanitize_k"]').count(), 0, 'no strength while off');
  await panel.locator('select[data-key="sanitize"]').selectOption('median');
  await page.waitForFunction(() => location.hash.includes('sanitize=median'));
  assert.match(await panel.textContent(), /Xu et al\., NDSS 2018/);
  assert.equal(await panel.locator('[data-testid="sanitized"]').count(), 3);
  assert.equal(await panel.locator('[data-testid="sanitized"]').first().locator('img').count(), 4);
  // A strength the median filter cannot have is refused where the user typed it.
  await panel.locator('input[data-key="sanitize_k"]').fill('4');
  await panel.locator('input[data-key="sanitize_k"]').dispatchEvent('change');
  assert.match(await page.locator('[data-testid="field-error-sanitize_k"]').textContent(), /a median filter's size is odd/);
  assert.ok(!(await page.evaluate(() => location.hash)).includes('sanitize_k'));
  // Nothing runs with a value the field does not show: Run waits until it is fixed.
  assert.equal(await page.locator('[data-testid="run"]').isEnabled(), false);
  await panel.locator('input[data-key="sanitize_k"]').fill('0');
  assert.equal(await page.locator('[data-testid="run"]').isEnabled(), true);

  await page.locator('[data-testid="run"]').click();
  await waitForStatus(page, 'done');
  const text = await page.locator('[data-testid="sanitize-result"]').textContent();
  console.log(text);
  const m = text.match(/Through the median filter: CA ([\d.]+) %, ASR ([\d.]+) %.*raw inputs: CA ([\d.]+) %, ASR ([\d.]+) %/);
  assert.ok(m, text);
  assert.equal(m[1], (await page.locator('[data-testid="clean-acc"]').textContent()).trim(), 'the headline CA is the sanitized one');
  assert.deepEqual(errors, []);
  await context.close();
});

test('augmentations are ticked in the Train step, explained with their paper, and their strengths appear', async () => {
  const { page, context } = await openLab('#v=1', { ready: true });
  const train = page.locator('#train');
  assert.equal(await train.locator('[data-key="aug_cutmix"]').count(), 0);
  await train.locator('[data-key="aug"] input[data-choice="cutmix"]').check();
  await page.waitForFunction(() => location.hash.includes('aug=cutmix'));
  assert.match(await train.locator('[data-testid="aug-explain"]').textContent(), /Yun et al\., ICCV 2019/);
  await train.locator('input[data-key="aug_cutmix"]').fill('0.5');
  await train.locator('input[data-key="aug_cutmix"]').dispatchEvent('change');
  await page.waitForFunction(() => location.hash.includes('aug_cutmix=0.5'));
  await context.close();
});

test('DP-SGD is chosen by its link keys, explained with its limit, reports its privacy, and sweeps as a trade-off curve', async () => {
  const { page, context, consoleErrors: errors } = await openLab('#v=1&train=1500&test=300&epochs=1&model=mlp&seed=3&dp_sigma=0.5&dp_clip=2', { ready: true });
  const train = page.locator('#train');
  assert.match(await train.locator('[data-testid="dp-explain"]').textContent(), /Abadi et al\., CCS 2016.*per sample/s);
  assert.equal(await train.locator('[data-key="dp_clip"]').count(), 1);
  await page.locator('[data-testid="run"]').click();
  await waitForStatus(page, 'done');
  const privacy = await train.locator('[data-testid="dp-privacy"]').textContent();
  console.log(privacy);
  // 1,500 samples in batches of 64 for one epoch: 24 steps at q = 64/1500, δ = 1/1500.
  const m = privacy.match(/\(ε = ([\d.]+), δ = 6\.7e-4\) per sample \(RDP accountant, 24 steps at sampling rate 0\.0427\)/);
  assert.ok(m && parseFloat(m[1]) > 0, privacy);

  // The trade-off curve: the same experiment at σ = 0 (plain) and σ = 1.
  const link = await page.evaluate(() => location.hash);
  await train.locator('.sweep summary').click();
  await train.locator('[data-testid="sweep-values-dp_sigma"]').fill('0,1');
  await train.locator('[data-testid="sweep-values-dp_sigma"]').dispatchEvent('change');
  await train.locator('[data-testid="run-sweep-dp_sigma"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="status"]')?.textContent === 'running');
  await waitForStatus(page, 'done');
  const row = async (i) => (await train.locator(`[data-testid="sweep-${i}"] td`).allTextContents()).map(parseFloat);
  const [plain, noisy] = [await row(0), await row(1)];
  console.log(`DP-SGD trade-off in the page: σ=0 CA/ASR ${plain.join(' / ')}; σ=1 ${noisy.join(' / ')}`);
  assert.equal(plain.length, 2);
  assert.ok(plain.every(Number.isFinite) && noisy.every(Number.isFinite), `${plain} ${noisy}`);
  assert.equal(await page.evaluate(() => location.hash), link, 'a sweep leaves the experiment as it was');
  assert.equal(await train.locator('.chart svg').count() >= 1, true);
  assert.deepEqual(errors, []);
  await context.close();
});

test("Activation Clustering's decision rule shows only its own parameters and goes into the link", async () => {
  const { page, context } = await openLab('#v=1&detect=ac&ac_rule=reclassify', { ready: true });
  assert.equal(await page.locator('[data-key="ac_rule"]').count(), 1);
  assert.equal(await page.locator('[data-key="ac_size"]').count(), 0, 'the size threshold belongs to the size rule');
  await page.locator('select[data-key="ac_rule"]').selectOption('size');
  await page.waitForFunction(() => !location.hash.includes('ac_rule'));
  assert.equal(await page.locator('[data-key="ac_size"]').count(), 1);
  assert.equal(await page.locator('[data-key="ac_sil"]').count(), 1);
  await context.close();
});
