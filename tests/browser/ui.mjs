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

import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const base = (process.argv[2] || "").replace(/\/$/, "");
const screenshotPath = process.argv[3] || "";
if (!/^https?:\/\//.test(base)) {
  console.error("usage: node ui.mjs http://HOST:PORT [SCREENSHOT.png]");
  process.exit(2);
}
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const OVERALL_TIMEOUT_MS = 180_000;

const t0 = Date.now();
const log = (msg) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Failure extends Error {}
function check(cond, msg) {
  if (!cond) throw new Failure(msg);
}

/// Polls `fn` until it returns a truthy value; fails with `what` after `ms`.
async function until(what, fn, ms = 15_000, every = 100) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      if (e instanceof Failure) throw e;
      last = e;
    }
    if (Date.now() > deadline) throw new Failure(`timed out after ${ms} ms waiting for ${what} (last: ${fmt(last)})`);
    await sleep(every);
  }
}

function fmt(v) {
  if (v instanceof Error) return v.message;
  try {
    return JSON.stringify(v);
  } catch (_) {
    return String(v);
  }
}

/// "MM:SS" or "H:MM:SS" to seconds.
function parseClock(text) {
  const parts = text.trim().split(":").map(Number);
  check(parts.length >= 2 && parts.every(Number.isFinite), `elapsed time ${JSON.stringify(text)} is not a clock`);
  return parts.reduce((acc, p) => acc * 60 + p, 0);
}

async function api(method, path) {
  const res = await fetch(base + path, { method });
  const body = await res.json().catch(() => null);
  return { status: res.status, body };
}

/// A small fingerprint of the preview's current picture, read back through
/// a canvas: it differs between frames only if new frames are really drawn.
async function previewFingerprint(page) {
  return page.evaluate(() => {
    const img = document.getElementById("preview");
    if (!img.naturalWidth) return null;
    const c = document.createElement("canvas");
    c.width = 96;
    c.height = 54;
    const ctx = c.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(img, 0, 0, c.width, c.height);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let h = 2166136261;
    for (let i = 0; i < d.length; i++) h = Math.imul(h ^ d[i], 16777619) >>> 0;
    return h;
  });
}

/// Elements sticking out past the right edge of the viewport.
async function horizontalOverflow(page) {
  return page.evaluate(() => {
    const vw = document.documentElement.clientWidth;
    const out = [];
    if (document.documentElement.scrollWidth > vw) out.push(`document scrollWidth ${document.documentElement.scrollWidth} > ${vw}`);
    for (const e of document.querySelectorAll("body *")) {
      const r = e.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      if (r.right > vw + 0.5 || r.left < -0.5) {
        out.push(`${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}.${e.className} [${r.left.toFixed(0)}..${r.right.toFixed(0)}]`);
      }
    }
    return out;
  });
}

async function main() {
  const profile = mkdtempSync(join(tmpdir(), "vr-chromium-"));
  let context;
  const consoleErrors = [];
  let expectErrors = null; // RegExp of console errors a step provokes on purpose
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 800 },
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
      ],
    });
    const watch = (page, name) => {
      page.on("console", (m) => {
        if (m.type() !== "error") return;
        const text = `${name}: ${m.text()} (${m.location().url || "?"})`;
        if (expectErrors && expectErrors.test(m.text())) log(`expected console error: ${text}`);
        else consoleErrors.push(text);
      });
      page.on("pageerror", (e) => consoleErrors.push(`${name}: uncaught ${e.message}`));
    };
    const page = context.pages()[0] || (await context.newPage());
    watch(page, "desktop");
    let streamRequests = 0; // the page reconnects only when something broke
    page.on("request", (r) => {
      if (new URL(r.url()).pathname === "/video") streamRequests++;
    });

    // 1. The page and its live preview.
    const resp = await page.goto(base + "/", { waitUntil: "load" });
    check(resp && resp.status() === 200, `GET / answered ${resp && resp.status()}`);
    check((await page.title()).includes("Video Recorder"), `unexpected title ${await page.title()}`);
    log("page loaded");

    const size = await until(
      "the preview <img> to show a frame",
      () => page.evaluate(() => {
        const i = document.getElementById("preview");
        return i.naturalWidth > 0 && [i.naturalWidth, i.naturalHeight];
      }),
      20_000,
    );
    log(`preview shows frames of ${size[0]}x${size[1]}`);
    // Live, not a still: several different pictures in a few seconds (a
    // 15 fps stream gives dozens; a frozen or dying one does not).
    const seen = new Set();
    await until("5 different preview pictures (is the stream frozen?)", async () => {
      const f = await previewFingerprint(page);
      if (f !== null) seen.add(f);
      return seen.size >= 5;
    }, 10_000, 100);
    log(`preview picture changes over time (${seen.size} different pictures)`);

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
    watch(phone, "phone");
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
    expectErrors = /409|Conflict/;
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
    expectErrors = null;
    log(`API error shown: ${shownError}`);

    // 9. One stream for the whole visit, and no console errors anywhere.
    check(streamRequests === 1, `the page opened /video ${streamRequests} times (reconnects on a healthy server)`);
    await sleep(300);
    check(consoleErrors.length === 0, `console errors:\n  ${consoleErrors.join("\n  ")}`);
    log("no console errors");
  } finally {
    if (context) await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
}

const guard = setTimeout(() => {
  console.error(`FAIL: browser test took longer than ${OVERALL_TIMEOUT_MS / 1000} s`);
  process.exit(1);
}, OVERALL_TIMEOUT_MS);

main().then(
  () => {
    clearTimeout(guard);
    log("PASS");
    process.exit(0);
  },
  (e) => {
    clearTimeout(guard);
    console.error(`FAIL: ${e instanceof Failure ? e.message : e.stack || e}`);
    process.exit(1);
  },
);
