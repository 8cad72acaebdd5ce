/*
 * Connection I/O: register a socket in its slot, read it into the receive area, write to it
 * (gathered, with an outbound buffer for what the kernel does not take), keep unconsumed inbound
 * bytes, close it. Also the public calls that start or act on one connection (connect,
 * write_direct, sockname).
 *
 * Model: a connection is its 32-byte slot; its in/out buffers (c1m_buf_t) exist only while
 * they hold bytes.
 *
 * Invariants:
 * - Connections are edge-triggered (EPOLLET | EPOLLIN | EPOLLRDHUP) and EPOLLOUT, once added,
 *   stays: an outbound connection has it from the start (its connect completes with an EPOLLOUT
 *   edge), an accepted one gets it the first time out holds bytes. So a connection costs one
 *   epoll_ctl in its life, two if it ever backs up.
 * - An EPOLLIN edge sets RREADY; a read clears it only when the socket is drained (EAGAIN, EOF,
 *   or fewer bytes than asked while the peer's FIN is not pending). A connection that is
 *   readable but not read this poll (paused, receive area full, the read filled its budget)
 *   keeps RREADY and goes on the ready list when it may read again.
 * - Writes go on until the kernel takes everything or says EAGAIN, so an EPOLLOUT edge always
 *   follows unsent bytes.
 * - One DATA record per connection per batch (SERVED): its unconsumed bytes are kept only
 *   after the batch.
 * - A close bumps gen and frees everything at once; JS learns of it by exactly one CLOSE record.
 * - A heartbeat connection (C1M_F_HEARTBEAT, timer.c) whose read is exactly one empty masked
 *   WebSocket pong, with nothing kept before it, gets no DATA record: the pong is consumed here.
 *
 * Hot path: conn_on_readable (one read, one record, one store to renew the idle deadline),
 * conn_send (one sendmsg for a batch's writes to one connection).
 */
#include "internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* ---- slots and buffers ---- */

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

int bytes_reserve(uint8_t **p, uint32_t *cap, uint32_t need) {
  if (need <= *cap) return 0;
  uint32_t n = *cap ? *cap : 4096;
  while (n < need) n = n > 0x7FFFFFFFu / 2 ? need : n * 2;
  uint8_t *q = realloc(*p, n);
  if (!q) return -ENOMEM;
  *p = q;
  *cap = n;
  return 0;
}

void conn_release(c1m_reactor_t *r, int fd, c1m_slot_t *s) {
  if (s->flags & C1M_F_TLS) tls_release(r, fd);
  if (s->bufs) {
    free(s->bufs->in);
    free(s->bufs->out);
    free(s->bufs);
    s->bufs = NULL;
  }
  s->out_len = s->in_len = 0;
  s->flags = 0;
  s->gen = (s->gen + 1) & C1M_GEN_MASK;
}

void conn_resume_read(c1m_reactor_t *r, int fd, c1m_slot_t *s) {
  if (can_read(s) && (s->flags & C1M_F_RREADY)) ready_push(r, fd, s);
}

/* reason == C1M_R_LOCAL on a connection whose peer already sent FIN reports C1M_R_END (a clean
 * close on both sides); on one that timed out, C1M_R_TIMEOUT. */
void conn_close(c1m_reactor_t *r, int fd, int reason, int err, int in_poll) {
  conn_close3(r, fd, reason, err, 0, in_poll);
}

void conn_close3(c1m_reactor_t *r, int fd, int reason, int err, int32_t detail, int in_poll) {
  c1m_slot_t *s = &r->slots[fd];
  /* an accepted connection in its handshake was never open for JS: no CLOSE for it */
  int kind = (s->flags & (C1M_F_HANDSHAKE | C1M_F_CONNECTING)) == C1M_F_HANDSHAKE ? C1M_EV_TLS_REJECT : C1M_EV_CLOSE;
  uint32_t gen = s->gen;
  if (reason == C1M_R_LOCAL && (s->flags & C1M_F_TIMED_OUT)) reason = C1M_R_TIMEOUT;
  else if (reason == C1M_R_LOCAL && (s->flags & C1M_F_EOF) && !(s->flags & C1M_F_PAUSED)) reason = C1M_R_END;
  if (reason == C1M_R_HANDLER || reason == C1M_R_SHUTDOWN || reason == C1M_R_INBOUND_LIMIT ||
      reason == C1M_R_SLOW_CONSUMER) {
    /* Abort: the peer sees a reset, and no FIN_WAIT state lingers with unsent bytes. */
    c1m_sys_set_linger0(fd);
  }
  timer_arm(r, fd, s, 0);
  conn_release(r, fd, s);
  int rc = c1m_sys_close(fd);
  if (rc < 0) loop_report(r, C1M_E_CLOSE, fd, rc, 0);
  __atomic_sub_fetch(&r->nconns, 1, __ATOMIC_RELAXED);
  r->ctl[C1M_CTL_CONNS] = (int32_t)r->nconns;
  if (in_poll) ev_emit3(r, kind, fd, gen, reason, err, detail);
  else ev_defer3(r, kind, fd, gen, reason, err, detail);
}

/* Register a new connected (or connecting) socket in slot fd. */
int conn_add(c1m_reactor_t *r, int fd, uint32_t flags) {
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
  if (rc == 0 && r->cfg.idle_ticks) {
    rc = timer_arm(r, fd, s, r->cfg.idle_ticks);
    if (rc < 0) c1m_sys_epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, 0, 0);
  }
  if (rc < 0) {
    s->flags = 0;
    return rc;
  }
  /* TCP_NODELAY waits for the first write (conn_writev): Nagle can only hold back data sent
   * while earlier data is unacknowledged, so setting it then is the same for the peer, and an
   * idle connection never pays the syscall (one of the few per accept or connect). A socket
   * accepted from a TCP_NODELAY listener has it already (listener_accept clears the flag). */
  if (r->cfg.nodelay) s->flags |= C1M_F_NODELAY;
  if ((uint32_t)fd > r->max_fd) {
    r->max_fd = (uint32_t)fd;
    r->ctl[C1M_CTL_MAX_FD] = (int32_t)fd;
  }
  __atomic_add_fetch(&r->nconns, 1, __ATOMIC_RELAXED);
  r->ctl[C1M_CTL_CONNS] = (int32_t)r->nconns;
  return 0;
}

/* ---- output ---- */

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

void conn_send(c1m_reactor_t *r, int fd, c1m_slot_t *s, struct iovec *iov, int cnt, size_t total, int want_drain) {
  if (s->flags & C1M_F_TLS) tls_send(r, fd, s, iov, cnt, total, want_drain);
  else conn_send_raw(r, fd, s, iov, cnt, total, want_drain);
}

/* Send iov (total bytes) to a connection, keeping what the kernel does not take. A connection
 * in its TLS handshake is connected: its handshake records go out at once. */
void conn_send_raw(c1m_reactor_t *r, int fd, c1m_slot_t *s, struct iovec *iov, int cnt, size_t total, int want_drain) {
  size_t sent = 0;
  if (s->out_len == 0 && (s->flags & (C1M_F_OPEN | C1M_F_HANDSHAKE))) {
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
      if (bytes_reserve(&b->out, &b->out_cap, need) < 0) {
        conn_close(r, fd, C1M_R_ERROR, -ENOMEM, 0);
        return;
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
    if (s->out_len == 0) ev_defer(r, C1M_EV_DRAIN, fd, s->gen, 0, 0);
    else s->flags |= C1M_F_DRAIN;
  }
}

static void out_free(c1m_slot_t *s) {
  if (s->bufs && s->bufs->out) {
    free(s->bufs->out);
    s->bufs->out = NULL;
    s->bufs->out_cap = s->bufs->out_off = 0;
    bufs_trim(s);
  }
}

/* out drained: free its buffer, then finish a pending shutdown or close. */
void conn_out_done(c1m_reactor_t *r, int fd, c1m_slot_t *s) {
  out_free(s);
  if (s->flags & C1M_F_CLOSING) {
    if ((s->flags & C1M_F_TLS) && tls_close_lingers(r, fd, s)) { /* reads on until the peer's close */
      if (s->flags & C1M_F_RREADY) tls_linger_read(r, fd, s, 1);
      return;
    }
    conn_close(r, fd, C1M_R_LOCAL, 0, 1);
    return;
  }
  if (s->flags & C1M_F_SHUT_PEND) {
    c1m_sys_shutdown_wr(fd);
    s->flags = (s->flags & ~C1M_F_SHUT_PEND) | C1M_F_SHUT_DONE;
  }
  if (s->flags & C1M_F_DRAIN) {
    s->flags &= ~C1M_F_DRAIN;
    ev_emit(r, C1M_EV_DRAIN, fd, s->gen, 0, 0);
  }
}

void conn_on_writable(c1m_reactor_t *r, int fd, c1m_slot_t *s) {
  if (s->flags & C1M_F_CONNECTING) {
    int err = c1m_sys_sock_error(fd);
    if (err) {
      conn_close(r, fd, C1M_R_CONNECT_FAILED, err, 1);
      return;
    }
    if (s->flags & C1M_F_TLS) { /* open once the handshake completes */
      tls_connected(r, fd, s);
      return;
    }
    s->flags = (s->flags & ~C1M_F_CONNECTING) | C1M_F_OPEN;
    ev_emit(r, C1M_EV_OPEN, fd, s->gen, -1, 0);
    /* a close or shutdown asked for while connecting, with nothing to send first */
    if (s->out_len == 0 && (s->flags & (C1M_F_CLOSING | C1M_F_SHUT_PEND))) {
      conn_out_done(r, fd, s);
      return;
    }
  }
  if (s->out_len == 0) return;
  if (conn_flush_out(r, fd, s) == 1) conn_out_done(r, fd, s);
}

int conn_flush_out(c1m_reactor_t *r, int fd, c1m_slot_t *s) {
  if (s->out_len == 0) return 1;
  c1m_buf_t *b = s->bufs;
  struct iovec iov = {.iov_base = b->out + b->out_off, .iov_len = s->out_len};
  ssize_t n = conn_write_all(fd, s, &iov, 1, s->out_len);
  if (n == -EAGAIN) return 0;
  if (n < 0) {
    conn_close(r, fd, C1M_R_ERROR, (int)n, 1);
    return -1;
  }
  s->out_len -= (uint32_t)n;
  b->out_off += (uint32_t)n;
  if (s->out_len) return 0;
  out_free(s);
  return 1;
}

/* ---- input ---- */

/* Read once into the receive area behind any unconsumed bytes (a connection with RREADY that
 * can read). Fairness: one read of at most read_budget bytes per connection per poll; one that
 * may have more, or found the area too full, goes on the ready list for the next poll. */
void conn_on_readable(c1m_reactor_t *r, int fd, c1m_slot_t *s) {
  if (s->flags & C1M_F_TLS) {
    tls_on_readable(r, fd, s);
    return;
  }
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
    ev_emit(r, C1M_EV_END, fd, s->gen, 0, 0);
    return;
  }
  /* Fewer bytes than asked: the socket was empty, and bytes arriving later bring a new edge.
   * Unless the FIN is already in: then the next read returns 0 and no edge announces it. */
  if ((uint32_t)n < room && !(s->flags & C1M_F_RDHUP)) s->flags &= ~C1M_F_RREADY;
  else ready_push(r, fd, s);
  conn_deliver(r, fd, s, (uint32_t)n);
}

/* The bytes just read are one empty masked pong (FIN | pong, MASK | length 0, 4 key bytes) and
 * nothing precedes them in the engine: a heartbeat's answer at a frame boundary. (Partial frames
 * stay in the engine as in_len; JS clears HB_PONGS while it holds frame bytes itself.) */
static inline int is_bare_pong(const c1m_reactor_t *r, const c1m_slot_t *s, uint32_t off, uint32_t n) {
  return n == 6 && s->in_len == 0 && r->recv[off] == 0x8A && r->recv[off + 1] == 0x80;
}

/* The bytes just read are one empty unmasked ping (FIN | ping, length 0) and nothing precedes
 * them in the engine: a server's heartbeat, at a frame boundary (JS clears AUTO_PONG while it
 * holds frame bytes itself). Plain TCP only: over TLS the read path goes on after delivering,
 * and a send from inside it could close the connection under it. */
static inline int is_bare_ping(const c1m_reactor_t *r, const c1m_slot_t *s, uint32_t off, uint32_t n) {
  return n == 2 && s->in_len == 0 && !(s->flags & C1M_F_TLS) && r->recv[off] == 0x89 && r->recv[off + 1] == 0x00;
}

/* Answer a bare ping with an empty pong, masked as a client must (RFC 6455 5.3: a fresh key
 * from the kernel's generator). Returns 0, or -1 when no key could be had: then JS answers. */
static int auto_pong(c1m_reactor_t *r, int fd, c1m_slot_t *s) {
  uint8_t pong[6] = {0x8A, 0x80};
  if (c1m_sys_random(pong + 2, 4) < 0) return -1;
  struct iovec iov = {.iov_base = pong, .iov_len = sizeof pong};
  conn_send(r, fd, s, &iov, 1, sizeof pong, 0);
  return 0;
}

/* A WebSocket's heartbeat kept by the engine: the server's (HEARTBEAT: any byte answers it, a
 * bare pong is absorbed) and the client's (AUTO_PONG: a bare ping is answered). Returns 1 when
 * the read was consumed here (no record, nothing kept; the idle deadline renewed). */
static int heartbeat_read(c1m_reactor_t *r, int fd, c1m_slot_t *s, uint32_t off, uint32_t n) {
  int consumed = 0;
  if (s->flags & C1M_F_HEARTBEAT) {
    s->flags &= ~C1M_F_HB_WAIT;
    consumed = (s->flags & C1M_F_HB_PONGS) && is_bare_pong(r, s, off, n);
  }
  if (!consumed && (s->flags & C1M_F_AUTO_PONG) && is_bare_ping(r, s, off, n)) consumed = auto_pong(r, fd, s) == 0;
  if (consumed && s->timeout_ticks) s->deadline = r->tick + s->timeout_ticks;
  return consumed;
}

void conn_deliver(c1m_reactor_t *r, int fd, c1m_slot_t *s, uint32_t n) {
  uint32_t pend = s->in_len, off = r->recv_used;
  /* one flag test per read for both roles' heartbeats */
  if ((s->flags & (C1M_F_HEARTBEAT | C1M_F_AUTO_PONG)) && heartbeat_read(r, fd, s, off, n)) return;
  if (pend) { /* present kept bytes followed by the new ones */
    memcpy(r->recv + off, s->bufs->in, pend);
    free(s->bufs->in);
    s->bufs->in = NULL;
    s->bufs->in_cap = 0;
    s->in_len = 0;
    bufs_trim(s);
  }
  uint32_t len = pend + n;
  r->recv_used = (off + len + RECV_ALIGN - 1) & ~(uint32_t)(RECV_ALIGN - 1);
  /* renew the idle deadline: one store; the timer re-files the connection lazily (timer.c) */
  if (s->timeout_ticks) s->deadline = r->tick + s->timeout_ticks;
  /* c = consumed: all of it unless JS writes back fewer */
  *ev_push(r) = (c1m_event_t){.kind = C1M_EV_DATA, .fd = fd, .gen = (int32_t)s->gen, .a = (int32_t)off,
                              .b = (int32_t)len, .c = (int32_t)len};
  s->flags |= C1M_F_SERVED;
}

/* Keep the bytes JS did not consume from a DATA record. */
void conn_keep_unconsumed(c1m_reactor_t *r, const c1m_event_t *e) {
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

/* ---- public: one connection ---- */

int c1m_connect(c1m_reactor_t *r, const struct sockaddr *addr, socklen_t len, const struct sockaddr *local,
                socklen_t local_len, const c1m_keepalive_t *ka) {
  int fd = c1m_sys_socket(addr->sa_family);
  if (fd < 0) return fd;
  int rc = 0;
  if ((uint32_t)fd >= r->cfg.nslots) rc = -EMFILE;
  if (rc == 0 && ka && ka->idle_s > 0) rc = c1m_sys_set_keepalive(fd, ka);
  if (rc == 0 && local) {
    /* Defer the port choice to connect(): the 4-tuple, not the source port alone, must be
     * unique, so each source address gets a full port range per destination. */
    if (local->sa_family == AF_INET) c1m_sys_set_int(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1);
    rc = c1m_sys_bind(fd, local, local_len);
  }
  if (rc < 0) {
    c1m_sys_close(fd);
    return rc;
  }
  int err = c1m_sys_connect(fd, addr, len);
  if (err == -EINPROGRESS) err = 0;
  rc = conn_add(r, fd, C1M_F_CONNECTING);
  if (rc < 0) {
    c1m_sys_close(fd);
    return rc;
  }
  if (err) conn_close(r, fd, C1M_R_CONNECT_FAILED, err, 0);
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
  return c1m_sys_sockname(fd, peer, ss, len);
}
