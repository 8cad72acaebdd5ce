/*
 * The loop: a reactor's life (create, destroy) and its poll.
 *
 * Model: one poll = the records queued since the last one (reactor-level errors, then deferred
 * events), then epoll events carried over from the last poll, then the ready list
 * (connections whose last read left bytes or a FIN in the socket), then one epoll_wait with
 * timeout 0, each event dispatched to its listener, the hand-off queue (eventfd), the tick
 * (timerfd) or its connection, and a second one when that accepted connections (their first
 * bytes join the batch). JS then handles the batch in one call.
 *
 * Invariants:
 * - Connections are edge-triggered: epoll reports readiness once. So nothing harvested is ever
 *   dropped: events the event array has no room for are carried to the next poll, a connection
 *   that stays readable goes on the ready list, and either one wakes the reactor through its
 *   eventfd (one write until it is read back), not the next tick.
 * - The epoll data carries fd and gen; an event for an older gen is ignored.
 * - Events produced outside a poll (closes in the command stream, a refused connect) are
 *   deferred and the reactor wakes itself, so JS learns of each exactly once, in a later batch.
 * - Library code never prints: a failure that is not a connection's own is a C1M_EV_ERROR
 *   record and a count (loop_report).
 *
 * Hot path: c1m_reactor_poll -> dispatch -> conn_event -> conn_on_readable/conn_on_writable.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- records ---- */

void ev_emit(c1m_reactor_t *r, int kind, int fd, uint32_t gen, int32_t a, int32_t b) {
  *ev_push(r) = (c1m_event_t){.kind = kind, .fd = fd, .gen = (int32_t)gen, .a = a, .b = b};
}

void ev_emit3(c1m_reactor_t *r, int kind, int fd, uint32_t gen, int32_t a, int32_t b, int32_t c) {
  *ev_push(r) = (c1m_event_t){.kind = kind, .fd = fd, .gen = (int32_t)gen, .a = a, .b = b, .c = c};
}

void loop_wake(c1m_reactor_t *r) {
  if (r->wake_pending) return;
  int rc = c1m_sys_eventfd_write(r->evfd);
  if (rc < 0) loop_report(r, C1M_E_WAKE, r->evfd, rc, 0);
  else r->wake_pending = 1;
}

/* Errors wait in a small fixed queue: reporting one must not allocate (it may be reporting
 * that an allocation failed), and a full queue still counts in C1M_CTL_ERRORS_LOST. */
void loop_report(c1m_reactor_t *r, int what, int fd, int err, int32_t detail) {
  r->ctl[C1M_CTL_ERRORS]++;
  if (r->nerrs == ERROR_QUEUE) {
    r->ctl[C1M_CTL_ERRORS_LOST]++;
    return;
  }
  uint32_t gen = fd >= 0 && (uint32_t)fd < r->cfg.nslots ? r->slots[fd].gen : 0;
  r->errs[r->nerrs++] = (c1m_event_t){.kind = C1M_EV_ERROR, .fd = fd, .gen = (int32_t)gen, .a = what, .b = err, .c = detail};
  if (what != C1M_E_WAKE) loop_wake(r); /* a failed wake-up is seen at the next poll, whenever */
}

void ev_defer(c1m_reactor_t *r, int kind, int fd, uint32_t gen, int32_t a, int32_t b) {
  ev_defer3(r, kind, fd, gen, a, b, 0);
}

void ev_defer3(c1m_reactor_t *r, int kind, int fd, uint32_t gen, int32_t a, int32_t b, int32_t c) {
  if (r->ndeferred == r->deferred_cap) {
    uint32_t cap = r->deferred_cap ? r->deferred_cap * 2 : 256;
    c1m_event_t *d = realloc(r->deferred, (size_t)cap * sizeof *d);
    if (!d) {
      loop_report(r, C1M_E_EVENT_LOST, fd, -ENOMEM, kind);
      return;
    }
    r->deferred = d;
    r->deferred_cap = cap;
  }
  r->deferred[r->ndeferred++] = (c1m_event_t){.kind = kind, .fd = fd, .gen = (int32_t)gen, .a = a, .b = b, .c = c};
  loop_wake(r);
}

void ready_push(c1m_reactor_t *r, int fd, c1m_slot_t *s) {
  if (s->flags & C1M_F_QUEUED) return;
  if (r->nready == r->ready_cap) {
    uint32_t cap = r->ready_cap ? r->ready_cap * 2 : 256;
    uint64_t *q = realloc(r->ready, (size_t)cap * sizeof *q);
    if (!q) {
      /* Served at its next edge instead (more bytes, FIN or reset from the peer). */
      loop_report(r, C1M_E_READY_LOST, fd, -ENOMEM, 0);
      return;
    }
    r->ready = q;
    r->ready_cap = cap;
  }
  r->ready[r->nready++] = tag(fd, s->gen);
  s->flags |= C1M_F_QUEUED;
  loop_wake(r);
}

/* ---- the poll ---- */

/* One harvested (or carried) epoll event of a connection. */
static void conn_event(c1m_reactor_t *r, int fd, uint32_t gen, uint32_t e) {
  c1m_slot_t *s = &r->slots[fd];
  if (s->gen != gen || !(s->flags & (C1M_F_OPEN | C1M_F_CONNECTING | C1M_F_HANDSHAKE))) return;
  if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s->flags |= C1M_F_RREADY;
  if (e & (EPOLLRDHUP | EPOLLHUP)) s->flags |= C1M_F_RDHUP;
  if ((e & EPOLLERR) && !(s->flags & C1M_F_CONNECTING)) {
    int err = c1m_sys_sock_error(fd);
    if (err) {
      conn_close(r, fd, C1M_R_ERROR, err, 1);
      return;
    }
  }
  if (s->flags & C1M_F_HANDSHAKE) {
    tls_event(r, fd, s, e);
    return;
  }
  if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
    if ((s->flags & C1M_F_CONNECTING) || s->out_len) {
      conn_on_writable(r, fd, s);
      if (s->gen != gen || !s->flags) return;
    }
  }
  if (can_read(s)) {
    if (s->flags & C1M_F_RREADY) conn_on_readable(r, fd, s);
  } else if ((s->flags & (C1M_F_CLOSING | C1M_F_TLS)) == (C1M_F_CLOSING | C1M_F_TLS) && tls_close_lingers(r, fd, s)) {
    if (s->flags & C1M_F_RREADY) tls_linger_read(r, fd, s, 1);
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
      handoff_drain(r);
    } else if (t == TAG_TIMERFD) {
      timer_tick(r);
    } else if (t == TAG_UDP) {
      udp_event(r, fd, evs[i].events);
    } else if (t == TAG_LISTENER) {
      for (int j = 0; j < r->nlisteners; j++)
        if (r->listeners[j].fd == fd && !r->listeners[j].paused) listener_accept(r, &r->listeners[j]);
    } else {
      conn_event(r, fd, t, evs[i].events);
    }
  }
  return i;
}

static int harvest(c1m_reactor_t *r);

static int poll_once(c1m_reactor_t *r) {
  r->nev = 0;
  r->recv_used = 0;
  /* reactor-level errors first: the queue is small, and the array always has room for it */
  if (r->nerrs) {
    memcpy(r->ev, r->errs, r->nerrs * sizeof r->errs[0]);
    r->nev = r->nerrs;
    r->nerrs = 0;
  }
  /* deferred events next: they happened before anything this poll finds */
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
    if (can_read(s) && (s->flags & C1M_F_RREADY)) conn_on_readable(r, fd, s);
  }
  r->nready -= i;
  memmove(r->ready, r->ready + i, (size_t)r->nready * sizeof r->ready[0]);

  r->accepted = 0;
  r->harvest_full = 0;
  /* A second harvest when the first accepted connections: their first bytes (an HTTP request,
   * a WebSocket upgrade; always there with TCP_DEFER_ACCEPT) are reported by the ADD itself,
   * so they join this batch instead of costing another wake-up and crossing. */
  if (harvest(r) > 0 && r->accepted > 0 && r->ncarry == 0) harvest(r);
  return (int)r->nev;
}

/* One epoll_wait (timeout 0) into the batch; what has no room is carried. Returns the events
 * harvested, or 0 when there was no room or the call failed (reported). */
static int harvest(c1m_reactor_t *r) {
  struct epoll_event evs[POLL_EVENTS];
  int max = (int)((r->ev_cap - r->nev) / 2);
  if (max > POLL_EVENTS - (int)r->ncarry) max = POLL_EVENTS - (int)r->ncarry;
  if (max < 1) {
    r->harvest_full = 1; /* no room to look: assume more is ready */
    return 0;
  }
  int n = c1m_sys_epoll_wait(r->epfd, evs, max);
  if (n < 0) {
    loop_report(r, C1M_E_POLL, r->epfd, n, 0);
    return 0;
  }
  if (n == max) r->harvest_full = 1;
  int done = dispatch(r, evs, n);
  if (done < n) {
    memcpy(r->carry + r->ncarry, evs + done, (size_t)(n - done) * sizeof evs[0]);
    r->ncarry += (uint32_t)(n - done);
  }
  return n;
}

/* Events queued for the next poll: deferred, carried, reactor errors, or connections left
 * with bytes to read. */
static inline int work_left(const c1m_reactor_t *r) { return r->ndeferred || r->ncarry || r->nready || r->nerrs; }

int c1m_reactor_poll(c1m_reactor_t *r) {
  int n = poll_once(r);
  /* Work left for the next poll: wake again at once, not at the next tick. This runs after
   * epoll_wait, which may have consumed the eventfd's count in handoff_drain(). */
  if (work_left(r)) loop_wake(r);
  return n;
}

int c1m_reactor_pending(const c1m_reactor_t *r) { return r->ndeferred > 0 || r->nerrs > 0; }

int c1m_reactor_backlog(const c1m_reactor_t *r) { return r->harvest_full || work_left(r); }

/* ---- lifecycle ---- */

int c1m_reactor_create(c1m_reactor_t **out, const c1m_config_t *cfg, c1m_slot_t *slots, uint8_t *recv,
                       uint32_t recv_cap, c1m_event_t *events, uint32_t ev_cap, uint8_t *send, uint32_t send_cap,
                       int32_t *ctl) {
  if (ev_cap < 2 * ERROR_QUEUE || recv_cap < cfg->max_in + 4096 || cfg->tick_ms == 0 || cfg->nslots == 0)
    return -EINVAL;
  c1m_reactor_t *r = calloc(1, sizeof *r);
  if (!r) return -ENOMEM;
  r->cfg = *cfg;
  if (r->cfg.read_budget == 0) r->cfg.read_budget = 65536;
  r->slots = slots, r->recv = recv, r->recv_cap = recv_cap, r->ev = events, r->ev_cap = ev_cap;
  r->send = send, r->send_cap = send_cap, r->ctl = ctl;
  r->epfd = r->evfd = r->tfd = -1;
  r->id = -1;
  int rc = handoff_init(r);
  if (rc < 0) {
    free(r);
    return rc;
  }
  if ((r->epfd = rc = c1m_sys_epoll_create()) >= 0) rc = 0;
  if (rc == 0 && (r->evfd = rc = c1m_sys_eventfd()) >= 0) rc = 0;
  if (rc == 0 && (r->tfd = rc = c1m_sys_timerfd(cfg->tick_ms)) >= 0) rc = 0;
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
  registry_remove(r); /* first: no acceptor can hand this reactor an fd after this */
  for (int i = 0; i < r->nlisteners; i++) c1m_sys_close(r->listeners[i].fd);
  for (uint32_t fd = 0; r->nconns && fd <= r->max_fd; fd++) {
    c1m_slot_t *s = &r->slots[fd];
    if (!(s->flags & (C1M_F_OPEN | C1M_F_CONNECTING | C1M_F_HANDSHAKE))) continue;
    conn_release(r, (int)fd, s);
    c1m_sys_close((int)fd);
    r->nconns--;
  }
  udp_fini(r);
  handoff_fini(r);
  timer_fini(r);
  tls_fini(r);
  free(r->deferred);
  free(r->ready);
  if (r->tfd >= 0) c1m_sys_close(r->tfd);
  if (r->evfd >= 0) c1m_sys_close(r->evfd);
  if (r->epfd >= 0) c1m_sys_close(r->epfd);
  free(r);
}
