// An RTSP camera's live view in a real browser: Debian's Chromium
// (BROWSER=chrome, the default) or Firefox ESR (BROWSER=firefox), driven by
// puppeteer-core.
//
//   node tests/browser/rtsp.mjs http://127.0.0.1:PORT
//
// Expects a server whose first camera is an RTSP camera sending H.264. The
// large view must be a <video data-live="mse"> on the camera's live.mp4 (the
// camera's own H.264 through Media Source Extensions), not the MJPEG
// fallback: no request for /video or a snapshot, which would have the
// server decode. Its currentTime must advance by a second within 10 s
// with frames really decoded, at the camera's size, near the live edge
// (the decode times are the server's capture clock), with the buffer
// trimmed to the last ~10 s as it plays on; and no console errors.
//
// With OUTAGE_DIR set, the camera then goes away and comes back: the script
// writes OUTAGE_DIR/stop and waits for OUTAGE_DIR/back, which the test
// writes once the server has sent keepalives (empty `free` boxes) for the
// stopped camera and the camera is live again. The same response must then
// play on: the browser took the boxes, and the page did not reconnect.

import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { apiFor, baseArg, check, fmt, launchPuppeteer, log, run, until, watchErrors } from "./lib.mjs";

const which = process.env.BROWSER || "chrome";
const base = baseArg("node rtsp.mjs http://HOST:PORT");
const api = apiFor(base);

const KEEP = 10; // live.js keeps this many seconds behind the play position
const TRIM_SLACK = 2; // and trims only past this much more

/// What the large view's player says now (null: no <video data-live="mse">).
function player(page) {
  return page.evaluate(() => {
    const v = document.querySelector('.screen video[data-live="mse"]');
    if (!v) return null;
    const b = v.buffered;
    const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : {};
    return {
      time: v.currentTime,
      ready: v.readyState,
      paused: v.paused,
      width: v.videoWidth,
      height: v.videoHeight,
      start: b.length ? b.start(0) : null,
      end: b.length ? b.end(b.length - 1) : null,
      frames: q.totalVideoFrames || 0,
      mjpeg: !!document.querySelector('[data-live="mjpeg"]'),
      preview: !document.getElementById("preview").hidden,
    };
  });
}

async function main() {
  // The server has the camera's stream (and so its codec) before the page opens.
  const cam = await until(
    "the first camera's codec in /cameras",
    async () => {
      const c = (await api("GET", "/cameras")).body.cameras[0];
      return c.codec && c;
    },
    30_000,
    250,
  );
  check(cam.kind === "rtsp", `first camera is ${fmt(cam)}, not an RTSP camera`);
  check(cam.live_mp4 === `/cameras/${cam.id}/live.mp4`, `live_mp4 is ${fmt(cam.live_mp4)}`);
  check(/^avc1\./.test(cam.codec), `codec ${cam.codec}: this test wants H.264`);
  log(`camera ${cam.id}: ${cam.codec} ${cam.width}x${cam.height}`);

  const { browser, close } = await launchPuppeteer(which);
  try {
    log(`browser: ${await browser.version()}`);
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 800 });
    const errors = watchErrors(page);
    const decoding = []; // requests that would make the server decode
    page.on("request", (r) => {
      const url = new URL(r.url());
      if (/\/video$|snapshot\.jpg$/.test(url.pathname)) decoding.push(url.pathname);
    });
    // Every stream the page opens (a WebSocket, as live.js does, or a
    // fetch), by path: not every browser reports a WebSocket as a request.
    await page.evaluateOnNewDocument(() => {
      const Real = window.WebSocket;
      const realFetch = window.fetch;
      window.__sockets = [];
      window.WebSocket = function (url, protocols) {
        window.__sockets.push(new URL(url).pathname);
        return new Real(url, protocols);
      };
      window.fetch = function (input, init) {
        window.__sockets.push(new URL(typeof input === "string" ? input : input.url, location.href).pathname);
        return realFetch.call(this, input, init);
      };
      window.WebSocket.prototype = Real.prototype;
      Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
    });
    const sockets = () => page.evaluate(() => window.__sockets);

    const resp = await page.goto(base + "/", { waitUntil: "load" });
    check(resp && resp.status() === 200, `GET / answered ${resp && resp.status()}`);
    const supported = await page.evaluate((c) => MediaSource.isTypeSupported(`video/mp4; codecs="${c}"`), cam.codec);
    log(`MediaSource.isTypeSupported(${cam.codec}): ${supported}`);
    check(supported, `this browser cannot play ${cam.codec} through MSE`);

    const first = await until("the large view's <video data-live=mse>", () => player(page), 10_000);
    check(!first.mjpeg && !first.preview, `the MJPEG picture is shown too: ${fmt(first)}`);

    // Playing: a second of video within 10 s of the element, frames decoded.
    let since = null;
    const played = await until(
      "currentTime to advance by 1 s",
      async () => {
        const p = await player(page);
        if (!since && p.ready >= 2 && p.time > 0) since = p;
        return since && p.time - since.time >= 1 && p;
      },
      10_000,
    );
    const frames = played.frames - since.frames;
    check(frames >= 15, `${frames} frames decoded while currentTime went ${since.time} -> ${played.time}`);
    log(`playing at t=${played.time.toFixed(2)} (capture clock): +${(played.time - since.time).toFixed(2)} s, ${frames} frames`);

    check(played.width === cam.width && played.height === cam.height, `video is ${played.width}x${played.height}, camera ${cam.width}x${cam.height}`);
    check(played.end - played.time <= 2, `${(played.end - played.time).toFixed(2)} s behind the newest frame`);
    log(`${played.width}x${played.height}, ${(played.end - played.time).toFixed(2)} s behind the live edge`);

    // Playing on, the buffer keeps only the last ~10 s.
    const later = await until(
      `${KEEP + TRIM_SLACK + 2} s of playing`,
      async () => {
        const p = await player(page);
        return p.time - since.start >= KEEP + TRIM_SLACK + 2 && p;
      },
      30_000,
      250,
    );
    const kept = later.time - later.start;
    check(kept <= KEEP + TRIM_SLACK + 1, `${kept.toFixed(1)} s kept behind the play position (since ${since.start} at ${later.time})`);
    check(later.end - later.time <= 2, `${(later.end - later.time).toFixed(2)} s behind the newest frame later on`);
    check(!later.paused, "paused");
    log(`after ${(later.time - since.time).toFixed(1)} s: ${kept.toFixed(1)} s kept behind, ${(later.end - later.time).toFixed(2)} s behind the edge`);

    const outage = process.env.OUTAGE_DIR;
    if (outage) {
      writeFileSync(join(outage, "stop"), "");
      log("asked for an outage");
      await until("the camera to be back", () => existsSync(join(outage, "back")), 60_000, 100);
      const back = await player(page);
      const resumed = await until(
        "currentTime to advance by 1 s after the outage",
        async () => {
          const p = await player(page);
          // (A jump to the live edge over the gap alone is not playing.)
          return p.time - back.time >= 1 && p.frames - back.frames >= 15 && p;
        },
        15_000,
      );
      log(`after the outage: playing at t=${resumed.time.toFixed(2)}, ${resumed.frames - back.frames} frames since`);
    }

    check(decoding.length === 0, `the page asked for ${decoding.join(", ")}: the server decodes for those`);
    const opened = (await sockets()).filter((p) => p === cam.live_mp4).length;
    check(opened === 1, `live.mp4 opened ${opened} times (reconnects on a healthy server)`);
    check(errors.length === 0, `errors:\n  ${errors.join("\n  ")}`);
  } finally {
    await close();
  }
}

run(main);
