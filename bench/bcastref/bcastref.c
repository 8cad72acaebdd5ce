/* bcastref.c - the broadcasting server of the broadcast floor: holds TCP connections in WORKERS
 * processes and, on SIGUSR1, writes one small message to every connection it holds.
 *
 *   bcastref -p PORT [-w WORKERS(1)] [-s SIZE(32)] [-a ADDR(127.0.0.1)] [-b BACKLOG(65535)] [-q]
 *
 * Model: the parent checks that nothing holds ADDR:PORT, forks WORKERS processes and waits. Each
 * worker has its own SO_REUSEPORT listener (the kernel spreads connections by a hash of the
 * 4-tuple), one epoll instance, and a dense array of the fds it holds. Listener: level-triggered,
 * accept4 until EAGAIN. Connections: edge-triggered EPOLLIN | EPOLLRDHUP, TCP_NODELAY set at
 * accept (c1m's engine sets it too), anything read is discarded; EOF or an error closes. No
 * EPOLLOUT interest ever: the broadcast does not go through epoll.
 *
 * Broadcast: SIGUSR1 sent to the process group (kill -USR1 -- -PGID; the parent's pgid is in its
 * "listening" line) reaches every worker. The handler notes CLOCK_MONOTONIC and counts the
 * signal; the worker's loop then, for each signal not yet served: reads its CPU time, stamps one
 * SIZE-byte message (bcast.h) with the handler's time, calls write(2) once per held connection,
 * reads its CPU time again. A write that is short or fails (EAGAIN or another errno) is counted
 * as an error and not retried: the floor is one write per connection, as c1m's engine does it.
 * The parent ignores SIGUSR1.
 *
 * Reports: the workers keep their counters and one record per broadcast in shared memory. On
 * SIGUSR2 (to the parent or the group; workers ignore it) the parent prints one JSON line on
 * stdout: per worker, connections held, accept / close counters and every finished broadcast
 * (sent, errors by kind, send-loop time, CPU user/sys before and after). On SIGTERM or SIGINT it
 * stops the workers, prints the same report with "event":"exit", and exits 0.
 *
 * Invariants: a worker serves broadcasts strictly in signal order; a record becomes visible to
 * the parent only once complete (count published with a release store); at most BC_MAX_ROUNDS
 * broadcasts are recorded (later ones are sent and counted in "unrecorded"). Every syscall is
 * checked; a failure that ends a worker is reported on stderr, and the parent then exits 1.
 */
#include "bcast.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_WORKERS 1024
#define LISTENER_TAG UINT64_MAX
#define RBUF_SIZE 65536
#define ACCEPT_PAUSE_NS 100000000ull /* after EMFILE / ENFILE / ENOBUFS / ENOMEM */

struct bcast_rec {
    uint32_t seq;
    uint64_t signal_ns, start_ns, end_ns;
    uint64_t conns, sent, eagain, short_writes, other_errors;
    int first_errno;
    struct bc_cpu before, after;
};

struct worker_state {
    volatile int pid, listening, busy;
    volatile uint64_t conns, accepted, closed, accept_errors, nodelay_errors, unrecorded;
    volatile int nrec; /* published with a release store after the record is complete */
    struct bcast_rec rec[BC_MAX_ROUNDS];
} __attribute__((aligned(64)));

static struct worker_state *W;
static int g_port, g_workers = 1, g_size = 32, g_backlog = 65535, g_quiet;
static const char *g_addr = "127.0.0.1";
static struct in_addr g_in;

static volatile sig_atomic_t g_stop, g_report;
static volatile sig_atomic_t g_signals;               /* SIGUSR1 taken by this worker */
static volatile uint64_t g_signal_ns[BC_MAX_ROUNDS];  /* handler time of signal k, at k % MAX */

static void on_stop(int s) { (void)s; g_stop = 1; }
static void on_report(int s) { (void)s; g_report = 1; }
static void on_noop(int s) { (void)s; }
static void on_broadcast(int s)
{
    (void)s;
    g_signal_ns[g_signals % BC_MAX_ROUNDS] = bc_now_ns();
    g_signals++;
}

/* ---------------------------------------------------------------- worker */

static int ep, lfd, wid;
static int *held;       /* dense list of held fds */
static int32_t *slot;   /* slot[fd]: index in held, or -1 */
static uint64_t nheld;
static long maxfd;
static uint8_t rbuf[RBUF_SIZE];
static uint8_t msg[BC_MAX_SIZE];
static struct worker_state *me;
static int accept_paused;
static uint64_t accept_resume_ns;

static void listener_interest(uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.u64 = LISTENER_TAG};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, lfd, &ev) < 0) bc_die("bcastref", "worker", wid, "epoll_ctl(MOD listener)", errno);
}

static void drop(int fd)
{
    int32_t i = slot[fd];
    if (i >= 0) {
        int last = held[--nheld];
        held[i] = last;
        slot[last] = i;
        slot[fd] = -1;
    }
    if (close(fd) < 0 && errno != EINTR) bc_die("bcastref", "worker", wid, "close", errno);
    me->closed++;
    me->conns = nheld;
}

static void accept_all(void)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EAGAIN) return;
            if (e == EINTR || e == ECONNABORTED || e == EPROTO || e == EPERM) continue;
            me->accept_errors++;
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
                /* level-triggered: stop asking until some time passed, or we would spin */
                accept_paused = 1;
                accept_resume_ns = bc_now_ns() + ACCEPT_PAUSE_NS;
                listener_interest(0);
                return;
            }
            bc_die("bcastref", "worker", wid, "accept4", e);
        }
        if (fd >= maxfd) { /* cannot happen below the rlimit; keep the arrays safe anyway */
            close(fd);
            me->accept_errors++;
            continue;
        }
        int one = 1;
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) me->nodelay_errors++;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.u64 = (uint64_t)fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            int e = errno;
            close(fd);
            if (e == ENOMEM || e == ENOSPC) { me->accept_errors++; continue; }
            bc_die("bcastref", "worker", wid, "epoll_ctl(ADD)", e);
        }
        slot[fd] = (int32_t)nheld;
        held[nheld++] = fd;
        me->accepted++;
        me->conns = nheld;
    }
}

/* edge-triggered: read until EAGAIN, discard; EOF or error closes */
static void drain(int fd)
{
    for (;;) {
        ssize_t r = read(fd, rbuf, sizeof rbuf);
        if (r > 0) continue;
        if (r < 0 && errno == EAGAIN) return;
        if (r < 0 && errno == EINTR) continue;
        drop(fd);
        return;
    }
}

static void broadcast(uint32_t seq, uint64_t signal_ns)
{
    struct bcast_rec r;
    memset(&r, 0, sizeof r);
    r.seq = seq;
    r.signal_ns = signal_ns;
    me->busy = 1;
    int e = bc_cpu_self(&r.before);
    if (e < 0) bc_die("bcastref", "worker", wid, "getrusage", -e);
    struct bc_msg_hdr h = {.stamp_ns = signal_ns, .seq = seq, .worker = (uint32_t)wid};
    memcpy(msg, &h, sizeof h);
    r.start_ns = bc_now_ns();
    r.conns = nheld;
    for (uint64_t i = 0; i < nheld; i++) {
        ssize_t w;
        do w = write(held[i], msg, (size_t)g_size);
        while (w < 0 && errno == EINTR);
        if (w == g_size) r.sent++;
        else if (w >= 0) r.short_writes++;
        else if (errno == EAGAIN) r.eagain++;
        else {
            if (!r.other_errors) r.first_errno = errno;
            r.other_errors++;
        }
    }
    r.end_ns = bc_now_ns();
    e = bc_cpu_self(&r.after);
    if (e < 0) bc_die("bcastref", "worker", wid, "getrusage", -e);
    int n = me->nrec;
    if (n < BC_MAX_ROUNDS) {
        me->rec[n] = r;
        __atomic_store_n(&me->nrec, n + 1, __ATOMIC_RELEASE);
    } else {
        me->unrecorded++;
    }
    me->busy = 0;
}

static void worker_main(int id)
{
    wid = id;
    me = &W[id];
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0) bc_die("bcastref", "worker", id, "prctl", errno);
    if (getppid() == 1) _exit(1); /* the parent died before prctl */
    int e;
    if ((e = bc_set_handler(SIGUSR1, on_broadcast)) < 0 || (e = bc_set_handler(SIGTERM, on_stop)) < 0 ||
        (e = bc_set_handler(SIGINT, on_stop)) < 0)
        bc_die("bcastref", "worker", id, "sigaction", -e);
    if (signal(SIGUSR2, SIG_IGN) == SIG_ERR) bc_die("bcastref", "worker", id, "signal", errno);
    maxfd = bc_raise_nofile();
    if (maxfd < 0) bc_die("bcastref", "worker", id, "setrlimit(RLIMIT_NOFILE)", (int)-maxfd);
    held = malloc(sizeof *held * (size_t)maxfd);
    slot = malloc(sizeof *slot * (size_t)maxfd);
    if (!held || !slot) bc_die("bcastref", "worker", id, "malloc", ENOMEM);
    for (long i = 0; i < maxfd; i++) slot[i] = -1;
    for (int i = 0; i < g_size; i++) msg[i] = (uint8_t)('a' + i % 26);

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) bc_die("bcastref", "worker", id, "epoll_create1", errno);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0) bc_die("bcastref", "worker", id, "socket", errno);
    int one = 1;
    if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) bc_die("bcastref", "worker", id, "SO_REUSEADDR", errno);
    if (setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) bc_die("bcastref", "worker", id, "SO_REUSEPORT", errno);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port), .sin_addr = g_in};
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0) bc_die("bcastref", "worker", id, "bind", errno);
    if (listen(lfd, g_backlog) < 0) bc_die("bcastref", "worker", id, "listen", errno);
    struct epoll_event lev = {.events = EPOLLIN, .data.u64 = LISTENER_TAG};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) bc_die("bcastref", "worker", id, "epoll_ctl(ADD listener)", errno);
    me->pid = getpid();
    __atomic_store_n(&me->listening, 1, __ATOMIC_RELEASE);

    static struct epoll_event evs[512];
    uint32_t served = 0;
    while (!g_stop) {
        while (served != (uint32_t)g_signals) {
            served++;
            broadcast(served, g_signal_ns[(served - 1) % BC_MAX_ROUNDS]);
        }
        int n = epoll_wait(ep, evs, 512, accept_paused ? 10 : -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            bc_die("bcastref", "worker", id, "epoll_wait", errno);
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == LISTENER_TAG) accept_all();
            else drain((int)evs[i].data.u64);
        }
        if (accept_paused && bc_now_ns() >= accept_resume_ns) {
            accept_paused = 0;
            listener_interest(EPOLLIN);
        }
    }
    _exit(0);
}

/* ---------------------------------------------------------------- parent */

static void print_cpu(FILE *f, const char *name, const struct bc_cpu *c)
{
    fprintf(f, "\"%s\":{\"user_us\":%llu,\"sys_us\":%llu}", name, (unsigned long long)c->user_us,
            (unsigned long long)c->sys_us);
}

static void report(const char *event, int nworkers)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) { fprintf(stderr, "[bcastref] open_memstream: %s\n", strerror(errno)); return; }
    fprintf(f, "{\"event\":\"%s\",\"t_ns\":%llu,\"size\":%d,\"workers\":[", event,
            (unsigned long long)bc_now_ns(), g_size);
    for (int i = 0; i < nworkers; i++) {
        struct worker_state *w = &W[i];
        int nrec = __atomic_load_n(&w->nrec, __ATOMIC_ACQUIRE);
        fprintf(f, "%s{\"worker\":%d,\"pid\":%d,\"connections\":%llu,\"accepted\":%llu,\"closed\":%llu,"
                   "\"accept_errors\":%llu,\"nodelay_errors\":%llu,\"busy\":%s,\"unrecorded\":%llu,\"broadcasts\":[",
                i ? "," : "", i, w->pid, (unsigned long long)w->conns, (unsigned long long)w->accepted,
                (unsigned long long)w->closed, (unsigned long long)w->accept_errors,
                (unsigned long long)w->nodelay_errors, w->busy ? "true" : "false", (unsigned long long)w->unrecorded);
        for (int k = 0; k < nrec; k++) {
            const struct bcast_rec *r = &w->rec[k];
            fprintf(f, "%s{\"seq\":%u,\"signal_ns\":%llu,\"start_ns\":%llu,\"end_ns\":%llu,\"connections\":%llu,"
                       "\"sent\":%llu,\"errors\":%llu,\"eagain\":%llu,\"short\":%llu,\"other_errors\":%llu,"
                       "\"first_error\":",
                    k ? "," : "", r->seq, (unsigned long long)r->signal_ns, (unsigned long long)r->start_ns,
                    (unsigned long long)r->end_ns, (unsigned long long)r->conns, (unsigned long long)r->sent,
                    (unsigned long long)(r->eagain + r->short_writes + r->other_errors), (unsigned long long)r->eagain,
                    (unsigned long long)r->short_writes, (unsigned long long)r->other_errors);
            if (r->other_errors) fprintf(f, "\"%s\"", bc_errname(r->first_errno));
            else fputs("null", f);
            fprintf(f, ",\"loop_us\":%.1f,", (double)(r->end_ns - r->start_ns) / 1e3);
            print_cpu(f, "cpu_before", &r->before);
            fputc(',', f);
            print_cpu(f, "cpu_after", &r->after);
            fputc('}', f);
        }
        fputs("]}", f);
    }
    fputs("]}\n", f);
    if (fclose(f) != 0) { free(buf); return; }
    fwrite(buf, 1, len, stdout);
    fflush(stdout);
    free(buf);
}

static void usage(void)
{
    fprintf(stderr, "usage: bcastref -p PORT [-w WORKERS(1)] [-s SIZE(32, %d..%d)] [-a ADDR(127.0.0.1)]\n"
                    "                [-b BACKLOG(65535)] [-q]\n"
                    "  SIGUSR1 to the process group: broadcast one message to every connection\n"
                    "  SIGUSR2: print the per-worker JSON report; SIGTERM: stop, report, exit\n",
            BC_HDR, BC_MAX_SIZE);
    exit(2);
}


/* fail early when anything (a stale server too: SO_REUSEPORT would share with it) holds the port */
static int port_is_free(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port), .sin_addr = g_in};
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

int main(int argc, char **argv)
{
    int o;
    while ((o = getopt(argc, argv, "p:w:s:a:b:q")) != -1) {
        switch (o) {
        case 'p': g_port = (int)bc_num("bcastref", 'p', optarg, 1, 65535); break;
        case 'w': g_workers = (int)bc_num("bcastref", 'w', optarg, 1, MAX_WORKERS); break;
        case 's': g_size = (int)bc_num("bcastref", 's', optarg, BC_HDR, BC_MAX_SIZE); break;
        case 'a': g_addr = optarg; break;
        case 'b': g_backlog = (int)bc_num("bcastref", 'b', optarg, 1, 1 << 20); break;
        case 'q': g_quiet = 1; break;
        default: usage();
        }
    }
    if (!g_port || optind != argc) usage();
    if (inet_pton(AF_INET, g_addr, &g_in) != 1) {
        fprintf(stderr, "bcastref: -a %s is not an IPv4 address\n", g_addr);
        return 2;
    }
    int rc = port_is_free();
    if (rc < 0) {
        fprintf(stderr, "bcastref: %s:%d is not free: %s\n", g_addr, g_port, strerror(-rc));
        return 1;
    }
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) { perror("signal"); return 1; }
    W = mmap(NULL, sizeof *W * (size_t)g_workers, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (W == MAP_FAILED) { perror("mmap"); return 1; }
    /* handlers before the fork, so a group signal never finds a default action */
    if (bc_set_handler(SIGUSR1, on_noop) < 0 || bc_set_handler(SIGUSR2, on_report) < 0 ||
        bc_set_handler(SIGTERM, on_stop) < 0 || bc_set_handler(SIGINT, on_stop) < 0) {
        perror("sigaction");
        return 1;
    }
    static pid_t pids[MAX_WORKERS];
    int n = 0, failed = 0;
    for (; n < g_workers; n++) {
        pid_t p = fork();
        if (p < 0) { perror("fork"); failed = 1; break; }
        if (p == 0) worker_main(n);
        pids[n] = p;
    }
    int announced = 0;
    while (!g_stop && !failed) {
        if (!announced) {
            int ready = 0;
            for (int i = 0; i < n; i++) ready += __atomic_load_n(&W[i].listening, __ATOMIC_ACQUIRE);
            if (ready == n) {
                announced = 1;
                printf("{\"event\":\"listening\",\"addr\":\"%s\",\"port\":%d,\"workers\":%d,\"size\":%d,"
                       "\"pid\":%d,\"pgid\":%d}\n", g_addr, g_port, n, g_size, getpid(), getpgrp());
                fflush(stdout);
            }
        }
        if (g_report) {
            g_report = 0;
            report("report", n);
        }
        int st;
        pid_t d = waitpid(-1, &st, WNOHANG);
        if (d > 0) {
            fprintf(stderr, "[bcastref] worker pid %d ended (%s %d); stopping\n", d,
                    WIFSIGNALED(st) ? "signal" : "status", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
            failed = 1;
            break;
        }
        if (d < 0 && errno != EINTR) { perror("waitpid"); failed = 1; break; }
        usleep(20000);
    }
    report("exit", n);
    for (int i = 0; i < n; i++) kill(pids[i], SIGTERM);
    for (int i = 0; i < n; i++)
        while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR) {}
    if (!g_quiet) fprintf(stderr, "[bcastref] stopped\n");
    return failed ? 1 : 0;
}
