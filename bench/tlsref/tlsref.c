/* tlsref.c - a minimal single-threaded epoll TLS server: the OpenSSL "physical limit" beside
 * which bench/tls.mjs measures c1m's TLS and node:tls (issue 13).
 *
 *   tlsref -c CERT -k KEY [-p port] [-a addr] [-m echo|hold|plain] [-T tickets] [-b backlog] [-K]
 *
 * - one process, one thread, one epoll set, edge-triggered; non-blocking listener, accept4() in
 *   batches; every connection fd-indexed in one calloc'd array (no per-connection malloc of our
 *   own except the unsent remainder of a partial write).
 * - TLS: one SSL_CTX (TLS 1.2 and 1.3, OpenSSL's default ciphers and groups), one SSL per
 *   connection on the socket itself (SSL_set_fd: OpenSSL's socket BIO reads and writes the fd
 *   directly - no copy through a memory BIO), SSL_MODE_RELEASE_BUFFERS (-K keeps the buffers:
 *   what releasing them costs in CPU and saves in memory), read_ahead on,
 *   stateless session tickets on (-T per full TLS 1.3 handshake, default 1 like c1m), the
 *   internal session cache off (resumption is by ticket only, as in c1m), renegotiation and
 *   compression off, server cipher preference - the options of c1m's native/src/tls.c.
 * - modes: echo (write back every byte read, stop reading while a write is pending =
 *   backpressure), hold (complete the handshake, then read and discard), plain (echo without
 *   TLS: the plaintext yardstick of the same loop).
 * - output: one "tlsref listening ADDR:PORT ..." line on stdout when ready; nothing on the hot
 *   path. SIGUSR1 prints one JSON line {"gc":null,...} with the open connections, completed
 *   handshakes and the heap in use by malloc (mallinfo2: uordblks + hblkhd), so a caller can
 *   take OpenSSL's own bytes per idle connection; then malloc_trim(0) hands free heap pages back
 *   to the kernel (the "GC" of the contract: RSS after it counts what is in use, not the holes
 *   the freed handshake buffers leave). SIGTERM/SIGINT: exit 0 (bench/servers'
 *   contract). Runtime errors (a failed accept, a failed handshake) close the connection or
 *   are counted; only a bad start exits non-zero.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

enum { MODE_ECHO, MODE_HOLD, MODE_PLAIN };
enum { ST_FREE = 0, ST_HS, ST_OPEN };

#define RBUF 65536
#define MAXEV 512

struct conn {           /* fd-indexed */
    SSL *ssl;           /* NULL in plain mode */
    uint8_t *pend;      /* unsent output (echo), malloc'd; NULL when none */
    uint32_t plen, poff;
    uint8_t st;
};

static int g_mode = MODE_ECHO, g_port = 9000, g_backlog = 65535, g_tickets = 1, g_keep_buffers;
static const char *g_addr = "127.0.0.1", *g_cert, *g_key;
static volatile sig_atomic_t g_stop, g_usr1;
static struct conn *C;
static int g_maxfd, ep, lfd;
static SSL_CTX *ctx;
static uint8_t rbuf[RBUF];
static uint64_t n_accepted, n_handshakes, n_hs_fail, n_resumed, n_accept_err;
static int64_t n_open;

static void on_sig(int s) { if (s == SIGUSR1) g_usr1 = 1; else g_stop = 1; }

static void die(const char *what)
{
    fprintf(stderr, "tlsref: %s: %s\n", what, errno ? strerror(errno) : "error");
    ERR_print_errors_fp(stderr);
    exit(1);
}

static void usage(void)
{
    fprintf(stderr, "usage: tlsref -c CERT -k KEY [-p port] [-a addr] [-m echo|hold|plain] [-T tickets] [-b backlog] [-K]\n");
    exit(2);
}

static void conn_close(int fd)
{
    struct conn *c = &C[fd];
    if (c->ssl) SSL_free(c->ssl);
    free(c->pend);
    memset(c, 0, sizeof *c);
    close(fd); /* also removes fd from the epoll set */
    n_open--;
}

static void stats_line(void)
{
    struct mallinfo2 mi = mallinfo2();
    char buf[512];
    int n = snprintf(buf, sizeof buf,
                     "{\"gc\":null,\"server\":\"tlsref\",\"open\":%lld,\"accepted\":%llu,\"handshakes\":%llu,"
                     "\"resumed\":%llu,\"handshake_failures\":%llu,\"accept_errors\":%llu,"
                     "\"heap_in_use\":%zu,\"heap_mmapped\":%zu}\n",
                     (long long)n_open, (unsigned long long)n_accepted, (unsigned long long)n_handshakes,
                     (unsigned long long)n_resumed, (unsigned long long)n_hs_fail,
                     (unsigned long long)n_accept_err, mi.uordblks, mi.hblkhd);
    if (n > 0 && write(1, buf, (size_t)n) < 0) { /* stdout gone: nothing to report to */ }
    malloc_trim(0); /* the "GC" of the contract: hand free heap pages back (after the figures above) */
}

/* Write b[0..n) on a connection; keep what does not fit. 0 = all sent, 1 = pending, -1 = dead. */
static int send_out(int fd, struct conn *c, const uint8_t *b, size_t n)
{
    size_t off = 0;
    while (off < n) {
        if (c->ssl) {
            ERR_clear_error();
            int w = SSL_write(c->ssl, b + off, (int)(n - off));
            if (w > 0) { off += (size_t)w; continue; }
            int e = SSL_get_error(c->ssl, w);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) break;
            return -1;
        }
        ssize_t w = write(fd, b + off, n - off);
        if (w > 0) { off += (size_t)w; continue; }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) break;
        return -1;
    }
    if (off == n) return 0;
    if (c->pend) { /* called from flush: b is c->pend itself */
        c->poff = (uint32_t)(b + off - c->pend);
        return 1;
    }
    c->pend = malloc(n - off);
    if (!c->pend) return -1;
    memcpy(c->pend, b + off, n - off);
    c->plen = (uint32_t)(n - off);
    c->poff = 0;
    return 1;
}

/* Drive one connection as far as it goes without blocking (edge-triggered: until EAGAIN). */
static void drive(int fd)
{
    struct conn *c = &C[fd];
    if (c->st == ST_HS) {
        ERR_clear_error();
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
            n_hs_fail++;
            conn_close(fd);
            return;
        }
        c->st = ST_OPEN;
        n_handshakes++;
        if (SSL_session_reused(c->ssl)) n_resumed++;
    }
    if (c->pend) {
        int r = send_out(fd, c, c->pend + c->poff, c->plen - c->poff);
        if (r < 0) { conn_close(fd); return; }
        if (r > 0) return; /* still blocked: do not read (backpressure) */
        free(c->pend);
        c->pend = NULL;
    }
    for (;;) {
        ssize_t n;
        if (c->ssl) {
            ERR_clear_error();
            int r = SSL_read(c->ssl, rbuf, RBUF);
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
                if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify: answer it once, best effort */
                    ERR_clear_error();
                    SSL_shutdown(c->ssl);
                }
                conn_close(fd);
                return;
            }
            n = r;
        } else {
            n = read(fd, rbuf, RBUF);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) return;
            if (n <= 0) { conn_close(fd); return; }
        }
        if (g_mode == MODE_HOLD) continue;
        int r = send_out(fd, c, rbuf, (size_t)n);
        if (r < 0) { conn_close(fd); return; }
        if (r > 0) return; /* wait for EPOLLOUT */
    }
}

static void do_accept(void)
{
    for (int i = 0; i < 4096; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN) n_accept_err++; /* EMFILE etc.: the next wakeup retries */
            return;
        }
        if (fd >= g_maxfd) { n_accept_err++; close(fd); continue; }
        int one = 1;
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) { close(fd); continue; }
        struct conn *c = &C[fd];
        if (g_mode != MODE_PLAIN) {
            c->ssl = SSL_new(ctx);
            if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
                if (c->ssl) SSL_free(c->ssl);
                c->ssl = NULL;
                ERR_clear_error();
                n_accept_err++;
                close(fd);
                continue;
            }
            SSL_set_accept_state(c->ssl);
            c->st = ST_HS;
        } else {
            c->st = ST_OPEN;
        }
        struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0) {
            if (c->ssl) SSL_free(c->ssl);
            memset(c, 0, sizeof *c);
            n_accept_err++;
            close(fd);
            continue;
        }
        n_accepted++;
        n_open++;
        drive(fd); /* the ClientHello is usually there already */
    }
}

static void setup_tls(void)
{
    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) die("SSL_CTX_new");
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, (g_keep_buffers ? 0 : SSL_MODE_RELEASE_BUFFERS) | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_num_tickets(ctx, (size_t)g_tickets) != 1 ||
        SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"tlsref", 6) != 1)
        die("SSL_CTX options");
    if (SSL_CTX_use_certificate_chain_file(ctx, g_cert) != 1) die(g_cert);
    if (SSL_CTX_use_PrivateKey_file(ctx, g_key, SSL_FILETYPE_PEM) != 1) die(g_key);
    if (SSL_CTX_check_private_key(ctx) != 1) die("certificate and key do not match");
}

int main(int argc, char **argv)
{
    static const char *modes[] = {"echo", "hold", "plain"};
    int o;
    while ((o = getopt(argc, argv, "c:k:p:a:m:T:b:K")) != -1) {
        switch (o) {
        case 'c': g_cert = optarg; break;
        case 'k': g_key = optarg; break;
        case 'p': g_port = atoi(optarg); break;
        case 'a': g_addr = optarg; break;
        case 'T': g_tickets = atoi(optarg); break;
        case 'b': g_backlog = atoi(optarg); break;
        case 'K': g_keep_buffers = 1; break;
        case 'm':
            g_mode = -1;
            for (int i = 0; i < 3; i++) if (!strcmp(optarg, modes[i])) g_mode = i;
            if (g_mode < 0) usage();
            break;
        default: usage();
        }
    }
    if (optind != argc || g_port <= 0 || g_port > 65535 || g_tickets < 0 || g_backlog <= 0) usage();
    if (g_mode != MODE_PLAIN && (!g_cert || !g_key)) usage();

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) die("getrlimit");
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) die("setrlimit");
    g_maxfd = rl.rlim_cur > 1048576 ? 1048576 : (int)rl.rlim_cur;
    C = calloc((size_t)g_maxfd, sizeof *C);
    if (!C) die("calloc");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sig;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGUSR1, &sa, NULL) < 0)
        die("sigaction");
    signal(SIGPIPE, SIG_IGN);

    if (g_mode != MODE_PLAIN) setup_tls();

    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    if (inet_pton(AF_INET, g_addr, &sin.sin_addr) != 1) { errno = EINVAL; die(g_addr); }
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0) die("socket");
    int one = 1;
    if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) die("SO_REUSEADDR");
    if (bind(lfd, (struct sockaddr *)&sin, sizeof sin) < 0) die("bind");
    if (listen(lfd, g_backlog) < 0) die("listen");
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event le = {.events = EPOLLIN, .data.fd = lfd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &le) < 0) die("epoll_ctl listener");

    printf("tlsref listening %s:%d mode=%s tls=%s tickets=%d release_buffers=%d pid=%d\n", g_addr, g_port, modes[g_mode],
           g_mode == MODE_PLAIN ? "off" : OpenSSL_version(OPENSSL_VERSION), g_tickets, !g_keep_buffers, (int)getpid());
    fflush(stdout);

    struct epoll_event ev[MAXEV];
    while (!g_stop) {
        if (g_usr1) { g_usr1 = 0; stats_line(); }
        int n = epoll_wait(ep, ev, MAXEV, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            int fd = ev[i].data.fd;
            if (fd == lfd) do_accept();
            else if (C[fd].st != ST_FREE) drive(fd);
        }
    }
    for (int fd = 0; fd < g_maxfd; fd++) if (C[fd].st != ST_FREE) conn_close(fd);
    SSL_CTX_free(ctx);
    close(ep);
    close(lfd);
    return 0;
}
