/*
 * Node-API functions that need no reactor: the process's open-file limit, glibc's malloc policy,
 * the scheduling policy of its threads,
 * errno names, and the probes the contract and layout tests read native state with (fdInfo,
 * layoutProbe). Exported by addon_process_exports from the module's init (addon.c).
 */
#include "addon.h"

#include <errno.h>
#include <string.h>

/* raiseNofile() -> [soft, hard] after raising soft to hard */
static napi_value raise_nofile(napi_env env, napi_callback_info info) {
  (void)info;
  uint64_t soft = 0, hard = 0;
  int rc = c1m_sys_raise_nofile(&soft, &hard);
  if (rc < 0) return addon_throw_errno(env, rc, "setrlimit");
  napi_value out;
  CHECK(napi_create_array_with_length(env, 2, &out));
  CHECK(napi_set_element(env, out, 0, addon_num(env, (double)soft)));
  CHECK(napi_set_element(env, out, 1, addon_num(env, (double)hard)));
  return out;
}

/* mallocTrimThreshold(bytes) -> 0 or -errno: see c1m_sys_malloc_trim_threshold */
static napi_value malloc_trim_threshold(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t bytes = -1;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_int32(env, argv[0], &bytes) != napi_ok) return addon_num(env, -EINVAL);
  return addon_num(env, c1m_sys_malloc_trim_threshold(bytes));
}

/* mallocTrim() -> 1 (memory returned), 0 or -errno: see c1m_sys_malloc_trim */
static napi_value malloc_trim(napi_env env, napi_callback_info info) {
  (void)info;
  return addon_num(env, c1m_sys_malloc_trim());
}

/* schedBatch(on) -> threads switched, or -errno: see c1m_sys_sched_batch */
static napi_value sched_batch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool on = false;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_bool(env, argv[0], &on) != napi_ok) return addon_num(env, -EINVAL);
  return addon_num(env, c1m_sys_sched_batch(on));
}

/* fdInfo(fd) -> { nonblock, cloexec, nodelay, keepalive?: [idle, intvl, cnt] (TCP; idle 0: off) } | undefined:
 * for contract tests */
static napi_value fd_info(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out, v;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  int nonblock = 0, cloexec = 0, nd = 0;
  if (c1m_sys_fd_info(fd, &nonblock, &cloexec, &nd) < 0) {
    napi_get_undefined(env, &out);
    return out;
  }
  CHECK(napi_create_object(env, &out));
  napi_get_boolean(env, nonblock, &v);
  napi_set_named_property(env, out, "nonblock", v);
  napi_get_boolean(env, cloexec, &v);
  napi_set_named_property(env, out, "cloexec", v);
  napi_set_named_property(env, out, "nodelay", addon_num(env, nd));
  c1m_keepalive_t ka = {0, 0, 0};
  if (c1m_sys_keepalive_info(fd, &ka) == 0) {
    napi_value k;
    CHECK(napi_create_array_with_length(env, 3, &k));
    napi_set_element(env, k, 0, addon_num(env, ka.idle_s));
    napi_set_element(env, k, 1, addon_num(env, ka.intvl_s));
    napi_set_element(env, k, 2, addon_num(env, ka.cnt));
    napi_set_named_property(env, out, "keepalive", k);
  }
  return out;
}

/* layoutProbe(area, arrayBuffer) -> { field: value }: the struct at the start of the buffer as
 * native code reads it, by C field name. For the layout test: JS writes each field through
 * src/core/layout.ts and checks that C reads it back from the same field. */
static napi_value layout_probe(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char area[16] = "";
  size_t n = 0;
  void *mem = NULL;
  size_t len = 0;
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], area, sizeof area, &n) != napi_ok ||
      addon_get_arraybuffer(env, argv[1], &mem, &len))
    return napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "layoutProbe(area, ArrayBuffer)"), NULL;
  CHECK(napi_create_object(env, &out));
#define FIELD(p, f) napi_set_named_property(env, out, #f, addon_num(env, (p)->f))
  if (!strcmp(area, "slot") && len >= sizeof(c1m_slot_t)) {
    const c1m_slot_t *p = mem;
    FIELD(p, gen), FIELD(p, flags), FIELD(p, out_len), FIELD(p, deadline), FIELD(p, timeout_ticks), FIELD(p, in_len);
  } else if (!strcmp(area, "event") && len >= sizeof(c1m_event_t)) {
    const c1m_event_t *p = mem;
    FIELD(p, kind), FIELD(p, fd), FIELD(p, gen), FIELD(p, a), FIELD(p, b), FIELD(p, c);
  } else if (!strcmp(area, "cmd") && len >= sizeof(c1m_cmd_t)) {
    const c1m_cmd_t *p = mem;
    FIELD(p, op), FIELD(p, fd), FIELD(p, gen), FIELD(p, len);
  } else if (!strcmp(area, "id") && len >= sizeof(c1m_id_t)) {
    const c1m_id_t *p = mem;
    FIELD(p, fd), FIELD(p, gen);
  } else if (!strcmp(area, "ctl") && len >= C1M_CTL_WORDS * sizeof(int32_t)) {
    const int32_t *p = mem;
#define CTL(name, idx) napi_set_named_property(env, out, name, addon_num(env, p[idx]))
    CTL("send_used", C1M_CTL_SEND_USED), CTL("conns", C1M_CTL_CONNS), CTL("tick", C1M_CTL_TICK);
    CTL("accept_pauses", C1M_CTL_ACCEPT_PAUSES), CTL("quiet_opens", C1M_CTL_QUIET_OPENS);
    CTL("max_fd", C1M_CTL_MAX_FD), CTL("errors", C1M_CTL_ERRORS), CTL("errors_lost", C1M_CTL_ERRORS_LOST);
#undef CTL
  } else {
    return napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "layoutProbe: unknown area or buffer too small"), NULL;
  }
#undef FIELD
  return out;
}

/* errname(errno) -> "ECONNRESET" | undefined: the name of a positive or negative errno. */
static napi_value errname(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t err = 0;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &err) != napi_ok)
    return napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "errname(errno)"), NULL;
  const char *name = c1m_errname(err);
  if (name) CHECK(napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &out));
  else CHECK(napi_get_undefined(env, &out));
  return out;
}

int addon_process_exports(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
      {"raiseNofile", NULL, raise_nofile, NULL, NULL, NULL, napi_default, NULL},
      {"mallocTrimThreshold", NULL, malloc_trim_threshold, NULL, NULL, NULL, napi_default, NULL},
      {"mallocTrim", NULL, malloc_trim, NULL, NULL, NULL, napi_default, NULL},
      {"schedBatch", NULL, sched_batch, NULL, NULL, NULL, napi_default, NULL},
      {"fdInfo", NULL, fd_info, NULL, NULL, NULL, napi_default, NULL},
      {"errname", NULL, errname, NULL, NULL, NULL, napi_default, NULL},
      {"layoutProbe", NULL, layout_probe, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns) == napi_ok ? 0 : -1;
}
