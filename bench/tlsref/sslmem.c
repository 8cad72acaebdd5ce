/* sslmem.c - OpenSSL's own heap per server connection, in three states, with tlsref's options.
 *
 *   sslmem -c CERT -k KEY [-n conns] [-K]
 *
 * Heap = malloc's bytes in use (mallinfo2: uordblks + hblkhd), taken before and after creating
 * `conns` server SSLs (default 4000), each on one end of a socketpair, divided by `conns`:
 *   new        SSL_new + SSL_set_fd + SSL_set_accept_state (what accept costs before any byte);
 *   waiting    after one SSL_do_handshake that found no ClientHello (WANT_READ): a connection
 *              whose client is slow or silent;
 *   idle       after a full TLS 1.3 handshake with an in-process client (which is then freed,
 *              so only the server side is counted) and an SSL_read that found nothing: an idle
 *              connection, as in tlsref hold / bench/tls.mjs's idle part.
 * -K: without SSL_MODE_RELEASE_BUFFERS. One JSON line on stdout; exit 1 on any failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static int n_conns = 4000, keep_buffers;

static void die(const char *what)
{
    fprintf(stderr, "sslmem: %s%s%s\n", what, errno ? ": " : "", errno ? strerror(errno) : "");
    ERR_print_errors_fp(stderr);
    exit(1);
}

static size_t heap(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static SSL_CTX *make_ctx(int server, const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx) die("SSL_CTX_new");
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, keep_buffers ? 0 : SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1) die("min version");
    if (server && (SSL_CTX_set_num_tickets(ctx, 1) != 1 || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
                   SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1))
        die("server certificate/key");
    return ctx;
}

/* 1 = done, 0 = wants more, -1 = failed */
static int step(SSL *s, int hs)
{
    ERR_clear_error();
    int r;
    if (hs) {
        r = SSL_do_handshake(s);
        if (r == 1) return 1;
    } else {
        char b[64];
        r = SSL_read(s, b, sizeof b);
        if (r > 0) return 1;
    }
    int e = SSL_get_error(s, r);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *cert = NULL, *key = NULL;
    int o;
    while ((o = getopt(argc, argv, "c:k:n:K")) != -1) {
        if (o == 'c') cert = optarg;
        else if (o == 'k') key = optarg;
        else if (o == 'n') n_conns = atoi(optarg);
        else if (o == 'K') keep_buffers = 1;
        else { fprintf(stderr, "usage: sslmem -c CERT -k KEY [-n conns] [-K]\n"); return 2; }
    }
    if (!cert || !key || n_conns <= 0 || n_conns > 8000) {
        fprintf(stderr, "usage: sslmem -c CERT -k KEY [-n conns (1..8000)] [-K]\n");
        return 2;
    }
    SSL_CTX *sctx = make_ctx(1, cert, key), *cctx = make_ctx(0, NULL, NULL);
    SSL **srv = calloc((size_t)n_conns, sizeof *srv);
    int *fds = calloc((size_t)n_conns * 2, sizeof *fds);
    if (!srv || !fds) die("calloc");
    for (int i = 0; i < n_conns; i++)
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds + 2 * i) < 0) die("socketpair");
    { /* warm up OpenSSL's lazy, once-per-process state with one full handshake */
        int p[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p) < 0) die("socketpair");
        SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
        if (!s || !c || SSL_set_fd(s, p[0]) != 1 || SSL_set_fd(c, p[1]) != 1) die("SSL_new");
        SSL_set_accept_state(s);
        SSL_set_connect_state(c);
        int ds = 0, dc = 0;
        for (int k = 0; k < 100 && !(ds && dc); k++) {
            if (!dc && (dc = step(c, 1)) < 0) die("warm-up client handshake");
            if (!ds && (ds = step(s, 1)) < 0) die("warm-up server handshake");
        }
        if (!(ds && dc)) die("warm-up handshake did not finish");
        SSL_free(s);
        SSL_free(c);
        close(p[0]);
        close(p[1]);
    }
    size_t h0 = heap();
    for (int i = 0; i < n_conns; i++) {
        srv[i] = SSL_new(sctx);
        if (!srv[i] || SSL_set_fd(srv[i], fds[2 * i]) != 1) die("SSL_new");
        SSL_set_accept_state(srv[i]);
    }
    size_t h_new = heap();
    for (int i = 0; i < n_conns; i++)
        if (step(srv[i], 1) != 0) die("a handshake without a ClientHello did not wait");
    size_t h_wait = heap();
    for (int i = 0; i < n_conns; i++) {
        SSL *c = SSL_new(cctx);
        if (!c || SSL_set_fd(c, fds[2 * i + 1]) != 1) die("client SSL_new");
        SSL_set_connect_state(c);
        int ds = 0, dc = 0;
        for (int k = 0; k < 100 && !(ds && dc); k++) {
            if (!dc && (dc = step(c, 1)) < 0) die("client handshake");
            if (!ds && (ds = step(srv[i], 1)) < 0) die("server handshake");
        }
        if (!(ds && dc)) die("handshake did not finish");
        if (step(c, 0) < 0) die("client read (session ticket)"); /* reads the ticket, wants more */
        if (step(srv[i], 0) != 0) die("server read on an idle connection");
        if (!SSL_version(srv[i]) || SSL_version(srv[i]) != TLS1_3_VERSION) die("not TLS 1.3");
        SSL_free(c);
        close(fds[2 * i + 1]);
    }
    size_t h_idle = heap();
    printf("{\"tool\":\"sslmem\",\"openssl\":\"%s\",\"conns\":%d,\"release_buffers\":%s,"
           "\"bytes_per_conn\":{\"new\":%zu,\"waiting_for_client_hello\":%zu,\"idle_tls13\":%zu}}\n",
           OpenSSL_version(OPENSSL_VERSION), n_conns, keep_buffers ? "false" : "true", (h_new - h0) / (size_t)n_conns,
           (h_wait - h0) / (size_t)n_conns, (h_idle - h0) / (size_t)n_conns);
    for (int i = 0; i < n_conns; i++) {
        SSL_free(srv[i]);
        close(fds[2 * i]);
    }
    free(srv);
    free(fds);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 0;
}
