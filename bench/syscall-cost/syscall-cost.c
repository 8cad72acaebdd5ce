/*
 * syscall-cost: what one system call costs the user-space code that runs after it.
 *
 *   make -C bench/syscall-cost && bench/syscall-cost/syscall-cost [iterations]
 *
 * For P = 0, 16, 64, 256, 1024 pages: each iteration reads one byte of each of P distinct
 * pages (a working set that fits the TLB when P is small), with and without a getppid()
 * before it. Prints one JSON line per (P, syscall) with the user and system CPU time per
 * iteration (getrusage). Without a syscall the pages stay in the TLB; if the kernel flushes
 * the TLB on every entry and exit (page-table isolation without PCID), each page costs a walk
 * after every syscall, so user time per iteration grows with P by more than the bare call.
 * Why it matters here: an event loop that wakes for little work pays this on every syscall of
 * every wake-up (BENCHMARKS.md, 2026-12-06 sixteenth sitting).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static void cpu(double *user, double *sys) {
  struct rusage r;
  if (getrusage(RUSAGE_SELF, &r) != 0) {
    perror("getrusage");
    exit(1);
  }
  *user = (double)r.ru_utime.tv_sec + (double)r.ru_utime.tv_usec / 1e6;
  *sys = (double)r.ru_stime.tv_sec + (double)r.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv) {
  long iters = argc > 1 ? atol(argv[1]) : 200000;
  if (iters <= 0) {
    fprintf(stderr, "usage: syscall-cost [iterations > 0]\n");
    return 2;
  }
  static const int sizes[] = {0, 16, 64, 256, 1024};
  const size_t page = 4096, maxp = 1024;
  volatile unsigned char *m = malloc(maxp * page);
  if (!m) {
    perror("malloc");
    return 1;
  }
  for (size_t i = 0; i < maxp * page; i += page) m[i] = (unsigned char)i;
  unsigned long sum = 0;
  unsigned x = 12345;
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
    int pages = sizes[s];
    for (int with = 0; with < 2; with++) {
      double u0, s0, u1, s1;
      cpu(&u0, &s0);
      for (long i = 0; i < iters; i++) {
        if (with) syscall(SYS_getppid);
        for (int p = 0; p < pages; p++) {
          x = x * 1103515245u + 12345u;
          sum += m[(size_t)p * page + (x & 63)];
        }
      }
      cpu(&u1, &s1);
      printf("{\"pages\":%d,\"syscall\":%s,\"user_ns_per_iter\":%.0f,\"sys_ns_per_iter\":%.0f}\n", pages,
             with ? "true" : "false", (u1 - u0) / (double)iters * 1e9, (s1 - s0) / (double)iters * 1e9);
    }
  }
  fprintf(stderr, "checksum %lu\n", sum);
  return 0;
}
