/*
 * epoll-add: what adding an epoll fd to another epoll costs, by the number of fds it holds.
 *
 *   make -C bench/syscall-cost && bench/syscall-cost/epoll-add 10 1000 19000
 *
 * For each N: an inner epoll watching N eventfds, then 2,000 rounds of EPOLL_CTL_ADD and
 * EPOLL_CTL_DEL of that epoll fd in an outer one (what libuv does when a uv_poll on c1m's
 * reactor fd is stopped and started again). Prints one JSON line per N. The kernel checks an
 * add of an epoll fd for loops through every fd the inner epoll holds, so the cost grows with N:
 * the reason c1m never re-watches its reactor fd per poll (docs/architecture.md).
 * Times are this process's CPU time (CLOCK_PROCESS_CPUTIME_ID), so a busy box does not
 * inflate them. Needs N + 10 open files (ulimit -n).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int measure(int n) {
  int inner = epoll_create1(EPOLL_CLOEXEC), outer = epoll_create1(EPOLL_CLOEXEC);
  if (inner < 0 || outer < 0) return perror("epoll_create1"), -1;
  int *fds = calloc((size_t)n + 1, sizeof *fds);
  if (!fds) return perror("calloc"), -1;
  for (int i = 0; i < n; i++) {
    fds[i] = eventfd(0, EFD_CLOEXEC);
    if (fds[i] < 0) return perror("eventfd"), -1;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = fds[i]};
    if (epoll_ctl(inner, EPOLL_CTL_ADD, fds[i], &ev) != 0) return perror("epoll_ctl inner"), -1;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = inner};
  const int rounds = 2000;
  double t0 = now();
  for (int i = 0; i < rounds; i++) {
    if (epoll_ctl(outer, EPOLL_CTL_ADD, inner, &ev) != 0) return perror("epoll_ctl add"), -1;
    if (epoll_ctl(outer, EPOLL_CTL_DEL, inner, &ev) != 0) return perror("epoll_ctl del"), -1;
  }
  printf("{\"inner_fds\":%d,\"add_and_del_us\":%.1f}\n", n, (now() - t0) / rounds * 1e6);
  for (int i = 0; i < n; i++) close(fds[i]);
  free(fds);
  close(inner);
  close(outer);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: epoll-add N...\n");
    return 2;
  }
  for (int i = 1; i < argc; i++) {
    int n = atoi(argv[i]);
    if (n < 0 || measure(n) != 0) return 1;
  }
  return 0;
}
