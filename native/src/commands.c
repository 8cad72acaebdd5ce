/*
 * The command stream: what JS staged in the send area during a batch (or between batches),
 * applied before control returns to Node.
 *
 * Model: the send area holds C1M_CTL_SEND_USED bytes of commands, each a c1m_cmd_t header and
 * a payload padded to C1M_CMD_ALIGN. after_batch() first keeps what JS did not consume of each
 * DATA record, then flush() applies the commands in order and resets the area.
 *
 * Invariants:
 * - Every command names its connection by (fd, gen); one for a closed connection (stale gen)
 *   is skipped, so JS never acts on a reused fd.
 * - Consecutive WRITEs to one connection leave in one sendmsg (up to IOV_MAX_GATHER pieces).
 * - A truncated command (past the used bytes) ends the stream; an unknown op is skipped and
 *   reported (C1M_E_COMMAND).
 * - Closes and other events that arise here are deferred to the next batch (JS is not
 *   running): the reactor wakes itself for them.
 *
 * Hot path: flush() -> a WRITE run -> conn_send.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

static inline uint32_t pad(uint32_t n) { return (n + C1M_CMD_ALIGN - 1) & ~(C1M_CMD_ALIGN - 1); }

static void cmd_close(c1m_reactor_t *r, int fd, c1m_slot_t *s, uint32_t reason) {
  if (s->flags & C1M_F_CLOSING) return;
  if (reason == C1M_R_TIMEOUT) s->flags |= C1M_F_TIMED_OUT;
  if (s->flags & C1M_F_TLS) {
    int fd_gen = (int)s->gen;
    tls_close_notify(r, fd, s);
    if ((int)s->gen != fd_gen || !s->flags) return; /* the write failed: closed */
  }
  /* a TLS 1.3 client waiting for its sessions reads on until the peer's close (tls.c) */
  int linger = (s->flags & C1M_F_TLS) && tls_close_lingers(r, fd, s);
  if (s->out_len == 0 && !(s->flags & C1M_F_CONNECTING) && !linger) {
    conn_close(r, fd, C1M_R_LOCAL, 0, 0);
    return;
  }
  s->flags |= C1M_F_CLOSING; /* reading stops (can_read); EPOLLOUT edges drain out */
  /* bound the wait for a peer that never reads; without a timer for it, do not wait at all */
  uint32_t ticks = (30000 + r->cfg.tick_ms - 1) / r->cfg.tick_ms;
  if (timer_arm(r, fd, s, ticks) < 0) conn_close(r, fd, C1M_R_ERROR, -ENOMEM, 0);
  else if (linger && (s->flags & C1M_F_RREADY)) tls_linger_read(r, fd, s, 0); /* already in */
}

static void cmd_shutdown(c1m_reactor_t *r, int fd, c1m_slot_t *s) {
  if (s->flags & (C1M_F_SHUT_DONE | C1M_F_SHUT_PEND | C1M_F_CLOSING)) return;
  if (s->flags & C1M_F_TLS) {
    int fd_gen = (int)s->gen;
    tls_close_notify(r, fd, s);
    if ((int)s->gen != fd_gen || !s->flags) return; /* the write failed: closed */
  }
  if (s->out_len || (s->flags & C1M_F_CONNECTING)) {
    s->flags |= C1M_F_SHUT_PEND;
  } else if (s->flags & C1M_F_EOF) {
    conn_close(r, fd, C1M_R_END, 0, 0);
  } else {
    c1m_sys_shutdown_wr(fd);
    s->flags |= C1M_F_SHUT_DONE;
  }
}

/* BROADCAST at pos: the same bytes to each live id. Returns the next position, 0 if truncated. */
static uint32_t cmd_broadcast(c1m_reactor_t *r, const c1m_cmd_t *c, uint32_t pos, uint32_t used) {
  uint32_t ids = (uint32_t)c->fd * (uint32_t)sizeof(c1m_id_t);
  uint32_t body = pos + sizeof *c;
  if (body + ids + c->len > used) return 0;
  const c1m_id_t *id = (const c1m_id_t *)(r->send + body);
  struct iovec iov = {.iov_base = r->send + body + ids, .iov_len = c->len};
  for (int32_t i = 0; i < c->fd; i++) {
    int fd = (int)id[i].fd;
    c1m_slot_t *s = live(r, fd, id[i].gen);
    if (s && writable_state(s)) conn_send(r, fd, s, &iov, 1, c->len, 0);
  }
  return body + pad(ids + c->len);
}

/* The WRITE at pos and the WRITEs to the same connection right after it, as one gather.
 * Returns the position after them. */
static uint32_t cmd_write_run(c1m_reactor_t *r, const c1m_cmd_t *c, uint32_t pos, uint32_t used) {
  struct iovec iov[IOV_MAX_GATHER];
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
    p += sizeof w + pad(w.len);
    if (cnt == IOV_MAX_GATHER || p + sizeof w > used) break;
    memcpy(&w, r->send + p, sizeof w);
    if ((w.op & C1M_OP_MASK) != C1M_OP_WRITE || w.fd != c->fd || w.gen != c->gen || p + sizeof w + w.len > used)
      break;
  }
  c1m_slot_t *s = live(r, c->fd, c->gen);
  if (s && writable_state(s)) conn_send(r, c->fd, s, iov, cnt, total, want_drain);
  return p;
}

void c1m_reactor_flush(c1m_reactor_t *r) {
  uint32_t used = (uint32_t)r->ctl[C1M_CTL_SEND_USED];
  if (used > r->send_cap) used = r->send_cap;
  uint32_t pos = 0;
  while (pos + sizeof(c1m_cmd_t) <= used) {
    c1m_cmd_t c;
    memcpy(&c, r->send + pos, sizeof c);
    uint32_t op = c.op & C1M_OP_MASK;
    if (op == C1M_OP_BROADCAST) {
      if (!(pos = cmd_broadcast(r, &c, pos, used))) break;
      continue;
    }
    if (op == C1M_OP_UDP_SEND) {
      if (!(pos = udp_send_run(r, &c, pos, used))) break;
      continue;
    }
    if (op == C1M_OP_WRITE) {
      if (pos + sizeof c + c.len > used) break;
      pos = cmd_write_run(r, &c, pos, used);
      continue;
    }
    pos += sizeof c;
    c1m_slot_t *s = live(r, c.fd, c.gen);
    if (!s) continue;
    switch (op) {
    case C1M_OP_CLOSE:
      cmd_close(r, c.fd, s, c.len);
      break;
    case C1M_OP_DESTROY:
      conn_close(r, c.fd, c.len ? (int)c.len : C1M_R_LOCAL, 0, 0);
      break;
    case C1M_OP_SHUTDOWN:
      cmd_shutdown(r, c.fd, s);
      break;
    case C1M_OP_PAUSE: /* edges that come meanwhile leave RREADY set */
      s->flags |= C1M_F_PAUSED;
      break;
    case C1M_OP_RESUME:
      s->flags &= ~C1M_F_PAUSED;
      conn_resume_read(r, c.fd, s);
      break;
    case C1M_OP_TIMEOUT:
      if (!(s->flags & C1M_F_CLOSING)) {
        uint32_t ticks = c.len ? (c.len + r->cfg.tick_ms - 1) / r->cfg.tick_ms : 0;
        int rc = timer_arm(r, c.fd, s, ticks);
        s->flags &= ~(C1M_F_HEARTBEAT | C1M_F_HB_WAIT | C1M_F_HB_PONGS);
        if (rc < 0) loop_report(r, C1M_E_TIMERS, c.fd, rc, 0);
        else if (ticks && (c.op & C1M_OPF_HEARTBEAT))
          s->flags |= C1M_F_HEARTBEAT | ((c.op & C1M_OPF_PONGS) ? C1M_F_HB_PONGS : 0);
      }
      break;
    case C1M_OP_AUTO_PONG:
      if (c.len) s->flags |= C1M_F_AUTO_PONG;
      else s->flags &= ~C1M_F_AUTO_PONG;
      break;
    default:
      loop_report(r, C1M_E_COMMAND, c.fd, -EINVAL, (int32_t)op);
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
    if (e->c != e->b) conn_keep_unconsumed(r, e);
  }
  c1m_reactor_flush(r);
}
