// End-to-end tests of the built page (dist/) in headless Chromium: a real MNIST BadNets run on the CPU
// device, link sharing, malformed links, cancel, no request leaving the origin, no long main-thread task.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { serveDist, BASE_ARGS } from './serve.mjs';

let server, origin, browser;

before(async () => {
  ({ server, origin } = await serveDist());
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: BASE_ARGS,
    // playwright gives every launch a fresh, temporary profile (--user-data-dir).
  });
});

after(async () => {
  await browser?.close();
  server?.close();
});

const pct = (x) => (100 * x).toFixed(1);

/** A page object: the lab page with request and long-task recording. */
async function openLab(fragment) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  await page.addInitScript(() => {
    window.__longTasks = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longTasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
  });
  await page.goto(`${origin}/${fragment.replace(/^\//, '')}`);
  const id = (t) => page.locator(`[data-testid="${t}"]`);
  return {
    page, context, requests, consoleErrors, id,
    text: async (t) => (await id(t).textContent()).trim(),
    ready: () => page.waitForSelector('[data-testid="run"]:not([disabled])', { timeout: 120_000 }),
    status: (s, timeout = 300_000) => page.waitForFunction(
      (want) => document.querySelector('[data-testid="status"]')?.textContent === want, s, { timeout }),
    now: () => page.evaluate(() => performance.now()),
    longTasks: () => page.evaluate(() => window.__longTasks),
  };
}

test('an MNIST BadNets run completes on the CPU with a working backdoor, and its link reproduces the spec', async () => {
  const lab = await openLab('#v=1&train=4000&test=1000&epochs=3&seed=3');
  await lab.ready();
  const fcp = await lab.page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1);
  console.log(`first contentful paint ${fcp.toFixed(0)} ms, worker ready at ${(await lab.now()).toFixed(0)} ms`);
  assert.equal(await lab.text('device'), 'cpu');
  assert.equal(await lab.text('status'), 'idle');
  const start = await lab.now();
  await lab.id('run').click();
  await lab.status('done');
  const end = await lab.now();
  const ca = parseFloat(await lab.text('clean-acc'));
  const asr = parseFloat(await lab.text('asr'));
  const ra = parseFloat(await lab.text('robust-acc'));
  console.log(`browser CPU run: CA ${ca} %, ASR ${asr} %, RA ${ra} %, ${((end - start) / 1000).toFixed(1)} s`);
  assert.ok(ca >= 88, `CA ${ca}`);
  assert.ok(asr >= 90, `ASR ${asr}`);
  assert.ok(ra <= 12, `RA ${ra}`);
  assert.match(await lab.text('clean-acc'), /^\d+\.\d$/);
  if (process.env.SCREENSHOTS) {
    await lab.page.setViewportSize({ width: 1100, height: 900 });
    await lab.page.screenshot({ path: path.join(process.env.SCREENSHOTS, 'laptop.png'), fullPage: true });
    await lab.page.setViewportSize({ width: 390, height: 844 });
    await lab.page.screenshot({ path: path.join(process.env.SCREENSHOTS, 'phone.png'), fullPage: false });
  }

  const [download] = await Promise.all([lab.page.waitForEvent('download'), lab.page.getByText('Export report (JSON)').click()]);
  const report = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
  assert.equal(report.link, 'v=1&seed=3&train=4000&test=1000&epochs=3');
  assert.equal(report.device, 'cpu');
  assert.equal(pct(report.final.clean_acc), await lab.text('clean-acc'));
  console.log(`browser CPU training: ${report.train_samples_per_second.toFixed(0)} samples/s, epochs ${report.epochs.map((e) => e.seconds.toFixed(1)).join(' / ')} s`);
  const [png] = await Promise.all([lab.page.waitForEvent('download'), lab.id('save-acc-png').click()]);
  const bytes = fs.readFileSync(await png.path());
  assert.deepEqual([...bytes.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], 'the chart saves as a PNG');
  assert.ok(bytes.length > 5000, `PNG of ${bytes.length} bytes`);

  const long = (await lab.longTasks()).filter((t) => t.start >= start && t.start <= end);
  console.log(`long tasks during training: ${long.length}, longest ${Math.max(0, ...long.map((t) => t.duration)).toFixed(0)} ms`);
  assert.ok(long.every((t) => t.duration <= 100), `main-thread tasks over 100 ms: ${JSON.stringify(long)}`);

  await lab.id('copy-link').click();
  const link = await lab.id('link').inputValue();
  assert.ok(link.startsWith(origin) && link.includes('#v=1&seed=3&train=4000&test=1000&epochs=3'), link);
  const other = await openLab(link.slice(origin.length));
  await other.ready();
  assert.equal(await other.id('link').inputValue(), link);
  assert.equal(await other.page.locator('input[data-key="epochs"]').inputValue(), '3');
  assert.equal(await other.page.locator('input[data-key="train"]').inputValue(), '4000');

  const foreign = [...lab.requests, ...other.requests].filter((u) => !u.startsWith(origin) && !u.startsWith('data:') && !u.startsWith('blob:'));
  assert.deepEqual(foreign, [], 'no request leaves the page origin');
  assert.deepEqual(lab.consoleErrors, []);
  await lab.context.close();
  await other.context.close();
});

test('a malformed link shows what was wrong and falls back to the defaults', async () => {
  const lab = await openLab('#v=1&attack=trojan&epochs=3');
  await lab.ready();
  assert.match(await lab.text('error'), /unknown attack 'trojan'/);
  assert.equal(await lab.text('status'), 'idle');
  assert.equal(await lab.page.locator('input[data-key="epochs"]').inputValue(), '5');
  await lab.context.close();
});

test('an out-of-range value is refused with a message and the spec is kept', async () => {
  const lab = await openLab('#v=1');
  await lab.ready();
  await lab.page.locator('input[data-key="rate"]').fill('3');
  await lab.page.locator('input[data-key="rate"]').dispatchEvent('change');
  assert.match(await lab.text('error'), /poison_rate 3 must be between 0 and 0.9/);
  assert.ok((await lab.id('link').inputValue()).endsWith('#v=1'));
  await lab.context.close();
});

test('hide= hides any parameter by its key, and a chosen method shows its generated controls', async () => {
  const lab = await openLab('#v=1&attack=blended&detect=nc&repair=retrain&embed=1&hide=alpha,nc_steps');
  await lab.ready();
  // The two hidden keys are gone; their neighbours, generated from the same tables, are there.
  assert.equal(await lab.page.locator('[data-key="alpha"]').count(), 0);
  assert.equal(await lab.page.locator('[data-key="nc_steps"]').count(), 0);
  assert.equal(await lab.page.locator('[data-key="rate"]').count(), 1);
  assert.equal(await lab.page.locator('[data-key="nc_batch"]').count(), 1);
  assert.equal(await lab.page.locator('select[data-key="retrain_by"]').inputValue(), 'ac');
  // A generated control edits the link like a hand-written one did.
  await lab.page.locator('input[data-key="nc_batch"]').fill('8');
  await lab.page.locator('input[data-key="nc_batch"]').dispatchEvent('change');
  await lab.page.waitForFunction(() => location.hash.includes('nc_batch=8'));
  assert.match(decodeURIComponent(await lab.page.evaluate(() => location.hash)), /hide=alpha,nc_steps/);
  await lab.context.close();
});

test('cancel stops a running experiment', async () => {
  const lab = await openLab('#v=1&epochs=20');
  await lab.ready();
  await lab.id('run').click();
  await lab.status('running', 10_000);
  await lab.page.waitForFunction(() => Number(document.querySelector('[data-testid="progress"]').value) > 0, null, { timeout: 60_000 });
  await lab.id('cancel').click();
  await lab.status('cancelled', 30_000);
  await lab.context.close();
});

test('detectors run after training and on demand, and show their verdicts', async () => {
  const lab = await openLab('#v=1&train=3000&test=500&epochs=2&seed=3&detect=strip&strip_n=20&strip_inputs=100');
  await lab.ready();
  assert.equal(await lab.page.locator('input[data-detector="strip"]').isChecked(), true);
  await lab.id('run').click();
  await lab.status('done');
  const strip = await lab.text('detect-strip');
  console.log(`STRIP in the page: ${strip}`);
  const auroc = parseFloat(strip.match(/AUROC ([\d.]+)/)[1]);
  assert.ok(auroc >= 0.9, `STRIP AUROC ${auroc}`);
  // A detector chosen after training runs on the kept model, without retraining.
  await lab.page.locator('input[data-detector="occlusion"]').check();
  assert.match(await lab.id('link').inputValue(), /detect=strip,occlusion/);
  const t0 = await lab.now();
  await lab.id('run-detect').click();
  await lab.page.waitForSelector('[data-testid="detect-occlusion"]', { timeout: 120_000 });
  await lab.status('done');
  const occlusion = await lab.text('detect-occlusion');
  console.log(`occlusion in the page (${((await lab.now() - t0) / 1000).toFixed(1)} s): ${occlusion}`);
  assert.match(occlusion, /row \d+, column \d+/);
  assert.equal(await lab.text('detect-strip'), strip, 'earlier verdicts stay');
  await lab.context.close();
});

test('repairs run after training and on demand, measured like the original model', async () => {
  const lab = await openLab('#v=1&train=3000&test=500&epochs=2&seed=3&repair=distill');
  await lab.ready();
  assert.equal(await lab.page.locator('input[data-repair="distill"]').isChecked(), true);
  await lab.id('run').click();
  await lab.status('done');
  const cell = async (row, metric) =>
    parseFloat(await lab.page.locator(`[data-testid="repair-${row}"] [data-metric="${metric}"]`).textContent());
  const row = async (name) => ({ ca: await cell(name, 'clean_acc'), asr: await cell(name, 'asr') });
  const before = await row('before');
  const distill = await row('distill');
  console.log(`repair in the page: before CA ${before.ca} ASR ${before.asr}; distillation CA ${distill.ca} ASR ${distill.asr}`);
  // The suspect model in the repair table is the model of the Results step, measured by the same code.
  assert.equal(before.ca, parseFloat(await lab.text('clean-acc')));
  assert.equal(before.asr, parseFloat(await lab.text('asr')));
  assert.ok(before.asr >= 80, `the backdoor was not learned (ASR ${before.asr})`);
  assert.ok(distill.asr <= 20, `distillation left ASR at ${distill.asr}`);
  assert.ok(distill.ca >= before.ca - 10, `distillation cost too much CA: ${distill.ca} vs ${before.ca}`);
  // A repair chosen after training runs on the kept model, without retraining it.
  await lab.page.locator('input[data-repair="strip_filter"]').check();
  assert.match(await lab.id('link').inputValue(), /repair=distill,strip_filter/);
  const t0 = await lab.now();
  await lab.id('run-repair').click();
  await lab.page.waitForSelector('[data-testid="repair-strip_filter"]', { timeout: 300_000 });
  await lab.status('done');
  const filtered = await row('strip_filter');
  console.log(`STRIP filter in the page (${((await lab.now() - t0) / 1000).toFixed(1)} s): CA ${filtered.ca} ASR ${filtered.asr}`);
  assert.ok(filtered.asr < before.asr, `the STRIP filter did not lower ASR (${filtered.asr})`);
  assert.deepEqual(await row('before'), before, 'the suspect model is unchanged');
  assert.deepEqual(lab.consoleErrors, []);
  await lab.context.close();
});

test('malicious loss: the data stays clean, the page says why data audits find nothing, and the model downloads and scans back', async () => {
  const lab = await openLab('#v=1&attack=malicious_loss&train=4000&test=500&epochs=3&seed=3&detect=ac,ss');
  await lab.ready();
  assert.match(await lab.page.locator('#poison').textContent(), /No training sample is poisoned/);
  await lab.id('run').click();
  await lab.status('done');
  const ca = parseFloat(await lab.text('clean-acc'));
  const asr = parseFloat(await lab.text('asr'));
  console.log(`malicious loss in the page: CA ${ca} %, ASR ${asr} %`);
  assert.ok(ca >= 90, `CA ${ca}`);
  assert.ok(asr >= 90, `ASR ${asr}`);
  for (const d of ['ac', 'ss']) {
    const verdict = await lab.text(`detect-${d}`);
    assert.match(verdict, /Nothing to find: the training set holds no poisoned sample \(the attacker changed the training loss/, verdict);
  }
  // The trained model as a file, scanned back: the same predictions, so the same CA and ASR.
  const [download] = await Promise.all([lab.page.waitForEvent('download'), lab.id('save-model').click()]);
  assert.match(download.suggestedFilename(), /^backdoor-lab-mnist-cnn-malicious_loss-seed3\.safetensors$/);
  // Keep the browser's file name: the scan reports it.
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bl-')), download.suggestedFilename());
  await download.saveAs(file);
  await lab.id('scan-file').setInputFiles(file);
  await lab.page.waitForSelector('[data-testid="scanned"]', { timeout: 300_000 });
  await lab.status('done');
  assert.match(await lab.text('scanned'), /Scanned model: backdoor-lab-mnist-cnn-malicious_loss-seed3\.safetensors \(safetensors\)/);
  assert.equal(parseFloat(await lab.text('clean-acc')), ca);
  assert.equal(parseFloat(await lab.text('asr')), asr);
  assert.deepEqual(lab.consoleErrors, []);
  await lab.context.close();
});

test('the attack strength sweeps in the page: CA and ASR against λ, beside BadNets at ρ = λ', async () => {
  const lab = await openLab('#v=1&attack=malicious_loss&train=1500&test=300&epochs=2&model=mlp&seed=1');
  await lab.ready();
  await lab.page.locator('.sweep summary').click();
  await lab.id('sweep-values-lambda').fill('0,0.2');
  await lab.id('sweep-values-lambda').dispatchEvent('change');
  await lab.id('run-sweep-lambda').click();
  await lab.page.waitForFunction(() => document.querySelector('[data-testid="status"]')?.textContent === 'running');
  await lab.status('done');
  const row = async (i) => (await lab.id(`sweep-${i}`).locator('td').allTextContents()).map(parseFloat);
  const [zero, strong] = [await row(0), await row(1)];
  console.log(`sweep in the page: λ=ρ=0 ${zero.join(' / ')}; λ=ρ=0.2 ${strong.join(' / ')} (CA/ASR malicious loss, then BadNets)`);
  assert.equal(zero.length, 4);
  assert.ok(zero[1] < 10 && zero[3] < 10, `no backdoor without poison: ${zero}`);
  assert.ok(strong[1] > 80 && strong[3] > 80, `both attacks plant it at 0.2: ${strong}`);
  assert.ok(zero.concat(strong).filter((_, i) => i % 2 === 0).every((ca) => ca > 60), `CA ${zero} ${strong}`);
  // A sweep leaves the last run and its training chart alone.
  assert.equal(await lab.text('clean-acc'), '—');
  assert.deepEqual(lab.consoleErrors, []);
  await lab.context.close();
});

// The example backdoored model beside the clone (../shared/reference), trained in PyTorch.
const EXAMPLE = path.resolve(import.meta.dirname, '../../../shared/reference/example/badnets_tl_target6');
const hasExample = fs.existsSync(`${EXAMPLE}.safetensors`);

test('a model trained elsewhere is scanned in the page: Neural Cleanse finds its target; bad files get their message',
  { skip: !hasExample && 'no example model in ../shared/reference/example' }, async () => {
    // The example's trigger: a 3×3 white patch in the top-left corner, target 6 (its truth.json).
    // The scanned model is also the base a transfer victim fine-tunes (freeze=...).
    const lab = await openLab('#v=1&train=2000&test=1000&pos=tl&target=6&detect=nc&freeze=none,features&finetune_epochs=2&finetune_size=1000');
    await lab.ready();
    const picker = lab.id('scan-file');
    const refused = async (file, pattern) => {
      await picker.setInputFiles(file);
      // The error line is cleared when a scan starts, so a match is this file's message.
      await lab.page.waitForFunction(([source, flags]) => new RegExp(source, flags)
        .test(document.querySelector('[data-testid="error"]')?.textContent ?? ''), [pattern.source, pattern.flags], { timeout: 60_000 });
      assert.equal(await lab.text('status'), 'failed');
      const error = await lab.text('error');
      console.log(`scan refused: ${error}`);
      assert.match(error, pattern);
    };
    const bytes = fs.readFileSync(`${EXAMPLE}.safetensors`);
    await refused({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello, not a model') },
      /notes\.txt: not a model file/);
    await refused({ name: 'cut.safetensors', mimeType: 'application/octet-stream', buffer: bytes.subarray(0, bytes.length >> 1) },
      /cut\.safetensors: truncated safetensors file/);
    await refused(`${EXAMPLE}.pt`, /the browser reads safetensors/);
    await lab.page.locator('select[data-key="model"]').selectOption('mlp');
    await refused(`${EXAMPLE}.safetensors`, /no tensor 'fc1\.weight'/);
    await lab.page.locator('select[data-key="model"]').selectOption('cnn');

    const t0 = await lab.now();
    await picker.setInputFiles(`${EXAMPLE}.safetensors`);
    await lab.status('done');
    const ca = parseFloat(await lab.text('clean-acc'));
    const asr = parseFloat(await lab.text('asr'));
    const nc = await lab.text('detect-nc');
    console.log(`scan of the example in the page (${((await lab.now() - t0) / 1000).toFixed(1)} s): CA ${ca} %, ASR ${asr} %; NC: ${nc}`);
    assert.ok(ca >= 95 && asr >= 95, `CA ${ca} ASR ${asr}`);
    assert.match(nc, /^Flags class 6 /);
    assert.match(await lab.text('scanned'), /badnets_tl_target6\.safetensors \(safetensors\)/);
    for (const mode of ['none', 'features']) {
      const row = lab.id(`transfer-${mode}`);
      const after = { ca: parseFloat(await row.locator('[data-metric="clean_acc"]').textContent()), asr: parseFloat(await row.locator('[data-metric="asr"]').textContent()) };
      console.log(`transfer from the scanned model, freeze ${mode}: CA ${after.ca} %, ASR ${after.asr} % after 2 epochs`);
      assert.ok(after.ca >= 90, `freeze ${mode}: CA ${after.ca}`);
    }
    assert.deepEqual(lab.consoleErrors, []);
    await lab.context.close();
  });

// The CIFAR-10 subset beside the clone (../shared) is what CI has; a machine without it skips this test.
const CIFAR_DIR = path.resolve(import.meta.dirname, '../../../shared/data/cifar10');
const hasCifar = fs.existsSync(path.join(CIFAR_DIR, 'train_subset.bin'));

test('CIFAR-10: shipped with the site and trained on; read locally from picked files when the site lacks it',
  { skip: !hasCifar && 'no CIFAR-10 subset in ../shared/data/cifar10' }, async () => {
    const lab = await openLab('#v=1&data=cifar10&model=cifar_cnn&train=2000&test=500&epochs=2&seed=1');
    await lab.ready();
    await lab.page.waitForFunction(
      () => /shipped with this site/.test(document.querySelector('[data-testid="cifar-status"]')?.textContent), null,
      { timeout: 60_000 });
    const start = await lab.now();
    await lab.id('run').click();
    await lab.status('done', 600_000);
    const ca = parseFloat(await lab.text('clean-acc'));
    const asr = parseFloat(await lab.text('asr'));
    console.log(`browser CIFAR-10 run: CA ${ca} %, ASR ${asr} %, ${((await lab.now() - start) / 1000).toFixed(1)} s`);
    assert.ok(ca >= 25, `CIFAR-10 CA ${ca} (chance is 10)`);
    assert.ok(asr >= 50, `CIFAR-10 ASR ${asr}`);
    assert.deepEqual(lab.consoleErrors, []);
    await lab.context.close();

    // Without the shipped files the page says so and reads the user's own files, here and nowhere else.
    const own = await browser.newContext();
    await own.route('**/data/cifar10/**', (route) => route.fulfill({ status: 404, body: '' }));
    const page = await own.newPage();
    const requests = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(`${origin}/#v=1&data=cifar10&model=cifar_cnn`);
    const status = page.locator('[data-testid="cifar-status"]');
    const picker = page.locator('[data-testid="cifar-file"]');
    await picker.waitFor({ timeout: 120_000 });
    const missing = (await status.textContent()).trim();
    console.log(`CIFAR-10 not shipped: ${missing}`);
    assert.match(missing, /CIFAR-10/);
    // Running without data fails with a reason rather than hanging.
    await page.waitForSelector('[data-testid="run"]:not([disabled])', { timeout: 120_000 });
    await page.locator('[data-testid="run"]').click();
    await page.waitForFunction(() => document.querySelector('[data-testid="status"]')?.textContent === 'failed', null, { timeout: 60_000 });
    const error = (await page.locator('[data-testid="error"]').textContent()).trim();
    console.log(`Run without CIFAR-10: ${error}`);
    assert.match(error, /CIFAR-10/);
    // A wrong file is refused with a reason, and the picker stays.
    await picker.setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') });
    await page.waitForFunction(() => /not a CIFAR-10 file/.test(document.querySelector('[data-testid="cifar-status"]')?.textContent));
    await picker.setInputFiles([path.join(CIFAR_DIR, 'train_subset.bin'), path.join(CIFAR_DIR, 'test_subset.bin')]);
    await page.waitForFunction(
      () => /CIFAR-10 from train_subset.bin \+ test_subset.bin/.test(document.querySelector('[data-testid="cifar-status"]')?.textContent),
      null, { timeout: 60_000 });
    const uploads = requests.filter((u) => !u.startsWith(origin) || u.includes('subset'));
    assert.deepEqual(uploads, [], 'the picked files never leave the page');
    await own.close();
  });
