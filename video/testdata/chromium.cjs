// Launches Debian's Chromium (CSTALK_CHROMIUM) for the video tests' pages:
// headless, fake camera and microphone granted without asking, host
// candidates instead of mDNS names so the SFU can reach it.
const { chromium } = require('playwright-core');

// extraArgs: more command-line switches (field trials).
exports.launch = (extraArgs = []) => chromium.launch({
  executablePath: process.env.CSTALK_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--use-fake-device-for-media-stream',
    '--use-fake-ui-for-media-stream', '--autoplay-policy=no-user-gesture-required',
    '--disable-features=WebRtcHideLocalIpsWithMdns', ...extraArgs],
});
