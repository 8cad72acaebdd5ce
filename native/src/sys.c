/*
 * Syscall wrappers: the only file that makes system calls.
 *
 * Model: one wrapper per call the reactor makes; each returns >= 0 or -errno, retries EINTR
 * where retrying is right (never for close()), and never aborts or prints.
 * Invariants: every fd made here is close-on-exec, sockets and eventfds are non-blocking; writes
 * never raise SIGPIPE.
 * Hot path: c1m_sys_read, c1m_sys_writev, c1m_sys_accept, c1m_sys_epoll_wait: one syscall each.
 */
#define _GNU_SOURCE
#include "c1m.h"

#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

int c1m_sys_socket(int family) {
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  return fd < 0 ? -errno : fd;
}

int c1m_sys_set_int(int fd, int level, int opt, int value) {
  return setsockopt(fd, level, opt, &value, sizeof value) < 0 ? -errno : 0;
}

ssize_t c1m_sys_read(int fd, void *buf, size_t len) {
  for (;;) {
    ssize_t n = read(fd, buf, len);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

ssize_t c1m_sys_writev(int fd, const struct iovec *iov, int iovcnt) {
  /* sendmsg with MSG_NOSIGNAL: a peer reset gives EPIPE, not a process-killing SIGPIPE. */
  struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
  for (;;) {
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

int c1m_sys_accept(int lfd, struct sockaddr_storage *peer) {
  for (;;) {
    socklen_t len = sizeof *peer;
    int fd = accept4(lfd, (struct sockaddr *)peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) return fd;
    if (errno != EINTR) return -errno;
  }
}

int c1m_sys_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
  struct epoll_event ev = {.events = events, .data.u64 = data};
  return epoll_ctl(epfd, op, fd, &ev) < 0 ? -errno : 0;
}

int c1m_sys_eventfd_write(int fd) {
  uint64_t one = 1;
  for (;;) {
    if (write(fd, &one, sizeof one) >= 0) return 0;
    if (errno == EAGAIN) return 0; /* the counter is saturated: a wake-up is pending anyway */
    if (errno != EINTR) return -errno;
  }
}

int c1m_sys_counter_read(int fd) {
  uint64_t n = 0;
  for (;;) {
    if (read(fd, &n, sizeof n) >= 0) return n > INT32_MAX ? INT32_MAX : (int)n;
    if (errno != EINTR) return -errno;
  }
}

int c1m_sys_epoll_wait(int epfd, struct epoll_event *evs, int max) {
  int n = epoll_wait(epfd, evs, max, 0);
  /* timeout 0 never blocks: an EINTR is reported as no events, and the loop polls again */
  return n >= 0 ? n : errno == EINTR ? 0 : -errno;
}

int c1m_sys_close(int fd) {
  /* Linux releases the fd even when close() reports EINTR: never retry. */
  return close(fd) < 0 && errno != EINTR ? -errno : 0;
}

int c1m_sys_bind(int fd, const struct sockaddr *addr, socklen_t len) {
  return bind(fd, addr, len) < 0 ? -errno : 0;
}

int c1m_sys_listen(int fd, int backlog) { return listen(fd, backlog) < 0 ? -errno : 0; }

int c1m_sys_connect(int fd, const struct sockaddr *addr, socklen_t len) {
  /* An interrupted non-blocking connect goes on in the background, like EINPROGRESS. */
  if (connect(fd, addr, len) == 0) return 0;
  return errno == EINTR ? -EINPROGRESS : -errno;
}

int c1m_sys_sockname(int fd, int peer, struct sockaddr_storage *ss, socklen_t *len) {
  *len = sizeof *ss;
  int rc = peer ? getpeername(fd, (struct sockaddr *)ss, len) : getsockname(fd, (struct sockaddr *)ss, len);
  return rc < 0 ? -errno : 0;
}

int c1m_sys_sock_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return -errno;
  return -err;
}

int c1m_sys_set_linger0(int fd) {
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  return setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) < 0 ? -errno : 0;
}

int c1m_sys_shutdown_wr(int fd) { return shutdown(fd, SHUT_WR) < 0 ? -errno : 0; }

int c1m_sys_epoll_create(void) {
  int fd = epoll_create1(EPOLL_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

int c1m_sys_random(void *buf, size_t n) {
  for (;;) {
    ssize_t got = getrandom(buf, n, GRND_NONBLOCK);
    if (got == (ssize_t)n) return 0;
    if (got >= 0) return -EAGAIN; /* short: not for the few bytes asked here */
    if (errno != EINTR) return -errno;
  }
}

int c1m_sys_eventfd(void) {
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

int c1m_sys_timerfd_set(int fd, uint32_t interval_ms) {
  struct itimerspec its = {0}; /* all zero stops it; a new setting also clears its count */
  its.it_interval.tv_sec = interval_ms / 1000;
  its.it_interval.tv_nsec = (long)(interval_ms % 1000) * 1000000L;
  its.it_value = its.it_interval;
  return timerfd_settime(fd, 0, &its, NULL) < 0 ? -errno : 0;
}

int c1m_sys_timerfd(uint32_t interval_ms) {
  int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) return -errno;
  int rc = c1m_sys_timerfd_set(fd, interval_ms);
  if (rc < 0) {
    close(fd);
    return rc;
  }
  return fd;
}

int c1m_sys_set_keepalive(int fd, const c1m_keepalive_t *ka) {
  int rc = c1m_sys_set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
  if (rc == 0) rc = c1m_sys_set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, ka->idle_s);
  if (rc == 0) rc = c1m_sys_set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, ka->intvl_s);
  if (rc == 0) rc = c1m_sys_set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, ka->cnt);
  return rc;
}

int c1m_sys_keepalive_info(int fd, c1m_keepalive_t *ka) {
  int on = 0;
  socklen_t l = sizeof on;
  if (getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, &l) < 0) return -errno;
  int *vals[3] = {&ka->idle_s, &ka->intvl_s, &ka->cnt};
  const int opts[3] = {TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT};
  for (int i = 0; i < 3; i++) {
    l = sizeof *vals[i];
    if (getsockopt(fd, IPPROTO_TCP, opts[i], vals[i], &l) < 0) return -errno;
  }
  if (!on) ka->idle_s = 0;
  return 0;
}

int c1m_sys_fd_info(int fd, int *nonblock, int *cloexec, int *nodelay) {
  int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);
  if (fl < 0 || fdfl < 0) return -errno;
  *nonblock = (fl & O_NONBLOCK) != 0;
  *cloexec = (fdfl & FD_CLOEXEC) != 0;
  socklen_t l = sizeof *nodelay;
  if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, nodelay, &l) < 0) *nodelay = -1;
  return 0;
}

int c1m_sys_raise_nofile(uint64_t *soft, uint64_t *hard) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return -errno;
  if (rl.rlim_cur < rl.rlim_max) {
    struct rlimit want = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl.rlim_cur = rl.rlim_max;
  }
  *soft = rl.rlim_cur;
  *hard = rl.rlim_max;
  return 0;
}

int c1m_sys_malloc_trim_threshold(int bytes) {
#ifdef __GLIBC__
  if (bytes < 0) return -EINVAL;
  return mallopt(M_TRIM_THRESHOLD, bytes) == 1 ? 0 : -EINVAL;
#else
  (void)bytes;
  return -ENOTSUP;
#endif
}

int c1m_sys_malloc_trim(void) {
#ifdef __GLIBC__
  return malloc_trim(0);
#else
  return -ENOTSUP;
#endif
}

int c1m_sys_sched_batch(int on) {
  DIR *d = opendir("/proc/self/task");
  if (!d) return -errno;
  struct sched_param p = {.sched_priority = 0};
  int n = 0, err = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    char *end;
    long tid = strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end || tid <= 0) continue; /* "." and ".." */
    if (sched_setscheduler((pid_t)tid, on ? SCHED_BATCH : SCHED_OTHER, &p) == 0) n++;
    else if (errno != ESRCH && !err) err = -errno; /* ESRCH: the thread exited meanwhile */
  }
  closedir(d);
  return err ? err : n;
}

/* ---- UDP (udp.c) ---- */

int c1m_sys_udp_socket(int family) {
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  return fd < 0 ? -errno : fd;
}

int c1m_sys_setsockopt(int fd, int level, int opt, const void *val, socklen_t len) {
  return setsockopt(fd, level, opt, val, len) < 0 ? -errno : 0;
}

int c1m_sys_recvmmsg(int fd, struct mmsghdr *msgs, unsigned n, int flags) {
  for (;;) {
    int got = recvmmsg(fd, msgs, n, flags | MSG_DONTWAIT, NULL);
    if (got >= 0) return got;
    if (errno != EINTR) return -errno;
  }
}

int c1m_sys_sendmmsg(int fd, struct mmsghdr *msgs, unsigned n) {
  for (;;) {
    int sent = sendmmsg(fd, msgs, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent >= 0) return sent;
    if (errno != EINTR) return -errno;
  }
}
