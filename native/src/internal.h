/*
 * Private to native/src: the reactor struct and the functions its files share. The public
 * header is c1m.h; nothing here is seen by the addon or by JS.
 *
 * Files (each opens with its model, invariants and hot path):
 *   loop.c      create/destroy, the poll: epoll_wait, dispatch, carried events, ready list,
 *               event records (emit, deferred queue, reactor-level errors), wake-ups
 *   conn.c      connection I/O: register, read, write, out/in buffers, close; connect
 *   commands.c  the command stream JS stages in the send area, applied after each batch
 *   listener.c  listen, accept (with EMFILE back-off), retarget, unlisten
 *   handoff.c   the registry and the fd hand-off between reactors: the only code with mutexes
 *   timer.c     the tick and idle timeouts
 *   udp.c       UDP sockets: batched receive (recvmmsg) and send (sendmmsg), the send queue
 *   tls.c       TLS: contexts, handshakes, SSL_read into the receive area, SSL_write of staged
 *               writes, close_notify (OpenSSL from the node binary; stubs without its headers)
 *   sys.c       every syscall;  errname.c  errno names;  addon.c  Node-API
 *
 * Naming: public functions are c1m_<noun>_<verb> (c1m.h); functions shared between these
 * files are <file noun>_<verb> (conn_close, timer_arm); file-local helpers are static.
 */
#ifndef C1M_INTERNAL_H
#define C1M_INTERNAL_H

#define _GNU_SOURCE
#include "c1m.h"

#include <sys/epoll.h>
#include <sys/uio.h>

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
#define TAG_UDP 0xFFFFFFF3u
/* epoll interest of every connection; EPOLLOUT is added to it (see conn.c) */
#define CONN_EVENTS (EPOLLIN | EPOLLRDHUP | EPOLLET)

struct c1m_buf {
  uint8_t *in, *out; /* malloc'd, NULL when empty */
  uint32_t in_cap, out_cap;
  uint32_t out_off; /* bytes of out already sent */
};

typedef struct listener {
  int fd;
  c1m_tls_ctx_t *tls; /* accepted connections speak TLS with it; NULL for plain TCP */
  int paused;
  uint32_t resume_tick;
  uint32_t backoff_ms;
  int targets[MAX_TARGETS];
  int ntargets;
  int policy;
  uint32_t rr;
  int nodelay; /* TCP_NODELAY set on the listening socket: accepted sockets inherit it */
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
  uint32_t tick, max_fd;
  uint32_t nconns; /* atomic: read by acceptors on other threads (least-connections) */
  listener_t listeners[MAX_LISTENERS];
  int nlisteners;
  /* timer.c */
  uint32_t ntimed;              /* connections with a timeout */
  struct c1m_wheel_link *wheel; /* NULL until the first timeout */
  uint32_t swept;               /* the last tick whose bucket has been swept */
  uint32_t quiet_ticks;         /* ticks in a row with nothing to time (timer_tick) */
  int tick_stopped;             /* the timerfd is stopped: nothing to time (timer_need_tick restarts it) */
  /* events produced outside poll() */
  c1m_event_t *deferred;
  uint32_t ndeferred, deferred_cap;
  /* handoff.c: fds handed to this reactor by an acceptor on another thread, each with the
   * TLS context of the listener that accepted it (a reference; NULL for plain TCP) */
  pthread_mutex_t hq_lock;
  struct handoff_item *hq;
  uint32_t hq_len, hq_cap;
  /* connections to read at the next poll (edge seen, not drained): tag(fd, gen) each */
  uint64_t *ready;
  uint32_t nready, ready_cap;
  /* harvested epoll events the last poll had no room for */
  struct epoll_event carry[POLL_EVENTS];
  uint32_t ncarry;
  uint32_t accepted; /* connections this poll opened (accepted, handed off, TLS done): loop.c harvests again */
  int harvest_full;  /* the last poll's epoll_wait filled its array: more may be ready */
  int wake_pending; /* our own eventfd write not yet read back */
  /* tls.c: side state by fd (NULL until TLS is first used), the ciphertext scratch */
  struct tls_conn **tls;
  uint8_t *tls_out;
  uint32_t tls_out_len, tls_out_cap;
  int tls_oom; /* the scratch could not grow during the current OpenSSL call */
  /* reactor-level errors for the next batch (C1M_EV_ERROR) */
  c1m_event_t errs[ERROR_QUEUE];
  uint32_t nerrs;
  /* udp.c: open UDP sockets */
  struct udp_sock *udp;
};

static inline uint64_t tag(int fd, uint32_t gen) { return (uint64_t)(uint32_t)fd | ((uint64_t)gen << 32); }

/* Whether the reactor reads this connection: established, not paused, no EOF, not closing. */
static inline int can_read(const c1m_slot_t *s) {
  return (s->flags & (C1M_F_OPEN | C1M_F_PAUSED | C1M_F_EOF | C1M_F_CLOSING)) == C1M_F_OPEN;
}

/* The slot of a live connection (fd, gen), or NULL. */
static inline c1m_slot_t *live(c1m_reactor_t *r, int fd, uint32_t gen) {
  if (fd < 0 || (uint32_t)fd >= r->cfg.nslots) return NULL;
  c1m_slot_t *s = &r->slots[fd];
  if (s->gen != gen || !(s->flags & (C1M_F_OPEN | C1M_F_CONNECTING))) return NULL;
  return s;
}

/* Whether writes are still accepted: no close, shutdown or FIN of ours under way. */
static inline int writable_state(const c1m_slot_t *s) {
  return !(s->flags & (C1M_F_CLOSING | C1M_F_SHUT_PEND | C1M_F_SHUT_DONE));
}

/* ---- loop.c ---- */
/* Append a record to the batch being built (the caller has checked for room). */
static inline c1m_event_t *ev_push(c1m_reactor_t *r) { return &r->ev[r->nev++]; }
void ev_emit(c1m_reactor_t *r, int kind, int fd, uint32_t gen, int32_t a, int32_t b);
/* ev_emit / ev_defer with a third field. */
void ev_emit3(c1m_reactor_t *r, int kind, int fd, uint32_t gen, int32_t a, int32_t b, int32_t c);
void ev_defer3(c1m_reactor_t *r, int kind, int fd, uint32_t gen, int32_t a, int32_t b, int32_t c);
/* Queue a record for the next batch (outside a poll) and wake the reactor. */
void ev_defer(c1m_reactor_t *r, int kind, int fd, uint32_t gen, int32_t a, int32_t b);
/* A reactor-level failure (C1M_E_*): counted and reported in the next batch. */
void loop_report(c1m_reactor_t *r, int what, int fd, int err, int32_t detail);
/* Make the next epoll_wait return, once until the eventfd is read back. */
void loop_wake(c1m_reactor_t *r);
/* Read fd at the start of the next poll (its edge has come and gone). */
void ready_push(c1m_reactor_t *r, int fd, c1m_slot_t *s);

/* ---- conn.c ---- */
int conn_add(c1m_reactor_t *r, int fd, uint32_t flags);
/* Close now; the CLOSE record is emitted (in_poll) or deferred. An accepted connection still
 * in its TLS handshake gets a TLS_REJECT record instead (JS never saw it open). */
void conn_close(c1m_reactor_t *r, int fd, int reason, int err, int in_poll);
/* conn_close with the record's c field (an OpenSSL error code). */
void conn_close3(c1m_reactor_t *r, int fd, int reason, int err, int32_t detail, int in_poll);
/* Grow a byte buffer (doubling from 4 KiB) to hold `need` bytes; 0 or -ENOMEM (then unchanged). */
int bytes_reserve(uint8_t **p, uint32_t *cap, uint32_t need);
/* Free a connection's buffers and TLS state and release its slot, without a record (close and
 * reactor teardown). */
void conn_release(c1m_reactor_t *r, int fd, c1m_slot_t *s);
/* Send bytes to a connection (through TLS when it speaks TLS). */
void conn_send(c1m_reactor_t *r, int fd, c1m_slot_t *s, struct iovec *iov, int cnt, size_t total, int want_drain);
/* Send bytes to the socket as they are (TLS records from tls.c). */
void conn_send_raw(c1m_reactor_t *r, int fd, c1m_slot_t *s, struct iovec *iov, int cnt, size_t total, int want_drain);
/* Write what out holds: 1 when it is empty (and freed), 0 when bytes remain, -1 closed. */
int conn_flush_out(c1m_reactor_t *r, int fd, c1m_slot_t *s);
/* The n bytes just read to recv_used + in_len: present kept bytes before them, one DATA record. */
void conn_deliver(c1m_reactor_t *r, int fd, c1m_slot_t *s, uint32_t n);
void conn_on_writable(c1m_reactor_t *r, int fd, c1m_slot_t *s);
void conn_on_readable(c1m_reactor_t *r, int fd, c1m_slot_t *s);
void conn_keep_unconsumed(c1m_reactor_t *r, const c1m_event_t *e);
/* Out drained: finish a pending shutdown or close, emit a requested DRAIN. */
void conn_out_done(c1m_reactor_t *r, int fd, c1m_slot_t *s);
/* A resumed connection that has bytes waiting goes on the ready list. */
void conn_resume_read(c1m_reactor_t *r, int fd, c1m_slot_t *s);

/* ---- listener.c ---- */
void listener_accept(c1m_reactor_t *r, listener_t *l);
/* Re-arm listeners whose back-off has run out (from the tick). */
void listener_resume(c1m_reactor_t *r);
/* A registered accepted or handed-off connection: an OPEN record or a quiet count. */
void listener_opened(c1m_reactor_t *r, int fd, int32_t from);

/* ---- handoff.c ---- */
int registry_add(c1m_reactor_t *r);
void registry_remove(c1m_reactor_t *r);
/* Give an accepted fd to one of l's targets (skipping gone ones). 0 or -errno (fd not taken). */
int handoff_give(listener_t *l, int fd, const struct sockaddr_storage *peer);
/* Register the fds handed to r (on the eventfd's readiness). */
void handoff_drain(c1m_reactor_t *r);
int handoff_init(c1m_reactor_t *r);
/* Close fds still queued for r, free the queue. */
void handoff_fini(c1m_reactor_t *r);

/* ---- tls.c ---- */
/* An accepted socket (registered with C1M_F_HANDSHAKE) on a TLS listener: start its handshake. */
void tls_accepted(c1m_reactor_t *r, listener_t *l, int fd);
/* The same for a socket handed off by an acceptor (threads mode) whose listener speaks TLS
 * with c: the session is created here, in the target reactor (from = -2 in its OPEN record). */
void tls_handed(c1m_reactor_t *r, c1m_tls_ctx_t *c, int fd);
/* Another reference on c (a hand-off queue entry holds one). */
void tls_ctx_ref(c1m_tls_ctx_t *c);
/* An epoll event of a connection in its handshake. */
void tls_event(c1m_reactor_t *r, int fd, c1m_slot_t *s, uint32_t e);
/* An outbound TLS connection's TCP connect completed: send the ClientHello. */
void tls_connected(c1m_reactor_t *r, int fd, c1m_slot_t *s);
/* conn_on_readable for an established TLS connection. */
void tls_on_readable(c1m_reactor_t *r, int fd, c1m_slot_t *s);
/* conn_send for a TLS connection: encrypt, then conn_send_raw. */
void tls_send(c1m_reactor_t *r, int fd, c1m_slot_t *s, struct iovec *iov, int cnt, size_t total, int want_drain);
/* Queue close_notify (a graceful close or shutdown), once. */
void tls_close_notify(c1m_reactor_t *r, int fd, c1m_slot_t *s);
/* Whether a graceful close (CLOSING, close_notify sent) reads on for the server's TLS 1.3
 * sessions instead of closing when out drains: decided at the first call, then sticky. */
int tls_close_lingers(c1m_reactor_t *r, int fd, c1m_slot_t *s);
/* Read a lingering close (RREADY): keep sessions, discard data; close it at the peer's
 * close_notify or FIN (the record emitted or deferred as in_poll says). */
void tls_linger_read(c1m_reactor_t *r, int fd, c1m_slot_t *s, int in_poll);
/* Free a connection's TLS state (at close). */
void tls_release(c1m_reactor_t *r, int fd);
void tls_fini(c1m_reactor_t *r);

/* ---- timer.c ---- */
/* Set (ticks > 0) or clear a connection's idle timeout, from now. 0 or -errno. */
int timer_arm(c1m_reactor_t *r, int fd, c1m_slot_t *s, uint32_t ticks);
/* The timerfd fired: advance the tick, resume listeners, expire timeouts; stop the timerfd
 * after TICK_QUIET_STOP ticks in a row with nothing to time. */
void timer_tick(c1m_reactor_t *r);
/* Something needs the tick (a timeout filed, a listener backing off): restart it if stopped. */
void timer_need_tick(c1m_reactor_t *r);
void timer_fini(c1m_reactor_t *r);

/* ---- udp.c ---- */
/* Readiness of a UDP socket (epoll tag TAG_UDP): flush its queue, read datagrams. */
void udp_event(c1m_reactor_t *r, int fd, uint32_t events);
/* The UDP_SEND at pos and those to the same socket right after it, by sendmmsg. Returns the
 * position after them, 0 if the stream is truncated. */
uint32_t udp_send_run(c1m_reactor_t *r, const c1m_cmd_t *c, uint32_t pos, uint32_t used);
/* Close every UDP socket (reactor teardown). */
void udp_fini(c1m_reactor_t *r);

#endif
