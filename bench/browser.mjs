#!/usr/bin/env node
// Drives headless Chromium (Debian's /usr/bin/chromium) for the benchmark: the peers' TF.js page or our
// built page, and prints one JSON line with what it measured.
//
//   node bench/browser.mjs tfjs '<query>' [cpu|gpu]       TF.js page (bench/tfjs, served by bench/tfjs/serve.py on $PORT)
//   node bench/browser.mjs lab '<link>' [cpu|gpu] [runs]   our page (dist/), `runs` runs of the link in one tab
//
// playwright-core comes from the benchmark's own folder ($BENCH_DIR/tfjs/node_modules): nothing here is
// installed into the project.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { serveDist, BASE_ARGS } from '../tests/e2e/serve.mjs';

const BENCH_DIR = process.env.BENCH_DIR ?? path.join(os.homedir(), '.cache/backdoor-lab/bench');
const { chromium } = createRequire(path.join(BENCH_DIR, 'tfjs/package.json'))('playwright-core');

// The SwiftShader WebGPU flags of ../shared/BROWSER.md; the CPU runs get none of them.
const GPU_ARGS = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader', '--use-angle=swiftshader', '--ignore-gpu-blocklist'];

const [what, query, flags = 'cpu', runsArg = '1'] = process.argv.slice(2);
if (!['tfjs', 'lab'].includes(what) || query === undefined) {
  console.error("usage: browser.mjs tfjs|lab '<query or link>' [cpu|gpu] [runs]");
  process.exit(2);
}
const args = ['--headless=new', ...BASE_ARGS, ...(flags === 'gpu' ? GPU_ARGS : [])];
const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bdl-bench-'));
const context = await chromium.launchPersistentContext(userDir, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: false, args,
  ignoreDefaultArgs: ['--enable-automation'], acceptDownloads: true,
});
const page = context.pages()[0] ?? await context.newPage();
const logs = [];
page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
const result = { what, query, flags, browser: context.browser()?.version(), date: new Date().toISOString() };
let server;
try {
  if (what === 'tfjs') {
    await page.goto(`http://127.0.0.1:${process.env.PORT ?? 8765}/index.html?${query}`);
    await page.waitForFunction(() => window.__done === true, null, { timeout: 1_800_000, polling: 1000 });
    Object.assign(result, await page.evaluate(() => window.__result));
  } else {
    let origin;
    ({ server, origin } = await serveDist());
    await page.goto(`${origin}/#${query.replace(/^#/, '')}`);
    const text = async (t) => (await page.locator(`[data-testid="${t}"]`).textContent()).trim();
    await page.waitForSelector('[data-testid="run"]:not([disabled])', { timeout: 300_000 });
    result.runs = [];
    for (let r = 0; r < Number(runsArg); r++) {
      const t0 = await page.evaluate(() => performance.now());
      await page.locator('[data-testid="run"]').click();
      await page.waitForFunction(() => ['done', 'failed'].includes(document.querySelector('[data-testid="status"]')?.textContent),
        null, { timeout: 3_600_000, polling: 200 });
      const wall = (await page.evaluate(() => performance.now()) - t0) / 1000;
      if (await text('status') !== 'done') throw new Error(`run failed: ${await page.locator('[data-testid="error"]').textContent().catch(() => '?')}`);
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByText('Export report (JSON)').click()]);
      const report = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
      result.runs.push({
        device: report.device, wall_s: wall, seconds: report.seconds,
        // What the run waited for outside its own stages: choosing the device and, the first time a
        // model meets WebGPU, the warm-up (kernel compilation and the self-check against the CPU).
        outside_s: wall - report.seconds.total,
        samples_per_s: report.train_samples_per_second,
        CA: report.final.clean_acc, ASR: report.final.asr,
        notice: (await page.locator('.notice').first().textContent().catch(() => '')).trim(),
      });
    }
    const last = result.runs[result.runs.length - 1];
    Object.assign(result, { samples_per_s: last.samples_per_s, CA: last.CA, ASR: last.ASR, device: last.device });
  }
} catch (e) {
  result.error = String(e).slice(0, 800);
  result.console = logs.slice(-20);
} finally {
  await context.close();
  server?.close();
  fs.rmSync(userDir, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
