"""RTSP cameras that differ (`python3 bench/run.py --only rtsp-interop`):

- time to live (the server process started → `/status` live) and time back after an
  outage (the camera killed, the server showing it down, 2 s away, the camera
  started again on the same port → live), medians over --reps tries, for the
  cheap camera of our own (`cheap-camera`, tests/harness/src/rtsp_cheap:
  UDP only, parameter sets only in band, every session joined mid-picture)
  and GStreamer's camera (tests/harness/rtsp_camera.py, TCP) in the same run;
- stream copy on a busy machine: `stress-ng --cpu` (four workers a core,
  nice 10) with the server below it (nice 19) and the camera above (nice 0:
  another machine, which must not be starved), --rec-secs of H.264 and of
  H.265 from GStreamer's camera, as it comes and with the server stopped
  (SIGSTOP) twice for the issue's 1.47 s and 1.05 s: frames, frames dropped
  (goal 0), re-anchors logged, and the clip's longest frame (ffprobe)."""

import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GST_CAMERA = os.path.join(HERE, "..", "tests", "harness", "rtsp_camera.py")
ROOT = os.path.join(HERE, "..")


def cheap_camera_bin():
    for profile in ("release", "debug"):
        p = os.path.join(ROOT, "target", profile, "cheap-camera")
        if os.path.exists(p):
            return p
    raise RuntimeError("no cheap-camera: cargo build --release -p vr-harness --bin cheap-camera")


class Camera:
    """A camera process that says `READY <port>`; restartable on its port."""

    def __init__(self, cmd_for_port, port=0):
        self.cmd_for_port = cmd_for_port
        self.start(port)

    def start(self, port):
        deadline = time.monotonic() + 10
        while True:
            self.proc = subprocess.Popen(self.cmd_for_port(port), stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, text=True)
            line = self.proc.stdout.readline()
            if line.startswith("READY"):
                self.port = int(line.split()[1])
                return
            self.proc.wait()
            if time.monotonic() > deadline:
                raise RuntimeError(f"camera did not start on port {port}: {line!r}")
            time.sleep(0.1)  # the port may still be busy

    @property
    def url(self):
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def kill(self):
        self.proc.kill()
        self.proc.wait()


def gst(codec="h264", size="640x360"):
    w, h = size.split("x")
    return lambda port: ["/usr/bin/python3", GST_CAMERA, "--port", str(port), "--codec", codec,
                         "--width", w, "--height", h, "--fps", "30", "--key-int", "30",
                         "--bitrate", "1000"]


def cheap():
    binary = cheap_camera_bin()
    return lambda port: [binary, "--port", str(port)]


def state(s):
    return s.request("GET", "/status")[1]["source"]["state"]


def wait_state(s, want, timeout=30):
    deadline = time.monotonic() + timeout
    while state(s) != want:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not {want} within {timeout} s")
        time.sleep(0.01)


def up_and_back(a, Server, make):
    cam = Camera(make)
    # From the process's start: the camera is connected to before the HTTP
    # server listens.
    t0 = time.monotonic()
    s = Server(a.bin, ["--source", cam.url, "--clips-min-free-mb", "0",
                       "--stall-timeout-sec", "1"], a.out)
    try:
        wait_state(s, "live")
        live = time.monotonic() - t0
        cam.kill()
        wait_state(s, "down")
        time.sleep(2)
        cam.start(cam.port)
        t0 = time.monotonic()
        wait_state(s, "live")
        back = time.monotonic() - t0
        transport = s.request("GET", "/status")[1]["source"].get("transport")
    finally:
        s.stop()
        cam.kill()
    return {"live_sec": live, "back_sec": back, "transport": transport}


def pts(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "packet=pts_time", "-of", "csv=p=0", path],
                         capture_output=True, text=True, timeout=120).stdout
    return [float(x.strip(",")) for x in out.split() if x.strip(",")]


def hold_up(pid, secs):
    """The whole server stopped (SIGSTOP) for `secs`: a busy machine's worst."""
    os.kill(pid, signal.SIGSTOP)
    time.sleep(secs)
    os.kill(pid, signal.SIGCONT)


def copy_under_load(a, Server, codec, holds):
    cam = Camera(gst(codec, "320x180"))
    s = Server(a.bin, ["--source", cam.url, "--clips-min-free-mb", "0"], a.out,
               wrap=["nice", "-n", "19"])
    load = None
    try:
        wait_state(s, "live")
        workers = 4 * (os.cpu_count() or 2)
        load = subprocess.Popen(["nice", "-n", "10", "stress-ng", "--cpu", str(workers),
                                 "--timeout", "120s", "--quiet"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        st, _ = s.request("POST", "/start")
        if st != 200:
            raise RuntimeError(f"/start answered {st}")
        t0 = time.monotonic()
        for secs in holds:
            time.sleep(1.5)
            hold_up(s.pid, secs)
        time.sleep(max(0.0, a.rec_secs - (time.monotonic() - t0)))
        st, clip = s.request("POST", "/stop")
        load.send_signal(signal.SIGTERM)
        load.wait(timeout=30)
        load = None
        p = pts(clip["path"])
        gaps = [b - x for x, b in zip(p, p[1:])]
        with open(s.log_path) as f:
            reanchors = f.read().count("re-anchored")
        return {"codec": codec, "held_up": holds, "frames": clip["frames"], "dropped": clip["dropped_frames"],
                "reanchors": reanchors, "longest_frame_sec": max(gaps) if gaps else None,
                "duration_sec": clip["duration_sec"]}
    finally:
        if load:
            load.send_signal(signal.SIGTERM)
            load.wait(timeout=30)
        s.stop()
        cam.kill()


def run_rtsp_interop(a, log, Server, median):
    out = {"cheap": [], "gstreamer": [], "load": []}
    for rep in range(a.reps):
        for name, make in (("cheap", cheap()), ("gstreamer", gst())):
            r = up_and_back(a, Server, make)
            log(f"rtsp-interop {name} rep {rep + 1}: {r}")
            out[name].append(r)
    if shutil.which("stress-ng"):
        for rep in range(a.reps):
            for codec, holds in (("h264", []), ("h265", []), ("h264", [1.47, 1.05]),
                                 ("h265", [1.47, 1.05])):
                r = copy_under_load(a, Server, codec, holds)
                log(f"rtsp-interop load rep {rep + 1}: {r}")
                out["load"].append(r)
    else:
        log("rtsp-interop: stress-ng not installed; no load runs")
    return out


def table(res, a, fmt, median):
    md = [f"**RTSP cameras that differ** (medians of {a.reps}; seconds):\n",
          "| camera | transport | time to live | time back after an outage |",
          "|---|---|---|---|"]
    for name, what in (("cheap", "cheap camera (ours: UDP only, in-band SPS/PPS, joined "
                                 "mid-picture)"),
                       ("gstreamer", "GStreamer's RTSP server")):
        runs = res[name]
        m = lambda k: median([r[k] for r in runs])
        md.append(f"| {what} | {runs[0]['transport']} | {fmt(m('live_sec'), 2)} "
                  f"| {fmt(m('back_sec'), 2)} |")
    if res["load"]:
        md += ["", f"**Stream copy under `stress-ng --cpu`** ({a.rec_secs:g} s clips, 320x180@30 "
               "from GStreamer's camera; every run):\n",
               "| codec | server stopped for (s) | frames | dropped | re-anchors | longest frame, s |",
               "|---|---|---|---|---|---|"]
        for r in res["load"]:
            held = " + ".join(f"{x:g}" for x in r["held_up"]) or "—"
            md.append(f"| {r['codec']} | {held} | {r['frames']} | {r['dropped']} "
                      f"| {r['reanchors']} | {fmt(r['longest_frame_sec'], 3)} |")
    md.append("")
    return md


if __name__ == "__main__":
    sys.exit("run through bench/run.py --only rtsp-interop")
