// Two cameras and the clip library in a real browser: Debian's Chromium
// (BROWSER=chrome, the default) or Firefox ESR (BROWSER=firefox), both
// driven by puppeteer-core.
//
//   node tests/browser/cameras.mjs http://127.0.0.1:PORT
//
// Expects a server with two cameras, `a` and `b` (test sources), idle and
// with no clips. Checks the tiles show both cameras live, each tile's
// Start/Stop records that camera only (two at once), REC with a growing
// time on each, a tile opening its camera in the large view, the library
// listing the clips with their thumbnails, the camera filter, a clip
// playing inline, delete (press twice), "Record all", paging (More), each
// tile's fps, the phone layout, and no uncaught or console error, failed
// request or HTTP error. SCREENSHOT=path saves
// the page with both recording.

import { apiFor, baseArg, check, fmt, horizontalOverflow, launchPuppeteer, log, parseClock, playLibraryClip, run, sleep, until, watchErrors } from "./lib.mjs";

const which = process.env.BROWSER || "chrome";
const base = baseArg("node cameras.mjs http://HOST:PORT");
const api = apiFor(base);

const cameras = async () => (await api("GET", "/cameras")).body.cameras;
const recording = async () => Object.fromEntries((await cameras()).map((c) => [c.id, c.recording]));

async function tile(page, id, what) {
  return page.evaluate(
    (id, what) => {
      const li = document.querySelector(`li.tile[data-camera="${id}"]`);
      if (!li) return null;
      const img = li.querySelector(".tile-img");
      const rec = li.querySelector(".tile-rec");
      return {
        shown: li.offsetHeight > 0,
        picture: img.naturalWidth,
        src: img.getAttribute("src"),
        live: img.dataset.live,
        rec: !rec.hidden,
        time: li.querySelector(".rec-time").textContent,
        button: li.querySelector(".tile-btn").textContent,
        fps: li.querySelector(".tile-fps").textContent,
      }[what];
    },
    id,
    what,
  );
}

async function clickTile(page, id, part) {
  await page.evaluate(
    (id, part) => document.querySelector(`li.tile[data-camera="${id}"] ${part}`).click(),
    id,
    part,
  );
}

async function main() {
  const { browser, close } = await launchPuppeteer(which);
  try {
    log(`browser: ${await browser.version()}`);
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    const errors = watchErrors(page);

    // 1. Two live tiles.
    const resp = await page.goto(base + "/", { waitUntil: "load" });
    check(resp && resp.status() === 200, `GET / answered ${resp && resp.status()}`);
    for (const id of ["a", "b"]) {
      await until(`tile ${id} to show a picture`, async () => (await tile(page, id, "shown")) && (await tile(page, id, "picture")) > 0, 20_000);
    }
    // Over a WebSocket (a picture a message), not an HTTP stream.
    check((await tile(page, "b", "live")) === "mjpeg" && (await tile(page, "b", "src")).startsWith("blob:"), `tile b streams ${await tile(page, "b", "src")}`);
    // Each tile says its camera's measured rate (the cameras send 15 fps).
    for (const id of ["a", "b"]) {
      const fps = await until(`tile ${id}'s fps`, async () => {
        const m = /^(\d+(?:\.\d)?) fps$/.exec(await tile(page, id, "fps"));
        return m && Number(m[1]);
      });
      check(fps >= 10 && fps <= 20, `tile ${id} says ${fps} fps for a 15 fps camera`);
    }
    log("two tiles, both live, with their fps");

    // 2. Each tile records its own camera; two at once.
    await clickTile(page, "a", ".tile-btn");
    await until("camera a recording", async () => (await recording()).a === true);
    check((await recording()).b === false, "starting a started b");
    await clickTile(page, "b", ".tile-btn");
    await until("camera b recording too", async () => (await recording()).b === true);
    await until("REC on both tiles", async () => (await tile(page, "a", "rec")) && (await tile(page, "b", "rec")));
    const t1 = parseClock(await tile(page, "a", "time"));
    await sleep(1500);
    const t2 = parseClock(await tile(page, "a", "time"));
    check(t2 > t1, `tile a's REC time did not grow: ${t1} then ${t2}`);
    log(`both recording; tile a REC ${t1} s -> ${t2} s`);

    // 3. Stopping one leaves the other recording.
    await clickTile(page, "a", ".tile-btn");
    await until("camera a stopped", async () => (await recording()).a === false);
    check((await recording()).b === true, "stopping a stopped b");
    await until("tile a without REC", async () => !(await tile(page, "a", "rec")));
    log("a stopped, b still recording");

    // 4. A tile opens its camera large: the main view and its Stop are b's.
    await clickTile(page, "b", ".tile-screen");
    await until("the large view to show b", () =>
      page.evaluate(() => document.getElementById("osd-camera").textContent === "b" && document.getElementById("preview").getAttribute("src").startsWith("/cameras/b/video")),
    );
    await until("the main button to offer Stop for b", () => page.evaluate(() => document.getElementById("record-label").textContent.includes("Stop")));
    check((await tile(page, "b", "src")).includes("snapshot.jpg"), "b's tile still streams while b is shown large");
    await page.click("#record");
    await until("camera b stopped from the main button", async () => (await recording()).b === false);
    log("b opened large and stopped there");

    // 5. The library: both clips with their thumbnails, newest first.
    // Scrolled to, as a person looks at it: its thumbnails load lazily.
    await page.evaluate(() => document.getElementById("lib-list").scrollIntoView());
    const items = await until("two clips in the library", () =>
      page.evaluate(() => {
        const li = [...document.querySelectorAll("#lib-list li")];
        const loaded = (x) => x.querySelector("img") && x.querySelector("img").naturalWidth > 0;
        if (li.length >= 2 && li.every(loaded)) return li.map((x) => x.dataset.id);
        // Say what is missing when the wait runs out.
        const img = (x) => x.querySelector("img");
        throw new Error(JSON.stringify(li.map((x) => [x.dataset.id, img(x) && img(x).getAttribute("src"), img(x) && img(x).complete, img(x) && img(x).naturalWidth])));
      }),
    20_000);
    const listed = (await api("GET", "/clips")).body.clips.map((c) => c.id);
    check(fmt(items) === fmt(listed), `library shows ${fmt(items)}, /clips says ${fmt(listed)}`);
    check(items[0].startsWith("b-"), `newest first: ${fmt(items)}`);
    await page.select("#lib-camera", "a");
    await until("only a's clips", () =>
      page.evaluate(() => {
        const li = [...document.querySelectorAll("#lib-list li")];
        return li.length === 1 && li[0].dataset.id.startsWith("a-");
      }),
    );
    await page.select("#lib-camera", "");
    await until("all clips again", () => page.evaluate(() => document.querySelectorAll("#lib-list li").length >= 2));
    log(`library: ${items.join(", ")}; the filter works`);

    // 6. A clip plays inline.
    const played = await playLibraryClip(page);
    check(played.w === 320, `the clip is ${played.w} wide`);
    log(`a library clip plays (${played.t.toFixed(2)} s in)`);

    // 7. Delete, pressing twice.
    const doomed = await page.evaluate(() => document.querySelector("#lib-list li.playing").dataset.id);
    await page.click("#lib-delete");
    check((await page.evaluate(() => document.getElementById("lib-delete").textContent)).includes("again"), "delete did not ask for a second press");
    await page.click("#lib-delete");
    await until("the clip gone from the library", () =>
      page.evaluate((id) => ![...document.querySelectorAll("#lib-list li")].some((x) => x.dataset.id === id), doomed),
    );
    const gone = await fetch(`${base}/clips/${doomed}.mp4`);
    check(gone.status === 404, `deleted clip still served: ${gone.status}`);
    // It was b's only clip, and b is in the large view: its "last clip" goes too.
    check(doomed.startsWith("b-"), `the newest clip is ${doomed}, expected b's`);
    await until("the large view's last clip to go", () =>
      page.evaluate(() => document.getElementById("clip-body").hidden),
    );
    log(`deleted ${doomed}`);

    // 8. Record all, then stop all.
    await page.click("#record-all");
    await until("both recording after Record all", async () => {
      const r = await recording();
      return r.a && r.b;
    });
    await until("the button to offer Stop all", () => page.evaluate(() => document.getElementById("record-all").textContent === "Stop all"));
    await sleep(2200);
    if (process.env.SCREENSHOT) {
      // Both recording, the library below: the README's second picture.
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
      log(`screenshot ${process.env.SCREENSHOT}`);
    }
    await page.click("#record-all");
    await until("both stopped after Stop all", async () => {
      const r = await recording();
      return !r.a && !r.b;
    });
    log("Record all and Stop all");

    // 9. Paging: past a page of 12 clips, More brings the rest.
    for (let i = 0; i < 11; i++) {
      for (const step of ["start", "stop"]) {
        const r = await api("POST", `/cameras/a/${step}`);
        check(r.status === 200, `${step} for paging: ${r.status} ${fmt(r.body)}`);
      }
    }
    const total = (await api("GET", "/clips?limit=100")).body.clips.length;
    check(total > 12, `only ${total} clips`);
    const count = () =>
      page.evaluate(() => ({ n: document.querySelectorAll("#lib-list li").length, more: !document.getElementById("lib-more").hidden }));
    await until("a page of 12 clips and More", async () => {
      const c = await count();
      return c.n === 12 && c.more;
    });
    await page.click("#lib-more");
    await until(`all ${total} clips, and no More`, async () => {
      const c = await count();
      return c.n === total && !c.more;
    });
    log(`paging: 12, then More: ${total}`);

    // 10. A phone: nothing sticks out sideways; tiles' buttons are thumb-sized.
    await page.setViewport({ width: 390, height: 844 });
    await sleep(300);
    const narrow = await horizontalOverflow(page);
    check(narrow.length === 0, `overflow at 390 px: ${narrow.join("; ")}`);
    const btn = await page.evaluate(() => document.querySelector("li.tile .tile-btn").getBoundingClientRect().height);
    check(btn >= 44, `tile button ${btn} px high on a phone`);
    log("phone layout fits");

    check(errors.length === 0, `errors:\n  ${errors.join("\n  ")}`);
  } finally {
    await close();
  }
}

run(main);
