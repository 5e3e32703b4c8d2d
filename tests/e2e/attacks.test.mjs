// End-to-end tests of the attack catalogue's page parts in headless Chromium: a trigger drawn in the
// pixel editor goes into the link, trains a working backdoor and comes back from the link pixel for
// pixel; the blend image is drawn the same way; WaNet shows its field and the amplified difference;
// a semantic attack shows its sub-population; each attack's paper is named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labHooks } from './lab.mjs';

const { openLab } = labHooks();

/** Drags the mouse through grid cells [row, col] of the editor (a stroke), on a grid of `n` cells a side. */
async function stroke(lab, cells, n) {
  const box = await lab.id('editor-canvas').boundingBox();
  const at = ([r, c]) => [box.x + (c + 0.5) * box.width / n, box.y + (r + 0.5) * box.height / n];
  await lab.page.mouse.move(...at(cells[0]));
  await lab.page.mouse.down();
  for (const cell of cells.slice(1)) await lab.page.mouse.move(...at(cell), { steps: 4 });
  await lab.page.mouse.up();
}

/** The (row, col) pairs a drawing in the link holds: base64url of [values per pixel] + (row, col, values…). */
function drawnCells(value) {
  const bytes = Buffer.from(value, 'base64url');
  const per = bytes[0];
  const cells = [];
  for (let i = 1; i < bytes.length; i += 2 + per) cells.push(`${bytes[i]},${bytes[i + 1]}`);
  return cells.sort();
}

test('a trigger drawn in the editor is in the link, trains a backdoor, and comes back from the link', async () => {
  const lab = await openLab('#v=1&pattern=drawn&train=4000&test=1000&epochs=3&seed=3');
  await lab.ready();
  await lab.id('editor-clear').click();
  // An L in the top-left corner: down column 2 from row 2 to row 6, then along row 6 to column 6.
  const path = [[2, 2], [3, 2], [4, 2], [5, 2], [6, 2], [6, 3], [6, 4], [6, 5], [6, 6]];
  await stroke(lab, path, 28);
  await lab.page.waitForFunction(() => decodeURIComponent(location.hash).includes('drawing='));
  const value = (await lab.hash()).match(/drawing=([^&]+)/)[1];
  assert.deepEqual(drawnCells(value), path.map(([r, c]) => `${r},${c}`).sort(), `drawing ${value}`);
  assert.ok(value.length <= 40, `a 9-pixel drawing takes ${value.length} characters`);
  assert.ok((await lab.id('error').allTextContents()).every((t) => !t.trim()), 'no error shown');

  await lab.id('run').click();
  await lab.status('done');
  const ca = parseFloat(await lab.text('clean-acc'));
  const asr = parseFloat(await lab.text('asr'));
  console.log(`drawn L trigger in the page: CA ${ca} %, ASR ${asr} %`);
  assert.ok(ca >= 88, `CA ${ca}`);
  assert.ok(asr >= 80, `ASR ${asr}`);

  // The same link in a fresh tab: the same drawing in the editor, pixel for pixel.
  const shown = await lab.id('editor-canvas').getAttribute('src');
  const link = await lab.page.evaluate(() => location.hash);
  const other = await openLab(link);
  await other.ready();
  assert.equal(await other.hash(), await lab.hash());
  // The dimmed training image under the drawing arrives with the data, after the engine is ready.
  await other.page.waitForFunction(
    (want) => document.querySelector('[data-testid="editor-canvas"]')?.getAttribute('src') === want, shown, { timeout: 60_000 });
  assert.deepEqual(lab.consoleErrors, []);
  await lab.context.close();
  await other.context.close();
});

test('the blend image is drawn in the same editor and the whole plane goes into the link', async () => {
  const lab = await openLab('#v=1&attack=blended');
  await lab.ready();
  assert.match(await lab.page.locator('#poison').textContent(), /Chen et al\., 2017/);
  await lab.id('editor-clear').click();
  await stroke(lab, [[10, 10], [10, 11], [10, 12]], 28);
  await lab.page.waitForFunction(() => /blend=[A-Za-z0-9_-]{1000,}/.test(location.hash));
  const value = (await lab.hash()).match(/blend=([^&]+)/)[1];
  const bytes = Buffer.from(value, 'base64url');
  assert.equal(bytes.length, 28 * 28);
  const lit = [...bytes].map((v, i) => (v > 0 ? i : -1)).filter((i) => i >= 0);
  assert.deepEqual(lit, [10 * 28 + 10, 10 * 28 + 11, 10 * 28 + 12]);
  await lab.context.close();
});

test('WaNet shows its warp field and the amplified difference; a semantic attack shows its sub-population', async () => {
  const wanet = await openLab('#v=1&attack=wanet');
  await wanet.ready();
  const poison = wanet.page.locator('#poison');
  assert.match(await poison.textContent(), /Nguyen & Tran, ICLR 2021/);
  assert.match(await poison.textContent(), /warp field/);
  assert.equal(await poison.locator('figure.pair').first().locator('img').count(), 3);
  assert.equal(await wanet.id('trigger-editor').count(), 0);
  await wanet.context.close();

  const semantic = await openLab('#v=1&attack=semantic&style=bold');
  await semantic.ready();
  const text = await semantic.page.locator('#poison').textContent();
  assert.match(text, /Bagdasaryan et al\., 2020/);
  // One count: the members of the training split, which the run relabels (issue 31).
  const [, members, total] = text.match(/The sub-population: (\d+) of the (\d+) images of class 7 in the training split, relabelled 0/);
  assert.doesNotMatch(text, /training images poisoned/);
  console.log(`semantic (bold 7s) in the page: ${members} of ${total} members`);
  assert.ok(Math.abs(members / total - 0.2) < 0.02, `${members} of ${total}`);
  assert.ok(await semantic.id('member').count() >= 8);
  await semantic.context.close();
  // The crossed style says what its members are: the share of 7s with the longest middle bar, not all crossed.
  const crossed = await openLab('#v=1&attack=semantic&style=crossed');
  await crossed.ready();
  assert.match(await crossed.id('members-note').textContent(), /Not every member has a bar/);
  await crossed.context.close();
});
