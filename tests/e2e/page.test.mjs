// End-to-end tests of the built page (dist/) in headless Chromium: a real MNIST BadNets run on the CPU
// device, link sharing, malformed links, cancel, no request leaving the origin, no long main-thread task.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { labHooks, waitForRun } from './lab.mjs';

const site = labHooks();

const pct = (x) => (100 * x).toFixed(1);

/** A page object: the lab page with request and long-task recording. */
const openLab = (fragment) => site.openLab(fragment, { longTasks: true });

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
  assert.ok(link.startsWith(site.origin) && link.includes('#v=1&seed=3&train=4000&test=1000&epochs=3'), link);
  const other = await openLab(link.slice(site.origin.length));
  await other.ready();
  assert.equal(await other.id('link').inputValue(), link);
  assert.equal(await other.page.locator('input[data-key="epochs"]').inputValue(), '3');
  assert.equal(await other.page.locator('input[data-key="train"]').inputValue(), '4000');

  const foreign = [...lab.requests, ...other.requests].filter((u) => !u.startsWith(site.origin) && !u.startsWith('data:') && !u.startsWith('blob:'));
  assert.deepEqual(foreign, [], 'no request leaves the page origin');
  assert.deepEqual(lab.consoleErrors, []);
  await lab.context.close();
  await other.context.close();
});

test('a malformed link keeps every valid key and says which it dropped and why', async () => {
  const lab = await openLab('#v=1&attack=trojan&epochs=3');
  await lab.ready();
  assert.match(await lab.text('error'), /left out: unknown attack 'trojan'.*The rest of it is kept/);
  assert.equal(await lab.text('status'), 'idle');
  assert.equal(await lab.page.locator('input[data-key="epochs"]').inputValue(), '3');
  // Issue 31: a bad value of a valid attack keeps the attack.
  const wanet = await openLab('#v=1&attack=wanet&rate=abc');
  await wanet.ready();
  assert.equal(await wanet.page.locator('select[data-key="attack"]').inputValue(), 'wanet');
  assert.match(await wanet.text('error'), /'abc' for 'rate' is not a valid number/);
  assert.ok((await wanet.id('link').inputValue()).endsWith('#v=1&attack=wanet'));
  await lab.context.close();
  await wanet.context.close();
});

test('typed values out of range or not numbers are marked where typed, and nothing runs until they are fixed', async () => {
  const lab = await openLab('#v=1&train=600&test=200');
  await lab.ready();
  const field = (key) => lab.page.locator(`input[data-key="${key}"]`);
  const runEnabled = () => lab.page.locator('[data-testid="run"]').isEnabled();
  for (const [key, typed, pattern] of [['epochs', '0', /0 is out of range: enter 1 to 500/],
    ['rate', '0.95', /0.95 is out of range: enter 0 to 0.9/], ['rate', 'abc', /“abc” is not a number/]]) {
    await field(key).fill(typed);
    // The field keeps what was typed, marked, with the reason under it; Run waits.
    assert.equal(await field(key).inputValue(), typed);
    assert.equal(await field(key).getAttribute('aria-invalid'), 'true');
    assert.match(await lab.text(`field-error-${key}`), pattern);
    assert.equal(await runEnabled(), false, `Run with ${key}=${typed}`);
    assert.match(await lab.text('blocked-train'), /Fix the marked value first/);
  }
  // The link still holds the last values that were valid.
  assert.ok((await lab.id('link').inputValue()).endsWith('#v=1&train=600&test=200'));
  await field('epochs').fill('1');
  assert.equal(await runEnabled(), false, 'the rate is still refused');
  await field('rate').fill('0.2');
  assert.equal(await runEnabled(), true);
  assert.equal(await lab.page.locator('[data-testid^="field-error-"]').count(), 0);
  assert.ok((await lab.id('link').inputValue()).endsWith('#v=1&train=600&test=200&rate=0.2&epochs=1'));
  // What runs is what the fields show.
  await lab.id('run').click();
  await lab.status('done');
  const [download] = await Promise.all([lab.page.waitForEvent('download'), lab.page.getByText('Export report (JSON)').click()]);
  const report = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
  assert.equal(report.spec.train.epochs, 1);
  assert.equal(report.poison.count, 120, '20 % of 600');
  assert.deepEqual(lab.consoleErrors, []);
  await lab.context.close();
});

test('Transfer runs at the default split, and a split that leaves the victim nothing is refused beside its controls before Run', async () => {
  const lab = await openLab('#v=1&epochs=1');
  await lab.ready();
  // Ticking a victim at the defaults makes room for its images: the training size says so.
  await lab.page.locator('[data-key="freeze"] input[data-choice="features"]').check();
  assert.equal(await lab.page.locator('input[data-key="train"]').inputValue(), '6000');
  await lab.page.locator('input[data-key="finetune_epochs"]').fill('1');
  assert.ok((await lab.id('link').inputValue()).endsWith('#v=1&epochs=1&freeze=features&finetune_epochs=1'));
  await lab.id('run').click();
  await lab.status('done');
  const row = lab.id('transfer-features');
  const ca = parseFloat(await row.locator('[data-metric="clean_acc"]').textContent());
  console.log(`transfer at the default split: CA ${ca} % after one frozen-features epoch on 2,000 images`);
  assert.ok(ca >= 80, `CA ${ca}`);
  // Too large a split is said under the sizes that cause it, before Run, and Run waits.
  await lab.page.locator('input[data-key="train"]').fill('9000');
  assert.match(await lab.text('field-error-train'), /Training and test images together \(9,000 \+ 2,000\) exceed the 10,000 MNIST images/);
  await lab.page.locator('input[data-key="train"]').fill('8000');
  for (const key of ['train', 'finetune_size']) {
    assert.match(await lab.text(`field-error-${key}`), /victim's 2,000 clean images .* leaving 0: lower the training images to 6,000 or fewer/);
  }
  assert.equal(await lab.page.locator('[data-testid="run"]').isEnabled(), false);
  assert.match(await lab.text('blocked-train'), /leaving 0/);
  assert.equal(await lab.id('run-transfer').isEnabled(), false, 'blocked while a size is refused');
  await lab.page.locator('input[data-key="train"]').fill('6000');
  assert.equal(await lab.page.locator('[data-testid="run"]').isEnabled(), true);
  assert.deepEqual(lab.consoleErrors, []);
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
// A missing ../shared fails the test unless BDL_SHARED_OPTIONAL=1 says the skip is expected (as natively).
const sharedOptional = process.env.BDL_SHARED_OPTIONAL === '1';

test('a model trained elsewhere is scanned in the page: Neural Cleanse finds its target, its reversed trigger is the guess ASR is measured with; bad files get their message where they were dropped',
  { skip: !hasExample && sharedOptional && 'no example model in ../shared/reference/example (BDL_SHARED_OPTIONAL=1)' }, async () => {
    // The example's trigger: a 3×3 white patch in the top-left corner, target 6 (its truth.json). The
    // page does not know it: the Poison step's trigger (bottom right, target 0) is only a guess.
    // The scanned model is also the base a transfer victim fine-tunes (freeze=...).
    const lab = await openLab('#v=1&train=2000&test=1000&detect=nc&freeze=none,features&finetune_epochs=2&finetune_size=1000');
    await lab.ready();
    const picker = lab.id('scan-file');
    const refused = async (file, pattern) => {
      await picker.setInputFiles(file);
      // The message is cleared when a scan starts, so a match is this file's message; it appears in
      // the scan panel, where the file was chosen.
      await lab.page.waitForFunction(([source, flags]) => new RegExp(source, flags)
        .test(document.querySelector('[data-testid="job-error-scan"]')?.textContent ?? ''), [pattern.source, pattern.flags], { timeout: 60_000 });
      assert.equal(await lab.text('status'), 'failed');
      const error = await lab.text('job-error-scan');
      console.log(`scan refused: ${error}`);
      assert.match(error, pattern);
      assert.equal(await lab.id('error').count(), 0, 'no banner at the top');
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
    const guessed = parseFloat(await lab.text('asr'));
    const nc = await lab.text('detect-nc');
    console.log(`scan of the example in the page (${((await lab.now() - t0) / 1000).toFixed(1)} s): CA ${ca} %, ASR with the default guess ${guessed} %; NC: ${nc}`);
    assert.ok(ca >= 95, `CA ${ca}`);
    assert.ok(guessed <= 20, `a bottom-right patch is not this model's trigger: ASR ${guessed}`);
    assert.match(nc, /^Flags class 6 /);
    assert.match(await lab.text('scanned'), /badnets_tl_target6\.safetensors \(safetensors\), not trained here, so its true trigger is unknown.*your guess/);
    // The Poison step's trigger is labelled a guess, not the truth.
    const nc_card = lab.page.locator('.card', { has: lab.id('detect-nc') });
    assert.equal(await nc_card.getByText('true trigger', { exact: true }).count(), 0);
    assert.equal(await nc_card.getByText('your guess (Poison step)', { exact: true }).count(), 1);
    for (const mode of ['none', 'features']) {
      const row = lab.id(`transfer-${mode}`);
      const after = { ca: parseFloat(await row.locator('[data-metric="clean_acc"]').textContent()), asr: parseFloat(await row.locator('[data-metric="asr"]').textContent()) };
      console.log(`transfer from the scanned model, freeze ${mode}: CA ${after.ca} %, ASR ${after.asr} % after 2 epochs`);
      assert.ok(after.ca >= 90, `freeze ${mode}: CA ${after.ca}`);
    }
    // Neural Cleanse's reversed trigger as the guess: the Poison step takes it, and ASR follows.
    await lab.id('use-reversed-6').click();
    await lab.page.waitForFunction(() => /measured with your guess/.test(document.querySelector('[data-testid="progress-text"]')?.textContent ?? ''), null, { timeout: 60_000 });
    const measured = parseFloat(await lab.text('asr'));
    console.log(`ASR measured with NC's reversed trigger of class 6: ${measured} %`);
    assert.ok(measured >= 90, `ASR ${measured}`);
    assert.equal(parseFloat(await lab.text('clean-acc')), ca);
    assert.equal(await lab.page.locator('select[data-key="pattern"]').inputValue(), 'drawn');
    assert.equal(await lab.page.locator('input[data-key="target"]').inputValue(), '6');
    assert.match(await lab.id('link').inputValue(), /target=6.*pattern=drawn&drawing=/);

    // A bad file afterwards: its message in the scan panel, and the earlier results stay.
    await refused({ name: 'random.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 256)) },
      /random\.safetensors: /);
    assert.match(await lab.text('detect-nc'), /^Flags class 6 /);
    assert.equal(parseFloat(await lab.text('asr')), measured);
    assert.deepEqual(lab.consoleErrors, []);
    await lab.context.close();
  });

// The CIFAR-10 subset beside the clone (../shared) is what CI has; without it the test fails unless
// BDL_SHARED_OPTIONAL=1.
const CIFAR_DIR = path.resolve(import.meta.dirname, '../../../shared/data/cifar10');
const hasCifar = fs.existsSync(path.join(CIFAR_DIR, 'train_subset.bin'));

test('CIFAR-10: shipped with the site and trained on; read locally from picked files when the site lacks it',
  { skip: !hasCifar && sharedOptional && 'no CIFAR-10 subset in ../shared/data/cifar10 (BDL_SHARED_OPTIONAL=1)' }, async () => {
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
    const { context: own, page, requests } = await site.openLab('#v=1&data=cifar10&model=cifar_cnn', {
      prepare: (context) => context.route('**/data/cifar10/**', (route) => route.fulfill({ status: 404, body: '' })),
    });
    const status = page.locator('[data-testid="cifar-status"]');
    const picker = page.locator('[data-testid="cifar-file"]');
    await picker.waitFor({ timeout: 120_000 });
    const missing = (await status.textContent()).trim();
    console.log(`CIFAR-10 not shipped: ${missing}`);
    assert.match(missing, /CIFAR-10/);
    // Running without data fails with a reason rather than hanging.
    await waitForRun(page);
    await page.locator('[data-testid="run"]').click();
    await page.waitForFunction(() => document.querySelector('[data-testid="status"]')?.textContent === 'failed', null, { timeout: 60_000 });
    const error = (await page.locator('[data-testid="job-error-train"]').textContent()).trim();
    console.log(`Run without CIFAR-10: ${error}`);
    assert.match(error, /CIFAR-10/);
    // A wrong file is refused with a reason, and the picker stays.
    await picker.setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') });
    await page.waitForFunction(() => /not a CIFAR-10 file/.test(document.querySelector('[data-testid="cifar-status"]')?.textContent));
    await picker.setInputFiles([path.join(CIFAR_DIR, 'train_subset.bin'), path.join(CIFAR_DIR, 'test_subset.bin')]);
    await page.waitForFunction(
      () => /CIFAR-10 from train_subset.bin \+ test_subset.bin/.test(document.querySelector('[data-testid="cifar-status"]')?.textContent),
      null, { timeout: 60_000 });
    const uploads = requests.filter((u) => !u.startsWith(site.origin) || u.includes('subset'));
    assert.deepEqual(uploads, [], 'the picked files never leave the page');
    await own.close();
  });
