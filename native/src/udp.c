/*
 * UDP sockets on the reactor: datagrams in batches, recvmmsg in and sendmmsg out.
 *
 * Model: a UDP socket is watched level-triggered (EPOLLIN; EPOLLOUT only while its send queue
 * holds datagrams). On readiness, recvmmsg fills the receive area behind what this poll already
 * read: each datagram gets a C1M_UDP_ADDR_SIZE address entry, then its bytes; one UDP_MSG record
 * each. JS answers with UDP_SEND commands; after the batch a run of them to one socket leaves by
 * sendmmsg, runs of equal-size datagrams to one peer as one UDP_SEGMENT (GSO) send each. What the
 * kernel refuses with EAGAIN waits in the socket's FIFO (bounded) for EPOLLOUT.
 *
 * Invariants:
 * - Nothing received is dropped here: when the event array or the receive area has no room for
 *   another full-size datagram, reading stops and the datagrams stay in the kernel's queue; the
 *   level-triggered epoll reports the socket again at the next poll.
 * - A datagram longer than max_msg is cut to max_msg bytes and its record carries the real length
 *   (MSG_TRUNC), so JS can tell; it is never presented as whole.
 * - The send queue never holds more than queue_bytes (+ one datagram's header); a datagram past
 *   the bound is dropped and counted. While the queue holds datagrams, new ones queue behind them
 *   (order kept). The slot's out_len mirrors the queued bytes (JS reads it for backpressure).
 * - Socket errors (ICMP on a connected socket: ECONNREFUSED, ...) become UDP_ERROR records, never
 *   a closed socket or an abort; a send error drops that one datagram and is counted.
 * - The slot of a UDP fd has C1M_F_UDP and never C1M_F_OPEN: connection code (live(), the
 *   teardown loop, JS's connection sweep) never sees it. Its gen is bumped at close, so commands
 *   staged for a closed socket are skipped.
 *
 * - With UDP_GRO the kernel may hand over several datagrams of one flow in one message (a GSO
 *   sender on this machine, a GRO-capable device): they are cut at the segment size the kernel
 *   reports, one record each, sharing the message's address entry. GRO is only turned on when
 *   max_msg is 65535 (a coalesced message is at most 64 KiB, so none is ever cut).
 * - A GSO run (UDP_SEGMENT) only joins datagrams of one size (the last may be shorter) to one
 *   destination, consecutive in the command stream; when the kernel refuses the run, its
 *   datagrams go one by one, so GSO never changes what the peer receives.
 *
 * Hot path: udp_event -> udp_read (recvmmsg, pack, records); udp_send_run -> batch_add ->
 * batch_send (sendmmsg).
 */
#include "internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>

#define UDP_BATCH 64   /* datagrams per recvmmsg / sendmmsg call */
#define UDP_BUDGET 256 /* datagrams read per socket per poll (fairness) */
#define UDP_IOV_POOL 256 /* datagrams per send batch, GSO segments included */
#define GSO_SEGS 64      /* the kernel's UDP_MAX_SEGMENTS */
#define GSO_BYTES 65000  /* payload of one GSO send (IPv4 allows 65,507) */
#define ALIGN8(n) (((n) + 7u) & ~7u)

typedef struct udp_qent {
  struct udp_qent *next;
  uint32_t len;
  uint8_t addr[C1M_UDP_ADDR_SIZE];
  uint8_t data[];
} udp_qent_t;

typedef struct udp_sock {
  struct udp_sock *next;
  int fd;
  uint32_t max_msg, queue_cap;
  udp_qent_t *head, *tail; /* send queue (after EAGAIN) */
  uint32_t queued, queued_bytes;
  int want_drain; /* JS saw backpressure: emit UDP_DRAIN when the queue empties */
  int out_armed;  /* EPOLLOUT registered */
  int gso;        /* UDP_SEGMENT allowed: runs of equal-size datagrams to one peer in one send */
  int gro;        /* UDP_GRO on: the kernel may hand over several datagrams of one flow at once */
  int family;     /* AF_INET or AF_INET6: which multicast options apply */
  uint64_t sent, drops, send_errors, gso_sent, gro_received;
} udp_sock_t;

/* A sendmmsg batch being built. A message is one datagram, or a GSO run: datagrams of one size
 * (the last may be shorter) to one destination, consecutive iovs of the pool, sent as one
 * UDP_SEGMENT send that the kernel (or the device) cuts into datagrams. */
typedef struct send_batch {
  struct mmsghdr msgs[UDP_BATCH];
  struct iovec iov[UDP_IOV_POOL];
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } ctl[UDP_BATCH];
  uint32_t seg[UDP_BATCH], bytes[UDP_BATCH];
  uint8_t closed[UDP_BATCH]; /* a shorter last segment ended the run */
  unsigned n, niov;
} send_batch_t;

static udp_sock_t *udp_find(c1m_reactor_t *r, int fd) {
  for (udp_sock_t *u = r->udp; u; u = u->next)
    if (u->fd == fd) return u;
  return NULL;
}

/* The socket (fd, gen) if it is open, else NULL. */
static udp_sock_t *udp_live(c1m_reactor_t *r, int fd, uint32_t gen) {
  if (fd < 0 || (uint32_t)fd >= r->cfg.nslots) return NULL;
  const c1m_slot_t *s = &r->slots[fd];
  if (s->gen != gen || !(s->flags & C1M_F_UDP)) return NULL;
  return udp_find(r, fd);
}

static void udp_record(c1m_reactor_t *r, int in_poll, int kind, int fd, int32_t a, int32_t b, int32_t c) {
  uint32_t gen = r->slots[fd].gen;
  if (in_poll) {
    *ev_push(r) = (c1m_event_t){.kind = kind, .fd = fd, .gen = (int32_t)gen, .a = a, .b = b, .c = c};
  } else {
    uint32_t before = r->ndeferred;
    ev_defer(r, kind, fd, gen, a, b);
    if (r->ndeferred > before) r->deferred[r->ndeferred - 1].c = c; /* not when it was lost (ENOMEM) */
  }
}

static socklen_t addr_len(const uint8_t *entry) {
  sa_family_t fam;
  memcpy(&fam, entry + offsetof(struct sockaddr, sa_family), sizeof fam);
  return fam == AF_INET ? sizeof(struct sockaddr_in) : fam == AF_INET6 ? sizeof(struct sockaddr_in6) : 0;
}

/* ---- the send queue ---- */

static void set_out(c1m_reactor_t *r, int fd, udp_sock_t *u, int want) {
  if (u->out_armed == want) return;
  int rc = c1m_sys_epoll_ctl(r->epfd, EPOLL_CTL_MOD, fd, EPOLLIN | (want ? EPOLLOUT : 0), tag(fd, TAG_UDP));
  if (rc < 0) loop_report(r, C1M_E_POLL, fd, rc, 0);
  else u->out_armed = want;
}

static void queue_push(c1m_reactor_t *r, int fd, udp_sock_t *u, const uint8_t *addr, const uint8_t *data, uint32_t len) {
  udp_qent_t *q = NULL;
  if (u->queued_bytes + len <= u->queue_cap) q = malloc(sizeof *q + len);
  if (!q) {
    u->drops++;
    return;
  }
  q->next = NULL;
  q->len = len;
  memcpy(q->addr, addr, C1M_UDP_ADDR_SIZE);
  memcpy(q->data, data, len);
  if (u->tail) u->tail->next = q;
  else u->head = q;
  u->tail = q;
  u->queued++;
  u->queued_bytes += len;
  r->slots[fd].out_len = u->queued_bytes;
  set_out(r, fd, u, 1);
}

static void queue_pop(c1m_reactor_t *r, int fd, udp_sock_t *u) {
  udp_qent_t *q = u->head;
  u->head = q->next;
  if (!u->head) u->tail = NULL;
  u->queued--;
  u->queued_bytes -= q->len;
  r->slots[fd].out_len = u->queued_bytes;
  free(q);
}

static void queue_free(c1m_reactor_t *r, int fd, udp_sock_t *u) {
  while (u->head) queue_pop(r, fd, u);
}

/* EPOLLOUT: send the queue in sendmmsg batches until EAGAIN or empty. */
static void queue_flush(c1m_reactor_t *r, int fd, udp_sock_t *u) {
  int failed = 0, first_err = 0;
  while (u->head) {
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    unsigned n = 0;
    for (udp_qent_t *q = u->head; q && n < UDP_BATCH; q = q->next, n++) {
      socklen_t alen = addr_len(q->addr);
      iov[n] = (struct iovec){.iov_base = q->data, .iov_len = q->len};
      msgs[n].msg_hdr = (struct msghdr){.msg_name = alen ? q->addr : NULL, .msg_namelen = alen, .msg_iov = &iov[n], .msg_iovlen = 1};
    }
    int rc = c1m_sys_sendmmsg(fd, msgs, n);
    if (rc == -EAGAIN) break;
    if (rc < 0) { /* the head is refused: drop it, go on with the rest */
      u->send_errors++;
      failed++;
      if (!first_err) first_err = rc;
      queue_pop(r, fd, u);
      continue;
    }
    u->sent += (uint64_t)rc;
    for (int i = 0; i < rc; i++) queue_pop(r, fd, u);
  }
  if (failed) udp_record(r, 1, C1M_EV_UDP_ERROR, fd, first_err, C1M_UDP_E_SEND, failed);
  if (u->head) return;
  set_out(r, fd, u, 0);
  if (u->want_drain) {
    u->want_drain = 0;
    udp_record(r, 1, C1M_EV_UDP_DRAIN, fd, 0, 0, 0);
  }
}

/* Queue every datagram of message m (after EAGAIN). */
static void queue_msg(c1m_reactor_t *r, int fd, udp_sock_t *u, const struct msghdr *h) {
  uint8_t none[C1M_UDP_ADDR_SIZE] = {0};
  /* msg_name points at the command's address entry (or is NULL for the connected peer) */
  const uint8_t *addr = h->msg_name ? h->msg_name : none;
  for (size_t j = 0; j < h->msg_iovlen; j++)
    queue_push(r, fd, u, addr, h->msg_iov[j].iov_base, (uint32_t)h->msg_iov[j].iov_len);
}

/* A GSO run the kernel refused (no UDP_SEGMENT, a segment larger than the path MTU allows, ...):
 * its datagrams one by one. Returns -EAGAIN if they must wait (queued), else 0. */
static int send_split(c1m_reactor_t *r, int fd, udp_sock_t *u, const struct msghdr *h, int *failed, int *first_err) {
  for (size_t j = 0; j < h->msg_iovlen; j++) {
    struct mmsghdr one = {.msg_hdr = {.msg_name = h->msg_name, .msg_namelen = h->msg_namelen, .msg_iov = &h->msg_iov[j], .msg_iovlen = 1}};
    int rc = c1m_sys_sendmmsg(fd, &one, 1);
    if (rc == 1) {
      u->sent++;
    } else if (rc == -EAGAIN || rc == 0) {
      struct msghdr rest = *h;
      rest.msg_iov += j, rest.msg_iovlen -= j;
      queue_msg(r, fd, u, &rest);
      return -EAGAIN;
    } else {
      u->send_errors++;
      (*failed)++;
      if (!*first_err) *first_err = rc;
    }
  }
  return 0;
}

/* Send the batch now; what EAGAIN leaves goes to the queue. Outside a poll (the command stream). */
static void batch_send(c1m_reactor_t *r, int fd, udp_sock_t *u, send_batch_t *b, int *failed, int *first_err) {
  for (unsigned i = 0; i < b->n; i++) {
    struct msghdr *h = &b->msgs[i].msg_hdr;
    h->msg_control = NULL;
    h->msg_controllen = 0;
    if (h->msg_iovlen > 1) {
      struct cmsghdr *cm = &b->ctl[i].align;
      h->msg_control = b->ctl[i].buf;
      h->msg_controllen = sizeof b->ctl[i].buf;
      cm->cmsg_level = SOL_UDP;
      cm->cmsg_type = UDP_SEGMENT;
      cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t seg = (uint16_t)b->seg[i];
      memcpy(CMSG_DATA(cm), &seg, sizeof seg);
    }
  }
  unsigned i = 0;
  while (i < b->n) {
    int rc = c1m_sys_sendmmsg(fd, b->msgs + i, b->n - i);
    if (rc > 0) {
      for (int j = 0; j < rc; j++, i++) {
        size_t k = b->msgs[i].msg_hdr.msg_iovlen;
        u->sent += k;
        if (k > 1) u->gso_sent += k;
      }
      continue;
    }
    const struct msghdr *h = &b->msgs[i].msg_hdr;
    if (rc == -EAGAIN || rc == 0) {
      for (; i < b->n; i++) queue_msg(r, fd, u, &b->msgs[i].msg_hdr);
      break;
    }
    if (h->msg_iovlen > 1) {
      if (rc == -ENOPROTOOPT || rc == -EOPNOTSUPP) u->gso = 0; /* this kernel has no UDP GSO */
      i++;
      if (send_split(r, fd, u, h, failed, first_err) == -EAGAIN) {
        for (; i < b->n; i++) queue_msg(r, fd, u, &b->msgs[i].msg_hdr);
        break;
      }
      continue;
    }
    u->send_errors++;
    (*failed)++;
    if (!*first_err) *first_err = rc;
    i++;
  }
  b->n = b->niov = 0;
}

/* Add a datagram to the batch: to the last message's GSO run when it can join it. */
static void batch_add(c1m_reactor_t *r, int fd, udp_sock_t *u, send_batch_t *b, uint8_t *addr, uint8_t *data,
                      uint32_t len, int *failed, int *first_err) {
  socklen_t alen = addr_len(addr);
  if (b->n > 0 && u->gso) {
    unsigned m = b->n - 1;
    struct msghdr *h = &b->msgs[m].msg_hdr;
    if (!b->closed[m] && len > 0 && len <= b->seg[m] && h->msg_iovlen < GSO_SEGS && b->bytes[m] + len <= GSO_BYTES &&
        b->niov < UDP_IOV_POOL && h->msg_namelen == alen && (alen == 0 || memcmp(h->msg_name, addr, alen) == 0)) {
      b->iov[b->niov++] = (struct iovec){.iov_base = data, .iov_len = len};
      h->msg_iovlen++;
      b->bytes[m] += len;
      b->closed[m] = len < b->seg[m];
      return;
    }
  }
  if (b->n == UDP_BATCH || b->niov == UDP_IOV_POOL) batch_send(r, fd, u, b, failed, first_err);
  unsigned m = b->n++;
  b->iov[b->niov] = (struct iovec){.iov_base = data, .iov_len = len};
  b->msgs[m].msg_hdr = (struct msghdr){.msg_name = alen ? addr : NULL, .msg_namelen = alen, .msg_iov = &b->iov[b->niov], .msg_iovlen = 1};
  b->niov++;
  b->seg[m] = b->bytes[m] = len;
  b->closed[m] = len == 0;
}

uint32_t udp_send_run(c1m_reactor_t *r, const c1m_cmd_t *c, uint32_t pos, uint32_t used) {
  udp_sock_t *u = udp_live(r, c->fd, c->gen);
  send_batch_t b;
  b.n = b.niov = 0;
  int failed = 0, first_err = 0, want_drain = 0;
  uint32_t p = pos;
  while (p + sizeof(c1m_cmd_t) <= used) {
    c1m_cmd_t w;
    memcpy(&w, r->send + p, sizeof w);
    if ((w.op & C1M_OP_MASK) != C1M_OP_UDP_SEND || w.fd != c->fd || w.gen != c->gen) break;
    uint32_t body = p + (uint32_t)sizeof w;
    if (w.len > 65535 || body + C1M_UDP_ADDR_SIZE + w.len > used) return 0;
    p = body + ALIGN8(C1M_UDP_ADDR_SIZE + w.len);
    if (!u) continue;
    want_drain |= (w.op & C1M_OPF_WANT_DRAIN) != 0;
    uint8_t *addr = r->send + body, *data = addr + C1M_UDP_ADDR_SIZE;
    if (u->head) { /* behind datagrams already waiting: keep the order */
      queue_push(r, c->fd, u, addr, data, w.len);
      continue;
    }
    batch_add(r, c->fd, u, &b, addr, data, w.len, &failed, &first_err);
  }
  if (!u) return p;
  if (b.n) batch_send(r, c->fd, u, &b, &failed, &first_err);
  if (failed) udp_record(r, 0, C1M_EV_UDP_ERROR, c->fd, first_err, C1M_UDP_E_SEND, failed);
  if (want_drain) {
    if (u->head) u->want_drain = 1;
    else udp_record(r, 0, C1M_EV_UDP_DRAIN, c->fd, 0, 0, 0);
  }
  return p;
}

/* ---- receiving ---- */

/* The GRO segment size of a received message (0: one datagram). */
static uint32_t gro_size(const struct msghdr *h) {
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(h); cm; cm = CMSG_NXTHDR((struct msghdr *)h, cm)) {
    if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO && cm->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int seg;
      memcpy(&seg, CMSG_DATA(cm), sizeof seg);
      return seg > 0 ? (uint32_t)seg : 0;
    }
  }
  return 0;
}

static void udp_read(c1m_reactor_t *r, int fd, udp_sock_t *u) {
  uint32_t stride = C1M_UDP_ADDR_SIZE + ALIGN8(u->max_msg), got = 0;
  /* a GRO message may carry up to GSO_SEGS datagrams, each a record */
  uint32_t per_msg = u->gro ? GSO_SEGS : 1;
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl[UDP_BATCH];
  while (got < UDP_BUDGET) {
    uint32_t off = ALIGN8(r->recv_used);
    if (off >= r->recv_cap || r->nev + 2 + per_msg > r->ev_cap) break;
    uint32_t n = (r->recv_cap - off) / stride;
    if (n > (r->ev_cap - r->nev - 2) / per_msg) n = (r->ev_cap - r->nev - 2) / per_msg;
    if (n > UDP_BATCH) n = UDP_BATCH;
    if (n > UDP_BUDGET - got) n = UDP_BUDGET - got;
    if (n == 0) break;
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    uint8_t *base = r->recv + off;
    for (uint32_t i = 0; i < n; i++) {
      uint8_t *slot = base + (size_t)i * stride;
      iov[i] = (struct iovec){.iov_base = slot + C1M_UDP_ADDR_SIZE, .iov_len = u->max_msg};
      msgs[i].msg_hdr = (struct msghdr){.msg_name = slot, .msg_namelen = sizeof(struct sockaddr_in6), .msg_iov = &iov[i], .msg_iovlen = 1};
      if (u->gro) msgs[i].msg_hdr.msg_control = ctl[i].buf, msgs[i].msg_hdr.msg_controllen = sizeof ctl[i].buf;
    }
    int rc = c1m_sys_recvmmsg(fd, msgs, n, MSG_TRUNC);
    if (rc == -EAGAIN) break;
    if (rc < 0) {
      /* a pending socket error (ICMP on a connected socket), now cleared; datagrams queued
       * behind it are read at the next poll (the socket is still readable) */
      udp_record(r, 1, C1M_EV_UDP_ERROR, fd, rc, C1M_UDP_E_RECV, 0);
      break;
    }
    /* pack: entry + bytes, 8-aligned, one after the other; slot i moves down (or stays) */
    uint32_t w = off;
    int32_t gen = (int32_t)r->slots[fd].gen;
    for (int i = 0; i < rc; i++) {
      uint32_t real = msgs[i].msg_len, have = real < u->max_msg ? real : u->max_msg;
      uint8_t *slot = base + (size_t)i * stride;
      if (slot != r->recv + w) memmove(r->recv + w, slot, C1M_UDP_ADDR_SIZE + have);
      if (msgs[i].msg_hdr.msg_namelen == 0) memset(r->recv + w, 0, C1M_UDP_ADDR_SIZE);
      uint32_t seg = u->gro ? gro_size(&msgs[i].msg_hdr) : 0;
      if (seg == 0 || seg >= have || have < real) {
        *ev_push(r) = (c1m_event_t){.kind = C1M_EV_UDP_MSG, .fd = fd, .gen = gen, .a = (int32_t)(w + C1M_UDP_ADDR_SIZE),
                                    .b = (int32_t)real, .c = (int32_t)w};
      } else { /* several datagrams of one sender, seg bytes each (the last may be shorter) */
        for (uint32_t at = 0; at < have; at += seg) {
          uint32_t len = have - at < seg ? have - at : seg;
          *ev_push(r) = (c1m_event_t){.kind = C1M_EV_UDP_MSG, .fd = fd, .gen = gen,
                                      .a = (int32_t)(w + C1M_UDP_ADDR_SIZE + at), .b = (int32_t)len, .c = (int32_t)w};
          u->gro_received++;
        }
      }
      w = ALIGN8(w + C1M_UDP_ADDR_SIZE + have);
    }
    r->recv_used = w;
    got += (uint32_t)rc;
    if ((uint32_t)rc < n) break; /* short: the queue is empty */
  }
}

void udp_event(c1m_reactor_t *r, int fd, uint32_t events) {
  udp_sock_t *u = udp_find(r, fd);
  if (!u || !(r->slots[fd].flags & C1M_F_UDP)) return; /* closed since harvested */
  if ((events & EPOLLOUT) && u->head) queue_flush(r, fd, u);
  if (events & (EPOLLIN | EPOLLERR)) udp_read(r, fd, u);
}

/* ---- open, close, options ---- */

int c1m_udp_open(c1m_reactor_t *r, const struct sockaddr *addr, socklen_t len, const c1m_udp_opts_t *o) {
  if ((addr->sa_family != AF_INET && addr->sa_family != AF_INET6) || o->max_msg == 0 || o->max_msg > 65535)
    return -EINVAL;
  int fd = c1m_sys_udp_socket(addr->sa_family);
  if (fd < 0) return fd;
  int rc = 0;
  if ((uint32_t)fd >= r->cfg.nslots) rc = -EMFILE;
  if (rc == 0 && o->reuseport) rc = c1m_sys_set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
  if (rc == 0 && addr->sa_family == AF_INET6) rc = c1m_sys_set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, o->v6only != 0);
  if (rc == 0 && o->rcvbuf > 0) rc = c1m_sys_set_int(fd, SOL_SOCKET, SO_RCVBUF, o->rcvbuf);
  if (rc == 0 && o->sndbuf > 0) rc = c1m_sys_set_int(fd, SOL_SOCKET, SO_SNDBUF, o->sndbuf);
  if (rc == 0) rc = c1m_sys_bind(fd, addr, len);
  udp_sock_t *u = NULL;
  if (rc == 0 && !(u = calloc(1, sizeof *u))) rc = -ENOMEM;
  if (rc == 0) rc = c1m_sys_epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, EPOLLIN, tag(fd, TAG_UDP));
  if (rc < 0) {
    free(u);
    c1m_sys_close(fd);
    return rc;
  }
  u->fd = fd;
  u->family = addr->sa_family;
  u->max_msg = o->max_msg;
  u->queue_cap = o->queue_bytes;
  u->gso = o->gso != 0;
  /* GRO only when a whole coalesced message always fits (it is at most 64 KiB); a kernel without
   * UDP_GRO simply hands over one datagram at a time */
  if (o->gro && o->max_msg >= 65535) u->gro = c1m_sys_set_int(fd, SOL_UDP, UDP_GRO, 1) == 0;
  u->next = r->udp;
  r->udp = u;
  c1m_slot_t *s = &r->slots[fd];
  s->flags = C1M_F_UDP;
  s->out_len = 0;
  return fd;
}

static void udp_release(c1m_reactor_t *r, udp_sock_t *u) {
  c1m_slot_t *s = &r->slots[u->fd];
  queue_free(r, u->fd, u);
  int rc = c1m_sys_close(u->fd);
  if (rc < 0) loop_report(r, C1M_E_CLOSE, u->fd, rc, 0);
  s->flags = 0;
  s->out_len = 0;
  s->gen = (s->gen + 1) & C1M_GEN_MASK;
  free(u);
}

int c1m_udp_close(c1m_reactor_t *r, int fd, uint32_t gen) {
  if (!udp_live(r, fd, gen)) return -EBADF;
  for (udp_sock_t **p = &r->udp; *p; p = &(*p)->next) {
    if ((*p)->fd != fd) continue;
    udp_sock_t *u = *p;
    *p = u->next;
    udp_release(r, u);
    return 0;
  }
  return -EBADF;
}

void udp_fini(c1m_reactor_t *r) {
  while (r->udp) {
    udp_sock_t *u = r->udp;
    r->udp = u->next;
    udp_release(r, u);
  }
}

int c1m_udp_connect(c1m_reactor_t *r, int fd, uint32_t gen, const struct sockaddr *addr, socklen_t len) {
  if (!udp_live(r, fd, gen)) return -EBADF;
  if (addr) return c1m_sys_connect(fd, addr, len);
  struct sockaddr unspec = {.sa_family = AF_UNSPEC};
  return c1m_sys_connect(fd, &unspec, sizeof unspec);
}

int c1m_udp_membership(c1m_reactor_t *r, int fd, uint32_t gen, int join, const struct sockaddr *group,
                       const struct sockaddr *iface) {
  if (!udp_live(r, fd, gen)) return -EBADF;
  if (group->sa_family == AF_INET) {
    struct ip_mreq m = {.imr_multiaddr = ((const struct sockaddr_in *)group)->sin_addr};
    m.imr_interface.s_addr = iface && iface->sa_family == AF_INET ? ((const struct sockaddr_in *)iface)->sin_addr.s_addr
                                                                  : htonl(INADDR_ANY);
    return c1m_sys_setsockopt(fd, IPPROTO_IP, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP, &m, sizeof m);
  }
  if (group->sa_family == AF_INET6) {
    struct ipv6_mreq m = {.ipv6mr_multiaddr = ((const struct sockaddr_in6 *)group)->sin6_addr};
    m.ipv6mr_interface = iface && iface->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)iface)->sin6_scope_id : 0;
    return c1m_sys_setsockopt(fd, IPPROTO_IPV6, join ? IPV6_ADD_MEMBERSHIP : IPV6_DROP_MEMBERSHIP, &m, sizeof m);
  }
  return -EINVAL;
}

int c1m_udp_multicast(c1m_reactor_t *r, int fd, uint32_t gen, int what, int value, const struct sockaddr *iface) {
  udp_sock_t *u = udp_live(r, fd, gen);
  if (!u) return -EBADF;
  int v6 = u->family == AF_INET6;
  switch (what) {
  case C1M_UDP_MCAST_TTL:
    if (value < 0 || value > 255) return -EINVAL;
    return c1m_sys_set_int(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_MULTICAST_HOPS : IP_MULTICAST_TTL, value);
  case C1M_UDP_MCAST_LOOP:
    return c1m_sys_set_int(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_MULTICAST_LOOP : IP_MULTICAST_LOOP, value != 0);
  case C1M_UDP_MCAST_IF:
    if (v6) /* IPv6 names the interface by its index (0: the default) */
      return iface || value < 0 ? -EINVAL : c1m_sys_set_int(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, value);
    if (iface && iface->sa_family != AF_INET) return -EINVAL;
    struct in_addr a = {.s_addr = iface ? ((const struct sockaddr_in *)iface)->sin_addr.s_addr : htonl(INADDR_ANY)};
    return c1m_sys_setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &a, sizeof a);
  default:
    return -EINVAL;
  }
}

int c1m_udp_stats(c1m_reactor_t *r, int fd, uint32_t gen, c1m_udp_stats_t *out) {
  udp_sock_t *u = udp_live(r, fd, gen);
  if (!u) return -EBADF;
  *out = (c1m_udp_stats_t){.sent = u->sent, .drops = u->drops, .send_errors = u->send_errors,
                           .gso_sent = u->gso_sent, .gro_received = u->gro_received, .queued = u->queued, .queued_bytes = u->queued_bytes};
  return 0;
}

int c1m_udp_sockname(c1m_reactor_t *r, int fd, uint32_t gen, int peer, struct sockaddr_storage *ss, socklen_t *len) {
  if (!udp_live(r, fd, gen)) return -EBADF;
  return c1m_sys_sockname(fd, peer, ss, len);
}
