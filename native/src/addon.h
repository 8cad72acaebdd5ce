/*
 * Private to the Node-API files (addon*.c): the one place besides them that
 * includes node_api.h. The per-reactor binding state and the helpers they share.
 */
#ifndef C1M_ADDON_H
#define C1M_ADDON_H

#include <node_api.h>
#include <uv.h>

#include "c1m.h"

#define NBUFS 5
/* A struct field as an index into the area viewed as 32-bit words. */
#define WORD(type, field) (offsetof(type, field) / 4)

typedef struct addon_reactor {
  napi_env env;
  c1m_reactor_t *r;
  uv_poll_t poll;   /* readiness of the reactor's epoll fd: a poll per wake-up (poll_ms == 0) */
  uv_timer_t timer; /* a poll every poll_ms instead (poll_ms > 0): no wake-up per event */
  uint32_t poll_ms;
  int draining;     /* poll_ms > 0 and the poll handle watches too: a backlog is being taken */
  int handles;      /* uv handles not yet closed; the struct is freed when the last one is */
  napi_ref cb;
  napi_ref bufs[NBUFS];
  napi_async_context actx;
  int in_batch;
  int closed;      /* c1m_reactor_destroy done */
  int close_asked; /* close requested during a batch */
} addon_reactor_t;

#define CHECK(call)                                                                                                    \
  do {                                                                                                                 \
    if ((call) != napi_ok) return addon_throw_last(env);                                                                     \
  } while (0)

/* Throw the pending Node-API error (or a generic one); returns NULL. */
napi_value addon_throw_last(napi_env env);
/* Throw a Node-style system error (code, errno, syscall) for -errno `err`; returns NULL. */
napi_value addon_throw_errno(napi_env env, int err, const char *syscall);
napi_value addon_num(napi_env env, double d);
/* obj[key] as uint32; -1 when missing or not a number. */
int addon_get_u32_prop(napi_env env, napi_value obj, const char *key, uint32_t *out);
/* The reactor handle in argv[0] (n arguments fetched), or NULL with a TypeError pending. */
addon_reactor_t *addon_reactor_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv);
/* An IP string and port as a sockaddr; -1 when the string is not an IPv4/IPv6 address. */
int addon_to_sockaddr(napi_env env, napi_value ipv, uint32_t port, struct sockaddr_storage *ss, socklen_t *len);
/* [ip, port] of an IPv4/IPv6 sockaddr, or undefined for another family. */
napi_value addon_addr_pair(napi_env env, const struct sockaddr_storage *ss);
/* [fd, port]: the port the socket is bound to (getsockname), else `port`. */
napi_value addon_fd_port(napi_env env, int fd, uint32_t port);
/* (fd, gen) from argv[1], argv[2]; -1 when they are not numbers (no exception pending). */
int addon_fd_gen(napi_env env, napi_value *argv, int32_t *fd, uint32_t *gen);
void addon_set_const(napi_env env, napi_value obj, const char *name, double v);
/* obj[key] as a boolean (0/1); -1 when missing or not a boolean. */
int addon_get_bool_prop(napi_env env, napi_value obj, const char *key, int *out);
/* A Buffer's bytes (pointer, length); -1 when v is not a Buffer. */
int addon_get_buffer_view(napi_env env, napi_value v, const char **p, size_t *len);
/* An ArrayBuffer's bytes; -1 when v is not an ArrayBuffer. */
int addon_get_arraybuffer(napi_env env, napi_value v, void **data, size_t *len);
/* Add the functions that need no reactor (addon_process.c) to `exports`; -1 on failure. */
int addon_process_exports(napi_env env, napi_value exports);
/* Add the TLS functions to `exports` and the TLS constants to `k`; -1 on failure. */
int addon_tls_exports(napi_env env, napi_value exports, napi_value k);
/* Add the UDP functions to `exports` and the UDP constants to `k`; -1 on failure. */
int addon_udp_exports(napi_env env, napi_value exports, napi_value k);

#endif
