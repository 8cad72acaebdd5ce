/*
 * c1m native base layer: the one header.
 *
 * Model: a reactor owns one epoll fd and a table of fixed 32-byte slots indexed by fd. Node's
 * event loop watches the epoll fd; on readiness c1m_reactor_poll() runs epoll_wait, accepts,
 * reads every ready socket into the shared receive area and fills the shared event array.
 * JS then sees the whole batch in one call, stages writes and commands into the shared send
 * area, and c1m_reactor_after_batch() applies them before control returns to Node: one
 * JS<->native crossing per poll.
 *
 * Invariants:
 * - A slot is free when flags == 0. Its gen counts closes (mod C1M_GEN_MASK + 1), so an id
 *   (fd, gen) of a closed connection never matches the slot again until 2^20 reuses.
 * - Per idle connection: the slot only (plus 8 bytes of timer-wheel links when it has a
 *   timeout). in/out buffers exist only while they hold bytes.
 * - Every function returns >= 0 on success or -errno; nothing aborts on a runtime condition,
 *   and nothing prints: failures reach JS as event records (C1M_EV_CLOSE, C1M_EV_ACCEPT_ERROR,
 *   C1M_EV_ERROR) and counters (C1M_CTL_*).
 * - Threading: a reactor is used by one thread. Only the fd hand-off from an acceptor on
 *   another thread and the registry of reactors (native/src/handoff.c) are shared, under
 *   mutexes; every function below is called on the reactor's own thread.
 *
 * Files: this header is the only public one; native/src/internal.h lists the implementation
 * files and what each owns.
 */
#ifndef C1M_H
#define C1M_H

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/socket.h>

/* ---- layout shared with JS ----
 * JS never writes these numbers again: addon.c exports every offset and size below, computed
 * with offsetof/sizeof from these structs (as 32-bit word indexes, since JS views each area as
 * an Int32Array/Uint32Array), and the enums' values; src/core/layout.ts builds the JS half
 * from them, and test/native/layout.test.ts checks each field by writing it from JS and reading
 * it back here. */

/* Slot: 32 bytes (a million connections: 32 MB), viewed from JS as 32-bit words. JS reads gen,
 * flags and out_len; the others are native-only but exported too. */
typedef struct c1m_buf c1m_buf_t;
typedef struct c1m_slot {
  uint32_t gen;           /* generation of the current/last connection on this fd */
  uint32_t flags;         /* C1M_F_* */
  uint32_t out_len;       /* unsent outbound bytes held natively (read by JS) */
  uint32_t deadline;      /* idle deadline in ticks (meaningful while timeout_ticks != 0) */
  uint32_t timeout_ticks; /* idle timeout in ticks, 0 = none */
  uint32_t in_len;        /* unconsumed inbound bytes held natively */
  c1m_buf_t *bufs;        /* in/out buffers, NULL while both are empty */
} c1m_slot_t;
_Static_assert(sizeof(c1m_slot_t) == 32, "a slot is 32 bytes: one million connections in 32 MB");

#define C1M_GEN_MASK 0xFFFFFu

/* Slot flags. */
#define C1M_F_OPEN 0x1u        /* established connection */
#define C1M_F_CONNECTING 0x2u  /* outbound connect in progress */
#define C1M_F_LISTENER 0x4u    /* listening socket */
#define C1M_F_RDHUP 0x8u       /* epoll reported the peer's FIN: a short read is not the end of input */
#define C1M_F_CLOSING 0x10u    /* close once out drains */
#define C1M_F_SHUT_PEND 0x20u  /* shutdown(SHUT_WR) once out drains */
#define C1M_F_SHUT_DONE 0x40u  /* our FIN sent */
#define C1M_F_PAUSED 0x80u     /* reading paused by the application */
#define C1M_F_EOF 0x100u       /* peer FIN seen */
#define C1M_F_DRAIN 0x200u     /* emit a drain event when out empties */
#define C1M_F_RREADY 0x400u    /* readable (or EOF/error pending) and not yet read to the end */
#define C1M_F_TIMED_OUT 0x800u /* graceful close started by an idle timeout */
#define C1M_F_NODELAY 0x1000u  /* TCP_NODELAY still to be set, at the first write */
#define C1M_F_QUEUED 0x2000u   /* on the reactor's ready list */
#define C1M_F_OUT_ARMED 0x4000u /* EPOLLOUT registered (from connect, or since out first held bytes) */
#define C1M_F_SERVED 0x8000u   /* read into the current batch: one DATA record per connection per batch */
#define C1M_F_UDP 0x10000u     /* a UDP socket (udp.c); never C1M_F_OPEN, so connection code skips it */
#define C1M_F_TLS 0x20000u     /* speaks TLS: its SSL state is in the reactor's side table (tls.c) */
#define C1M_F_HANDSHAKE 0x40000u /* TLS handshake under way: an accepted connection is not OPEN
                                    (not live for JS) until it completes; an outbound one stays
                                    CONNECTING */
#define C1M_F_HEARTBEAT 0x80000u /* the idle timeout is a WebSocket heartbeat: its first expiry
                                    writes a ping natively, the next one (no byte since) is the
                                    TIMEOUT (timer.c) */
#define C1M_F_HB_WAIT 0x100000u  /* heartbeat ping sent, no byte read since */
#define C1M_F_HB_PONGS 0x200000u /* with HEARTBEAT: a read of exactly one empty masked pong, at a
                                    frame boundary, is consumed natively (no DATA record) */
#define C1M_F_AUTO_PONG 0x400000u /* a WebSocket client's: a read of exactly one empty unmasked ping
                                     (0x89 0x00), at a frame boundary, is answered natively with
                                     an empty masked pong and consumed (no DATA record) */

/* Event record, written by native code; JS writes back only `c` of DATA records. The meaning
 * of a, b and c depends on the kind (below). */
typedef struct c1m_event {
  int32_t kind; /* C1M_EV_* */
  int32_t fd;
  int32_t gen;
  int32_t a, b, c;
} c1m_event_t;

enum {
  C1M_EV_OPEN = 1,    /* fd gen, a = listener fd (-1 outbound, -2 handed off) */
  C1M_EV_DATA = 2,    /* fd gen, a = offset, b = length, c = consumed (written back by JS) */
  C1M_EV_DRAIN = 3,   /* fd gen */
  C1M_EV_END = 4,     /* fd gen: peer sent FIN */
  C1M_EV_TIMEOUT = 5, /* fd gen */
  C1M_EV_CLOSE = 6,   /* fd gen, a = C1M_R_*, b = -errno or 0 */
  C1M_EV_ACCEPT_ERROR = 7, /* fd = listener fd, a = -errno, b = 1 if accepting paused */
  C1M_EV_ERROR = 8, /* a reactor-level failure that closed nothing: fd = the fd concerned or -1,
                      gen = its gen or 0, a = C1M_E_*, b = -errno, c = detail (below) */
  C1M_EV_UDP_MSG = 9,   /* UDP socket fd gen, a = payload offset in the receive area, b = the
                           datagram's length as the kernel reported it (more than the socket's
                           max_msg: cut to max_msg bytes, MSG_TRUNC), c = offset of its address
                           entry (C1M_UDP_ADDR_SIZE bytes: a sockaddr_in or sockaddr_in6) */
  C1M_EV_UDP_DRAIN = 10, /* UDP socket fd gen: its send queue emptied after a WANT_DRAIN send */
  C1M_EV_UDP_ERROR = 11, /* UDP socket fd gen, a = -errno, b = C1M_UDP_E_*, c = datagrams dropped
                            with it (sends) */
  C1M_EV_TLS_REJECT = 12 /* an accepted TLS connection closed during its handshake (JS never saw
                           it open): a = C1M_R_TLS or C1M_R_ERROR, b = -errno (-ETIMEDOUT: the
                           handshake timed out) or a positive X509 verify result, c = OpenSSL
                           error code (c1m_tls_error_text) */
};

/* What failed, for C1M_EV_ERROR. Library code never prints: every failure that is not a
 * connection's own (those close it with C1M_R_ERROR) is counted in C1M_CTL_ERRORS and reported
 * as an ERROR record in the next batch. */
enum {
  C1M_E_WAKE = 1,       /* eventfd write (waking the reactor): a poll may come late */
  C1M_E_WAKE_READ = 2,  /* eventfd read */
  C1M_E_TIMER_READ = 3, /* timerfd read: a tick is late */
  C1M_E_POLL = 4,       /* epoll_wait */
  C1M_E_CLOSE = 5,      /* close() of fd reported an error (Linux released the fd anyway) */
  C1M_E_EVENT_LOST = 6, /* out of memory queueing an event for the next batch: c = its kind, lost */
  C1M_E_READY_LOST = 7, /* out of memory queueing fd for reading: it is read at its next edge */
  C1M_E_COMMAND = 8,    /* unknown command in the send area, skipped: c = its op */
  C1M_E_TIMERS = 9,     /* out of memory for the timer wheel: fd's timeout is not armed */
  C1M_E_TIMER_SET = 10  /* timerfd_settime: the tick could not be started (timeouts wait) or stopped */
};

/* Close reasons. */
enum {
  C1M_R_END = 1,           /* peer closed cleanly */
  C1M_R_LOCAL = 2,         /* application close/destroy */
  C1M_R_ERROR = 3,         /* socket error, b = -errno */
  C1M_R_TIMEOUT = 4,       /* idle timeout (closing connection that did not drain) */
  C1M_R_INBOUND_LIMIT = 5, /* unconsumed inbound bytes over max_in */
  C1M_R_SLOW_CONSUMER = 6, /* unsent outbound bytes over max_out */
  C1M_R_CONNECT_FAILED = 7,/* outbound connect failed, b = -errno */
  C1M_R_HANDLER = 8,       /* destroyed because a handler threw */
  C1M_R_SHUTDOWN = 9,      /* destroyed by server shutdown */
  C1M_R_TLS = 10           /* TLS failure: b = -ETIMEDOUT (handshake timeout), a positive X509
                              verify result, or 0; c = OpenSSL error code */
};

/* Commands staged by JS in the send area: a header, then the payload padded to C1M_CMD_ALIGN.
 * A BROADCAST's payload starts with its ids, one c1m_id_t each. */
typedef struct c1m_cmd {
  uint32_t op;  /* C1M_OP_* | C1M_OPF_* */
  int32_t fd;   /* target fd (BROADCAST: number of ids) */
  uint32_t gen; /* target gen */
  uint32_t len; /* payload bytes (DESTROY: reason, TIMEOUT: ms) */
} c1m_cmd_t;
typedef struct c1m_id {
  uint32_t fd, gen;
} c1m_id_t;
#define C1M_CMD_ALIGN 8u

enum {
  C1M_OP_WRITE = 1,
  C1M_OP_CLOSE = 2, /* len: 0, or C1M_R_TIMEOUT to report the close as a timeout */
  C1M_OP_DESTROY = 3,
  C1M_OP_SHUTDOWN = 4,
  C1M_OP_PAUSE = 5,
  C1M_OP_RESUME = 6,
  C1M_OP_TIMEOUT = 7,    /* len = ms (0: none); C1M_OPF_HEARTBEAT, C1M_OPF_PONGS below */
  C1M_OP_BROADCAST = 8, /* fd: number of ids; payload: the ids (c1m_id_t), then len bytes */
  C1M_OP_UDP_SEND = 9,  /* UDP socket fd gen, len = datagram bytes; payload: the destination's
                           address entry (C1M_UDP_ADDR_SIZE bytes, family 0: the connected peer),
                           then the datagram */
  C1M_OP_AUTO_PONG = 10 /* len = 1: set C1M_F_AUTO_PONG, 0: clear it */
};
#define C1M_OP_MASK 0xFFu
#define C1M_OPF_WANT_DRAIN 0x100u /* JS reported backpressure: emit a drain event */
/* TIMEOUT with len > 0: the timeout is a WebSocket server's heartbeat (C1M_F_HEARTBEAT), and
 * with OPF_PONGS its empty pongs are absorbed (C1M_F_HB_PONGS). A TIMEOUT without them ends
 * heartbeat mode. */
#define C1M_OPF_HEARTBEAT 0x200u
#define C1M_OPF_PONGS 0x400u

/* Control words shared with JS (int32). */
enum {
  C1M_CTL_SEND_USED = 0, /* bytes of commands staged by JS */
  C1M_CTL_CONNS = 1,     /* open connections (incl. connecting) */
  C1M_CTL_TICK = 2,      /* current tick */
  C1M_CTL_ACCEPT_PAUSES = 3,
  C1M_CTL_QUIET_OPENS = 4, /* accepted connections registered without an OPEN record (wraps) */
  C1M_CTL_MAX_FD = 5,      /* highest fd a connection of this reactor has had */
  C1M_CTL_ERRORS = 6,      /* reactor-level errors (C1M_EV_ERROR) so far (wraps) */
  C1M_CTL_ERRORS_LOST = 7, /* of those, reported by this count only: more arose between two polls
                              than the error queue holds */
  C1M_CTL_WORDS = 8
};

/* Listener hand-off policies (threads mode). */
enum { C1M_LB_ROUND_ROBIN = 0, C1M_LB_LEAST_CONN = 1, C1M_LB_HASH = 2 };

/* ---- reactor ---- */

typedef struct c1m_config {
  uint32_t nslots;        /* slot table entries (max fd + 1) */
  uint32_t max_in;        /* unconsumed inbound bytes allowed per connection */
  uint32_t max_out;       /* unsent outbound bytes allowed per connection */
  uint32_t high_water;    /* out_len above which JS is told to wait for drain */
  uint32_t tick_ms;       /* timer resolution: one tick of the timing wheel */
  uint32_t idle_ticks;    /* default idle timeout for new connections, 0 = none */
  int nodelay;            /* TCP_NODELAY on new connections (set before their first write) */
  uint32_t read_budget;   /* bytes read per connection per poll */
  int quiet_open;         /* accepted connections are counted in C1M_CTL_QUIET_OPENS, not reported */
} c1m_config_t;

typedef struct c1m_reactor c1m_reactor_t;

/* Create a reactor over caller-owned memory (slots: nslots * 32 bytes, zeroed; recv area of at
 * least max_in + 4096 bytes; event array of ev_cap >= 32 records; send area (8-aligned); ctl:
 * C1M_CTL_WORDS int32, zeroed). Returns 0 or -errno (-EINVAL for a bad config). */
int c1m_reactor_create(c1m_reactor_t **out, const c1m_config_t *cfg, c1m_slot_t *slots,
                       uint8_t *recv, uint32_t recv_cap, c1m_event_t *events, uint32_t ev_cap,
                       uint8_t *send, uint32_t send_cap, int32_t *ctl);
/* The fd to watch for readability (the epoll fd). */
int c1m_reactor_fd(const c1m_reactor_t *r);
/* Registry id for hand-off targets (stable for the reactor's life). */
int c1m_reactor_id(const c1m_reactor_t *r);
/* Fill the event array: queued reactor-level errors and deferred events first, then one
 * epoll_wait (timeout 0) and what it reports (accepts, reads, writes, the tick's timeouts).
 * Returns the record count (at most ev_cap). Never blocks. */
int c1m_reactor_poll(c1m_reactor_t *r);
/* Apply consumed counts of the last batch's DATA records, then the staged commands. Required
 * after every poll that returned records: until then their connections are not read again. */
void c1m_reactor_after_batch(c1m_reactor_t *r, uint32_t nev);
/* Apply staged commands (C1M_CTL_SEND_USED bytes) and reset the send area. */
void c1m_reactor_flush(c1m_reactor_t *r);
/* Events queued outside a poll (closes during flush, connect failures, reactor-level errors)
 * wait for the next poll; this says whether any are waiting (the reactor wakes itself for them). */
int c1m_reactor_pending(const c1m_reactor_t *r);
/* Whether the last poll left work behind: its epoll_wait filled its array (more may be ready),
 * or events are carried, deferred or queued, or connections were left with bytes to read. A
 * caller that polls on a timer polls again at once while this holds, not at its next tick. */
int c1m_reactor_backlog(const c1m_reactor_t *r);
/* Close every socket, unregister, free native memory. Caller memory is not touched after. */
void c1m_reactor_destroy(c1m_reactor_t *r);

/* TCP keep-alive: after idle_s seconds without traffic the kernel probes the peer every
 * intvl_s seconds and resets the connection (ETIMEDOUT) after cnt unanswered probes. No
 * process wakes for a probe or its answer. idle_s == 0: off. Kernel limits: idle_s and intvl_s
 * 1..32767, cnt 1..127. */
typedef struct c1m_keepalive {
  int idle_s, intvl_s, cnt;
} c1m_keepalive_t;

/* Listen on addr with SO_REUSEADDR (+SO_REUSEPORT); returns the listener fd or -errno.
 * With targets, accepted fds are handed to those reactors (by registry id) per policy. With
 * defer_accept_s > 0, TCP_DEFER_ACCEPT: the kernel completes a connection's accept only once
 * its first bytes arrived (or after about that many seconds), for protocols whose client
 * speaks first (HTTP, WebSocket, TLS). With ka (idle_s > 0), TCP keep-alive on the listening
 * socket, which Linux copies into every accepted socket: no setsockopt per accept. */
int c1m_listen(c1m_reactor_t *r, const struct sockaddr *addr, socklen_t len, int backlog,
               int reuseport, const int *targets, int ntargets, int policy, int defer_accept_s,
               const c1m_keepalive_t *ka);
/* Replace the hand-off targets of listener fd (threads mode: a dead worker's replacement).
 * Called on the reactor's own thread. Returns -EINVAL for a listener without targets or a bad
 * count, -ENOENT for an unknown fd. A target that is not (or no longer) registered is skipped
 * at accept time in favour of the other targets. */
int c1m_retarget(c1m_reactor_t *r, int fd, const int *targets, int ntargets);
/* Stop and close a listener. */
int c1m_unlisten(c1m_reactor_t *r, int fd);
/* Start a non-blocking connect; returns the fd (>= 0) or -errno. A connect that fails after
 * the socket exists is reported as a CLOSE event with C1M_R_CONNECT_FAILED. */
int c1m_connect(c1m_reactor_t *r, const struct sockaddr *addr, socklen_t len,
                const struct sockaddr *local, socklen_t local_len, const c1m_keepalive_t *ka);
/* Write bytes at once (large writes that do not fit the send area). */
int c1m_write_direct(c1m_reactor_t *r, int fd, uint32_t gen, const uint8_t *data, size_t len);
/* getpeername/getsockname of a live connection. */
int c1m_sockname(c1m_reactor_t *r, int fd, uint32_t gen, int peer, struct sockaddr_storage *ss,
                 socklen_t *len);

/* ---- udp.c: UDP sockets on the reactor (docs/architecture.md, "UDP") ---- */

/* Bytes of an address entry (room for a sockaddr_in6), in the receive area before each datagram
 * and in a UDP_SEND command before its bytes. */
#define C1M_UDP_ADDR_SIZE 32u
_Static_assert(C1M_UDP_ADDR_SIZE % 8 == 0, "address entries keep datagrams 8-aligned");

/* What failed, for C1M_EV_UDP_ERROR. */
enum { C1M_UDP_E_RECV = 1, C1M_UDP_E_SEND = 2 };

typedef struct c1m_udp_opts {
  int reuseport;        /* SO_REUSEPORT */
  int v6only;           /* IPV6_V6ONLY (IPv6 sockets) */
  int rcvbuf, sndbuf;   /* SO_RCVBUF / SO_SNDBUF, 0 = the kernel's default */
  uint32_t max_msg;     /* bytes received per datagram (1..65535); longer ones are cut and flagged */
  uint32_t queue_bytes; /* bound of the send queue kept after EAGAIN; datagrams past it are dropped */
  int gso;              /* send runs of equal-size datagrams to one peer as one UDP_SEGMENT send */
  int gro;              /* UDP_GRO where the kernel has it (only with max_msg 65535) */
} c1m_udp_opts_t;

typedef struct c1m_udp_stats {
  uint64_t sent;        /* datagrams the kernel took */
  uint64_t drops;       /* dropped: the send queue was full (or out of memory) */
  uint64_t send_errors; /* dropped: the kernel refused them (reported as C1M_EV_UDP_ERROR) */
  uint64_t gso_sent;    /* of sent, those that left in GSO runs */
  uint64_t gro_received; /* datagrams received coalesced by GRO */
  uint32_t queued, queued_bytes; /* in the send queue now */
} c1m_udp_stats_t;

/* Open a UDP socket bound to addr, watched by the reactor. Returns its fd or -errno; its gen is
 * the slot's. Records name it by (fd, gen) like a connection. */
int c1m_udp_open(c1m_reactor_t *r, const struct sockaddr *addr, socklen_t len, const c1m_udp_opts_t *o);
/* Close it now: queued datagrams are dropped (JS flushes staged sends first). 0 or -EBADF. */
int c1m_udp_close(c1m_reactor_t *r, int fd, uint32_t gen);
/* connect(2) to addr (a default peer; ICMP errors are then reported), or dissolve the
 * association when addr is NULL. 0 or -errno. */
int c1m_udp_connect(c1m_reactor_t *r, int fd, uint32_t gen, const struct sockaddr *addr, socklen_t len);
/* Join (join != 0) or leave the multicast group; iface: the local interface's address or NULL. */
int c1m_udp_membership(c1m_reactor_t *r, int fd, uint32_t gen, int join, const struct sockaddr *group,
                       const struct sockaddr *iface);
/* Multicast sending options of the socket's family (IPv6 socket: the IPV6_ ones):
 * C1M_UDP_MCAST_TTL: value = hops, 0-255 (else -EINVAL); C1M_UDP_MCAST_LOOP: value != 0 when
 * this host's own members receive what the socket sends; C1M_UDP_MCAST_IF: the interface to
 * send from, IPv4: iface = its local address (NULL: the default), IPv6: value = its index (0:
 * the default; iface must be NULL). 0 or -errno (-EINVAL for an unknown what or a bad value). */
enum { C1M_UDP_MCAST_TTL = 1, C1M_UDP_MCAST_LOOP = 2, C1M_UDP_MCAST_IF = 3 };
int c1m_udp_multicast(c1m_reactor_t *r, int fd, uint32_t gen, int what, int value, const struct sockaddr *iface);
int c1m_udp_stats(c1m_reactor_t *r, int fd, uint32_t gen, c1m_udp_stats_t *out);
/* getsockname (peer == 0) or getpeername of a UDP socket. */
int c1m_udp_sockname(c1m_reactor_t *r, int fd, uint32_t gen, int peer, struct sockaddr_storage *ss, socklen_t *len);

/* ---- TLS (tls.c) ----
 * OpenSSL from the node binary; c1m_tls_available() is 0 when the addon was built without its
 * headers, and then every other call returns -ENOTSUP. Contexts are reference-counted: a
 * listener and every connection made from a context hold a reference, so a context replaced by
 * c1m_tls_listen (a certificate reload) lives until its last connection closes.
 * Threading: a context may be shared by reactors of one thread; connections are their
 * reactor's. */
typedef struct c1m_tls_ctx c1m_tls_ctx_t;
typedef struct c1m_tls_opts {
  int server;                        /* 1: accept side; 0: connect side */
  const char *cert, *key, *ca;       /* PEM (cert may hold a chain), NULL when absent */
  size_t cert_len, key_len, ca_len;
  int request_cert;                  /* server: ask for a client certificate */
  int reject_unauthorized;           /* refuse a peer whose certificate does not verify */
  int min_version;                   /* TLS1_2_VERSION (0x0303) or TLS1_3_VERSION (0x0304) */
  const uint8_t *alpn;               /* ALPN protocols in wire format (length-prefixed), or NULL */
  size_t alpn_len;
  uint32_t handshake_ms;             /* handshake timeout, 0 = none */
  const uint8_t *ticket_keys;        /* server: session ticket keys (80 bytes: name, HMAC, AES), or NULL */
  size_t ticket_keys_len;
  int resume;                        /* client: keep sessions (C1M_TLS_SESSIONS per context) */
  const char *ciphers;               /* OpenSSL cipher string (TLS_* names: 1.3 suites), or NULL: defaults */
} c1m_tls_opts_t;
int c1m_tls_available(void);
/* A new context (one reference). Returns 0, or -EINVAL with err holding OpenSSL's reason
 * (-EKEYREJECTED when the key does not match the certificate), -ENOMEM, -ENOTSUP. */
int c1m_tls_ctx_new(c1m_tls_ctx_t **out, const c1m_tls_opts_t *o, char *err, size_t errlen);
/* Serve `name` (exact, or "*.example.com") with its own certificate and key. Same errors. */
int c1m_tls_ctx_add_sni(c1m_tls_ctx_t *c, const char *name, const c1m_tls_opts_t *o, char *err, size_t errlen);
void c1m_tls_ctx_unref(c1m_tls_ctx_t *c);
/* Make listener fd accept TLS with c (or replace its context: new connections use the new
 * one). -ENOENT unknown listener. On a hand-off listener (threads mode) each accepted fd carries
 * a reference on c to its target reactor, which creates the session there. */
int c1m_tls_listen(c1m_reactor_t *r, int fd, c1m_tls_ctx_t *c);
/* Make a connection started by c1m_connect (still CONNECTING) speak TLS with c; servername
 * (may be NULL) is sent as SNI and checked against the peer's certificate (a DNS name or an IP
 * address). session_key (may be NULL: no resumption), with a context made with resume: the
 * newest session the context keeps under this key is offered, and the sessions the server
 * sends on this connection are kept under it (the context keeps at most C1M_TLS_SESSIONS keys,
 * the oldest evicted; each its newest session). -EBADF stale id, -EALREADY already TLS or
 * connected, -ENOMEM. */
#define C1M_TLS_SESSIONS 64
int c1m_tls_connect(c1m_reactor_t *r, int fd, uint32_t gen, c1m_tls_ctx_t *c, const char *servername, const char *session_key);
typedef struct c1m_tls_info {
  char protocol[16], cipher[64], alpn[64], servername[256];
  int resumed;
  long verify_result;        /* X509_V_OK (0) when the peer's certificate verified */
  const uint8_t *peer_der;   /* the peer's certificate (DER), valid until the call returns */
  int peer_der_len;          /* 0 when there is none */
} c1m_tls_info_t;
/* Facts of an established TLS connection; calls fn(info, arg) while peer_der is valid.
 * -EBADF stale id, -ENOTCONN not TLS or not established. */
int c1m_tls_info(c1m_reactor_t *r, int fd, uint32_t gen, void (*fn)(const c1m_tls_info_t *, void *), void *arg);
/* OpenSSL's text for the fields of a TLS_REJECT or CLOSE record: the error code (c) and a
 * positive X509 verify result (b, 0 when none). */
void c1m_tls_error_text(uint32_t code, long verify, char *buf, size_t len);
/* Live SSL objects (one per TLS connection) and live TLS contexts in the process, all reactors:
 * the no-leak check's counters (both 0 without TLS). */
void c1m_tls_live(int64_t *ssl, int64_t *ctx);

/* ---- sys.c: syscall wrappers, >= 0 or -errno, EINTR retried ---- */
int c1m_sys_socket(int family);
int c1m_sys_set_int(int fd, int level, int opt, int value);
ssize_t c1m_sys_read(int fd, void *buf, size_t len);
ssize_t c1m_sys_writev(int fd, const struct iovec *iov, int iovcnt);
int c1m_sys_accept(int lfd, struct sockaddr_storage *peer);
int c1m_sys_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
int c1m_sys_close(int fd);
/* Add 1 to an eventfd's counter (a saturated counter counts as done: a wake-up is pending). */
int c1m_sys_eventfd_write(int fd);
/* Read and reset an eventfd's or timerfd's counter: the count (capped at INT32_MAX) or -errno
 * (-EAGAIN when it is zero). */
int c1m_sys_counter_read(int fd);
struct epoll_event;
/* epoll_wait without blocking: the number of events, 0 on EINTR, or -errno. */
int c1m_sys_epoll_wait(int epfd, struct epoll_event *evs, int max);
int c1m_sys_bind(int fd, const struct sockaddr *addr, socklen_t len);
int c1m_sys_listen(int fd, int backlog);
/* 0 when connected at once, -EINPROGRESS while connecting (also after EINTR), or -errno. */
int c1m_sys_connect(int fd, const struct sockaddr *addr, socklen_t len);
/* getpeername (peer != 0) or getsockname into ss. */
int c1m_sys_sockname(int fd, int peer, struct sockaddr_storage *ss, socklen_t *len);
/* The socket's pending error (SO_ERROR) as -errno, 0 when none. */
int c1m_sys_sock_error(int fd);
/* SO_LINGER {1, 0}: close() then resets the connection instead of a FIN. */
int c1m_sys_set_linger0(int fd);
int c1m_sys_shutdown_wr(int fd);
int c1m_sys_epoll_create(void);
/* A non-blocking eventfd with counter 0. */
int c1m_sys_eventfd(void);
/* n bytes from the kernel's random generator (getrandom, never blocking): 0 or -errno. */
int c1m_sys_random(void *buf, size_t n);
/* A non-blocking timerfd ticking every interval_ms (CLOCK_MONOTONIC). */
int c1m_sys_timerfd(uint32_t interval_ms);
/* Restart timerfd fd ticking every interval_ms from now, or stop it (0): 0 or -errno. */
int c1m_sys_timerfd_set(int fd, uint32_t interval_ms);
/* For contract tests: O_NONBLOCK, FD_CLOEXEC and TCP_NODELAY (-1 when not a TCP socket). */
int c1m_sys_fd_info(int fd, int *nonblock, int *cloexec, int *nodelay);
/* For contract tests: SO_KEEPALIVE's settings (idle_s 0 when off); -errno when not a TCP socket. */
int c1m_sys_keepalive_info(int fd, c1m_keepalive_t *ka);
/* SO_KEEPALIVE with TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT; 0 or the first -errno. */
int c1m_sys_set_keepalive(int fd, const c1m_keepalive_t *ka);
/* Raise RLIMIT_NOFILE soft to hard; reports both. */
int c1m_sys_raise_nofile(uint64_t *soft, uint64_t *hard);
/* glibc's M_TRIM_THRESHOLD (what GLIBC_TUNABLES=glibc.malloc.trim_threshold sets at start):
 * free memory above this many bytes at the top of a heap goes back to the kernel at once.
 * Process-wide. 0 or -EINVAL (rejected), -ENOTSUP without glibc. */
int c1m_sys_malloc_trim_threshold(int bytes);
/* glibc's malloc_trim(0): every arena hands its free pages back to the kernel (madvise), not only
 * the free top of each heap as M_TRIM_THRESHOLD does. Walks every arena's free chunks under
 * its lock: for a process that has just gone idle, not for a hot path. Process-wide.
 * 1 (memory was returned), 0 (none), -ENOTSUP without glibc. */
int c1m_sys_malloc_trim(void);
/* Every thread of this process under SCHED_BATCH (on) or SCHED_OTHER (off), static priority 0,
 * nice values kept. A batch thread does not preempt the running one when it wakes: it waits for
 * the current slice to end, so a loaded server wakes less often and takes more per wake-up.
 * Threads and processes created later by a switched thread inherit the policy (fork, exec,
 * pthread_create). A thread that exits during the walk is skipped. The number of threads
 * switched, or the first -errno (-EPERM under a seccomp or LSM policy that forbids it). */
int c1m_sys_sched_batch(int on);

/* UDP (udp.c) */
struct mmsghdr;
/* A non-blocking, close-on-exec UDP socket. */
int c1m_sys_udp_socket(int family);
int c1m_sys_setsockopt(int fd, int level, int opt, const void *val, socklen_t len);
/* recvmmsg without blocking: the number of datagrams or -errno (-EAGAIN: none queued). */
int c1m_sys_recvmmsg(int fd, struct mmsghdr *msgs, unsigned n, int flags);
/* sendmmsg without blocking: how many datagrams the kernel took (the first n) or -errno for
 * the first one. */
int c1m_sys_sendmmsg(int fd, struct mmsghdr *msgs, unsigned n);

/* ---- errname.c ---- */
/* The symbolic name of a positive or negative Linux errno ("ECONNRESET"), NULL if none. */
const char *c1m_errname(int err);

#endif
