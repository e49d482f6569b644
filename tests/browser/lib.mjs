// Helpers shared by the browser test scripts: Debian's Chromium through
// playwright-core, polling with a reason, console-error watch, picture
// fingerprints, and a runner with an overall time limit.

import { chromium } from "playwright-core";
import puppeteer from "puppeteer-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
export const OVERALL_TIMEOUT_MS = 180_000;

const t0 = Date.now();
export const log = (msg) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${msg}`);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Failure extends Error {}
export function check(cond, msg) {
  if (!cond) throw new Failure(msg);
}

/// Polls `fn` until it returns a truthy value; fails with `what` after `ms`.
export async function until(what, fn, ms = 15_000, every = 100) {
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

export function fmt(v) {
  if (v instanceof Error) return v.message;
  try {
    return JSON.stringify(v);
  } catch (_) {
    return String(v);
  }
}

/// "MM:SS" or "H:MM:SS" to seconds.
export function parseClock(text) {
  const parts = text.trim().split(":").map(Number);
  check(parts.length >= 2 && parts.every(Number.isFinite), `elapsed time ${JSON.stringify(text)} is not a clock`);
  return parts.reduce((acc, p) => acc * 60 + p, 0);
}

/// A JSON client for the server at `base`: api(method, path) -> {status, body}.
export function apiFor(base) {
  return async (method, path) => {
    const res = await fetch(base + path, { method });
    const body = await res.json().catch(() => null);
    return { status: res.status, body };
  };
}

/// Waits for the live preview to draw a frame; its [width, height].
export async function previewSize(page) {
  return until(
    "the preview <img> to show a frame",
    () => page.evaluate(() => {
      const i = document.getElementById("preview");
      return i.naturalWidth > 0 && [i.naturalWidth, i.naturalHeight];
    }),
    20_000,
  );
}

/// Waits until the preview has shown `n` different pictures: live, not a
/// still. Returns how many it saw.
export async function previewChanges(page, n, ms, every) {
  const seen = new Set();
  await until(`${n} different preview pictures (is the stream frozen?)`, async () => {
    const f = await previewFingerprint(page);
    if (f !== null) seen.add(f);
    return seen.size >= n;
  }, ms, every);
  return seen.size;
}

/// A small fingerprint of the preview's current picture, read back through
/// a canvas: it differs between frames only if new frames are really drawn.
export async function previewFingerprint(page) {
  return fingerprint(page, "#preview");
}

/// The same for the first <img> matching `selector` (null: none shown yet).
export async function fingerprint(page, selector) {
  return page.evaluate((selector) => {
    const img = document.querySelector(selector);
    if (!img || !img.naturalWidth || !img.complete) return null;
    const c = document.createElement("canvas");
    c.width = 96;
    c.height = 54;
    const ctx = c.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(img, 0, 0, c.width, c.height);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let h = 2166136261;
    for (let i = 0; i < d.length; i++) h = Math.imul(h ^ d[i], 16777619) >>> 0;
    return h;
  }, selector);
}

/// Opens the library's clip `id` (the first card when null) and waits for
/// it to play a little; its width.
export async function playLibraryClip(page, id = null) {
  await page.evaluate((id) => {
    const li = id ? document.querySelector(`#lib-list li[data-id="${id}"]`) : document.querySelector("#lib-list li");
    li.querySelector(".lib-card").click();
  }, id);
  return until(
    "the library clip to play",
    () =>
      page.evaluate(async () => {
        const v = document.getElementById("lib-video");
        if (v.error) throw new Error(`media error ${v.error.code}`);
        if (v.paused) {
          v.muted = true;
          await v.play().catch(() => {});
        }
        return v.currentTime > 0.3 && { t: v.currentTime, w: v.videoWidth };
      }),
    20_000,
  );
}

/// Collects what went wrong on `page` (puppeteer): uncaught exceptions,
/// console errors, failed requests (not those the page itself ended) and
/// answers of 400 or more. Returns the list, which a test checks is empty.
export function watchErrors(page) {
  const errors = [];
  page.on("pageerror", (e) => errors.push(`uncaught ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  page.on("requestfailed", (r) => {
    const why = (r.failure() && r.failure().errorText) || "";
    // A request the page itself ended (a <video> seeking, a stream closed).
    if (/ABORTED|NS_BINDING_ABORTED/i.test(why)) return;
    errors.push(`request failed: ${r.url()} ${why}`);
  });
  page.on("response", (r) => {
    if (r.status() >= 400) errors.push(`HTTP ${r.status()} for ${r.url()}`);
  });
  return errors;
}

/// Elements sticking out past the right edge of the viewport.
export async function horizontalOverflow(page) {
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

/// The base URL from argv[2], or exits with `usage`.
export function baseArg(usage) {
  const base = (process.argv[2] || "").replace(/\/$/, "");
  if (!/^https?:\/\//.test(base)) {
    console.error(`usage: ${usage}`);
    process.exit(2);
  }
  return base;
}

/// Headless Chromium with a fresh profile, and a console watch: every
/// console error or uncaught exception is collected unless `expect` (a
/// RegExp a step sets while it provokes one on purpose) matches it.
export async function openBrowser(viewport = { width: 1280, height: 800 }) {
  const profile = mkdtempSync(join(tmpdir(), "vr-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
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
  const b = {
    context,
    consoleErrors: [],
    expect: null,
    watch(page, name) {
      page.on("console", (m) => {
        if (m.type() !== "error") return;
        const text = `${name}: ${m.text()} (${m.location().url || "?"})`;
        if (b.expect && b.expect.test(m.text())) log(`expected console error: ${text}`);
        else b.consoleErrors.push(text);
      });
      page.on("pageerror", (e) => b.consoleErrors.push(`${name}: uncaught ${e.message}`));
    },
    checkConsole() {
      check(b.consoleErrors.length === 0, `console errors:\n  ${b.consoleErrors.join("\n  ")}`);
    },
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
  return b;
}

/// Runs `main` with an overall time limit; exits 0 after "PASS", 1 after
/// "FAIL: reason".
export function run(main) {
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
}

/// A browser driven by puppeteer-core: Debian's Firefox ESR over WebDriver
/// BiDi (`which` = "firefox") or Chromium, with a fresh profile and nothing
/// that calls out (the machine has no internet). Returns {browser, close}.
export async function launchPuppeteer(which) {
  const profile = mkdtempSync(join(tmpdir(), `vr-${which}-`));
  const browser =
    which === "firefox"
      ? await puppeteer.launch({
          browser: "firefox",
          executablePath: process.env.FIREFOX || "/usr/bin/firefox-esr",
          headless: true,
          userDataDir: profile,
          extraPrefsFirefox: {
            // A muted clip started by script, as the tests do, may play.
            "media.autoplay.default": 0,
            "app.update.enabled": false,
            "browser.safebrowsing.malware.enabled": false,
            "browser.safebrowsing.phishing.enabled": false,
            "datareporting.policy.dataSubmissionEnabled": false,
            "network.captive-portal-service.enabled": false,
          },
        })
      : await puppeteer.launch({
          browser: "chrome",
          executablePath: CHROMIUM,
          headless: true,
          userDataDir: profile,
          args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
        });
  return {
    browser,
    async close() {
      await browser.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
