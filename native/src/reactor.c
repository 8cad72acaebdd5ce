/*
 * The epoll reactor: accept, read, write, close, timeouts, fd hand-off between reactors.
 *
 * Hot path (one poll): epoll_wait -> per ready fd: accept4 in a batch, or one read of at most
 * read_budget bytes into the receive area (behind any bytes the connection left unconsumed),
 * or write out pending bytes -> event records. JS handles the batch; after_batch() then keeps
 * unconsumed bytes per connection and applies the staged commands, gathering consecutive writes
 * to one connection into one sendmsg.
 *
 * Invariants:
 * - Connections are edge-triggered (EPOLLET | EPOLLIN | EPOLLRDHUP) and EPOLLOUT, once added,
 *   stays: an outbound connection has it from the start (its connect completes with an EPOLLOUT
 *   edge), an accepted one gets it the first time out holds bytes. So a connection costs one
 *   epoll_ctl in its life, two if it ever backs up. An EPOLLIN edge sets RREADY; a read
 *   clears it only when the socket is drained (EAGAIN, EOF, or fewer bytes than asked while the
 *   peer's FIN is not pending). A connection that is readable but not read this poll (paused,
 *   receive area full, the read filled its budget) keeps RREADY; when it may read again it goes
 *   on the ready list, served at the start of the next poll. Harvested events the event array
 *   had no room for are carried to the next poll. Either wakes the reactor through its eventfd.
 * - Writes go on until the kernel takes everything or says EAGAIN, so an EPOLLOUT edge always
 *   follows unsent bytes.
 * - The epoll data carries fd and gen; an event for an older gen is ignored.
 * - Events produced outside poll() go to the deferred queue and an eventfd write wakes the
 *   reactor, so JS always learns of a close exactly once, in a later batch.
 */
#define _GNU_SOURCE
#include "c1m.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAX_LISTENERS 16
#define MAX_TARGETS 64
#define MAX_REACTORS 1024
#define ACCEPT_BATCH 256
#define POLL_EVENTS 1024
#define IOV_MAX_GATHER 64
#define RECV_ALIGN 8
#define BACKOFF_MAX_MS 2000
#define ERROR_QUEUE 16
/* epoll data: fd in the low word, gen (or a tag) in the high word. */
#define TAG_EVENTFD 0xFFFFFFF0u
#define TAG_TIMERFD 0xFFFFFFF1u
#define TAG_LISTENER 0xFFFFFFF2u
/* epoll interest of every connection; EPOLLOUT is added to it (see the invariants) */
#define CONN_EVENTS (EPOLLIN | EPOLLRDHUP | EPOLLET)

struct c1m_buf {
  uint8_t *in, *out; /* malloc'd, NULL when empty */
  uint32_t in_cap, out_cap;
  uint32_t out_off; /* bytes of out already sent */
};

typedef struct listener {
  int fd;
  int paused;
  uint32_t resume_tick;
  uint32_t backoff_ms;
  int targets[MAX_TARGETS];
  int ntargets;
  int policy;
  uint32_t rr;
} listener_t;

struct c1m_reactor {
  c1m_config_t cfg;
  int epfd, evfd, tfd, id;
  c1m_slot_t *slots;
  uint8_t *recv;
  uint32_t recv_cap, recv_used;
  c1m_event_t *ev;
  uint32_t ev_cap, nev;
  uint8_t *send;
  uint32_t send_cap;
  int32_t *ctl;
  uint32_t tick, ntimed, max_fd;
  uint32_t nconns; /* atomic: read by acceptors on other threads (least-connections) */
  listener_t listeners[MAX_LISTENERS];
  int nlisteners;
  /* events produced outside poll() */
  c1m_event_t *deferred;
  uint32_t ndeferred, deferred_cap;
  /* fds handed to this reactor by an acceptor on another thread */
  pthread_mutex_t hq_lock;
  int *hq;
  uint32_t hq_len, hq_cap;
  /* connections to read at the next poll (edge seen, not drained): tag(fd, gen) each */
  uint64_t *ready;
  uint32_t nready, ready_cap;
  /* harvested epoll events the last poll had no room for */
  struct epoll_event carry[POLL_EVENTS];
  uint32_t ncarry;
  int wake_pending; /* our own eventfd write not yet read back */
  /* reactor-level errors for the next batch (C1M_EV_ERROR) */
  c1m_event_t errs[ERROR_QUEUE];
  uint32_t nerrs;
};

/* ---- registry: reactors by id, for hand-off across threads ---- */

static pthread_mutex_t g_reg_lock = PTHREAD_MUTEX_INITIALIZER;
static c1m_reactor_t *g_reg[MAX_REACTORS];

static int registry_add(c1m_reactor_t *r) {
  int id = -ENOSPC;
  pthread_mutex_lock(&g_reg_lock);
  for (int i = 0; i < MAX_REACTORS; i++) {
    if (!g_reg[i]) {
      g_reg[i] = r;
      id = i;
      break;
    }
  }
  pthread_mutex_unlock(&g_reg_lock);
  return id;
}

static void registry_remove(c1m_reactor_t *r) {
  pthread_mutex_lock(&g_reg_lock);
  if (r->id >= 0 && g_reg[r->id] == r) g_reg[r->id] = NULL;
  pthread_mutex_unlock(&g_reg_lock);
}

/* ---- events ---- */

static c1m_event_t *ev_push(c1m_reactor_t *r) { return &r->ev[r->nev++]; }

static void emit(c1m_reactor_t *r, int type, int fd, uint32_t gen, int32_t a, int32_t b) {
  *ev_push(r) = (c1m_event_t){.kind = type, .fd = fd, .gen = (int32_t)gen, .a = a, .b = b};
}

static void report(c1m_reactor_t *r, int what, int fd, int err, int32_t detail);

/* Make the next epoll_wait return (through the eventfd), once until it is read back. */
static void wake(c1m_reactor_t *r) {
  if (r->wake_pending) return;
  int rc = c1m_sys_eventfd_write(r->evfd);
  if (rc < 0) report(r, C1M_E_WAKE, r->evfd, rc, 0);
  else r->wake_pending = 1;
}

/* A reactor-level failure (see C1M_E_*): counted, and reported as an ERROR record at the start
 * of the next batch; only by the count when the queue is full. */
static void report(c1m_reactor_t *r, int what, int fd, int err, int32_t detail) {
  r->ctl[C1M_CTL_ERRORS]++;
  if (r->nerrs == ERROR_QUEUE) {
    r->ctl[C1M_CTL_ERRORS_LOST]++;
    return;
  }
  uint32_t gen = fd >= 0 && (uint32_t)fd < r->cfg.nslots ? r->slots[fd].gen : 0;
  r->errs[r->nerrs++] = (c1m_event_t){.kind = C1M_EV_ERROR, .fd = fd, .gen = (int32_t)gen, .a = what, .b = err, .c = detail};
  if (what != C1M_E_WAKE) wake(r);
}

/* Queue an event for the next batch and wake the reactor. */
static void defer(c1m_reactor_t *r, int type, int fd, uint32_t gen, int32_t a, int32_t b) {
  if (r->ndeferred == r->deferred_cap) {
    uint32_t cap = r->deferred_cap ? r->deferred_cap * 2 : 256;
    c1m_event_t *d = realloc(r->deferred, (size_t)cap * sizeof *d);
    if (!d) {
      report(r, C1M_E_EVENT_LOST, fd, -ENOMEM, type);
      return;
    }
    r->deferred = d;
    r->deferred_cap = cap;
  }
  r->deferred[r->ndeferred++] = (c1m_event_t){.kind = type, .fd = fd, .gen = (int32_t)gen, .a = a, .b = b};
  wake(r);
}

/* ---- slots and buffers ---- */

static inline uint64_t tag(int fd, uint32_t gen) { return (uint64_t)(uint32_t)fd | ((uint64_t)gen << 32); }

static c1m_buf_t *bufs_of(c1m_slot_t *s) {
  if (!s->bufs) s->bufs = calloc(1, sizeof(c1m_buf_t));
  return s->bufs;
}

static void bufs_trim(c1m_slot_t *s) {
  c1m_buf_t *b = s->bufs;
  if (b && !b->in && !b->out) {
    free(b);
    s->bufs = NULL;
  }
}

static void set_timed(c1m_reactor_t *r, c1m_slot_t *s, uint32_t ticks) {
  if (s->timeout_ticks && !ticks) r->ntimed--;
  if (!s->timeout_ticks && ticks) r->ntimed++;
  s->timeout_ticks = ticks;
  s->deadline = ticks ? r->tick + ticks : 0;
}

/* Whether the reactor reads this connection: established, not paused, no EOF, not closing. */
static inline int can_read(const c1m_slot_t *s) {
  return (s->flags & (C1M_F_OPEN | C1M_F_PAUSED | C1M_F_EOF | C1M_F_CLOSING)) == C1M_F_OPEN;
}

/* Read fd at the start of the next poll: its edge has come and gone. */
static void ready_push(c1m_reactor_t *r, int fd, c1m_slot_t *s) {
  if (s->flags & C1M_F_QUEUED) return;
  if (r->nready == r->ready_cap) {
    uint32_t cap = r->ready_cap ? r->ready_cap * 2 : 256;
    uint64_t *q = realloc(r->ready, (size_t)cap * sizeof *q);
    if (!q) {
      /* Served at its next edge instead (more bytes, FIN or reset from the peer). */
      report(r, C1M_E_READY_LOST, fd, -ENOMEM, 0);
      return;
    }
    r->ready = q;
    r->ready_cap = cap;
  }
  r->ready[r->nready++] = tag(fd, s->gen);
  s->flags |= C1M_F_QUEUED;
  wake(r);
}

/* A connection that may read again (resumed): bytes that arrived meanwhile brought no new edge. */
static void resume_read(c1m_reactor_t *r, int fd, c1m_slot_t *s) {
  if (can_read(s) && (s->flags & C1M_F_RREADY)) ready_push(r, fd, s);
}

/* Close a connection now and queue its CLOSE event. reason == C1M_R_LOCAL on a connection
 * whose peer already sent FIN reports C1M_R_END (a clean close on both sides). */
static void conn_close(c1m_reactor_t *r, int fd, int reason, int err, int in_poll) {
  c1m_slot_t *s = &r->slots[fd];
  uint32_t gen = s->gen;
  if (reason == C1M_R_LOCAL && (s->flags & C1M_F_TIMED_OUT)) reason = C1M_R_TIMEOUT;
  else if (reason == C1M_R_LOCAL && (s->flags & C1M_F_EOF) && !(s->flags & C1M_F_PAUSED)) reason = C1M_R_END;
  if (reason == C1M_R_HANDLER || reason == C1M_R_SHUTDOWN || reason == C1M_R_INBOUND_LIMIT ||
      reason == C1M_R_SLOW_CONSUMER) {
    /* Abort: the peer sees a reset, and no FIN_WAIT state lingers with unsent bytes. */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  if (s->bufs) {
    free(s->bufs->in);
    free(s->bufs->out);
    free(s->bufs);
    s->bufs = NULL;
  }
  set_timed(r, s, 0);
  s->out_len = s->in_len = 0;
  s->flags = 0;
  s->gen = (gen + 1) & C1M_GEN_MASK;
  int rc = c1m_sys_close(fd);
  if (rc < 0) report(r, C1M_E_CLOSE, fd, rc, 0);
  __atomic_sub_fetch(&r->nconns, 1, __ATOMIC_RELAXED);
  r->ctl[C1M_CTL_CONNS] = (int32_t)r->nconns;
  if (in_poll) emit(r, C1M_EV_CLOSE, fd, gen, reason, err);
  else defer(r, C1M_EV_CLOSE, fd, gen, reason, err);
}

/* Register a new connected (or connecting) socket in slot fd. */
static int conn_add(c1m_reactor_t *r, int fd, uint32_t flags) {
  if ((uint32_t)fd >= r->cfg.nslots) return -EMFILE;
  c1m_slot_t *s = &r->slots[fd];
  s->flags = flags | ((flags & C1M_F_CONNECTING) ? C1M_F_OUT_ARMED : 0);
  s->out_len = s->in_len = 0;
  s->bufs = NULL;
  s->timeout_ticks = 0;
  s->deadline = 0;
  /* Bytes already queued on an accepted or handed-off socket are reported by the ADD itself. An
   * accepted socket leaves EPOLLOUT out: it is writable at once, and that report is wasted work. */
  uint32_t events = CONN_EVENTS | ((flags & C1M_F_CONNECTING) ? EPOLLOUT : 0);
  int rc = c1m_sys_epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, events, tag(fd, s->gen));
  if (rc < 0) {
    s->flags = 0;
    return rc;
  }
  /* TCP_NODELAY waits for the first write (conn_writev): Nagle can only hold back data sent
   * while earlier data is unacknowledged, so setting it then is the same for the peer, and an
   * idle connection never pays the syscall (one of the few per accept or connect). */
  if (r->cfg.nodelay) s->flags |= C1M_F_NODELAY;
  if (r->cfg.idle_ticks) set_timed(r, s, r->cfg.idle_ticks);
  if ((uint32_t)fd > r->max_fd) {
    r->max_fd = (uint32_t)fd;
    r->ctl[C1M_CTL_MAX_FD] = (int32_t)fd;
  }
  __atomic_add_fetch(&r->nconns, 1, __ATOMIC_RELAXED);
  r->ctl[C1M_CTL_CONNS] = (int32_t)r->nconns;
  return 0;
}

/* ---- output ---- */

static void out_done(c1m_reactor_t *r, int fd, c1m_slot_t *s);

/* Every write to a connection's socket goes through here. Before the first one, the
 * TCP_NODELAY that conn_add deferred; a failure there leaves Nagle on, which delays but loses
 * nothing (the write itself reports a dead socket). */
static inline ssize_t conn_writev(int fd, c1m_slot_t *s, const struct iovec *iov, int cnt) {
  if (s->flags & C1M_F_NODELAY) {
    s->flags &= ~C1M_F_NODELAY;
    c1m_sys_set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
  }
  return c1m_sys_writev(fd, iov, cnt);
}

/* The part of iov[0..cnt) after its first `skip` bytes, into rest (room for cnt). Returns its count. */
static int iov_skip(struct iovec *rest, const struct iovec *iov, int cnt, size_t skip) {
  int k = 0;
  for (int i = 0; i < cnt; i++) {
    size_t l = iov[i].iov_len;
    if (skip >= l) {
      skip -= l;
      continue;
    }
    rest[k].iov_base = (uint8_t *)iov[i].iov_base + skip;
    rest[k].iov_len = l - skip;
    skip = 0;
    k++;
  }
  return k;
}

/* Write iov (total bytes, at most IOV_MAX_GATHER entries) until the kernel has taken all of it
 * or says EAGAIN: connections are edge-triggered, and an EPOLLOUT edge is promised only once
 * the send buffer has run out of room. Returns the bytes taken, -EAGAIN when none, or -errno. */
static ssize_t conn_write_all(int fd, c1m_slot_t *s, const struct iovec *iov, int cnt, size_t total) {
  ssize_t n = conn_writev(fd, s, iov, cnt);
  if (n <= 0 || (size_t)n >= total) return n;
  size_t done = (size_t)n;
  struct iovec rest[IOV_MAX_GATHER];
  while (done < total) { /* partial: the rest, from where the kernel stopped */
    n = conn_writev(fd, s, rest, iov_skip(rest, iov, cnt, done));
    if (n == -EAGAIN || n == 0) break;
    if (n < 0) return n;
    done += (size_t)n;
  }
  return (ssize_t)done;
}

/* Send iov (total bytes) to a connection, keeping what the kernel does not take. */
static void conn_send(c1m_reactor_t *r, int fd, c1m_slot_t *s, struct iovec *iov, int cnt, size_t total,
                      int want_drain) {
  size_t sent = 0;
  if (s->out_len == 0 && (s->flags & C1M_F_OPEN)) {
    ssize_t n = conn_write_all(fd, s, iov, cnt, total);
    if (n < 0 && n != -EAGAIN) {
      conn_close(r, fd, C1M_R_ERROR, (int)n, 0);
      return;
    }
    sent = n > 0 ? (size_t)n : 0;
  }
  if (sent < total) {
    size_t rest = total - sent;
    if ((uint64_t)s->out_len + rest > r->cfg.max_out) {
      conn_close(r, fd, C1M_R_SLOW_CONSUMER, 0, 0);
      return;
    }
    c1m_buf_t *b = bufs_of(s);
    if (!b) {
      conn_close(r, fd, C1M_R_ERROR, -ENOMEM, 0);
      return;
    }
    uint32_t need = b->out_off + s->out_len + (uint32_t)rest;
    if (need > b->out_cap) {
      if (b->out_off) { /* compact first */
        memmove(b->out, b->out + b->out_off, s->out_len);
        b->out_off = 0;
        need = s->out_len + (uint32_t)rest;
      }
      if (need > b->out_cap) {
        uint32_t cap = b->out_cap ? b->out_cap : 4096;
        while (cap < need) cap = cap > 0x7FFFFFFFu / 2 ? need : cap * 2;
        uint8_t *p = realloc(b->out, cap);
        if (!p) {
          conn_close(r, fd, C1M_R_ERROR, -ENOMEM, 0);
          return;
        }
        b->out = p;
        b->out_cap = cap;
      }
    }
    /* copy the unsent tail of iov */
    uint8_t *dst = b->out + b->out_off + s->out_len;
    struct iovec tail[IOV_MAX_GATHER];
    for (int i = 0, k = iov_skip(tail, iov, cnt, sent); i < k; i++) {
      memcpy(dst, tail[i].iov_base, tail[i].iov_len);
      dst += tail[i].iov_len;
    }
    s->out_len += (uint32_t)rest; /* sent on an EPOLLOUT edge (or when the connect completes) */
    if (s->out_len > r->cfg.high_water) s->flags |= C1M_F_DRAIN;
    if (!(s->flags & C1M_F_OUT_ARMED)) {
      /* If room came back since the EAGAIN, the MOD reports it: no edge is missed. */
      int rc = c1m_sys_epoll_ctl(r->epfd, EPOLL_CTL_MOD, fd, CONN_EVENTS | EPOLLOUT, tag(fd, s->gen));
      if (rc < 0) {
        conn_close(r, fd, C1M_R_ERROR, rc, 0);
        return;
      }
      s->flags |= C1M_F_OUT_ARMED;
    }
  }
  if (want_drain) {
    if (s->out_len == 0) defer(r, C1M_EV_DRAIN, fd, s->gen, 0, 0);
    else s->flags |= C1M_F_DRAIN;
  }
}

/* out drained: free its buffer, then finish a pending shutdown or close. */
static void out_done(c1m_reactor_t *r, int fd, c1m_slot_t *s) {
  if (s->bufs && s->bufs->out) {
    free(s->bufs->out);
    s->bufs->out = NULL;
    s->bufs->out_cap = s->bufs->out_off = 0;
    bufs_trim(s);
  }
  if (s->flags & C1M_F_CLOSING) {
    conn_close(r, fd, C1M_R_LOCAL, 0, 1);
    return;
  }
  if (s->flags & C1M_F_SHUT_PEND) {
    shutdown(fd, SHUT_WR);
    s->flags = (s->flags & ~C1M_F_SHUT_PEND) | C1M_F_SHUT_DONE;
  }
  if (s->flags & C1M_F_DRAIN) {
    s->flags &= ~C1M_F_DRAIN;
    emit(r, C1M_EV_DRAIN, fd, s->gen, 0, 0);
  }
}

static void on_writable(c1m_reactor_t *r, int fd, c1m_slot_t *s) {
  if (s->flags & C1M_F_CONNECTING) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err) {
      conn_close(r, fd, C1M_R_CONNECT_FAILED, -err, 1);
      return;
    }
    s->flags = (s->flags & ~C1M_F_CONNECTING) | C1M_F_OPEN;
    emit(r, C1M_EV_OPEN, fd, s->gen, -1, 0);
    /* a close or shutdown asked for while connecting, with nothing to send first */
    if (s->out_len == 0 && (s->flags & (C1M_F_CLOSING | C1M_F_SHUT_PEND))) {
      out_done(r, fd, s);
      return;
    }
  }
  if (s->out_len == 0) return;
  c1m_buf_t *b = s->bufs;
  struct iovec iov = {.iov_base = b->out + b->out_off, .iov_len = s->out_len};
  ssize_t n = conn_write_all(fd, s, &iov, 1, s->out_len);
  if (n == -EAGAIN) return;
  if (n < 0) {
    conn_close(r, fd, C1M_R_ERROR, (int)n, 1);
    return;
  }
  s->out_len -= (uint32_t)n;
  b->out_off += (uint32_t)n;
  if (s->out_len == 0) out_done(r, fd, s);
}

/* ---- input ---- */

/* Read once into the receive area behind any unconsumed bytes (a connection with RREADY that
 * can read). Fairness: one read of at most read_budget bytes per connection per poll; one that
 * may have more, or found the area too full, goes on the ready list for the next poll. */
static void on_readable(c1m_reactor_t *r, int fd, c1m_slot_t *s) {
  uint32_t pend = s->in_len;
  uint32_t off = r->recv_used;
  /* Read already this poll (from the ready list, then an edge): the bytes it left unconsumed
   * are kept only after the batch, so a second DATA record would lose them. */
  if ((s->flags & C1M_F_SERVED) || off + pend + 512 > r->recv_cap) {
    ready_push(r, fd, s);
    return;
  }
  uint32_t room = r->recv_cap - off - pend;
  if (room > r->cfg.read_budget) room = r->cfg.read_budget;
  ssize_t n = c1m_sys_read(fd, r->recv + off + pend, room);
  if (n == -EAGAIN) {
    s->flags &= ~C1M_F_RREADY;
    return;
  }
  if (n < 0) {
    conn_close(r, fd, C1M_R_ERROR, (int)n, 1);
    return;
  }
  if (n == 0) {
    s->flags = (s->flags | C1M_F_EOF) & ~C1M_F_RREADY;
    if (s->flags & C1M_F_SHUT_DONE) { /* both directions done */
      conn_close(r, fd, C1M_R_END, 0, 1);
      return;
    }
    emit(r, C1M_EV_END, fd, s->gen, 0, 0);
    return;
  }
  /* Fewer bytes than asked: the socket was empty, and bytes arriving later bring a new edge.
   * Unless the FIN is already in: then the next read returns 0 and no edge announces it. */
  if ((uint32_t)n < room && !(s->flags & C1M_F_RDHUP)) s->flags &= ~C1M_F_RREADY;
  else ready_push(r, fd, s);
  if (pend) { /* present kept bytes followed by the new ones */
    memcpy(r->recv + off, s->bufs->in, pend);
    free(s->bufs->in);
    s->bufs->in = NULL;
    s->bufs->in_cap = 0;
    s->in_len = 0;
    bufs_trim(s);
  }
  uint32_t len = pend + (uint32_t)n;
  r->recv_used = (off + len + RECV_ALIGN - 1) & ~(uint32_t)(RECV_ALIGN - 1);
  if (s->timeout_ticks) s->deadline = r->tick + s->timeout_ticks;
  /* c = consumed: all of it unless JS writes back fewer */
  *ev_push(r) = (c1m_event_t){.kind = C1M_EV_DATA, .fd = fd, .gen = (int32_t)s->gen, .a = (int32_t)off,
                              .b = (int32_t)len, .c = (int32_t)len};
  s->flags |= C1M_F_SERVED;
}

/* Keep the bytes JS did not consume from a DATA record. */
static void keep_unconsumed(c1m_reactor_t *r, const c1m_event_t *e) {
  int fd = e->fd;
  c1m_slot_t *s = &r->slots[fd];
  uint32_t len = (uint32_t)e->b, used = (uint32_t)e->c;
  if (used >= len || s->gen != (uint32_t)e->gen || !(s->flags & C1M_F_OPEN)) return;
  uint32_t rest = len - used;
  if (rest > r->cfg.max_in) {
    conn_close(r, fd, C1M_R_INBOUND_LIMIT, 0, 0);
    return;
  }
  c1m_buf_t *b = bufs_of(s);
  uint8_t *p = b ? malloc(rest) : NULL;
  if (!p) {
    if (b) bufs_trim(s);
    conn_close(r, fd, C1M_R_ERROR, -ENOMEM, 0);
    return;
  }
  memcpy(p, r->recv + e->a + used, rest);
  b->in = p;
  b->in_cap = rest;
  s->in_len = rest;
}

/* ---- accept and hand-off ---- */

static uint32_t hash_peer(const struct sockaddr_storage *ss) {
  const uint8_t *p;
  size_t n;
  if (ss->ss_family == AF_INET6) {
    p = (const uint8_t *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
    n = 16;
  } else {
    p = (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr;
    n = 4;
  }
  uint32_t h = 2166136261u; /* FNV-1a over the peer address */
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

/* Give fd to the reactor with registry id `target`. Returns -errno if it is gone. */
static int handoff(int target, int fd) {
  int rc = -ENOENT;
  pthread_mutex_lock(&g_reg_lock);
  c1m_reactor_t *t = (target >= 0 && target < MAX_REACTORS) ? g_reg[target] : NULL;
  if (t) {
    pthread_mutex_lock(&t->hq_lock);
    if (t->hq_len == t->hq_cap) {
      uint32_t cap = t->hq_cap ? t->hq_cap * 2 : 256;
      int *q = realloc(t->hq, cap * sizeof(int));
      if (q) {
        t->hq = q;
        t->hq_cap = cap;
      }
    }
    if (t->hq_len < t->hq_cap) {
      t->hq[t->hq_len++] = fd;
      rc = 0;
    } else {
      rc = -ENOMEM;
    }
    pthread_mutex_unlock(&t->hq_lock);
    /* A failed wake-up (never seen: only EAGAIN, a saturated counter, is plausible) leaves the
     * fd queued until the target's next wake-up; the hand-off itself has succeeded. */
    if (rc == 0) c1m_sys_eventfd_write(t->evfd);
  }
  pthread_mutex_unlock(&g_reg_lock);
  return rc;
}

static int pick_target(listener_t *l, const struct sockaddr_storage *peer) {
  if (l->policy == C1M_LB_HASH) return l->targets[hash_peer(peer) % (uint32_t)l->ntargets];
  if (l->policy == C1M_LB_LEAST_CONN) {
    int best = l->targets[0];
    uint32_t best_n = UINT32_MAX;
    pthread_mutex_lock(&g_reg_lock);
    for (int i = 0; i < l->ntargets; i++) {
      c1m_reactor_t *t = g_reg[l->targets[i]];
      uint32_t n = t ? __atomic_load_n(&t->nconns, __ATOMIC_RELAXED) : UINT32_MAX;
      if (n < best_n) best_n = n, best = l->targets[i];
    }
    pthread_mutex_unlock(&g_reg_lock);
    return best;
  }
  return l->targets[l->rr++ % (uint32_t)l->ntargets];
}

/* An accepted (or handed-off) connection is registered: an OPEN record, or, when JS has no use
 * for one (no onOpen), a count JS reads when it next looks: accepts alone then cost no crossing. */
static void accepted(c1m_reactor_t *r, int fd, int32_t from) {
  if (r->cfg.quiet_open) r->ctl[C1M_CTL_QUIET_OPENS]++;
  else emit(r, C1M_EV_OPEN, fd, r->slots[fd].gen, from, 0);
}

static void on_acceptable(c1m_reactor_t *r, listener_t *l) {
  for (int i = 0; i < ACCEPT_BATCH; i++) {
    if (r->nev + 2 > r->ev_cap) return; /* room for OPEN (+ an error); level-triggered: back next poll */
    struct sockaddr_storage peer;
    int fd = c1m_sys_accept(l->fd, &peer);
    if (fd == -EAGAIN) break;
    if (fd < 0) {
      if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
        /* Out of fds or memory: the pending connection stays in the backlog and epoll would
         * report it at once again. Stop watching, retry with exponential backoff. */
        c1m_sys_epoll_ctl(r->epfd, EPOLL_CTL_DEL, l->fd, 0, 0);
        l->paused = 1;
        l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : r->cfg.tick_ms;
        if (l->backoff_ms > BACKOFF_MAX_MS) l->backoff_ms = BACKOFF_MAX_MS;
        l->resume_tick = r->tick + (l->backoff_ms + r->cfg.tick_ms - 1) / r->cfg.tick_ms;
        r->ctl[C1M_CTL_ACCEPT_PAUSES]++;
        emit(r, C1M_EV_ACCEPT_ERROR, l->fd, 0, fd, 1);
        return;
      }
      /* ECONNABORTED, EPROTO, EPERM (firewall): this connection only. */
      emit(r, C1M_EV_ACCEPT_ERROR, l->fd, 0, fd, 0);
      continue;
    }
    l->backoff_ms = 0;
    if (l->ntargets) {
      /* A target whose reactor is gone (its worker thread died) is skipped: the connection
       * goes to the next live one. Only when none is left is it refused. */
      int first = pick_target(l, &peer), rc = handoff(first, fd);
      for (int j = 0; rc == -ENOENT && j < l->ntargets; j++)
        if (l->targets[j] != first) rc = handoff(l->targets[j], fd);
      if (rc < 0) {
        c1m_sys_close(fd);
        emit(r, C1M_EV_ACCEPT_ERROR, l->fd, 0, rc, 0);
      }
      continue;
    }
    int rc = conn_add(r, fd, C1M_F_OPEN);
    if (rc < 0) {
      c1m_sys_close(fd);
      emit(r, C1M_EV_ACCEPT_ERROR, l->fd, 0, rc, 0);
      continue;
    }
    accepted(r, fd, l->fd);
  }
}

static void drain_handoffs(c1m_reactor_t *r) {
  int rc = c1m_sys_counter_read(r->evfd);
  if (rc < 0 && rc != -EAGAIN) report(r, C1M_E_WAKE_READ, r->evfd, rc, 0);
  r->wake_pending = 0;
  pthread_mutex_lock(&r->hq_lock);
  uint32_t n = r->hq_len, taken = 0;
  for (; taken < n && r->nev + 1 < r->ev_cap; taken++) {
    int fd = r->hq[taken];
    int rc = conn_add(r, fd, C1M_F_OPEN);
    if (rc < 0) {
      c1m_sys_close(fd);
      emit(r, C1M_EV_ACCEPT_ERROR, -1, 0, rc, 0);
      continue;
    }
    accepted(r, fd, -2);
  }
  memmove(r->hq, r->hq + taken, (n - taken) * sizeof(int));
  r->hq_len = n - taken;
  pthread_mutex_unlock(&r->hq_lock);
  if (r->hq_len) wake(r); /* event array full: come back next poll */
}

/* ---- timers ---- */

static void on_tick(c1m_reactor_t *r) {
  int exp = c1m_sys_counter_read(r->tfd);
  if (exp <= 0) { /* -EAGAIN: a spurious wake-up */
    if (exp < 0 && exp != -EAGAIN) report(r, C1M_E_TIMER_READ, r->tfd, exp, 0);
    return;
  }
  r->tick += (uint32_t)exp;
  r->ctl[C1M_CTL_TICK] = (int32_t)r->tick;
  for (int i = 0; i < r->nlisteners; i++) {
    listener_t *l = &r->listeners[i];
    if (l->paused && (int32_t)(r->tick - l->resume_tick) >= 0) {
      if (c1m_sys_epoll_ctl(r->epfd, EPOLL_CTL_ADD, l->fd, EPOLLIN, tag(l->fd, TAG_LISTENER)) == 0) l->paused = 0;
    }
  }
  if (!r->ntimed) return;
  for (uint32_t fd = 0; fd <= r->max_fd; fd++) {
    c1m_slot_t *s = &r->slots[fd];
    if (!s->timeout_ticks || (int32_t)(r->tick - s->deadline) < 0) continue;
    if (r->nev + 1 > r->ev_cap) return; /* rest on the next tick */
    if (s->flags & C1M_F_CLOSING) { /* a graceful close that never drained */
      conn_close(r, (int)fd, C1M_R_TIMEOUT, 0, 1);
      continue;
    }
    set_timed(r, s, 0);
    emit(r, C1M_EV_TIMEOUT, (int)fd, s->gen, 0, 0);
  }
}

/* ---- the poll ---- */

/* One harvested (or carried) epoll event of a connection. */
static void conn_event(c1m_reactor_t *r, int fd, uint32_t gen, uint32_t e) {
  c1m_slot_t *s = &r->slots[fd];
  if (s->gen != gen || !(s->flags & (C1M_F_OPEN | C1M_F_CONNECTING))) return;
  if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s->flags |= C1M_F_RREADY;
  if (e & (EPOLLRDHUP | EPOLLHUP)) s->flags |= C1M_F_RDHUP;
  if ((e & EPOLLERR) && !(s->flags & C1M_F_CONNECTING)) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
      conn_close(r, fd, C1M_R_ERROR, -err, 1);
      return;
    }
  }
  if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
    if ((s->flags & C1M_F_CONNECTING) || s->out_len) {
      on_writable(r, fd, s);
      if (s->gen != gen || !s->flags) return;
    }
  }
  if (can_read(s)) {
    if (s->flags & C1M_F_RREADY) on_readable(r, fd, s);
  } else if ((e & EPOLLHUP) && !(s->flags & C1M_F_CONNECTING) && !s->out_len) {
    /* both directions gone while we were not reading (paused or after EOF) */
    conn_close(r, fd, (s->flags & C1M_F_EOF) ? C1M_R_END : C1M_R_ERROR, (s->flags & C1M_F_EOF) ? 0 : -EPIPE, 1);
  }
}

/* Dispatch harvested events from evs[0..n); those the event array has no room for are carried
 * to the next poll (edge-triggered: epoll will not report them again). Returns how many ran. */
static int dispatch(c1m_reactor_t *r, const struct epoll_event *evs, int n) {
  int i = 0;
  for (; i < n; i++) {
    int fd = (int)(uint32_t)evs[i].data.u64;
    uint32_t t = (uint32_t)(evs[i].data.u64 >> 32);
    if (r->nev + 2 > r->ev_cap) break;
    if (t == TAG_EVENTFD) {
      drain_handoffs(r);
    } else if (t == TAG_TIMERFD) {
      on_tick(r);
    } else if (t == TAG_LISTENER) {
      for (int j = 0; j < r->nlisteners; j++)
        if (r->listeners[j].fd == fd && !r->listeners[j].paused) on_acceptable(r, &r->listeners[j]);
    } else {
      conn_event(r, fd, t, evs[i].events);
    }
  }
  return i;
}

static int poll_once(c1m_reactor_t *r) {
  r->nev = 0;
  r->recv_used = 0;
  /* reactor-level errors first: the queue is small, and the array always has room for it */
  if (r->nerrs) {
    memcpy(r->ev, r->errs, r->nerrs * sizeof r->errs[0]);
    r->nev = r->nerrs;
    r->nerrs = 0;
  }
  /* deferred events first: they happened before anything this poll finds */
  uint32_t nd = r->ndeferred < r->ev_cap / 2 ? r->ndeferred : r->ev_cap / 2;
  if (nd) {
    memcpy(r->ev + r->nev, r->deferred, (size_t)nd * sizeof *r->ev);
    memmove(r->deferred, r->deferred + nd, (size_t)(r->ndeferred - nd) * sizeof *r->deferred);
    r->ndeferred -= nd;
    r->nev += nd;
  }
  /* then what the last poll harvested but had no room for */
  if (r->ncarry) {
    int done = dispatch(r, r->carry, (int)r->ncarry);
    r->ncarry -= (uint32_t)done;
    memmove(r->carry, r->carry + done, r->ncarry * sizeof r->carry[0]);
  }
  /* then connections whose last read left bytes (or a FIN) behind; those re-queued while
   * serving these wait for the next poll */
  uint32_t nr = r->nready, i = 0;
  for (; i < nr && r->nev + 2 <= r->ev_cap; i++) {
    int fd = (int)(uint32_t)r->ready[i];
    c1m_slot_t *s = &r->slots[fd];
    if (s->gen != (uint32_t)(r->ready[i] >> 32) || !(s->flags & C1M_F_QUEUED)) continue;
    s->flags &= ~C1M_F_QUEUED;
    if (can_read(s) && (s->flags & C1M_F_RREADY)) on_readable(r, fd, s);
  }
  r->nready -= i;
  memmove(r->ready, r->ready + i, (size_t)r->nready * sizeof r->ready[0]);

  struct epoll_event evs[POLL_EVENTS];
  int max = (int)((r->ev_cap - r->nev) / 2);
  if (max > POLL_EVENTS - (int)r->ncarry) max = POLL_EVENTS - (int)r->ncarry;
  if (max < 1) return (int)r->nev;
  int n = c1m_sys_epoll_wait(r->epfd, evs, max);
  if (n < 0) {
    report(r, C1M_E_POLL, r->epfd, n, 0);
    return (int)r->nev;
  }
  int done = dispatch(r, evs, n);
  if (done < n) {
    memcpy(r->carry + r->ncarry, evs + done, (size_t)(n - done) * sizeof evs[0]);
    r->ncarry += (uint32_t)(n - done);
  }
  return (int)r->nev;
}

int c1m_reactor_poll(c1m_reactor_t *r) {
  int n = poll_once(r);
  /* Work left for the next poll: wake again at once, not at the next tick. This runs after
   * epoll_wait, which may have consumed the eventfd's count in drain_handoffs(). */
  if (r->ndeferred || r->ncarry || r->nready || r->nerrs) wake(r);
  return n;
}

/* ---- commands from JS ---- */

static c1m_slot_t *live(c1m_reactor_t *r, int fd, uint32_t gen) {
  if (fd < 0 || (uint32_t)fd >= r->cfg.nslots) return NULL;
  c1m_slot_t *s = &r->slots[fd];
  if (s->gen != gen || !(s->flags & (C1M_F_OPEN | C1M_F_CONNECTING))) return NULL;
  return s;
}

static inline uint32_t pad8(uint32_t n) { return (n + C1M_CMD_ALIGN - 1) & ~(C1M_CMD_ALIGN - 1); }

static int writable_state(const c1m_slot_t *s) {
  return !(s->flags & (C1M_F_CLOSING | C1M_F_SHUT_PEND | C1M_F_SHUT_DONE));
}

static void cmd_close(c1m_reactor_t *r, int fd, c1m_slot_t *s, uint32_t reason) {
  if (s->flags & C1M_F_CLOSING) return;
  if (reason == C1M_R_TIMEOUT) s->flags |= C1M_F_TIMED_OUT;
  if (s->out_len == 0 && !(s->flags & C1M_F_CONNECTING)) {
    conn_close(r, fd, C1M_R_LOCAL, 0, 0);
    return;
  }
  s->flags |= C1M_F_CLOSING;
  /* bound the wait for a peer that never reads */
  uint32_t ticks = (30000 + r->cfg.tick_ms - 1) / r->cfg.tick_ms;
  set_timed(r, s, ticks); /* reading stops (can_read); EPOLLOUT edges drain out */
}

void c1m_reactor_flush(c1m_reactor_t *r) {
  uint32_t used = (uint32_t)r->ctl[C1M_CTL_SEND_USED];
  if (used > r->send_cap) used = r->send_cap;
  uint32_t pos = 0;
  struct iovec iov[IOV_MAX_GATHER];
  while (pos + sizeof(c1m_cmd_t) <= used) {
    c1m_cmd_t c;
    memcpy(&c, r->send + pos, sizeof c);
    uint32_t op = c.op & C1M_OP_MASK;
    if (op == C1M_OP_BROADCAST) {
      uint32_t ids = (uint32_t)c.fd * (uint32_t)sizeof(c1m_id_t);
      uint32_t body = pos + sizeof c;
      if (body + ids + c.len > used) break;
      const c1m_id_t *id = (const c1m_id_t *)(r->send + body);
      for (int32_t i = 0; i < c.fd; i++) {
        int fd = (int)id[i].fd;
        c1m_slot_t *s = live(r, fd, id[i].gen);
        if (!s || !writable_state(s)) continue;
        iov[0].iov_base = r->send + body + ids;
        iov[0].iov_len = c.len;
        conn_send(r, fd, s, iov, 1, c.len, 0);
      }
      pos = body + pad8(ids + c.len);
      continue;
    }
    uint32_t plen = op == C1M_OP_WRITE ? c.len : 0;
    if (pos + sizeof c + plen > used) break;
    c1m_slot_t *s = live(r, c.fd, c.gen);
    if (op == C1M_OP_WRITE) {
      /* gather the following writes to the same connection into one sendmsg */
      int cnt = 0, want_drain = 0;
      size_t total = 0;
      uint32_t p = pos;
      for (;;) {
        c1m_cmd_t w;
        memcpy(&w, r->send + p, sizeof w);
        iov[cnt].iov_base = r->send + p + sizeof w;
        iov[cnt].iov_len = w.len;
        total += w.len;
        want_drain |= (w.op & C1M_OPF_WANT_DRAIN) != 0;
        cnt++;
        p += sizeof w + pad8(w.len);
        if (cnt == IOV_MAX_GATHER || p + sizeof w > used) break;
        memcpy(&w, r->send + p, sizeof w);
        if ((w.op & C1M_OP_MASK) != C1M_OP_WRITE || w.fd != c.fd || w.gen != c.gen || p + sizeof w + w.len > used)
          break;
      }
      pos = p;
      if (s && writable_state(s)) conn_send(r, c.fd, s, iov, cnt, total, want_drain);
      continue;
    }
    pos += sizeof c;
    if (!s) continue;
    switch (op) {
    case C1M_OP_CLOSE:
      cmd_close(r, c.fd, s, c.len);
      break;
    case C1M_OP_DESTROY:
      conn_close(r, c.fd, c.len ? (int)c.len : C1M_R_LOCAL, 0, 0);
      break;
    case C1M_OP_SHUTDOWN:
      if (s->flags & (C1M_F_SHUT_DONE | C1M_F_SHUT_PEND | C1M_F_CLOSING)) break;
      if (s->out_len || (s->flags & C1M_F_CONNECTING)) {
        s->flags |= C1M_F_SHUT_PEND;
      } else if (s->flags & C1M_F_EOF) {
        conn_close(r, c.fd, C1M_R_END, 0, 0);
      } else {
        shutdown(c.fd, SHUT_WR);
        s->flags |= C1M_F_SHUT_DONE;
      }
      break;
    case C1M_OP_PAUSE: /* edges that come meanwhile leave RREADY set */
      s->flags |= C1M_F_PAUSED;
      break;
    case C1M_OP_RESUME:
      s->flags &= ~C1M_F_PAUSED;
      resume_read(r, c.fd, s);
      break;
    case C1M_OP_TIMEOUT:
      if (!(s->flags & C1M_F_CLOSING)) {
        uint32_t ticks = c.len ? (c.len + r->cfg.tick_ms - 1) / r->cfg.tick_ms : 0;
        set_timed(r, s, ticks);
      }
      break;
    default:
      report(r, C1M_E_COMMAND, c.fd, -EINVAL, (int32_t)op);
    }
  }
  r->ctl[C1M_CTL_SEND_USED] = 0;
}

void c1m_reactor_after_batch(c1m_reactor_t *r, uint32_t nev) {
  if (nev > r->nev) nev = r->nev;
  for (uint32_t i = 0; i < nev; i++) {
    const c1m_event_t *e = &r->ev[i];
    if (e->kind != C1M_EV_DATA) continue;
    r->slots[e->fd].flags &= ~C1M_F_SERVED; /* the batch is over: it may be read again */
    if (e->c != e->b) keep_unconsumed(r, e);
  }
  c1m_reactor_flush(r);
}

int c1m_reactor_pending(const c1m_reactor_t *r) { return r->ndeferred > 0 || r->nerrs > 0; }

/* ---- sockets ---- */

int c1m_listen(c1m_reactor_t *r, const struct sockaddr *addr, socklen_t len, int backlog, int reuseport,
               const int *targets, int ntargets, int policy) {
  if (r->nlisteners == MAX_LISTENERS || ntargets > MAX_TARGETS || ntargets < 0) return -ENOSPC;
  int fd = c1m_sys_socket(addr->sa_family);
  if (fd < 0) return fd;
  int rc = c1m_sys_set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  if (rc == 0 && reuseport) rc = c1m_sys_set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
  if (rc == 0 && bind(fd, addr, len) < 0) rc = -errno;
  if (rc == 0 && listen(fd, backlog) < 0) rc = -errno;
  if (rc == 0) rc = c1m_sys_epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, EPOLLIN, tag(fd, TAG_LISTENER));
  if (rc < 0) {
    c1m_sys_close(fd);
    return rc;
  }
  listener_t *l = &r->listeners[r->nlisteners++];
  memset(l, 0, sizeof *l);
  l->fd = fd;
  l->policy = policy;
  l->ntargets = ntargets;
  for (int i = 0; i < ntargets; i++) l->targets[i] = targets[i];
  return fd;
}

int c1m_retarget(c1m_reactor_t *r, int fd, const int *targets, int ntargets) {
  if (ntargets < 1 || ntargets > MAX_TARGETS) return -EINVAL;
  for (int i = 0; i < r->nlisteners; i++) {
    listener_t *l = &r->listeners[i];
    if (l->fd != fd) continue;
    if (l->ntargets == 0) return -EINVAL; /* a listener that serves its own reactor stays so */
    for (int j = 0; j < ntargets; j++) l->targets[j] = targets[j];
    l->ntargets = ntargets;
    l->rr = 0;
    return 0;
  }
  return -ENOENT;
}

int c1m_unlisten(c1m_reactor_t *r, int fd) {
  for (int i = 0; i < r->nlisteners; i++) {
    if (r->listeners[i].fd != fd) continue;
    if (!r->listeners[i].paused) c1m_sys_epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, 0, 0);
    c1m_sys_close(fd);
    r->listeners[i] = r->listeners[--r->nlisteners];
    return 0;
  }
  return -ENOENT;
}

int c1m_connect(c1m_reactor_t *r, const struct sockaddr *addr, socklen_t len, const struct sockaddr *local,
                socklen_t local_len) {
  int fd = c1m_sys_socket(addr->sa_family);
  if (fd < 0) return fd;
  int rc = 0;
  if ((uint32_t)fd >= r->cfg.nslots) rc = -EMFILE;
  if (rc == 0 && local) {
    /* Defer the port choice to connect(): the 4-tuple, not the source port alone, must be
     * unique, so each source address gets a full port range per destination. */
    if (local->sa_family == AF_INET) c1m_sys_set_int(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1);
    if (bind(fd, local, local_len) < 0) rc = -errno;
  }
  if (rc < 0) {
    c1m_sys_close(fd);
    return rc;
  }
  int err = 0;
  if (connect(fd, addr, len) < 0 && errno != EINPROGRESS) err = errno;
  rc = conn_add(r, fd, C1M_F_CONNECTING);
  if (rc < 0) {
    c1m_sys_close(fd);
    return rc;
  }
  if (err) conn_close(r, fd, C1M_R_CONNECT_FAILED, -err, 0);
  return fd;
}

int c1m_write_direct(c1m_reactor_t *r, int fd, uint32_t gen, const uint8_t *data, size_t len) {
  c1m_slot_t *s = live(r, fd, gen);
  if (!s || !writable_state(s)) return -EBADF;
  struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
  conn_send(r, fd, s, &iov, 1, len, 0);
  return 0;
}

int c1m_sockname(c1m_reactor_t *r, int fd, uint32_t gen, int peer, struct sockaddr_storage *ss, socklen_t *len) {
  if (!live(r, fd, gen)) return -EBADF;
  *len = sizeof *ss;
  int rc = peer ? getpeername(fd, (struct sockaddr *)ss, len) : getsockname(fd, (struct sockaddr *)ss, len);
  return rc < 0 ? -errno : 0;
}

/* ---- lifecycle ---- */

int c1m_reactor_create(c1m_reactor_t **out, const c1m_config_t *cfg, c1m_slot_t *slots, uint8_t *recv,
                       uint32_t recv_cap, c1m_event_t *events, uint32_t ev_cap, uint8_t *send, uint32_t send_cap,
                       int32_t *ctl) {
  if (ev_cap < 2 * ERROR_QUEUE || recv_cap < cfg->max_in + 4096 || cfg->tick_ms == 0 || cfg->nslots == 0) return -EINVAL;
  c1m_reactor_t *r = calloc(1, sizeof *r);
  if (!r) return -ENOMEM;
  r->cfg = *cfg;
  if (r->cfg.read_budget == 0) r->cfg.read_budget = 65536;
  r->slots = slots, r->recv = recv, r->recv_cap = recv_cap, r->ev = events, r->ev_cap = ev_cap;
  r->send = send, r->send_cap = send_cap, r->ctl = ctl;
  r->epfd = r->evfd = r->tfd = -1;
  r->id = -1;
  pthread_mutex_init(&r->hq_lock, NULL);
  int rc = 0;
  r->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (r->epfd < 0) rc = -errno;
  if (rc == 0 && (r->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) rc = -errno;
  if (rc == 0 && (r->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0) rc = -errno;
  if (rc == 0) {
    struct itimerspec its = {0};
    its.it_interval.tv_sec = cfg->tick_ms / 1000;
    its.it_interval.tv_nsec = (long)(cfg->tick_ms % 1000) * 1000000L;
    its.it_value = its.it_interval;
    if (timerfd_settime(r->tfd, 0, &its, NULL) < 0) rc = -errno;
  }
  if (rc == 0) rc = c1m_sys_epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->evfd, EPOLLIN, tag(r->evfd, TAG_EVENTFD));
  if (rc == 0) rc = c1m_sys_epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->tfd, EPOLLIN, tag(r->tfd, TAG_TIMERFD));
  if (rc == 0 && (r->id = registry_add(r)) < 0) rc = r->id;
  if (rc < 0) {
    c1m_reactor_destroy(r);
    return rc;
  }
  *out = r;
  return 0;
}

int c1m_reactor_fd(const c1m_reactor_t *r) { return r->epfd; }
int c1m_reactor_id(const c1m_reactor_t *r) { return r->id; }

void c1m_reactor_destroy(c1m_reactor_t *r) {
  if (!r) return;
  registry_remove(r);
  for (int i = 0; i < r->nlisteners; i++) c1m_sys_close(r->listeners[i].fd);
  for (uint32_t fd = 0; r->nconns && fd <= r->max_fd; fd++) {
    c1m_slot_t *s = &r->slots[fd];
    if (!(s->flags & (C1M_F_OPEN | C1M_F_CONNECTING))) continue;
    if (s->bufs) {
      free(s->bufs->in);
      free(s->bufs->out);
      free(s->bufs);
      s->bufs = NULL;
    }
    s->flags = 0;
    s->gen = (s->gen + 1) & C1M_GEN_MASK;
    c1m_sys_close((int)fd);
    r->nconns--;
  }
  pthread_mutex_lock(&r->hq_lock);
  for (uint32_t i = 0; i < r->hq_len; i++) c1m_sys_close(r->hq[i]);
  pthread_mutex_unlock(&r->hq_lock);
  pthread_mutex_destroy(&r->hq_lock);
  free(r->hq);
  free(r->deferred);
  free(r->ready);
  if (r->tfd >= 0) c1m_sys_close(r->tfd);
  if (r->evfd >= 0) c1m_sys_close(r->evfd);
  if (r->epfd >= 0) c1m_sys_close(r->epfd);
  free(r);
}
