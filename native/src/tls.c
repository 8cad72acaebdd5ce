/*
 * TLS inside the reactor: handshakes, decryption into the receive area, encryption of staged
 * writes, close_notify. OpenSSL is the one Node is built with (headers from Node's include
 * directory, symbols from the node binary at load time); without its headers this file
 * compiles to stubs that report -ENOTSUP.
 *
 * Size: over 600 lines of code on purpose: the whole of TLS is one unit under one build-time
 * switch (OpenSSL's headers present or not, `__has_include`), so the stubs and the real code
 * stay side by side and cannot drift; the contexts (about 200 lines) share its private types.
 *
 * Model: a TLS connection is an ordinary slot with C1M_F_TLS; its OpenSSL state (tls_conn_t:
 * the SSL, its context, a few words) is in r->tls[fd], a side table of pointers allocated at
 * the first TLS connection (the slot stays 32 bytes). OpenSSL does I/O through a small custom
 * BIO: reads are read(2) on the fd, writes append ciphertext to one per-reactor scratch buffer,
 * which push() hands to conn_send_raw (gathered write, outbound buffer, EPOLLOUT edges): the
 * outbound buffer of a TLS connection holds ciphertext only.
 *
 * Invariants:
 * - An accepted connection is C1M_F_HANDSHAKE, not OPEN, until its handshake completes: JS has
 *   no handle for it and no command reaches it; a failure or the handshake timeout closes it
 *   with a TLS_REJECT record (conn_close3). Then the OPEN record (or the quiet count). An
 *   outbound one stays CONNECTING (+HANDSHAKE); what JS writes meanwhile waits as plaintext
 *   in t->pend and is encrypted when the handshake completes.
 * - WANT_READ from OpenSSL means the BIO saw EAGAIN (or a short read left OpenSSL nothing
 *   buffered, tls_on_readable): the socket is drained, RREADY is cleared
 *   and an edge will come. A read that stops at the budget goes on the ready list (OpenSSL may
 *   hold decrypted or raw bytes that no edge will announce).
 * - The thread's OpenSSL error queue is empty before every SSL call and drained after every
 *   failure (Node's own TLS shares it); the code of a failure travels in the record's c field.
 * - The BIO never refuses a write (except out of memory): SSL_write never wants to write, and
 *   no plaintext has to be kept once encrypted.
 *
 * Hot path: tls_on_readable (SSL_read_ex until WANT_READ or the budget, one DATA record),
 * tls_send (SSL_write_ex per staged piece, one conn_send_raw).
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* -DC1M_NO_TLS builds the stubs even where the headers exist. */
#if defined(__has_include) && !defined(C1M_NO_TLS)
#if __has_include(<openssl/ssl.h>)
#define C1M_HAVE_OPENSSL 1
#endif
#endif

#ifdef C1M_HAVE_OPENSSL

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <strings.h>

#define SCRATCH_KEEP (1u << 20) /* a scratch buffer larger than this is freed after use */

struct sni {
  char *name;
  SSL_CTX *ctx;
};

/* A client context's kept session: the newest the server sent under this key (server name and
 * port, chosen by the caller). One reference on sess. */
struct kept_session {
  char *key;
  SSL_SESSION *sess;
  uint64_t stored; /* the context's clock when stored: the smallest is evicted first */
};

struct c1m_tls_ctx {
  uint32_t refs; /* atomic */
  int server;
  SSL_CTX *ctx;
  uint32_t handshake_ms;
  uint8_t *alpn; /* server: the protocols it speaks, wire format, in preference order */
  size_t alpn_len;
  struct sni *sni;
  uint32_t nsni;
  struct kept_session *sessions; /* client with resume: C1M_TLS_SESSIONS entries, else NULL */
  uint64_t clock;
};

typedef struct tls_conn {
  SSL *ssl;
  c1m_tls_ctx_t *ctx; /* a reference: the SNI and ALPN callbacks read it during the handshake */
  c1m_reactor_t *r;
  int fd;
  int lfd;     /* the listener (for the OPEN record), -1 outbound */
  int err;     /* -errno of the last failed read(2) in the BIO */
  int eof;     /* read(2) returned 0 (BIO_eof: OpenSSL then tells an unexpected EOF apart) */
  int drained; /* the last read(2) returned fewer bytes than asked: the socket was empty then */
  uint8_t *pend; /* outbound: plaintext written before the handshake completed */
  uint32_t pend_len, pend_cap;
  char *session_key; /* outbound with resumption: where its sessions are kept, else NULL */
  uint8_t kept;      /* a session of this connection's is kept (on_new_session) */
  uint8_t lingering; /* a graceful close reading on for the server's sessions (tls_close_lingers) */
} tls_conn_t;

/* The error queue is emptied before each hot-path SSL call only when it holds something:
 * ERR_clear_error walks all its slots, a peek is one thread-local load. */
static inline void err_reset(void) {
  if (ERR_peek_error()) ERR_clear_error();
}

/* ---- the BIO ---- */

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static int bio_write(BIO *b, const char *data, int len) {
  tls_conn_t *t = BIO_get_data(b);
  c1m_reactor_t *r = t->r;
  BIO_clear_retry_flags(b);
  if (len <= 0) return 0;
  uint64_t need = (uint64_t)r->tls_out_len + (uint32_t)len;
  if (need > r->tls_out_cap) {
    uint64_t cap = r->tls_out_cap ? r->tls_out_cap : 32768;
    while (cap < need) cap *= 2;
    uint8_t *p = cap > UINT32_MAX ? NULL : realloc(r->tls_out, (size_t)cap);
    if (!p) {
      r->tls_oom = 1;
      return -1;
    }
    r->tls_out = p;
    r->tls_out_cap = (uint32_t)cap;
  }
  memcpy(r->tls_out + r->tls_out_len, data, (size_t)len);
  r->tls_out_len = (uint32_t)need;
  return len;
}

static int bio_read(BIO *b, char *buf, int len) {
  tls_conn_t *t = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (len <= 0) return 0;
  ssize_t n = c1m_sys_read(t->fd, buf, (size_t)len);
  t->drained = n < len;
  if (n == -EAGAIN) {
    BIO_set_retry_read(b);
    return -1;
  }
  if (n < 0) {
    t->err = (int)n;
    return -1;
  }
  if (n == 0) t->eof = 1;
  return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  (void)num, (void)ptr;
  if (cmd == BIO_CTRL_FLUSH) return 1;
  if (cmd == BIO_CTRL_EOF) {
    tls_conn_t *t = BIO_get_data(b);
    return t ? t->eof : 0;
  }
  return 0;
}

static int bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

static void bio_init_once(void) {
  BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "c1m");
  if (!m) return;
  if (!BIO_meth_set_write(m, bio_write) || !BIO_meth_set_read(m, bio_read) || !BIO_meth_set_ctrl(m, bio_ctrl) ||
      !BIO_meth_set_create(m, bio_create)) {
    BIO_meth_free(m);
    return;
  }
  bio_method = m;
}

/* ---- contexts ---- */

/* Live SSL objects and contexts in the process (c1m_tls_live): the no-leak check's counters. */
static int64_t live_ssl, live_ctx;

void c1m_tls_live(int64_t *ssl, int64_t *ctx) {
  *ssl = __atomic_load_n(&live_ssl, __ATOMIC_RELAXED);
  *ctx = __atomic_load_n(&live_ctx, __ATOMIC_RELAXED);
}

static void ctx_ref(c1m_tls_ctx_t *c) { __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED); }

void tls_ctx_ref(c1m_tls_ctx_t *c) { ctx_ref(c); }

void c1m_tls_ctx_unref(c1m_tls_ctx_t *c) {
  if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
  SSL_CTX_free(c->ctx);
  for (uint32_t i = 0; i < c->nsni; i++) {
    free(c->sni[i].name);
    SSL_CTX_free(c->sni[i].ctx);
  }
  free(c->sni);
  free(c->alpn);
  for (uint32_t i = 0; c->sessions && i < C1M_TLS_SESSIONS; i++) {
    free(c->sessions[i].key);
    SSL_SESSION_free(c->sessions[i].sess);
  }
  free(c->sessions);
  free(c);
  __atomic_sub_fetch(&live_ctx, 1, __ATOMIC_RELAXED);
}

/* ---- client sessions ----
 * TLS 1.3 sends sessions after the handshake (NewSessionTicket, read by SSL_read), 1.2 at its
 * end; OpenSSL hands each to on_new_session (SSL_SESS_CACHE_CLIENT, without its internal cache).
 * The context keeps the newest per key, at most C1M_TLS_SESSIONS keys. Single-threaded like
 * the context's users (c1m.h). */

static struct kept_session *session_find(c1m_tls_ctx_t *c, const char *key) {
  for (uint32_t i = 0; i < C1M_TLS_SESSIONS; i++)
    if (c->sessions[i].key && !strcmp(c->sessions[i].key, key)) return &c->sessions[i];
  return NULL;
}

/* Returns 1 when the session is kept (OpenSSL's reference is then ours), 0 to let it go. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess) {
  tls_conn_t *t = SSL_get_app_data(ssl);
  if (!t || !t->session_key || !t->ctx->sessions || !SSL_SESSION_is_resumable(sess)) return 0;
  c1m_tls_ctx_t *c = t->ctx;
  struct kept_session *k = session_find(c, t->session_key);
  if (!k) { /* an empty entry, or the oldest */
    k = &c->sessions[0];
    for (uint32_t i = 0; i < C1M_TLS_SESSIONS && k->key; i++)
      if (!c->sessions[i].key || c->sessions[i].stored < k->stored) k = &c->sessions[i];
    char *key = strdup(t->session_key);
    if (!key) return 0;
    free(k->key);
    k->key = key;
  }
  SSL_SESSION_free(k->sess);
  k->sess = sess;
  k->stored = ++c->clock;
  t->kept = 1;
  return 1;
}

/* Record what failed with OpenSSL's reason, drain the queue. Returns rc. */
static int setup_error(int rc, char *err, size_t len, const char *what) {
  char why[200] = "";
  unsigned long code = ERR_peek_last_error();
  if (code) ERR_error_string_n(code, why, sizeof why);
  ERR_clear_error();
  if (err && len) snprintf(err, len, "%s%s%s", what, why[0] ? ": " : "", why);
  return rc;
}

static int load_cert_key(SSL_CTX *ctx, const c1m_tls_opts_t *o, char *err, size_t len) {
  if (!o->cert || !o->key) return setup_error(-EINVAL, err, len, "a certificate and a key are both required");
  BIO *b = BIO_new_mem_buf(o->cert, (int)o->cert_len);
  if (!b) return setup_error(-ENOMEM, err, len, "certificate");
  X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
  int ok = x && SSL_CTX_use_certificate(ctx, x) == 1;
  X509_free(x);
  while (ok && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) { /* the chain */
    ok = SSL_CTX_add1_chain_cert(ctx, x) == 1;
    X509_free(x);
  }
  BIO_free(b);
  if (!ok) return setup_error(-EINVAL, err, len, "certificate");
  ERR_clear_error(); /* the end of the PEM chain leaves "no start line" */
  b = BIO_new_mem_buf(o->key, (int)o->key_len);
  if (!b) return setup_error(-ENOMEM, err, len, "private key");
  EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
  BIO_free(b);
  if (!k) return setup_error(-EINVAL, err, len, "private key");
  ok = SSL_CTX_use_PrivateKey(ctx, k) == 1 && SSL_CTX_check_private_key(ctx) == 1;
  EVP_PKEY_free(k);
  if (!ok) return setup_error(-EKEYREJECTED, err, len, "the private key does not match the certificate");
  return 0;
}

static int load_ca(SSL_CTX *ctx, const c1m_tls_opts_t *o, char *err, size_t len) {
  BIO *b = BIO_new_mem_buf(o->ca, (int)o->ca_len);
  if (!b) return setup_error(-ENOMEM, err, len, "ca");
  X509_STORE *store = SSL_CTX_get_cert_store(ctx);
  int n = 0, ok = 1;
  X509 *x;
  while (ok && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
    ok = X509_STORE_add_cert(store, x) == 1 && (!o->server || SSL_CTX_add_client_CA(ctx, x) == 1);
    X509_free(x);
    n++;
  }
  BIO_free(b);
  if (!ok || n == 0) return setup_error(-EINVAL, err, len, "ca");
  ERR_clear_error();
  return 0;
}

static int verify_any(int ok, X509_STORE_CTX *x) {
  (void)ok, (void)x;
  return 1; /* rejectUnauthorized: false; the result stays readable (SSL_get_verify_result) */
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg) {
  (void)ssl;
  c1m_tls_ctx_t *c = arg;
  unsigned char *sel = NULL;
  if (SSL_select_next_proto(&sel, outlen, c->alpn, (unsigned int)c->alpn_len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_ALERT_FATAL; /* no_application_protocol (RFC 7301) */
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *sni_find(const c1m_tls_ctx_t *c, const char *name) {
  for (uint32_t i = 0; i < c->nsni; i++)
    if (!strcasecmp(c->sni[i].name, name)) return c->sni[i].ctx;
  const char *dot = strchr(name, '.');
  for (uint32_t i = 0; dot && i < c->nsni; i++)
    if (c->sni[i].name[0] == '*' && c->sni[i].name[1] == '.' && !strcasecmp(c->sni[i].name + 1, dot))
      return c->sni[i].ctx;
  return NULL;
}

static int on_servername(SSL *ssl, int *al, void *arg) {
  (void)arg;
  tls_conn_t *t = SSL_get_app_data(ssl);
  const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!t || !name) return SSL_TLSEXT_ERR_OK;
  SSL_CTX *m = sni_find(t->ctx, name);
  if (m && SSL_set_SSL_CTX(ssl, m) != m) {
    *al = SSL_AD_INTERNAL_ERROR;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK; /* unknown name: the default certificate */
}

/* TLS 1.3 suites in preference order: AES-128-GCM first, as Chrome and Go order them on
 * hardware with AES instructions (a third fewer AES rounds than AES-256, same GHASH); a server
 * honours ChaCha20 first when the client lists it first (SSL_OP_PRIORITIZE_CHACHA: clients
 * without AES instructions do). */
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
/* TLS 1.2: forward-secret AEAD suites first, AES-128-GCM leading as in Node's default list, then
 * the rest of OpenSSL's HIGH set for older clients. */
#define TLS12_CIPHERS                                                                                         \
  "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"               \
  "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                 \
  "HIGH:!aNULL:!eNULL:!MD5:!RC4:!3DES:!PSK:!SRP:!CAMELLIA:!DSS"

/* Apply a user's cipher string as node:tls reads it: TLS_* names are TLS 1.3 suites, the rest
 * an OpenSSL TLS 1.2 cipher list; a part left empty keeps its default. 1, or 0 when OpenSSL
 * refuses a part (its reason is on the error queue). */
static int set_ciphers(SSL_CTX *ctx, const char *spec) {
  size_t n = strlen(spec);
  char *v13 = calloc(1, n + 1), *v12 = calloc(1, n + 1), *copy = strdup(spec);
  int ok = v13 && v12 && copy;
  char *save = NULL;
  for (char *tok = ok ? strtok_r(copy, ":", &save) : NULL; tok; tok = strtok_r(NULL, ":", &save)) {
    char *dst = strncmp(tok, "TLS_", 4) == 0 ? v13 : v12;
    if (*dst) strcat(dst, ":");
    strcat(dst, tok);
  }
  if (ok && *v13) ok = SSL_CTX_set_ciphersuites(ctx, v13) == 1;
  if (ok && *v12) ok = SSL_CTX_set_cipher_list(ctx, v12) == 1;
  free(v13), free(v12), free(copy);
  return ok;
}

/* An SSL_CTX with the settings every c1m context shares. */
static SSL_CTX *ssl_ctx_new(const c1m_tls_opts_t *o) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_method());
  if (!ctx) return NULL;
  int minv = o->min_version >= TLS1_3_VERSION ? TLS1_3_VERSION : TLS1_2_VERSION; /* 1.0 and 1.1 never */
  uint64_t opts = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION;
  if (o->server) opts |= SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA;
  SSL_CTX_set_options(ctx, opts);
  /* An idle connection holds no record buffers; read-ahead fetches several records per read(2). */
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_read_ahead(ctx, 1);
  if (SSL_CTX_set_min_proto_version(ctx, minv) != 1 || SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) != 1 ||
      SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
    SSL_CTX_free(ctx);
    return NULL;
  }
  /* Servers resume by session tickets, which they do not store; clients do not cache. */
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  /* Given ticket keys (the same in every reactor and process of a server) let a ticket issued
   * by one resume on any other; without them OpenSSL draws random ones per context. */
  if (o->server && (SSL_CTX_set_num_tickets(ctx, 1) != 1 ||
                    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"c1m", 3) != 1 ||
                    (o->ticket_keys_len && SSL_CTX_set_tlsext_ticket_keys(ctx, (void *)o->ticket_keys, (long)o->ticket_keys_len) != 1))) {
    SSL_CTX_free(ctx);
    return NULL;
  }
  return ctx;
}

int c1m_tls_available(void) { return 1; }

int c1m_tls_ctx_new(c1m_tls_ctx_t **out, const c1m_tls_opts_t *o, char *err, size_t errlen) {
  pthread_once(&bio_once, bio_init_once);
  if (!bio_method) return setup_error(-ENOMEM, err, errlen, "BIO_meth_new");
  ERR_clear_error();
  c1m_tls_ctx_t *c = calloc(1, sizeof *c);
  if (!c) return setup_error(-ENOMEM, err, errlen, "calloc");
  __atomic_add_fetch(&live_ctx, 1, __ATOMIC_RELAXED);
  c->refs = 1;
  c->server = o->server;
  c->handshake_ms = o->handshake_ms;
  c->ctx = ssl_ctx_new(o);
  int rc = c->ctx ? 0 : setup_error(-EINVAL, err, errlen, "SSL_CTX_new");
  if (rc == 0 && o->ciphers && *o->ciphers && !set_ciphers(c->ctx, o->ciphers)) rc = setup_error(-EINVAL, err, errlen, "ciphers");
  if (rc == 0 && (o->server || o->cert || o->key)) rc = load_cert_key(c->ctx, o, err, errlen);
  if (rc == 0 && o->ca) rc = load_ca(c->ctx, o, err, errlen);
  if (rc == 0 && !o->server && !o->ca && SSL_CTX_set_default_verify_paths(c->ctx) != 1)
    rc = setup_error(-EINVAL, err, errlen, "default verify paths");
  if (rc == 0 && o->server) {
    if (o->request_cert)
      SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER | (o->reject_unauthorized ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                         o->reject_unauthorized ? NULL : verify_any);
    SSL_CTX_set_tlsext_servername_callback(c->ctx, on_servername);
    if (o->alpn_len) {
      c->alpn = malloc(o->alpn_len);
      if (!c->alpn) rc = setup_error(-ENOMEM, err, errlen, "malloc");
      else {
        memcpy(c->alpn, o->alpn, o->alpn_len);
        c->alpn_len = o->alpn_len;
        SSL_CTX_set_alpn_select_cb(c->ctx, alpn_select, c);
      }
    }
  } else if (rc == 0) {
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, o->reject_unauthorized ? NULL : verify_any);
    if (o->resume && !(c->sessions = calloc(C1M_TLS_SESSIONS, sizeof *c->sessions))) rc = setup_error(-ENOMEM, err, errlen, "calloc");
    if (c->sessions) {
      SSL_CTX_set_session_cache_mode(c->ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
      SSL_CTX_sess_set_new_cb(c->ctx, on_new_session);
    }
    if (o->alpn_len && SSL_CTX_set_alpn_protos(c->ctx, o->alpn, (unsigned int)o->alpn_len) != 0) /* 0 is success */
      rc = setup_error(-EINVAL, err, errlen, "alpn");
  }
  if (rc < 0) {
    c1m_tls_ctx_unref(c);
    return rc;
  }
  *out = c;
  return 0;
}

int c1m_tls_ctx_add_sni(c1m_tls_ctx_t *c, const char *name, const c1m_tls_opts_t *o, char *err, size_t errlen) {
  if (!c->server || !name || !*name) return setup_error(-EINVAL, err, errlen, "sni: a server context and a name");
  struct sni *grown = realloc(c->sni, (c->nsni + 1) * sizeof *grown);
  if (!grown) return setup_error(-ENOMEM, err, errlen, "realloc");
  c->sni = grown;
  c1m_tls_opts_t so = *o;
  so.server = 1;
  SSL_CTX *ctx = ssl_ctx_new(&so);
  if (!ctx) return setup_error(-EINVAL, err, errlen, "SSL_CTX_new");
  int rc = so.ciphers && *so.ciphers && !set_ciphers(ctx, so.ciphers) ? setup_error(-EINVAL, err, errlen, "ciphers") : 0;
  if (rc == 0) rc = load_cert_key(ctx, &so, err, errlen);
  /* After the switch, the handshake runs on this context: it shares the default context's
   * trust store (client certificates) and ALPN choice. */
  if (rc == 0) SSL_CTX_set1_cert_store(ctx, SSL_CTX_get_cert_store(c->ctx)); /* takes a reference */
  if (rc == 0 && c->alpn_len) SSL_CTX_set_alpn_select_cb(ctx, alpn_select, c);
  char *dup = rc == 0 ? strdup(name) : NULL;
  if (rc == 0 && !dup) rc = setup_error(-ENOMEM, err, errlen, "strdup");
  if (rc < 0) {
    SSL_CTX_free(ctx);
    return rc;
  }
  c->sni[c->nsni++] = (struct sni){.name = dup, .ctx = ctx};
  return 0;
}

/* ---- connections ---- */

/* New TLS state for fd. 0 or -errno. */
static int conn_new(c1m_reactor_t *r, int fd, c1m_tls_ctx_t *c, int lfd) {
  if (!r->tls && !(r->tls = calloc(r->cfg.nslots, sizeof *r->tls))) return -ENOMEM;
  tls_conn_t *t = calloc(1, sizeof *t);
  if (!t) return -ENOMEM;
  ERR_clear_error();
  t->ssl = SSL_new(c->ctx);
  BIO *b = t->ssl ? BIO_new(bio_method) : NULL;
  if (!b) {
    SSL_free(t->ssl);
    free(t);
    ERR_clear_error();
    return -ENOMEM;
  }
  __atomic_add_fetch(&live_ssl, 1, __ATOMIC_RELAXED);
  BIO_set_data(b, t);
  SSL_set_bio(t->ssl, b, b);
  SSL_set_app_data(t->ssl, t);
  t->ctx = c;
  ctx_ref(c);
  t->r = r;
  t->fd = fd;
  t->lfd = lfd;
  r->tls[fd] = t;
  return 0;
}

void tls_release(c1m_reactor_t *r, int fd) {
  if (!r->tls || !r->tls[fd]) return;
  tls_conn_t *t = r->tls[fd];
  r->tls[fd] = NULL;
  SSL_free(t->ssl);
  __atomic_sub_fetch(&live_ssl, 1, __ATOMIC_RELAXED);
  c1m_tls_ctx_unref(t->ctx);
  free(t->pend);
  free(t->session_key);
  free(t);
}

void tls_fini(c1m_reactor_t *r) {
  for (int i = 0; i < r->nlisteners; i++) {
    c1m_tls_ctx_unref(r->listeners[i].tls);
    r->listeners[i].tls = NULL;
  }
  free(r->tls);
  r->tls = NULL;
  free(r->tls_out);
  r->tls_out = NULL;
  r->tls_out_cap = r->tls_out_len = 0;
}

static uint32_t ms_to_ticks(const c1m_reactor_t *r, uint32_t ms) { return ms ? (ms + r->cfg.tick_ms - 1) / r->cfg.tick_ms : 0; }

/* Send the records OpenSSL wrote to the scratch. Returns -1 when the connection closed. */
static int push(c1m_reactor_t *r, int fd, c1m_slot_t *s, int want_drain) {
  uint32_t gen = s->gen, n = r->tls_out_len;
  r->tls_out_len = 0;
  if (r->tls_oom) {
    r->tls_oom = 0;
    conn_close(r, fd, C1M_R_ERROR, -ENOMEM, 0);
    return -1;
  }
  if (n || want_drain) {
    struct iovec iov = {.iov_base = r->tls_out, .iov_len = n};
    conn_send_raw(r, fd, s, &iov, 1, n, want_drain);
  }
  if (r->tls_out_cap > SCRATCH_KEEP) { /* one huge write must not pin its size for good */
    free(r->tls_out);
    r->tls_out = NULL;
    r->tls_out_cap = 0;
  }
  return s->gen != gen || !s->flags ? -1 : 0;
}

/* What an OpenSSL failure closes a connection with: reason, b and c of its record. Drains the
 * error queue. */
static void failure(tls_conn_t *t, int e, int *reason, int *err, int32_t *code) {
  *code = (int32_t)ERR_peek_error();
  *err = 0;
  *reason = C1M_R_TLS;
  if (e == SSL_ERROR_SYSCALL && t->err) {
    *reason = C1M_R_ERROR;
    *err = t->err;
  } else if (e == SSL_ERROR_SYSCALL && !*code) {
    *reason = C1M_R_ERROR; /* the peer closed the connection during the handshake */
    *err = -ECONNRESET;
  } else {
    long v = SSL_get_verify_result(t->ssl);
    if (v != X509_V_OK) *err = (int)v;
  }
  ERR_clear_error();
}

/* The plaintext an outbound connection wrote before its handshake completed. */
static void keep_pending(c1m_reactor_t *r, int fd, c1m_slot_t *s, tls_conn_t *t, struct iovec *iov, int cnt,
                         size_t total, int want_drain) {
  uint64_t need = (uint64_t)t->pend_len + total;
  if (need > r->cfg.max_out) {
    conn_close(r, fd, C1M_R_SLOW_CONSUMER, 0, 0);
    return;
  }
  if (bytes_reserve(&t->pend, &t->pend_cap, (uint32_t)need) < 0) {
    conn_close(r, fd, C1M_R_ERROR, -ENOMEM, 0);
    return;
  }
  for (int i = 0; i < cnt; i++) {
    memcpy(t->pend + t->pend_len, iov[i].iov_base, iov[i].iov_len);
    t->pend_len += (uint32_t)iov[i].iov_len;
  }
  if (want_drain) s->flags |= C1M_F_DRAIN;
}

void tls_send(c1m_reactor_t *r, int fd, c1m_slot_t *s, struct iovec *iov, int cnt, size_t total, int want_drain) {
  tls_conn_t *t = r->tls ? r->tls[fd] : NULL;
  if (!t) {
    conn_close(r, fd, C1M_R_ERROR, -EBADF, 0);
    return;
  }
  if (s->flags & (C1M_F_CONNECTING | C1M_F_HANDSHAKE)) {
    keep_pending(r, fd, s, t, iov, cnt, total, want_drain);
    return;
  }
  for (int i = 0; i < cnt; i++) {
    size_t n = 0;
    if (!iov[i].iov_len) continue;
    err_reset();
    if (SSL_write_ex(t->ssl, iov[i].iov_base, iov[i].iov_len, &n) != 1) {
      int reason, err;
      int32_t code;
      failure(t, SSL_get_error(t->ssl, 0), &reason, &err, &code);
      r->tls_out_len = 0;
      if (r->tls_oom) r->tls_oom = 0, reason = C1M_R_ERROR, err = -ENOMEM;
      conn_close3(r, fd, reason, err, code, 0);
      return;
    }
  }
  push(r, fd, s, want_drain);
}

void tls_close_notify(c1m_reactor_t *r, int fd, c1m_slot_t *s) {
  tls_conn_t *t = r->tls ? r->tls[fd] : NULL;
  if (!t || (s->flags & (C1M_F_CONNECTING | C1M_F_HANDSHAKE))) return;
  if (SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN) return;
  ERR_clear_error();
  SSL_shutdown(t->ssl); /* 0: sent, the peer's not seen yet; we do not wait for it */
  ERR_clear_error();
  push(r, fd, s, 0);
}

/* ---- a graceful close that waits for the server's sessions ----
 * A TLS 1.3 server sends its sessions (NewSessionTicket) after the handshake, and only a read
 * takes them in. A client that closes right after its handshake would drop them unread (and
 * its close(2) with unread bytes resets the connection). So a graceful close of an outbound
 * TLS 1.3 connection that keeps sessions and has none of its own yet lingers: it stays CLOSING
 * (writes refused, the close timer armed, JS gets nothing more but the CLOSE record) and reads
 * on, storing sessions and discarding application data, until the peer's close_notify or FIN
 * (the answer to ours), an error, more than read_budget bytes of data, or the close timer
 * (then C1M_R_LOCAL, not a timeout: the close itself is done). Any other close is as before:
 * at once once out drains. */

int tls_close_lingers(c1m_reactor_t *r, int fd, c1m_slot_t *s) {
  tls_conn_t *t = r->tls ? r->tls[fd] : NULL;
  if (!t) return 0;
  if (t->lingering) return 1;
  if (!t->session_key || t->kept || (s->flags & (C1M_F_CONNECTING | C1M_F_HANDSHAKE | C1M_F_EOF)) ||
      !(SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN) || SSL_version(t->ssl) != TLS1_3_VERSION)
    return 0;
  t->lingering = 1;
  return 1;
}

void tls_linger_read(c1m_reactor_t *r, int fd, c1m_slot_t *s, int in_poll) {
  tls_conn_t *t = r->tls[fd];
  uint8_t sink[16384]; /* one record's plaintext at most per call */
  size_t got = 0;
  int e = SSL_ERROR_NONE;
  t->err = 0;
  while (got <= r->cfg.read_budget) {
    size_t n = 0;
    ERR_clear_error();
    if (SSL_read_ex(t->ssl, sink, sizeof sink, &n) != 1) {
      e = SSL_get_error(t->ssl, 0);
      break;
    }
    got += n;
  }
  ERR_clear_error();
  r->tls_out_len = 0; /* nothing more is sent after our close_notify */
  r->tls_oom = 0;
  if (e == SSL_ERROR_WANT_READ) {
    s->flags &= ~C1M_F_RREADY; /* the BIO saw EAGAIN: an edge will come */
    return;
  }
  /* the peer's close_notify or FIN, a failure, or data past the budget: done */
  conn_close(r, fd, C1M_R_LOCAL, 0, in_poll);
}

static void established(c1m_reactor_t *r, int fd, c1m_slot_t *s, tls_conn_t *t) {
  s->flags &= ~C1M_F_HANDSHAKE;
  if (timer_arm(r, fd, s, r->cfg.idle_ticks) < 0) loop_report(r, C1M_E_TIMERS, fd, -ENOMEM, 0);
  uint32_t gen = s->gen;
  if (s->flags & C1M_F_CONNECTING) {
    s->flags = (s->flags & ~C1M_F_CONNECTING) | C1M_F_OPEN;
    ev_emit(r, C1M_EV_OPEN, fd, gen, -1, 0);
    if (t->pend_len || (s->flags & C1M_F_DRAIN)) {
      struct iovec iov = {.iov_base = t->pend, .iov_len = t->pend_len};
      int drain = (s->flags & C1M_F_DRAIN) != 0;
      s->flags &= ~C1M_F_DRAIN;
      tls_send(r, fd, s, &iov, 1, t->pend_len, drain);
      if (s->gen != gen || !s->flags) return;
      free(t->pend);
      t->pend = NULL;
      t->pend_len = t->pend_cap = 0;
    }
    if (s->flags & (C1M_F_CLOSING | C1M_F_SHUT_PEND)) { /* asked for while connecting */
      tls_close_notify(r, fd, s);
      if (s->gen == gen && s->flags && s->out_len == 0) conn_out_done(r, fd, s);
      return;
    }
  } else {
    s->flags |= C1M_F_OPEN;
    listener_opened(r, fd, t->lfd);
  }
  /* Application data may have come with the last handshake flight (already read by OpenSSL). */
  s->flags |= C1M_F_RREADY;
  if (!can_read(s)) return;
  if (r->nev + 2 <= r->ev_cap) tls_on_readable(r, fd, s);
  else ready_push(r, fd, s);
}

/* One step of the handshake, on an edge. */
static void handshake(c1m_reactor_t *r, int fd, c1m_slot_t *s) {
  tls_conn_t *t = r->tls[fd];
  t->err = 0;
  ERR_clear_error();
  int rc = SSL_do_handshake(t->ssl);
  int e = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, rc);
  int reason = 0, err = 0;
  int32_t code = 0;
  if (rc != 1 && e != SSL_ERROR_WANT_READ) failure(t, e, &reason, &err, &code);
  if (push(r, fd, s, 0) < 0) return; /* its flight, or the alert */
  if (rc == 1) established(r, fd, s, t);
  else if (e == SSL_ERROR_WANT_READ) s->flags &= ~C1M_F_RREADY; /* the BIO saw EAGAIN */
  else conn_close3(r, fd, reason, err, code, 1);
}

/* An accepted socket's server session with c; lfd is the listener, or -2 for a hand-off. */
static void accept_with(c1m_reactor_t *r, c1m_tls_ctx_t *c, int lfd, int fd) {
  c1m_slot_t *s = &r->slots[fd];
  int rc = conn_new(r, fd, c, lfd);
  if (rc < 0) {
    conn_close(r, fd, C1M_R_ERROR, rc, 1);
    return;
  }
  SSL_set_accept_state(r->tls[fd]->ssl);
  uint32_t ticks = ms_to_ticks(r, c->handshake_ms);
  if (ticks && timer_arm(r, fd, s, ticks) < 0) conn_close(r, fd, C1M_R_ERROR, -ENOMEM, 1);
  /* The ClientHello, if already here, is reported by the EPOLL_CTL_ADD. */
}

void tls_accepted(c1m_reactor_t *r, listener_t *l, int fd) { accept_with(r, l->tls, l->fd, fd); }

void tls_handed(c1m_reactor_t *r, c1m_tls_ctx_t *c, int fd) { accept_with(r, c, -2, fd); }

void tls_connected(c1m_reactor_t *r, int fd, c1m_slot_t *s) {
  s->flags |= C1M_F_HANDSHAKE;
  uint32_t ticks = ms_to_ticks(r, r->tls[fd]->ctx->handshake_ms);
  if (ticks && timer_arm(r, fd, s, ticks) < 0) {
    conn_close(r, fd, C1M_R_ERROR, -ENOMEM, 1);
    return;
  }
  handshake(r, fd, s); /* the ClientHello */
}

void tls_event(c1m_reactor_t *r, int fd, c1m_slot_t *s, uint32_t e) {
  if ((e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && s->out_len && conn_flush_out(r, fd, s) < 0) return;
  if (s->flags & C1M_F_RREADY) handshake(r, fd, s);
}

void tls_on_readable(c1m_reactor_t *r, int fd, c1m_slot_t *s) {
  uint32_t pend = s->in_len, off = r->recv_used;
  if ((s->flags & C1M_F_SERVED) || off + pend + 512 > r->recv_cap) {
    ready_push(r, fd, s);
    return;
  }
  uint32_t room = r->recv_cap - off - pend;
  if (room > r->cfg.read_budget) room = r->cfg.read_budget;
  tls_conn_t *t = r->tls[fd];
  uint8_t *dst = r->recv + off + pend;
  size_t got = 0;
  int e = SSL_ERROR_NONE;
  t->err = 0;
  t->drained = 0; /* an edge may have come since the last read(2) */
  while (got < room) {
    size_t n = 0;
    err_reset();
    if (SSL_read_ex(t->ssl, dst + got, room - got, &n) == 1) {
      got += n;
      /* As in conn_on_readable: a short read(2) drained the socket, and bytes arriving later
       * bring a new edge; unless OpenSSL still holds bytes (more records, or a part of one) or
       * the FIN is in (no edge announces the EOF a next read would see). Saves the read(2)
       * that would only say EAGAIN. */
      if (t->drained && !(s->flags & C1M_F_RDHUP) && !SSL_has_pending(t->ssl)) {
        e = SSL_ERROR_WANT_READ;
        break;
      }
      continue;
    }
    e = SSL_get_error(t->ssl, 0);
    break;
  }
  int reason = 0, err = 0;
  int32_t code = 0;
  /* A FIN without close_notify between records is an end of input, as browsers close that way;
   * one inside a record (OpenSSL still holds its first bytes) is a truncation: an error. */
  if (e == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING && !SSL_has_pending(t->ssl))
    e = SSL_ERROR_ZERO_RETURN;
  if (e == SSL_ERROR_SYSCALL && !t->err && !ERR_peek_error()) e = SSL_ERROR_ZERO_RETURN; /* EOF */
  if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_ZERO_RETURN) failure(t, e, &reason, &err, &code);
  err_reset();
  /* what reading made OpenSSL write (a key update's answer) */
  if (r->tls_out_len && push(r, fd, s, 0) < 0) return;
  if (e == SSL_ERROR_NONE) ready_push(r, fd, s);         /* the budget is used: more may wait */
  else if (e == SSL_ERROR_WANT_READ) s->flags &= ~C1M_F_RREADY; /* the BIO saw EAGAIN */
  if (got) conn_deliver(r, fd, s, (uint32_t)got);
  if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify, or a FIN */
    s->flags = (s->flags | C1M_F_EOF) & ~C1M_F_RREADY;
    if (s->flags & C1M_F_SHUT_DONE) conn_close(r, fd, C1M_R_END, 0, 1);
    else ev_emit(r, C1M_EV_END, fd, s->gen, 0, 0);
  } else if (reason) {
    conn_close3(r, fd, reason, err, code, 1);
  }
}

/* ---- public ---- */

int c1m_tls_listen(c1m_reactor_t *r, int fd, c1m_tls_ctx_t *c) {
  if (!c || !c->server) return -EINVAL;
  for (int i = 0; i < r->nlisteners; i++) {
    listener_t *l = &r->listeners[i];
    if (l->fd != fd) continue;
    ctx_ref(c); /* a hand-off listener's targets get it with each fd (handoff.c) */
    c1m_tls_ctx_unref(l->tls); /* connections made from it keep their own references */
    l->tls = c;
    return 0;
  }
  return -ENOENT;
}

int c1m_tls_connect(c1m_reactor_t *r, int fd, uint32_t gen, c1m_tls_ctx_t *c, const char *servername, const char *session_key) {
  c1m_slot_t *s = live(r, fd, gen);
  if (!s) return -EBADF;
  if (!c || c->server) return -EINVAL;
  if (!(s->flags & C1M_F_CONNECTING) || (s->flags & C1M_F_TLS)) return -EALREADY;
  int rc = conn_new(r, fd, c, -1);
  if (rc < 0) return rc;
  SSL *ssl = r->tls[fd]->ssl;
  SSL_set_connect_state(ssl);
  if (servername && *servername) {
    unsigned char ip[16];
    int ok;
    if (inet_pton(AF_INET, servername, ip) == 1 || inet_pton(AF_INET6, servername, ip) == 1)
      ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), servername) == 1; /* no SNI for an address */
    else
      ok = SSL_set_tlsext_host_name(ssl, servername) == 1 && SSL_set1_host(ssl, servername) == 1;
    if (!ok) {
      ERR_clear_error();
      tls_release(r, fd);
      return -EINVAL;
    }
  }
  if (session_key && c->sessions) {
    tls_conn_t *t = r->tls[fd];
    struct kept_session *k = session_find(c, session_key);
    /* A copy: a TLS 1.3 resumption changes the session it resumes with (the one kept could
     * then no longer resume), and several connections may offer it at once. */
    SSL_SESSION *copy = k ? SSL_SESSION_dup(k->sess) : NULL;
    int ok = (t->session_key = strdup(session_key)) != NULL && (!k || (copy && SSL_set_session(ssl, copy) == 1));
    SSL_SESSION_free(copy); /* the SSL holds its own reference */
    if (!ok) {
      ERR_clear_error();
      tls_release(r, fd);
      return -ENOMEM;
    }
  }
  s->flags |= C1M_F_TLS;
  return 0;
}

int c1m_tls_info(c1m_reactor_t *r, int fd, uint32_t gen, void (*fn)(const c1m_tls_info_t *, void *), void *arg) {
  c1m_slot_t *s = live(r, fd, gen);
  if (!s) return -EBADF;
  tls_conn_t *t = r->tls && (s->flags & C1M_F_TLS) ? r->tls[fd] : NULL;
  if (!t || (s->flags & (C1M_F_HANDSHAKE | C1M_F_CONNECTING))) return -ENOTCONN;
  c1m_tls_info_t info;
  memset(&info, 0, sizeof info);
  SSL *ssl = t->ssl;
  snprintf(info.protocol, sizeof info.protocol, "%s", SSL_get_version(ssl));
  const SSL_CIPHER *ci = SSL_get_current_cipher(ssl);
  snprintf(info.cipher, sizeof info.cipher, "%s", ci ? SSL_CIPHER_get_name(ci) : "");
  const unsigned char *ap = NULL;
  unsigned int alen = 0;
  SSL_get0_alpn_selected(ssl, &ap, &alen);
  if (ap && alen < sizeof info.alpn) memcpy(info.alpn, ap, alen);
  const char *sn = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  snprintf(info.servername, sizeof info.servername, "%s", sn ? sn : "");
  info.resumed = SSL_session_reused(ssl);
  info.verify_result = SSL_get_verify_result(ssl);
  unsigned char *der = NULL;
  X509 *peer = SSL_get0_peer_certificate(ssl);
  if (peer) {
    int n = i2d_X509(peer, &der);
    if (n > 0) info.peer_der = der, info.peer_der_len = n;
  }
  ERR_clear_error();
  fn(&info, arg);
  OPENSSL_free(der);
  return 0;
}

void c1m_tls_error_text(uint32_t code, long verify, char *buf, size_t len) {
  char why[200] = "";
  if (code) ERR_error_string_n(code, why, sizeof why);
  if (verify) snprintf(buf, len, "%s%s%s", why, why[0] ? ": " : "", X509_verify_cert_error_string(verify));
  else snprintf(buf, len, "%s", why[0] ? why : "TLS failure");
}

#else /* no OpenSSL headers: TLS is unavailable, plain TCP is unchanged */

int c1m_tls_available(void) { return 0; }
int c1m_tls_ctx_new(c1m_tls_ctx_t **out, const c1m_tls_opts_t *o, char *err, size_t errlen) {
  (void)out, (void)o;
  if (err && errlen) snprintf(err, errlen, "the addon was built without OpenSSL headers");
  return -ENOTSUP;
}
int c1m_tls_ctx_add_sni(c1m_tls_ctx_t *c, const char *name, const c1m_tls_opts_t *o, char *err, size_t errlen) {
  (void)c, (void)name;
  return c1m_tls_ctx_new(NULL, o, err, errlen);
}
void c1m_tls_ctx_unref(c1m_tls_ctx_t *c) { (void)c; }
int c1m_tls_listen(c1m_reactor_t *r, int fd, c1m_tls_ctx_t *c) { return (void)r, (void)fd, (void)c, -ENOTSUP; }
int c1m_tls_connect(c1m_reactor_t *r, int fd, uint32_t gen, c1m_tls_ctx_t *c, const char *servername, const char *session_key) {
  return (void)r, (void)fd, (void)gen, (void)c, (void)servername, (void)session_key, -ENOTSUP;
}
int c1m_tls_info(c1m_reactor_t *r, int fd, uint32_t gen, void (*fn)(const c1m_tls_info_t *, void *), void *arg) {
  return (void)r, (void)fd, (void)gen, (void)fn, (void)arg, -ENOTSUP;
}
void c1m_tls_live(int64_t *ssl, int64_t *ctx) { *ssl = *ctx = 0; }
void c1m_tls_error_text(uint32_t code, long verify, char *buf, size_t len) {
  (void)code, (void)verify;
  snprintf(buf, len, "TLS is unavailable");
}
/* No connection has C1M_F_TLS without a context, so these are never reached. */
void tls_accepted(c1m_reactor_t *r, listener_t *l, int fd) { (void)l, conn_close(r, fd, C1M_R_ERROR, -ENOTSUP, 1); }
void tls_handed(c1m_reactor_t *r, c1m_tls_ctx_t *c, int fd) { (void)c, conn_close(r, fd, C1M_R_ERROR, -ENOTSUP, 1); }
void tls_ctx_ref(c1m_tls_ctx_t *c) { (void)c; }
void tls_event(c1m_reactor_t *r, int fd, c1m_slot_t *s, uint32_t e) { (void)s, (void)e, conn_close(r, fd, C1M_R_ERROR, -ENOTSUP, 1); }
void tls_connected(c1m_reactor_t *r, int fd, c1m_slot_t *s) { (void)s, conn_close(r, fd, C1M_R_ERROR, -ENOTSUP, 1); }
void tls_on_readable(c1m_reactor_t *r, int fd, c1m_slot_t *s) { (void)s, conn_close(r, fd, C1M_R_ERROR, -ENOTSUP, 1); }
void tls_send(c1m_reactor_t *r, int fd, c1m_slot_t *s, struct iovec *iov, int cnt, size_t total, int want_drain) {
  (void)s, (void)iov, (void)cnt, (void)total, (void)want_drain;
  conn_close(r, fd, C1M_R_ERROR, -ENOTSUP, 0);
}
void tls_close_notify(c1m_reactor_t *r, int fd, c1m_slot_t *s) { (void)r, (void)fd, (void)s; }
int tls_close_lingers(c1m_reactor_t *r, int fd, c1m_slot_t *s) { return (void)r, (void)fd, (void)s, 0; }
void tls_linger_read(c1m_reactor_t *r, int fd, c1m_slot_t *s, int in_poll) { (void)s, conn_close(r, fd, C1M_R_LOCAL, 0, in_poll); }
void tls_release(c1m_reactor_t *r, int fd) { (void)r, (void)fd; }
void tls_fini(c1m_reactor_t *r) { (void)r; }

#endif
