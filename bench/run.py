#!/usr/bin/env python3
"""Benchmarks for video-recorder (stdlib only). See bench/README.md.

Runs, each against a fresh server and repeated --reps times (medians):
  idle       no viewers, no recording: server CPU over --idle-secs
  viewers    N viewers of the 720p30 test source at once (bench/load: vr-load)
  recording  server CPU while recording a 720p30 MJPEG file for --rec-secs,
             next to ffmpeg (libx264, Constrained Baseline) encoding the same
             file to MP4 in the same run
  size       the stripped aarch64 binary (make pi), when given
  ustreamer  (not in the default set) our binary and Debian's ustreamer, one
             after the other, on the same stand-in camera (tests/fakecam,
             LD_PRELOAD) playing the same JPEGs, same viewers (vr-load)
  cameras    (not in the default set) 1, 2 and 4 stand-in cameras in one
             server: idle, 10 viewers each, all recording (bench/cameras.py)

Writes bench/out/results.json (every run) and bench/out/results.md (tables).
"""

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import socket
import stat
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import cameras as many_cameras
import rtsp as rtsp_bench
import rtsp_interop
import s3 as s3_bench

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of a process, all threads, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / TICKS


def thread_cpu_ns(pid):
    """ns on CPU per living thread (/proc/PID/task/TID/schedstat): finer than
    the 10 ms ticks of /proc/PID/stat, for the nearly idle cases."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                out[tid] = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return out


def thread_cpu_delta(before, after):
    return sum(v - before.get(t, 0) for t, v in after.items()) / 1e9


def memory_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, val = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(val.split()[0])
    return out.get("VmRSS", 0), out.get("VmHWM", 0)


def stop_process(p):
    """SIGTERM (SIGKILL after 30 s) for a server started with .proc, .log and
    .workdir; then its log closed and its directory removed."""
    if p.proc.poll() is None:
        p.proc.send_signal(signal.SIGTERM)
        try:
            p.proc.wait(30)
        except subprocess.TimeoutExpired:
            p.proc.kill()
            p.proc.wait()
    p.log.close()
    shutil.rmtree(p.workdir, ignore_errors=True)


class Server:
    """The real binary on a free loopback port, stderr in a log file."""

    def __init__(self, binary, args, workdir, env_extra=None, before_start=None, wrap=None):
        self.workdir = tempfile.mkdtemp(dir=workdir)
        # What the caller puts in the clips directory before the start.
        self.prepared = before_start and before_start(os.path.join(self.workdir, "clips"))
        self.log_path = os.path.join(self.workdir, "server.log")
        self.log = open(self.log_path, "w")
        # `wrap`: a command the binary runs under (`nice -n 19`), same pid.
        cmd = (wrap or []) + [binary, "--host", "127.0.0.1", "--port", "0",
                              "--clips-dir", os.path.join(self.workdir, "clips")] + args
        env = {k: v for k, v in os.environ.items() if not k.startswith("VR_")}
        env.update(env_extra or {})
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        self.pid = self.proc.pid
        self.addr = self._wait_listening()

    def _wait_listening(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path) as f:
                for line in f:
                    if "listening on http://" in line:
                        return line.split("listening on http://", 1)[1].split()[0]
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        with open(self.log_path) as f:
            log = f.read()
        self.stop()  # removes the work directory, log included
        raise RuntimeError(f"server did not start; log:\n{log}")

    def request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://{self.addr}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def cpu(self):
        return cpu_seconds(self.pid)

    def stop(self):
        stop_process(self)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def source_args(size, fps):
    w, h = size.split("x")
    return ["--width", w, "--height", h, "--fps", str(fps)]


def run_idle(a, log):
    runs = []
    for rep in range(a.reps):
        s = Server(a.bin, ["--source", "test"] + source_args(a.size, a.fps), a.out)
        try:
            time.sleep(a.settle)
            c0, n0, t0 = s.cpu(), thread_cpu_ns(s.pid), time.monotonic()
            time.sleep(a.idle_secs)
            c1, n1, t1 = s.cpu(), thread_cpu_ns(s.pid), time.monotonic()
            rss, hwm = memory_kib(s.pid)
        finally:
            s.stop()
        r = {"cpu_pct": (c1 - c0) / (t1 - t0) * 100,
             "sched_cpu_pct": thread_cpu_delta(n0, n1) / (t1 - t0) * 100,
             "rss_kib": rss, "hwm_kib": hwm}
        log(f"idle rep {rep + 1}: {r['cpu_pct']:.2f}% of a core (stat), "
            f"{r['sched_cpu_pct']:.3f}% (schedstat), RSS {rss} KiB")
        runs.append(r)
    return runs


def run_viewers(a, n, log):
    runs = []
    for rep in range(a.reps):
        # All viewers come from 127.0.0.1: lift the per-client cap too.
        cap = str(max(1000, n + 10))
        s = Server(a.bin, ["--source", "test", "--max-viewers", cap,
                           "--max-viewers-per-client", cap] + source_args(a.size, a.fps), a.out)
        try:
            time.sleep(a.settle)
            r = load(a, s.addr, s.pid, n, "/video", log, f"viewers {n} rep {rep + 1}")
        finally:
            s.stop()
        runs.append(r)
    return runs


def load(a, addr, pid, n, path, log, what):
    """vr-load: n viewers of http://addr/path (at once, or over --ramp s); its JSON report."""
    p = subprocess.run([a.load, "--addr", addr, "--viewers", str(n), "--path", path,
                        "--warmup", str(a.warmup), "--duration", str(a.secs),
                        "--pid", str(pid)] + (["--ramp", str(a.ramp)] if a.ramp else []),
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"vr-load failed: {p.stderr}")
    log(f"{what}: " + p.stderr.strip().replace("\n", "; "))
    return json.loads(p.stdout)


def make_input(a):
    path = os.path.join(a.out, f"in-{a.size}-{a.fps}.mjpeg")
    frames = int(a.rec_secs * a.fps)
    if not os.path.exists(path):
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=size={a.size}:rate={a.fps}", "-frames:v", str(frames),
                        "-c:v", "mjpeg", "-q:v", "3", "-f", "mjpeg", path], check=True)
    return path, frames


def ffmpeg_encode(src, fps, preset, out):
    """CPU seconds (all threads) ffmpeg takes for the same job: MJPEG file in,
    H.264 Constrained Baseline yuv420p MP4 out."""
    t0 = time.monotonic()
    p = subprocess.Popen(["ffmpeg", "-v", "error", "-y", "-f", "mjpeg", "-framerate", str(fps),
                          "-i", src, "-c:v", "libx264", "-profile:v", "baseline",
                          "-preset", preset, "-pix_fmt", "yuv420p", "-g", str(fps),
                          "-an", out])
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    if status != 0:
        raise RuntimeError(f"ffmpeg failed ({status})")
    return ru.ru_utime + ru.ru_stime, wall, os.path.getsize(out)


def run_recording(a, log):
    src, frames = make_input(a)
    runs = []
    for rep in range(a.reps):
        s = Server(a.bin, ["--source", src] + source_args(a.size, a.fps), a.out)
        try:
            time.sleep(a.settle)
            c0, t0 = s.cpu(), time.monotonic()
            time.sleep(a.rec_secs / 2)
            c1, t1 = s.cpu(), time.monotonic()
            base = (c1 - c0) / (t1 - t0)  # playing the file, nobody watching
            st, started = s.request("POST", "/start")
            if st != 200:
                raise RuntimeError(f"/start answered {st}: {started}")
            c2, t2 = s.cpu(), time.monotonic()
            time.sleep(a.rec_secs)
            st, stopped = s.request("POST", "/stop")
            c3, t3 = s.cpu(), time.monotonic()
            if st != 200:
                raise RuntimeError(f"/stop answered {st}: {stopped}")
            rss, hwm = memory_kib(s.pid)
        finally:
            s.stop()
        rec_cpu = c3 - c2
        n = stopped.get("frames") or 0
        r = {"frames": n, "dropped_frames": stopped.get("dropped_frames"),
             "duration_sec": stopped.get("duration_sec"), "size_bytes": stopped.get("size_bytes"),
             "cpu_s": rec_cpu, "cpu_pct": rec_cpu / (t3 - t2) * 100,
             "cpu_ms_per_frame": rec_cpu * 1e3 / n if n else None,
             "extra_ms_per_frame": (rec_cpu - base * (t3 - t2)) * 1e3 / n if n else None,
             "base_cpu_pct": base * 100, "rss_kib": rss, "hwm_kib": hwm}
        for preset in a.presets:
            out = os.path.join(a.out, f"ffmpeg-{preset}.mp4")
            cpu, wall, size = ffmpeg_encode(src, a.fps, preset, out)
            r[f"ffmpeg_{preset}"] = {"cpu_s": cpu, "wall_s": wall, "frames": frames,
                                     "cpu_ms_per_frame": cpu * 1e3 / frames, "size_bytes": size}
        log(f"recording rep {rep + 1}: {json.dumps(r)}")
        runs.append(r)
    return runs, src


# ---------- ustreamer side by side, on the stand-in camera ----------

V4L_MAJOR = 81


def jpegs_of(mjpeg):
    """The JPEGs (SOI ... EOI) of an MJPEG file, as the stand-in camera cuts them."""
    with open(mjpeg, "rb") as f:
        data = f.read()
    out, at = [], 0
    while (start := data.find(b"\xff\xd8", at)) >= 0:
        end = data.find(b"\xff\xd9", start)
        if end < 0:
            break
        out.append(data[start:end + 2])
        at = end + 2
    return out


class Camera:
    """tests/fakecam built as the tests build it, and one camera (minor 0)
    under /dev/shm playing `frames`: what LD_PRELOAD and FAKECAM_DIR need."""

    def __init__(self, a, frames, size, fps):
        here = os.path.dirname(os.path.abspath(__file__))
        src = os.path.join(here, "..", "tests", "fakecam", "fakecam.c")
        self.lib = os.path.join(a.out, "fakecam.so")
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", self.lib, src, "-ldl"], check=True)
        self.dir = tempfile.mkdtemp(prefix="vr-bench-cam-", dir="/dev/shm")
        self.node = os.path.join(self.dir, "video0")
        os.mknod(self.node, stat.S_IFCHR | 0o660, os.makedev(V4L_MAJOR, 0))
        with open(os.path.join(self.dir, "0.conf"), "w") as f:
            f.write(f"frames={frames}\nsizes={size}\nrates={fps}\n")

    def env(self):
        return {"LD_PRELOAD": self.lib, "FAKECAM_DIR": self.dir}

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UStreamer:
    """Debian's ustreamer on the stand-in camera, passing its JPEGs through
    (`--format MJPEG --encoder HW`), on a free loopback port."""

    def __init__(self, binary, cam, size, fps, workdir):
        self.workdir = tempfile.mkdtemp(dir=workdir)
        self.log_path = os.path.join(self.workdir, "ustreamer.log")
        self.log = open(self.log_path, "w")
        port = free_port()
        self.cmd = [binary, "--device", cam.node, "--format", "MJPEG", "--encoder", "HW",
                    "--resolution", size, "--desired-fps", str(fps),
                    "--host", "127.0.0.1", "--port", str(port), "--exit-on-parent-death"]
        env = dict(os.environ, **cam.env())
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env)
        self.pid = self.proc.pid
        self.addr = f"127.0.0.1:{port}"
        self._wait_capturing()

    def _wait_capturing(self, timeout=30):
        """Until /state says the camera is online at a non-zero rate."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ustreamer exited: {open(self.log_path).read()}")
            try:
                with urllib.request.urlopen(f"http://{self.addr}/state", timeout=2) as r:
                    src = json.loads(r.read())["result"]["source"]
                if src["online"] and src["captured_fps"] > 0:
                    return
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"ustreamer never captured: {open(self.log_path).read()}")

    def stop(self):
        stop_process(self)


def read_parts(addr, path, n, timeout=10):
    """The bodies of the first n parts of a multipart stream (by Content-Length)."""
    host, port = addr.rsplit(":", 1)
    out, buf = [], b""
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n".encode())
        end = -1
        while len(out) < n:
            chunk = s.recv(1 << 16)
            if not chunk:
                raise RuntimeError(f"{addr}{path}: closed after {len(out)} parts")
            buf += chunk
            while True:
                if end < 0:
                    end = buf.find(b"\r\n\r\n")  # the response head
                    if end < 0:
                        break
                    buf = buf[end + 4:]
                head_end = buf.find(b"\r\n\r\n")
                if head_end < 0:
                    break
                head = buf[:head_end].decode("latin-1").lower()
                length = next((int(line.split(":", 1)[1]) for line in head.split("\r\n")
                               if line.startswith("content-length:")), None)
                if length is None:
                    raise RuntimeError(f"{addr}{path}: part without Content-Length: {head!r}")
                if len(buf) < head_end + 4 + length:
                    break
                out.append(buf[head_end + 4:head_end + 4 + length])
                buf = buf[head_end + 4 + length:]
                if len(out) == n:
                    break
    return out


def check_passthrough(addr, path, frames, n=10):
    """How many of n parts served are byte for byte one of the camera's JPEGs."""
    parts = read_parts(addr, path, n)
    return sum(p in frames for p in parts), len(parts)


def run_ustreamer(a, log):
    """For each viewer count, one after the other in this run: our binary on
    the stand-in camera (/video), ustreamer on the same camera (/stream, as a
    browser asks for it), and ustreamer again on /stream?extra_headers=1,
    whose X-UStreamer-Grab-Time lets vr-load time capture to receipt (its
    X-Timestamp is the time a part was queued, not a capture time). The
    order of the servers alternates between reps."""
    src, _ = make_input(a)
    frames = set(jpegs_of(src))
    cam = Camera(a, src, a.size, a.fps)
    servers = [("ours", "/video"), ("ustreamer", "/stream"),
               ("ustreamer_extra_headers", "/stream?extra_headers=1")]
    out = {}
    try:
        for n in a.cam_viewers:
            out[str(n)] = {name: [] for name, _ in servers}
            for rep in range(a.reps):
                order = servers if rep % 2 == 0 else servers[::-1]
                for name, path in order:
                    loadavg = open("/proc/loadavg").read().split()[0]
                    if name == "ours":
                        cap = str(max(1000, n + 10))
                        s = Server(a.bin, ["--source", cam.node, "--max-viewers", cap,
                                           "--max-viewers-per-client", cap]
                                   + source_args(a.size, a.fps), a.out, cam.env())
                    else:
                        s = UStreamer(a.ustreamer, cam, a.size, a.fps, a.out)
                    try:
                        time.sleep(a.settle)
                        same, of = check_passthrough(s.addr, path, frames)
                        if same != of:
                            raise RuntimeError(f"{name}: only {same} of {of} parts are the "
                                               "camera's JPEGs")
                        r = load(a, s.addr, s.pid, n, path, log, f"{name} {n} rep {rep + 1}")
                    finally:
                        s.stop()
                    r["loadavg_before"] = float(loadavg)
                    r["passthrough"] = f"{same}/{of}"
                    if name != "ours":
                        r["command"] = s.cmd
                    out[str(n)][name].append(r)
    finally:
        cam.remove()
    return out


def fmt(x, digits=2):
    return "–" if x is None else f"{x:.{digits}f}"


def tables(res, a):
    md = []
    md.append(f"Machine: {res['machine']}; load average at start {res['loadavg']}; "
              f"source {a.size}@{a.fps}; {a.reps} runs each, medians; "
              f"window {a.secs} s after {a.warmup} s warm-up.\n")
    idle = res.get("idle")
    if idle:
        md.append(f"**Idle** (no viewers, no recording, {a.idle_secs} s): "
                  f"{fmt(median(r['cpu_pct'] for r in idle))} % of one core "
                  f"(per-thread schedstat: {fmt(median(r['sched_cpu_pct'] for r in idle), 3)} %), "
                  f"RSS {median(r['rss_kib'] for r in idle) / 1024:.1f} MiB.\n")
    if res.get("viewers"):
        md.append("| viewers | served | fps median | fps min | at ≥ 28 fps | latency p50 ms | "
                  "latency p99 ms | server CPU % | server CPU ms/frame | (schedstat) | RSS MiB | "
                  "client CPU % | slowest answer ms | answers > 1 s |")
        md.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n, runs in res["viewers"].items():
            m = lambda k: median(r.get(k) for r in runs)  # noqa: E731
            md.append(f"| {n} | {fmt(m('served'), 0)} | {fmt(m('fps_median'), 1)} | "
                      f"{fmt(m('fps_min'), 1)} | {fmt(m('viewers_at_28fps'), 0)} | "
                      f"{fmt(m('latency_ms_p50'))} | {fmt(m('latency_ms_p99'))} | "
                      f"{fmt(m('server_cpu_pct'), 1)} | {fmt(m('server_cpu_ms_per_frame'), 4)} | "
                      f"{fmt(m('server_sched_ms_per_frame'), 4)} | "
                      f"{fmt(m('server_rss_kib') / 1024, 1)} | {fmt(m('client_cpu_pct'), 0)} | "
                      f"{fmt(m('head_ms_max'), 0)} | {fmt(m('heads_over_1s'), 0)} |")
        md.append("")
    rec = res.get("recording")
    if rec:
        ours = median(r["cpu_ms_per_frame"] for r in rec)
        md.append(f"**Recording** {a.size}@{a.fps} MJPEG file, {a.rec_secs} s "
                  "(CPU ms per frame, all threads):\n")
        md.append("| encoder | CPU ms/frame | CPU % of a core at 30 fps | vs ours | frames | "
                  "dropped | MiB |")
        md.append("|---|---:|---:|---:|---:|---:|---:|")
        md.append(f"| video-recorder (OpenH264, incl. capture) | {fmt(ours)} | "
                  f"{fmt(median(r['cpu_pct'] for r in rec), 1)} | 1.00 | "
                  f"{fmt(median(r['frames'] for r in rec), 0)} | "
                  f"{fmt(median(r['dropped_frames'] for r in rec), 0)} | "
                  f"{fmt(median(r['size_bytes'] for r in rec) / 2**20)} |")
        for p in a.presets:
            ff = median(r[f"ffmpeg_{p}"]["cpu_ms_per_frame"] for r in rec)
            md.append(f"| ffmpeg libx264 baseline `-preset {p}` | {fmt(ff)} | "
                      f"{fmt(ff * a.fps / 10)} | {fmt(ff / ours if ours else None)} | "
                      f"{rec[0][f'ffmpeg_{p}']['frames']} | 0 | "
                      f"{fmt(median(r[f'ffmpeg_{p}']['size_bytes'] for r in rec) / 2**20)} |")
        md.append(f"\nServer playing the file with nobody watching: "
                  f"{fmt(median(r['base_cpu_pct'] for r in rec))} % of a core; "
                  f"recording adds {fmt(median(r['extra_ms_per_frame'] for r in rec))} ms/frame. "
                  f"RSS while recording {median(r['rss_kib'] for r in rec) / 1024:.1f} MiB.\n")
    cam = res.get("ustreamer")
    if cam:
        md.append(f"**Our binary and ustreamer** on the stand-in camera ({a.size}@{a.fps} MJPEG "
                  "file, the same JPEGs), one after the other per viewer count; medians of "
                  f"{a.reps} runs; viewers connecting "
                  f"{f'over {a.ramp} s' if a.ramp else 'at the same instant'}; `vs ours` is the median of the per-run ratios of ms/frame. "
                  "Latency: capture to receipt of a part's last byte; for `ustreamer` "
                  "(plain /stream) only its X-Timestamp exists, which is when it queued the "
                  "part (send → receipt). Others' CPU: what the rest of the machine used "
                  "during the window (/proc/stat busy minus server and client), % of one core; "
                  "load avg: 1-minute, read before the server started (it counts the "
                  "benchmark's own threads of the run before).\n")
        md.append("| viewers | server | served | fps median | fps min | at ≥ 28 fps | "
                  "latency p50 ms | latency p99 ms | latency from | X-Timestamp p50 / p99 ms | "
                  "server CPU % | server CPU ms/frame | vs ours | RSS MiB | client CPU % | "
                  "slowest answer ms | answers > 1 s | others' CPU % | steal % | load avg |")
        md.append("|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"
                  "---:|---:|---:|---:|---:|")
        for n, by in cam.items():
            ours = by.get("ours", [])
            for name, runs in by.items():
                m = lambda k: median(r.get(k) for r in runs)  # noqa: E731
                ratios = [r["server_cpu_ms_per_frame"] / o["server_cpu_ms_per_frame"]
                          for r, o in zip(runs, ours)
                          if r.get("server_cpu_ms_per_frame") and o.get("server_cpu_ms_per_frame")]
                label = {"ours": "video-recorder /video", "ustreamer": "ustreamer /stream",
                         "ustreamer_extra_headers": "ustreamer /stream?extra_headers=1"}[name]
                frm = {"X-Timestamp": "X-Timestamp", "X-UStreamer-Grab-Time": "grab time"}
                lat_from = ("send time (X-Timestamp)" if name == "ustreamer" else
                            frm.get(runs[0].get("latency_from"), runs[0].get("latency_from")))
                md.append(f"| {n} | {label} | {fmt(m('served'), 0)} | {fmt(m('fps_median'), 1)} | "
                          f"{fmt(m('fps_min'), 1)} | {fmt(m('viewers_at_28fps'), 0)} | "
                          f"{fmt(m('latency_ms_p50'))} | {fmt(m('latency_ms_p99'))} | {lat_from} | "
                          f"{fmt(m('x_timestamp_latency_ms_p50'))} / "
                          f"{fmt(m('x_timestamp_latency_ms_p99'))} | "
                          f"{fmt(m('server_cpu_pct'), 1)} | {fmt(m('server_cpu_ms_per_frame'), 4)} | "
                          f"{fmt(median(ratios))} | {fmt(m('server_rss_kib') / 1024, 1)} | "
                          f"{fmt(m('client_cpu_pct'), 0)} | {fmt(m('head_ms_max'), 0)} | "
                          f"{fmt(m('heads_over_1s'), 0)} | {fmt(m('others_cpu_pct'), 0)} | "
                          f"{fmt(m('steal_pct'), 0)} | {fmt(m('loadavg_before'), 1)} |")
        md.append("")
    if res.get("cameras"):
        md += many_cameras.table(res["cameras"], a, fmt, median)
    if res.get("rtsp"):
        md += rtsp_bench.table(res["rtsp"], a, fmt, median)
    if res.get("rtsp-interop"):
        md += rtsp_interop.table(res["rtsp-interop"], a, fmt, median)
    if res.get("s3"):
        md += s3_bench.table(res["s3"], a, fmt, median)
    if res.get("pi_bin_bytes"):
        md.append(f"**aarch64 binary** (stripped, `make pi`): {res['pi_bin_bytes']} bytes "
                  f"({res['pi_bin_bytes'] / 2**20:.2f} MiB).\n")
    return "\n".join(md)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="target/release/video-recorder")
    ap.add_argument("--load", default=os.path.join(here, "load/target/release/vr-load"))
    ap.add_argument("--pi-bin", help="stripped aarch64 binary to report the size of")
    ap.add_argument("--out", default=os.path.join(here, "out"))
    ap.add_argument("--viewers", default="1,50,100,200,500")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--secs", type=float, default=10, help="measurement window")
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--ramp", type=float, default=0,
                    help="viewers connect spread over this many seconds (0: all at once)")
    ap.add_argument("--settle", type=float, default=2, help="after start, before measuring")
    ap.add_argument("--idle-secs", type=float, default=10)
    ap.add_argument("--rec-secs", type=float, default=10)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--presets", default="ultrafast,veryfast")
    ap.add_argument("--only", default="idle,viewers,recording,size",
                    help="any of idle,viewers,recording,size,ustreamer,cameras,rtsp,"
                         "rtsp-interop,s3")
    ap.add_argument("--moto", default=s3_bench.VENV_MOTO, help="moto_server, for --only s3")
    ap.add_argument("--cameras", default="1,2,4", help="camera counts of the cameras run")
    ap.add_argument("--cam-viewers", default="1,100,500,1000",
                    help="viewer counts of the ustreamer comparison")
    ap.add_argument("--ustreamer", default="ustreamer", help="the ustreamer binary")
    a = ap.parse_args()
    a.presets = [p for p in a.presets.split(",") if p]
    a.cam_viewers = [int(x) for x in a.cam_viewers.split(",") if x]
    a.cameras = [int(x) for x in a.cameras.split(",") if x]
    only = set(a.only.split(","))
    os.makedirs(a.out, exist_ok=True)
    a.bin, a.load = os.path.abspath(a.bin), os.path.abspath(a.load)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    with open("/proc/cpuinfo") as f:
        model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    res = {"machine": f"{os.cpu_count()} × {model}, {platform.system()} {platform.release()}",
           "loadavg": open("/proc/loadavg").read().split()[0],
           "args": {k: v for k, v in vars(a).items()}}
    if "idle" in only:
        res["idle"] = run_idle(a, log)
    if "viewers" in only:
        res["viewers"] = {}
        for n in [int(x) for x in a.viewers.split(",") if x]:
            res["viewers"][str(n)] = run_viewers(a, n, log)
    if "recording" in only:
        res["recording"], _ = run_recording(a, log)
    if "ustreamer" in only:
        res["ustreamer"] = run_ustreamer(a, log)
    if "cameras" in only:
        res["cameras"] = many_cameras.run_cameras(a, log, Server, make_input, cpu_seconds,
                                                  memory_kib, median)
    if "rtsp" in only:
        res["rtsp"] = rtsp_bench.run_rtsp(a, log, Server, cpu_seconds, memory_kib, median)
    if "rtsp-interop" in only:
        res["rtsp-interop"] = rtsp_interop.run_rtsp_interop(a, log, Server, median)
    if "s3" in only:
        res["s3"] = s3_bench.run_s3(a, log, Server, cpu_seconds, median)
    if "size" in only and a.pi_bin and os.path.exists(a.pi_bin):
        res["pi_bin_bytes"] = os.path.getsize(a.pi_bin)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    md = tables(res, a)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
