/*
 * The Node-API boundary (with addon_udp.c, over addon.h: the only files that include
 * node_api.h): the module's one export table, the reactor functions and the layout constants.
 *
 * Model: JS allocates the shared memory (slot table, receive area, event array, send area,
 * control words) and hands it over once; the addon pins it with references. A uv_poll on the
 * reactor's epoll fd runs on Node's own loop thread: each wake-up is one c1m_reactor_poll(),
 * one call into JS with the event count, then c1m_reactor_after_batch() before returning.
 *
 * Errors: setup functions throw Node-style errors (code, errno, syscall); hot-path functions
 * return numbers. Misuse (wrong argument types) throws TypeError.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "addon.h"

napi_value addon_throw_last(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    const napi_extended_error_info *info = NULL;
    napi_get_last_error_info(env, &info);
    napi_throw_error(env, "ERR_C1M_NAPI", info && info->error_message ? info->error_message : "Node-API call failed");
  }
  return NULL;
}

/* Throw an Error shaped like Node's system errors. */
napi_value addon_throw_errno(napi_env env, int err, const char *syscall) {
  if (err < 0) err = -err;
  char msg[160];
  const char *name = c1m_errname(err);
  char unknown[16];
  if (!name) snprintf(unknown, sizeof unknown, "E%d", err), name = unknown;
  snprintf(msg, sizeof msg, "%s %s (%s)", syscall, name, strerror(err));
  napi_value m, e, v;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m) != napi_ok) return NULL;
  if (napi_create_error(env, NULL, m, &e) != napi_ok) return NULL;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &v) == napi_ok) napi_set_named_property(env, e, "code", v);
  if (napi_create_int32(env, -err, &v) == napi_ok) napi_set_named_property(env, e, "errno", v);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v) == napi_ok)
    napi_set_named_property(env, e, "syscall", v);
  napi_throw(env, e);
  return NULL;
}

napi_value addon_num(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

int addon_get_u32_prop(napi_env env, napi_value obj, const char *key, uint32_t *out) {
  napi_value v;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return -1;
  return napi_get_value_uint32(env, v, out) == napi_ok ? 0 : -1;
}

static addon_reactor_t *get_reactor(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected a c1m reactor handle");
    return NULL;
  }
  addon_reactor_t *a = p;
  if (a->closed || a->close_asked) {
    napi_throw_error(env, "ERR_C1M_REACTOR_CLOSED", "the reactor is closed");
    return NULL;
  }
  return a;
}

/* Read a call's n arguments into argv; argv[0] must be a live reactor handle. NULL (with a
 * pending exception) on misuse. */
addon_reactor_t *addon_reactor_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return addon_throw_last(env), NULL;
  if (argc < n) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "missing arguments");
    return NULL;
  }
  return get_reactor(env, argv[0]);
}

/* Parse an IP string + port into a sockaddr. Returns 0 or -EINVAL. */
int addon_to_sockaddr(napi_env env, napi_value ipv, uint32_t port, struct sockaddr_storage *ss, socklen_t *len) {
  char ip[64];
  size_t n = 0;
  if (napi_get_value_string_utf8(env, ipv, ip, sizeof ip, &n) != napi_ok) return -EINVAL;
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *len = sizeof *a4;
    return 0;
  }
  if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    *len = sizeof *a6;
    return 0;
  }
  return -EINVAL;
}

/* ---- lifecycle ---- */

static void free_after_close(uv_handle_t *h) {
  addon_reactor_t *a = h->data;
  if (--a->handles == 0) free(a);
}

/* Close both uv handles; the struct is freed once both are (or never, with cb NULL at env
 * teardown, when nobody waits for the callbacks). */
static void close_handles(addon_reactor_t *a, uv_close_cb cb) {
  uv_close((uv_handle_t *)&a->poll, cb);
  uv_close((uv_handle_t *)&a->timer, cb);
}

static void reactor_release(addon_reactor_t *a) {
  if (a->closed) return;
  a->closed = 1;
  uv_poll_stop(&a->poll);
  uv_timer_stop(&a->timer);
  c1m_reactor_destroy(a->r);
  a->r = NULL;
  for (int i = 0; i < NBUFS; i++) {
    if (a->bufs[i]) napi_delete_reference(a->env, a->bufs[i]);
    a->bufs[i] = NULL;
  }
  if (a->cb) napi_delete_reference(a->env, a->cb);
  a->cb = NULL;
  if (a->actx) napi_async_destroy(a->env, a->actx);
  a->actx = NULL;
}

static void env_cleanup(void *arg) {
  addon_reactor_t *a = arg;
  reactor_release(a);
  /* the env is going away: the poll handle is closed but nobody waits for the callback */
  a->poll.data = a->timer.data = NULL;
  close_handles(a, NULL);
}

/* One poll of the reactor and, when it found events, one crossing to JS with the batch. */
static void run_poll(addon_reactor_t *a) {
  if (!a || a->closed) return;
  napi_env env = a->env;
  int n = c1m_reactor_poll(a->r);
  if (n <= 0) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) {
    c1m_reactor_after_batch(a->r, (uint32_t)n); /* JS missed this batch; the engine must not */
    return;
  }
  napi_value cb, recv, argv[1], result;
  if (napi_get_reference_value(env, a->cb, &cb) == napi_ok && napi_get_global(env, &recv) == napi_ok &&
      napi_create_int32(env, n, &argv[0]) == napi_ok) {
    a->in_batch = 1;
    napi_status st = napi_make_callback(env, a->actx, recv, cb, 1, argv, &result);
    a->in_batch = 0;
    if (st != napi_ok) {
      /* onBatch catches handler errors itself; anything else is a bug worth surfacing. */
      napi_value err;
      if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
    }
  }
  if (a->close_asked) {
    napi_remove_env_cleanup_hook(env, env_cleanup, a);
    reactor_release(a);
    close_handles(a, free_after_close);
  } else if (!a->closed) {
    c1m_reactor_after_batch(a->r, (uint32_t)n);
  }
  napi_close_handle_scope(env, scope);
}

static void on_poll(uv_poll_t *p, int status, int events);

/* Polling on a timer: while the last poll left a backlog (a burst larger than one batch), the
 * epoll fd is watched too, so the rest is taken on the next loop iterations, not a batch per
 * tick; once a poll leaves none, only the timer polls again. */
static void follow_backlog(addon_reactor_t *a) {
  if (!a || a->closed || a->close_asked || a->poll_ms == 0) return;
  int want = c1m_reactor_backlog(a->r);
  if (want == a->draining) return;
  int rc = want ? uv_poll_start(&a->poll, UV_READABLE, on_poll) : uv_poll_stop(&a->poll);
  if (rc == 0) a->draining = want; /* else the timer still polls: slower, nothing lost */
}

static void on_poll(uv_poll_t *p, int status, int events) {
  (void)events;
  if (status < 0) return; /* EBADF after close: nothing to do */
  run_poll(p->data);
  follow_backlog(p->data);
}

static void on_timer(uv_timer_t *t) {
  run_poll(t->data);
  follow_backlog(t->data);
}

/* A Buffer's bytes. 0, or -1 when v is not a Buffer. */
int addon_get_bool_prop(napi_env env, napi_value obj, const char *key, int *out) {
  napi_value v;
  bool b = false;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok || napi_get_value_bool(env, v, &b) != napi_ok) return -1;
  *out = b;
  return 0;
}

int addon_get_buffer_view(napi_env env, napi_value v, const char **p, size_t *len) {
  bool isbuf = false;
  void *data = NULL;
  if (napi_is_buffer(env, v, &isbuf) != napi_ok || !isbuf || napi_get_buffer_info(env, v, &data, len) != napi_ok) return -1;
  *p = data;
  return 0;
}

int addon_get_arraybuffer(napi_env env, napi_value v, void **data, size_t *len) {
  bool is_ab = false;
  if (napi_is_arraybuffer(env, v, &is_ab) != napi_ok || !is_ab) return -1;
  return napi_get_arraybuffer_info(env, v, data, len) == napi_ok ? 0 : -1;
}

/* create(config, slots, recv, events, send, ctl, onBatch) -> handle */
static napi_value create(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 7) return napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "create() takes 7 arguments"), NULL;
  c1m_config_t cfg = {0};
  uint32_t nodelay = 1, quiet = 0;
  if (addon_get_u32_prop(env, argv[0], "nslots", &cfg.nslots) || addon_get_u32_prop(env, argv[0], "maxIn", &cfg.max_in) ||
      addon_get_u32_prop(env, argv[0], "maxOut", &cfg.max_out) || addon_get_u32_prop(env, argv[0], "highWater", &cfg.high_water) ||
      addon_get_u32_prop(env, argv[0], "tickMs", &cfg.tick_ms) || addon_get_u32_prop(env, argv[0], "idleTicks", &cfg.idle_ticks) ||
      addon_get_u32_prop(env, argv[0], "nodelay", &nodelay) || addon_get_u32_prop(env, argv[0], "readBudget", &cfg.read_budget) ||
      addon_get_u32_prop(env, argv[0], "quietOpen", &quiet))
    return napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "create(): bad config object"), NULL;
  cfg.nodelay = nodelay != 0;
  cfg.quiet_open = quiet != 0;

  void *mem[NBUFS];
  size_t len[NBUFS];
  for (int i = 0; i < NBUFS; i++)
    if (addon_get_arraybuffer(env, argv[1 + i], &mem[i], &len[i]))
      return napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "create(): shared areas must be ArrayBuffers"), NULL;
  if (len[0] < (size_t)cfg.nslots * sizeof(c1m_slot_t) || len[4] < C1M_CTL_WORDS * sizeof(int32_t) ||
      len[1] > UINT32_MAX || len[3] > UINT32_MAX)
    return napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "create(): shared areas too small"), NULL;
  napi_valuetype t;
  CHECK(napi_typeof(env, argv[6], &t));
  if (t != napi_function) return napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "onBatch must be a function"), NULL;

  addon_reactor_t *a = calloc(1, sizeof *a);
  if (!a) return addon_throw_errno(env, ENOMEM, "calloc");
  a->env = env;
  int rc = c1m_reactor_create(&a->r, &cfg, mem[0], mem[1], (uint32_t)len[1], mem[2],
                              (uint32_t)(len[2] / sizeof(c1m_event_t)), mem[3], (uint32_t)len[3], mem[4]);
  if (rc < 0) {
    free(a);
    return addon_throw_errno(env, rc, "c1m_reactor_create");
  }
  uv_loop_t *loop = NULL;
  napi_value name, handle;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &a->poll, c1m_reactor_fd(a->r)) != 0) {
    c1m_reactor_destroy(a->r);
    free(a);
    return addon_throw_errno(env, EINVAL, "uv_poll_init");
  }
  uv_timer_init(loop, &a->timer); /* cannot fail: it only links the handle into the loop */
  a->poll.data = a->timer.data = a;
  a->handles = 2;
  for (int i = 0; i < NBUFS; i++) napi_create_reference(env, argv[1 + i], 1, &a->bufs[i]);
  napi_create_reference(env, argv[6], 1, &a->cb);
  napi_create_string_utf8(env, "c1m:reactor", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &a->actx);
  napi_add_env_cleanup_hook(env, env_cleanup, a);
  uv_poll_start(&a->poll, UV_READABLE, on_poll);
  CHECK(napi_create_external(env, a, NULL, NULL, &handle));
  return handle;
}

/* close(handle): close every socket and release the shared memory. Idempotent. */
static napi_value close_reactor(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *p = NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], &p) != napi_ok || !p)
    return napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected a c1m reactor handle"), NULL;
  addon_reactor_t *a = p;
  if (a->closed || a->close_asked) return NULL;
  if (a->in_batch) {
    a->close_asked = 1; /* finished by on_poll once the batch returns */
    return NULL;
  }
  napi_remove_env_cleanup_hook(env, env_cleanup, a);
  reactor_release(a);
  close_handles(a, free_after_close);
  return NULL;
}

/* ref(handle, bool): whether the reactor keeps the Node process alive. */
static napi_value set_ref(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  addon_reactor_t *a = addon_reactor_args(env, info, 2, argv);
  if (!a) return NULL;
  bool on = true;
  napi_get_value_bool(env, argv[1], &on);
  if (on) {
    uv_ref((uv_handle_t *)&a->poll);
    uv_ref((uv_handle_t *)&a->timer);
  } else {
    uv_unref((uv_handle_t *)&a->poll);
    uv_unref((uv_handle_t *)&a->timer);
  }
  return NULL;
}

/* pollInterval(handle, ms): 0 polls the reactor when its epoll fd becomes readable (a wake-up
 * per burst of events); ms > 0 polls it every ms milliseconds from a timer instead, and the
 * epoll fd is not watched in between, so events that arrive meanwhile wake nobody. */
static napi_value poll_interval(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  addon_reactor_t *a = addon_reactor_args(env, info, 2, argv);
  if (!a) return NULL;
  uint32_t ms = 0;
  if (napi_get_value_uint32(env, argv[1], &ms) != napi_ok || ms > 60000)
    return napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "pollInterval(): ms must be an integer in 0..60000"), NULL;
  if (a->closed || a->close_asked || ms == a->poll_ms) return NULL;
  a->poll_ms = ms;
  a->draining = 0;
  if (ms == 0) {
    uv_timer_stop(&a->timer);
    /* level-triggered: what came meanwhile is reported at once */
    int rc = uv_poll_start(&a->poll, UV_READABLE, on_poll);
    if (rc < 0) {
      a->poll_ms = 1; /* keep polling from the timer rather than not at all */
      uv_timer_start(&a->timer, on_timer, 1, 1);
      return addon_throw_errno(env, rc, "uv_poll_start");
    }
  } else {
    uv_poll_stop(&a->poll);
    uv_timer_start(&a->timer, on_timer, ms, ms);
  }
  return NULL;
}

/* flush(handle): apply the staged commands now (outside a batch). */
static napi_value flush(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  addon_reactor_t *a = addon_reactor_args(env, info, 1, argv);
  if (a) c1m_reactor_flush(a->r);
  return NULL;
}

/* Hand-off targets (registry ids) from a JS array into targets[MAX_TARGETS_JS]; -1 with an
 * exception pending on a bad array or more than MAX_TARGETS_JS entries. */
#define MAX_TARGETS_JS 64
static int get_targets(napi_env env, napi_value arr, int *targets, uint32_t *n) {
  if (napi_get_array_length(env, arr, n) != napi_ok) return addon_throw_last(env), -1;
  if (*n > MAX_TARGETS_JS) return napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "at most 64 hand-off targets"), -1;
  for (uint32_t i = 0; i < *n; i++) {
    napi_value v;
    if (napi_get_element(env, arr, i, &v) != napi_ok || napi_get_value_int32(env, v, &targets[i]) != napi_ok)
      return addon_throw_last(env), -1;
  }
  return 0;
}

napi_value addon_fd_port(napi_env env, int fd, uint32_t port) {
  struct sockaddr_storage bound;
  socklen_t blen;
  int bport = (int)port;
  if (c1m_sys_sockname(fd, 0, &bound, &blen) == 0)
    bport = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                              : ((struct sockaddr_in *)&bound)->sin_port);
  napi_value out;
  CHECK(napi_create_array_with_length(env, 2, &out));
  CHECK(napi_set_element(env, out, 0, addon_num(env, fd)));
  CHECK(napi_set_element(env, out, 1, addon_num(env, bport)));
  return out;
}

int addon_fd_gen(napi_env env, napi_value *argv, int32_t *fd, uint32_t *gen) {
  return napi_get_value_int32(env, argv[1], fd) == napi_ok && napi_get_value_uint32(env, argv[2], gen) == napi_ok ? 0 : -1;
}

/* Three numbers (idle, interval seconds, probe count) into ka; idle 0: off. */
static int get_keepalive(napi_env env, const napi_value *argv, c1m_keepalive_t *ka) {
  uint32_t v[3];
  for (int i = 0; i < 3; i++)
    if (napi_get_value_uint32(env, argv[i], &v[i]) != napi_ok || v[i] > 32767) return -1;
  ka->idle_s = (int)v[0], ka->intvl_s = (int)v[1], ka->cnt = (int)v[2];
  return 0;
}

/* listen(handle, ip, port, backlog, reusePort, targets[], policy, deferAcceptSeconds, keepIdle, keepIntvl,
 * keepCnt) -> [fd, bound port] */
static napi_value listen_(napi_env env, napi_callback_info info) {
  napi_value argv[11];
  addon_reactor_t *a = addon_reactor_args(env, info, 11, argv);
  if (!a) return NULL;
  uint32_t port = 0, backlog = 0, policy = 0, ntargets = 0, defer = 0;
  bool reuse = false;
  CHECK(napi_get_value_uint32(env, argv[2], &port));
  CHECK(napi_get_value_uint32(env, argv[3], &backlog));
  CHECK(napi_get_value_bool(env, argv[4], &reuse));
  CHECK(napi_get_value_uint32(env, argv[6], &policy));
  CHECK(napi_get_value_uint32(env, argv[7], &defer));
  c1m_keepalive_t ka;
  if (defer > 3600 || get_keepalive(env, argv + 8, &ka) < 0) return addon_throw_errno(env, EINVAL, "listen");
  int targets[MAX_TARGETS_JS];
  if (get_targets(env, argv[5], targets, &ntargets) < 0) return NULL;
  struct sockaddr_storage ss;
  socklen_t len;
  if (addon_to_sockaddr(env, argv[1], port, &ss, &len) < 0) return addon_throw_errno(env, EINVAL, "listen");
  int fd = c1m_listen(a->r, (struct sockaddr *)&ss, len, (int)backlog, reuse, targets, (int)ntargets, (int)policy, (int)defer, &ka);
  if (fd < 0) return addon_throw_errno(env, fd, "listen");
  return addon_fd_port(env, fd, port);
}

/* retarget(handle, listenerFd, targets[]) -> 0 or -errno */
static napi_value retarget(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  addon_reactor_t *a = addon_reactor_args(env, info, 3, argv);
  if (!a) return NULL;
  int32_t fd;
  uint32_t ntargets = 0;
  CHECK(napi_get_value_int32(env, argv[1], &fd));
  int targets[MAX_TARGETS_JS];
  if (get_targets(env, argv[2], targets, &ntargets) < 0) return NULL;
  return addon_num(env, c1m_retarget(a->r, fd, targets, (int)ntargets));
}

/* unlisten(handle, fd) */
static napi_value unlisten(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  addon_reactor_t *a = addon_reactor_args(env, info, 2, argv);
  if (!a) return NULL;
  int32_t fd;
  CHECK(napi_get_value_int32(env, argv[1], &fd));
  return addon_num(env, c1m_unlisten(a->r, fd));
}

/* connect(handle, ip, port, localIp | undefined, keepIdle, keepIntvl, keepCnt) -> fd or -errno */
static napi_value connect_(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  addon_reactor_t *a = addon_reactor_args(env, info, 7, argv);
  if (!a) return NULL;
  uint32_t port;
  CHECK(napi_get_value_uint32(env, argv[2], &port));
  struct sockaddr_storage ss, local;
  socklen_t len, local_len = 0;
  if (addon_to_sockaddr(env, argv[1], port, &ss, &len) < 0) return addon_num(env, -EINVAL);
  napi_valuetype t = napi_undefined;
  napi_typeof(env, argv[3], &t);
  if (t == napi_string && addon_to_sockaddr(env, argv[3], 0, &local, &local_len) < 0) return addon_num(env, -EINVAL);
  c1m_keepalive_t ka;
  if (get_keepalive(env, argv + 4, &ka) < 0) return addon_num(env, -EINVAL);
  return addon_num(env, c1m_connect(a->r, (struct sockaddr *)&ss, len, t == napi_string ? (struct sockaddr *)&local : NULL,
                              local_len, &ka));
}

/* writeDirect(handle, fd, gen, uint8array) -> 0 or -errno */
static napi_value write_direct(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  addon_reactor_t *a = addon_reactor_args(env, info, 4, argv);
  if (!a) return NULL;
  int32_t fd;
  uint32_t gen;
  CHECK(napi_get_value_int32(env, argv[1], &fd));
  CHECK(napi_get_value_uint32(env, argv[2], &gen));
  napi_typedarray_type tt;
  size_t n;
  void *data;
  napi_value ab;
  size_t off;
  CHECK(napi_get_typedarray_info(env, argv[3], &tt, &n, &data, &ab, &off));
  if (tt != napi_uint8_array) return napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected a Uint8Array"), NULL;
  return addon_num(env, c1m_write_direct(a->r, fd, gen, data, n));
}

/* [ip, port] of a sockaddr, or undefined. */
napi_value addon_addr_pair(napi_env env, const struct sockaddr_storage *ss) {
  char ip[INET6_ADDRSTRLEN] = "";
  int port = 0;
  napi_value out, v;
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ss;
    inet_ntop(AF_INET6, &a6->sin6_addr, ip, sizeof ip);
    port = ntohs(a6->sin6_port);
  } else if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *a4 = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &a4->sin_addr, ip, sizeof ip);
    port = ntohs(a4->sin_port);
  } else {
    napi_get_undefined(env, &out);
    return out;
  }
  CHECK(napi_create_array_with_length(env, 2, &out));
  CHECK(napi_create_string_utf8(env, ip, NAPI_AUTO_LENGTH, &v));
  CHECK(napi_set_element(env, out, 0, v));
  CHECK(napi_set_element(env, out, 1, addon_num(env, port)));
  return out;
}

/* sockname(handle, fd, gen, peer) -> [ip, port] | undefined */
static napi_value sockname(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  addon_reactor_t *a = addon_reactor_args(env, info, 4, argv);
  if (!a) return NULL;
  int32_t fd;
  uint32_t gen;
  bool peer;
  CHECK(napi_get_value_int32(env, argv[1], &fd));
  CHECK(napi_get_value_uint32(env, argv[2], &gen));
  CHECK(napi_get_value_bool(env, argv[3], &peer));
  struct sockaddr_storage ss;
  socklen_t len;
  napi_value out;
  if (c1m_sockname(a->r, fd, gen, peer, &ss, &len) < 0) {
    napi_get_undefined(env, &out);
    return out;
  }
  return addon_addr_pair(env, &ss);
}

/* id(handle) -> registry id (hand-off target) */
static napi_value reactor_id(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  addon_reactor_t *a = addon_reactor_args(env, info, 1, argv);
  return a ? addon_num(env, c1m_reactor_id(a->r)) : NULL;
}

void addon_set_const(napi_env env, napi_value obj, const char *name, double v) {
  napi_set_named_property(env, obj, name, addon_num(env, v));
}

NAPI_MODULE_INIT() {
  napi_property_descriptor fns[] = {
      {"create", NULL, create, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, close_reactor, NULL, NULL, NULL, napi_default, NULL},
      {"ref", NULL, set_ref, NULL, NULL, NULL, napi_default, NULL},
      {"pollInterval", NULL, poll_interval, NULL, NULL, NULL, napi_default, NULL},
      {"flush", NULL, flush, NULL, NULL, NULL, napi_default, NULL},
      {"listen", NULL, listen_, NULL, NULL, NULL, napi_default, NULL},
      {"unlisten", NULL, unlisten, NULL, NULL, NULL, napi_default, NULL},
      {"retarget", NULL, retarget, NULL, NULL, NULL, napi_default, NULL},
      {"connect", NULL, connect_, NULL, NULL, NULL, napi_default, NULL},
      {"writeDirect", NULL, write_direct, NULL, NULL, NULL, napi_default, NULL},
      {"sockname", NULL, sockname, NULL, NULL, NULL, napi_default, NULL},
      {"id", NULL, reactor_id, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns) != napi_ok) return NULL;
  if (addon_process_exports(env, exports) < 0) return NULL;
  napi_value k;
  if (napi_create_object(env, &k) != napi_ok) return NULL;
  /* Layout: sizes in bytes, fields as 32-bit word indexes (JS views every area as 32-bit words). */
  addon_set_const(env, k, "SLOT_SIZE", sizeof(c1m_slot_t));
  addon_set_const(env, k, "SLOT_WORDS", sizeof(c1m_slot_t) / 4);
  addon_set_const(env, k, "SLOT_GEN", WORD(c1m_slot_t, gen));
  addon_set_const(env, k, "SLOT_FLAGS", WORD(c1m_slot_t, flags));
  addon_set_const(env, k, "SLOT_OUT_LEN", WORD(c1m_slot_t, out_len));
  addon_set_const(env, k, "SLOT_DEADLINE", WORD(c1m_slot_t, deadline));
  addon_set_const(env, k, "SLOT_TIMEOUT_TICKS", WORD(c1m_slot_t, timeout_ticks));
  addon_set_const(env, k, "SLOT_IN_LEN", WORD(c1m_slot_t, in_len));
  addon_set_const(env, k, "EV_SIZE", sizeof(c1m_event_t));
  addon_set_const(env, k, "EV_WORDS", sizeof(c1m_event_t) / 4);
  addon_set_const(env, k, "EV_KIND", WORD(c1m_event_t, kind));
  addon_set_const(env, k, "EV_FD", WORD(c1m_event_t, fd));
  addon_set_const(env, k, "EV_GEN", WORD(c1m_event_t, gen));
  addon_set_const(env, k, "EV_A", WORD(c1m_event_t, a));
  addon_set_const(env, k, "EV_B", WORD(c1m_event_t, b));
  addon_set_const(env, k, "EV_C", WORD(c1m_event_t, c));
  addon_set_const(env, k, "CMD_SIZE", sizeof(c1m_cmd_t));
  addon_set_const(env, k, "CMD_OP", WORD(c1m_cmd_t, op));
  addon_set_const(env, k, "CMD_FD", WORD(c1m_cmd_t, fd));
  addon_set_const(env, k, "CMD_GEN", WORD(c1m_cmd_t, gen));
  addon_set_const(env, k, "CMD_LEN", WORD(c1m_cmd_t, len));
  addon_set_const(env, k, "CMD_ALIGN", C1M_CMD_ALIGN);
  addon_set_const(env, k, "ID_SIZE", sizeof(c1m_id_t));
  addon_set_const(env, k, "ID_FD", WORD(c1m_id_t, fd));
  addon_set_const(env, k, "ID_GEN", WORD(c1m_id_t, gen));
  addon_set_const(env, k, "GEN_MASK", C1M_GEN_MASK);
  addon_set_const(env, k, "F_OPEN", C1M_F_OPEN);
  addon_set_const(env, k, "F_CONNECTING", C1M_F_CONNECTING);
  addon_set_const(env, k, "F_CLOSING", C1M_F_CLOSING);
  addon_set_const(env, k, "EV_OPEN", C1M_EV_OPEN);
  addon_set_const(env, k, "EV_DATA", C1M_EV_DATA);
  addon_set_const(env, k, "EV_DRAIN", C1M_EV_DRAIN);
  addon_set_const(env, k, "EV_END", C1M_EV_END);
  addon_set_const(env, k, "EV_TIMEOUT", C1M_EV_TIMEOUT);
  addon_set_const(env, k, "EV_CLOSE", C1M_EV_CLOSE);
  addon_set_const(env, k, "EV_ACCEPT_ERROR", C1M_EV_ACCEPT_ERROR);
  addon_set_const(env, k, "EV_ERROR", C1M_EV_ERROR);
  addon_set_const(env, k, "E_WAKE", C1M_E_WAKE);
  addon_set_const(env, k, "E_WAKE_READ", C1M_E_WAKE_READ);
  addon_set_const(env, k, "E_TIMER_READ", C1M_E_TIMER_READ);
  addon_set_const(env, k, "E_POLL", C1M_E_POLL);
  addon_set_const(env, k, "E_CLOSE", C1M_E_CLOSE);
  addon_set_const(env, k, "E_EVENT_LOST", C1M_E_EVENT_LOST);
  addon_set_const(env, k, "E_READY_LOST", C1M_E_READY_LOST);
  addon_set_const(env, k, "E_COMMAND", C1M_E_COMMAND);
  addon_set_const(env, k, "E_TIMERS", C1M_E_TIMERS);
  addon_set_const(env, k, "E_TIMER_SET", C1M_E_TIMER_SET);
  addon_set_const(env, k, "R_END", C1M_R_END);
  addon_set_const(env, k, "R_LOCAL", C1M_R_LOCAL);
  addon_set_const(env, k, "R_ERROR", C1M_R_ERROR);
  addon_set_const(env, k, "R_TIMEOUT", C1M_R_TIMEOUT);
  addon_set_const(env, k, "R_INBOUND_LIMIT", C1M_R_INBOUND_LIMIT);
  addon_set_const(env, k, "R_SLOW_CONSUMER", C1M_R_SLOW_CONSUMER);
  addon_set_const(env, k, "R_CONNECT_FAILED", C1M_R_CONNECT_FAILED);
  addon_set_const(env, k, "R_HANDLER", C1M_R_HANDLER);
  addon_set_const(env, k, "R_SHUTDOWN", C1M_R_SHUTDOWN);
  addon_set_const(env, k, "OP_WRITE", C1M_OP_WRITE);
  addon_set_const(env, k, "OP_CLOSE", C1M_OP_CLOSE);
  addon_set_const(env, k, "OP_DESTROY", C1M_OP_DESTROY);
  addon_set_const(env, k, "OP_SHUTDOWN", C1M_OP_SHUTDOWN);
  addon_set_const(env, k, "OP_PAUSE", C1M_OP_PAUSE);
  addon_set_const(env, k, "OP_RESUME", C1M_OP_RESUME);
  addon_set_const(env, k, "OP_TIMEOUT", C1M_OP_TIMEOUT);
  addon_set_const(env, k, "OP_AUTO_PONG", C1M_OP_AUTO_PONG);
  addon_set_const(env, k, "OP_BROADCAST", C1M_OP_BROADCAST);
  addon_set_const(env, k, "OPF_WANT_DRAIN", C1M_OPF_WANT_DRAIN);
  addon_set_const(env, k, "OPF_HEARTBEAT", C1M_OPF_HEARTBEAT);
  addon_set_const(env, k, "OPF_PONGS", C1M_OPF_PONGS);
  addon_set_const(env, k, "CTL_SEND_USED", C1M_CTL_SEND_USED);
  addon_set_const(env, k, "CTL_CONNS", C1M_CTL_CONNS);
  addon_set_const(env, k, "CTL_TICK", C1M_CTL_TICK);
  addon_set_const(env, k, "CTL_ACCEPT_PAUSES", C1M_CTL_ACCEPT_PAUSES);
  addon_set_const(env, k, "CTL_QUIET_OPENS", C1M_CTL_QUIET_OPENS);
  addon_set_const(env, k, "CTL_MAX_FD", C1M_CTL_MAX_FD);
  addon_set_const(env, k, "CTL_ERRORS", C1M_CTL_ERRORS);
  addon_set_const(env, k, "CTL_ERRORS_LOST", C1M_CTL_ERRORS_LOST);
  addon_set_const(env, k, "CTL_WORDS", C1M_CTL_WORDS);
  addon_set_const(env, k, "LB_ROUND_ROBIN", C1M_LB_ROUND_ROBIN);
  addon_set_const(env, k, "LB_LEAST_CONN", C1M_LB_LEAST_CONN);
  addon_set_const(env, k, "LB_HASH", C1M_LB_HASH);
  if (addon_udp_exports(env, exports, k) < 0 || addon_tls_exports(env, exports, k) < 0) return NULL;
  if (napi_set_named_property(env, exports, "constants", k) != napi_ok) return NULL;
  return exports;
}
