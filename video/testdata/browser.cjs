// Opens Chromium pages running call.html, one per user, and waits until
// every page decodes every other page's video and receives the Go
// publisher's packets, prints the figures as one JSON line and stays until
// stdin closes: node browser.cjs BASE_URL ROOM GO_USER USER... where a USER
// may carry more page parameters after a "?" (user?signal=...&token=...).
const { launch } = require('./chromium.cjs');

const [base, room, goUser, ...specs] = process.argv.slice(2);
const users = specs.map((s) => s.split('?')[0]);
const extra = Object.fromEntries(specs.map((s) => [s.split('?')[0], s.split('?')[1] ? '&' + s.split('?')[1] : '']));
const deadline = Date.now() + 45000;

(async () => {
  const browser = await launch();
  let ok = false;
  try {
    const pages = {};
    for (const u of users) {
      const ctx = await browser.newContext();
      const page = await ctx.newPage();
      page.on('console', (m) => process.stderr.write(`[${u}] ${m.text()}\n`));
      page.on('pageerror', (e) => process.stderr.write(`[${u}] page error ${e}\n`));
      await page.goto(`${base}/test/call.html?user=${u}&room=${room}${extra[u]}`);
      pages[u] = page;
    }
    let last = {};
    while (Date.now() < deadline) {
      ok = true;
      for (const u of users) {
        for (const other of users.filter((o) => o !== u)) {
          const r = await pages[u].evaluate((t) => window.received(t), other);
          last[`${u}<-${other}`] = r;
          if (r.framesDecoded < 10 || r.width === 0 || r.audioPackets < 20) ok = false;
        }
        const g = await pages[u].evaluate((t) => window.received(t), goUser);
        last[`${u}<-${goUser}`] = g;
        if (g.videoPackets < 20 || g.audioPackets < 20) ok = false;
        const errs = await pages[u].evaluate(() => window.errors);
        if (errs.length) { last.errors = errs; ok = false; }
      }
      if (ok) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    // A late joiner must see the others' video soon: the SFU asks the
    // publishers for a keyframe when it subscribes.
    let lateJoinMs = -1;
    if (ok && process.env.LATE_USER) {
      const late = process.env.LATE_USER;
      const ctx = await browser.newContext();
      const page = await ctx.newPage();
      const start = Date.now();
      await page.goto(`${base}/test/call.html?user=${late}&room=${room}`);
      ok = false;
      while (!ok && Date.now() < deadline) {
        ok = true;
        for (const other of users) {
          const r = await page.evaluate((t) => window.received(t), other);
          last[`${late}<-${other}`] = r;
          if (r.framesDecoded < 1 || r.width === 0) ok = false;
        }
        if (!ok) await new Promise((r) => setTimeout(r, 50));
      }
      lateJoinMs = Date.now() - start;
    }
    process.stdout.write(JSON.stringify({ ok, lateJoinMs, received: last }) + '\n');
    // Stay in the room until the caller is done with its own checks.
    if (ok) await new Promise((r) => { process.stdin.on('end', r); process.stdin.resume(); });
  } finally {
    await browser.close();
  }
  process.exit(ok ? 0 : 1);
})().catch((e) => { process.stderr.write(String(e.stack || e) + '\n'); process.exit(2); });
