'use strict';
// video.spec.cjs: a counselor and a customer turn their chat into a video
// call from the pages, in Chromium with a fake camera and microphone. Each
// page must decode the other's video through the SFU; then the customer
// hangs up and both chats show the call's system messages. web/video_test.go
// starts the server and runs it with
//   CSTALK_URL        the server, e.g. http://127.0.0.1:41234
//   CSTALK_CHROMIUM   the browser executable
//   CSTALK_ARTIFACTS  where screenshots go
// It exits non-zero on the first failed check.
const assert = require('node:assert/strict');
const harness = require('./harness.cjs');

const base = process.env.CSTALK_URL;
const { step, shot, awaitDecodedFrames, metric, counsel, run } = harness.spec({
  timeout: 15000, failureName: 'video-failure', media: true,
});

run(async (browser) => {
  const agentCtx = await browser.newContext({ viewport: { width: 1360, height: 900 }, locale: 'ko-KR' });
  const custCtx = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'ko-KR', isMobile: true, hasTouch: true });

  step('a customer writes; the counselor opens the room');
  const { cust, agent, pane, paneSel } = await counsel({
    custCtx, agentCtx, customerBase: base, consoleBase: base, name: '영상고객', text: '가스레인지 점검을 영상으로 받을 수 있나요?',
  });

  step('the counselor starts a video call; the invitation shows in both chats');
  const start = Date.now();
  await pane.locator('.video-call-start').filter({ hasText: '영상 상담' }).click();
  await pane.locator('.msg.system', { hasText: '영상 상담을 요청했습니다' }).waitFor();
  await cust.locator('.msg.system', { hasText: '영상 상담을 요청했습니다' }).waitFor();
  await pane.locator('.video-call[data-phase="waiting"] .call-state', { hasText: '응답을 기다리고' }).waitFor();
  await cust.locator('.video-call[data-phase="invited"] .call-state', { hasText: '영상 상담 요청' }).waitFor();
  await shot(cust, 'video-customer-invited');

  step('the customer accepts; each side decodes the other through the SFU');
  await cust.locator('.call-accept').click();
  const custSees = await awaitDecodedFrames(cust, 'body', 5);
  const agentSees = await awaitDecodedFrames(agent, paneSel, 5);
  console.log(`  decoding after ${Date.now() - start} ms: customer ${JSON.stringify(custSees)}, counselor ${JSON.stringify(agentSees)}`);
  await cust.locator('.video-call[data-phase="connected"]').waitFor();
  await pane.locator('.video-call[data-phase="connected"] .call-state', { hasText: '영상 상담 중' }).waitFor();
  await pane.locator('.msg.system', { hasText: '영상고객님이 영상 상담에 참여했습니다.' }).waitFor();
  await cust.locator('.msg.system', { hasText: '상담사2님이 영상 상담에 참여했습니다.' }).waitFor();
  await shot(agent, 'video-console-call');
  await shot(cust, 'video-customer-call');

  step('each page publishes its camera in three simulcast layers; the server receives all of them');
  await cust.locator('.video-call[data-layers="3"]').waitFor({ state: 'attached' });
  await pane.locator('.video-call[data-layers="3"]').waitFor({ state: 'attached' });
  // Two pages, each a microphone and three camera layers; a layer counts
  // once its first packet arrived (the full one after the bandwidth
  // estimate rose), so this waits for them.
  let tracks = 0;
  for (const until = Date.now() + 30000; Date.now() < until; await new Promise((r) => setTimeout(r, 500))) {
    tracks = await metric(base, 'cstalk_video_published_tracks');
    if (tracks >= 8) break;
  }
  console.log(`  published tracks: ${tracks}`);
  assert.equal(tracks, 8, 'two microphones and six camera layers');

  step('the counselor turns the camera off; the customer is told');
  await pane.locator('.call-camera').click();
  await pane.locator('.call-camera[aria-pressed="true"]', { hasText: '카메라 켜기' }).waitFor();
  await cust.locator('video.call-remote.off').waitFor({ state: 'attached' });
  await cust.locator('.call-remote-note', { hasText: '카메라가 꺼져' }).waitFor();
  await pane.locator('.call-camera').click();
  await cust.locator('video.call-remote:not(.off)').waitFor();
  await pane.locator('.call-mic').click();
  await pane.locator('.call-mic[aria-pressed="true"]').waitFor();

  step('the customer reloads during the call and rejoins with a fresh video token');
  await pane.locator('.call-mic').click();
  await cust.reload();
  await cust.locator('.video-call[data-phase="invited"] .call-state', { hasText: '진행 중인 영상 상담' }).waitFor();
  await cust.locator('.call-accept').click();
  await awaitDecodedFrames(cust, 'body', 5);
  await pane.locator('.msg.system', { hasText: '영상고객님이 영상 상담에서 나갔습니다.' }).waitFor();
  await pane.locator('.video-call[data-phase="connected"]').waitFor();
  await awaitDecodedFrames(agent, paneSel, 5);
  await shot(cust, 'video-customer-rejoined');

  step('the customer hangs up; both chats record the call');
  await cust.locator('.call-hangup').click();
  await cust.locator('.video-call[data-phase="idle"] .call-state', { hasText: '영상 상담이 종료되었습니다' }).waitFor();
  await pane.locator('.video-call[data-phase="idle"] .call-state', { hasText: '영상 상담이 종료되었습니다' }).waitFor();
  for (const page of [cust, agent]) {
    const scope = page === agent ? pane : cust;
    await scope.locator('.msg.system', { hasText: /통화 시간 \d+초/ }).waitFor();
    await scope.locator('.msg.system', { hasText: '상담사2님이 영상 상담에서 나갔습니다.' }).waitFor();
    await scope.locator('.msg.system', { hasText: '영상고객님이 영상 상담에서 나갔습니다.' }).last().waitFor();
    assert.equal(await page.locator('video.call-remote').count(), 0, 'the remote video is gone');
  }
  await shot(agent, 'video-console-ended');
  await shot(cust, 'video-customer-ended');

  step('after a reload the customer page shows the call in the history and offers no stale call');
  await cust.reload();
  await cust.locator('.msg.system', { hasText: /통화 시간 \d+초/ }).waitFor();
  await cust.locator('.msg.system', { hasText: '영상 상담을 요청했습니다' }).waitFor();
  assert.equal(await cust.locator('.video-call[data-phase="invited"]').count(), 0, 'no rejoin offer after the call ended');

  step('English');
  await cust.locator('#lang').click();
  await pane.locator('.video-call-start').click();
  await cust.locator('.video-call[data-phase="invited"] .call-accept', { hasText: 'Accept' }).waitFor();
  await cust.locator('.call-decline', { hasText: 'Decline' }).click();
  await pane.locator('.video-call[data-phase="idle"] .call-state', { hasText: '거절했습니다' }).waitFor();
  await pane.locator('.msg.system', { hasText: '영상 상담을 거절했습니다' }).waitFor();

});
