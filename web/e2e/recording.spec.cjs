'use strict';
// recording.spec.cjs: the administrator switches call recording on; a
// counselor and a customer hold a video call in Chromium (fake camera and
// microphone), both see that it is recorded; after the call the
// administrator's page lists the recording and Chromium plays each
// participant's WebM file: it loads, has the call's length, decodes frames
// and seeks. web/video_test.go starts the server (CSTALK_URL) and checks
// the files and who may fetch them afterwards.
const assert = require('node:assert/strict');
const harness = require('./harness.cjs');

const base = process.env.CSTALK_URL;
const { step, watch, shot, awaitDecodedFrames, counsel, run } = harness.spec({
  timeout: 20000, failureName: 'recording-failure', media: true,
});

async function login(page, url, loginName) {
  await page.goto(base + url);
  await page.locator('#login-name').fill(loginName);
  await page.locator('#login-password').fill('demo1234');
  await page.locator('#login-submit').click();
  await page.locator('#conn[data-state="connected"]').waitFor();
}

run(async (browser) => {
  const adminCtx = await browser.newContext({ viewport: { width: 1360, height: 1000 }, locale: 'ko-KR' });
  const agentCtx = await browser.newContext({ viewport: { width: 1360, height: 900 }, locale: 'ko-KR' });
  const custCtx = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'ko-KR', isMobile: true, hasTouch: true });

  step('the administrator switches call recording on');
  const admin = await adminCtx.newPage();
  watch(admin, 'admin');
  await login(admin, '/admin', 'admin1');
  const recordSwitch = admin.locator('#record-calls');
  await recordSwitch.waitFor({ state: 'attached' });
  assert.equal(await recordSwitch.isChecked(), false, 'recording is off by default');
  const saved = admin.waitForResponse((r) => r.url().endsWith('/api/admin/settings') && r.request().method() === 'PUT' && r.ok());
  await admin.locator('label', { has: recordSwitch }).click();
  await saved;
  assert.equal(await recordSwitch.isChecked(), true);
  await admin.locator('#recordings-state', { hasText: '녹화가 없습니다.' }).waitFor();

  step('a customer writes; the counselor opens the room and calls');
  const { cust, agent, roomId, pane, paneSel } = await counsel({
    custCtx, agentCtx, customerBase: base, consoleBase: base, name: '녹화고객', text: '영상으로 계량기를 보여 드릴게요.',
  });
  await pane.locator('.video-call-start').click();

  step('both sides are told the call is recorded, before and during it');
  await cust.locator('.video-call[data-phase="invited"] .call-recorded', { hasText: '녹화됩니다' }).waitFor();
  await pane.locator('.video-call .call-recorded', { hasText: '녹화됩니다' }).waitFor();
  await cust.locator('.call-accept').click();
  await awaitDecodedFrames(cust, 'body', 5);
  await awaitDecodedFrames(agent, paneSel, 5);
  const began = Date.now();
  for (const scope of [cust, pane]) {
    await scope.locator('.msg.system', { hasText: '이 영상 상담은 녹화되고 있습니다.' }).waitFor();
    await scope.locator('.video-call[data-phase="connected"] .call-recorded', { hasText: '녹화 중' }).waitFor();
  }
  await shot(cust, 'recording-customer-notice');
  await shot(agent, 'recording-console-notice');

  step('English shows the notice in English');
  await cust.locator('#lang').click();
  await cust.locator('.call-recorded', { hasText: 'this video call is recorded' }).waitFor();
  await cust.locator('#lang').click();

  step('the call goes on for a few seconds, then the customer hangs up');
  // The call's length is what the files must match; the pages keep
  // decoding meanwhile.
  await cust.waitForFunction((t) => Date.now() >= t, began + 6000, { timeout: 20000 });
  await awaitDecodedFrames(cust, 'body', 60);
  await cust.locator('.call-hangup').click();
  const callMs = Date.now() - began;
  console.log(`  the call lasted ${callMs} ms from both decoding to the hang-up`);
  await pane.locator('.msg.system', { hasText: /통화 시간 \d+초/ }).waitFor();
  await pane.locator('.video-call .call-recorded').waitFor({ state: 'hidden' });

  step('the administrator lists the recording and Chromium plays each file');
  await admin.reload();
  await admin.locator('#conn[data-state="connected"]').waitFor();
  const rec = admin.locator('.recording').first();
  await rec.locator('.recording-head', { hasText: `상담 #${roomId}` }).waitFor();
  const videos = rec.locator('.recording-file video');
  await admin.waitForFunction((n) => document.querySelectorAll('.recording:first-child .recording-file video').length === n, 2);
  await shot(admin, 'recording-admin-list');
  for (let i = 0; i < 2; i++) {
    const handle = await videos.nth(i).elementHandle();
    const got = await handle.evaluate(async (v) => {
      v.muted = true;
      const until = (ev) => new Promise((resolve, reject) => {
        v.addEventListener(ev, resolve, { once: true });
        v.addEventListener('error', () => reject(new Error(`media error ${v.error && v.error.code}: ${v.error && v.error.message}`)), { once: true });
      });
      if (v.readyState < 1) await until('loadedmetadata');
      const duration = v.duration;
      // Frames come out of the decoder while it plays.
      const frames = new Promise((resolve) => {
        let n = 0;
        const next = () => v.requestVideoFrameCallback(() => { n += 1; if (n >= 10) resolve(n); else next(); });
        next();
      });
      await v.play();
      const decoded = await frames;
      const playedTo = v.currentTime;
      // A seek near the end lands (Range requests and the Cues index).
      v.pause();
      const seekTo = Math.max(0, duration - 1);
      const seeked = until('seeked');
      v.currentTime = seekTo;
      await seeked;
      return { duration, width: v.videoWidth, height: v.videoHeight, decoded, playedTo, seekedTo: v.currentTime };
    });
    console.log(`  file ${i}: ${JSON.stringify(got)}`);
    assert.ok(got.width > 0 && got.height > 0, 'the file has a picture');
    assert.ok(got.decoded >= 10 && got.playedTo > 0, 'Chromium decodes frames and time advances');
    assert.ok(Number.isFinite(got.duration), 'the file says how long it is');
    // The file begins when the participant's first keyframe came, at
    // most a few seconds before both decoded, and ends at the hang-up.
    assert.ok(got.duration >= callMs / 1000 - 1.5 && got.duration <= callMs / 1000 + 8,
      `a file of ${got.duration}s for a call of ${callMs / 1000}s`);
    assert.ok(Math.abs(got.seekedTo - Math.max(0, got.duration - 1)) < 1.5, `seeked to ${got.seekedTo}`);
  }
});
