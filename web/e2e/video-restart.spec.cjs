'use strict';
// video-restart.spec.cjs: a call's media stops getting through while the
// signaling sockets stay up, and comes back; the pages restart ICE on the
// peer connections they have and the pictures move again without a
// rejoin. web/video_restart_test.go's TestVideoCallRestartsICE stalls the
// server on `@@stall` and lets it go on on `@@resume`, with
//   CSTALK_URL, CSTALK_CHROMIUM, CSTALK_ARTIFACTS as in video.spec.cjs.
// It exits non-zero on the first failed check.
const assert = require('node:assert/strict');
const harness = require('./harness.cjs');

const base = process.env.CSTALK_URL;
const { step, shot, awaitDecodedFrames, awaitMoreFrames, counsel, run } = harness.spec({
  timeout: 20000, failureName: 'video-restart-failure', media: true,
});
const { control } = harness;
// A stalled path is noticed after seconds (Chromium's disconnected state,
// then the page's grace), and a loaded machine adds to it.
const RESTART_WAIT = 60000;

run(async (browser) => {
  const agentCtx = await browser.newContext({ viewport: { width: 1360, height: 900 }, locale: 'ko-KR' });
  const custCtx = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'ko-KR' });

  step('a customer and a counselor are in a call');
  const { cust, agent, pane, paneSel } = await counsel({
    custCtx, agentCtx, customerBase: base, consoleBase: base, name: '재시작고객', text: '영상 연결이 자주 끊겨요',
  });
  await pane.locator('.video-call-start').click();
  await pane.locator('.video-call[data-phase="waiting"][data-peer-connections="1"]').waitFor();
  await cust.locator('.call-accept').click();
  await awaitDecodedFrames(cust, 'body', 5);
  await awaitDecodedFrames(agent, paneSel, 5);
  const pages = [[cust, 'body', '.video-call'], [agent, paneSel, `${paneSel} .video-call`]];
  const panel = (page, sel) => page.evaluate((s) => {
    const el = document.querySelector(s);
    return { pcs: Number(el.dataset.peerConnections), restarts: Number(el.dataset.iceRestarts || 0), phase: el.dataset.phase };
  }, sel);
  const before = [];
  for (const [page, , sel] of pages) before.push(await panel(page, sel));
  assert.deepEqual(before.map((b) => [b.pcs, b.restarts]), [[2, 0], [2, 0]], 'a publication and a subscription each, no restart yet');

  step('nothing gets through; both pages restart ICE');
  const broke = Date.now();
  await control('stall', 'done');
  for (const [page, , sel] of pages) {
    await page.waitForFunction((s) => Number(document.querySelector(s).dataset.iceRestarts || 0) >= 1, sel, { timeout: RESTART_WAIT });
  }
  console.log(`  restarts under way ${Date.now() - broke} ms after the stall began`);

  step('the server goes on; both pictures move again on the same peer connections');
  const mended = Date.now();
  await control('resume', 'done');
  for (const [i, [page, scope]] of pages.entries()) {
    await awaitMoreFrames(page, scope, 30, RESTART_WAIT);
    console.log(`  page ${i} decodes again ${Date.now() - mended} ms after the server went on`);
  }
  console.log(`  pictures moving ${Date.now() - mended} ms after the server went on`);
  for (const [i, [page, , sel]] of pages.entries()) {
    const after = await panel(page, sel);
    assert.equal(after.pcs, before[i].pcs, 'no new peer connection: ICE restarted on the ones the call had');
    assert.equal(after.phase, 'connected');
    console.log(`  page ${i}: ${after.restarts} restarts`);
  }
  await shot(agent, 'video-restart-console');
  await shot(cust, 'video-restart-customer');
});
