// The Compare step: a grid run in the page's workers gives the numbers the CLI's `grid` gives for the same
// grid link; a ρ sweep draws its chart with the CLI's values; results export and open again; cancel stops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { labHooks } from './lab.mjs';

const TARGET = process.env.CARGO_TARGET_DIR ?? path.join(os.homedir(), '.cache/backdoor-lab/target');
const CLI = process.env.BACKDOOR_LAB ?? path.join(TARGET, 'release/backdoor-lab');

// The CLI first: without it nothing is served or launched.
const site = labHooks({
  check: () => assert.ok(fs.existsSync(CLI), `no CLI at ${CLI}: the native tests build it (cargo test --release)`),
});

/** The lab at `fragment`, once Run can be pressed; downloads are kept. */
const openLab = (fragment) => site.openLab(fragment, { ready: true, acceptDownloads: true });

/** The CLI's results for a grid link: `grid run` then `grid merge`. */
function cliGrid(link) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'backdoor-lab-e2e-grid-'));
  execFileSync(CLI, ['grid', 'run', link, '--out', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  execFileSync(CLI, ['grid', 'merge', dir, '--out', path.join(dir, 'RESULTS.json')], { stdio: 'ignore' });
  const results = JSON.parse(fs.readFileSync(path.join(dir, 'RESULTS.json'), 'utf8'));
  const csv = fs.readFileSync(path.join(dir, 'RESULTS.csv'), 'utf8');
  fs.rmSync(dir, { recursive: true });
  return { results, csv };
}

/** CSV lines as objects. */
function parseCsv(text) {
  const [head, ...lines] = text.trim().split('\n');
  const keys = head.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [keys[i], v])));
}

/** Waits until the grid has finished (its progress says "in N s"). */
async function gridDone(lab, timeout = 600_000) {
  await lab.page.waitForFunction(
    () => / in \d+ s$/.test(document.querySelector('[data-testid="grid-progress"]')?.textContent ?? ''),
    null, { timeout });
}

const MATRIX = 'g=1&train=300&test=100&epochs=1&fp_ft_epochs=1&ft_epochs=1&attack=badnets|blended&repair=ft|fp&seed=0|1';

test('a grid link runs in the page\'s workers with the CLI\'s numbers, exports, and opens again', async () => {
  const lab = await openLab(`#${MATRIX}`);
  assert.equal((await lab.id('grid-link').textContent()).trim(), `#${MATRIX}`);
  assert.match(await lab.id('grid-summary').textContent(), /8 runs, 4 models to train/);
  const t0 = Date.now();
  await lab.id('run-grid').click();
  await gridDone(lab);
  const pageSeconds = (Date.now() - t0) / 1000;
  const progress = await lab.id('grid-progress').textContent();
  assert.match(progress, /8 of 8 runs done, 4 of 4 models trained/, progress);

  const t1 = Date.now();
  const cli = cliGrid(MATRIX);
  const cliSeconds = (Date.now() - t1) / 1000;
  console.log(`grid of 8 runs: page ${pageSeconds.toFixed(0)} s (${progress.trim()}; hardwareConcurrency ${await lab.page.evaluate(() => navigator.hardwareConcurrency)}), CLI ${cliSeconds.toFixed(0)} s (one process)`);
  assert.equal(cli.results.trainings, 4);
  // Every cell of the CLI's table, against the page's: rows are the attacks in plan order.
  const attacks = ['badnets', 'blended'];
  let cells = 0;
  for (const line of parseCsv(cli.csv)) {
    const cell = lab.id(`cell-${attacks.indexOf(line.attack)}-${line.defense}`);
    const [ca, asr] = [await cell.getAttribute('data-ca'), await cell.getAttribute('data-asr')].map(Number);
    console.log(`${line.attack} × ${line.defense}: page CA ${(100 * ca).toFixed(1)} ASR ${(100 * asr).toFixed(1)}, CLI CA ${(100 * line.clean_acc_mean).toFixed(1)} ASR ${(100 * line.asr_mean).toFixed(1)}`);
    // The worker runs the same lab core in WebAssembly: the same runs to within one test image (1 point on 100).
    assert.ok(Math.abs(ca - Number(line.clean_acc_mean)) <= 0.0101, `${line.attack}/${line.defense} CA`);
    assert.ok(Math.abs(asr - Number(line.asr_mean)) <= 0.0101, `${line.attack}/${line.defense} ASR`);
    cells++;
  }
  assert.equal(cells, 6);
  // A cell opens its experiment.
  const href = await lab.id('cell-1-fp').locator('a').getAttribute('href');
  assert.equal(href, '#v=1&train=300&test=100&attack=blended&epochs=1&repair=fp&fp_ft_epochs=1');

  // Exports: the CSV has the same cells; the JSON opens again as the same matrix; the PNG is an image.
  const [csv] = await Promise.all([lab.page.waitForEvent('download'), lab.id('grid-csv').click()]);
  assert.equal(parseCsv(fs.readFileSync(await csv.path(), 'utf8')).length, 6);
  const [json] = await Promise.all([lab.page.waitForEvent('download'), lab.id('grid-json').click()]);
  const saved = JSON.parse(fs.readFileSync(await json.path(), 'utf8'));
  assert.equal(saved.runs.length, 8);
  assert.equal(saved.grid, cli.results.grid);
  const [png] = await Promise.all([lab.page.waitForEvent('download'), lab.id('grid-png').click()]);
  assert.deepEqual([...fs.readFileSync(await png.path()).subarray(1, 4)].map((b) => String.fromCharCode(b)).join(''), 'PNG');
  const before = await lab.id('matrix').innerText();
  const other = await openLab('#v=1');
  await other.id('open-results').setInputFiles(await json.path());
  await other.page.waitForSelector('[data-testid="matrix"]');
  assert.equal(await other.id('matrix').innerText(), before);
  // The CLI's RESULTS.json opens too, and a file that is not one gets a message.
  const cliFile = path.join(os.tmpdir(), `cli-results-${process.pid}.json`);
  fs.writeFileSync(cliFile, JSON.stringify(cli.results));
  await other.id('open-results').setInputFiles(cliFile);
  await other.page.waitForFunction(() => /from a results file/.test(document.querySelector('[data-testid="grid-progress"]')?.textContent));
  const badFile = path.join(os.tmpdir(), `not-results-${process.pid}.json`);
  fs.writeFileSync(badFile, '{"version": 1, "grid": "v=1"}');
  await other.id('open-results').setInputFiles(badFile);
  await other.page.waitForSelector('[data-testid="job-error-compare"]');
  assert.match(await other.id('job-error-compare').textContent(), /not a grid's results file/);
  fs.rmSync(cliFile);
  fs.rmSync(badFile);
  for (const l of [lab, other]) {
    assert.deepEqual(l.requests.filter((u) => !u.startsWith(site.origin) && !u.startsWith('blob:') && !u.startsWith('data:')), []);
    await l.context.close();
  }
});

test('a ρ sweep in the Compare step charts CA and ASR with the values of the CLI\'s sweep', async () => {
  const base = 'v=1&train=300&test=100&epochs=1';
  const lab = await openLab(`#${base}`);
  await lab.id('mode-sweep').check();
  await lab.id('sweep-key').selectOption('rate');
  await lab.id('grid-values').fill('0,0.01,0.02,0.05,0.1');
  await lab.id('grid-values').dispatchEvent('change');
  await lab.id('grid-seeds').fill('0');
  await lab.id('grid-seeds').dispatchEvent('change');
  assert.match(await lab.id('grid-summary').textContent(), /5 runs, 5 models/);
  await lab.id('run-grid').click();
  await gridDone(lab);
  await lab.page.waitForSelector('[data-testid="sweep-chart"] svg');
  const out = path.join(os.tmpdir(), `sweep-${process.pid}.json`);
  execFileSync(CLI, ['sweep', 'rate=*', '--link', base, '--values', '0,0.01,0.02,0.05,0.1', '--seeds', '0', '--out', out], { stdio: 'ignore' });
  const points = JSON.parse(fs.readFileSync(out, 'utf8'))[0].points;
  fs.rmSync(out);
  for (const [i, p] of points.entries()) {
    const cell = lab.id(`cell-${i}-none`);
    const [ca, asr] = [await cell.getAttribute('data-ca'), await cell.getAttribute('data-asr')].map(Number);
    console.log(`ρ = ${p.value}: page CA ${(100 * ca).toFixed(1)} ASR ${(100 * asr).toFixed(1)}; CLI sweep CA ${(100 * p.runs[0].clean_acc).toFixed(1)} ASR ${(100 * p.runs[0].asr).toFixed(1)}`);
    assert.ok(Math.abs(ca - p.runs[0].clean_acc) <= 0.0101, `ρ = ${p.value} CA`);
    assert.ok(Math.abs(asr - p.runs[0].asr) <= 0.0101, `ρ = ${p.value} ASR`);
  }
  // The chart's points are the cells' values (its ASR axis runs 0–100 %).
  const svg = await lab.id('sweep-chart').innerHTML();
  assert.match(svg, /against rate/);
  if (process.env.SCREENSHOTS) {
    await lab.page.setViewportSize({ width: 1100, height: 900 });
    await lab.page.locator('#compare').screenshot({ path: path.join(process.env.SCREENSHOTS, 'compare-sweep.png') });
  }
  await lab.context.close();
});

test('cancel stops a grid: no run arrives after it', async () => {
  const lab = await openLab('#g=1&train=2000&test=200&epochs=3&attack=badnets|blended|none&seed=0|1');
  // A grid link stays in the address, and the page opens at its grid, not 3,000 px above it.
  await lab.page.waitForFunction(() => { const r = document.getElementById('compare')?.getBoundingClientRect(); return r && r.top < innerHeight && r.bottom > 0; });
  assert.match(await lab.page.evaluate(() => location.hash), /^#g=1&/);
  await lab.id('run-grid').click();
  await lab.page.waitForFunction(() => /runs done/.test(document.querySelector('[data-testid="grid-progress"]')?.textContent));
  await lab.id('cancel-grid').click();
  const after = await lab.id('grid-progress').textContent();
  await lab.page.waitForTimeout(5000);
  assert.equal(await lab.id('grid-progress').textContent(), after);
  assert.ok(await lab.id('run-grid').isEnabled());
  await lab.context.close();
});

test('a run the spec makes impossible is listed with its reason and the others finish', async () => {
  // Clean-label poisoning at ρ = 0.5 needs more target-class images than 300 have.
  const lab = await openLab('#g=1&train=300&test=100&epochs=1&attack=badnets|clean_label&rate=0.05|0.5');
  await lab.id('run-grid').click();
  await gridDone(lab);
  assert.match(await lab.id('grid-progress').textContent(), /3 of 4 runs done \(1 could not run\)/);
  assert.match(await lab.id('grid-failed').textContent(), /run 3 could not run: .*clean-label/i);
  // Rows are named as the columns are: by the method's title, with the link key in the tooltip.
  const rows = await lab.page.locator('[data-testid="matrix"] tbody th').allTextContents();
  assert.ok(rows.some((t) => /^BadNets/.test(t)), `row labels: ${rows}`);
  await lab.context.close();
});
