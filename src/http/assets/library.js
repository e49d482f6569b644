// The clip library: every camera's clips, newest first, as thumbnails (the
// camera's own first frame, stored in the clip), a camera filter, paging,
// playing inline, download, and delete for the admin. Reloads when /status
// (through app.js's `vr:status`) shows a recording begin or end.
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
    next: null, // `before` for the next page
    signature: null, // what /status said about recordings, to reload on change
    admin: false,
    playing: null, // the clip in the player
    armed: 0, // delete asks for a second press within a few seconds
    loading: 0,
  };

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
    badge.textContent = {
      pending: "↑ waiting for upload",
      uploading: `↑ uploading ${pct} %`,
      uploaded: "✓ in the bucket",
      failed: `↑ upload failed: ${u.error}; next try in ${Math.round(u.next_try_sec || 0)} s`,
    }[u.state] || u.state;
    if (u.key) badge.title = u.key;
    return badge;
  }

  function card(c) {
    const li = document.createElement("li");
    li.className = "lib-item";
    li.dataset.id = c.id;
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

  async function load(more) {
    const ticket = ++state.loading;
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (el.filter.value) q.set("camera", el.filter.value);
    if (more && state.next) q.set("before", state.next);
    const r = await api("GET", `/clips?${q}`).catch(() => null);
    // Offline (app.js says so) or refused: the next change reloads.
    if (!r || !r.ok || !r.body) return;
    const body = r.body;
    if (ticket !== state.loading) return; // a newer load is on its way
    if (!more) el.list.replaceChildren();
    for (const c of body.clips || []) el.list.append(card(c));
    state.next = body.next_before || null;
    el.more.hidden = !state.next;
    el.empty.hidden = el.list.children.length > 0;
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
    load(false);
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
    const sig = JSON.stringify([cams.map((c) => c.recording_id), status.last_clip && status.last_clip.id]);
    if (sig !== state.signature) {
      state.signature = sig;
      load(false);
    }
  }

  document.addEventListener("vr:status", (e) => apply(e.detail));
  el.filter.addEventListener("change", () => load(false));
  el.more.addEventListener("click", () => load(true));
  el.del.addEventListener("click", remove);
  el.video.addEventListener("error", () => {
    if (state.playing) el.meta.textContent = `${state.playing.id} cannot be played here; use Download`;
  });
})();
