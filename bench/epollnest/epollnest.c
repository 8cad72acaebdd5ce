/*
 * epollnest: what an EPOLL_CTL_ADD (+ DEL) costs when the epoll instance is itself watched by
 * another epoll instance, as c1m's reactor epoll is watched by libuv's in every Node process.
 *
 * Linux takes the slow path of do_epoll_ctl for such an ADD (the instance's file has watchers:
 * `f_ep` set): a box-wide mutex (`epnested_mutex`) and a reverse-path check, so concurrent
 * ADDs in different processes serialize. This measures it directly: -n ADD+DEL pairs on a set
 * of (unconnected) TCP sockets into epoll A, with A alone or A watched by epoll B (-N).
 * Run several copies at once to see the box-wide contention (bench/epollnest/run.sh).
 *
 *   epollnest [-N] [-n pairs(200000)] [-s sockets(1000)]
 *
 * Output: one JSON line {"nested":0|1,"pairs":N,"ns_per_pair":X} on stdout. Errors: a message
 * on stderr and exit status 1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static int fail(const char *what) {
  fprintf(stderr, "epollnest: %s: %s\n", what, strerror(errno));
  return 1;
}

int main(int argc, char **argv) {
  int nested = 0, opt;
  long pairs = 200000, nsock = 1000;
  while ((opt = getopt(argc, argv, "Nn:s:")) != -1) {
    switch (opt) {
      case 'N': nested = 1; break;
      case 'n': pairs = atol(optarg); break;
      case 's': nsock = atol(optarg); break;
      default:
        fprintf(stderr, "usage: epollnest [-N] [-n pairs] [-s sockets]\n");
        return 1;
    }
  }
  if (pairs < 1 || nsock < 1) {
    fprintf(stderr, "epollnest: -n and -s must be positive\n");
    return 1;
  }
  int a = epoll_create1(EPOLL_CLOEXEC), b = epoll_create1(EPOLL_CLOEXEC);
  if (a < 0 || b < 0) return fail("epoll_create1");
  if (nested) {
    struct epoll_event e = { .events = EPOLLIN, .data.fd = a };
    if (epoll_ctl(b, EPOLL_CTL_ADD, a, &e) < 0) return fail("epoll_ctl(B, ADD, A)");
  }
  int *s = calloc((size_t)nsock, sizeof *s);
  if (s == NULL) return fail("calloc");
  for (long i = 0; i < nsock; i++) {
    s[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s[i] < 0) return fail("socket");
  }
  double t0 = now_ns();
  for (long i = 0; i < pairs; i++) {
    int fd = s[i % nsock];
    struct epoll_event e = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = fd };
    if (epoll_ctl(a, EPOLL_CTL_ADD, fd, &e) < 0) return fail("epoll_ctl(ADD)");
    if (epoll_ctl(a, EPOLL_CTL_DEL, fd, NULL) < 0) return fail("epoll_ctl(DEL)");
  }
  printf("{\"nested\":%d,\"pairs\":%ld,\"ns_per_pair\":%.0f}\n", nested, pairs, (now_ns() - t0) / (double)pairs);
  return 0;
}
