/*
 * The tick and idle timeouts.
 *
 * Model: the timerfd ticks every tick_ms; each tick advances r->tick, re-arms listeners whose
 * accept back-off has run out, and expires idle timeouts. A connection's timeout is two slot
 * words: timeout_ticks (0 = none) and deadline (the tick it expires at).
 *
 * Invariants: ntimed counts the slots with timeout_ticks != 0.
 *
 * Hot path: a read renews the deadline with one store (conn.c). The sweep checks the
 * deadline of every slot up to the highest fd, on every tick, while any connection has a timeout.
 */
#include "internal.h"

#include <errno.h>

int timer_arm(c1m_reactor_t *r, int fd, c1m_slot_t *s, uint32_t ticks) {
  (void)fd;
  if (s->timeout_ticks && !ticks) r->ntimed--;
  if (!s->timeout_ticks && ticks) r->ntimed++;
  s->timeout_ticks = ticks;
  s->deadline = ticks ? r->tick + ticks : 0;
  return 0;
}

void timer_fini(c1m_reactor_t *r) { (void)r; }

void timer_tick(c1m_reactor_t *r) {
  int exp = c1m_sys_counter_read(r->tfd);
  if (exp <= 0) { /* -EAGAIN: a spurious wake-up */
    if (exp < 0 && exp != -EAGAIN) loop_report(r, C1M_E_TIMER_READ, r->tfd, exp, 0);
    return;
  }
  r->tick += (uint32_t)exp;
  r->ctl[C1M_CTL_TICK] = (int32_t)r->tick;
  listener_resume(r);
  if (!r->ntimed) return;
  for (uint32_t fd = 0; fd <= r->max_fd; fd++) {
    c1m_slot_t *s = &r->slots[fd];
    if (!s->timeout_ticks || (int32_t)(r->tick - s->deadline) < 0) continue;
    if (r->nev + 1 > r->ev_cap) return; /* rest on the next tick */
    if (s->flags & C1M_F_CLOSING) { /* a graceful close that never drained */
      conn_close(r, (int)fd, C1M_R_TIMEOUT, 0, 1);
      continue;
    }
    timer_arm(r, (int)fd, s, 0);
    ev_emit(r, C1M_EV_TIMEOUT, (int)fd, s->gen, 0, 0);
  }
}
