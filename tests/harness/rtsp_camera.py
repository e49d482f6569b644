#!/usr/bin/python3
"""A network camera for the tests that speaks RTSP: GStreamer's RTSP server
(python3-gi, gir1.2-gst-rtsp-server-1.0) on 127.0.0.1, one shared mount
/cam, H.264 or H.265 of a moving test picture with the running time on it.

Prints exactly one line `READY <port>` on stdout once it is listening
(`--port 0`: a free port, chosen by the kernel), then serves until SIGTERM
or SIGINT (exit 0). Exit 3: the port could not be bound (busy).

On stderr, at most once a second and only when it changed: `SENT <n>`,
the frames that reached the payloader (pay0) while at least one client was
playing (each counted once, however many clients got it).

The one pipeline is built and prerolled before READY and shared by every
client; it never stops while the server runs (exit 5 if it fails to start).

With --user and --password, only that user may DESCRIBE/PLAY; --auth picks
what the server asks for in its 401: digest (default), basic, or both.
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

# One slice a frame: zerolatency's sliced threads cut each frame in as many
# slices as there are cores, and rtph264pay (config-interval=-1) then puts
# SPS/PPS before each IDR slice, which splits a keyframe in two access units
# for a depacketizer (ffmpeg: two packets of one timestamp). One thread, so
# no frame of encoder delay either.
ENCODERS = {
    "h264": (
        "x264enc tune=zerolatency speed-preset=ultrafast key-int-max={k} bitrate={b} "
        "sliced-threads=false threads=1 "
        "! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=-1"
    ),
    "h265": (
        "x265enc tune=zerolatency speed-preset=ultrafast key-int-max={k} bitrate={b} "
        "! video/x-h265,profile=main ! rtph265pay name=pay0 pt=96 config-interval=-1"
    ),
}


def launch_line(a):
    src = (
        "videotestsrc is-live=true pattern=ball "
        "! video/x-raw,width={w},height={h},framerate={f}/1 "
        "! timeoverlay font-desc=\"Sans 24\" "
    ).format(w=a.width, h=a.height, f=a.fps)
    enc = ENCODERS[a.codec].format(k=a.key_int, b=a.bitrate)
    return "( " + src + "! " + enc + " )"


def set_supported_methods(auth, methods):
    """What the 401 asks for. The binding takes one RTSPAuthMethod, not the
    flags the C function takes (BASIC|DIGEST): that is called directly."""
    try:
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod(methods))
        return
    except (TypeError, ValueError):
        pass
    import ctypes

    api = ctypes.pythonapi
    api.PyCapsule_GetName.restype = ctypes.c_char_p
    api.PyCapsule_GetName.argtypes = [ctypes.py_object]
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    cap = auth.__gpointer__
    ptr = api.PyCapsule_GetPointer(cap, api.PyCapsule_GetName(cap))
    lib = ctypes.CDLL("libgstrtspserver-1.0.so.0")
    lib.gst_rtsp_auth_set_supported_methods.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.gst_rtsp_auth_set_supported_methods.restype = None
    lib.gst_rtsp_auth_set_supported_methods(ptr, methods)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, help="0: any free port")
    p.add_argument("--codec", choices=sorted(ENCODERS), default="h264")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--key-int", type=int, default=30, help="frames between keyframes")
    p.add_argument("--bitrate", type=int, default=1000, help="kbit/s")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--auth", choices=["digest", "basic", "both"], default="digest")
    p.add_argument(
        "--udp-only",
        action="store_true",
        help="offer RTP over UDP only: a SETUP asking for TCP gets 461 (as many cheap cameras)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="only check that the elements for --codec are installed (exit 4 if not)",
    )
    a = p.parse_args()
    if (a.user is None) != (a.password is None):
        p.error("--user and --password go together")

    Gst.init(None)
    if a.check:
        need = ["videotestsrc", "timeoverlay"] + {
            "h264": ["x264enc", "rtph264pay"],
            "h265": ["x265enc", "rtph265pay"],
        }[a.codec]
        missing = [e for e in need if Gst.ElementFactory.find(e) is None]
        if missing:
            print("missing GStreamer elements: " + " ".join(missing), file=sys.stderr)
            sys.exit(4)
        sys.exit(0)
    if a.port is None:
        p.error("--port is required")
    loop = GLib.MainLoop()

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(a.port))

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_line(a))
    factory.set_shared(True)
    if a.udp_only:
        factory.set_protocols(GstRtsp.RTSPLowerTrans.UDP)
    # Live: a PLAY's Range (ffmpeg sends npt=0.000-) must not seek the one
    # pipeline every client shares back to 0. The server takes a media that
    # publishes its clock with an offset (RFC 7273) as not seekable.
    factory.set_publish_clock_mode(GstRtspServer.RTSPPublishClockMode.CLOCK_AND_OFFSET)

    sent = [0]

    def configured(_factory, media):
        print("media configured", file=sys.stderr, flush=True)

        # A frame is sent when some client is playing: its stream has a
        # transport from PLAY until TEARDOWN or the connection's end. (Once
        # a client has played, the shared pipeline runs on without any.)
        def count(_pad, _info):
            stream = media.get_stream(0)
            if stream is not None and stream.transport_filter(None):
                sent[0] += 1
            return Gst.PadProbeReturn.OK

        pay = media.get_element().get_by_name("pay0")
        pay.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, count)

    factory.connect("media-configure", configured)

    if a.user is not None:
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
        auth = GstRtspServer.RTSPAuth()
        methods = 0
        if a.auth in ("basic", "both"):
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(a.user, a.password), token)
            methods |= int(GstRtsp.RTSPAuthMethod.BASIC)
        if a.auth in ("digest", "both"):
            auth.add_digest(a.user, a.password, token)
            methods |= int(GstRtsp.RTSPAuthMethod.DIGEST)
        set_supported_methods(auth, methods)
        server.set_auth(auth)
        perms = GstRtspServer.RTSPPermissions()
        for perm in (
            GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS,
            GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT,
        ):
            perms.add_permission_for_role("viewer", perm, True)
        factory.set_permissions(perms)

    server.get_mount_points().add_factory("/cam", factory)

    if server.attach(None) == 0:
        print("cannot bind 127.0.0.1:%d" % a.port, file=sys.stderr, flush=True)
        sys.exit(3)

    # The shared media is built now and kept prepared for good (a prepare
    # of our own that is never undone), as a camera's encoder runs whether
    # anyone watches or not: a DESCRIBE answers at once, and no client meets
    # the media while it is torn down after the last one left (a 503, which
    # the server answers in that window when the media is built on demand).
    port = server.get_bound_port()
    _, url = GstRtsp.RTSPUrl.parse("rtsp://127.0.0.1:%d/cam" % port)
    media = factory.construct(url)
    if media is None:
        print("cannot build the pipeline: " + launch_line(a), file=sys.stderr, flush=True)
        sys.exit(5)
    # A thread of the server's pool runs the media's bus (one made with
    # RTSPThread.new runs no loop: prepare() would wait out its 20 s).
    thread = server.get_thread_pool().get_thread(
        GstRtspServer.RTSPThreadType.MEDIA, GstRtspServer.RTSPContext()
    )
    # Returns once prerolled (a frame reached the payloader), or failed.
    if not media.prepare(thread):
        print("the pipeline failed to preroll: " + launch_line(a), file=sys.stderr, flush=True)
        sys.exit(5)

    last = [0]

    def report():
        if sent[0] != last[0]:
            last[0] = sent[0]
            print("SENT %d" % sent[0], file=sys.stderr, flush=True)
        return True

    GLib.timeout_add_seconds(1, report)

    def stop():
        loop.quit()
        return False

    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, stop)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, stop)

    print("READY %d" % port, flush=True)
    loop.run()
    sys.exit(0)


if __name__ == "__main__":
    main()
