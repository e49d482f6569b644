// The page and a recorded clip in Debian's Firefox ESR (headless), driven by
// puppeteer-core over WebDriver BiDi (no browser download). Firefox plays
// H.264 through the system's libavcodec and parses MP4 itself, more
// strictly than Chromium in places: the clip must play here too.
//
//   node tests/browser/firefox.mjs http://127.0.0.1:PORT
//
// Expects a server with the `test` source and no recording running. Opens
// `/`, checks the live preview draws changing frames, records a clip through
// the API, then checks the page's clip <video> plays it: metadata (size,
// duration), currentTime advancing, no media error, and no uncaught or
// console error, failed request or HTTP error. Exits 0 after PASS.

import { apiFor, baseArg, check, fmt, launchPuppeteer, log, previewChanges, previewSize, run, sleep, until, watchErrors } from "./lib.mjs";
const base = baseArg("node firefox.mjs http://HOST:PORT");
const api = apiFor(base);

async function main() {
  const { browser, close } = await launchPuppeteer("firefox");
  try {
    const version = await browser.version();
    log(`browser: ${version}`);
    const page = await browser.newPage();
    const errors = watchErrors(page);

    const resp = await page.goto(base + "/", { waitUntil: "load" });
    check(resp && resp.status() === 200, `GET / answered ${resp && resp.status()}`);

    // The live preview: multipart/x-mixed-replace in an <img>.
    const size = await previewSize(page);
    const seen = await previewChanges(page, 3, 15_000, 150);
    log(`preview: ${size[0]}x${size[1]}, ${seen} different pictures`);

    // A clip recorded through the API.
    let r = await api("POST", "/start");
    check(r.status === 200, `/start answered ${r.status} ${fmt(r.body)}`);
    await sleep(3000);
    r = await api("POST", "/stop");
    check(r.status === 200, `/stop answered ${r.status} ${fmt(r.body)}`);
    const clip = r.body;
    log(`recorded ${clip.id}: ${clip.frames} frames, ${clip.duration_sec.toFixed(3)} s`);

    // The page offers it (its status poll notices the new clip).
    await until(
      "the page's clip <video> to appear",
      () => page.evaluate(() => {
        const v = document.getElementById("clip-video");
        return v && !v.hidden && v.getAttribute("src");
      }),
      15_000,
    );
    const canPlay = await page.evaluate(() =>
      document.getElementById("clip-video").canPlayType('video/mp4; codecs="avc1.42E01E"'));
    check(canPlay !== "", "Firefox says it cannot play H.264 Constrained Baseline in MP4");
    const meta = await until("the clip's metadata", () => page.evaluate(() => {
      const v = document.getElementById("clip-video");
      if (v.error) return { error: `${v.error.code} ${v.error.message}` };
      return v.readyState >= 1 && { width: v.videoWidth, height: v.videoHeight, duration: v.duration };
    }), 15_000);
    check(!meta.error, `Firefox could not load the clip: ${meta.error}`);
    check(meta.width === size[0] && meta.height === size[1], `clip is ${meta.width}x${meta.height}, camera ${size}`);
    check(Math.abs(meta.duration - clip.duration_sec) < 0.1,
      `Firefox reads ${meta.duration} s, /stop said ${clip.duration_sec} s`);

    const start = await page.evaluate(async () => {
      const v = document.getElementById("clip-video");
      v.muted = true;
      await v.play();
      return v.currentTime;
    });
    const advanced = await until("the clip's currentTime to advance", () => page.evaluate((s) => {
      const v = document.getElementById("clip-video");
      if (v.error) throw new Error(`media error ${v.error.code} ${v.error.message}`);
      return v.currentTime > s + 0.5 && v.currentTime;
    }, start), 15_000);
    // Decoded pictures, not only a running clock: Firefox counts them.
    const decoded = await page.evaluate(() => {
      const q = document.getElementById("clip-video").getVideoPlaybackQuality();
      return { total: q.totalVideoFrames, dropped: q.droppedVideoFrames };
    });
    check(decoded.total > 5, `Firefox decoded ${fmt(decoded)} frames`);
    log(`clip plays: currentTime ${start.toFixed(2)} -> ${advanced.toFixed(2)} s, ${meta.width}x${meta.height}, ` +
      `${meta.duration.toFixed(2)} s, ${decoded.total} frames decoded`);

    check(errors.length === 0, `errors:\n  ${errors.join("\n  ")}`);
  } finally {
    await close();
  }
}

run(main);
