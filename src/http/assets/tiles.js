// The camera tiles: with more than one camera, a live tile per camera
// (name, state, REC with elapsed time, fps) with its own Start/Stop, and
// "Record all". A tile's picture opens that camera in the large view
// (app.js, through a `vr:select` event); that camera's tile then shows a
// still instead of a second stream of the same camera. Every tile plays
// through live.js (a WebSocket each, so that 16 tiles leave the page's
// HTTP connections free); the <img> holds only that still.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const section = $("tiles-section");
  const list = $("tiles");
  const all = $("record-all");
  const tiles = new Map(); // id -> {li, screen, img, name, state, fps, rec, time, btn, anchor, cam}
  let cameras = [];
  let selected = null; // id of the camera in the large view
  let busy = false; // a Record all is in flight
  let admin = true;

  const { api, fmtElapsed: fmtClock, setText } = window.VR;
  const post = (path) => api("POST", path);

  const camPath = (id, what) => `/cameras/${encodeURIComponent(id)}/${what}`;

  function make(c) {
    const li = document.createElement("li");
    li.className = "tile";
    li.dataset.camera = c.id;
    const screen = document.createElement("button");
    screen.type = "button";
    screen.className = "tile-screen";
    screen.title = `Show ${c.id} large`;
    const img = document.createElement("img");
    img.className = "tile-img";
    img.alt = `Live picture of ${c.id}`;
    screen.append(img);
    const rec = document.createElement("span");
    rec.className = "rec tile-rec";
    rec.hidden = true;
    rec.innerHTML = '<span class="rec-dot" aria-hidden="true"></span><span class="rec-label">REC</span> ';
    const time = document.createElement("span");
    time.className = "rec-time";
    rec.append(time);
    screen.append(rec);
    // Why a camera is down, on the tile itself (a tooltip is invisible on a
    // phone): over a video camera's dark tile with NO SIGNAL, under a JPEG
    // camera's picture (the server draws NO SIGNAL into it).
    const down = document.createElement("span");
    down.className = "tile-down";
    down.hidden = true;
    const downHead = document.createElement("strong");
    downHead.textContent = "NO SIGNAL";
    const why = document.createElement("span");
    why.className = "tile-why";
    down.append(downHead, why);
    screen.append(down);
    const bar = document.createElement("div");
    bar.className = "tile-bar";
    const name = document.createElement("strong");
    name.className = "tile-name";
    const state = document.createElement("span");
    state.className = "state";
    const fps = document.createElement("span");
    fps.className = "tile-fps";
    const btn = document.createElement("button");
    btn.type = "button";
    btn.className = "btn-secondary tile-btn";
    bar.append(name, state, fps, btn);
    li.append(screen, bar);
    const t = { li, screen, img, name, state, fps, rec, time, btn, down, why, anchor: null, recording: false, cam: c };
    screen.addEventListener("click", () => {
      document.dispatchEvent(new CustomEvent("vr:select", { detail: { id: c.id } }));
      selected = c.id;
      for (const [id, x] of tiles) picture(id, x);
      window.scrollTo({ top: 0, behavior: "smooth" });
    });
    btn.addEventListener("click", () => toggle(c.id, t));
    return t;
  }

  /// The tile's picture: a live stream, or for the camera shown large a
  /// still (JPEG cameras; a still of a video camera would cost the server a
  /// decode, so that tile stays dark).
  function picture(id, t) {
    const player = window.VR.live;
    const large = id === selected;
    t.li.classList.toggle("selected", large);
    if (!large) {
      t.img.hidden = true;
      t.img.removeAttribute("src");
      t.still = false;
      player.attach(t.screen, t.cam, { className: "tile-img" });
      return;
    }
    player.detach(t.screen);
    t.img.hidden = !!t.cam.live_mp4;
    if (t.cam.live_mp4 || t.still) return;
    t.still = true;
    t.img.src = `${camPath(id, "snapshot.jpg")}?t=${Date.now()}`;
  }

  async function toggle(id, t) {
    t.btn.disabled = true;
    const r = await post(camPath(id, t.recording ? "stop" : "start")).catch((e) => ({ ok: false, body: { error: String(e) } }));
    if (!r.ok) t.btn.title = (r.body && r.body.error) || `HTTP ${r.status}`;
    if (r.ok && !t.recording) {
      t.recording = true;
      t.anchor = { elapsed: 0, at: performance.now() };
    } else if (r.ok) {
      t.recording = false;
      t.anchor = null;
    }
    t.btn.disabled = false;
    render();
  }

  async function recordAll() {
    if (busy) return;
    busy = true;
    all.disabled = true;
    const start = cameras.some((c) => !c.recording);
    await Promise.all(
      cameras.filter((c) => c.recording !== start).map((c) => post(camPath(c.id, start ? "start" : "stop")).catch(() => null)),
    );
    busy = false;
    all.disabled = false;
    for (const c of cameras) {
      const t = tiles.get(c.id);
      if (t) {
        t.recording = start;
        t.anchor = start ? t.anchor || { elapsed: 0, at: performance.now() } : null;
      }
      c.recording = start;
    }
    render();
  }

  function apply(status) {
    cameras = Array.isArray(status.cameras) ? status.cameras : [];
    admin = !status.session || status.session.role !== "viewer";
    section.hidden = cameras.length < 2;
    if (section.hidden) return;
    if (selected === null && cameras[0]) selected = cameras[0].id;
    for (const c of cameras) {
      let t = tiles.get(c.id);
      if (!t) {
        t = make(c);
        tiles.set(c.id, t);
        list.append(t.li);
      }
      t.cam = c;
      t.anchor = c.recording ? { elapsed: Number(c.elapsed_sec) || 0, at: performance.now() } : null;
      t.recording = !!c.recording;
      setText(t.name, c.id);
      t.name.title = [c.kind, c.name].filter(Boolean).join(": ");
      setText(t.state, { live: "Live", test: "Test", down: "No signal", starting: "Starting" }[c.state] || c.state);
      t.state.className = `state ${c.state}`;
      t.state.title = c.message || "";
      t.down.hidden = c.state !== "down";
      t.down.classList.toggle("video", !!c.live_mp4);
      setText(t.why, c.message || "");
      const fps = Number(c.fps);
      setText(t.fps, fps > 0 ? `${fps.toFixed(1)} fps` : "");
      picture(c.id, t);
    }
    render();
  }

  function render() {
    for (const t of tiles.values()) {
      t.rec.hidden = !t.recording;
      t.li.classList.toggle("recording", t.recording);
      if (t.anchor) setText(t.time, fmtClock(t.anchor.elapsed + (performance.now() - t.anchor.at) / 1000));
      setText(t.btn, t.recording ? "Stop" : "Start");
      t.btn.classList.toggle("stop", t.recording);
      t.btn.hidden = !admin;
    }
    setText(all, cameras.some((c) => !c.recording) ? "Record all" : "Stop all");
    all.hidden = !admin;
  }

  document.addEventListener("vr:status", (e) => apply(e.detail));
  all.addEventListener("click", recordAll);
  setInterval(render, 250);
  // (A hidden tab holds no streams: live.js ends and reopens them.)
})();
