// A long session: ten experiments in a row in one tab leave the lab worker's memory flat. The worker's
// WebAssembly memory only grows (it is the high-water mark of everything the lab allocated), so a leak of
// any size per run shows as growth between run 5 and run 10.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labHooks } from './lab.mjs';

const { openLab } = labHooks();

test('ten runs in one tab leave the worker memory flat', async () => {
  // Small runs that still go through poisoning, training, evaluation and two detectors.
  const lab = await openLab('#v=1&train=400&test=100&epochs=1&seed=2&detect=ss,strip&strip_n=10&strip_inputs=50&device=cpu', { ready: true });
  const { page } = lab;
  const worker = () => {
    const [w] = page.workers();
    assert.ok(w, 'the lab worker is running');
    return w;
  };
  const mib = (b) => (b / 1048576).toFixed(1);
  const memory = {};
  for (let run = 1; run <= 10; run++) {
    await page.locator('[data-testid="run"]').click();
    await lab.status('done');
    if ([1, 5, 10].includes(run)) memory[run] = await worker().evaluate(() => wasm_bindgen.lab_memory_bytes());
  }
  console.log(`worker memory after runs 1 / 5 / 10: ${mib(memory[1])} / ${mib(memory[5])} / ${mib(memory[10])} MiB`);
  assert.ok(memory[10] <= memory[5] * 1.05, `the worker grew from ${mib(memory[5])} to ${mib(memory[10])} MiB over runs 6-10`);
  assert.ok(memory[10] <= memory[1] * 1.5, `the worker grew from ${mib(memory[1])} to ${mib(memory[10])} MiB over ten runs`);
  await lab.context.close();
});
