/* bcast.h - what bcastref (the broadcasting server) and bcastgen (its subscribers) share: the
 * message layout, the clock, a latency histogram, CPU readings and the open-file limit.
 *
 * Message (little-endian, as both ends run on this box), SIZE bytes, SIZE >= BC_HDR:
 *   0..7   stamp_ns  CLOCK_MONOTONIC ns at which the sending worker took SIGUSR1
 *   8..11  seq       broadcast number, 1, 2, ... (the same in every worker)
 *   12..15 worker    index of the sending server worker
 *   16..   filler    'a'..'z' repeated
 * CLOCK_MONOTONIC is one clock for every process of the box, so a receiver subtracts the stamp
 * from its own reading to get the latency of that message.
 */
#ifndef BCAST_H
#define BCAST_H
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <time.h>

#define BC_HDR 16
#define BC_MAX_SIZE 4096
#define BC_MAX_ROUNDS 64

struct bc_msg_hdr {
    uint64_t stamp_ns;
    uint32_t seq;
    uint32_t worker;
};

static inline uint64_t bc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no syscall, async-signal-safe */
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Latency histogram over nanoseconds: exact below 128 ns, then 64 buckets per power of two
 * (<= 1.6 % error), up to 2^40 ns (~18 min). Merging is adding the counts. */
#define BC_SUB 64
#define BC_HBUCKETS (2 * BC_SUB + 34 * BC_SUB)

static inline int bc_hist_index(uint64_t v)
{
    if (v < 2 * BC_SUB) return (int)v;
    int msb = 63 - __builtin_clzll(v);   /* >= 7 */
    int shift = msb - 6;                 /* v >> shift is in [64, 127] */
    int i = 2 * BC_SUB + (msb - 7) * BC_SUB + (int)((v >> shift) - BC_SUB);
    return i < BC_HBUCKETS ? i : BC_HBUCKETS - 1;
}

/* the middle of bucket i */
static inline uint64_t bc_hist_value(int i)
{
    if (i < 2 * BC_SUB) return (uint64_t)i;
    int k = i - 2 * BC_SUB, msb = k / BC_SUB + 7, shift = msb - 6;
    uint64_t lo = (uint64_t)(k % BC_SUB + BC_SUB) << shift;
    return lo + ((1ull << shift) >> 1);
}

/* the value below which a fraction p of the n samples lie */
static inline uint64_t bc_hist_quantile(const uint64_t *h, uint64_t n, double p)
{
    if (n == 0) return 0;
    uint64_t rank = (uint64_t)(p * (double)n);
    if (rank >= n) rank = n - 1;
    uint64_t seen = 0;
    for (int i = 0; i < BC_HBUCKETS; i++) {
        seen += h[i];
        if (seen > rank) return bc_hist_value(i);
    }
    return bc_hist_value(BC_HBUCKETS - 1);
}

/* CPU time of this process (user, system) in microseconds */
struct bc_cpu { uint64_t user_us, sys_us; };

static inline int bc_cpu_self(struct bc_cpu *c)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) < 0) return -errno;
    c->user_us = (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec;
    c->sys_us = (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
    return 0;
}

/* Raise the soft open-file limit to the hard one; returns the new soft limit or -errno. */
static inline long bc_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return -errno;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) return -errno;
    }
    return rl.rlim_cur > 1000000000 ? 1000000000 : (long)rl.rlim_cur;
}

/* strerrorname_np may return NULL for an unknown errno */
/* The value of option -opt of program prog, or exit 2 with a message naming both. */
static inline long bc_num(const char *prog, int opt, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *s == 0 || *end || v < lo || v > hi) {
        fprintf(stderr, "%s: -%c must be an integer from %ld to %ld, got \"%s\"\n", prog, opt, lo, hi, s);
        exit(2);
    }
    return v;
}

static inline const char *bc_errname(int e);

/* Install handler h for sig (no SA_RESTART: blocking calls return EINTR). 0 or -errno. */
static inline int bc_set_handler(int sig, void (*h)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL) < 0 ? -errno : 0;
}

/* Report a fatal error of process `id` (a worker, a client process) of prog and exit 1. */
static inline void bc_die(const char *prog, const char *unit, int id, const char *what, int err)
{
    fprintf(stderr, "[%s] %s %d: %s: %s (%s)\n", prog, unit, id, what, strerror(err), bc_errname(err));
    _exit(1);
}

static inline const char *bc_errname(int e)
{
    const char *s = strerrorname_np(e);
    return s ? s : "E?";
}

#endif
