/*
 * Listeners: listen, accept in batches, retarget, unlisten.
 *
 * Model: a reactor has up to MAX_LISTENERS listening sockets, level-triggered in its epoll set.
 * On readiness it accepts up to ACCEPT_BATCH connections and registers each (an OPEN record, or
 * a quiet count when JS has no onOpen), or, for a listener with hand-off targets (threads
 * mode), gives each to another reactor (handoff.c).
 *
 * Invariants:
 * - Accepting stops while the event array lacks room for a record and an error: the listener
 *   is level-triggered, so the rest come back at the next poll.
 * - Out of fds or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM), the pending connection stays in
 *   the backlog and epoll would report it again at once: the listener leaves the epoll set and
 *   the tick re-arms it after an exponential back-off (one tick up to BACKOFF_MAX_MS).
 * - Listener state is touched on the reactor's own thread only (retarget included).
 *
 * Hot path: listener_accept -> c1m_sys_accept -> conn_add -> listener_opened.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

void listener_opened(c1m_reactor_t *r, int fd, int32_t from) {
  /* When JS has no use for an OPEN record (no onOpen), a count it reads when it next looks:
   * accepts alone then cost no crossing. */
  if (r->cfg.quiet_open) r->ctl[C1M_CTL_QUIET_OPENS]++;
  else ev_emit(r, C1M_EV_OPEN, fd, r->slots[fd].gen, from, 0);
  r->accepted++; /* the poll harvests once more for its first bytes (loop.c) */
}

static void pause_accepting(c1m_reactor_t *r, listener_t *l) {
  c1m_sys_epoll_ctl(r->epfd, EPOLL_CTL_DEL, l->fd, 0, 0);
  l->paused = 1;
  l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : r->cfg.tick_ms;
  if (l->backoff_ms > BACKOFF_MAX_MS) l->backoff_ms = BACKOFF_MAX_MS;
  l->resume_tick = r->tick + (l->backoff_ms + r->cfg.tick_ms - 1) / r->cfg.tick_ms;
  r->ctl[C1M_CTL_ACCEPT_PAUSES]++;
  timer_need_tick(r); /* the tick resumes it */
}

void listener_accept(c1m_reactor_t *r, listener_t *l) {
  for (int i = 0; i < ACCEPT_BATCH; i++) {
    if (r->nev + 2 > r->ev_cap) return; /* room for OPEN (+ an error); level-triggered: back next poll */
    struct sockaddr_storage peer;
    int fd = c1m_sys_accept(l->fd, &peer);
    if (fd == -EAGAIN) break;
    if (fd < 0) {
      if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
        pause_accepting(r, l);
        ev_emit(r, C1M_EV_ACCEPT_ERROR, l->fd, 0, fd, 1);
        return;
      }
      /* ECONNABORTED, EPROTO, EPERM (firewall): this connection only. */
      ev_emit(r, C1M_EV_ACCEPT_ERROR, l->fd, 0, fd, 0);
      continue;
    }
    l->backoff_ms = 0;
    uint32_t flags = l->tls ? C1M_F_TLS | C1M_F_HANDSHAKE : C1M_F_OPEN;
    int rc = l->ntargets ? handoff_give(l, fd, &peer) : conn_add(r, fd, flags);
    if (rc < 0) {
      c1m_sys_close(fd);
      ev_emit(r, C1M_EV_ACCEPT_ERROR, l->fd, 0, rc, 0);
      continue;
    }
    if (l->nodelay) r->slots[fd].flags &= ~C1M_F_NODELAY; /* inherited: no setsockopt per accept */
    if (l->ntargets) continue; /* the target creates the TLS session (handoff.c) */
    if (l->tls) tls_accepted(r, l, fd); /* OPEN when its handshake completes */
    else listener_opened(r, fd, l->fd);
  }
}

void listener_resume(c1m_reactor_t *r) {
  for (int i = 0; i < r->nlisteners; i++) {
    listener_t *l = &r->listeners[i];
    if (l->paused && (int32_t)(r->tick - l->resume_tick) >= 0) {
      if (c1m_sys_epoll_ctl(r->epfd, EPOLL_CTL_ADD, l->fd, EPOLLIN, tag(l->fd, TAG_LISTENER)) == 0) l->paused = 0;
    }
  }
}

int c1m_listen(c1m_reactor_t *r, const struct sockaddr *addr, socklen_t len, int backlog, int reuseport,
               const int *targets, int ntargets, int policy, int defer_accept_s, const c1m_keepalive_t *ka) {
  if (r->nlisteners == MAX_LISTENERS || ntargets > MAX_TARGETS || ntargets < 0) return -ENOSPC;
  int fd = c1m_sys_socket(addr->sa_family);
  if (fd < 0) return fd;
  int rc = c1m_sys_set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  if (rc == 0 && reuseport) rc = c1m_sys_set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
  if (rc == 0) rc = c1m_sys_bind(fd, addr, len);
  if (rc == 0 && defer_accept_s > 0) rc = c1m_sys_set_int(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, defer_accept_s);
  /* Inherited by accepted sockets, like TCP_NODELAY below; hand-off listeners included (the fd
   * moves to another reactor with its options). */
  if (rc == 0 && ka && ka->idle_s > 0) rc = c1m_sys_set_keepalive(fd, ka);
  /* Linux copies TCP_NODELAY from the listener into each accepted socket, which then needs no
   * setsockopt of its own. Not on a hand-off listener (its targets' settings rule their
   * sockets), and a failure only leaves the per-connection path (conn_writev) in charge. */
  int nodelay = rc == 0 && r->cfg.nodelay && ntargets == 0 && c1m_sys_set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1) == 0;
  if (rc == 0) rc = c1m_sys_listen(fd, backlog);
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
  l->nodelay = nodelay;
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
    if (r->listeners[i].tls) c1m_tls_ctx_unref(r->listeners[i].tls);
    r->listeners[i] = r->listeners[--r->nlisteners];
    return 0;
  }
  return -ENOENT;
}
