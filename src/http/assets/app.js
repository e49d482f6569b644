// Video Recorder web page: the large view of one camera (the first, or
// the one picked from the tiles). Polls /status, drives Start and Stop,
// keeps the MJPEG preview connected (a camera that sends H.264/H.265 plays
// through live.js instead) and shows the camera's last clip. It
// tells the tiles (tiles.js) and the library (library.js) what /status said
// with a `vr:status` event, and follows their `vr:select`. Plain script, no
// framework, no inline handlers (the page runs under a strict
// Content-Security-Policy).
"use strict";

(function () {
  const POLL_MS = 700; // /status while the page is visible
  const POLL_HIDDEN_MS = 3000; // and while it is in the background
  const REQUEST_TIMEOUT_MS = 8000;
  // How often the preview is checked for a frozen picture: often, and at
  // random moments, so that a looping source (the test card repeats every
  // second) is never sampled at the same point of its loop each time.
  const STALL_CHECK_MIN_MS = 150;
  const STALL_CHECK_SPREAD_MS = 200;
  const STALL_MS = 6000; // unchanged this long while the source runs: reconnect
  const STALL_MAX_MS = 60000; // backoff for scenes that really are still

  const $ = (id) => document.getElementById(id);
  const el = {
    chip: $("source-chip"),
    conn: $("conn"),
    banner: $("banner"),
    bannerTitle: $("banner-title"),
    bannerMessage: $("banner-message"),
    screen: document.querySelector(".screen"),
    preview: $("preview"),
    noSignal: $("no-signal"),
    reconnecting: $("reconnecting"),
    rec: $("rec"),
    recTime: $("rec-time"),
    osdLive: $("osd-live"),
    osdRes: $("osd-res"),
    osdFps: $("osd-fps"),
    button: $("record"),
    buttonLabel: $("record-label"),
    error: $("error"),
    fps: $("stat-fps"),
    viewers: $("stat-viewers"),
    source: $("stat-source"),
    dropped: $("stat-dropped"),
    clips: $("stat-clips"),
    clipsMeter: $("stat-clips-meter"),
    free: $("stat-free"),
    download: $("download"),
    clipEmpty: $("clip-empty"),
    clipBody: $("clip-body"),
    video: $("clip-video"),
    clipMeta: $("clip-meta"),
    version: $("version"),
    cameraName: $("osd-camera"),
  };

  const state = {
    status: null, // last /status answer
    online: true,
    busy: false, // a /start or /stop request is in flight
    // Elapsed time shown while recording: the server's elapsed_sec at a
    // moment of our clock, advanced locally between polls.
    anchor: null, // {id, elapsed, at}
    shownElapsed: 0,
    clip: null, // {id, size, duration} of the clip in the player
    stream: { attempt: 0, timer: 0, connected: false, failed: false },
    // A multipart <img> fires no event when its stream ends cleanly; the
    // picture just freezes. Watch the picture itself.
    stall: { fp: null, since: 0, limit: STALL_MS },
    pollTimer: 0,
    // The camera in the large view: null for the first (the original
    // routes, /video, /start…), else its id (/cameras/<id>/…).
    camera: null,
    live: false, // its picture is live.js's (a video camera), not #preview
  };

  /// A route of the camera in view.
  function route(path) {
    return state.camera ? `/cameras/${encodeURIComponent(state.camera)}${path}` : path;
  }

  // ---------- formatting ----------

  function fmtElapsed(sec) {
    const s = Math.max(0, Math.floor(sec));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const r = s % 60;
    const two = (n) => String(n).padStart(2, "0");
    return h > 0 ? `${h}:${two(m)}:${two(r)}` : `${two(m)}:${two(r)}`;
  }

  function fmtBytes(n) {
    if (typeof n !== "number" || !isFinite(n)) return "–";
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) {
      n /= 1000;
      i++;
    }
    return `${n >= 100 || i === 0 ? n.toFixed(0) : n.toFixed(1)} ${units[i]}`;
  }

  function fmtDuration(sec) {
    if (typeof sec !== "number" || !isFinite(sec)) return "";
    return sec < 60 ? `${sec.toFixed(1)} s` : fmtElapsed(sec);
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  // Shared with tiles.js and library.js (loaded after this script); live.js
  // (loaded before) has put its part in already.
  window.VR = Object.assign(window.VR || {}, { api, fmtElapsed, fmtBytes, fmtDuration, setText });

  // ---------- HTTP ----------

  /// JSON request with a timeout; resolves to {ok, status, body}. Rejects
  /// only when the recorder cannot be reached.
  async function api(method, path) {
    const ctrl = new AbortController();
    const t = setTimeout(() => ctrl.abort(), REQUEST_TIMEOUT_MS);
    try {
      const res = await fetch(path, {
        method,
        cache: "no-store",
        signal: ctrl.signal,
        headers: { Accept: "application/json" },
      });
      let body = null;
      const text = await res.text();
      try {
        body = text ? JSON.parse(text) : null;
      } catch (_) {
        body = { error: text.trim() || res.statusText };
      }
      return { ok: res.ok, status: res.status, body };
    } finally {
      clearTimeout(t);
    }
  }

  // ---------- /status polling ----------

  async function poll() {
    clearTimeout(state.pollTimer);
    const asked = performance.now();
    try {
      const r = await api("GET", "/status");
      if (r.status === 401) {
        // Signed out (session expired, password changed): back to the form.
        window.location.assign("/login");
        return;
      }
      if (!r.ok || !r.body) throw new Error(`status ${r.status}`);
      const wasOffline = !state.online;
      state.online = true;
      document.dispatchEvent(new CustomEvent("vr:status", { detail: r.body }));
      let s = r.body;
      const viewing = state.camera;
      if (viewing && viewing !== s.camera) {
        // Another camera in view: its own fields over the first camera's.
        const c = await api("GET", route("/status"));
        if (viewing !== state.camera) return; // switched meanwhile: next poll
        if (c.ok && c.body) s = Object.assign({}, s, c.body);
      }
      applyStatus(s, asked);
      // The server came back (restart, network): the old streams are dead.
      if (wasOffline) {
        restartStream(true);
        if (window.VR.live) window.VR.live.restart();
      }
    } catch (_) {
      state.online = false;
      renderConnection();
    }
    state.pollTimer = setTimeout(poll, document.hidden ? POLL_HIDDEN_MS : POLL_MS);
  }

  function applyStatus(s, asked) {
    state.status = s;
    // Only a login-form session can be signed out of (Basic and tokens live in the client).
    $("logout").hidden = !(s.session && s.session.via === "session");
    // A viewer may watch but not record: no button that would only say so.
    el.button.hidden = !!(s.session && s.session.role === "viewer");
    if (s.recording) {
      const id = s.recording_id || (s.recorder && s.recorder.id) || "";
      setAnchor(id, Number(s.elapsed_sec) || 0);
    } else if (!state.busy) {
      state.anchor = null;
    }
    if (s.last_clip && s.last_clip.id) {
      showClip({ id: s.last_clip.id, size: s.last_clip.size_bytes });
    } else if (state.clip && asked > state.clip.shownAt) {
      // Deleted (from the library, or by retention) since it was shown; an
      // answer to a question asked before it was shown says nothing of it.
      hideClip();
    }
    const many = Array.isArray(s.cameras) && s.cameras.length > 1;
    setText(el.cameraName, many ? s.camera || "" : "");
    showPicture(false);
    render();
  }

  function setAnchor(id, elapsed) {
    const now = performance.now();
    const sameRecording = state.anchor && state.anchor.id === id;
    state.anchor = { id, elapsed, at: now };
    if (!sameRecording) state.shownElapsed = elapsed;
  }

  /// Elapsed seconds to show now; within one recording it never runs
  /// backwards because a poll answer arrived late.
  function currentElapsed() {
    if (!state.anchor) return 0;
    const a = state.anchor;
    const e = a.elapsed + (performance.now() - a.at) / 1000;
    if (e >= state.shownElapsed || state.shownElapsed - e > 2) state.shownElapsed = e;
    return state.shownElapsed;
  }

  // ---------- rendering ----------

  function isRecording() {
    return !!state.anchor;
  }

  function render() {
    renderConnection();
    renderButton();
    renderRec();
    const s = state.status;
    if (!s) return;
    const src = s.source || {};
    const st = src.state || "starting";

    const chip = { live: ["LIVE", "chip-live"], test: ["TEST PATTERN", "chip-test"], down: ["NO SIGNAL", "chip-down"] }[st] || [
      "STARTING",
      "chip-muted",
    ];
    setText(el.chip, chip[0]);
    el.chip.className = `chip ${chip[1]}`;
    el.chip.title = [src.kind, src.name].filter(Boolean).join(": ") || "Video source";

    setText(el.osdLive, { live: "● LIVE", test: "● TEST", down: "NO SIGNAL" }[st] || "…");
    el.osdLive.className = `osd-tag ${st}`;
    setText(el.osdRes, src.width && src.height ? `${src.width}×${src.height}` : "");
    const fps = Number(s.fps);
    setText(el.osdFps, isFinite(fps) && fps > 0 ? `${fps.toFixed(1)} FPS` : "");

    // Banner: test pattern or no signal, else any server warning.
    let title = "";
    let message = "";
    if (st === "test") {
      title = "Test pattern";
      message = src.message || s.warning || "No camera is connected: this is a generated picture, not a camera.";
    } else if (st === "down") {
      title = "No signal";
      message = src.message || s.warning || "The camera is gone; reconnecting as soon as it is back.";
    } else if (s.warning) {
      title = "Warning";
      message = s.warning;
    }
    el.banner.hidden = !title;
    el.banner.classList.toggle("banner-down", st === "down");
    setText(el.bannerTitle, title);
    setText(el.bannerMessage, message);
    el.noSignal.hidden = !(st === "down" && !state.stream.connected);

    setText(el.fps, isFinite(fps) ? fps.toFixed(1) : "–");
    const viewers = typeof s.viewers === "number" ? String(s.viewers) : "–";
    setText(el.viewers, viewers);
    el.viewers.title = s.max_viewers ? `at most ${s.max_viewers}` : "";
    setText(el.source, { live: "Live", test: "Test", down: "No signal", starting: "Starting" }[st] || st);
    el.source.className = `state ${st}`;
    const broken = Number(src.broken_frames) || 0;
    el.source.title = `${src.frames || 0} frames, ${broken} broken, ${src.reopens || 0} reopens`;
    setText(el.dropped, String(Number(s.dropped_frames) || 0));

    const c = s.clips || {};
    if (typeof c.bytes === "number") {
      setText(el.clips, c.max_bytes ? `${fmtBytes(c.bytes)} / ${fmtBytes(c.max_bytes)}` : fmtBytes(c.bytes));
      el.clipsMeter.value = c.max_bytes ? Math.min(1, c.bytes / c.max_bytes) : 0;
      el.clipsMeter.hidden = !c.max_bytes; // no byte budget: nothing to fill
      const parts = [`${c.clips || 0} clip${c.clips === 1 ? "" : "s"}`];
      if (typeof c.free_bytes === "number") parts.push(`${fmtBytes(c.free_bytes)} free on disk`);
      setText(el.free, parts.join(" · "));
      el.clips.title = c.dir || "";
    }
    setText(el.version, s.version ? `Video Recorder ${s.version}` : "Video Recorder");
  }

  function renderConnection() {
    el.conn.hidden = state.online;
    el.reconnecting.hidden = state.online && !state.stream.failed;
  }

  function renderButton() {
    const rec = isRecording();
    el.button.disabled = state.busy || !state.status;
    el.button.classList.toggle("stop", rec);
    el.button.classList.toggle("busy", state.busy);
    let label = rec ? "Stop recording" : "Start recording";
    if (state.busy) label = rec ? "Stopping…" : "Starting…";
    setText(el.buttonLabel, label);
    el.button.setAttribute("aria-pressed", rec ? "true" : "false");
  }

  function renderRec() {
    const rec = isRecording();
    el.rec.hidden = !rec;
    el.screen.classList.toggle("recording", rec);
    const t = rec ? fmtElapsed(currentElapsed()) : "00:00";
    setText(el.recTime, t);
    const title = rec ? `● REC ${t} · Video Recorder` : "Video Recorder";
    if (document.title !== title) document.title = title;
  }

  function showError(msg) {
    el.error.hidden = !msg;
    setText(el.error, msg || "");
  }

  // ---------- Start / Stop ----------

  async function toggleRecording() {
    if (state.busy || !state.status) return;
    const stopping = isRecording();
    state.busy = true;
    showError("");
    renderButton();
    try {
      const r = await api("POST", route(stopping ? "/stop" : "/start"));
      const b = r.body || {};
      if (!r.ok) {
        showError(b.error || `${stopping ? "Stop" : "Start"} failed (HTTP ${r.status})`);
        // 409 on start carries the recording that is already running.
        if (b.recording && b.recording.id) setAnchor(b.recording.id, Number(b.recording.elapsed_sec) || 0);
      } else if (stopping) {
        state.anchor = null;
        if (b.id) showClip({ id: b.id, size: b.size_bytes, duration: b.duration_sec, path: b.path });
      } else {
        setAnchor(b.id || "", Number(b.elapsed_sec) || 0);
      }
    } catch (e) {
      showError(`Cannot reach the recorder: ${e && e.name === "AbortError" ? "timed out" : e.message || e}`);
    } finally {
      state.busy = false;
      render();
      poll();
    }
  }

  // ---------- last clip ----------

  function showClip(c) {
    const same = state.clip && state.clip.id === c.id;
    state.clip = Object.assign({ shownAt: performance.now() }, same ? state.clip : {}, stripUndefined(c));
    if (!same) {
      el.video.src = `${route("/last")}?v=${encodeURIComponent(c.id)}`;
      el.download.href = `${route("/last")}?download=1`;
      el.download.setAttribute("download", `${c.id}.mp4`);
    }
    el.clipEmpty.hidden = true;
    el.clipBody.hidden = false;
    el.download.hidden = false;
    renderClipMeta();
  }

  function hideClip() {
    state.clip = null;
    el.video.removeAttribute("src");
    el.clipBody.hidden = true;
    el.clipEmpty.hidden = false;
    el.download.hidden = true;
  }

  function stripUndefined(o) {
    const out = {};
    for (const k of Object.keys(o)) if (o[k] !== undefined && o[k] !== null) out[k] = o[k];
    return out;
  }

  function renderClipMeta() {
    const c = state.clip;
    if (!c) return;
    const parts = [c.id];
    // What the player says, so every page shows the same; the server's
    // figure until the metadata is in.
    const d = isFinite(el.video.duration) && el.video.duration > 0 ? el.video.duration : c.duration;
    if (isFinite(d) && d > 0) parts.push(fmtDuration(d));
    if (typeof c.size === "number") parts.push(fmtBytes(c.size));
    setText(el.clipMeta, parts.join(" · "));
  }

  // ---------- live preview ----------

  function streamUrl() {
    // A fresh URL after the first connection so no cache answers for it.
    const url = route("/video");
    return state.stream.attempt === 0 ? url : `${url}?r=${state.stream.attempt}`;
  }

  /// The camera in view as /status → cameras lists it (undefined from a
  /// server that lists none: a JPEG camera, as it always was).
  function viewed() {
    const cams = (state.status && state.status.cameras) || [];
    return state.camera ? cams.find((c) => c.id === state.camera) : cams[0];
  }

  /// The large view's picture, once /status has said what the camera
  /// sends: video (`live_mp4`) plays through live.js, JPEGs stream into
  /// #preview (`fresh`: on a new connection).
  function showPicture(fresh) {
    if (!state.status) return;
    const cam = viewed();
    const live = window.VR.live;
    if (cam && cam.live_mp4 && live) {
      if (!state.live) {
        state.live = true;
        stopStream();
        state.stream.failed = false;
        el.preview.hidden = true;
        renderConnection();
      }
      live.attach(el.screen, cam, { className: "preview" });
      return;
    }
    if (state.live) {
      state.live = false;
      live.detach(el.screen);
      fresh = true;
    }
    el.preview.hidden = false;
    if (document.hidden) return; // a hidden tab holds no stream
    if (fresh || !el.preview.getAttribute("src")) startStream();
  }

  /// Shows another camera large (from a tile): its picture, controls and
  /// last clip.
  function selectCamera(id) {
    const first = state.status && state.status.cameras && state.status.cameras[0];
    const next = first && id === first.id ? null : id;
    if (next === state.camera) return;
    state.camera = next;
    state.anchor = null;
    hideClip();
    showError("");
    state.stream.attempt = Math.max(1, state.stream.attempt);
    showPicture(true);
    poll();
  }

  function startStream() {
    clearTimeout(state.stream.timer);
    if (state.live) return; // a reconnect timer set before the view switched
    el.preview.src = streamUrl();
    state.stream.attempt++;
  }

  function stopStream() {
    clearTimeout(state.stream.timer);
    state.stream.connected = false;
    el.preview.removeAttribute("src");
  }

  /// A tiny hash of the picture on screen, or null when there is none.
  const stallCanvas = document.createElement("canvas");
  stallCanvas.width = 64;
  stallCanvas.height = 36;
  function previewFingerprint() {
    if (!el.preview.naturalWidth) return null;
    try {
      const ctx = stallCanvas.getContext("2d", { willReadFrequently: true });
      ctx.drawImage(el.preview, 0, 0, stallCanvas.width, stallCanvas.height);
      const d = ctx.getImageData(0, 0, stallCanvas.width, stallCanvas.height).data;
      let h = 2166136261;
      for (let i = 0; i < d.length; i++) h = Math.imul(h ^ d[i], 16777619) >>> 0;
      return h;
    } catch (_) {
      return null;
    }
  }

  function checkStall() {
    const now = performance.now();
    const w = state.stall;
    const st = state.status && state.status.source && state.status.source.state;
    const running = st === "live" || st === "test";
    if (document.hidden || !state.online || !state.stream.connected || !running) {
      w.since = now;
      return;
    }
    const fp = previewFingerprint();
    if (fp === null || fp !== w.fp) {
      if (fp !== null && w.fp !== null) w.limit = STALL_MS; // frames are flowing
      w.fp = fp;
      w.since = now;
      return;
    }
    if (now - w.since >= w.limit) {
      // Frozen while the source runs: reconnect. A scene that is simply
      // still also lands here, so back off for it.
      w.since = now;
      w.limit = Math.min(STALL_MAX_MS, w.limit * 2);
      startStream();
    }
  }

  function restartStream(now) {
    clearTimeout(state.stream.timer);
    if (document.hidden) return;
    const backoff = now ? 0 : Math.min(10000, 1000 * Math.max(1, state.stream.attempt));
    state.stream.timer = setTimeout(startStream, backoff);
  }

  el.preview.addEventListener("load", () => {
    state.stream.connected = true;
    state.stream.failed = false;
    el.noSignal.hidden = true;
    renderConnection();
  });

  el.preview.addEventListener("error", () => {
    if (!el.preview.getAttribute("src")) return; // we stopped it ourselves
    state.stream.connected = false;
    state.stream.failed = true;
    renderConnection();
    restartStream(false);
  });

  document.addEventListener("visibilitychange", () => {
    // Do not hold a stream (and the camera's bandwidth) for a hidden tab.
    if (document.hidden) {
      stopStream();
    } else {
      state.stream.attempt = Math.max(1, state.stream.attempt);
      showPicture(true);
      poll();
    }
  });

  // ---------- wiring ----------

  el.button.addEventListener("click", toggleRecording);
  document.addEventListener("vr:select", (e) => selectCamera(e.detail.id));
  el.video.addEventListener("loadedmetadata", renderClipMeta);
  el.video.addEventListener("error", () => {
    if (state.clip) setText(el.clipMeta, `${state.clip.id} · cannot be played here; use Download`);
  });

  setInterval(renderRec, 200);
  (function stallTick() {
    checkStall();
    setTimeout(stallTick, STALL_CHECK_MIN_MS + Math.random() * STALL_CHECK_SPREAD_MS);
  })();
  // The picture starts with the first /status, which says whether the
  // camera sends JPEGs (#preview on /video) or video (live.js): an <img> on
  // /video of a video camera would have the server decode for nothing. (The
  // page's <noscript> copy of #preview streams /video without this script.)
  render();
  poll();
})();
