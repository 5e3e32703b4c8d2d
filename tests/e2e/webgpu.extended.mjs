// The same small MNIST BadNets run on WebGPU (SwiftShader, a CPU implementation of WebGPU, in headless
// Chromium) and on the CPU device: the device self-check passes, the badge says webgpu, and CA/ASR agree
// within 2 points. Slow on SwiftShader; SKIP_WEBGPU=1 skips it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { labHooks } from './lab.mjs';

const site = labHooks({ args: ['--enable-unsafe-webgpu'] });

async function run(fragment) {
  const { page, context, consoleLogs: logs, text } = await site.openLab(fragment, { ready: true });
  const before = await text('device');
  const t0 = await page.evaluate(() => performance.now());
  await page.locator('[data-testid="run"]').click();
  await page.waitForFunction(() => ['done', 'failed'].includes(document.querySelector('[data-testid="status"]')?.textContent),
    null, { timeout: 1_500_000 });
  const seconds = (await page.evaluate(() => performance.now()) - t0) / 1000;
  const status = await text('status');
  assert.equal(status, 'done', `run ${status}: ${await page.locator('[data-testid="error"]').textContent().catch(() => '')}\n${logs.join('\n')}`);
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByText('Export report (JSON)').click()]);
  const report = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
  const result = {
    before, device: await text('device'), notice: await page.locator('.notice').textContent(),
    ca: parseFloat(await text('clean-acc')), asr: parseFloat(await text('asr')), report, seconds, logs,
  };
  await context.close();
  return result;
}

test('WebGPU passes its self-check and trains like the CPU', { skip: process.env.SKIP_WEBGPU === '1' }, async () => {
  const spec = process.env.WEBGPU_SPEC ?? '#v=1&train=2000&test=500&epochs=2&seed=3';
  const gpu = await run(spec);
  console.log(`WebGPU: badge ${gpu.before} → ${gpu.device}; ${gpu.notice}`);
  console.log(`WebGPU run: CA ${gpu.ca} %, ASR ${gpu.asr} %, ${gpu.seconds.toFixed(1)} s, training ${gpu.report.train_samples_per_second.toFixed(0)} samples/s, epochs ${gpu.report.epochs.map((e) => e.seconds.toFixed(1)).join(' / ')} s`);
  assert.equal(gpu.before, 'webgpu', 'the worker found the WebGPU adapter');
  assert.equal(gpu.report.device, 'webgpu', `the run used WebGPU: ${gpu.notice}\n${gpu.logs.join('\n')}`);
  assert.match(gpu.notice, /checked against the CPU/);
  const cpu = await run(`${spec}&device=cpu`);
  console.log(`CPU run: CA ${cpu.ca} %, ASR ${cpu.asr} %, ${cpu.seconds.toFixed(1)} s, training ${cpu.report.train_samples_per_second.toFixed(0)} samples/s`);
  assert.equal(cpu.report.device, 'cpu');
  assert.ok(Math.abs(gpu.ca - cpu.ca) <= 2, `CA WebGPU ${gpu.ca} vs CPU ${cpu.ca}`);
  assert.ok(Math.abs(gpu.asr - cpu.asr) <= 2, `ASR WebGPU ${gpu.asr} vs CPU ${cpu.asr}`);
  assert.ok(gpu.ca >= 80, `training works on WebGPU: CA ${gpu.ca}`);
});

// A test-only hook, injected into the worker's loader by the test (never shipped): it keeps every
// GPUDevice the worker requests, so the test can destroy the device mid-run as a driver reset would.
const KEEP_DEVICES = `if (self.GPUAdapter) {
  const request = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await request.apply(this, args);
    (self.__labDevices ??= []).push(device);
    return device;
  };
}
`;

test('a WebGPU device lost mid-run finishes the run on the CPU with a notice', { skip: process.env.SKIP_WEBGPU === '1' }, async () => {
  const fragment = '#v=1&train=1000&test=300&epochs=2&seed=4';
  const { page, context, consoleLogs: logs, text } = await site.openLab(fragment, {
    ready: true,
    prepare: (context) => context.route('**/worker_loader.js', async (route) => {
      const response = await route.fetch();
      route.fulfill({ response, body: KEEP_DEVICES + await response.text() });
    }),
  });
  const linkBefore = page.url();
  await page.locator('[data-testid="run"]').click();
  // Wait until training is under way on WebGPU (past the warm-up's self-check), then lose the device.
  await page.waitForFunction(() => document.querySelector('[data-testid="device"]')?.textContent.trim() === 'webgpu'
    && document.querySelector('[data-testid="progress"]')?.value > 0.05, null, { timeout: 600_000 });
  const worker = page.workers().find((w) => w.url().endsWith('worker_loader.js'));
  assert.ok(worker, 'the lab worker is running');
  const destroyed = await worker.evaluate(() => { for (const d of self.__labDevices ?? []) d.destroy(); return (self.__labDevices ?? []).length; });
  assert.ok(destroyed >= 1, 'the hook saw the worker request a WebGPU device');
  await page.waitForFunction(() => ['done', 'failed'].includes(document.querySelector('[data-testid="status"]')?.textContent),
    null, { timeout: 900_000 });
  const status = await text('status');
  const notice = await page.locator('.notice').textContent();
  console.log(`device lost after ${destroyed} device(s): status ${status}; badge ${await text('device')}; notice: ${notice}`);
  assert.equal(status, 'done', `run ${status}: ${await page.locator('[data-testid="error"]').textContent().catch(() => '')}\n${logs.join('\n')}`);
  assert.equal(await text('device'), 'cpu', 'the run finished on the CPU');
  assert.match(notice, /WebGPU/i, 'the notice says why the CPU took over');
  assert.match(notice, /CPU/);
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByText('Export report (JSON)').click()]);
  const report = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
  assert.equal(report.device, 'cpu');
  assert.equal(report.epochs.length, 2, 'every epoch is in the report');
  assert.ok(parseFloat(await text('clean-acc')) >= 70, 'the CPU rerun trained');
  assert.equal(page.url(), linkBefore, 'the experiment link is unchanged');
  if (process.env.SCREENSHOTS) {
    await page.locator('.notice').scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(process.env.SCREENSHOTS, 'device-lost.png') });
  }
  await context.close();
});
