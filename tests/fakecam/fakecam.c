/*
 * fakecam: a stand-in UVC webcam for the tests, loaded with LD_PRELOAD.
 *
 * It answers the calls a V4L2 client makes (open, close, ioctl, mmap,
 * munmap, and the stat family on /proc/self/fd/N) for character nodes of
 * the V4L2 major (81) that have a settings file in $FAKECAM_DIR, named
 * after the node's minor number: `$FAKECAM_DIR/<minor>.conf`. Everything
 * else goes to the real libc. The descriptor handed out is a real timerfd
 * that fires at the camera's frame rate, so poll/select wait for frames as
 * they would on a camera, and never spin.
 *
 * The node is real (the test makes it with mknod under /dev/shm), so the
 * client's own checks (its device number, finding its descriptor in
 * /proc/self/fd) run as on a Pi. Removing the node is unplugging the
 * camera: the next DQBUF fails with ENODEV and opens fail with ENOENT.
 *
 * Settings (key=value lines, '#' comments), read at every open:
 *   frames=PATH         concatenated JPEGs (an .mjpeg file), played in a loop
 *   card=NAME           what QUERYCAP calls the camera
 *   formats=MJPG,YUYV   formats offered, in order (YUYV frames are drawn here)
 *   sizes=640x360,...   frame sizes offered (for every format)
 *   rates=30,15         frame rates offered (for every size)
 *   deliver_fps=N       the rate frames really come at (0: as negotiated)
 *   jitter_ms=N         timestamps jitter by up to +-N ms
 *   jump_at=N jump_ms=M from the device's Nth frame on, timestamps are M ms off
 *   unplug_at=N         after the device's Nth frame the node is removed
 *   stall_at=N stall_ms=M  after the Nth frame, no frame for M ms (once)
 *   strip_dht=1         Huffman tables removed from every JPEG
 *   truncate_every=K    every Kth frame cut in half (no EOI)
 *   garbage_every=K     every Kth frame replaced by random bytes
 *   streamon_errno=N    STREAMON fails with errno N (28: ENOSPC)
 *   error_at=N          after the device's Nth frame its queue is in error
 *                       until closed (once): poll reports POLLERR at once
 *                       and DQBUF fails with EAGAIN
 *   uvc_unplug=1        once the node is gone, poll reports POLLERR|POLLHUP
 *                       at once, as uvcvideo's queue does after a
 *                       disconnect (else the descriptor keeps ticking)
 * Frame counts are per device (per minor) and carry over reopens, so each
 * fault happens once, at a known point. FAKECAM_LOG=1 logs to stderr.
 *
 * Ioctl requests are compared on their low 32 bits: some callers pass them
 * as sign-extended ints.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/videodev2.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define V4L_MAJOR 81
#define MAX_CAMS 16
#define MAX_DEVS 16
#define MAX_BUFS 8
#define MAX_LIST 8

struct conf {
    char frames[PATH_MAX];
    char card[32];
    uint32_t formats[MAX_LIST];
    int n_formats;
    uint32_t widths[MAX_LIST], heights[MAX_LIST];
    int n_sizes;
    uint32_t rates[MAX_LIST];
    int n_rates;
    long deliver_fps, jitter_ms, jump_at, jump_ms, unplug_at, stall_at, stall_ms;
    long strip_dht, truncate_every, garbage_every, streamon_errno, error_at, uvc_unplug;
};

/* What outlives an open: the device's frame count. */
struct dev {
    int used;
    unsigned minor;
    long frames;
    int stalled;
    int errored; /* error_at happened (once per device) */
};

struct buf {
    void *mem;
    size_t len;
    int queued;
    uint64_t order; /* FIFO position while queued */
};

struct cam {
    int fd; /* the timerfd; -1 when free */
    struct dev *dev;
    struct conf c;
    char node[PATH_MAX];
    dev_t rdev;
    ino_t ino;
    dev_t fs;
    uint32_t fourcc, width, height, rate, sizeimage;
    int nbufs;
    struct buf bufs[MAX_BUFS];
    uint64_t qcount;
    int streaming;
    int in_error; /* error_at: until closed */
    struct timespec start;
    uint64_t ticks, seq;
    unsigned char *data; /* the frames file */
    size_t *off, *len;
    size_t n_frames, max_frame;
    unsigned rng;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct cam cams[MAX_CAMS];
static struct dev devs[MAX_DEVS];
static int inited;

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static int (*real_ioctl)(int, unsigned long, ...);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static int (*real_munmap)(void *, size_t);
static int (*real_stat)(const char *, struct stat *);
static int (*real_fstat)(int, struct stat *);

static void init(void) {
    if (inited) return;
    real_open = dlsym(RTLD_NEXT, "open");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_close = dlsym(RTLD_NEXT, "close");
    real_ioctl = dlsym(RTLD_NEXT, "ioctl");
    real_mmap = dlsym(RTLD_NEXT, "mmap");
    real_munmap = dlsym(RTLD_NEXT, "munmap");
    real_stat = dlsym(RTLD_NEXT, "stat");
    real_fstat = dlsym(RTLD_NEXT, "fstat");
    for (int i = 0; i < MAX_CAMS; i++) cams[i].fd = -1;
    inited = 1;
}

static void say(const char *fmt, ...) {
    static int on = -1;
    if (on < 0) on = getenv("FAKECAM_LOG") != NULL;
    if (!on) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "fakecam: %s\n", line);
}

/* ---------- settings ---------- */

static uint32_t fourcc_of(const char *s) {
    return (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24;
}

static int read_conf(unsigned minor, struct conf *c) {
    const char *dir = getenv("FAKECAM_DIR");
    if (!dir) return -1;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%u.conf", dir, minor);
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    memset(c, 0, sizeof *c);
    snprintf(c->card, sizeof c->card, "Fake Camera %u", minor);
    c->formats[0] = V4L2_PIX_FMT_MJPEG;
    c->n_formats = 1;
    c->widths[0] = 640;
    c->heights[0] = 480;
    c->n_sizes = 1;
    c->rates[0] = 30;
    c->n_rates = 1;
    c->jump_at = c->unplug_at = c->stall_at = c->error_at = -1;
    char line[PATH_MAX + 64];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "#\r\n")] = 0;
        char *eq = strchr(line, '=');
        if (!eq) continue;
        *eq = 0;
        const char *k = line, *v = eq + 1;
        if (!strcmp(k, "frames")) {
            snprintf(c->frames, sizeof c->frames, "%s", v);
        } else if (!strcmp(k, "card")) {
            snprintf(c->card, sizeof c->card, "%s", v);
        } else if (!strcmp(k, "formats")) {
            c->n_formats = 0;
            for (const char *p = v; strlen(p) >= 4 && c->n_formats < MAX_LIST; p += 4) {
                c->formats[c->n_formats++] = fourcc_of(p);
                if (p[4] != ',') break;
                p++;
            }
        } else if (!strcmp(k, "sizes")) {
            c->n_sizes = 0;
            unsigned w, h;
            int used;
            for (const char *p = v; c->n_sizes < MAX_LIST && sscanf(p, "%ux%u%n", &w, &h, &used) == 2;) {
                c->widths[c->n_sizes] = w;
                c->heights[c->n_sizes++] = h;
                p += used;
                if (*p != ',') break;
                p++;
            }
        } else if (!strcmp(k, "rates")) {
            c->n_rates = 0;
            char *end;
            for (const char *p = v; c->n_rates < MAX_LIST && *p;) {
                unsigned long r = strtoul(p, &end, 10);
                if (end == p) break;
                c->rates[c->n_rates++] = (uint32_t)r;
                p = *end == ',' ? end + 1 : end;
            }
        } else {
            long n = strtol(v, NULL, 10);
            struct { const char *k; long *v; } nums[] = {
                {"deliver_fps", &c->deliver_fps}, {"jitter_ms", &c->jitter_ms},
                {"jump_at", &c->jump_at}, {"jump_ms", &c->jump_ms},
                {"unplug_at", &c->unplug_at}, {"stall_at", &c->stall_at},
                {"stall_ms", &c->stall_ms}, {"strip_dht", &c->strip_dht},
                {"truncate_every", &c->truncate_every}, {"garbage_every", &c->garbage_every},
                {"streamon_errno", &c->streamon_errno}, {"error_at", &c->error_at},
                {"uvc_unplug", &c->uvc_unplug},
            };
            for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
                if (!strcmp(k, nums[i].k)) *nums[i].v = n;
        }
    }
    fclose(f);
    return 0;
}

/* Splits the frames file into JPEGs (SOI ... EOI). */
static int load_frames(struct cam *cam) {
    if (!cam->c.frames[0]) return 0;
    int fd = real_open(cam->c.frames, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    if (real_fstat(fd, &st) < 0 || st.st_size < 4) {
        real_close(fd);
        return -1;
    }
    size_t n = (size_t)st.st_size;
    cam->data = malloc(n);
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, cam->data + got, n - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    real_close(fd);
    size_t cap = 64;
    cam->off = malloc(cap * sizeof(size_t));
    cam->len = malloc(cap * sizeof(size_t));
    for (size_t i = 0; i + 1 < got;) {
        if (cam->data[i] != 0xFF || cam->data[i + 1] != 0xD8) {
            i++;
            continue;
        }
        size_t j = i + 2;
        while (j + 1 < got && !(cam->data[j] == 0xFF && cam->data[j + 1] == 0xD9)) j++;
        if (j + 1 >= got) break;
        if (cam->n_frames == cap) {
            cap *= 2;
            cam->off = realloc(cam->off, cap * sizeof(size_t));
            cam->len = realloc(cam->len, cap * sizeof(size_t));
        }
        cam->off[cam->n_frames] = i;
        cam->len[cam->n_frames] = j + 2 - i;
        if (j + 2 - i > cam->max_frame) cam->max_frame = j + 2 - i;
        cam->n_frames++;
        i = j + 2;
    }
    say("%s: %zu frames from %s", cam->node, cam->n_frames, cam->c.frames);
    return cam->n_frames ? 0 : -1;
}

/* ---------- descriptors ---------- */

static struct cam *cam_of(int fd) {
    if (fd < 0 || !inited) return NULL;
    for (int i = 0; i < MAX_CAMS; i++)
        if (cams[i].fd == fd) return &cams[i];
    return NULL;
}

static struct dev *dev_of(unsigned minor) {
    for (int i = 0; i < MAX_DEVS; i++)
        if (devs[i].used && devs[i].minor == minor) return &devs[i];
    for (int i = 0; i < MAX_DEVS; i++)
        if (!devs[i].used) {
            devs[i].used = 1;
            devs[i].minor = minor;
            return &devs[i];
        }
    return NULL;
}

/* Buffers the client still maps stay mapped (as a kernel keeps them). */
static void free_cam(struct cam *cam) {
    free(cam->data);
    free(cam->off);
    free(cam->len);
    memset(cam, 0, sizeof *cam);
    cam->fd = -1;
}

/* A fake camera's descriptor, or -2 if `path` is not one of ours. */
static int open_cam(const char *path, int flags) {
    struct stat st;
    if (!path || real_stat(path, &st) < 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) != V4L_MAJOR)
        return -2;
    struct conf c;
    if (read_conf(minor(st.st_rdev), &c) < 0) return -2;
    pthread_mutex_lock(&lock);
    struct cam *cam = NULL;
    for (int i = 0; i < MAX_CAMS && !cam; i++)
        if (cams[i].fd < 0) cam = &cams[i];
    struct dev *dev = dev_of(minor(st.st_rdev));
    if (!cam || !dev) {
        pthread_mutex_unlock(&lock);
        errno = EMFILE;
        return -1;
    }
    int tfl = (flags & O_NONBLOCK ? TFD_NONBLOCK : 0) | (flags & O_CLOEXEC ? TFD_CLOEXEC : 0);
    int fd = timerfd_create(CLOCK_MONOTONIC, tfl);
    if (fd < 0) {
        pthread_mutex_unlock(&lock);
        return -1;
    }
    memset(cam, 0, sizeof *cam);
    cam->fd = fd;
    cam->dev = dev;
    cam->c = c;
    if (!realpath(path, cam->node)) snprintf(cam->node, sizeof cam->node, "%s", path);
    cam->rdev = st.st_rdev;
    cam->ino = st.st_ino;
    cam->fs = st.st_dev;
    cam->fourcc = c.formats[0];
    cam->width = c.widths[0];
    cam->height = c.heights[0];
    cam->rate = c.rates[0];
    cam->rng = (unsigned)fd * 2654435761u;
    if (load_frames(cam) < 0) {
        say("%s: cannot read frames from %s", cam->node, c.frames);
        real_close(fd);
        free_cam(cam);
        pthread_mutex_unlock(&lock);
        errno = EIO;
        return -1;
    }
    pthread_mutex_unlock(&lock);
    say("%s: opened as %d (minor %u)", cam->node, fd, minor(st.st_rdev));
    return fd;
}

static void stat_of_cam(struct cam *cam, struct stat *st) {
    memset(st, 0, sizeof *st);
    st->st_mode = S_IFCHR | 0660;
    st->st_rdev = cam->rdev;
    st->st_ino = cam->ino;
    st->st_dev = cam->fs;
    st->st_nlink = 1;
    st->st_blksize = 4096;
}

/* The fake camera a /proc/self/fd/N (or /dev/fd/N) path names. */
static struct cam *cam_of_path(const char *path) {
    if (!path || !inited) return NULL;
    int fd, pid, used = 0;
    if (sscanf(path, "/proc/self/fd/%d%n", &fd, &used) == 1 && !path[used]) return cam_of(fd);
    if (sscanf(path, "/dev/fd/%d%n", &fd, &used) == 1 && !path[used]) return cam_of(fd);
    if (sscanf(path, "/proc/%d/fd/%d%n", &pid, &fd, &used) == 2 && !path[used] && pid == getpid())
        return cam_of(fd);
    if (sscanf(path, "/proc/thread-self/fd/%d%n", &fd, &used) == 1 && !path[used]) return cam_of(fd);
    return NULL;
}

/* ---------- negotiation ---------- */

static int offers_format(struct cam *cam, uint32_t f) {
    for (int i = 0; i < cam->c.n_formats; i++)
        if (cam->c.formats[i] == f) return 1;
    return 0;
}

static void fit_format(struct cam *cam, struct v4l2_pix_format *p) {
    if (!offers_format(cam, p->pixelformat)) p->pixelformat = cam->c.formats[0];
    int best = 0;
    long best_d = LONG_MAX;
    for (int i = 0; i < cam->c.n_sizes; i++) {
        long d = labs((long)cam->c.widths[i] - (long)p->width) + labs((long)cam->c.heights[i] - (long)p->height);
        if (d < best_d) best_d = d, best = i;
    }
    p->width = cam->c.widths[best];
    p->height = cam->c.heights[best];
    p->field = V4L2_FIELD_NONE;
    if (p->pixelformat == V4L2_PIX_FMT_YUYV) {
        p->bytesperline = p->width * 2;
        p->sizeimage = p->width * p->height * 2;
        p->colorspace = V4L2_COLORSPACE_SRGB;
    } else {
        p->bytesperline = 0;
        p->sizeimage = p->width * p->height * 2;
        if (p->sizeimage < cam->max_frame + 4096) p->sizeimage = (uint32_t)cam->max_frame + 4096;
        p->colorspace = V4L2_COLORSPACE_JPEG;
    }
    p->priv = 0;
}

static uint32_t fit_rate(struct cam *cam, struct v4l2_fract *tpf) {
    double want = tpf->numerator ? (double)tpf->denominator / tpf->numerator : 30;
    uint32_t best = cam->c.rates[0];
    for (int i = 0; i < cam->c.n_rates; i++) {
        double d = cam->c.rates[i] - want, bd = best - want;
        if ((d < 0 ? -d : d) < (bd < 0 ? -bd : bd)) best = cam->c.rates[i];
    }
    tpf->numerator = 1;
    tpf->denominator = best;
    return best;
}

static uint64_t period_ns(struct cam *cam) {
    long fps = cam->c.deliver_fps > 0 ? cam->c.deliver_fps : (long)cam->rate;
    return 1000000000ull / (uint64_t)(fps > 0 ? fps : 1);
}

static void arm(struct cam *cam, uint64_t first_ns) {
    struct itimerspec it = {0};
    uint64_t p = period_ns(cam);
    it.it_interval.tv_sec = (time_t)(p / 1000000000u);
    it.it_interval.tv_nsec = (long)(p % 1000000000u);
    it.it_value.tv_sec = (time_t)(first_ns / 1000000000u);
    it.it_value.tv_nsec = (long)(first_ns % 1000000000u);
    timerfd_settime(cam->fd, 0, &it, NULL);
}

/* ---------- frames ---------- */

static unsigned next_rand(struct cam *cam) {
    cam->rng = cam->rng * 1103515245u + 12345u;
    return cam->rng >> 8;
}

/* Copies a JPEG without its DHT segments. */
static size_t copy_without_dht(unsigned char *out, const unsigned char *in, size_t n) {
    size_t i = 2, o = 2;
    out[0] = in[0], out[1] = in[1];
    while (i + 4 <= n && in[i] == 0xFF) {
        unsigned marker = in[i + 1];
        size_t seg = 2 + ((size_t)in[i + 2] << 8 | in[i + 3]);
        if (marker == 0xDA) break; /* start of scan: the rest is data */
        if (marker != 0xC4) {
            memcpy(out + o, in + i, seg);
            o += seg;
        }
        i += seg;
    }
    memcpy(out + o, in + i, n - i);
    return o + n - i;
}

/* A YUYV picture: grey ramp with a bright bar that moves with `n`. */
static void draw_yuyv(unsigned char *out, uint32_t w, uint32_t h, long n) {
    uint32_t bar = (uint32_t)(n * 8) % (w ? w : 1);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x += 2) {
            unsigned char *p = out + (size_t)y * w * 2 + (size_t)x * 2;
            unsigned char luma = (x >= bar && x < bar + 32) ? 235 : (unsigned char)(16 + (x * 200) / w);
            p[0] = luma, p[1] = 128, p[2] = luma, p[3] = 128;
        }
}

static size_t fill(struct cam *cam, struct buf *b, long n, uint32_t *flags) {
    unsigned char *out = b->mem;
    if (cam->fourcc == V4L2_PIX_FMT_YUYV) {
        size_t need = (size_t)cam->width * cam->height * 2;
        if (need > b->len) return 0;
        draw_yuyv(out, cam->width, cam->height, n);
        return need;
    }
    if (!cam->n_frames) return 0;
    size_t k = (size_t)n % cam->n_frames;
    const unsigned char *in = cam->data + cam->off[k];
    size_t len = cam->len[k];
    if (len > b->len) {
        *flags |= V4L2_BUF_FLAG_ERROR;
        len = b->len;
    }
    long t = cam->c.truncate_every, g = cam->c.garbage_every;
    if (g > 0 && n % g == g - 1) {
        for (size_t i = 0; i < len; i++) out[i] = (unsigned char)next_rand(cam);
        out[0] = 0x12; /* never an SOI */
        return len;
    }
    if (cam->c.strip_dht)
        len = copy_without_dht(out, in, len);
    else
        memcpy(out, in, len);
    if (t > 0 && n % t == t - 1) len /= 2;
    return len;
}

static int unplugged(struct cam *cam) {
    struct stat st;
    return real_stat(cam->node, &st) < 0 || st.st_rdev != cam->rdev;
}

static int dqbuf(struct cam *cam, struct v4l2_buffer *vb) {
    if (!cam->streaming) return errno = EINVAL, -1;
    if (cam->in_error) return errno = EAGAIN, -1;
    if (unplugged(cam)) {
        say("%s: unplugged", cam->node);
        return errno = ENODEV, -1;
    }
    uint64_t fired;
    int fd = cam->fd;
    /* Waits (or not, if non-blocking) for the next tick, outside the lock. */
    pthread_mutex_unlock(&lock);
    ssize_t r = read(fd, &fired, sizeof fired);
    int e = errno;
    pthread_mutex_lock(&lock);
    if (cam->fd != fd) return errno = EBADF, -1; /* closed meanwhile */
    if (r != sizeof fired) return errno = (r < 0 ? e : EIO), -1;
    if (!cam->streaming) return errno = EINVAL, -1;
    struct buf *b = NULL;
    int idx = -1;
    for (int i = 0; i < cam->nbufs; i++)
        if (cam->bufs[i].queued && cam->bufs[i].mem && (!b || cam->bufs[i].order < b->order))
            b = &cam->bufs[i], idx = i;
    cam->ticks += fired;
    cam->seq += fired;
    if (!b) return errno = EAGAIN, -1; /* every buffer is with the client: dropped */
    struct dev *dev = cam->dev;
    long n = dev->frames++;
    uint32_t flags = V4L2_BUF_FLAG_MAPPED | V4L2_BUF_FLAG_DONE | V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC |
                     V4L2_BUF_FLAG_TSTAMP_SRC_SOE;
    size_t used = fill(cam, b, n, &flags);
    uint64_t t = (uint64_t)cam->start.tv_sec * 1000000000u + (uint64_t)cam->start.tv_nsec;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    /* The tick this frame was due at (the timer's grid), like a camera's SOE stamp. */
    uint64_t nowns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    int64_t ts = (int64_t)(t + cam->ticks * period_ns(cam));
    if ((uint64_t)ts > nowns) ts = (int64_t)nowns;
    if (cam->c.jitter_ms > 0)
        ts += ((int64_t)(next_rand(cam) % (unsigned)(2 * cam->c.jitter_ms * 1000 + 1)) - cam->c.jitter_ms * 1000) * 1000;
    if (cam->c.jump_at >= 0 && n >= cam->c.jump_at) ts += (int64_t)cam->c.jump_ms * 1000000;
    if (ts < 0) ts = 0;
    b->queued = 0;
    memset(vb, 0, sizeof *vb);
    vb->index = (uint32_t)idx;
    vb->type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    vb->memory = V4L2_MEMORY_MMAP;
    vb->bytesused = (uint32_t)used;
    vb->length = (uint32_t)b->len;
    vb->m.offset = (uint32_t)idx * (uint32_t)b->len;
    vb->flags = flags;
    vb->field = V4L2_FIELD_NONE;
    vb->sequence = (uint32_t)cam->seq;
    vb->timestamp.tv_sec = (time_t)(ts / 1000000000);
    vb->timestamp.tv_usec = (long)(ts % 1000000000 / 1000);
    if (cam->c.unplug_at >= 0 && dev->frames == cam->c.unplug_at) {
        say("%s: unplugging after frame %ld", cam->node, n);
        unlink(cam->node);
    }
    if (cam->c.error_at >= 0 && dev->frames == cam->c.error_at && !dev->errored) {
        dev->errored = cam->in_error = 1;
        say("%s: queue in error after frame %ld", cam->node, n);
    }
    if (cam->c.stall_at >= 0 && dev->frames == cam->c.stall_at && !dev->stalled) {
        dev->stalled = 1;
        say("%s: stalling for %ld ms after frame %ld", cam->node, cam->c.stall_ms, n);
        /* The timestamp grid moves with the pause. */
        uint64_t shift = (uint64_t)cam->c.stall_ms * 1000000u - period_ns(cam);
        uint64_t s = (uint64_t)cam->start.tv_nsec + shift % 1000000000u;
        cam->start.tv_sec += (time_t)(shift / 1000000000u + s / 1000000000u);
        cam->start.tv_nsec = (long)(s % 1000000000u);
        arm(cam, (uint64_t)cam->c.stall_ms * 1000000u);
    }
    return 0;
}

static size_t buf_len(struct cam *cam) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (cam->sizeimage + page - 1) / page * page;
}

static int cam_ioctl(struct cam *cam, uint32_t req, void *arg) {
    switch (req) {
    case (uint32_t)VIDIOC_QUERYCAP: {
        struct v4l2_capability *cap = arg;
        memset(cap, 0, sizeof *cap);
        snprintf((char *)cap->driver, sizeof cap->driver, "uvcvideo");
        snprintf((char *)cap->card, sizeof cap->card, "%s", cam->c.card);
        snprintf((char *)cap->bus_info, sizeof cap->bus_info, "usb-fakecam-1.%u", minor(cam->rdev));
        cap->version = 0x060100;
        cap->device_caps = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING | V4L2_CAP_EXT_PIX_FORMAT;
        cap->capabilities = cap->device_caps | V4L2_CAP_DEVICE_CAPS;
        return 0;
    }
    case (uint32_t)VIDIOC_ENUM_FMT: {
        struct v4l2_fmtdesc *d = arg;
        if (d->type != V4L2_BUF_TYPE_VIDEO_CAPTURE || d->index >= (uint32_t)cam->c.n_formats)
            return errno = EINVAL, -1;
        uint32_t f = cam->c.formats[d->index], i = d->index;
        memset(d, 0, sizeof *d);
        d->index = i;
        d->type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        d->pixelformat = f;
        d->flags = f == V4L2_PIX_FMT_MJPEG ? V4L2_FMT_FLAG_COMPRESSED : 0;
        snprintf((char *)d->description, sizeof d->description, "%s",
                 f == V4L2_PIX_FMT_MJPEG ? "Motion-JPEG" : f == V4L2_PIX_FMT_YUYV ? "YUYV 4:2:2" : "Other");
        return 0;
    }
    case (uint32_t)VIDIOC_ENUM_FRAMESIZES: {
        struct v4l2_frmsizeenum *s = arg;
        if (!offers_format(cam, s->pixel_format) || s->index >= (uint32_t)cam->c.n_sizes)
            return errno = EINVAL, -1;
        s->type = V4L2_FRMSIZE_TYPE_DISCRETE;
        s->discrete.width = cam->c.widths[s->index];
        s->discrete.height = cam->c.heights[s->index];
        return 0;
    }
    case (uint32_t)VIDIOC_ENUM_FRAMEINTERVALS: {
        struct v4l2_frmivalenum *v = arg;
        int size_ok = 0;
        for (int i = 0; i < cam->c.n_sizes; i++)
            size_ok |= cam->c.widths[i] == v->width && cam->c.heights[i] == v->height;
        if (!offers_format(cam, v->pixel_format) || !size_ok || v->index >= (uint32_t)cam->c.n_rates)
            return errno = EINVAL, -1;
        v->type = V4L2_FRMIVAL_TYPE_DISCRETE;
        v->discrete.numerator = 1;
        v->discrete.denominator = cam->c.rates[v->index];
        return 0;
    }
    case (uint32_t)VIDIOC_G_FMT:
    case (uint32_t)VIDIOC_S_FMT:
    case (uint32_t)VIDIOC_TRY_FMT: {
        struct v4l2_format *f = arg;
        if (f->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) return errno = EINVAL, -1;
        struct v4l2_pix_format *p = &f->fmt.pix;
        if (req == (uint32_t)VIDIOC_G_FMT) {
            p->pixelformat = cam->fourcc;
            p->width = cam->width;
            p->height = cam->height;
        }
        if (req == (uint32_t)VIDIOC_S_FMT && cam->nbufs) return errno = EBUSY, -1;
        fit_format(cam, p);
        if (req == (uint32_t)VIDIOC_S_FMT) {
            cam->fourcc = p->pixelformat;
            cam->width = p->width;
            cam->height = p->height;
            cam->sizeimage = p->sizeimage;
            say("%s: format %.4s %ux%u", cam->node, (char *)&p->pixelformat, p->width, p->height);
        }
        return 0;
    }
    case (uint32_t)VIDIOC_G_PARM:
    case (uint32_t)VIDIOC_S_PARM: {
        struct v4l2_streamparm *sp = arg;
        if (sp->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) return errno = EINVAL, -1;
        struct v4l2_captureparm *c = &sp->parm.capture;
        if (req == (uint32_t)VIDIOC_S_PARM) {
            cam->rate = fit_rate(cam, &c->timeperframe);
            say("%s: rate %u fps", cam->node, cam->rate);
        }
        memset(c, 0, sizeof *c);
        c->capability = V4L2_CAP_TIMEPERFRAME;
        c->timeperframe.numerator = 1;
        c->timeperframe.denominator = cam->rate;
        c->readbuffers = 0;
        return 0;
    }
    case (uint32_t)VIDIOC_REQBUFS: {
        struct v4l2_requestbuffers *rb = arg;
        if (rb->type != V4L2_BUF_TYPE_VIDEO_CAPTURE || rb->memory != V4L2_MEMORY_MMAP)
            return errno = EINVAL, -1;
        if (cam->streaming) return errno = EBUSY, -1;
        for (int i = 0; i < cam->nbufs; i++)
            if (cam->bufs[i].mem) return errno = EBUSY, -1; /* still mapped */
        memset(cam->bufs, 0, sizeof cam->bufs);
        cam->nbufs = 0;
        if (rb->count == 0) return 0;
        if (!cam->sizeimage) {
            struct v4l2_pix_format p = {.pixelformat = cam->fourcc, .width = cam->width, .height = cam->height};
            fit_format(cam, &p);
            cam->sizeimage = p.sizeimage;
        }
        uint32_t n = rb->count < 2 ? 2 : rb->count > MAX_BUFS ? MAX_BUFS : rb->count;
        for (uint32_t i = 0; i < n; i++) cam->bufs[i].len = buf_len(cam);
        cam->nbufs = (int)n;
        rb->count = n;
        rb->capabilities = V4L2_BUF_CAP_SUPPORTS_MMAP;
        return 0;
    }
    case (uint32_t)VIDIOC_QUERYBUF:
    case (uint32_t)VIDIOC_QBUF: {
        struct v4l2_buffer *vb = arg;
        if (vb->type != V4L2_BUF_TYPE_VIDEO_CAPTURE || vb->index >= (uint32_t)cam->nbufs)
            return errno = EINVAL, -1;
        struct buf *b = &cam->bufs[vb->index];
        if (req == (uint32_t)VIDIOC_QBUF) {
            if (b->queued) return errno = EINVAL, -1;
            b->queued = 1;
            b->order = cam->qcount++;
        }
        uint32_t i = vb->index;
        memset(vb, 0, sizeof *vb);
        vb->index = i;
        vb->type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        vb->memory = V4L2_MEMORY_MMAP;
        vb->length = (uint32_t)b->len;
        vb->m.offset = i * (uint32_t)b->len;
        vb->flags = (b->mem ? V4L2_BUF_FLAG_MAPPED : 0) | (b->queued ? V4L2_BUF_FLAG_QUEUED : 0) |
                    V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC;
        return 0;
    }
    case (uint32_t)VIDIOC_DQBUF:
        return dqbuf(cam, arg);
    case (uint32_t)VIDIOC_STREAMON: {
        if (cam->c.streamon_errno) {
            say("%s: STREAMON fails with %ld", cam->node, cam->c.streamon_errno);
            return errno = (int)cam->c.streamon_errno, -1;
        }
        if (!cam->nbufs) return errno = EINVAL, -1;
        if (cam->streaming) return 0;
        cam->streaming = 1;
        cam->ticks = 0;
        clock_gettime(CLOCK_MONOTONIC, &cam->start);
        arm(cam, period_ns(cam));
        say("%s: streaming %.4s %ux%u at %u fps (delivering %ld)", cam->node, (char *)&cam->fourcc, cam->width,
            cam->height, cam->rate, cam->c.deliver_fps ? cam->c.deliver_fps : (long)cam->rate);
        return 0;
    }
    case (uint32_t)VIDIOC_STREAMOFF: {
        struct itimerspec off = {0};
        timerfd_settime(cam->fd, 0, &off, NULL);
        cam->streaming = 0;
        for (int i = 0; i < cam->nbufs; i++) cam->bufs[i].queued = 0;
        return 0;
    }
    case (uint32_t)VIDIOC_G_INPUT: {
        *(int *)arg = 0;
        return 0;
    }
    case (uint32_t)VIDIOC_S_INPUT:
        return *(int *)arg == 0 ? 0 : (errno = EINVAL, -1);
    case (uint32_t)VIDIOC_ENUMINPUT: {
        struct v4l2_input *in = arg;
        if (in->index != 0) return errno = EINVAL, -1;
        memset(in, 0, sizeof *in);
        snprintf((char *)in->name, sizeof in->name, "Camera 1");
        in->type = V4L2_INPUT_TYPE_CAMERA;
        return 0;
    }
    default:
        /* Controls and everything else: not supported. */
        say("%s: ioctl 0x%08x: EINVAL", cam->node, req);
        return errno = EINVAL, -1;
    }
}

/* ---------- the intercepted calls ---------- */

/* libc declares paths non-null, yet callers probe with NULL (Rust's std asks
 * statx(0, NULL, ...) to see whether it exists): hide the pointer from the
 * compiler so that the NULL checks stay. */
static const char *launder(const char *p) {
    __asm__("" : "+r"(p));
    return p;
}

int open(const char *path_, int flags, ...) {
    const char *path = launder(path_);
    init();
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    int fd = (flags & (O_CREAT | O_TMPFILE)) ? -2 : open_cam(path, flags);
    return fd == -2 ? real_open(path, flags, mode) : fd;
}

int open64(const char *path, int flags, ...) __attribute__((alias("open")));
int __open_2(const char *path, int flags) { return open(path, flags); }
int __open64_2(const char *path, int flags) { return open(path, flags); }

int openat(int dirfd, const char *path_, int flags, ...) {
    const char *path = launder(path_);
    init();
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    int fd = -2;
    if (!(flags & (O_CREAT | O_TMPFILE)) && path && (path[0] == '/' || dirfd == AT_FDCWD)) fd = open_cam(path, flags);
    return fd == -2 ? real_openat(dirfd, path, flags, mode) : fd;
}

int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

/* What poll reports for a camera in error (0: nothing of its own). */
static short poll_error(struct cam *cam) {
    if (cam->in_error) return POLLERR;
    if (cam->c.uvc_unplug && unplugged(cam)) return POLLERR | POLLHUP;
    return 0;
}

int poll(struct pollfd *fds, nfds_t n, int timeout) {
    static int (*real_poll)(struct pollfd *, nfds_t, int);
    if (!real_poll) real_poll = dlsym(RTLD_NEXT, "poll");
    short errs[8] = {0};
    int any = 0;
    pthread_mutex_lock(&lock);
    for (nfds_t i = 0; i < n && i < 8; i++) {
        struct cam *cam = cam_of(fds[i].fd);
        if (cam) any |= errs[i] = poll_error(cam);
    }
    pthread_mutex_unlock(&lock);
    if (!any) return real_poll(fds, n, timeout);
    /* The others' state now, without waiting: a queue in error wakes at once. */
    int r = real_poll(fds, n, 0);
    if (r < 0) return r;
    for (nfds_t i = 0; i < n && i < 8; i++) {
        if (!errs[i]) continue;
        if (!fds[i].revents) r++;
        fds[i].revents = errs[i];
    }
    return r;
}

int close(int fd) {
    init();
    pthread_mutex_lock(&lock);
    struct cam *cam = cam_of(fd);
    if (cam) {
        say("%s: closed %d", cam->node, fd);
        free_cam(cam);
    }
    pthread_mutex_unlock(&lock);
    return real_close(fd);
}

int ioctl(int fd, unsigned long request, ...) {
    init();
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    pthread_mutex_lock(&lock);
    struct cam *cam = cam_of(fd);
    if (!cam) {
        pthread_mutex_unlock(&lock);
        return real_ioctl(fd, request, arg);
    }
    int r = cam_ioctl(cam, (uint32_t)request, arg);
    int e = errno;
    pthread_mutex_unlock(&lock);
    errno = e;
    return r;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    init();
    pthread_mutex_lock(&lock);
    struct cam *cam = cam_of(fd);
    if (!cam) {
        pthread_mutex_unlock(&lock);
        return real_mmap(addr, len, prot, flags, fd, off);
    }
    void *r = MAP_FAILED;
    size_t bl = cam->nbufs ? cam->bufs[0].len : 0;
    size_t i = bl ? (size_t)off / bl : 0;
    if (bl && (size_t)off % bl == 0 && i < (size_t)cam->nbufs && len <= bl) {
        struct buf *b = &cam->bufs[i];
        if (!b->mem) {
            void *m = real_mmap(NULL, b->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
            if (m != MAP_FAILED) b->mem = m;
        }
        r = b->mem ? b->mem : MAP_FAILED;
    }
    pthread_mutex_unlock(&lock);
    if (r == MAP_FAILED) errno = EINVAL;
    return r;
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off) {
    return mmap(addr, len, prot, flags, fd, (off_t)off);
}

int munmap(void *addr, size_t len) {
    init();
    pthread_mutex_lock(&lock);
    for (int c = 0; c < MAX_CAMS; c++)
        for (int i = 0; cams[c].fd >= 0 && i < cams[c].nbufs; i++)
            if (cams[c].bufs[i].mem == addr) {
                /* The client let go; the buffer is gone for good. */
                cams[c].bufs[i].mem = NULL;
                cams[c].bufs[i].queued = 0;
            }
    pthread_mutex_unlock(&lock);
    return real_munmap(addr, len);
}

/* Fills `st` when `path` (a /proc/self/fd/N name; NULL: the descriptor
 * `fd` itself) is one of the fake cameras' descriptors; 1 if it was. */
static int fake_stat(const char *path, int fd, struct stat *st) {
    init();
    pthread_mutex_lock(&lock);
    struct cam *cam = path ? cam_of_path(path) : cam_of(fd);
    if (cam) stat_of_cam(cam, st);
    pthread_mutex_unlock(&lock);
    return cam != NULL;
}

int stat(const char *path_, struct stat *st) {
    const char *path = launder(path_);
    init();
    return path && fake_stat(path, -1, st) ? 0 : real_stat(path, st);
}

int fstat(int fd, struct stat *st) {
    return fake_stat(NULL, fd, st) ? 0 : real_fstat(fd, st);
}

#if defined(__LP64__)
/* On 64-bit targets struct stat64 is struct stat. */
int stat64(const char *path, struct stat64 *st) { return stat(path, (struct stat *)st); }
int fstat64(int fd, struct stat64 *st) { return fstat(fd, (struct stat *)st); }
#else
static int to_stat64(const struct stat *s, struct stat64 *o) {
    memset(o, 0, sizeof *o);
    o->st_mode = s->st_mode;
    o->st_rdev = s->st_rdev;
    o->st_ino = s->st_ino;
    o->st_dev = s->st_dev;
    o->st_nlink = s->st_nlink;
    o->st_blksize = s->st_blksize;
    return 0;
}

int stat64(const char *path_, struct stat64 *st) {
    static int (*real_stat64)(const char *, struct stat64 *);
    const char *path = launder(path_);
    struct stat s;
    if (path && fake_stat(path, -1, &s)) return to_stat64(&s, st);
    if (!real_stat64) real_stat64 = dlsym(RTLD_NEXT, "stat64");
    return real_stat64(path, st);
}

int fstat64(int fd, struct stat64 *st) {
    static int (*real_fstat64)(int, struct stat64 *);
    struct stat s;
    if (fake_stat(NULL, fd, &s)) return to_stat64(&s, st);
    if (!real_fstat64) real_fstat64 = dlsym(RTLD_NEXT, "fstat64");
    return real_fstat64(fd, st);
}
#endif

/* Rust's std asks statx first. */
int statx(int dirfd, const char *path_, int flags, unsigned mask, struct statx *sx) {
    static int (*real_statx)(int, const char *, int, unsigned, struct statx *);
    const char *path = launder(path_);
    init();
    if (!real_statx) real_statx = dlsym(RTLD_NEXT, "statx");
    struct stat s;
    int found = 0;
    if (path && !path[0] && (flags & AT_EMPTY_PATH))
        found = fake_stat(NULL, dirfd, &s);
    else if (path && path[0] == '/')
        found = fake_stat(path, -1, &s);
    if (!found) return real_statx(dirfd, path, flags, mask, sx);
    memset(sx, 0, sizeof *sx);
    sx->stx_mask = STATX_TYPE | STATX_MODE | STATX_INO | STATX_NLINK;
    sx->stx_mode = (uint16_t)s.st_mode;
    sx->stx_ino = s.st_ino;
    sx->stx_nlink = 1;
    sx->stx_blksize = 4096;
    sx->stx_rdev_major = major(s.st_rdev);
    sx->stx_rdev_minor = minor(s.st_rdev);
    sx->stx_dev_major = major(s.st_dev);
    sx->stx_dev_minor = minor(s.st_dev);
    return 0;
}
