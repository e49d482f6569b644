"""S3 uploads (`python3 bench/run.py --only s3`): moto in server mode on
loopback (the CI venv's `moto_server`, or --moto), a clips directory
holding 4 clips of 8 MiB (one PUT each) and 4 of 24 MiB (multipart, 16 MiB
parts), and the server started on it with a bucket set: it uploads what is
there, oldest first. Reports the time until the last is verified, the
throughput, our CPU per MiB (and moto's, which bounds loopback), first
without a cap, then with s3_max_kbps = 40000 (5 MB/s)."""

import json
import os
import socket
import subprocess
import time
import urllib.request

VENV_MOTO = os.path.expanduser("~/.cache/video-recorder-ci/venv/bin/moto_server")
BUCKET = "vr-bench-clips"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Moto:
    def __init__(self, binary):
        self.port = free_port()
        self.proc = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.endpoint + "/", timeout=2).read()
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start")
                time.sleep(0.1)
        req = urllib.request.Request(f"{self.endpoint}/{BUCKET}", method="PUT")
        urllib.request.urlopen(req, timeout=10).read()

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def make_clips(d):
    os.makedirs(d, exist_ok=True)
    sizes = [8] * 4 + [24] * 4
    for i, mib in enumerate(sizes):
        with open(os.path.join(d, f"cam-20260101-0000{i:02d}.mp4"), "wb") as f:
            f.write(os.urandom(mib << 20))
    return sum(sizes)


def run_one(a, Server, cpu_seconds, cap_kbps):
    moto = Moto(a.moto)
    try:
        s = Server(a.bin, ["--source", "test", "--width", "320", "--height", "240",
                           "--clips-min-free-mb", "0", "--s3-bucket", BUCKET,
                           "--s3-endpoint-url", moto.endpoint, "--s3-path-style",
                           "--s3-max-kbps", str(cap_kbps)],
                   a.out, {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"},
                   before_start=make_clips)
        try:
            mib = s.prepared
            c0, m0, t0 = cpu_seconds(s.pid), cpu_seconds(moto.proc.pid), time.monotonic()
            while True:
                u = s.request("GET", "/status")[1]["uploads"]
                if u["uploaded"] == 8 and u["pending"] == 0:
                    break
                if time.monotonic() - t0 > 600:
                    raise RuntimeError(f"uploads did not finish: {u}")
                time.sleep(0.1)
            wall = time.monotonic() - t0
            cpu, moto_cpu = cpu_seconds(s.pid) - c0, cpu_seconds(moto.proc.pid) - m0
        finally:
            s.stop()
    finally:
        moto.stop()
    return {"cap_kbps": cap_kbps, "mib": mib, "secs": wall, "mib_per_sec": mib / wall,
            "cpu_ms_per_mib": cpu * 1000 / mib, "moto_cpu_ms_per_mib": moto_cpu * 1000 / mib,
            "cpu_pct": cpu / wall * 100}


def run_s3(a, log, Server, cpu_seconds, median):
    out = []
    for rep in range(a.reps):
        r = {"uncapped": run_one(a, Server, cpu_seconds, 0),
             "capped": run_one(a, Server, cpu_seconds, 40000)}
        log(f"s3 rep {rep + 1}: {json.dumps(r)}")
        out.append(r)
    return out


def table(res, a, fmt, median):
    md = [f"**S3 uploads** (moto on loopback; 4 clips of 8 MiB as single PUTs and 4 of 24 MiB "
          f"as multipart uploads of 16 MiB parts, each verified by a HEAD; medians of {a.reps}):\n",
          "| cap | MiB | seconds | MiB/s | our CPU ms per MiB | our CPU % | moto CPU ms per MiB |",
          "|---|---|---|---|---|---|---|"]
    for k, name in (("uncapped", "none"), ("capped", "40000 kbit/s (5 MB/s)")):
        m = lambda f: median([r[k][f] for r in res])
        md.append(f"| {name} | {m('mib')} | {fmt(m('secs'), 1)} | {fmt(m('mib_per_sec'), 2)} "
                  f"| {fmt(m('cpu_ms_per_mib'), 1)} | {fmt(m('cpu_pct'), 1)} "
                  f"| {fmt(m('moto_cpu_ms_per_mib'), 1)} |")
    md.append("")
    return md
