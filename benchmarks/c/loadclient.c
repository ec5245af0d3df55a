/* loadclient: a WebSocket load client for benchmarks/ws_echo.py, in C.
 *
 * The same command line, stdout protocol and JSON result as the Go client
 * (benchmarks/go/loadclient/main.go), for plain text or binary frames; it costs
 * less CPU per message, so that on a 2-core machine the servers under test, not
 * the client, set the pace. One thread, non-blocking sockets, level-triggered
 * epoll. Per ready connection: ONE read into the connection's buffer, every
 * complete frame parsed (server frames are unmasked; 16- and 64-bit lengths; a
 * ping is answered with a pong; a close frame is answered and ends the
 * connection; a partial frame waits for the next read), then the n echoes read
 * are answered with ONE write of n prebuilt masked frames.
 *
 * Protocol with the driver, one line each on stdout:
 *
 *     connected <n> <secs>   every connection is upgraded
 *     start                  the measuring window opens
 *     end                    the window closes
 *     {json}                 msgs, seconds, rate, p50_us, p99_us, cpu, compressed,
 *                            wrong_length, frame_bytes, ... (plus closed, lost and
 *                            unexpected, which the Go client does not report)
 *
 * With -idle the connections only connect; "ready" is printed and they are held
 * (pings answered) until stdin gives a line or closes, or -hold seconds pass.
 * -deflate (permessage-deflate) is refused with exit status 2: the Go client
 * does that workload. -procs is accepted and ignored (one thread).
 *
 * Bounded: a connection not upgraded within DIAL_TIMEOUT seconds fails the run,
 * the load stops after -warmup + -duration (or as soon as no connection is
 * left), and a SIGALRM after -deadline seconds exits whatever happens.
 *
 * Exit status: 0 done, 1 a connection could not be dialled or upgraded (or a
 * system call failed), 2 bad command line, 3 deadline reached.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define DIAL_TIMEOUT 30.0           /* seconds from connect() to the 101 (Go: 10 s dial + 30 s handshake) */
#define MAX_HEAD 8192               /* the longest upgrade response accepted */
#define MAX_FRAME (64u << 20)       /* the longest server frame accepted: bounds a connection's buffer */
#define MAX_SIZE (16 << 20)         /* the largest -size: bounds the prebuilt batch */
#define MAX_INFLIGHT 65536          /* the largest -inflight */
#define FINE_BUCKETS 10000          /* latency histogram: 1 us buckets below 10 ms, */
#define COARSE_BUCKETS 100000       /* 100 us buckets up to 10 s, one bucket above (as the Go client) */
#define STDIN_TAG UINT32_MAX        /* epoll data of stdin (-idle) */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ---- options (Go flag style: -name value, -name=value, --name too) ---------------------------- */

static struct {
    const char *url, *src;
    long conns, inflight, size, dial, procs;
    int binary, deflate, idle;
    double warmup, duration, hold, deadline;
} opt = {"ws://127.0.0.1:8080/ws", "", 50, 16, 64, 200, 1, 0, 0, 0, 0.5, 2, 120, 300};

enum kind { K_STR, K_INT, K_FLOAT, K_BOOL };
static const struct flagdef {
    const char *name;
    enum kind kind;
    void *p;
    const char *help;
} FLAGS[] = {
    {"url", K_STR, &opt.url, "server URL, ws://host:port/path"},
    {"conns", K_INT, &opt.conns, "connections"},
    {"inflight", K_INT, &opt.inflight, "messages in flight per connection"},
    {"size", K_INT, &opt.size, "payload bytes"},
    {"binary", K_BOOL, &opt.binary, "binary frames (default text)"},
    {"deflate", K_BOOL, &opt.deflate, "permessage-deflate: NOT supported here (exit 2), use the Go client"},
    {"warmup", K_FLOAT, &opt.warmup, "seconds of load before the window opens"},
    {"duration", K_FLOAT, &opt.duration, "seconds of the measuring window"},
    {"idle", K_BOOL, &opt.idle, "only connect, print ready, hold until stdin gives a line"},
    {"hold", K_FLOAT, &opt.hold, "with -idle: the longest hold, seconds"},
    {"dial", K_INT, &opt.dial, "connections dialled at once"},
    {"deadline", K_FLOAT, &opt.deadline, "the program exits after this many seconds whatever happens"},
    {"src", K_STR, &opt.src, "local IP to dial from, e.g. 127.0.0.2 (each has its own ephemeral ports)"},
    {"procs", K_INT, &opt.procs, "accepted for the Go client's command line, ignored (one thread)"},
};
#define NFLAGS (sizeof FLAGS / sizeof FLAGS[0])

static void usage(FILE *f) {
    fprintf(f, "Usage of loadclient (C):\n");
    for (size_t i = 0; i < NFLAGS; i++)
        fprintf(f, "  -%s\n    \t%s\n", FLAGS[i].name, FLAGS[i].help);
}

/* one line on stderr, "loadclient: " and the message (usage_error and fail exit after it) */
static void vsay(const char *fmt, va_list ap) {
    fputs("loadclient: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

static void usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsay(fmt, ap);
    va_end(ap);
    exit(2);
}

static int parse_bool(const char *v, int *out) { /* what Go's strconv.ParseBool accepts */
    static const char *yes[] = {"1", "t", "T", "true", "TRUE", "True"};
    static const char *no[] = {"0", "f", "F", "false", "FALSE", "False"};
    for (size_t i = 0; i < 6; i++) {
        if (strcmp(v, yes[i]) == 0) return *out = 1, 0;
        if (strcmp(v, no[i]) == 0) return *out = 0, 0;
    }
    return -1;
}

static void parse_args(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == 0) usage_error("unexpected argument %s", a);
        a += (a[1] == '-') ? 2 : 1;
        if (strcmp(a, "h") == 0 || strcmp(a, "help") == 0) {
            usage(stderr);
            exit(0);
        }
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        const struct flagdef *f = NULL;
        for (size_t k = 0; k < NFLAGS; k++)
            if (strlen(FLAGS[k].name) == nlen && strncmp(FLAGS[k].name, a, nlen) == 0) f = &FLAGS[k];
        if (f == NULL) usage_error("flag provided but not defined: %s", argv[i]);
        const char *v;
        if (eq) v = eq + 1;
        else if (f->kind == K_BOOL) v = "true"; /* as in Go, a bool takes its value only after '=' */
        else if (i + 1 < argc) v = argv[++i];
        else usage_error("flag needs an argument: -%s", f->name);
        char *end = NULL;
        errno = 0;
        switch (f->kind) {
        case K_STR: *(const char **)f->p = v; break;
        case K_INT:
            *(long *)f->p = strtol(v, &end, 10);
            if (*v == 0 || *end != 0 || errno) usage_error("invalid value %s for flag -%s", v, f->name);
            break;
        case K_FLOAT:
            *(double *)f->p = strtod(v, &end);
            if (*v == 0 || *end != 0 || errno || !isfinite(*(double *)f->p))
                usage_error("invalid value %s for flag -%s", v, f->name);
            break;
        case K_BOOL:
            if (parse_bool(v, (int *)f->p)) usage_error("invalid boolean value %s for flag -%s", v, f->name);
            break;
        }
    }
}

/* ---- small helpers: errors, clocks, random bytes, SHA-1, base64 ----------------------------- */

static void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsay(fmt, ap);
    va_end(ap);
    exit(1);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double now_s(void) { return (double)now_ns() / 1e9; }

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void random_bytes(unsigned char *p, size_t n) {
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            fail("getrandom: %s", strerror(errno));
        }
        p += r;
        n -= (size_t)r;
    }
}

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

/* SHA-1 (FIPS 180-4), only for the Sec-WebSocket-Accept check: the input is 60 bytes. */
static void sha1(const unsigned char *data, size_t len, unsigned char out[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t blocks = (len + 9 + 63) / 64; /* the message, 0x80, 64-bit length, zero padding */
    for (size_t bi = 0; bi < blocks; bi++) {
        unsigned char blk[64];
        for (size_t j = 0; j < 64; j++) {
            size_t k = bi * 64 + j;
            blk[j] = k < len ? data[k] : (k == len ? 0x80 : 0);
        }
        if (bi == blocks - 1)
            for (int j = 0; j < 8; j++) blk[63 - j] = (unsigned char)(((uint64_t)len * 8) >> (8 * j));
        uint32_t w[80];
        for (int j = 0; j < 16; j++)
            w[j] = (uint32_t)blk[4 * j] << 24 | (uint32_t)blk[4 * j + 1] << 16 | (uint32_t)blk[4 * j + 2] << 8 |
                   (uint32_t)blk[4 * j + 3];
        for (int j = 16; j < 80; j++) w[j] = rol(w[j - 3] ^ w[j - 8] ^ w[j - 14] ^ w[j - 16], 1);
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int j = 0; j < 80; j++) {
            uint32_t f, k;
            if (j < 20) f = (b & c) | (~b & d), k = 0x5A827999;
            else if (j < 40) f = b ^ c ^ d, k = 0x6ED9EBA1;
            else if (j < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
            else f = b ^ c ^ d, k = 0xCA62C1D6;
            uint32_t t = rol(a, 5) + f + e + k + w[j];
            e = d, d = c, c = rol(b, 30), b = a, a = t;
        }
        h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
    }
    for (int i = 0; i < 20; i++) out[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
}

/* Standard base64 with padding; out holds 4 * ceil(n / 3) + 1 bytes. */
static void base64(const unsigned char *in, size_t n, char *out) {
    static const char enc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = enc[(v >> 18) & 63];
        out[o++] = enc[(v >> 12) & 63];
        out[o++] = i + 1 < n ? enc[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? enc[v & 63] : '=';
    }
    out[o] = 0;
}

/* One masked client frame (random mask key, as the Go client) into out (14 + n bytes); returns its length. */
static size_t build_frame(unsigned char *out, int opcode, const unsigned char *payload, size_t n) {
    size_t h = 0;
    out[h++] = (unsigned char)(0x80 | opcode); /* FIN */
    if (n < 126) {
        out[h++] = (unsigned char)(0x80 | n);
    } else if (n < 65536) {
        out[h++] = 0x80 | 126;
        out[h++] = (unsigned char)(n >> 8);
        out[h++] = (unsigned char)n;
    } else {
        out[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) out[h++] = (unsigned char)((uint64_t)n >> (8 * i));
    }
    unsigned char *mask = out + h;
    random_bytes(mask, 4);
    h += 4;
    for (size_t i = 0; i < n; i++) out[h + i] = payload[i] ^ mask[i % 4];
    return h + n;
}

/* ---- the run's state ---------------------------------------------------------------------- */

enum state { DIALING, UPGRADING, OPEN, DONE };
enum phase { PH_DIAL, PH_IDLE, PH_WARMUP, PH_WINDOW };

struct conn {
    int fd;
    enum state state;
    uint32_t events;        /* what epoll watches now */
    double since;           /* when its dial began (DIAL_TIMEOUT) */
    unsigned char *in;      /* bytes read and not yet parsed */
    size_t in_len, in_cap;
    unsigned char *out;     /* bytes not yet written (only when a write was short: the slow path) */
    size_t out_off, out_len, out_cap;
    uint64_t *sent;         /* send times of the frames in flight, oldest first (a ring of -inflight) */
    uint32_t head, count;
    char accept[29];        /* the Sec-WebSocket-Accept the server must send */
};

static struct conn *conns;
static int ep;
static enum phase phase = PH_DIAL;
static int measuring;
static long next_dial, dialing, open_conns;
static struct sockaddr_storage dst, src;
static socklen_t dst_len, src_len;
static char host_port[300], path[2048];
static unsigned char *batch;  /* -inflight copies of the one data frame */
static size_t frame_len, load_buf;
static uint64_t hist[FINE_BUCKETS + COARSE_BUCKETS + 1];
static uint64_t reads, writes; /* system calls in the window: what a message costs */
static uint64_t received, compressed, wrong_length, unexpected, closed_by_server, lost;

static void record(uint64_t ns) {
    uint64_t us = ns / 1000, i;
    if (us < FINE_BUCKETS) i = us;
    else {
        i = FINE_BUCKETS + (us - FINE_BUCKETS) / 100;
        if (i > FINE_BUCKETS + COARSE_BUCKETS) i = FINE_BUCKETS + COARSE_BUCKETS;
    }
    hist[i]++;
}

static double bucket_us(size_t i) {
    return i < FINE_BUCKETS ? (double)i + 0.5 : (double)(FINE_BUCKETS + (i - FINE_BUCKETS) * 100) + 50;
}

static double percentile(double q) {
    uint64_t total = 0, acc = 0;
    size_t n = sizeof hist / sizeof hist[0];
    for (size_t i = 0; i < n; i++) total += hist[i];
    if (total == 0) return 0;
    uint64_t want = (uint64_t)(q * (double)total);
    if (want >= total) want = total - 1;
    for (size_t i = 0; i < n; i++) {
        acc += hist[i];
        if (acc > want) return bucket_us(i);
    }
    return 0;
}

static void watch(struct conn *c, uint32_t events) {
    if (c->events == events) return;
    struct epoll_event ev = {.events = events, .data.u32 = (uint32_t)(c - conns)};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) fail("epoll_ctl: %s", strerror(errno));
    c->events = events;
}

static void grow(unsigned char **buf, size_t *cap, size_t need) {
    if (*cap >= need) return;
    size_t n = *cap ? *cap : 4096;
    while (n < need) n *= 2;
    unsigned char *p = realloc(*buf, n);
    if (p == NULL) fail("out of memory (%zu bytes)", n);
    *buf = p;
    *cap = n;
}

/* ---- ending a connection -------------------------------------------------------------------- */

enum how { BY_SERVER, LOST, BY_US };

static void end_conn(struct conn *c, enum how how, const char *why) {
    if (c->state == DIALING || c->state == UPGRADING)
        fail("connection %ld: %s before the upgrade completed", (long)(c - conns), why);
    close(c->fd); /* also takes it out of epoll */
    c->state = DONE;
    open_conns--;
    if (how == BY_SERVER) closed_by_server++;
    else if (how == LOST) lost++;
    free(c->in), free(c->out), free(c->sent);
    c->in = c->out = NULL;
    c->sent = NULL;
}

/* ---- writing ---------------------------------------------------------------------------------- */

static void queue(struct conn *c, const unsigned char *p, size_t n) {
    if (c->out_off == c->out_len) c->out_off = c->out_len = 0;
    grow(&c->out, &c->out_cap, c->out_len + n);
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

/* Write what is queued; watch EPOLLOUT while some is left. Returns -1 when the connection ended. */
static int flush(struct conn *c) {
    while (c->out_off < c->out_len) {
        ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        writes += measuring;
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            end_conn(c, LOST, strerror(errno));
            return -1;
        }
        c->out_off += (size_t)w;
    }
    watch(c, c->out_off < c->out_len ? EPOLLIN | EPOLLOUT : EPOLLIN);
    return 0;
}

/* Send n data frames in ONE write straight from the prebuilt batch (the fast path); what a short
 * write leaves, or anything already queued before them, goes through the queue. */
static int send_frames(struct conn *c, uint32_t n) {
    size_t total = (size_t)n * frame_len;
    if (c->out_off == c->out_len) {
        ssize_t w = write(c->fd, batch, total);
        writes += measuring;
        if (w == (ssize_t)total) return 0;
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            end_conn(c, LOST, strerror(errno));
            return -1;
        }
        if (w < 0) w = 0;
        queue(c, batch + w, total - (size_t)w);
    } else {
        queue(c, batch, total);
    }
    return flush(c);
}

static void push_sent(struct conn *c, uint32_t n, uint64_t t) {
    for (uint32_t i = 0; i < n; i++) {
        c->sent[(c->head + c->count) % (uint32_t)opt.inflight] = t;
        c->count++;
    }
}

/* ---- dialling and the upgrade ----------------------------------------------------------------- */

static void send_upgrade(struct conn *c) {
    unsigned char key[16], digest[20];
    char key64[25], req[2600], joined[64];
    random_bytes(key, sizeof key);
    base64(key, sizeof key, key64);
    snprintf(joined, sizeof joined, "%s%s", key64, WS_GUID);
    sha1((const unsigned char *)joined, strlen(joined), digest);
    base64(digest, sizeof digest, c->accept);
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     path, host_port, key64);
    c->state = UPGRADING;
    queue(c, (const unsigned char *)req, (size_t)n);
    flush(c);
}

static void start_dial(struct conn *c) {
    int fd = socket(dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) fail("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* as Go's default */
    if (src_len) {
#ifdef IP_BIND_ADDRESS_NO_PORT
        /* the port is chosen at connect(), per destination: many more than 28k connections per source */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
        if (bind(fd, (struct sockaddr *)&src, src_len) < 0) fail("bind %s: %s", opt.src, strerror(errno));
    }
    c->fd = fd;
    c->state = DIALING;
    c->since = now_s();
    c->events = EPOLLOUT;
    struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)(c - conns)};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) fail("epoll_ctl: %s", strerror(errno));
    dialing++;
    if (connect(fd, (struct sockaddr *)&dst, dst_len) == 0) send_upgrade(c);
    else if (errno != EINPROGRESS) fail("connect %s: %s", host_port, strerror(errno));
}

static void dial_more(void) {
    while (dialing < opt.dial && next_dial < opt.conns) start_dial(&conns[next_dial++]);
}

/* The 101 is complete in c->in: check it, keep what follows it. Returns 0, or 1 while incomplete. */
static int parse_upgrade(struct conn *c) {
    unsigned char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (end == NULL) {
        if (c->in_len >= MAX_HEAD) fail("connection %ld: upgrade response over %d bytes", (long)(c - conns), MAX_HEAD);
        return 1;
    }
    size_t head = (size_t)(end - c->in) + 4;
    char *text = (char *)c->in, *eol = memmem(text, head, "\r\n", 2);
    if (head < 12 || memcmp(text, "HTTP/1.1 101", 12) != 0)
        fail("upgrade refused: \"%.*s\"", (int)(eol - text), text);
    int accepted = 0;
    for (char *line = eol + 2; line < text + head - 2; line = eol + 2) {
        eol = memmem(line, (size_t)(text + head - line), "\r\n", 2);
        if ((size_t)(eol - line) > 21 && strncasecmp(line, "sec-websocket-accept:", 21) == 0) {
            char *v = line + 21, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            accepted = ve - v == 28 && memcmp(v, c->accept, 28) == 0;
        }
    }
    if (!accepted) fail("connection %ld: Sec-WebSocket-Accept missing or wrong", (long)(c - conns));
    c->in_len -= head;
    memmove(c->in, c->in + head, c->in_len);
    c->state = OPEN;
    dialing--;
    open_conns++;
    if (!opt.idle) {
        grow(&c->in, &c->in_cap, load_buf);
        c->sent = calloc((size_t)opt.inflight, sizeof *c->sent);
        if (c->sent == NULL) fail("out of memory");
    }
    return 0;
}

/* ---- reading: one read, every complete frame, one write --------------------------------------- */

static void control_frame(struct conn *c, int opcode, const unsigned char *payload, size_t n, int masked) {
    unsigned char plain[125], frame[14 + 125];
    for (size_t i = 0; i < n; i++) plain[i] = masked ? payload[4 + i] ^ payload[i % 4] : payload[i];
    queue(c, frame, build_frame(frame, opcode, plain, n));
}

static void on_readable(struct conn *c) {
    if (c->in_cap - c->in_len < 512) grow(&c->in, &c->in_cap, c->in_len + 4096);
    ssize_t r = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
    reads += measuring;
    if (r == 0) {
        end_conn(c, LOST, "connection closed");
        return;
    }
    if (r < 0) {
        if (errno != EAGAIN && errno != EINTR) end_conn(c, LOST, strerror(errno));
        return;
    }
    c->in_len += (size_t)r;
    if (c->state == UPGRADING) {
        if (parse_upgrade(c)) return;
        dial_more();
    }
    unsigned char *b = c->in;
    size_t pos = 0, avail = c->in_len;
    uint32_t data = 0;
    int close_seen = 0, controls = 0;
    while (avail - pos >= 2) {
        int b0 = b[pos], b1 = b[pos + 1], masked = b1 & 0x80;
        uint64_t n = b1 & 0x7f;
        size_t h = n == 126 ? 4 : n == 127 ? 10 : 2;
        if (avail - pos < h + (masked ? 4 : 0)) break;
        if (n == 126) n = (uint64_t)b[pos + 2] << 8 | b[pos + 3];
        else if (n == 127)
            for (int i = 0; i < 8; i++) n = n << 8 | b[pos + 2 + i];
        if (masked) h += 4; /* servers must not mask; parsed anyway */
        if (n > MAX_FRAME) {
            end_conn(c, LOST, "frame too long");
            return;
        }
        if (avail - pos - h < n) { /* partial: make room for the whole frame, wait for the next read */
            if (pos + h + n > c->in_cap) {
                memmove(b, b + pos, avail - pos);
                c->in_len = avail -= pos;
                pos = 0;
                grow(&c->in, &c->in_cap, h + n);
                b = c->in;
            }
            break;
        }
        int op = b0 & 0x0f;
        if (op == 1 || op == 2) {
            data++;
            if (b0 & 0x40) compressed++;
            else if (n != (uint64_t)opt.size) wrong_length++;
        } else if (op == 9 && n <= 125) { /* ping: pong with its payload */
            control_frame(c, 10, b + pos + h - (masked ? 4 : 0), (size_t)n, masked);
            controls = 1;
        } else if (op == 8) { /* close: answer it with its status code, then the connection ends */
            control_frame(c, 8, b + pos + h - (masked ? 4 : 0), n >= 2 ? 2 : 0, masked);
            close_seen = 1;
            pos += h + (size_t)n;
            break;
        }
        pos += h + (size_t)n;
    }
    c->in_len = avail - pos;
    if (pos && c->in_len) memmove(b, b + pos, c->in_len);

    uint32_t echoed = 0;
    if (data) {
        uint64_t now = now_ns();
        for (; echoed < data && c->count > 0; echoed++) {
            if (measuring) record(now - c->sent[c->head]);
            c->head = (c->head + 1) % (uint32_t)opt.inflight;
            c->count--;
        }
        unexpected += data - echoed; /* data frames that echo nothing we sent: not answered */
        if (measuring) received += echoed;
        if (echoed && (phase == PH_WARMUP || phase == PH_WINDOW) && !close_seen) {
            push_sent(c, echoed, now);
            if (send_frames(c, echoed) < 0) return;
            controls = 0; /* the pongs queued before went out with them */
        }
    }
    if (close_seen) {
        flush(c);
        if (c->state != DONE) end_conn(c, BY_SERVER, "closed");
    } else if (controls) {
        flush(c);
    }
}

/* ---- the run ---------------------------------------------------------------------------------- */

static void on_deadline(int sig) {
    (void)sig;
    static const char msg[] = "loadclient: deadline reached\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    _exit(3);
}

static void parse_url(void) {
    const char *u = opt.url;
    if (strncmp(u, "ws://", 5) != 0) usage_error("-url must be ws://host:port/path (the C client has no wss)");
    u += 5;
    size_t hl = strcspn(u, "/?#");
    if (hl == 0 || hl >= sizeof host_port) usage_error("-url must be ws://host:port/path");
    memcpy(host_port, u, hl);
    host_port[hl] = 0;
    size_t pl = strcspn(u + hl, "#");
    if (pl == 0) snprintf(path, sizeof path, "/");
    else if (pl >= sizeof path - 1) usage_error("-url path too long");
    else snprintf(path, sizeof path, "%s%.*s", u[hl] == '?' ? "/" : "", (int)pl, u + hl);

    char host[300], port[16] = "80";
    snprintf(host, sizeof host, "%s", host_port);
    char *colon = strrchr(host, ':');
    if (host[0] == '[') { /* [v6]:port */
        char *rb = strchr(host, ']');
        if (rb == NULL) usage_error("-url: bad IPv6 host");
        if (rb[1] == ':') snprintf(port, sizeof port, "%s", rb + 2);
        *rb = 0;
        memmove(host, host + 1, strlen(host));
    } else if (colon) {
        snprintf(port, sizeof port, "%s", colon + 1);
        *colon = 0;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int e = getaddrinfo(host, port, &hints, &res);
    if (e) fail("%s: %s", host_port, gai_strerror(e));
    memcpy(&dst, res->ai_addr, res->ai_addrlen);
    dst_len = res->ai_addrlen;
    freeaddrinfo(res);
}

static void parse_src(void) {
    if (!*opt.src) return;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&src;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&src;
    if (inet_pton(AF_INET, opt.src, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        src_len = sizeof *s4;
    } else if (inet_pton(AF_INET6, opt.src, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        src_len = sizeof *s6;
    } else {
        usage_error("-src must be an IP address");
    }
}

static void print_line(const char *s) {
    fputs(s, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    if (opt.deflate)
        usage_error("-deflate: the C client does not do permessage-deflate; use the Go client "
                    "(benchmarks/go/loadclient) for that workload");
    if (opt.conns < 1 || opt.inflight < 0 || opt.size < 0 || opt.dial < 1)
        usage_error("conns >= 1, inflight >= 0, size >= 0, dial >= 1");
    if (opt.size > MAX_SIZE || opt.inflight > MAX_INFLIGHT || opt.conns > 1000000)
        usage_error("size <= %d, inflight <= %d, conns <= 1000000", MAX_SIZE, MAX_INFLIGHT);
    if (!opt.idle && opt.inflight < 1) opt.inflight = 1;
    parse_src();

    struct sigaction sa = {.sa_handler = on_deadline};
    sigaction(SIGALRM, &sa, NULL);
    double dl = opt.deadline > 1e-6 ? opt.deadline : 1e-6;
    struct itimerval it = {.it_value = {.tv_sec = (time_t)dl, .tv_usec = (suseconds_t)((dl - floor(dl)) * 1e6)}};
    if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0) it.it_value.tv_usec = 1;
    setitimer(ITIMER_REAL, &it, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl; /* as the Go runtime does: as many descriptors as the hard limit allows */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    parse_url();

    /* the data frame, built once, and -inflight copies of it: a batch of n is its first n frames */
    unsigned char *payload = malloc((size_t)opt.size + 1), *one = malloc((size_t)opt.size + 14);
    if (payload == NULL || one == NULL) fail("out of memory");
    memset(payload, 'x', (size_t)opt.size);
    if (opt.binary) random_bytes(payload, (size_t)opt.size);
    frame_len = build_frame(one, opt.binary ? 2 : 1, payload, (size_t)opt.size);
    size_t copies = opt.inflight > 0 ? (size_t)opt.inflight : 1;
    batch = malloc(copies * frame_len);
    if (batch == NULL) fail("out of memory");
    for (size_t i = 0; i < copies; i++) memcpy(batch + i * frame_len, one, frame_len);
    load_buf = 2 * copies * ((size_t)opt.size + 14); /* as the Go client's reader */
    if (load_buf < 16384) load_buf = 16384;

    conns = calloc((size_t)opt.conns, sizeof *conns);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (conns == NULL || ep < 0) fail("setup: %s", strerror(errno));

    double t0 = now_s(), last_check = t0, phase_end = 0, t_start = 0, t_end = 0, c0 = 0, c1 = 0;
    int idle_done = 0;
    dial_more();
    struct epoll_event evs[1024]; /* at 1,000 x 1 a turn finds hundreds ready */
    for (;;) {
        double now = now_s();
        int timeout = 250; /* dialling: the dial timeout is checked this often */
        if (phase != PH_DIAL) timeout = (int)ceil((phase_end - now) * 1000);
        if (timeout < 0) timeout = 0;
        if (timeout > 1000) timeout = 1000;
        int n = epoll_wait(ep, evs, 1024, timeout);
        if (n < 0 && errno != EINTR) fail("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            uint32_t k = evs[i].data.u32;
            if (k == STDIN_TAG) { /* -idle: a line or EOF on stdin releases the connections */
                char line[256];
                ssize_t r = read(0, line, sizeof line);
                if (r <= 0 || memchr(line, '\n', (size_t)r)) idle_done = 1;
                continue;
            }
            struct conn *c = &conns[k];
            if (c->state == DONE) continue; /* ended earlier in this batch */
            if (c->state == DIALING) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err) fail("connect %s: %s", host_port, strerror(err));
                send_upgrade(c);
                continue;
            }
            if ((evs[i].events & EPOLLOUT) && flush(c) < 0) continue;
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
        }
        now = now_s();
        if (phase == PH_DIAL) {
            if (open_conns + dialing == 0 && next_dial >= opt.conns) fail("every connection was closed while dialling");
            if (next_dial >= opt.conns && dialing == 0) {
                printf("connected %ld %.3f\n", opt.conns, now - t0);
                fflush(stdout);
                if (opt.idle) {
                    print_line("ready");
                    phase = PH_IDLE;
                    phase_end = now + opt.hold;
                    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = STDIN_TAG};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev) < 0) { /* a file or /dev/null: read it now */
                        char line[256];
                        ssize_t r;
                        while ((r = read(0, line, sizeof line)) > 0 && !memchr(line, '\n', (size_t)r)) {}
                        idle_done = 1;
                    }
                } else { /* the load: -inflight frames on every connection, one write each */
                    phase = PH_WARMUP;
                    phase_end = now + opt.warmup;
                    uint64_t t = now_ns();
                    for (long i = 0; i < opt.conns; i++) {
                        struct conn *c = &conns[i];
                        if (c->state != OPEN) continue;
                        push_sent(c, (uint32_t)opt.inflight, t);
                        send_frames(c, (uint32_t)opt.inflight);
                    }
                }
            } else if (now - last_check >= 0.25) {
                last_check = now;
                for (long i = 0; i < next_dial; i++)
                    if ((conns[i].state == DIALING || conns[i].state == UPGRADING) && now - conns[i].since > DIAL_TIMEOUT)
                        fail("connection %ld: not upgraded within %.0f s", i, DIAL_TIMEOUT);
            }
        } else if (phase == PH_IDLE) {
            if (idle_done || now >= phase_end || open_conns == 0) break;
        } else if (phase == PH_WARMUP && (now >= phase_end || open_conns == 0)) {
            c0 = cpu_seconds();
            t_start = now_s();
            measuring = 1;
            print_line("start");
            phase = PH_WINDOW;
            phase_end = t_start + opt.duration;
        }
        if (phase == PH_WINDOW && (now_s() >= phase_end || open_conns == 0)) {
            measuring = 0;
            t_end = now_s();
            c1 = cpu_seconds();
            print_line("end");
            break;
        }
    }

    /* hang up: a close frame (1000) where nothing is half written, then the socket */
    static const unsigned char code[2] = {0x03, 0xe8};
    unsigned char bye[20];
    size_t bye_len = build_frame(bye, 8, code, 2);
    for (long i = 0; i < opt.conns; i++) {
        struct conn *c = &conns[i];
        if (c->state != OPEN) continue;
        if (c->out_off == c->out_len) {
            ssize_t w = write(c->fd, bye, bye_len);
            (void)w;
        }
        end_conn(c, BY_US, "done");
    }
    if (opt.idle) return 0;

    double secs = t_end - t_start;
    double rate = secs > 0 ? (double)received / secs : 0, cpu = secs > 0 ? (c1 - c0) / secs : 0;
    printf("{\"binary\":%s,\"client\":\"c\",\"closed\":%llu,\"compressed\":%llu,\"conns\":%ld,\"cpu\":%.6f,"
           "\"deflate\":false,\"frame_bytes\":%zu,\"inflight\":%ld,\"lost\":%llu,\"msgs\":%llu,\"p50_us\":%.1f,"
           "\"p99_us\":%.1f,\"rate\":%.3f,\"reads\":%llu,\"seconds\":%.6f,\"size\":%ld,\"unexpected\":%llu,\"wrong_length\":%llu,\"writes\":%llu}\n",
           opt.binary ? "true" : "false", (unsigned long long)closed_by_server, (unsigned long long)compressed,
           opt.conns, cpu, frame_len, opt.inflight, (unsigned long long)lost, (unsigned long long)received,
           percentile(0.50), percentile(0.99), rate, (unsigned long long)reads, secs, opt.size, (unsigned long long)unexpected,
           (unsigned long long)wrong_length, (unsigned long long)writes);
    fflush(stdout);
    return 0;
}
