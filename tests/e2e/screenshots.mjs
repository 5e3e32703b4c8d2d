// Screenshots of each step of the built page at a desktop and a phone width, after a short run with
// detectors and repairs, for people to look at (not a test): `node screenshots.mjs OUT_DIR`.
import fs from 'node:fs';
import path from 'node:path';
import { startLab, waitForRun, waitForStatus } from './lab.mjs';

const out = process.argv[2] ?? 'screenshots';
fs.mkdirSync(out, { recursive: true });
const site = await startLab();
const { origin, browser } = site;
const fragment = '#v=1&train=1000&test=200&epochs=1&seed=3&detect=nc,ac,strip&nc_steps=20&strip_n=10&strip_inputs=50'
  + '&repair=ft,nc_unlearn,retrain&ft_epochs=1&nc_epochs=1&freeze=none,features&finetune_epochs=2&finetune_size=500&device=cpu';
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  await page.goto(`${origin}/${fragment}`);
  await waitForRun(page);
  await page.locator('[data-testid="run"]').click();
  await waitForStatus(page, 'done', 600_000);
  for (const width of [1100, 390]) {
    await page.setViewportSize({ width, height: 900 });
    await page.waitForTimeout(300);
    for (const step of ['data', 'poison', 'train', 'results', 'detect', 'repair', 'transfer']) {
      await page.locator(`#${step}`).screenshot({ path: path.join(out, `${step}-${width}.png`) });
    }
  }
  // The blended attack's slider and the clean-label trigger family.
  await page.setViewportSize({ width: 1100, height: 900 });
  await page.goto(`${origin}/#v=1&attack=clean_label&trigger=blend&alpha=0.3`);
  await page.waitForSelector('[data-key="alpha"]');
  await page.locator('#poison').screenshot({ path: path.join(out, 'poison-blend-1100.png') });
  // The architectural backdoor's diagram, and the attacker who trains.
  for (const attack of ['arch_backdoor', 'malicious_loss']) {
    await page.goto(`${origin}/#v=1&attack=${attack}`);
    await page.waitForSelector('[data-key="target"]');
    await page.locator('#poison').screenshot({ path: path.join(out, `poison-${attack}-1100.png`) });
  }
  // What a new user meets (issue 31): refused values beside their fields, a split with no room for the
  // transfer victim, a lesson card kept while its experiment changes, a grid link at its grid.
  for (const width of [1100, 390]) {
    // A fresh page for each link: a link opened in the same tab keeps the last run's results.
    const page = await browser.newPage({ viewport: { width, height: 900 } });
    await page.goto(`${origin}/#v=1&freeze=features`);
    await waitForRun(page);
    await page.locator('input[data-key="epochs"]').fill('0');
    await page.locator('input[data-key="rate"]').fill('abc');
    await page.locator('input[data-key="train"]').fill('8000');
    for (const step of ['data', 'poison', 'train', 'transfer']) {
      await page.locator(`#${step}`).screenshot({ path: path.join(out, `refused-${step}-${width}.png`) });
    }
    await page.goto(`${origin}/#v=1&rate=0.01&lesson=few-poisons`);
    await page.reload();
    await page.locator('input[data-key="rate"]').fill('0.005');
    await page.locator('[data-testid="lesson"]').screenshot({ path: path.join(out, `lesson-${width}.png`) });
    await page.goto(`${origin}/#g=1&train=300&test=100&epochs=1&attack=badnets|none&repair=ft&ft_epochs=1&seed=0`);
    await page.reload();
    await waitForRun(page);
    await page.locator('[data-testid="run-grid"]').click();
    await page.waitForFunction(() => / in \d+ s$/.test(document.querySelector('[data-testid="grid-progress"]')?.textContent ?? ''), null, { timeout: 600_000 });
    await page.locator('#compare').screenshot({ path: path.join(out, `compare-${width}.png`) });
    await page.close();
  }
  console.log(`screenshots in ${out}`);
} finally {
  await site.close();
}
