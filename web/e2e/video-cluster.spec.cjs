'use strict';
// video-cluster.spec.cjs: a video call outlives the node its room is on.
// The counselor's console is on node a, the customer's page on node b,
// each behind a load balancer that falls back to the other node. The
// call's room is on a (the counselor joins first; the customer is relayed
// from b). a is drained (SIGTERM): both pages must rejoin by themselves,
// showing that they reconnect, and decode each other on b. a comes back;
// b, which has the room now, is killed (SIGKILL): both rejoin on a once
// b's lease ran out. web/video_cluster_test.go starts the nodes and runs it
// with
//   CSTALK_CONSOLE_URL   the console's load balancer (a, then b)
//   CSTALK_CUSTOMER_URL  the customer's load balancer (b, then a)
//   CSTALK_CHROMIUM, CSTALK_ARTIFACTS as in harness.cjs
// It exits non-zero on the first failed check.
const assert = require('node:assert/strict');
const harness = require('./harness.cjs');

const consoleBase = process.env.CSTALK_CONSOLE_URL;
const customerBase = process.env.CSTALK_CUSTOMER_URL;
const { step, shot, awaitDecodedFrames, metric, counsel, run } = harness.spec({
  timeout: 20000, failureName: 'video-cluster-failure', media: true,
});
const { control } = harness;
// How long a page may take to be back in the call: a killed node's room
// moves after its lease (2 s here) and the pages' rejoins pause longer and
// longer; a loaded machine adds to it.
const REJOIN_WAIT = 60000;

run(async (browser) => {
  const agentCtx = await browser.newContext({ viewport: { width: 1360, height: 900 }, locale: 'ko-KR' });
  const custCtx = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'ko-KR' });

  step('a customer writes on node b; the counselor opens the room on node a');
  const { cust, agent, pane, paneSel } = await counsel({
    custCtx, agentCtx, customerBase, consoleBase, name: '이동고객', text: '영상으로 점검을 받고 싶어요',
  });

  step('the counselor calls, the customer accepts; each decodes the other');
  await pane.locator('.video-call-start').click();
  // The counselor is in the room (publishing) before the customer comes:
  // the room is a's.
  await pane.locator('.video-call[data-phase="waiting"][data-peer-connections="1"]').waitFor();
  await cust.locator('.call-accept').click();
  await awaitDecodedFrames(cust, 'body', 5);
  await awaitDecodedFrames(agent, paneSel, 5);
  // The room is on a: the customer's signaling reaches it through b.
  assert.equal(await metric(consoleBase, 'cstalk_video_signaling_connections{transport="relay"}'), 1,
    'the customer is relayed to the room on node a');

  // moves stops a node as command says and waits until both pages
  // rejoined by themselves (new peer connections, a notice while they
  // reconnect) and decode each other again; it returns the milliseconds
  // from the signal to both pictures moving.
  const pages = [[cust, 'body', '.video-call'], [agent, paneSel, `${paneSel} .video-call`]];
  async function moves(command) {
    const before = [];
    for (const [page, , panel] of pages) {
      before.push(await page.evaluate((sel) => {
        const el = document.querySelector(sel);
        // The notice may come and go between two looks: the page keeps
        // what its call panel said.
        window.saidReconnecting = false;
        new MutationObserver(() => {
          if (/다시 연결/.test(el.textContent)) window.saidReconnecting = true;
        }).observe(el, { subtree: true, childList: true, characterData: true });
        return Number(el.dataset.peerConnections);
      }, panel));
    }
    const start = Date.now();
    await control(command, 'done');
    for (const [i, [page, scope, panel]] of pages.entries()) {
      // A publication and a subscription, both new.
      await page.waitForFunction(([sel, n]) => Number(document.querySelector(sel).dataset.peerConnections) >= n,
        [panel, before[i] + 2], { timeout: REJOIN_WAIT });
      await page.locator(`${panel}[data-phase="connected"]`).waitFor({ timeout: REJOIN_WAIT });
      await awaitDecodedFrames(page, scope, 5);
      assert.ok(await page.evaluate(() => window.saidReconnecting), 'the page said it was reconnecting');
    }
    return Date.now() - start;
  }

  step('node a drains (SIGTERM): both pages rejoin on b');
  const drained = await moves('term a');
  console.log(`  SIGTERM to both pictures moving again: ${drained} ms`);
  await shot(agent, 'video-cluster-console-after-term');
  await shot(cust, 'video-cluster-customer-after-term');

  step('node a comes back; node b, the room\'s now, is killed (SIGKILL): both pages rejoin on a');
  await control('start a', 'done');
  const killed = await moves('kill b');
  console.log(`  SIGKILL to both pictures moving again: ${killed} ms`);
  await shot(agent, 'video-cluster-console-after-kill');
  await shot(cust, 'video-cluster-customer-after-kill');

  step('the customer hangs up on node a; the call ends on both pages');
  await cust.locator('.call-hangup').click();
  await pane.locator('.video-call[data-phase="idle"] .call-state', { hasText: '영상 상담이 종료되었습니다' }).waitFor({ timeout: REJOIN_WAIT });
});
