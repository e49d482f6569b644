"""Many cameras (`python3 bench/run.py --only cameras`): 1, 2 and 4 stand-in
USB cameras (tests/fakecam, one minor each, all playing the same 720p30
JPEGs) in one server configured with [[camera]] sections. Per camera count,
three phases on the same server: idle (no viewer, no recording), 10
viewers of each camera (one vr-load per camera, at once), and every camera
recording. Reports the server's CPU (% of one core), RSS, the viewers' fps
and the recordings' frames and dropped frames; cost per camera shows
whether it grows linearly, and the recording phase where this machine runs
out."""

import json
import os
import shutil
import stat
import subprocess
import tempfile
import threading
import time

V4L_MAJOR = 81


class Cameras:
    """n stand-in cameras (minors 0..n-1) under /dev/shm playing `frames`."""

    def __init__(self, out, frames, size, fps, n):
        here = os.path.dirname(os.path.abspath(__file__))
        src = os.path.join(here, "..", "tests", "fakecam", "fakecam.c")
        self.lib = os.path.join(out, "fakecam.so")
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", self.lib, src, "-ldl"], check=True)
        self.dir = tempfile.mkdtemp(prefix="vr-bench-cams-", dir="/dev/shm")
        self.nodes = []
        for i in range(n):
            node = os.path.join(self.dir, f"video{i}")
            os.mknod(node, stat.S_IFCHR | 0o660, os.makedev(V4L_MAJOR, i))
            with open(os.path.join(self.dir, f"{i}.conf"), "w") as f:
                f.write(f"frames={frames}\nsizes={size}\nrates={fps}\ncard=Bench Cam {i}\n")
            self.nodes.append(node)

    def env(self):
        return {"LD_PRELOAD": self.lib, "FAKECAM_DIR": self.dir}

    def config(self, size, fps, viewers):
        w, h = size.split("x")
        lines = [f"width = {w}", f"height = {h}", f"fps = {fps}",
                 f"max_viewers = {viewers}", f"max_viewers_per_client = {viewers}", ""]
        for i, node in enumerate(self.nodes):
            lines += ["[[camera]]", f'id = "c{i}"', f'source = "{node}"', ""]
        path = os.path.join(self.dir, "vr.toml")
        with open(path, "w") as f:
            f.write("\n".join(lines))
        return path

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def cpu_over(server, secs, cpu_seconds):
    c0, t0 = cpu_seconds(server.pid), time.monotonic()
    time.sleep(secs)
    c1, t1 = cpu_seconds(server.pid), time.monotonic()
    return (c1 - c0) / (t1 - t0) * 100


def run_cameras(a, log, Server, make_input, cpu_seconds, memory_kib, median):
    src, _ = make_input(a)
    out = {}
    for n in a.cameras:
        out[str(n)] = []
        for rep in range(a.reps):
            cams = Cameras(a.out, src, a.size, a.fps, n)
            s = Server(a.bin, ["--config", cams.config(a.size, a.fps, 10 * n + 10)],
                       a.out, cams.env())
            try:
                r = {"cameras": n}
                # Every camera delivering before anything is measured.
                deadline = time.monotonic() + 30
                while True:
                    _, c = s.request("GET", "/cameras")
                    if all(x["state"] == "live" and x["fps"] > a.fps * 0.8 for x in c["cameras"]):
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"cameras not live: {c}")
                    time.sleep(0.2)
                time.sleep(a.settle)
                r["idle_cpu_pct"] = cpu_over(s, a.idle_secs, cpu_seconds)
                r["idle_rss_kib"] = memory_kib(s.pid)[0]

                # 10 viewers of each camera, one vr-load per camera, at once.
                reports = [None] * n

                def view(i):
                    p = subprocess.run(
                        [a.load, "--addr", s.addr, "--viewers", "10", "--path", f"/cameras/c{i}/video",
                         "--warmup", str(a.warmup), "--duration", str(a.secs)],
                        capture_output=True, text=True)
                    reports[i] = json.loads(p.stdout) if p.returncode == 0 else {"error": p.stderr}

                threads = [threading.Thread(target=view, args=(i,)) for i in range(n)]
                for t in threads:
                    t.start()
                time.sleep(a.warmup + 0.5)
                r["viewers_cpu_pct"] = cpu_over(s, a.secs - 1, cpu_seconds)
                for t in threads:
                    t.join()
                r["viewers_rss_kib"] = memory_kib(s.pid)[0]
                r["viewer_fps_median"] = median([x.get("fps_median") for x in reports])
                r["viewer_fps_min"] = min((x.get("fps_min") or 0) for x in reports)
                r["viewer_errors"] = sum(x.get("errors", 1) for x in reports)

                # Every camera recording.
                for i in range(n):
                    st, body = s.request("POST", f"/cameras/c{i}/start")
                    if st != 200:
                        raise RuntimeError(f"c{i}/start answered {st}: {body}")
                r["recording_cpu_pct"] = cpu_over(s, a.rec_secs, cpu_seconds)
                clips = []
                for i in range(n):
                    st, body = s.request("POST", f"/cameras/c{i}/stop")
                    if st != 200:
                        raise RuntimeError(f"c{i}/stop answered {st}: {body}")
                    clips.append(body)
                r["recording_rss_kib"], r["hwm_kib"] = memory_kib(s.pid)
                r["clip_frames"] = [c["frames"] for c in clips]
                r["clip_dropped"] = [c["dropped_frames"] for c in clips]
                r["clip_fps"] = [round(c["fps"], 2) for c in clips]
            finally:
                s.stop()
                cams.remove()
            log(f"cameras {n} rep {rep + 1}: {json.dumps(r)}")
            out[str(n)].append(r)
    return out


def table(res, a, fmt, median):
    md = [f"**Cameras** ({a.size}@{a.fps} stand-in USB cameras, one server; "
          f"idle {a.idle_secs} s, 10 viewers of each camera for {a.secs} s, every camera "
          f"recording for {a.rec_secs} s; CPU in % of one core, medians of {a.reps}):\n",
          "| cameras | idle CPU % | per camera | 10 viewers each: CPU % | per camera | viewer fps (median / min) "
          "| all recording: CPU % | per camera | clip fps (each) | dropped (each) "
          "| RSS MiB (idle / 10 viewers each / recording) |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
    for n, runs in res.items():
        m = lambda k: median([r[k] for r in runs])  # noqa: E731
        k = int(n)
        last = runs[len(runs) // 2]
        md.append(
            f"| {n} | {fmt(m('idle_cpu_pct'))} | {fmt(m('idle_cpu_pct') / k)} | "
            f"{fmt(m('viewers_cpu_pct'), 1)} | {fmt(m('viewers_cpu_pct') / k, 1)} | "
            f"{fmt(m('viewer_fps_median'), 1)} / {fmt(median([r['viewer_fps_min'] for r in runs]), 1)} | "
            f"{fmt(m('recording_cpu_pct'), 0)} | {fmt(m('recording_cpu_pct') / k, 0)} | "
            f"{', '.join(str(x) for x in last['clip_fps'])} | "
            f"{', '.join(str(x) for x in last['clip_dropped'])} | "
            f"{fmt(m('idle_rss_kib') / 1024, 1)} / {fmt(m('viewers_rss_kib') / 1024, 1)} / "
            f"{fmt(m('recording_rss_kib') / 1024, 1)} |")
    md.append("")
    return md
