// The clip library: every camera's clips, newest first, as thumbnails (the
// camera's own first frame, stored in the clip), a camera filter, paging,
// playing inline, download, and delete for the admin. Reloads when /status
// (through app.js's `vr:status`) shows a recording begin or end or an upload
// move on, and every few seconds while an upload badge can still change.
"use strict";

(function () {
  const PAGE = 12;
  const $ = (id) => document.getElementById(id);
  const el = {
    filter: $("lib-camera"),
    list: $("lib-list"),
    empty: $("lib-empty"),
    more: $("lib-more"),
    player: $("lib-player"),
    video: $("lib-video"),
    meta: $("lib-meta"),
    download: $("lib-download"),
    del: $("lib-delete"),
  };
  const state = {
    next: null, // set when there are clips past those shown
    uploads: false, // uploads to a bucket are on
    signature: null, // what /status said about recordings, to reload on change
    admin: false,
    playing: null, // the clip in the player
    armed: 0, // delete asks for a second press within a few seconds
    loading: 0,
    // How many clips the person asked to see: a page, and one more per
    // press of More. Every load fetches that many from the newest, so a
    // reload on a /status change keeps what More brought in (a paging
    // load and a change never undo each other: the newer load has both).
    want: PAGE,
    refresh: 0, // timer: reload while an upload badge can still change
  };
  const MAX = 1000; // the most /clips gives in one answer
  const REFRESH_MS = 2000;

  const { api, fmtBytes, fmtDuration } = window.VR;
  const two = (n) => String(n).padStart(2, "0");
  function fmtWhen(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return "";
    return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  }

  /// Where a clip's upload to the bucket is (only when uploads are on).
  function uploadBadge(c) {
    const u = c.upload;
    const badge = document.createElement("small");
    badge.className = `lib-upload lib-upload-${u.state}`;
    badge.dataset.upload = u.state;
    const pct = u.size_bytes ? Math.floor((100 * (u.sent_bytes || 0)) / u.size_bytes) : 0;
    if (u.state === "failed") {
      // Counted down here between reloads: the deadline, not the number.
      badge.dataset.nextTry = String(Date.now() + 1000 * (Number(u.next_try_sec) || 0));
      badge.dataset.error = String(u.error || "").replace(/[.\s]+$/, "");
      tick(badge);
    } else {
      badge.textContent = {
        pending: "↑ waiting for upload",
        uploading: `↑ uploading ${pct} %`,
        uploaded: "✓ in the bucket",
      }[u.state] || u.state;
    }
    if (u.key) badge.title = u.key;
    return badge;
  }

  /// A failed upload's badge: the reason and the seconds to the next try.
  function tick(badge) {
    const left = Math.max(0, Math.round((Number(badge.dataset.nextTry) - Date.now()) / 1000));
    const when = left > 0 ? `next try in ${left} s` : "trying again";
    window.VR.setText(badge, `↑ upload failed: ${badge.dataset.error}; ${when}`);
  }

  /// A clip's entry as shown: the fields a card draws, so an unchanged
  /// card is kept (its thumbnail is not fetched again) and a changed one
  /// is drawn anew. A failed upload's countdown is not part of it.
  function drawn(c) {
    const u = c.upload && Object.assign({}, c.upload, { next_try_sec: undefined });
    return JSON.stringify([c.id, c.duration_sec, c.size_bytes, c.thumbnail_url, u]);
  }

  /// Whether an upload badge of this clip may still change by itself.
  function unsettled(c, uploads) {
    if (!uploads) return false;
    return !c.upload || c.upload.state !== "uploaded";
  }

  function card(c) {
    const li = document.createElement("li");
    li.className = "lib-item";
    li.dataset.id = c.id;
    li.dataset.drawn = drawn(c);
    if (state.playing && state.playing.id === c.id) li.classList.add("playing");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "lib-card";
    b.title = `Play ${c.id}`;
    const thumb = document.createElement("div");
    thumb.className = "lib-thumb";
    if (c.thumbnail_url) {
      const img = document.createElement("img");
      img.loading = "lazy";
      img.alt = `First frame of ${c.id}`;
      img.src = c.thumbnail_url;
      thumb.append(img);
    }
    const d = document.createElement("span");
    d.className = "lib-duration";
    d.textContent = fmtDuration(c.duration_sec);
    thumb.append(d);
    const info = document.createElement("span");
    info.className = "lib-info";
    const cam = document.createElement("strong");
    cam.textContent = c.camera;
    const when = document.createElement("span");
    when.textContent = fmtWhen(c.started_at) || c.id;
    const size = document.createElement("small");
    size.textContent = fmtBytes(c.size_bytes);
    info.append(cam, when, size);
    if (c.upload) info.append(uploadBadge(c));
    b.append(thumb, info);
    b.addEventListener("click", () => play(c));
    li.append(b);
    return li;
  }

  async function load() {
    const ticket = ++state.loading;
    clearTimeout(state.refresh);
    const q = new URLSearchParams({ limit: String(Math.min(state.want, MAX)) });
    if (el.filter.value) q.set("camera", el.filter.value);
    const r = await api("GET", `/clips?${q}`).catch(() => null);
    if (ticket !== state.loading) return; // a newer load is on its way
    // Offline (app.js says so) or refused: try again shortly.
    if (!r || !r.ok || !r.body) {
      state.refresh = setTimeout(load, REFRESH_MS);
      return;
    }
    const clips = r.body.clips || [];
    // Cards that did not change are kept, in the new order.
    const old = new Map([...el.list.children].map((li) => [li.dataset.id, li]));
    const items = clips.map((c) => {
      const li = old.get(c.id);
      return li && li.dataset.drawn === drawn(c) ? li : card(c);
    });
    const same = items.length === el.list.children.length && items.every((li, i) => el.list.children[i] === li);
    if (!same) el.list.replaceChildren(...items);
    state.next = r.body.next_before || null;
    el.more.hidden = !state.next;
    el.empty.hidden = clips.length > 0;
    // Uploads move on without a recording starting or ending: keep the
    // badges live while any of them can still change.
    if (clips.some((c) => unsettled(c, state.uploads))) state.refresh = setTimeout(load, REFRESH_MS);
  }

  /// More: a page more than is shown, fetched with the rest.
  function more() {
    state.want = Math.min(MAX, el.list.children.length + PAGE);
    load();
  }

  function play(c) {
    state.playing = c;
    el.player.hidden = false;
    el.video.src = c.url;
    el.download.href = `${c.url}?download=1`;
    el.download.setAttribute("download", `${c.id}.mp4`);
    el.meta.textContent = [c.camera, fmtWhen(c.started_at), fmtDuration(c.duration_sec), fmtBytes(c.size_bytes)]
      .filter(Boolean)
      .join(" · ");
    disarm();
    el.del.hidden = !state.admin;
    for (const li of el.list.children) li.classList.toggle("playing", li.dataset.id === c.id);
  }

  function disarm() {
    clearTimeout(state.armed);
    state.armed = 0;
    el.del.textContent = "Delete";
    el.del.classList.remove("armed");
  }

  async function remove() {
    const c = state.playing;
    if (!c) return;
    if (!state.armed) {
      // No confirm() dialog: a second press within 4 s deletes.
      el.del.textContent = "Press again to delete";
      el.del.classList.add("armed");
      state.armed = setTimeout(disarm, 4000);
      return;
    }
    disarm();
    el.del.disabled = true;
    const r = await api("DELETE", `/clips/${encodeURIComponent(c.id)}`).catch(() => null);
    el.del.disabled = false;
    if (!r || !r.ok) {
      const why = r ? (r.body && r.body.error) || `HTTP ${r.status}` : "offline";
      el.meta.textContent = `Cannot delete ${c.id}: ${why}`;
      return;
    }
    el.video.removeAttribute("src");
    el.player.hidden = true;
    state.playing = null;
    load();
  }

  function apply(status) {
    state.admin = !status.session || status.session.role === "admin";
    const cams = Array.isArray(status.cameras) ? status.cameras : [];
    // The filter: one option per camera (kept when the list does not change).
    const ids = cams.map((c) => c.id);
    const have = [...el.filter.options].slice(1).map((o) => o.value);
    if (ids.join() !== have.join()) {
      const keep = el.filter.value;
      el.filter.replaceChildren(el.filter.options[0]);
      for (const id of ids) el.filter.append(new Option(id, id));
      el.filter.value = ids.includes(keep) ? keep : "";
    }
    el.filter.hidden = ids.length < 2;
    const up = status.uploads && status.uploads.enabled ? status.uploads : null;
    state.uploads = !!up;
    // The clips in the directory, counted: a recording's end reaches
    // /status a moment before its clip is listed, and another camera's clip
    // or a deletion (retention, another browser) changes no recording id.
    const sig = JSON.stringify([
      cams.map((c) => c.recording_id),
      status.last_clip && status.last_clip.id,
      status.clips && status.clips.clips,
      up && [up.pending, up.failed, up.uploaded, up.uploading && up.uploading.id],
    ]);
    if (sig !== state.signature) {
      state.signature = sig;
      load();
    }
  }

  document.addEventListener("vr:status", (e) => apply(e.detail));
  el.filter.addEventListener("change", () => {
    state.want = PAGE;
    load();
  });
  el.more.addEventListener("click", more);
  setInterval(() => el.list.querySelectorAll(".lib-upload-failed").forEach(tick), 1000);
  el.del.addEventListener("click", remove);
  el.video.addEventListener("error", () => {
    if (state.playing) el.meta.textContent = `${state.playing.id} cannot be played here; use Download`;
  });
})();
