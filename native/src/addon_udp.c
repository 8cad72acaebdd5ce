/*
 * The UDP part of the Node-API boundary (native/src/udp.c underneath): setup calls (udpOpen)
 * throw; the others return 0 / -errno or undefined, like the TCP ones. Sends never cross here:
 * they are UDP_SEND commands in the send area. addon.c's export table calls
 * addon_udp_exports().
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>

#include "addon.h"

/* ---- UDP (native/src/udp.c) ----
 * Setup calls (udpOpen) throw; the others return 0 / -errno or undefined, like the TCP ones.
 * Sends never cross here: they are UDP_SEND commands in the send area. */

/* udpOpen(handle, ip, port, {reusePort, ipv6Only, recvBufferSize, sendBufferSize, maxMessageSize,
 * sendQueueBytes, gso, gro}) -> [fd, bound port] */
static napi_value udp_open(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  addon_reactor_t *a = addon_reactor_args(env, info, 4, argv);
  if (!a) return NULL;
  uint32_t port, rcv = 0, snd = 0;
  c1m_udp_opts_t o = {0};
  CHECK(napi_get_value_uint32(env, argv[2], &port));
  if (addon_get_bool_prop(env, argv[3], "reusePort", &o.reuseport) || addon_get_bool_prop(env, argv[3], "ipv6Only", &o.v6only) ||
      addon_get_u32_prop(env, argv[3], "recvBufferSize", &rcv) || addon_get_u32_prop(env, argv[3], "sendBufferSize", &snd) ||
      addon_get_u32_prop(env, argv[3], "maxMessageSize", &o.max_msg) || addon_get_u32_prop(env, argv[3], "sendQueueBytes", &o.queue_bytes) ||
      addon_get_bool_prop(env, argv[3], "gso", &o.gso) || addon_get_bool_prop(env, argv[3], "gro", &o.gro))
    return napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "udpOpen(): bad options object"), NULL;
  o.rcvbuf = rcv > INT32_MAX ? INT32_MAX : (int)rcv;
  o.sndbuf = snd > INT32_MAX ? INT32_MAX : (int)snd;
  struct sockaddr_storage ss;
  socklen_t len;
  if (addon_to_sockaddr(env, argv[1], port, &ss, &len) < 0) return addon_throw_errno(env, EINVAL, "bind");
  int fd = c1m_udp_open(a->r, (struct sockaddr *)&ss, len, &o);
  if (fd < 0) return addon_throw_errno(env, fd, "bind");
  return addon_fd_port(env, fd, port); /* its gen is the slot's: JS reads it from the slot table */
}

/* udpClose(handle, fd, gen) -> 0 or -errno */
static napi_value udp_close(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  addon_reactor_t *a = addon_reactor_args(env, info, 3, argv);
  int32_t fd;
  uint32_t gen;
  if (!a) return NULL;
  if (addon_fd_gen(env, argv, &fd, &gen)) return napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "udpClose(h, fd, gen)"), NULL;
  return addon_num(env, c1m_udp_close(a->r, fd, gen));
}

/* udpConnect(handle, fd, gen, ip | undefined, port) -> 0 or -errno (undefined ip: disconnect) */
static napi_value udp_connect(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  addon_reactor_t *a = addon_reactor_args(env, info, 5, argv);
  int32_t fd;
  uint32_t gen, port = 0;
  if (!a) return NULL;
  if (addon_fd_gen(env, argv, &fd, &gen) || napi_get_value_uint32(env, argv[4], &port) != napi_ok)
    return napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "udpConnect(h, fd, gen, ip, port)"), NULL;
  napi_valuetype t = napi_undefined;
  napi_typeof(env, argv[3], &t);
  if (t != napi_string) return addon_num(env, c1m_udp_connect(a->r, fd, gen, NULL, 0));
  struct sockaddr_storage ss;
  socklen_t len;
  if (addon_to_sockaddr(env, argv[3], port, &ss, &len) < 0) return addon_num(env, -EINVAL);
  return addon_num(env, c1m_udp_connect(a->r, fd, gen, (struct sockaddr *)&ss, len));
}

/* udpMembership(handle, fd, gen, join, group, iface | undefined) -> 0 or -errno */
static napi_value udp_membership(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  addon_reactor_t *a = addon_reactor_args(env, info, 6, argv);
  int32_t fd;
  uint32_t gen;
  bool join = false;
  if (!a) return NULL;
  if (addon_fd_gen(env, argv, &fd, &gen) || napi_get_value_bool(env, argv[3], &join) != napi_ok)
    return napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "udpMembership(h, fd, gen, join, group, iface)"), NULL;
  struct sockaddr_storage group, iface;
  socklen_t len;
  if (addon_to_sockaddr(env, argv[4], 0, &group, &len) < 0) return addon_num(env, -EINVAL);
  napi_valuetype t = napi_undefined;
  napi_typeof(env, argv[5], &t);
  if (t == napi_string && addon_to_sockaddr(env, argv[5], 0, &iface, &len) < 0) return addon_num(env, -EINVAL);
  return addon_num(env, c1m_udp_membership(a->r, fd, gen, join, (struct sockaddr *)&group,
                                     t == napi_string ? (struct sockaddr *)&iface : NULL));
}

/* udpMulticast(handle, fd, gen, what, value, iface | undefined) -> 0 or -errno */
static napi_value udp_multicast(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  addon_reactor_t *a = addon_reactor_args(env, info, 6, argv);
  int32_t fd, what = 0, value = 0;
  uint32_t gen;
  if (!a) return NULL;
  if (addon_fd_gen(env, argv, &fd, &gen) || napi_get_value_int32(env, argv[3], &what) != napi_ok ||
      napi_get_value_int32(env, argv[4], &value) != napi_ok)
    return napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "udpMulticast(h, fd, gen, what, value, iface)"), NULL;
  struct sockaddr_storage iface;
  socklen_t len;
  napi_valuetype t = napi_undefined;
  napi_typeof(env, argv[5], &t);
  if (t == napi_string && addon_to_sockaddr(env, argv[5], 0, &iface, &len) < 0) return addon_num(env, -EINVAL);
  return addon_num(env, c1m_udp_multicast(a->r, fd, gen, what, value, t == napi_string ? (struct sockaddr *)&iface : NULL));
}

/* udpStats(handle, fd, gen) -> [sent, drops, sendErrors, queued, queuedBytes, gsoSent, groReceived] | undefined */
static napi_value udp_stats(napi_env env, napi_callback_info info) {
  napi_value argv[3], out;
  addon_reactor_t *a = addon_reactor_args(env, info, 3, argv);
  int32_t fd;
  uint32_t gen;
  c1m_udp_stats_t st;
  if (!a) return NULL;
  if (addon_fd_gen(env, argv, &fd, &gen) || c1m_udp_stats(a->r, fd, gen, &st) < 0) {
    napi_get_undefined(env, &out);
    return out;
  }
  CHECK(napi_create_array_with_length(env, 7, &out));
  CHECK(napi_set_element(env, out, 0, addon_num(env, (double)st.sent)));
  CHECK(napi_set_element(env, out, 1, addon_num(env, (double)st.drops)));
  CHECK(napi_set_element(env, out, 2, addon_num(env, (double)st.send_errors)));
  CHECK(napi_set_element(env, out, 3, addon_num(env, st.queued)));
  CHECK(napi_set_element(env, out, 4, addon_num(env, st.queued_bytes)));
  CHECK(napi_set_element(env, out, 5, addon_num(env, (double)st.gso_sent)));
  CHECK(napi_set_element(env, out, 6, addon_num(env, (double)st.gro_received)));
  return out;
}

/* udpSockname(handle, fd, gen, peer) -> [ip, port] | undefined */
static napi_value udp_sockname(napi_env env, napi_callback_info info) {
  napi_value argv[4], out;
  addon_reactor_t *a = addon_reactor_args(env, info, 4, argv);
  int32_t fd;
  uint32_t gen;
  bool peer = false;
  struct sockaddr_storage ss;
  socklen_t len;
  if (!a) return NULL;
  if (addon_fd_gen(env, argv, &fd, &gen) || napi_get_value_bool(env, argv[3], &peer) != napi_ok ||
      c1m_udp_sockname(a->r, fd, gen, peer, &ss, &len) < 0) {
    napi_get_undefined(env, &out);
    return out;
  }
  return addon_addr_pair(env, &ss);
}

/* udpEncode(ip, port, Uint8Array) -> 0 or -EINVAL: the address entry (C1M_UDP_ADDR_SIZE bytes,
 * zero-filled) of ip:port, for sends to an address JS was given as a string. */
static napi_value udp_encode(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t port = 0;
  napi_typedarray_type tt;
  size_t n = 0;
  void *data = NULL;
  if (argc < 3 || napi_get_value_uint32(env, argv[1], &port) != napi_ok ||
      napi_get_typedarray_info(env, argv[2], &tt, &n, &data, NULL, NULL) != napi_ok || tt != napi_uint8_array ||
      n < C1M_UDP_ADDR_SIZE)
    return napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "udpEncode(ip, port, Uint8Array(32))"), NULL;
  struct sockaddr_storage ss;
  socklen_t len;
  if (port > 65535 || addon_to_sockaddr(env, argv[0], port, &ss, &len) < 0) return addon_num(env, -EINVAL);
  memset(data, 0, C1M_UDP_ADDR_SIZE);
  memcpy(data, &ss, len);
  return addon_num(env, 0);
}

/* The UDP part of the export table and of the constants. */
int addon_udp_exports(napi_env env, napi_value exports, napi_value k) {
  napi_property_descriptor fns[] = {
      {"udpOpen", NULL, udp_open, NULL, NULL, NULL, napi_default, NULL},
      {"udpClose", NULL, udp_close, NULL, NULL, NULL, napi_default, NULL},
      {"udpConnect", NULL, udp_connect, NULL, NULL, NULL, napi_default, NULL},
      {"udpMembership", NULL, udp_membership, NULL, NULL, NULL, napi_default, NULL},
      {"udpMulticast", NULL, udp_multicast, NULL, NULL, NULL, napi_default, NULL},
      {"udpStats", NULL, udp_stats, NULL, NULL, NULL, napi_default, NULL},
      {"udpSockname", NULL, udp_sockname, NULL, NULL, NULL, napi_default, NULL},
      {"udpEncode", NULL, udp_encode, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns) != napi_ok) return -1;
  addon_set_const(env, k, "EV_UDP_MSG", C1M_EV_UDP_MSG);
  addon_set_const(env, k, "EV_UDP_DRAIN", C1M_EV_UDP_DRAIN);
  addon_set_const(env, k, "EV_UDP_ERROR", C1M_EV_UDP_ERROR);
  addon_set_const(env, k, "OP_UDP_SEND", C1M_OP_UDP_SEND);
  addon_set_const(env, k, "F_UDP", C1M_F_UDP);
  addon_set_const(env, k, "UDP_E_RECV", C1M_UDP_E_RECV);
  addon_set_const(env, k, "UDP_E_SEND", C1M_UDP_E_SEND);
  addon_set_const(env, k, "UDP_MCAST_TTL", C1M_UDP_MCAST_TTL);
  addon_set_const(env, k, "UDP_MCAST_LOOP", C1M_UDP_MCAST_LOOP);
  addon_set_const(env, k, "UDP_MCAST_IF", C1M_UDP_MCAST_IF);
  /* An address entry, in bytes: the kernel's sockaddr_in / sockaddr_in6. */
  addon_set_const(env, k, "UDP_ADDR_SIZE", C1M_UDP_ADDR_SIZE);
  addon_set_const(env, k, "SA_FAMILY", offsetof(struct sockaddr, sa_family));
  addon_set_const(env, k, "SA_FAMILY_SIZE", sizeof(sa_family_t));
  addon_set_const(env, k, "AF_INET", AF_INET);
  addon_set_const(env, k, "AF_INET6", AF_INET6);
  addon_set_const(env, k, "SIN_PORT", offsetof(struct sockaddr_in, sin_port));
  addon_set_const(env, k, "SIN_ADDR", offsetof(struct sockaddr_in, sin_addr));
  addon_set_const(env, k, "SIN6_PORT", offsetof(struct sockaddr_in6, sin6_port));
  addon_set_const(env, k, "SIN6_ADDR", offsetof(struct sockaddr_in6, sin6_addr));
  addon_set_const(env, k, "SIN6_SCOPE_ID", offsetof(struct sockaddr_in6, sin6_scope_id));
  return 0;
}

