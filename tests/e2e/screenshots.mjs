// Screenshots of each step of the built page at a desktop and a phone width, after a short run with
// detectors and repairs, for people to look at (not a test): `node screenshots.mjs OUT_DIR`.
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { serveDist, BASE_ARGS } from './serve.mjs';

const out = process.argv[2] ?? 'screenshots';
fs.mkdirSync(out, { recursive: true });
const { server, origin } = await serveDist();
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: BASE_ARGS });
const fragment = '#v=1&train=1000&test=200&epochs=1&seed=3&detect=nc,ac,strip&nc_steps=20&strip_n=10&strip_inputs=50'
  + '&repair=ft,nc_unlearn,retrain&ft_epochs=1&nc_epochs=1&freeze=none,features&finetune_epochs=2&finetune_size=500&device=cpu';
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  await page.goto(`${origin}/${fragment}`);
  await page.waitForSelector('[data-testid="run"]:not([disabled])', { timeout: 120_000 });
  await page.locator('[data-testid="run"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="status"]')?.textContent === 'done', null, { timeout: 600_000 });
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
  console.log(`screenshots in ${out}`);
} finally {
  await browser.close();
  server.close();
}
