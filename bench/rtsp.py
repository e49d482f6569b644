"""RTSP cameras (`python3 bench/run.py --only rtsp`): one GStreamer RTSP
camera (tests/harness/rtsp_camera.py, 1280x720@30 H.264, x264enc 4 Mbit/s
CBR, a keyframe a second) and, in one run against the same stream:

- receiving only (live, nobody watching): the server's CPU;
- recording by stream copy: the server's CPU next to
  `ffmpeg -rtsp_transport tcp -i URL -c copy` to MP4 for as long (goal:
  ours at most 1.5x ffmpeg's), and RSS;
- the fMP4 live view to 1, 10 and 100 viewers: CPU per delivered fragment,
  and the delay from a frame's capture (its fragment's decode time is the
  capture clock, CLOCK_MONOTONIC, which this script reads too) to its
  fragment arriving here;
- the MJPEG view decoded on demand (one viewer of /video): CPU above
  receiving only, per decoded frame and per JPEG delivered."""

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CAMERA = os.path.join(HERE, "..", "tests", "harness", "rtsp_camera.py")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Camera:
    def __init__(self, size, fps, kbps):
        w, h = size.split("x")
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", CAMERA, "--port", str(self.port), "--width", w, "--height", h,
             "--fps", str(fps), "--key-int", str(fps), "--bitrate", str(kbps)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"RTSP camera did not start: {line!r}")
        self.url = f"rtsp://127.0.0.1:{self.port}/cam"

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def cpu_over(pid, secs, cpu_seconds):
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(secs)
    return (cpu_seconds(pid) - c0) / (time.monotonic() - t0) * 100


def ffmpeg_copy(url, secs, out):
    """ffmpeg's CPU (% of one core) copying `secs` of the stream to MP4."""
    t0 = time.monotonic()
    p = subprocess.Popen(["ffmpeg", "-v", "error", "-y", "-rtsp_transport", "tcp", "-i", url,
                          "-c", "copy", "-t", str(secs), out],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    if status != 0:
        raise RuntimeError(f"ffmpeg failed: {p.stderr.read().decode()[-500:]}")
    return (ru.ru_utime + ru.ru_stime) / wall * 100


class Mp4Viewer(threading.Thread):
    """Reads live.mp4, counting fragments and their delay since capture."""

    def __init__(self, addr, path, secs):
        super().__init__(daemon=True)
        self.addr, self.path, self.secs = addr, path, secs
        self.fragments, self.delays, self.error = 0, [], None

    def run(self):
        host, port = self.addr.rsplit(":", 1)
        try:
            s = socket.create_connection((host, int(port)), timeout=10)
            s.sendall(f"GET {self.path} HTTP/1.1\r\nHost: {self.addr}\r\n\r\n".encode())
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += s.recv(65536)
            buf = buf.split(b"\r\n\r\n", 1)[1]
            end = time.monotonic() + self.secs
            while time.monotonic() < end:
                while len(buf) >= 8:
                    size, kind = struct.unpack(">I4s", buf[:8])
                    if len(buf) < size:
                        break
                    if kind == b"moof":
                        self.moof(buf[8:size])
                    buf = buf[size:]
                chunk = s.recv(262144)
                if not chunk:
                    break
                buf += chunk
            s.close()
        except OSError as e:
            self.error = str(e)

    def moof(self, body):
        now = time.monotonic()
        i = body.find(b"tfdt")
        if i >= 4:
            version = body[i + 4]
            t = struct.unpack(">Q" if version == 1 else ">I",
                              body[i + 8:i + 16 if version == 1 else i + 12])[0]
            self.fragments += 1
            self.delays.append((now - t / 90000) * 1000)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else None


def mse_viewers(s, n, secs, warmup, cpu_seconds, median):
    viewers = [Mp4Viewer(s.addr, "/cameras/cam/live.mp4", secs + warmup) for _ in range(n)]
    for v in viewers:
        v.start()
    time.sleep(warmup)
    counted = [v.fragments for v in viewers]
    c0, t0 = cpu_seconds(s.pid), time.monotonic()
    time.sleep(secs - 0.5)
    cpu = cpu_seconds(s.pid) - c0
    wall = time.monotonic() - t0
    delivered = sum(v.fragments - c for v, c in zip(viewers, counted))
    for v in viewers:
        v.join()
    delays = [d for v in viewers for d in v.delays[len(v.delays) // 4:]]
    return {"viewers": n, "cpu_pct": cpu / wall * 100,
            "cpu_ms_per_fragment": cpu * 1000 / delivered if delivered else None,
            "fragments_per_viewer_per_sec": delivered / n / wall,
            "delay_ms_median": median(delays), "delay_ms_p95": pct(delays, 0.95),
            "errors": sum(1 for v in viewers if v.error)}


def mjpeg_view(s, secs, cpu_seconds):
    status = lambda: s.request("GET", "/cameras/cam/status")[1]["source"]["decoded_frames"]
    host, port = s.addr.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(f"GET /cameras/cam/video HTTP/1.1\r\nHost: {s.addr}\r\n\r\n".encode())
    time.sleep(1.5)  # the decoder starts at a keyframe
    d0, c0, t0 = status(), cpu_seconds(s.pid), time.monotonic()
    parts, end = 0, time.monotonic() + secs
    while time.monotonic() < end:
        parts += sock.recv(1 << 20).count(b"Content-Type: image/jpeg")
    cpu, wall, decoded = cpu_seconds(s.pid) - c0, time.monotonic() - t0, status() - d0
    sock.close()
    return {"cpu_pct": cpu / wall * 100, "decoded": decoded, "jpegs": parts,
            "cpu_ms_per_decoded_frame": cpu * 1000 / decoded if decoded else None,
            "cpu_ms_per_jpeg": cpu * 1000 / parts if parts else None}


def run_rtsp(a, log, Server, cpu_seconds, memory_kib, median):
    out = []
    for rep in range(a.reps):
        cam = Camera(a.size, a.fps, 4000)
        s = Server(a.bin, ["--source", cam.url, "--max-viewers", "200",
                           "--max-viewers-per-client", "200", "--clips-min-free-mb", "0"], a.out)
        try:
            deadline = time.monotonic() + 30
            while s.request("GET", "/status")[1]["source"]["state"] != "live":
                if time.monotonic() > deadline:
                    raise RuntimeError("RTSP camera not live")
                time.sleep(0.2)
            time.sleep(a.settle)
            r = {"receiving_cpu_pct": cpu_over(s.pid, a.idle_secs, cpu_seconds),
                 "receiving_rss_kib": memory_kib(s.pid)[0]}
            st, body = s.request("POST", "/start")
            if st != 200:
                raise RuntimeError(f"/start answered {st}: {body}")
            r["recording_cpu_pct"] = cpu_over(s.pid, a.rec_secs, cpu_seconds)
            st, clip = s.request("POST", "/stop")
            r["recording_rss_kib"], r["hwm_kib"] = memory_kib(s.pid)
            r["clip_frames"], r["clip_dropped"] = clip["frames"], clip["dropped_frames"]
            r["ffmpeg_copy_cpu_pct"] = ffmpeg_copy(cam.url, a.rec_secs,
                                                   os.path.join(a.out, "ffmpeg-copy.mp4"))
            r["ratio_to_ffmpeg"] = r["recording_cpu_pct"] / r["ffmpeg_copy_cpu_pct"]
            r["mse"] = [mse_viewers(s, n, a.secs, a.warmup, cpu_seconds, median)
                        for n in (1, 10, 100)]
            r["mjpeg_decode"] = mjpeg_view(s, a.secs, cpu_seconds)
            r["decoded_before_mjpeg"] = 0
        finally:
            s.stop()
            cam.stop()
        log(f"rtsp rep {rep + 1}: {json.dumps(r)}")
        out.append(r)
    return out


def table(res, a, fmt, median):
    runs = res
    m = lambda f: median([f(r) for r in runs])
    md = [f"**RTSP camera** ({a.size}@{a.fps} H.264 from GStreamer's RTSP server, 4 Mbit/s, "
          f"a keyframe a second; CPU in % of one core, medians of {a.reps}):\n",
          "| receiving only | recording (copy) | ffmpeg -c copy | ratio | RSS MiB (receiving / "
          "recording) | clip frames / dropped |",
          "|---|---|---|---|---|---|",
          f"| {fmt(m(lambda r: r['receiving_cpu_pct']))} | {fmt(m(lambda r: r['recording_cpu_pct']))} "
          f"| {fmt(m(lambda r: r['ffmpeg_copy_cpu_pct']))} | {fmt(m(lambda r: r['ratio_to_ffmpeg']))} "
          f"| {fmt(m(lambda r: r['receiving_rss_kib']) / 1024, 1)} / "
          f"{fmt(m(lambda r: r['recording_rss_kib']) / 1024, 1)} "
          f"| {m(lambda r: r['clip_frames'])} / {m(lambda r: r['clip_dropped'])} |",
          "",
          "| live.mp4 viewers | CPU % | CPU ms per fragment | fragments/s per viewer "
          "| delay capture → here, ms (median / p95) | errors |",
          "|---|---|---|---|---|---|"]
    for i, n in enumerate((1, 10, 100)):
        g = lambda k: m(lambda r: r["mse"][i][k])
        md.append(f"| {n} | {fmt(g('cpu_pct'))} | {fmt(g('cpu_ms_per_fragment'), 3)} "
                  f"| {fmt(g('fragments_per_viewer_per_sec'), 1)} "
                  f"| {fmt(g('delay_ms_median'), 1)} / {fmt(g('delay_ms_p95'), 1)} | {g('errors')} |")
    g = lambda k: m(lambda r: r["mjpeg_decode"][k])
    md += ["",
           "| MJPEG view decoded on demand (1 viewer) | CPU % | decoded frames | JPEGs | CPU ms per "
           "decoded frame | CPU ms per JPEG |",
           "|---|---|---|---|---|---|",
           f"| (receiving only: {fmt(m(lambda r: r['receiving_cpu_pct']))} %) | {fmt(g('cpu_pct'))} "
           f"| {g('decoded')} | {g('jpegs')} | {fmt(g('cpu_ms_per_decoded_frame'), 2)} "
           f"| {fmt(g('cpu_ms_per_jpeg'), 2)} |", ""]
    return md


if __name__ == "__main__":
    sys.exit("run through bench/run.py --only rtsp")
