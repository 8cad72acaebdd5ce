/*
 * The registry and the fd hand-off between reactors (threads mode): the only code that is
 * shared between threads, and the only code with mutexes.
 *
 * Model: every reactor registers itself under a small integer id (its registry slot). An
 * acceptor reactor whose listener has targets (registry ids of reactors on other threads)
 * picks one per accepted fd (round-robin, least connections, or a hash of the peer address),
 * pushes the fd onto that reactor's queue and writes its eventfd. The target drains its queue
 * when the eventfd wakes it, and registers each fd as its own connection (an OPEN record with
 * from = -2). A TLS listener's accepted fd travels with a reference on the listener's context
 * (an SSL_CTX is safe to share across threads for SSL_new): the target creates the session
 * itself, so its handshake, records and timer belong to the target's thread, and a certificate
 * reload on the acceptor (c1m_tls_listen) reaches every worker's new connections at once.
 *
 * Invariants:
 * - Lock order: g_reg_lock, then a reactor's hq_lock. A target stays registered (and so its
 *   memory valid) while an acceptor holds g_reg_lock, since c1m_reactor_destroy unregisters
 *   first, under that lock.
 * - A target that is not (or no longer) registered is skipped in favour of the listener's other
 *   targets; the fd is refused only when none is left (the acceptor closes it and reports an
 *   ACCEPT_ERROR).
 * - A reactor's nconns is read here from other threads: atomic, relaxed (a balancing hint).
 * - Fds still queued when the target is destroyed are closed by it (handoff_fini), and their
 *   context references dropped.
 *
 * Hot path (threads mode): handoff_give -> one lock pair and one eventfd write per connection;
 * handoff_drain -> one lock for the whole queue.
 */
#include "internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

struct handoff_item {
  int fd;
  c1m_tls_ctx_t *tls; /* a reference, or NULL */
};

static pthread_mutex_t g_reg_lock = PTHREAD_MUTEX_INITIALIZER;
static c1m_reactor_t *g_reg[MAX_REACTORS];

int registry_add(c1m_reactor_t *r) {
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

void registry_remove(c1m_reactor_t *r) {
  pthread_mutex_lock(&g_reg_lock);
  if (r->id >= 0 && g_reg[r->id] == r) g_reg[r->id] = NULL;
  pthread_mutex_unlock(&g_reg_lock);
}

int handoff_init(c1m_reactor_t *r) { return -pthread_mutex_init(&r->hq_lock, NULL); }

void handoff_fini(c1m_reactor_t *r) {
  pthread_mutex_lock(&r->hq_lock);
  for (uint32_t i = 0; i < r->hq_len; i++) {
    c1m_sys_close(r->hq[i].fd);
    c1m_tls_ctx_unref(r->hq[i].tls);
  }
  r->hq_len = 0;
  pthread_mutex_unlock(&r->hq_lock);
  pthread_mutex_destroy(&r->hq_lock);
  free(r->hq);
  r->hq = NULL;
}

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

/* Queue fd (and a new reference on tls, when not NULL) on the reactor with registry id
 * `target`. -ENOENT if it is gone. */
static int give_to(int target, int fd, c1m_tls_ctx_t *tls) {
  int rc = -ENOENT;
  pthread_mutex_lock(&g_reg_lock);
  c1m_reactor_t *t = (target >= 0 && target < MAX_REACTORS) ? g_reg[target] : NULL;
  if (t) {
    pthread_mutex_lock(&t->hq_lock);
    if (t->hq_len == t->hq_cap) {
      uint32_t cap = t->hq_cap ? t->hq_cap * 2 : 256;
      struct handoff_item *q = realloc(t->hq, cap * sizeof *q);
      if (q) {
        t->hq = q;
        t->hq_cap = cap;
      }
    }
    if (t->hq_len < t->hq_cap) {
      if (tls) tls_ctx_ref(tls);
      t->hq[t->hq_len++] = (struct handoff_item){.fd = fd, .tls = tls};
      rc = 0;
    } else {
      rc = -ENOMEM;
    }
    pthread_mutex_unlock(&t->hq_lock);
    /* A failed wake-up (only EAGAIN, a saturated counter, is plausible, and then a wake-up is
     * pending anyway) leaves the fd queued until the target's next wake-up. */
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
      int id = l->targets[i];
      c1m_reactor_t *t = id >= 0 && id < MAX_REACTORS ? g_reg[id] : NULL;
      uint32_t n = t ? __atomic_load_n(&t->nconns, __ATOMIC_RELAXED) : UINT32_MAX;
      if (n < best_n) best_n = n, best = id;
    }
    pthread_mutex_unlock(&g_reg_lock);
    return best;
  }
  return l->targets[l->rr++ % (uint32_t)l->ntargets];
}

int handoff_give(listener_t *l, int fd, const struct sockaddr_storage *peer) {
  /* A target whose reactor is gone (its worker thread died) is skipped: the connection goes to
   * the next live one. Only when none is left is it refused. */
  int first = pick_target(l, peer), rc = give_to(first, fd, l->tls);
  for (int j = 0; rc == -ENOENT && j < l->ntargets; j++)
    if (l->targets[j] != first) rc = give_to(l->targets[j], fd, l->tls);
  return rc;
}

void handoff_drain(c1m_reactor_t *r) {
  int rc = c1m_sys_counter_read(r->evfd);
  if (rc < 0 && rc != -EAGAIN) loop_report(r, C1M_E_WAKE_READ, r->evfd, rc, 0);
  r->wake_pending = 0;
  pthread_mutex_lock(&r->hq_lock);
  uint32_t n = r->hq_len, taken = 0;
  for (; taken < n && r->nev + 1 < r->ev_cap; taken++) {
    int fd = r->hq[taken].fd;
    c1m_tls_ctx_t *tls = r->hq[taken].tls;
    rc = conn_add(r, fd, tls ? C1M_F_TLS | C1M_F_HANDSHAKE : C1M_F_OPEN);
    if (rc < 0) {
      c1m_sys_close(fd);
      ev_emit(r, C1M_EV_ACCEPT_ERROR, -1, 0, rc, 0);
    } else if (tls) {
      tls_handed(r, tls, fd); /* OPEN when its handshake completes */
    } else {
      listener_opened(r, fd, -2);
    }
    c1m_tls_ctx_unref(tls); /* the session holds its own */
  }
  if (taken) memmove(r->hq, r->hq + taken, (n - taken) * sizeof *r->hq);
  r->hq_len = n - taken;
  pthread_mutex_unlock(&r->hq_lock);
  if (r->hq_len) loop_wake(r); /* event array full: come back next poll */
}
