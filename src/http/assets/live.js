// A live picture. A camera that sends H.264/H.265 (an RTSP camera): its
// `live_mp4` (fragmented MP4, the camera's own video untouched) in a
// <video data-live="mse"> through Media Source Extensions; only where this
// browser cannot play that codec (or has no MediaSource) the camera's MJPEG
// view in an <img data-live="mjpeg">: the server decodes the video for it,
// so never when MSE will do. A camera that sends JPEGs: its MJPEG view.
// Both come over a WebSocket (the same streams, a JPEG or a run of fMP4
// bytes a message): a browser gives a server six HTTP/1.1 connections, and
// a stream in each would leave none for the page (16 cameras must fit).
// Where a WebSocket cannot be opened (twice, never opened) the player
// falls back to plain HTTP for that camera until the server comes back.
// `VR.live.attach(container, cam, {className})`
// puts one in `container` (called again with the same camera it changes
// nothing), `VR.live.detach(container)` takes it out and ends its stream.
// Loaded before app.js, which adds the rest of `window.VR`.
"use strict";

(function () {
  const LAG_MAX = 1.5; // seconds behind the newest frame before jumping to it
  const LAG_JUMP = 0.3; // and how far behind it we land
  const KEEP = 10; // seconds of played video kept in the buffer
  const TRIM_SLACK = 2; // trimmed only past KEEP + this: a few removes, not one per frame
  const TICK_MS = 500;
  const RETRY_MS = 500; // first reconnect; doubles up to RETRY_MAX_MS
  const RETRY_MAX_MS = 10000;
  const HEALTHY_MS = 5000; // a stream that lived this long resets the backoff
  const SILENT_MS = 8000; // an open response that sent nothing this long is dead
  const H265_NOTE = "H.265: this browser cannot play it live";

  const players = new Map(); // container -> player

  const mime = (codec) => `video/mp4; codecs="${codec}"`;
  const isH265 = (codec) => /^(hvc1|hev1)\./.test(codec || "");
  const mjpegUrl = (cam) => `/cameras/${encodeURIComponent(cam.id)}/video`;
  const wsUrl = (path) => `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${path}`;
  const WS_MISSES = 2; // sockets that never opened before plain HTTP is used

  /// "mse", "mjpeg", or null while the server does not know the codec yet
  /// (no frame from the camera so far): then nothing is shown, rather than
  /// having the server decode for an MJPEG view that MSE would replace.
  function choose(cam) {
    if (!cam.live_mp4) return "mjpeg"; // a camera that sends JPEGs
    if (!cam.codec) return null;
    if (typeof MediaSource !== "undefined" && MediaSource.isTypeSupported(mime(cam.codec))) return "mse";
    // The server decodes H.264 only: for H.265 no MJPEG view to ask for
    // (it would answer 503 at every retry), only the note.
    return isH265(cam.codec) ? "none" : "mjpeg";
  }

  function attach(container, cam, opts) {
    const mode = choose(cam);
    let p = players.get(container);
    if (p && p.cam.id === cam.id && p.mode === mode) {
      p.cam = cam; // the newest codec for the next reconnect
      return mode;
    }
    detach(container);
    p = { container, cam, mode, el: null, note: null, s: null, timer: 0, attempt: 0, since: 0, http: false, misses: 0 };
    players.set(container, p);
    if (!mode) return mode;
    if (mode === "none") {
      p.note = document.createElement("span");
      p.note.className = "live-note";
      p.note.textContent = `${H265_NOTE}: record it, or open live.mp4 in a player`;
      container.append(p.note);
      return mode;
    }
    const className = (opts && opts.className) || "";
    if (mode === "mse") {
      const v = document.createElement("video");
      v.muted = true;
      v.autoplay = true;
      v.playsInline = true;
      v.setAttribute("playsinline", "");
      v.addEventListener("error", () => {
        // A decode error (or bytes the player refused): start over.
        if (p.s && v.error) retry(p);
      });
      p.el = v;
    } else {
      const img = document.createElement("img");
      img.alt = `Live picture of ${cam.id}`;
      img.addEventListener("load", () => {
        p.attempt = 0;
        img.hidden = false;
        if (p.s && p.s.ws) shown(p.s, img);
      });
      img.addEventListener("error", () => {
        if (p.s && p.s.ws) return shown(p.s, img); // one bad picture: the next comes
        if (!img.getAttribute("src")) return; // we stopped it ourselves
        img.hidden = true; // no broken-image icon while it retries
        retry(p);
      });
      p.el = img;
    }
    p.el.className = className;
    p.el.dataset.live = mode;
    container.prepend(p.el);
    if (p.note) container.append(p.note);
    connect(p);
    return mode;
  }

  function detach(container) {
    const p = players.get(container);
    if (!p) return;
    players.delete(container);
    halt(p);
    if (p.el) p.el.remove();
    if (p.note) p.note.remove();
  }

  /// Ends the player's stream (no reconnect).
  function halt(p) {
    clearTimeout(p.timer);
    const s = p.s;
    p.s = null;
    if (s) s.close();
    if (p.el && p.el.getAttribute("src")) {
      p.el.removeAttribute("src");
      if (p.mode === "mse") p.el.load(); // lets go of the MediaSource
    }
  }

  /// Ends the stream and opens it again after the backoff.
  function retry(p) {
    const lived = performance.now() - p.since;
    halt(p);
    if (lived >= HEALTHY_MS) p.attempt = 0;
    const wait = Math.min(RETRY_MAX_MS, RETRY_MS * 2 ** p.attempt);
    p.attempt++;
    p.timer = setTimeout(() => connect(p), wait);
  }

  function connect(p) {
    clearTimeout(p.timer);
    if (p.mode === "none" || document.hidden || players.get(p.container) !== p) return;
    p.since = performance.now();
    if (p.mode === "mjpeg") {
      if (!p.http) {
        const s = { heard: performance.now(), loading: false, pending: null, url: null };
        p.s = s;
        return socket(p, s, mjpegUrl(p.cam), (bytes) => picture(p, s, bytes));
      }
      // A fresh URL after the first so that no cache answers for it.
      p.el.src = p.attempt ? `${mjpegUrl(p.cam)}?r=${Date.now()}` : mjpegUrl(p.cam);
      const ctrl = new AbortController();
      p.s = { close: () => ctrl.abort() };
      return;
    }
    // A new MediaSource each time: a new response starts with a new init
    // segment (new stream parameters, or a restarted server).
    const ms = new MediaSource();
    const ctrl = new AbortController();
    const s = { close: () => ctrl.abort(), ctrl, ms, sb: null, queue: [], started: false, heard: performance.now() };
    p.s = s;
    p.el.src = URL.createObjectURL(ms);
    ms.addEventListener(
      "sourceopen",
      () => {
        URL.revokeObjectURL(p.el.src);
        if (p.s !== s) return;
        try {
          s.sb = ms.addSourceBuffer(mime(p.cam.codec));
        } catch (_) {
          return retry(p);
        }
        s.sb.addEventListener("updateend", () => {
          if (p.s !== s) return;
          const v = p.el;
          if (!s.started && v.buffered.length) {
            // Decode times are the server's capture clock: start where the
            // buffer does, not at 0.
            s.started = true;
            v.currentTime = v.buffered.start(0);
            v.play().catch(() => {});
          }
          feed(p, s);
        });
        feed(p, s);
      },
      { once: true },
    );
    if (p.http) return read(p, s);
    socket(p, s, p.cam.live_mp4, (bytes) => {
      s.queue.push(bytes);
      feed(p, s);
    });
  }

  /// The stream over a WebSocket: each message to `take`; its end is a
  /// reconnect, and sockets that never open mean plain HTTP for this player.
  function socket(p, s, path, take) {
    const ws = new WebSocket(wsUrl(path));
    ws.binaryType = "arraybuffer";
    let opened = false;
    s.ws = ws;
    s.close = () => {
      ws.onclose = ws.onmessage = null;
      ws.close();
      if (s.url) URL.revokeObjectURL(s.url);
      if (s.pending) URL.revokeObjectURL(s.pending);
      s.url = s.pending = null;
    };
    ws.onopen = () => {
      opened = true;
      p.misses = 0;
    };
    ws.onmessage = (ev) => {
      if (p.s !== s) return;
      s.heard = performance.now();
      take(new Uint8Array(ev.data));
    };
    ws.onclose = () => {
      if (p.s !== s) return;
      if (!opened && ++p.misses >= WS_MISSES) p.http = true;
      retry(p);
    };
  }

  /// A JPEG from the socket into the <img>: one decoding at a time, and
  /// while one is, only the newest waits (a slow tab skips pictures).
  function picture(p, s, bytes) {
    const url = URL.createObjectURL(new Blob([bytes], { type: "image/jpeg" }));
    if (s.loading) {
      if (s.pending) URL.revokeObjectURL(s.pending);
      s.pending = url;
      return;
    }
    s.loading = true;
    p.el.src = url;
  }

  /// The <img> took (or refused) its picture: the one before it goes, and
  /// the newest waiting one goes in.
  function shown(s, img) {
    const now = img.getAttribute("src");
    if (s.url && s.url !== now) URL.revokeObjectURL(s.url);
    s.url = now;
    s.loading = false;
    if (s.pending) {
      const next = s.pending;
      s.pending = null;
      s.loading = true;
      img.src = next;
    }
  }

  /// The response, chunk by chunk, into the queue; its end (new stream
  /// parameters, a restart, the network) is a reconnect.
  async function read(p, s) {
    try {
      const res = await fetch(p.cam.live_mp4, { cache: "no-store", signal: s.ctrl.signal });
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done || p.s !== s) break;
        s.heard = performance.now();
        s.queue.push(value);
        feed(p, s);
      }
    } catch (_) {
      // Aborted by halt(), or cut off: the same for us.
    }
    if (p.s === s) retry(p);
  }

  /// One SourceBuffer operation at a time (the next one on `updateend`):
  /// trim what was played long ago, else append what came in meanwhile.
  function feed(p, s) {
    const sb = s.sb;
    if (!sb || sb.updating || p.s !== s) return;
    const b = sb.buffered;
    const played = p.el.currentTime;
    if (b.length && played - b.start(0) > KEEP + TRIM_SLACK) {
      sb.remove(b.start(0), played - KEEP);
      return;
    }
    if (!s.queue.length) return;
    const data = s.queue.length === 1 ? s.queue[0] : concat(s.queue);
    s.queue = [];
    try {
      sb.appendBuffer(data);
    } catch (e) {
      s.queue.unshift(data);
      if (e.name === "QuotaExceededError") evict(p, s);
      else retry(p); // the MediaSource is gone (a decode error)
    }
  }

  /// The buffer is full: drop all but the last second before the play
  /// position (or, when it is full ahead of it, all but the newest second
  /// and jump there). `updateend` then appends the data again.
  function evict(p, s) {
    const b = s.sb.buffered;
    const v = p.el;
    if (!b.length) return retry(p);
    const start = b.start(0);
    const end = b.end(b.length - 1);
    let to = v.currentTime - 1;
    if (to <= start) {
      to = end - 1;
      v.currentTime = end - LAG_JUMP;
    }
    if (to <= start) return retry(p);
    s.sb.remove(start, to);
  }

  function concat(chunks) {
    const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }

  /// Keeps each <video> near the live edge: a player that fell behind
  /// (a busy tab, a stall, a gap between fragments) jumps to the newest
  /// frame. A response that went silent (a server or network gone: while
  /// the camera is away the server still sends an empty box a second) is
  /// opened again: an ended one is noticed by read().
  function tick() {
    const now = performance.now();
    for (const p of players.values()) {
      const s = p.s;
      if (s && s.heard && now - s.heard > SILENT_MS) {
        retry(p);
        continue;
      }
      if (!s || !s.started) continue;
      const v = p.el;
      const b = v.buffered;
      if (!b.length) continue;
      const start = b.start(0);
      const end = b.end(b.length - 1);
      if (v.currentTime < start || end - v.currentTime > LAG_MAX) v.currentTime = Math.max(start, end - LAG_JUMP);
      if (v.paused) v.play().catch(() => {});
    }
  }

  /// Opens every stream again now (app.js: the server is back).
  function restart() {
    for (const p of players.values()) {
      if (!p.mode) continue;
      halt(p);
      p.attempt = 0;
      p.http = false;
      p.misses = 0;
      connect(p);
    }
  }

  setInterval(tick, TICK_MS);
  // A hidden tab holds no streams (and no camera bandwidth).
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) for (const p of players.values()) halt(p);
    else restart();
  });

  window.VR = window.VR || {};
  window.VR.live = { attach, detach, restart };
})();
