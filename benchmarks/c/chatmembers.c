/* chatmembers: the members of benchmarks/chat_fanout.py's throughput mode, in C.
 *
 * The same role, stdin/stdout protocol and JSON as members_main in chat_fanout.py
 * (the Python members), at a fraction of their CPU: on a 2-core machine the members
 * share the cores with the chat nodes, so every microsecond spent here is taken from
 * the nodes under test.
 *
 *   chatmembers URL N ROOM SENDERS [-deadline SECONDS] [-batch MICROSECONDS] [-v]
 *
 * N WebSocket clients connect to URL (ws://host:port/path; at most CONNECT_CONCURRENCY
 * handshakes and joins in flight, all of them joined within SETUP_TIMEOUT or exit 1),
 * each sends {"type": "join", "nick": "u<i>", "room": ROOM}; once every one got its
 * "joined" reply, "ready" is printed. Then, on stdin:
 *
 *   step INDEX RATE SECONDS GRACE
 *       prints "go"; the first SENDERS members (in the order they joined) say
 *       lines = max(1, round(RATE * SECONDS)) lines in turn, line k due at t0 + k / RATE,
 *       each {"type": "say", "text": "L<INDEX 2 digits><k 6 digits>"} with its send time
 *       kept; prints "sent"; waits up to GRACE seconds for every member to have every
 *       line (on a timeout: until no line of the step arrived for QUIET seconds, at most
 *       DRAIN_LIMIT), then prints one JSON line:
 *       lines, complete, sent_for, span, p50, p99, last_p50, last_p99, lost.
 *   quit (or an empty line, or end of input)
 *       closes every connection and exits 0.
 *
 * Latency of a delivery = the moment a member's read returned the line minus the moment
 * the line was sent (CLOCK_MONOTONIC: Python's time.monotonic on Linux), counted in a
 * 1 ms histogram (HIST_MS buckets, later in the last); a line is complete when all N
 * members have it, and its "last" latency is that of its last member.
 *
 * Handshake: HTTP/1.1 upgrade with a random Sec-WebSocket-Key; the reply's status line
 * must say 101. The Sec-WebSocket-Accept hash is NOT checked (the server is ours, on
 * loopback; the check would cost SHA-1 code and nothing else). Server frames are
 * unmasked (7-bit, 16-bit or 64-bit lengths, partial frames kept per connection);
 * client frames are masked with a random key. Ping -> pong with the same payload.
 *
 * One thread, non-blocking sockets, level-triggered epoll; per ready connection one
 * read of what is there. Every wait has a timeout; -deadline (default 3600 s) bounds
 * the whole run: after it the program exits 2 whatever it was doing.
 *
 * -batch (default 1000 us): after a wait that returned events, pause that long before
 * the next wait, so that one wait collects the frames of many connections. Without it
 * this process is so quick that it sleeps in epoll_wait between frames: ~1.1 events per
 * wait, and every frame costs a wake-up here and in the node that sent it (measured at
 * 5,000 members, 16 lines/s: 4.4 us of CPU per frame here with -batch 0, 1.8 us with
 * 1000, ~150 events per wait; the node's own CPU per line lower too). The price is a
 * read up to 1 ms later than it could be: the histogram's resolution, far below the
 * 500 ms bound. -v prints waits, events and reads on stderr at the end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The same figures as chat_fanout.py's. */
#define SETUP_TIMEOUT 180.0    /* seconds to connect and join N members */
#define CONNECT_CONCURRENCY 200 /* handshakes in flight: stays under the listen backlog (1024) */
#define HIST_MS 30000          /* 1 ms latency buckets; later is counted in the last one */
#define QUIET 0.3              /* seconds without a line of a failed step before the step ends */
#define DRAIN_LIMIT 15.0       /* seconds at most to wait for that */

#define READ_CHUNK (256 * 1024) /* one read per ready connection: what is there, up to this */
#define MAX_FRAME (64u << 20)  /* a larger server frame is a broken stream: fatal */
#define STDIN_ID UINT64_MAX    /* epoll tag of stdin; connections are tagged with their index */

enum state { CONNECTING, UPGRADING, JOINING, JOINED, CLOSED };

struct conn {
    int fd;
    enum state state;
    unsigned char *in; /* bytes read and not yet parsed (a partial frame, or the HTTP reply) */
    size_t in_len, in_cap;
    unsigned char *out; /* bytes the socket did not take yet */
    size_t out_len, out_cap;
    int want_out; /* EPOLLOUT is armed */
};

/* The current step; lines == 0 between steps (a late line is then ignored). */
struct step {
    char tag[2];
    long lines;
    int *count;    /* members that have line k */
    double *last;  /* when its last member got it (0: not complete) */
    double *sent;  /* when it was sent */
    long complete; /* lines at every member */
    double seen;   /* when a line of this step last arrived anywhere */
    long hist[HIST_MS + 1];
};

static struct conn *conns;
static int n_members;
static int *joined_order; /* indexes of the members, in the order they joined */
static int n_joined;
static int epfd;
static double deadline;
static long lost; /* connections lost after joining */
static struct step step;
static unsigned char chunk[READ_CHUNK];
static char stdin_buf[4096];
static size_t stdin_len;
static int stdin_eof;
static long batch_us = 1000; /* -batch: pause after a wait that returned events (see the top) */
static int verbose;    /* -v: the counters below on stderr at the end */
static long n_waits, n_events, n_reads;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "chatmembers: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(code);
}

static void say_line(const char *line) { /* one line on stdout, flushed: the driver waits on it */
    fputs(line, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

static void *grow(void *p, size_t *cap, size_t need) {
    if (need <= *cap)
        return p;
    size_t c = *cap ? *cap : 512;
    while (c < need)
        c *= 2;
    p = realloc(p, c);
    if (!p)
        die(1, "out of memory");
    *cap = c;
    return p;
}

/* ---- writing: a masked client frame, queued when the socket does not take it at once ---- */

static void close_conn(int i);

static void arm_out(int i, int on) {
    struct conn *c = &conns[i];
    if (c->want_out == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.u64 = (uint64_t)i};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die(1, "epoll_ctl: %s", strerror(errno));
    c->want_out = on;
}

static void flush_out(int i) {
    struct conn *c = &conns[i];
    while (c->out_len) {
        ssize_t w = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            close_conn(i);
            return;
        }
        memmove(c->out, c->out + w, c->out_len - (size_t)w);
        c->out_len -= (size_t)w;
    }
    arm_out(i, c->out_len > 0);
}

static void send_bytes(int i, const void *data, size_t n) {
    struct conn *c = &conns[i];
    if (c->state == CLOSED)
        return;
    c->out = grow(c->out, &c->out_cap, c->out_len + n);
    memcpy(c->out + c->out_len, data, n);
    c->out_len += n;
    if (!c->want_out) /* else EPOLLOUT will flush it, in order */
        flush_out(i);
}

static void send_frame(int i, int opcode, const void *payload, size_t n) {
    unsigned char f[14 + 4096];
    size_t h = 0;
    if (n > 4096)
        die(1, "frame of %zu bytes to send: too long", n);
    f[h++] = (unsigned char)(0x80 | opcode); /* FIN */
    if (n < 126) {
        f[h++] = (unsigned char)(0x80 | n); /* MASK bit */
    } else {
        f[h++] = 0x80 | 126;
        f[h++] = (unsigned char)(n >> 8);
        f[h++] = (unsigned char)n;
    }
    unsigned char *mask = f + h;
    if (getrandom(mask, 4, 0) != 4)
        die(1, "getrandom: %s", strerror(errno));
    h += 4;
    const unsigned char *p = payload;
    for (size_t k = 0; k < n; k++)
        f[h + k] = p[k] ^ mask[k & 3];
    send_bytes(i, f, h + n);
}

static void send_text(int i, const char *text) { send_frame(i, 0x1, text, strlen(text)); }

/* ---- reading: the HTTP reply, then unmasked server frames ---- */

static void on_text(int i, const unsigned char *p, size_t n, double t) {
    static const char marker[] = "\"text\":\"L";
    const unsigned char *m = memmem(p, n, marker, sizeof marker - 1);
    if (m) {
        size_t at = (size_t)(m - p) + sizeof marker - 1; /* the 2 + 6 digits after "L" */
        if (step.lines == 0 || at + 8 > n || m[9] != (unsigned char)step.tag[0] ||
            m[10] != (unsigned char)step.tag[1])
            return; /* between steps, or a late line of an earlier step */
        long k = 0;
        for (size_t d = at + 2; d < at + 8; d++) {
            if (p[d] < '0' || p[d] > '9')
                return;
            k = k * 10 + (p[d] - '0');
        }
        if (k >= step.lines)
            return;
        step.seen = t;
        double ms = (t - step.sent[k]) * 1e3;
        step.hist[ms < HIST_MS ? (long)ms : HIST_MS] += 1;
        if (++step.count[k] == n_members) {
            step.last[k] = t;
            step.complete += 1;
        }
    } else if (conns[i].state == JOINING && memmem(p, n, "\"type\":\"joined\"", 15)) {
        conns[i].state = JOINED;
        joined_order[n_joined++] = i;
    }
}

/* Parse the complete frames of buf[0:len]; returns how many bytes they used. */
static size_t parse_frames(int i, const unsigned char *buf, size_t len, double t) {
    size_t pos = 0;
    while (len - pos >= 2 && conns[i].state != CLOSED) {
        int opcode = buf[pos] & 0x0F;
        uint64_t n = buf[pos + 1] & 0x7F;
        size_t start = pos + 2;
        if (n == 126) {
            if (len - pos < 4)
                break;
            n = ((uint64_t)buf[pos + 2] << 8) | buf[pos + 3];
            start = pos + 4;
        } else if (n == 127) {
            if (len - pos < 10)
                break;
            n = 0;
            for (int b = 0; b < 8; b++)
                n = (n << 8) | buf[pos + 2 + b];
            start = pos + 10;
        }
        if (n > MAX_FRAME)
            die(1, "member %d: a server frame of %llu bytes", i, (unsigned long long)n);
        if (len - start < n)
            break;
        if (opcode == 0x1)
            on_text(i, buf + start, (size_t)n, t);
        else if (opcode == 0x9)
            send_frame(i, 0xA, buf + start, (size_t)n); /* keepalive ping: pong */
        pos = start + (size_t)n;
    }
    return pos;
}

static void on_upgrade_reply(int i, const char *room) {
    struct conn *c = &conns[i];
    unsigned char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!end)
        return; /* not all of it yet */
    unsigned char *eol = memmem(c->in, c->in_len, "\r\n", 2);
    if (!memmem(c->in, (size_t)(eol - c->in), " 101 ", 5))
        die(1, "member %d: handshake refused: %.*s", i, (int)(eol - c->in), c->in);
    size_t used = (size_t)(end - c->in) + 4;
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    c->state = JOINING;
    char join[512];
    snprintf(join, sizeof join, "{\"type\": \"join\", \"nick\": \"u%d\", \"room\": \"%s\"}", i, room);
    send_text(i, join);
}

static void on_readable(int i, const char *room) {
    struct conn *c = &conns[i];
    ssize_t r = recv(c->fd, chunk, sizeof chunk, 0);
    n_reads += 1;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (r <= 0) {
        close_conn(i);
        return;
    }
    double t = now(); /* the arrival time of every line in this read */
    if (c->in_len == 0 && c->state != UPGRADING) { /* the common case: parse the chunk in place */
        size_t used = parse_frames(i, chunk, (size_t)r, t);
        if (c->state != CLOSED && used < (size_t)r) {
            c->in = grow(c->in, &c->in_cap, (size_t)r - used);
            memcpy(c->in, chunk + used, (size_t)r - used);
            c->in_len = (size_t)r - used;
        }
        return;
    }
    c->in = grow(c->in, &c->in_cap, c->in_len + (size_t)r);
    memcpy(c->in + c->in_len, chunk, (size_t)r);
    c->in_len += (size_t)r;
    if (c->state == UPGRADING) {
        on_upgrade_reply(i, room);
        if (c->state == UPGRADING)
            return;
    }
    size_t used = parse_frames(i, c->in, c->in_len, t);
    if (c->state != CLOSED) {
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
    }
}

static void close_conn(int i) {
    struct conn *c = &conns[i];
    if (c->state == CLOSED)
        return;
    if (c->state != JOINED)
        die(1, "member %d: connection lost before joining", i);
    lost += 1;
    close(c->fd); /* also leaves the epoll set */
    c->state = CLOSED;
    c->in_len = c->out_len = 0;
}

/* ---- connecting ---- */

static struct sockaddr_storage addr;
static socklen_t addr_len;
static char host_port[256], path[256];

static void parse_url(const char *url) {
    const char *p = strstr(url, "//");
    if (!p)
        die(1, "bad URL %s (ws://host:port/path)", url);
    p += 2;
    const char *slash = strchr(p, '/');
    size_t hp = slash ? (size_t)(slash - p) : strlen(p);
    if (hp == 0 || hp >= sizeof host_port)
        die(1, "bad URL %s", url);
    memcpy(host_port, p, hp);
    host_port[hp] = 0;
    snprintf(path, sizeof path, "%s", slash ? slash : "/");
    char host[256];
    snprintf(host, sizeof host, "%s", host_port);
    char *colon = strrchr(host, ':');
    if (!colon)
        die(1, "bad URL %s: no port", url);
    *colon = 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int e = getaddrinfo(host, colon + 1, &hints, &res);
    if (e)
        die(1, "%s: %s", host, gai_strerror(e));
    memcpy(&addr, res->ai_addr, res->ai_addrlen);
    addr_len = res->ai_addrlen;
    freeaddrinfo(res);
}

static void start_connect(int i) {
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die(1, "socket: %s (raise the fd limit?)", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* as asyncio's transports */
    if (connect(fd, (struct sockaddr *)&addr, addr_len) < 0 && errno != EINPROGRESS)
        die(1, "member %d: connect: %s", i, strerror(errno));
    conns[i].fd = fd;
    conns[i].state = CONNECTING;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u64 = (uint64_t)i};
    conns[i].want_out = 1;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        die(1, "epoll_ctl: %s", strerror(errno));
}

static void on_connected(int i) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(conns[i].fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err)
        die(1, "member %d: connect: %s", i, strerror(err));
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char raw[18] = {0}; /* 16 random bytes, base64 in 24 characters (two '=') */
    if (getrandom(raw, 16, 0) != 16)
        die(1, "getrandom: %s", strerror(errno));
    char key[25];
    for (int g = 0; g < 6; g++) {
        uint32_t v = (uint32_t)raw[3 * g] << 16 | (uint32_t)raw[3 * g + 1] << 8 | raw[3 * g + 2];
        for (int s = 0; s < 4; s++)
            key[4 * g + s] = b64[(v >> (18 - 6 * s)) & 63];
    }
    key[22] = key[23] = '=';
    key[24] = 0;
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     path, host_port, key);
    conns[i].state = UPGRADING;
    arm_out(i, 0);
    send_bytes(i, req, (size_t)n);
}

/* ---- the event loop ---- */

static void read_stdin(void) {
    if (stdin_len == sizeof stdin_buf)
        die(1, "a command line longer than %zu bytes", sizeof stdin_buf);
    ssize_t r = read(0, stdin_buf + stdin_len, sizeof stdin_buf - stdin_len);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (r <= 0) {
        stdin_eof = 1;
        epoll_ctl(epfd, EPOLL_CTL_DEL, 0, NULL);
        return;
    }
    stdin_len += (size_t)r;
}

/* Wait at most `timeout` seconds for events and handle them. */
static void poll_once(double timeout, const char *room) {
    static struct epoll_event evs[1024];
    double t = now();
    if (t >= deadline)
        die(2, "the deadline passed: exiting");
    if (timeout > deadline - t)
        timeout = deadline - t;
    int ms = timeout <= 0 ? 0 : (int)ceil(timeout * 1e3);
    int k = epoll_wait(epfd, evs, 1024, ms);
    if (k < 0 && errno != EINTR)
        die(1, "epoll_wait: %s", strerror(errno));
    n_waits += 1;
    n_events += k > 0 ? k : 0;
    for (int e = 0; e < k; e++) {
        uint64_t id = evs[e].data.u64;
        if (id == STDIN_ID) {
            read_stdin();
            continue;
        }
        int i = (int)id;
        struct conn *c = &conns[i];
        if (c->state == CLOSED)
            continue;
        if (c->state == CONNECTING) {
            on_connected(i);
            continue;
        }
        if (evs[e].events & EPOLLOUT)
            flush_out(i);
        if (c->state != CLOSED && (evs[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
            on_readable(i, room);
    }
    if (batch_us > 0 && k > 0 && k < 1024) { /* 1024: more are ready already, no pause */
        double left = t + timeout - now();
        double pause = batch_us * 1e-6 < left ? batch_us * 1e-6 : left;
        if (pause > 0) {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(pause * 1e9)};
            nanosleep(&ts, NULL);
        }
    }
}

/* The next command line from stdin (events handled meanwhile); NULL at end of input. */
static char *next_command(const char *room) {
    static char line[sizeof stdin_buf + 1];
    for (;;) {
        char *nl = memchr(stdin_buf, '\n', stdin_len);
        if (nl) {
            size_t n = (size_t)(nl - stdin_buf);
            memcpy(line, stdin_buf, n);
            line[n] = 0;
            memmove(stdin_buf, nl + 1, stdin_len - n - 1);
            stdin_len -= n + 1;
            return line;
        }
        if (stdin_eof)
            return NULL;
        poll_once(1.0, room);
    }
}

/* ---- a step ---- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (ms, the bucket's middle) of the step's histogram, as _hist_percentile. */
static double hist_percentile(double q) {
    long total = 0, acc = 0;
    for (long ms = 0; ms <= HIST_MS; ms++)
        total += step.hist[ms];
    long want = (long)(total * q);
    if (want > total - 1)
        want = total - 1;
    for (long ms = 0; ms <= HIST_MS; ms++) {
        acc += step.hist[ms];
        if (acc > want)
            return ms + 0.5;
    }
    return INFINITY;
}

/* A float as Python's json.dumps writes it: the shortest text that reads back the same. */
static void json_float(char *out, size_t size, double v) {
    if (isinf(v)) {
        snprintf(out, size, v > 0 ? "Infinity" : "-Infinity");
        return;
    }
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(out, size, "%.*g", digits, v);
        if (strtod(out, NULL) == v)
            break;
    }
    if (!strpbrk(out, ".eni"))
        snprintf(out + strlen(out), size - strlen(out), ".0"); /* 1.0, not 1 */
}

static void run_step(int index, double rate, double seconds, double grace, int senders, const char *room) {
    long lines = lround(nearbyint(rate * seconds)); /* Python's round: half to even */
    if (lines < 1)
        lines = 1;
    memset(&step, 0, sizeof step);
    step.tag[0] = (char)('0' + index / 10 % 10);
    step.tag[1] = (char)('0' + index % 10);
    step.count = calloc((size_t)lines, sizeof *step.count);
    step.last = calloc((size_t)lines, sizeof *step.last);
    step.sent = calloc((size_t)lines, sizeof *step.sent);
    if (!step.count || !step.last || !step.sent)
        die(1, "out of memory for %ld lines", lines);
    long lost_before = lost;
    say_line("go"); /* the driver samples CPU now and at "sent": the offered load's window */
    double t0 = now();
    step.lines = lines;
    for (long k = 0; k < lines;) {
        double due = t0 + (double)k / rate;
        double delay = due - now();
        if (delay > 0) {
            poll_once(delay, room); /* the offered rate's clock: events are handled meanwhile */
            continue;
        }
        step.sent[k] = now();
        char say[64];
        snprintf(say, sizeof say, "{\"type\": \"say\", \"text\": \"L%02d%06ld\"}", index, k);
        send_text(joined_order[k % senders], say);
        k++;
    }
    double sent_for = now() - t0;
    say_line("sent");
    double until = now() + grace;
    while (step.complete < lines && now() < until)
        poll_once(until - now(), room);
    if (step.complete < lines) {
        /* lines still on their way would load the next step: wait until none arrived for
         * QUIET seconds (bounded), so each step starts from an idle chat */
        for (int r = 0; r < (int)(DRAIN_LIMIT / QUIET); r++) {
            if (now() - step.seen > QUIET)
                break;
            double end = now() + QUIET;
            while (now() < end)
                poll_once(end - now(), room);
        }
    }
    step.lines = 0; /* later lines are ignored */
    double *last = malloc((size_t)lines * sizeof *last);
    double finished = step.last[0];
    for (long k = 0; k < lines; k++) {
        last[k] = step.count[k] == n_members ? (step.last[k] - step.sent[k]) * 1e3 : INFINITY;
        if (step.last[k] > finished)
            finished = step.last[k];
    }
    qsort(last, (size_t)lines, sizeof *last, cmp_double);
    long i50 = (long)(lines * 0.50), i99 = (long)(lines * 0.99);
    char p50[32], p99[32], l50[32], l99[32], sent_s[32], span_s[32];
    json_float(sent_s, sizeof sent_s, sent_for);
    json_float(span_s, sizeof span_s, finished - t0);
    json_float(p50, sizeof p50, hist_percentile(0.50));
    json_float(p99, sizeof p99, hist_percentile(0.99));
    json_float(l50, sizeof l50, last[i50 < lines - 1 ? i50 : lines - 1]);
    json_float(l99, sizeof l99, last[i99 < lines - 1 ? i99 : lines - 1]);
    /* span as the Python's: max of the lines' last arrivals (0 for an incomplete one) - t0 */
    printf("{\"lines\": %ld, \"complete\": %ld, \"sent_for\": %s, \"span\": %s, \"p50\": %s, "
           "\"p99\": %s, \"last_p50\": %s, \"last_p99\": %s, \"lost\": %ld}\n",
           lines, step.complete, sent_s, span_s, p50, p99, l50, l99, lost - lost_before);
    fflush(stdout);
    free(last);
    free(step.count);
    free(step.last);
    free(step.sent);
}

int main(int argc, char **argv) {
    double limit = 3600.0;
    const char *pos[4];
    int npos = 0;
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "-deadline") == 0 && a + 1 < argc)
            limit = atof(argv[++a]);
        else if (strcmp(argv[a], "-batch") == 0 && a + 1 < argc)
            batch_us = atol(argv[++a]);
        else if (strcmp(argv[a], "-v") == 0)
            verbose = 1;
        else if (npos < 4)
            pos[npos++] = argv[a];
        else
            npos = 5;
    }
    if (npos != 4 || limit <= 0 || batch_us < 0 || batch_us >= 1000000)
        die(64, "usage: chatmembers URL N ROOM SENDERS [-deadline SECONDS] [-batch MICROSECONDS] [-v]");
    const char *url = pos[0], *room = pos[2];
    n_members = atoi(pos[1]);
    int senders = atoi(pos[3]);
    if (n_members < 1 || senders < 1 || strlen(room) > 200 || strpbrk(room, "\"\\"))
        die(64, "need N >= 1, SENDERS >= 1 and a plain ROOM (no quote, no backslash)");
    if (senders > n_members)
        senders = n_members; /* as members[:senders] */
    deadline = now() + limit;
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl; /* each member is a file descriptor */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    parse_url(url);
    conns = calloc((size_t)n_members, sizeof *conns);
    joined_order = calloc((size_t)n_members, sizeof *joined_order);
    if (!conns || !joined_order)
        die(1, "out of memory");
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die(1, "epoll_create1: %s", strerror(errno));

    /* setup: connect and join, CONNECT_CONCURRENCY in flight; stdin is not read yet */
    double setup_end = now() + SETUP_TIMEOUT;
    int started = 0;
    while (n_joined < n_members) {
        while (started < n_members && started - n_joined < CONNECT_CONCURRENCY)
            start_connect(started++);
        if (now() >= setup_end)
            die(1, "%d of %d members joined within %g s", n_joined, n_members, SETUP_TIMEOUT);
        poll_once(setup_end - now(), room);
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = STDIN_ID};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev) < 0) {
        if (errno != EPERM) /* EPERM: a regular file or /dev/null, which is read at once */
            die(1, "epoll_ctl(stdin): %s", strerror(errno));
        while (!stdin_eof)
            read_stdin();
    }
    say_line("ready");

    char *line;
    while ((line = next_command(room)) != NULL) {
        char cmd[16];
        int index;
        double rate, seconds, grace;
        if (sscanf(line, "%15s", cmd) != 1 || strcmp(cmd, "quit") == 0)
            break; /* an empty line ends it too, as in the Python members */
        if (strcmp(cmd, "step") != 0 ||
            sscanf(line, "%*s %d %lf %lf %lf", &index, &rate, &seconds, &grace) != 4 || rate <= 0 ||
            index < 0 || index > 99)
            die(1, "bad command: %s", line);
        run_step(index, rate, seconds, grace, senders, room);
    }
    for (int i = 0; i < n_members; i++)
        if (conns[i].state != CLOSED)
            close(conns[i].fd);
    if (verbose)
        fprintf(stderr, "chatmembers: %ld waits, %ld events, %ld reads\n", n_waits, n_events, n_reads);
    return 0;
}
