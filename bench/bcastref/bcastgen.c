/* bcastgen.c - the subscribers of the broadcast floor: opens CONNS TCP connections to bcastref,
 * then times the arrival of each broadcast on every one of them.
 *
 *   bcastgen -n CONNS -p PORT [-f PROCS(1)] [-k NSRCIPS(0)] [-s SIZE(32)] [-T TIMEOUT_S(60)]
 *            [-r ROUNDS(1)] [-a ADDR(127.0.0.1)] [-c INFLIGHT(1000)] [-C CONNECT_TIMEOUT_S(600)]
 *            [-R RETRIES(3)] [-M MIN_AVAIL_MB(1024)] [-q]
 *
 * Model: the parent forks PROCS processes; process i opens its share of CONNS (as even as
 * possible), nonblocking, at most INFLIGHT connects in flight, each bound to a source address
 * 127.0.0.2 + (j mod NSRCIPS) with IP_BIND_ADDRESS_NO_PORT (j counts every attempt of every
 * process, so the addresses rotate; the port is chosen per 4-tuple at connect, which lets one
 * box exceed 64k connections to one port). A failed connect is started again at most RETRIES
 * times per connection of the share. One epoll per process, every socket edge-triggered
 * EPOLLIN | EPOLLOUT | EPOLLRDHUP.
 *
 * Output (stdout, one JSON line each, through the parent): "connected" once every process has
 * finished connecting (or CONNECT_TIMEOUT passed, or MemAvailable fell below MIN_AVAIL_MB);
 * then one "round" line per broadcast, ROUNDS in all, then the parent stops the processes
 * (every socket closed with RST: no TIME_WAIT left behind) and exits 0. Progress on stderr.
 *
 * Delivery: a connection's byte stream is cut into SIZE-byte messages (bcast.h). For each one the
 * process reads CLOCK_MONOTONIC after the read(2) that completed it: latency = that - the
 * message's stamp; the message is filed under its seq (1..ROUNDS; anything else counts as
 * "unexpected"). A round is complete when every open connection got its message, or TIMEOUT
 * seconds after its first message arrived anywhere (then "complete":false). Per round (with the
 * connect phase's "connected" and "connect_s" repeated):
 * delivered, p50 / p99 / max latency (log-linear histogram, <= 1.6 % error), last_ms = last
 * arrival - earliest stamp (the first server worker's signal), and the CPU (user, sys) of all
 * processes from the end of the previous round (or of connecting) to the moment each process had
 * its share: the processes sleep in between, so this is the CPU of the delivery.
 *
 * Invariants: the stats are per process in shared memory, written only by their process (the
 * parent only reads, then publishes the closing of a round and the phase); per-connection state
 * is SIZE-independent (16 header bytes and an offset), indexed by fd.
 */
#include "bcast.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAX_PROCS 1024
#define NERRNO 256
#define E_PHASE_TIMEOUT 255 /* still connecting when the connect phase ended */

enum { PH_CONNECT, PH_RUN, PH_STOP };
enum { S_FREE, S_CONNECTING, S_OPEN };

struct round_stats {
    volatile uint64_t delivered, first_ns, last_ns, stamp_min_ns, lat_max_ns;
    volatile int done; /* this process has its share (or the parent closed the round) */
    struct bc_cpu cpu_end;
    uint64_t hist[BC_HBUCKETS];
};

struct proc_state {
    volatile int pid, connect_done;
    volatile uint64_t share, started, connected, failed, retried, closed, unexpected, malformed;
    volatile uint64_t connect_done_ns;
    struct bc_cpu cpu_connected;
    volatile uint64_t errs[NERRNO];
    struct round_stats round[BC_MAX_ROUNDS];
} __attribute__((aligned(64)));

struct control { volatile int phase, closed_round; };

struct conn { uint8_t st; uint16_t off; uint8_t hdr[BC_HDR]; };

static struct control *CTL;
static struct proc_state *P;
static long g_conns;
static int g_port, g_procs = 1, g_nsrc, g_size = 32, g_rounds = 1, g_inflight = 1000, g_retries = 3, g_quiet, g_poll_ms;
static long g_timeout = 60, g_ctimeout = 600, g_min_avail_mb = 1024;
static const char *g_addr = "127.0.0.1";
static struct in_addr g_dst;
static volatile sig_atomic_t g_stop;
static uint64_t g_connected; /* parent: connections at the end of the connect phase */
static double g_connect_s;

static void on_stop(int s) { (void)s; g_stop = 1; }

static long mem_available_mb(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return -1;
    char line[128];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb < 0 ? -1 : kb / 1024;
}

/* ---------------------------------------------------------------- subscriber process */

static int ep, pid_idx;
static struct proc_state *me;
static struct conn *C;
static long maxfd;
static uint64_t inflight, attempts, retry_budget, open_now;
static uint8_t rbuf[65536];

static void count_error(int e) { me->errs[e > 0 && e < NERRNO ? e : 0]++; }

static void connect_failed(int fd, int e)
{
    C[fd].st = S_FREE;
    close(fd);
    inflight--;
    count_error(e);
    if (retry_budget > 0 && __atomic_load_n(&CTL->phase, __ATOMIC_ACQUIRE) == PH_CONNECT) {
        retry_budget--;
        me->retried++;
        me->started--; /* started again by the connect loop */
    } else {
        me->failed++;
    }
}

static void start_connect(void)
{
    uint64_t j = (uint64_t)pid_idx + attempts * (uint64_t)g_procs;
    attempts++;
    me->started++;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) { count_error(e); me->failed++; return; }
        bc_die("bcastgen", "process", pid_idx, "socket", e);
    }
    if (fd >= maxfd) { close(fd); count_error(EMFILE); me->failed++; return; }
    inflight++;
    C[fd].st = S_CONNECTING;
    C[fd].off = 0;
    int one = 1;
    if (g_nsrc > 0) {
        if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) < 0) bc_die("bcastgen", "process", pid_idx, "IP_BIND_ADDRESS_NO_PORT", errno);
        uint32_t src = (127u << 24) + 2u + (uint32_t)(j % (uint64_t)g_nsrc);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(src)};
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { connect_failed(fd, errno); return; }
    }
    struct sockaddr_in da = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port), .sin_addr = g_dst};
    int r = connect(fd, (struct sockaddr *)&da, sizeof da);
    if (r < 0 && errno != EINPROGRESS) { connect_failed(fd, errno); return; }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.fd = fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) { connect_failed(fd, errno); return; }
    if (r == 0) { C[fd].st = S_OPEN; inflight--; me->connected++; open_now++; }
}

/* one complete message in c->hdr, read at `now` */
static void delivered(const struct conn *c, uint64_t now)
{
    struct bc_msg_hdr h;
    memcpy(&h, c->hdr, sizeof h);
    if (h.seq < 1 || h.seq > (uint32_t)g_rounds) { me->unexpected++; return; }
    struct round_stats *r = &me->round[h.seq - 1];
    uint64_t lat = now > h.stamp_ns ? now - h.stamp_ns : 0;
    r->hist[bc_hist_index(lat)]++;
    if (!r->first_ns) r->first_ns = now;
    r->last_ns = now;
    if (!r->stamp_min_ns || h.stamp_ns < r->stamp_min_ns) r->stamp_min_ns = h.stamp_ns;
    if (lat > r->lat_max_ns) r->lat_max_ns = lat;
    r->delivered++;
}

static void closed(int fd)
{
    C[fd].st = S_FREE;
    close(fd);
    me->closed++;
    open_now--;
}

static void on_readable(int fd)
{
    struct conn *c = &C[fd];
    for (;;) {
        ssize_t n = read(fd, rbuf, sizeof rbuf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) { closed(fd); return; }
        uint64_t now = bc_now_ns();
        for (size_t i = 0; i < (size_t)n;) {
            size_t take = (size_t)g_size - c->off;
            if (take > (size_t)n - i) take = (size_t)n - i;
            if (c->off < BC_HDR) {
                size_t h = (size_t)(BC_HDR - c->off);
                memcpy(c->hdr + c->off, rbuf + i, h < take ? h : take);
            }
            c->off = (uint16_t)(c->off + take);
            i += take;
            if (c->off == g_size) { delivered(c, now); c->off = 0; }
        }
        if ((size_t)n < sizeof rbuf) return; /* drained: the next data brings a new edge */
    }
}

static void on_event(int fd, uint32_t events)
{
    struct conn *c = &C[fd];
    if (c->st == S_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        int err = 0;
        socklen_t l = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0) err = errno;
        if (!err && (events & (EPOLLERR | EPOLLHUP))) err = ECONNRESET;
        if (err) { connect_failed(fd, err); return; }
        c->st = S_OPEN;
        inflight--;
        me->connected++;
        open_now++;
    }
    if (c->st == S_OPEN && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) on_readable(fd);
}

static void mark_round_done(int k)
{
    struct round_stats *r = &me->round[k];
    int e = bc_cpu_self(&r->cpu_end);
    if (e < 0) bc_die("bcastgen", "process", pid_idx, "getrusage", -e);
    __atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
}

static void proc_main(int id)
{
    pid_idx = id;
    me = &P[id];
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0) bc_die("bcastgen", "process", id, "prctl", errno);
    if (getppid() == 1) _exit(1);
    int e;
    if ((e = bc_set_handler(SIGTERM, on_stop)) < 0) bc_die("bcastgen", "process", id, "sigaction", -e);
    if (signal(SIGINT, SIG_IGN) == SIG_ERR) bc_die("bcastgen", "process", id, "signal", errno); /* the parent handles ^C */
    maxfd = bc_raise_nofile();
    if (maxfd < 0) bc_die("bcastgen", "process", id, "setrlimit(RLIMIT_NOFILE)", (int)-maxfd);
    C = calloc((size_t)maxfd, sizeof *C);
    if (!C) bc_die("bcastgen", "process", id, "calloc", ENOMEM);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) bc_die("bcastgen", "process", id, "epoll_create1", errno);
    uint64_t share = (uint64_t)(g_conns / g_procs + (id < g_conns % g_procs ? 1 : 0));
    me->share = share;
    retry_budget = share * (uint64_t)g_retries;
    me->pid = getpid();

    static struct epoll_event evs[1024];
    int round = 0; /* index of the round this process waits for */
    while (!g_stop) {
        int ph = __atomic_load_n(&CTL->phase, __ATOMIC_ACQUIRE);
        if (ph == PH_STOP) break;
        if (!me->connect_done) {
            if (ph == PH_CONNECT) {
                while (inflight < (uint64_t)g_inflight && me->started < share) start_connect();
            } else { /* the connect phase ended: give up on the stragglers */
                for (long fd = 0; fd < maxfd; fd++)
                    if (C[fd].st == S_CONNECTING) { connect_failed((int)fd, E_PHASE_TIMEOUT); }
            }
            if (inflight == 0 && (me->started >= share || ph != PH_CONNECT)) {
                me->connect_done_ns = bc_now_ns();
                if ((e = bc_cpu_self(&me->cpu_connected)) < 0) bc_die("bcastgen", "process", id, "getrusage", -e);
                __atomic_store_n(&me->connect_done, 1, __ATOMIC_RELEASE);
            }
        }
        /* -P: once connected, look every g_poll_ms instead of sleeping in epoll_wait, so a
         * server's write finds no waiter to wake (the reader's wake-up is off the write path) */
        int polling = g_poll_ms > 0 && me->connect_done;
        int n = epoll_wait(ep, evs, 1024, polling ? 0 : me->connect_done ? 50 : 5);
        if (n == 0 && polling) {
            struct timespec ts = {g_poll_ms / 1000, (long)(g_poll_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            bc_die("bcastgen", "process", id, "epoll_wait", errno);
        }
        for (int i = 0; i < n; i++) on_event(evs[i].data.fd, evs[i].events);
        /* a round ends here when every open connection has its message, or the parent closed it */
        while (round < g_rounds && me->connect_done &&
               (me->round[round].delivered >= open_now ||
                __atomic_load_n(&CTL->closed_round, __ATOMIC_ACQUIRE) > round))
            mark_round_done(round++);
    }
    /* abortive close: RST, so a million closes leave no TIME_WAIT / FIN_WAIT sockets behind */
    struct linger lg = {1, 0};
    for (long fd = 0; fd < maxfd; fd++)
        if (C[fd].st != S_FREE) setsockopt((int)fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    _exit(0);
}

/* ---------------------------------------------------------------- parent */

static pid_t pids[MAX_PROCS];
static int nprocs;

static int check_children(void)
{
    int st;
    pid_t d = waitpid(-1, &st, WNOHANG);
    if (d > 0) {
        fprintf(stderr, "[bcastgen] process pid %d ended early (%s %d)\n", d,
                WIFSIGNALED(st) ? "signal" : "status", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        return -1;
    }
    return 0;
}

static double ms(uint64_t ns) { return (double)ns / 1e6; }

static void print_errors(void)
{
    printf("\"errors\":{");
    int first = 1;
    for (int e = 0; e < NERRNO; e++) {
        uint64_t n = 0;
        for (int i = 0; i < nprocs; i++) n += P[i].errs[e];
        if (!n) continue;
        printf("%s\"%s\":%llu", first ? "" : ",", e == E_PHASE_TIMEOUT ? "CONNECT_PHASE_TIMEOUT" : e ? bc_errname(e) : "OTHER",
               (unsigned long long)n);
        first = 0;
    }
    printf("}");
}

/* 1: connected line printed; -1: a process died */
static int connect_phase(uint64_t t_start)
{
    uint64_t next_progress = t_start + 1000000000ull;
    int low_mem = 0;
    for (;;) {
        if (g_stop) return -1;
        if (check_children() < 0) return -1;
        uint64_t now = bc_now_ns(), connected = 0, failed = 0, started = 0;
        int done = 0;
        for (int i = 0; i < nprocs; i++) {
            done += __atomic_load_n(&P[i].connect_done, __ATOMIC_ACQUIRE);
            connected += P[i].connected;
            failed += P[i].failed;
            started += P[i].started;
        }
        if (done == nprocs) break;
        long avail = g_min_avail_mb > 0 ? mem_available_mb() : -1;
        if (avail >= 0 && avail < g_min_avail_mb && !low_mem) {
            fprintf(stderr, "[bcastgen] MemAvailable %ld MiB < %ld MiB: connect phase stopped\n", avail, g_min_avail_mb);
            low_mem = 1;
        }
        if (low_mem || now - t_start >= (uint64_t)g_ctimeout * 1000000000ull)
            __atomic_store_n(&CTL->phase, PH_RUN, __ATOMIC_RELEASE);
        if (!g_quiet && now >= next_progress) {
            fprintf(stderr, "[bcastgen] %.0fs connected=%llu failed=%llu started=%llu\n", (double)(now - t_start) / 1e9,
                    (unsigned long long)connected, (unsigned long long)failed, (unsigned long long)started);
            next_progress += 1000000000ull;
        }
        usleep(5000);
    }
    __atomic_store_n(&CTL->phase, PH_RUN, __ATOMIC_RELEASE);
    uint64_t connected = 0, failed = 0, retried = 0, closed = 0, last = t_start;
    for (int i = 0; i < nprocs; i++) {
        connected += P[i].connected;
        failed += P[i].failed;
        retried += P[i].retried;
        closed += P[i].closed;
        if (P[i].connect_done_ns > last) last = P[i].connect_done_ns;
    }
    g_connected = connected;
    g_connect_s = (double)(last - t_start) / 1e9;
    printf("{\"event\":\"connected\",\"target\":%ld,\"connected\":%llu,\"failed\":%llu,\"retried\":%llu,"
           "\"closed\":%llu,\"connect_s\":%.3f,\"procs\":%d,\"source_ips\":%d,\"low_memory_stop\":%s,",
           g_conns, (unsigned long long)connected, (unsigned long long)failed, (unsigned long long)retried,
           (unsigned long long)closed, (double)(last - t_start) / 1e9, nprocs, g_nsrc, low_mem ? "true" : "false");
    print_errors();
    printf("}\n");
    fflush(stdout);
    return 1;
}

/* wait for round k (0-based) and print its line; -1 when stopped or a process died */
static int run_round(int k)
{
    uint64_t first = 0, announced = 0;
    for (;;) {
        if (g_stop || check_children() < 0) return -1;
        uint64_t now = bc_now_ns(), delivered = 0, open = 0;
        int done = 0;
        first = 0;
        for (int i = 0; i < nprocs; i++) {
            struct round_stats *r = &P[i].round[k];
            delivered += r->delivered;
            open += P[i].connected - P[i].closed;
            done += __atomic_load_n(&r->done, __ATOMIC_ACQUIRE);
            if (r->first_ns && (!first || r->first_ns < first)) first = r->first_ns;
        }
        if (done == nprocs) break;
        if (first && now - first >= (uint64_t)g_timeout * 1000000000ull)
            __atomic_store_n(&CTL->closed_round, k + 1, __ATOMIC_RELEASE); /* processes mark done */
        if (!g_quiet && first && now - first >= announced + 1000000000ull) {
            announced = now - first;
            fprintf(stderr, "[bcastgen] round %d: %.0fs delivered=%llu of %llu\n", k + 1, (double)announced / 1e9,
                    (unsigned long long)delivered, (unsigned long long)open);
        }
        usleep(first ? 2000 : 10000);
    }
    static uint64_t hist[BC_HBUCKETS];
    memset(hist, 0, sizeof hist);
    uint64_t delivered = 0, open = 0, last = 0, stamp_min = 0, lat_max = 0, user = 0, sys = 0;
    for (int i = 0; i < nprocs; i++) {
        struct proc_state *p = &P[i];
        struct round_stats *r = &p->round[k];
        delivered += r->delivered;
        open += p->connected - p->closed;
        if (r->last_ns > last) last = r->last_ns;
        if (r->stamp_min_ns && (!stamp_min || r->stamp_min_ns < stamp_min)) stamp_min = r->stamp_min_ns;
        if (r->lat_max_ns > lat_max) lat_max = r->lat_max_ns;
        const struct bc_cpu *from = k ? &p->round[k - 1].cpu_end : &p->cpu_connected;
        user += r->cpu_end.user_us - from->user_us;
        sys += r->cpu_end.sys_us - from->sys_us;
        for (int b = 0; b < BC_HBUCKETS; b++) hist[b] += r->hist[b];
    }
    uint64_t unexpected = 0;
    for (int i = 0; i < nprocs; i++) unexpected += P[i].unexpected;
    printf("{\"event\":\"round\",\"seq\":%d,\"connected\":%llu,\"connect_s\":%.3f,\"open\":%llu,\"delivered\":%llu,\"complete\":%s,\"unexpected\":%llu,"
           "\"first_ns\":%llu,\"last_ns\":%llu,\"stamp_min_ns\":%llu,\"last_ms\":%.3f,\"window_ms\":%.3f,"
           "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"client_cpu\":{\"user_s\":%.3f,\"sys_s\":%.3f}}\n",
           k + 1, (unsigned long long)g_connected, g_connect_s, (unsigned long long)open, (unsigned long long)delivered, delivered >= open ? "true" : "false",
           (unsigned long long)unexpected, (unsigned long long)first, (unsigned long long)last,
           (unsigned long long)stamp_min, last && stamp_min ? ms(last - stamp_min) : 0.0,
           last && first ? ms(last - first) : 0.0, ms(bc_hist_quantile(hist, delivered, 0.5)),
           ms(bc_hist_quantile(hist, delivered, 0.99)), ms(lat_max), (double)user / 1e6, (double)sys / 1e6);
    fflush(stdout);
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bcastgen -n CONNS -p PORT [-f PROCS(1)] [-k NSRCIPS(0: the kernel picks)] [-s SIZE(32)]\n"
            "                [-T ROUND_TIMEOUT_S(60)] [-r ROUNDS(1, <= %d)] [-a ADDR(127.0.0.1)]\n"
            "                [-c INFLIGHT_PER_PROC(1000)] [-C CONNECT_TIMEOUT_S(600)] [-R RETRIES(3)]\n"
            "                [-M MIN_AVAIL_MB(1024, 0: off)] [-P POLL_MS(0: block in epoll_wait)] [-q]\n", BC_MAX_ROUNDS);
    exit(2);
}


int main(int argc, char **argv)
{
    int o;
    while ((o = getopt(argc, argv, "n:p:f:k:s:T:r:a:c:C:R:M:P:q")) != -1) {
        switch (o) {
        case 'n': g_conns = bc_num("bcastgen", 'n', optarg, 1, 100000000); break;
        case 'p': g_port = (int)bc_num("bcastgen", 'p', optarg, 1, 65535); break;
        case 'f': g_procs = (int)bc_num("bcastgen", 'f', optarg, 1, MAX_PROCS); break;
        case 'k': g_nsrc = (int)bc_num("bcastgen", 'k', optarg, 0, 1 << 20); break;
        case 's': g_size = (int)bc_num("bcastgen", 's', optarg, BC_HDR, BC_MAX_SIZE); break;
        case 'T': g_timeout = bc_num("bcastgen", 'T', optarg, 1, 86400); break;
        case 'r': g_rounds = (int)bc_num("bcastgen", 'r', optarg, 1, BC_MAX_ROUNDS); break;
        case 'a': g_addr = optarg; break;
        case 'c': g_inflight = (int)bc_num("bcastgen", 'c', optarg, 1, 1000000); break;
        case 'C': g_ctimeout = bc_num("bcastgen", 'C', optarg, 1, 86400); break;
        case 'R': g_retries = (int)bc_num("bcastgen", 'R', optarg, 0, 100); break;
        case 'M': g_min_avail_mb = bc_num("bcastgen", 'M', optarg, 0, 1L << 30); break;
        case 'P': g_poll_ms = (int)bc_num("bcastgen", 'P', optarg, 0, 1000); break;
        case 'q': g_quiet = 1; break;
        default: usage();
        }
    }
    if (!g_conns || !g_port || optind != argc) usage();
    if (g_procs > g_conns) { fprintf(stderr, "bcastgen: -f %d is more than the %ld connections\n", g_procs, g_conns); return 2; }
    if (inet_pton(AF_INET, g_addr, &g_dst) != 1) { fprintf(stderr, "bcastgen: -a %s is not an IPv4 address\n", g_addr); return 2; }
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) { perror("signal"); return 1; }
    CTL = mmap(NULL, sizeof *CTL, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    P = mmap(NULL, sizeof *P * (size_t)g_procs, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (CTL == MAP_FAILED || P == MAP_FAILED) { perror("mmap"); return 1; }
    if (bc_set_handler(SIGTERM, on_stop) < 0 || bc_set_handler(SIGINT, on_stop) < 0) { perror("sigaction"); return 1; }
    uint64_t t_start = bc_now_ns();
    for (; nprocs < g_procs; nprocs++) {
        pid_t p = fork();
        if (p < 0) { perror("fork"); g_stop = 1; break; }
        if (p == 0) proc_main(nprocs);
        pids[nprocs] = p;
    }
    if (!g_quiet)
        fprintf(stderr, "[bcastgen] %ld connections to %s:%d from %d processes over %d source addresses\n",
                g_conns, g_addr, g_port, nprocs, g_nsrc);
    int rc = connect_phase(t_start) < 0 ? 1 : 0;
    for (int k = 0; rc == 0 && k < g_rounds; k++)
        if (run_round(k) < 0) rc = 1;
    __atomic_store_n(&CTL->phase, PH_STOP, __ATOMIC_RELEASE);
    for (int i = 0; i < nprocs; i++) kill(pids[i], SIGTERM);
    for (int i = 0; i < nprocs; i++)
        while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR) {}
    return g_stop && rc ? 0 : rc;
}
