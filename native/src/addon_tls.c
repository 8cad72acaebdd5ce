/*
 * The TLS part of the Node-API boundary (native/src/tls.c underneath): contexts are external
 * values that hold a reference on the native context (freed when collected and no listener or
 * connection uses it); setup calls throw ERR_C1M_TLS_CONFIG / _KEY_MISMATCH / _UNAVAILABLE, the
 * others return 0 / -errno or undefined. addon.c's export table calls addon_tls_exports().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "addon.h"

static void tls_ctx_finalize(napi_env env, void *data, void *hint) {
  (void)env, (void)hint;
  c1m_tls_ctx_unref(data);
}

/* A Buffer property as (pointer, length); absent (undefined) leaves both NULL/0. -1 on a bad type. */
static int get_bytes_prop(napi_env env, napi_value obj, const char *key, const char **p, size_t *len) {
  napi_value v;
  napi_valuetype t;
  *p = NULL, *len = 0;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) return -1;
  return t == napi_undefined ? 0 : addon_get_buffer_view(env, v, p, len);
}

/* An optional string property into buf (NUL-terminated); absent leaves *out NULL. -1 on a bad
 * type or a string that does not fit. */
static int get_string_prop(napi_env env, napi_value obj, const char *key, char *buf, size_t cap, const char **out) {
  napi_value v;
  napi_valuetype t;
  size_t n = 0;
  *out = NULL;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t == napi_undefined) return 0;
  if (t != napi_string || napi_get_value_string_utf8(env, v, buf, cap, &n) != napi_ok || n + 1 >= cap) return -1;
  *out = buf;
  return 0;
}

static napi_value throw_tls(napi_env env, int rc, const char *text) {
  const char *code = rc == -ENOTSUP ? "ERR_C1M_TLS_UNAVAILABLE" : rc == -EKEYREJECTED ? "ERR_C1M_TLS_KEY_MISMATCH"
                                                                                      : "ERR_C1M_TLS_CONFIG";
  napi_throw_error(env, code, text && *text ? text : "TLS setup failed");
  return NULL;
}

/* tlsContext({ server, cert?, key?, ca?, requestCert, rejectUnauthorized, minVersion, alpn?,
 * handshakeMs, ticketKeys?, ciphers?, sni: [[name, cert, key], ...] }) -> context handle (Buffers for
 * PEM, ALPN and the 80 bytes of ticket keys). */
static napi_value tls_context(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  c1m_tls_opts_t o;
  memset(&o, 0, sizeof o);
  uint32_t minv = 0, hs = 0, nsni = 0;
  const char *alpn = NULL, *tk = NULL;
  napi_value sni;
  char ciphers[4096];
  if (argc < 1 || addon_get_bool_prop(env, argv[0], "server", &o.server) ||
      get_bytes_prop(env, argv[0], "cert", &o.cert, &o.cert_len) || get_bytes_prop(env, argv[0], "key", &o.key, &o.key_len) ||
      get_bytes_prop(env, argv[0], "ca", &o.ca, &o.ca_len) || get_bytes_prop(env, argv[0], "alpn", &alpn, &o.alpn_len) ||
      get_bytes_prop(env, argv[0], "ticketKeys", &tk, &o.ticket_keys_len) ||
      get_string_prop(env, argv[0], "ciphers", ciphers, sizeof ciphers, &o.ciphers) ||
      addon_get_bool_prop(env, argv[0], "requestCert", &o.request_cert) ||
      addon_get_bool_prop(env, argv[0], "rejectUnauthorized", &o.reject_unauthorized) ||
      addon_get_bool_prop(env, argv[0], "resume", &o.resume) ||
      addon_get_u32_prop(env, argv[0], "minVersion", &minv) || addon_get_u32_prop(env, argv[0], "handshakeMs", &hs) ||
      napi_get_named_property(env, argv[0], "sni", &sni) != napi_ok || napi_get_array_length(env, sni, &nsni) != napi_ok)
    return napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "tlsContext(): bad options object"), NULL;
  o.alpn = (const uint8_t *)alpn;
  o.ticket_keys = (const uint8_t *)tk;
  o.min_version = (int)minv;
  o.handshake_ms = hs;
  char err[256] = "";
  c1m_tls_ctx_t *c = NULL;
  int rc = c1m_tls_ctx_new(&c, &o, err, sizeof err);
  if (rc < 0) return throw_tls(env, rc, err);
  for (uint32_t i = 0; i < nsni; i++) {
    napi_value e, v;
    char name[256];
    size_t n = 0;
    c1m_tls_opts_t so = o;
    so.ca = NULL, so.ca_len = 0;
    if (napi_get_element(env, sni, i, &e) != napi_ok || napi_get_element(env, e, 0, &v) != napi_ok ||
        napi_get_value_string_utf8(env, v, name, sizeof name, &n) != napi_ok ||
        napi_get_element(env, e, 1, &v) != napi_ok || addon_get_buffer_view(env, v, &so.cert, &so.cert_len) ||
        napi_get_element(env, e, 2, &v) != napi_ok || addon_get_buffer_view(env, v, &so.key, &so.key_len)) {
      c1m_tls_ctx_unref(c);
      return napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "tlsContext(): bad sni entry"), NULL;
    }
    rc = c1m_tls_ctx_add_sni(c, name, &so, err, sizeof err);
    if (rc < 0) {
      c1m_tls_ctx_unref(c);
      char msg[320];
      snprintf(msg, sizeof msg, "sni %s: %s", name, err);
      return throw_tls(env, rc, msg);
    }
  }
  if (napi_create_external(env, c, tls_ctx_finalize, NULL, &out) != napi_ok) {
    c1m_tls_ctx_unref(c);
    return addon_throw_last(env);
  }
  return out;
}

static c1m_tls_ctx_t *get_tls_ctx(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected a c1m TLS context");
    return NULL;
  }
  return p;
}

/* tlsListen(handle, listenerFd, ctx) -> 0 or -errno: the listener's (new) TLS context */
static napi_value tls_listen(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  addon_reactor_t *a = addon_reactor_args(env, info, 3, argv);
  if (!a) return NULL;
  int32_t fd;
  CHECK(napi_get_value_int32(env, argv[1], &fd));
  c1m_tls_ctx_t *c = get_tls_ctx(env, argv[2]);
  return c ? addon_num(env, c1m_tls_listen(a->r, fd, c)) : NULL;
}

/* tlsConnect(handle, fd, gen, ctx, servername | undefined, sessionKey | undefined) -> 0 or -errno */
static napi_value tls_connect(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  addon_reactor_t *a = addon_reactor_args(env, info, 6, argv);
  if (!a) return NULL;
  int32_t fd;
  uint32_t gen;
  if (addon_fd_gen(env, argv, &fd, &gen)) return napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected (handle, fd, gen, ...)"), NULL;
  c1m_tls_ctx_t *c = get_tls_ctx(env, argv[3]);
  if (!c) return NULL;
  char name[256] = "";
  size_t n = 0;
  napi_valuetype t = napi_undefined;
  napi_typeof(env, argv[4], &t);
  if (t == napi_string) CHECK(napi_get_value_string_utf8(env, argv[4], name, sizeof name, &n));
  char key[300] = "";
  napi_valuetype kt = napi_undefined;
  napi_typeof(env, argv[5], &kt);
  if (kt == napi_string) CHECK(napi_get_value_string_utf8(env, argv[5], key, sizeof key, &n));
  return addon_num(env, c1m_tls_connect(a->r, fd, gen, c, t == napi_string ? name : NULL, kt == napi_string ? key : NULL));
}

typedef struct {
  napi_env env;
  napi_value out;
} info_out_t;

static void set_str(napi_env env, napi_value obj, const char *key, const char *s) {
  napi_value v;
  if (*s) napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  else napi_get_undefined(env, &v);
  napi_set_named_property(env, obj, key, v);
}

static void tls_info_fill(const c1m_tls_info_t *i, void *arg) {
  info_out_t *o = arg;
  napi_env env = o->env;
  napi_value v;
  if (napi_create_object(env, &o->out) != napi_ok) return;
  set_str(env, o->out, "protocol", i->protocol);
  set_str(env, o->out, "cipher", i->cipher);
  set_str(env, o->out, "alpnProtocol", i->alpn);
  set_str(env, o->out, "servername", i->servername);
  napi_get_boolean(env, i->resumed != 0, &v);
  napi_set_named_property(env, o->out, "resumed", v);
  napi_set_named_property(env, o->out, "verifyResult", addon_num(env, (double)i->verify_result));
  if (i->peer_der_len > 0) {
    void *data;
    if (napi_create_buffer_copy(env, (size_t)i->peer_der_len, i->peer_der, &data, &v) == napi_ok)
      napi_set_named_property(env, o->out, "peerCertificate", v);
  }
}

/* tlsInfo(handle, fd, gen) -> { protocol, cipher, alpnProtocol, servername, resumed,
 * verifyResult, peerCertificate (DER Buffer) } | undefined */
static napi_value tls_info(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  addon_reactor_t *a = addon_reactor_args(env, info, 3, argv);
  if (!a) return NULL;
  int32_t fd;
  uint32_t gen;
  if (addon_fd_gen(env, argv, &fd, &gen)) return napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected (handle, fd, gen, ...)"), NULL;
  info_out_t o = {.env = env, .out = NULL};
  if (c1m_tls_info(a->r, fd, gen, tls_info_fill, &o) < 0 || !o.out) {
    napi_value u;
    napi_get_undefined(env, &u);
    return u;
  }
  return o.out;
}

/* tlsErrorText(code, verify) -> OpenSSL's text for a TLS_REJECT/CLOSE record's fields */
static napi_value tls_error_text(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t code = 0;
  int32_t verify = 0;
  if (argc < 2 || napi_get_value_uint32(env, argv[0], &code) != napi_ok || napi_get_value_int32(env, argv[1], &verify) != napi_ok)
    return napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "tlsErrorText(code, verify)"), NULL;
  char buf[320];
  c1m_tls_error_text(code, verify, buf, sizeof buf);
  CHECK(napi_create_string_utf8(env, buf, NAPI_AUTO_LENGTH, &out));
  return out;
}

/* tlsLive() -> [live SSL objects, live TLS contexts] in the process (the no-leak check) */
static napi_value tls_live(napi_env env, napi_callback_info info) {
  (void)info;
  int64_t ssl, ctx;
  c1m_tls_live(&ssl, &ctx);
  napi_value out;
  CHECK(napi_create_array_with_length(env, 2, &out));
  CHECK(napi_set_element(env, out, 0, addon_num(env, (double)ssl)));
  CHECK(napi_set_element(env, out, 1, addon_num(env, (double)ctx)));
  return out;
}

/* The TLS part of the export table and of the constants. */
int addon_tls_exports(napi_env env, napi_value exports, napi_value k) {
  napi_property_descriptor fns[] = {
      {"tlsContext", NULL, tls_context, NULL, NULL, NULL, napi_default, NULL},
      {"tlsListen", NULL, tls_listen, NULL, NULL, NULL, napi_default, NULL},
      {"tlsConnect", NULL, tls_connect, NULL, NULL, NULL, napi_default, NULL},
      {"tlsInfo", NULL, tls_info, NULL, NULL, NULL, napi_default, NULL},
      {"tlsErrorText", NULL, tls_error_text, NULL, NULL, NULL, napi_default, NULL},
      {"tlsLive", NULL, tls_live, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns) != napi_ok) return -1;
  addon_set_const(env, k, "F_TLS", C1M_F_TLS);
  addon_set_const(env, k, "TLS_AVAILABLE", c1m_tls_available());
  addon_set_const(env, k, "EV_TLS_REJECT", C1M_EV_TLS_REJECT);
  addon_set_const(env, k, "R_TLS", C1M_R_TLS);
  return 0;
}
