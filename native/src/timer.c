/*
 * The tick and idle timeouts: a hashed timing wheel over the slot table.
 *
 * Model: the timerfd ticks every tick_ms; each tick advances r->tick, re-arms listeners whose
 * accept back-off has run out, and sweeps the wheel buckets of the ticks that passed. A
 * connection's timeout is two slot words: timeout_ticks (0 = none) and deadline (the tick it
 * expires at). The wheel has WHEEL_SIZE buckets, each a circular doubly-linked list of fds;
 * the links live in a per-reactor array beside the slot table (the slot stays 32 bytes), one
 * {next, prev} pair per fd plus one sentinel per bucket, allocated at the first timeout. It is
 * sized like the slot table but, like it, touched only where fds have timeouts.
 *
 * Invariants:
 * - A slot is in the wheel iff its timeout_ticks != 0 (ntimed counts them), in the bucket of
 *   its deadline or of an earlier deadline: reads renew the deadline without moving the entry
 *   (lazy), so a bucket may hold entries whose deadline has moved on; the sweep re-files those.
 *   Only timer_arm files eagerly, since a new timeout may end earlier than the filed one.
 * - Every bucket from swept + 1 to tick is swept in order; a sweep that finds the event array
 *   full leaves the rest of its bucket in place and resumes at the next tick.
 * - An entry being handled is unlinked (points to itself) first, so conn_close -> timer_arm(0)
 *   on it cannot touch the list being walked.
 *
 * Heartbeat (C1M_F_HEARTBEAT, a WebSocket server's pingInterval): the first expiry writes a
 * ping and re-files the entry with HB_WAIT set; an expiry with HB_WAIT still set (no byte read
 * since) is the TIMEOUT record. So an answered heartbeat costs JS nothing (pongs: conn.c).
 *
 * The tick runs only while something needs it: after TICK_QUIET_STOP ticks in a row with no
 * timeout filed and no listener backing off, the timerfd is stopped, so an idle reactor with
 * no timeouts (a gateway without heartbeat) is not woken four times a second for nothing. The
 * tick is a logical clock: while stopped nothing is filed against it, and timer_need_tick
 * restarts the timerfd (one timerfd_settime) before anything is. The first tick after a
 * restart comes one tick_ms later, so a timeout filed then ends on time, not a tick early.
 *
 * Hot path: a read renews the deadline with one store (conn.c). A tick costs the entries of
 * the buckets it sweeps: the connections whose filed deadline falls in it (an idle connection
 * with a timeout of T ticks is visited once per min(T, WHEEL_SIZE) ticks), not every slot.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>

#define WHEEL_SIZE 4096u /* buckets: a power of two */
#define TICK_QUIET_STOP 4u /* ticks in a row with nothing to time before the timerfd stops */
#define NIL UINT32_MAX

struct c1m_wheel_link {
  uint32_t next, prev;
};

/* The sentinel of bucket b. */
static inline uint32_t head(const c1m_reactor_t *r, uint32_t b) { return r->cfg.nslots + b; }

static void link_tail(c1m_reactor_t *r, uint32_t fd, uint32_t h) {
  struct c1m_wheel_link *w = r->wheel;
  uint32_t last = w[h].prev;
  w[fd].next = h;
  w[fd].prev = last;
  w[last].next = fd;
  w[h].prev = fd;
}

static void unlink_entry(c1m_reactor_t *r, uint32_t fd) {
  struct c1m_wheel_link *w = r->wheel;
  uint32_t next = w[fd].next, prev = w[fd].prev;
  w[prev].next = next;
  w[next].prev = prev;
  w[fd].next = w[fd].prev = fd;
}

static int wheel_alloc(c1m_reactor_t *r) {
  /* calloc of this size maps fresh zero pages: only the sentinels and the links of fds that
   * get a timeout are ever touched. */
  struct c1m_wheel_link *w = calloc((size_t)r->cfg.nslots + WHEEL_SIZE, sizeof *w);
  if (!w) return -ENOMEM;
  r->wheel = w;
  for (uint32_t b = 0; b < WHEEL_SIZE; b++) w[head(r, b)].next = w[head(r, b)].prev = head(r, b);
  r->swept = r->tick;
  return 0;
}

int timer_arm(c1m_reactor_t *r, int fd, c1m_slot_t *s, uint32_t ticks) {
  if (!ticks) {
    if (s->timeout_ticks) {
      unlink_entry(r, (uint32_t)fd);
      r->ntimed--;
    }
    s->timeout_ticks = 0;
    s->deadline = 0;
    return 0;
  }
  if (!r->wheel && wheel_alloc(r) < 0) return -ENOMEM;
  if (s->timeout_ticks) unlink_entry(r, (uint32_t)fd);
  else r->ntimed++;
  if (r->tick_stopped) timer_need_tick(r);
  s->timeout_ticks = ticks;
  s->deadline = r->tick + ticks;
  link_tail(r, (uint32_t)fd, head(r, s->deadline & (WHEEL_SIZE - 1)));
  return 0;
}

void timer_fini(c1m_reactor_t *r) {
  free(r->wheel);
  r->wheel = NULL;
}

/* A heartbeat connection went quiet for its interval: write a WebSocket server's empty ping
 * (through TLS when it speaks TLS) and wait one more interval for any byte (conn.c clears
 * HB_WAIT on every read); no record for JS. The write may close the connection (a dead socket,
 * a slow consumer): its CLOSE record is then deferred, and it is not re-filed. */
static void heartbeat_ping(c1m_reactor_t *r, uint32_t fd, c1m_slot_t *s) {
  static uint8_t ping[2] = {0x89, 0x00}; /* FIN | ping, unmasked, no payload (RFC 6455 5.5.2) */
  struct iovec iov = {.iov_base = ping, .iov_len = sizeof ping};
  uint32_t gen = s->gen;
  conn_send(r, (int)fd, s, &iov, 1, sizeof ping, 0);
  if (s->gen != gen || !(s->flags & C1M_F_OPEN)) return;
  s->flags |= C1M_F_HB_WAIT;
  s->deadline = r->tick + s->timeout_ticks;
  link_tail(r, fd, head(r, s->deadline & (WHEEL_SIZE - 1)));
}

/* Expire or re-file the entries of bucket b. Returns 0 when the event array ran out of room
 * (the rest stay in b for the next tick). */
static int sweep_bucket(c1m_reactor_t *r, uint32_t b) {
  struct c1m_wheel_link *w = r->wheel;
  uint32_t h = head(r, b), fd = w[h].next;
  if (fd == h) return 1;
  /* detach the whole list: entries re-filed into b during the walk wait for its next turn */
  w[w[h].prev].next = NIL;
  w[h].next = w[h].prev = h;
  while (fd != NIL) {
    uint32_t next = w[fd].next;
    c1m_slot_t *s = &r->slots[fd];
    if ((int32_t)(r->tick - s->deadline) < 0) { /* renewed by reads since it was filed */
      link_tail(r, fd, head(r, s->deadline & (WHEEL_SIZE - 1)));
    } else if (r->nev + 1 > r->ev_cap) {
      for (; fd != NIL; fd = next) { /* no room for the record: this one and the rest wait */
        next = w[fd].next;
        link_tail(r, fd, h);
      }
      return 0;
    } else {
      w[fd].next = w[fd].prev = fd;
      if (s->flags & C1M_F_CLOSING) { /* a graceful close that never drained (or, TLS, never heard back) */
        int lingered = (s->flags & C1M_F_TLS) && tls_close_lingers(r, (int)fd, s);
        conn_close(r, (int)fd, lingered ? C1M_R_LOCAL : C1M_R_TIMEOUT, 0, 1);
      } else if (s->flags & C1M_F_HANDSHAKE) { /* a TLS handshake that did not complete in time */
        conn_close(r, (int)fd, C1M_R_TLS, -ETIMEDOUT, 1);
      } else if ((s->flags & (C1M_F_HEARTBEAT | C1M_F_HB_WAIT)) == C1M_F_HEARTBEAT && writable_state(s)) {
        heartbeat_ping(r, fd, s);
      } else {
        timer_arm(r, (int)fd, s, 0);
        ev_emit(r, C1M_EV_TIMEOUT, (int)fd, s->gen, 0, 0);
      }
    }
    fd = next;
  }
  return 1;
}

void timer_need_tick(c1m_reactor_t *r) {
  r->quiet_ticks = 0; /* a restarted tick runs TICK_QUIET_STOP ticks at least: no stop/start per timeout */
  if (!r->tick_stopped) return;
  int rc = c1m_sys_timerfd_set(r->tfd, r->cfg.tick_ms);
  if (rc < 0) loop_report(r, C1M_E_TIMER_SET, r->tfd, rc, 1); /* tried again at the next timeout filed */
  else r->tick_stopped = 0;
}

/* A timeout filed or a listener waiting to resume. */
static int tick_needed(const c1m_reactor_t *r) {
  if (r->ntimed) return 1;
  for (int i = 0; i < r->nlisteners; i++)
    if (r->listeners[i].paused) return 1;
  return 0;
}

/* Count a tick with nothing to time; stop the timerfd after TICK_QUIET_STOP in a row. */
static void stop_if_quiet(c1m_reactor_t *r) {
  if (tick_needed(r)) {
    r->quiet_ticks = 0;
    return;
  }
  if (++r->quiet_ticks < TICK_QUIET_STOP) return;
  int rc = c1m_sys_timerfd_set(r->tfd, 0);
  if (rc < 0) loop_report(r, C1M_E_TIMER_SET, r->tfd, rc, 0); /* it keeps ticking: nothing lost */
  else r->tick_stopped = 1;
}

void timer_tick(c1m_reactor_t *r) {
  int exp = c1m_sys_counter_read(r->tfd);
  if (exp <= 0) { /* -EAGAIN: a spurious wake-up */
    if (exp < 0 && exp != -EAGAIN) loop_report(r, C1M_E_TIMER_READ, r->tfd, exp, 0);
    return;
  }
  r->tick += (uint32_t)exp;
  r->ctl[C1M_CTL_TICK] = (int32_t)r->tick;
  listener_resume(r);
  stop_if_quiet(r);
  if (!r->wheel) return;
  if (!r->ntimed || r->tick - r->swept > WHEEL_SIZE) {
    /* nothing filed, or late by a whole turn: one turn sweeps every bucket once */
    r->swept = r->ntimed ? r->tick - WHEEL_SIZE : r->tick;
  }
  while (r->swept != r->tick) {
    if (!sweep_bucket(r, (r->swept + 1) & (WHEEL_SIZE - 1))) return;
    r->swept++;
  }
}
