// Browser test of the web page, in Debian's headless Chromium driven by
// playwright-core (no browser download).
//
//   node tests/browser/ui.mjs http://127.0.0.1:PORT [SCREENSHOT.png]
//
// Expects a server with the `test` source and no recording running. Opens
// `/`, checks live frames arrive and change, the test-pattern banner, Start,
// REC with a growing elapsed time, Stop, the last clip playing in <video>,
// a recording started elsewhere (curl) showing up, an API error shown to the
// user, the phone layout not overflowing, and no console errors. Exits 0 on
// success, 1 with a message on the first failure.
//
// PHONE_SCREENSHOT=path also saves the phone-sized page.

import {
  apiFor,
  baseArg,
  check,
  fmt,
  horizontalOverflow,
  log,
  openBrowser,
  parseClock,
  previewChanges,
  previewSize,
  run,
  sleep,
  until,
} from "./lib.mjs";

const base = baseArg("node ui.mjs http://HOST:PORT [SCREENSHOT.png]");
const screenshotPath = process.argv[3] || "";
const api = apiFor(base);

async function main() {
  const browser = await openBrowser();
  const { context } = browser;
  try {
    const page = context.pages()[0] || (await context.newPage());
    browser.watch(page, "desktop");
    let streamRequests = 0; // the page reconnects only when something broke
    const streamEvents = []; // when each /video began and ended, for a failure's message
    const t0 = Date.now();
    const at = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
    page.on("request", (r) => {
      if (new URL(r.url()).pathname !== "/video") return;
      streamRequests++;
      streamEvents.push(`${at()} GET ${new URL(r.url()).search || "/video"}`);
    });
    page.on("requestfailed", (r) => {
      if (new URL(r.url()).pathname === "/video") streamEvents.push(`${at()} failed: ${r.failure() && r.failure().errorText}`);
    });
    page.on("requestfinished", (r) => {
      if (new URL(r.url()).pathname === "/video") streamEvents.push(`${at()} ended`);
    });

    // 1. The page and its live preview.
    const resp = await page.goto(base + "/", { waitUntil: "load" });
    check(resp && resp.status() === 200, `GET / answered ${resp && resp.status()}`);
    check((await page.title()).includes("Video Recorder"), `unexpected title ${await page.title()}`);
    log("page loaded");

    const size = await previewSize(page);
    log(`preview shows frames of ${size[0]}x${size[1]}`);
    // Live, not a still: several different pictures in a few seconds (a
    // 15 fps stream gives dozens; a frozen or dying one does not).
    const seen = await previewChanges(page, 5, 10_000, 100);
    log(`preview picture changes over time (${seen} different pictures)`);

    // 2. The test-pattern banner.
    const status0 = (await api("GET", "/status")).body;
    check(status0 && status0.recording === false, `server should be idle at start: ${fmt(status0)}`);
    const banner = await until("the test-pattern banner", () =>
      page.evaluate(() => {
        const b = document.getElementById("banner");
        return !b.hidden && b.offsetHeight > 0 && b.innerText;
      }),
    );
    check(/test pattern/i.test(banner), `banner does not say test pattern: ${banner}`);
    check(status0.source.state === "test", `server source state is ${status0.source.state}, expected test`);
    log(`banner: ${banner.replace(/\s+/g, " ")}`);

    // 3. Start: the button is disabled while the request is in flight.
    await until("the Start button to be enabled", () => page.isEnabled("#record"));
    check((await page.textContent("#record-label")).includes("Start"), "button does not offer Start");
    const disabledInFlight = await page.evaluate(() => {
      const b = document.getElementById("record");
      b.click();
      return b.disabled;
    });
    check(disabledInFlight, "Start button stays enabled while its request is in flight");
    await until("REC after Start", async () => {
      const ui = await page.evaluate(() => ({
        rec: !document.getElementById("rec").hidden,
        error: document.getElementById("error").hidden ? "" : document.getElementById("error").textContent,
      }));
      check(!ui.error, `Start failed on the page: ${ui.error}`);
      return ui.rec;
    }, 30_000);
    await until("the button to offer Stop", async () => (await page.textContent("#record-label")).includes("Stop"));
    const st1 = (await api("GET", "/status")).body;
    check(st1.recording === true, `server not recording after Start: ${fmt(st1)}`);
    log(`recording ${st1.recording_id}: REC visible`);

    // 4. The elapsed time grows, and agrees with the server's.
    const e1 = parseClock(await page.textContent("#rec-time"));
    await sleep(1600);
    const e2 = parseClock(await page.textContent("#rec-time"));
    check(e2 > e1, `elapsed time did not grow: ${e1} s then ${e2} s`);
    const server = (await api("GET", "/status")).body.elapsed_sec;
    const shown = parseClock(await page.textContent("#rec-time"));
    check(Math.abs(server - shown) < 3, `shown elapsed ${shown} s far from server's ${server} s`);
    log(`elapsed ${e1} s -> ${e2} s (server ${server.toFixed(2)} s)`);
    await sleep(500);

    // 5. Stop, then the clip plays inline.
    await page.click("#record");
    await until("the button to offer Start again", async () => (await page.textContent("#record-label")).includes("Start"), 30_000);
    check(await page.isHidden("#rec"), "REC still visible after Stop");
    await page.waitForSelector("#clip-video", { state: "visible", timeout: 10_000 });
    const src = await page.getAttribute("#clip-video", "src");
    check(/^\/last\?v=/.test(src || ""), `clip <video> src is ${src}`);
    log(`stopped; player src ${src}`);

    const canPlay = await page.evaluate(() => document.getElementById("clip-video").canPlayType('video/mp4; codecs="avc1.42E01E"'));
    check(canPlay === "probably", `canPlayType(avc1.42E01E) = ${JSON.stringify(canPlay)}`);
    const play = await page.evaluate(async () => {
      const v = document.getElementById("clip-video");
      v.muted = true;
      await v.play();
      return { start: v.currentTime, width: v.videoWidth, height: v.videoHeight, duration: v.duration };
    });
    const advanced = await until("the clip's currentTime to advance", () =>
      page.evaluate((start) => {
        const v = document.getElementById("clip-video");
        return !v.error && v.currentTime > start + 0.3 && v.currentTime;
      }, play.start),
    );
    const vstate = await page.evaluate(() => {
      const v = document.getElementById("clip-video");
      v.pause();
      return { width: v.videoWidth, height: v.videoHeight, duration: v.duration };
    });
    check(vstate.width === size[0] && vstate.height === size[1], `clip is ${vstate.width}x${vstate.height}, stream ${size[0]}x${size[1]}`);
    check(vstate.duration > 1, `clip duration ${vstate.duration} s is too short`);
    log(`clip plays: currentTime ${play.start.toFixed(2)} -> ${advanced.toFixed(2)} s, ${vstate.width}x${vstate.height}, ${vstate.duration.toFixed(2)} s`);

    const dl = await page.evaluate(async () => {
      const a = document.getElementById("download");
      const r = await fetch(a.href, { headers: { Range: "bytes=0-7" } });
      return { visible: !a.hidden, href: a.getAttribute("href"), status: r.status, type: r.headers.get("content-type"), disp: r.headers.get("content-disposition") };
    });
    check(dl.visible && dl.href === "/last?download=1", `download link: ${fmt(dl)}`);
    check([200, 206].includes(dl.status) && /video\/mp4/.test(dl.type || "") && /attachment/.test(dl.disp || ""), `download answer: ${fmt(dl)}`);
    log("download link answers with an mp4 attachment");

    // 6. A recording started elsewhere (curl) shows up; screenshot with REC
    // and a last clip on the page.
    const started = await api("POST", "/start");
    check(started.status === 200 && started.body.id, `POST /start: ${fmt(started)}`);
    await page.waitForSelector("#rec", { state: "visible", timeout: 10_000 });
    await until("the page to show Stop for a recording started elsewhere", async () => (await page.textContent("#record-label")).includes("Stop"));
    await sleep(2200);
    if (screenshotPath) {
      await page.screenshot({ path: screenshotPath });
      log(`screenshot ${screenshotPath} (1280x800, recording)`);
    }
    const wide = await horizontalOverflow(page);
    check(wide.length === 0, `overflow at 1280 px: ${wide.join("; ")}`);

    // 7. Phone size: nothing sticks out sideways, the button is thumb-sized.
    const phone = await context.newPage();
    browser.watch(phone, "phone");
    await phone.setViewportSize({ width: 390, height: 844 });
    await phone.goto(base + "/", { waitUntil: "load" });
    await phone.waitForSelector("#rec", { state: "visible", timeout: 10_000 });
    await until("the phone preview to show a frame", () => phone.evaluate(() => document.getElementById("preview").naturalWidth > 0));
    const narrow = await horizontalOverflow(phone);
    check(narrow.length === 0, `overflow at 390 px: ${narrow.join("; ")}`);
    const btn = await phone.evaluate(() => {
      const r = document.getElementById("record").getBoundingClientRect();
      return { w: r.width, h: r.height };
    });
    check(btn.h >= 44 && btn.w >= 200, `record button too small on a phone: ${fmt(btn)}`);
    if (process.env.PHONE_SCREENSHOT) await phone.screenshot({ path: process.env.PHONE_SCREENSHOT, fullPage: true });
    await phone.close();
    log(`phone 390x844: no horizontal overflow, button ${btn.w.toFixed(0)}x${btn.h.toFixed(0)}`);

    // 8. An API error reaches the user: hold the page's /status polls (the
    // requests wait, nothing is faked), stop the recording behind its back,
    // then its Stop gets the server's real 409.
    const held = [];
    await page.route("**/status*", (route) => held.push(route));
    // Polls run one after another: once one is held, none is in flight.
    await until("a /status poll to be held", () => held.length > 0);
    const stopped = await api("POST", "/stop");
    check(stopped.status === 200, `POST /stop: ${fmt(stopped)}`);
    const again = await api("POST", "/stop");
    check(again.status === 409 && again.body && again.body.error, `second POST /stop: ${fmt(again)}`);
    browser.expect = /409|Conflict/;
    check((await page.textContent("#record-label")).includes("Stop"), "page already shows Start: a /status poll got through");
    await page.click("#record");
    const shownError = await until("the error message", () =>
      page.evaluate(() => {
        const e = document.getElementById("error");
        return !e.hidden && e.textContent;
      }),
    );
    check(shownError === again.body.error, `page shows ${JSON.stringify(shownError)}, server said ${JSON.stringify(again.body.error)}`);
    await page.unroute("**/status*");
    for (const r of held) await r.continue().catch(() => {});
    await until("the page to go back to Start", async () => (await page.textContent("#record-label")).includes("Start"));
    browser.expect = null;
    log(`API error shown: ${shownError}`);

    // 9. One stream for the whole visit, and no console errors anywhere.
    check(streamRequests === 1, `the page opened /video ${streamRequests} times (reconnects on a healthy server): ${streamEvents.join("; ")}`);
    await sleep(300);
    browser.checkConsole();
    log("no console errors");
  } finally {
    await browser.close();
  }
}

run(main);
