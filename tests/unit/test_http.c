/* Unit tests for http: real calls over loopback against a scripted HTTP/1.1 server thread. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "clw/clock.h"
#include "clw/http.h"

/* ---- a scripted HTTP/1.1 server ---- */

enum reply_kind {
    REPLY_KEEP,  /* answer, keep the connection */
    REPLY_CLOSE, /* answer, then close the connection (without saying so) */
    REPLY_DROP,  /* close without an answer */
    REPLY_HANG,  /* never answer; the connection stays open until the server stops */
};

struct reply {
    enum reply_kind kind;
    const char *head; /* status line and headers, without Content-Length and the blank line */
    const char *body;
};

#define MAX_REQS 16

struct server {
    int listen_fd;
    int port;
    pthread_t thread;
    pthread_mutex_t lock;
    int stop;
    struct reply script[MAX_REQS]; /* answers, in order of requests */
    size_t n_script;
    size_t n_reqs;
    char reqs[MAX_REQS][4096]; /* each request: head and body */
    int req_conn[MAX_REQS];    /* which connection (1, 2, ...) carried it */
    int n_conns;
};

/* Reads one request (head, then Content-Length bytes of body) into out. Returns 0, or -1 when
 * the connection ended or the server stops. */
static int read_request(struct server *s, int fd, char *out, size_t cap)
{
    size_t len = 0;
    size_t want = 0;
    for (;;) {
        char *end = len > 0 ? strstr(out, "\r\n\r\n") : NULL;
        if (end != NULL) {
            const char *cl = strstr(out, "Content-Length: ");
            size_t head = (size_t)(end + 4 - out);
            want = head + (cl != NULL && cl < end ? strtoul(cl + 16, NULL, 10) : 0);
            if (len >= want)
                return 0;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int rc = poll(&p, 1, 50);
        pthread_mutex_lock(&s->lock);
        int stop = s->stop;
        pthread_mutex_unlock(&s->lock);
        if (stop)
            return -1;
        if (rc <= 0)
            continue;
        ssize_t n = read(fd, out + len, cap - 1 - len);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        out[len] = '\0';
    }
}

static void send_reply(int fd, const struct reply *r)
{
    char buf[8192];
    int n = snprintf(buf, sizeof(buf), "%s\r\nContent-Length: %zu\r\n\r\n%s", r->head,
                     strlen(r->body), r->body);
    assert_true(n > 0 && (size_t)n < sizeof(buf));
    assert_int_equal(write(fd, buf, (size_t)n), n);
}

/* Serves one connection at a time, in order: enough for calls made one after another. A hung
 * connection is kept open (and the next one accepted) until the server stops. */
static void *serve(void *arg)
{
    struct server *s = arg;
    int hung[MAX_REQS];
    size_t n_hung = 0;
    for (;;) {
        struct pollfd p = {.fd = s->listen_fd, .events = POLLIN};
        int rc = poll(&p, 1, 50);
        pthread_mutex_lock(&s->lock);
        int stop = s->stop;
        pthread_mutex_unlock(&s->lock);
        if (stop)
            break;
        if (rc <= 0)
            continue;
        int fd = accept(s->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        int conn = ++s->n_conns;
        for (;;) {
            char req[4096];
            if (read_request(s, fd, req, sizeof(req)) != 0) {
                close(fd);
                break;
            }
            pthread_mutex_lock(&s->lock);
            size_t k = s->n_reqs++;
            if (k < MAX_REQS) {
                snprintf(s->reqs[k], sizeof(s->reqs[k]), "%s", req);
                s->req_conn[k] = conn;
            }
            struct reply r =
                k < s->n_script ? s->script[k] : (struct reply){REPLY_DROP, NULL, NULL};
            pthread_mutex_unlock(&s->lock);
            if (r.kind == REPLY_HANG) {
                hung[n_hung++] = fd;
                break;
            }
            if (r.kind != REPLY_DROP)
                send_reply(fd, &r);
            if (r.kind != REPLY_KEEP) {
                close(fd);
                break;
            }
        }
    }
    for (size_t i = 0; i < n_hung; i++)
        close(hung[i]);
    return NULL;
}

static struct server *server_start(const struct reply *script, size_t n)
{
    struct server *s = calloc(1, sizeof(*s));
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    assert_non_null(s);
    assert_true(n <= MAX_REQS);
    memcpy(s->script, script, n * sizeof(*script));
    s->n_script = n;
    pthread_mutex_init(&s->lock, NULL);
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->listen_fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->listen_fd, 16), 0);
    assert_int_equal(getsockname(s->listen_fd, (struct sockaddr *)&a, &alen), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
    return s;
}

/* Stops the thread; what it recorded can be read without the lock afterwards. */
static void server_stop(struct server *s)
{
    pthread_mutex_lock(&s->lock);
    s->stop = 1;
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
}

static void server_free(struct server *s)
{
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static size_t server_requests(struct server *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->n_reqs;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* ---- the client side ---- */

struct done {
    int calls;
    void *opaque;
    struct clw_answer ans;
    int sent;
};

/* Keeps the last call's result, its body decoded as a v2 answer. */
static void on_done(void *opaque, const struct clw_http_response *resp, void *arg)
{
    struct done *d = arg;
    d->calls++;
    d->opaque = opaque;
    clw_answer_free(&d->ans);
    memset(&d->ans, 0, sizeof(d->ans));
    d->ans.transport = resp->transport;
    d->ans.http_status = resp->status;
    d->ans.retry_after_ms = resp->retry_after_ms;
    if (resp->transport == CLW_TRANSPORT_OK && resp->status == 200 && resp->body != NULL)
        assert_int_equal(clw_answer_parse_body(&d->ans, resp->body, resp->body_len), 0);
    d->sent = resp->sent;
}

static struct clw_http *new_client(size_t max_body)
{
    char err[256];
    struct clw_http_opts o = {.timeout_ms = 3000,
                              .connect_timeout_ms = 3000,
                              .ca_file = NULL,
                              .max_body = max_body,
                              .max_connections = 8};
    struct clw_http *h = clw_http_new(&o, err, sizeof(err));
    assert_non_null(h);
    return h;
}

/* Runs the loop until `want` callbacks in total arrived (or 5 s passed). */
static void run_until(struct clw_http *h, struct done *d, int want)
{
    int64_t deadline = clw_clock_mono_ms() + 5000;
    while (d->calls < want && clw_clock_mono_ms() < deadline) {
        clw_http_wait(h, NULL, 0, 100);
        clw_http_run(h, on_done, d);
    }
    assert_int_equal(d->calls, want);
}

/* ---- one call per case ---- */

#define OK_HEAD "HTTP/1.1 200 OK\r\nContent-Type: application/json"
#define OK_BODY "{\"code\":0,\"message\":\"\",\"codeDesc\":\"Success\",\"taskId\":7}"
#define LONG_BODY                                                                                  \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

struct call_case {
    const char *name;
    const char *path_query; /* appended to http://127.0.0.1:PORT */
    const char *body;       /* NULL: GET */
    struct reply reply;
    size_t max_body;
    const char *want_request;    /* prefix the server must see */
    const char *want_in_request; /* also somewhere in the request, or NULL */
    enum clw_transport transport;
    long status;
    int has_code;
    long long task_id;
    int64_t retry_after_ms;
};

static const struct call_case call_cases[] = {
    {"GET with a query goes out verbatim",
     "/v2/index.php?Action=A&Nonce=1&Signature=a%2Fb%3D",
     NULL,
     {REPLY_KEEP, OK_HEAD, OK_BODY},
     4096,
     "GET /v2/index.php?Action=A&Nonce=1&Signature=a%2Fb%3D HTTP/1.1\r\n",
     "\r\nHost: 127.0.0.1:",
     CLW_TRANSPORT_OK,
     200,
     1,
     7,
     -1},
    {"GET without a query",
     "/v2/index.php",
     NULL,
     {REPLY_KEEP, OK_HEAD, OK_BODY},
     4096,
     "GET /v2/index.php HTTP/1.1\r\n",
     NULL,
     CLW_TRANSPORT_OK,
     200,
     1,
     7,
     -1},
    {"POST sends the form",
     "/v2/index.php",
     "Action=A&Nonce=2&Signature=x%2By",
     {REPLY_KEEP, OK_HEAD, OK_BODY},
     4096,
     "POST /v2/index.php HTTP/1.1\r\n",
     "application/x-www-form-urlencoded\r\n\r\nAction=A&Nonce=2&Signature=x%2By",
     CLW_TRANSPORT_OK,
     200,
     1,
     7,
     -1},
    {"Retry-After is read",
     "/v2/index.php?a=1",
     NULL,
     {REPLY_KEEP, "HTTP/1.1 200 OK\r\nRetry-After:  3 ",
      "{\"code\":4400,\"codeDesc\":\"RequestLimitExceeded\"}"},
     4096,
     "GET /v2/index.php?a=1 HTTP/1.1\r\n",
     NULL,
     CLW_TRANSPORT_OK,
     200,
     1,
     0,
     3000},
    {"HTTP 503 with an HTML body",
     "/v2/index.php?a=2",
     NULL,
     {REPLY_KEEP, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html", "<html></html>"},
     4096,
     "GET /v2/index.php?a=2 HTTP/1.1\r\n",
     NULL,
     CLW_TRANSPORT_OK,
     503,
     0,
     0,
     -1},
    {"body over the limit",
     "/v2/index.php?a=3",
     NULL,
     {REPLY_KEEP, OK_HEAD, LONG_BODY},
     64,
     "GET /v2/index.php?a=3 HTTP/1.1\r\n",
     NULL,
     CLW_TRANSPORT_TOO_LARGE,
     200,
     0,
     0,
     -1},
    {"connection dropped after the request",
     "/v2/index.php?a=4",
     NULL,
     {REPLY_DROP, NULL, NULL},
     4096,
     "GET /v2/index.php?a=4 HTTP/1.1\r\n",
     NULL,
     CLW_TRANSPORT_ERROR,
     0,
     0,
     0,
     -1},
};

static void test_call(void **state)
{
    const struct call_case *c = *state;
    struct server *s = server_start(&c->reply, 1);
    struct clw_http *h = new_client(c->max_body);
    struct done d;
    char url[512];
    int tag = 42;

    memset(&d, 0, sizeof(d));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", s->port, c->path_query);
    assert_int_equal(clw_http_submit(h, url, c->body, NULL, &tag), 0);
    assert_int_equal(clw_http_in_flight(h), 1);
    run_until(h, &d, 1);
    assert_int_equal(clw_http_in_flight(h), 0);
    assert_ptr_equal(d.opaque, &tag);
    assert_int_equal(d.sent, 1);
    assert_int_equal(d.ans.transport, c->transport);
    assert_int_equal(d.ans.http_status, c->status);
    assert_int_equal(d.ans.has_code, c->has_code);
    if (c->task_id != 0)
        assert_int_equal(d.ans.task_id, c->task_id);
    assert_int_equal(d.ans.retry_after_ms, c->retry_after_ms);
    clw_answer_free(&d.ans);
    clw_http_free(h);
    server_stop(s);
    assert_int_equal(s->n_reqs, 1);
    assert_memory_equal(s->reqs[0], c->want_request, strlen(c->want_request));
    if (c->want_in_request != NULL)
        assert_non_null(strstr(s->reqs[0], c->want_in_request));
    server_free(s);
}

/* ---- connections ---- */

/* Calls one after another share one keep-alive connection, GET and POST alike, and a slot
 * reused for another path sends that path. */
static void test_reuse(void **state)
{
    static const struct reply r[] = {{REPLY_KEEP, OK_HEAD, OK_BODY},
                                     {REPLY_KEEP, OK_HEAD, OK_BODY},
                                     {REPLY_KEEP, OK_HEAD, OK_BODY}};
    static const char *const paths[] = {"/v2/index.php?n=1", "/other/path?n=2", "/v2/index.php"};
    static const char *const bodies[] = {NULL, NULL, "n=3"};
    static const char *const want[] = {"GET /v2/index.php?n=1 HTTP/1.1\r\n",
                                       "GET /other/path?n=2 HTTP/1.1\r\n",
                                       "POST /v2/index.php HTTP/1.1\r\n"};
    struct server *s = server_start(r, 3);
    struct clw_http *h = new_client(4096);
    struct done d;

    (void)state;
    memset(&d, 0, sizeof(d));
    for (int i = 0; i < 3; i++) {
        char url[256];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", s->port, paths[i]);
        assert_int_equal(clw_http_submit(h, url, bodies[i], NULL, NULL), 0);
        run_until(h, &d, i + 1);
        assert_int_equal(d.ans.transport, CLW_TRANSPORT_OK);
    }
    clw_answer_free(&d.ans);
    clw_http_free(h);
    server_stop(s);
    assert_int_equal(s->n_reqs, 3);
    for (int i = 0; i < 3; i++) {
        assert_memory_equal(s->reqs[i], want[i], strlen(want[i]));
        assert_int_equal(s->req_conn[i], 1);
    }
    server_free(s);
}

/* The server closes an idle kept-alive connection: the adapter stops watching it (waiting does
 * not spin on it) and the next call works on a new connection. */
static void test_idle_connection_closed(void **state)
{
    static const struct reply r[] = {{REPLY_CLOSE, OK_HEAD, OK_BODY},
                                     {REPLY_KEEP, OK_HEAD, OK_BODY}};
    struct server *s = server_start(r, 2);
    struct clw_http *h = new_client(4096);
    struct done d;
    char url[256];

    (void)state;
    memset(&d, 0, sizeof(d));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/index.php?n=1", s->port);
    assert_int_equal(clw_http_submit(h, url, NULL, NULL, NULL), 0);
    run_until(h, &d, 1);
    assert_int_equal(d.ans.transport, CLW_TRANSPORT_OK);
    /* The first wait may wake for the closed connection; later ones must sleep their time. */
    clw_http_wait(h, NULL, 0, 100);
    clw_http_run(h, on_done, &d);
    int64_t t0 = clw_clock_mono_ms();
    for (int i = 0; i < 3; i++) {
        clw_http_wait(h, NULL, 0, 100);
        clw_http_run(h, on_done, &d);
    }
    assert_true(clw_clock_mono_ms() - t0 >= 250);
    assert_int_equal(d.calls, 1);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/index.php?n=2", s->port);
    assert_int_equal(clw_http_submit(h, url, NULL, NULL, NULL), 0);
    run_until(h, &d, 2);
    assert_int_equal(d.ans.transport, CLW_TRANSPORT_OK);
    clw_answer_free(&d.ans);
    clw_http_free(h);
    server_stop(s);
    assert_int_equal(s->n_reqs, 2);
    assert_int_equal(s->req_conn[1], 2);
    server_free(s);
}

/* A cancelled call gives no callback; the next call works. */
static void test_cancel(void **state)
{
    static const struct reply r[] = {{REPLY_HANG, NULL, NULL}, {REPLY_KEEP, OK_HEAD, OK_BODY}};
    struct server *s = server_start(r, 2);
    struct clw_http *h = new_client(4096);
    struct done d;
    char url[256];
    int a = 1, b = 2;

    (void)state;
    memset(&d, 0, sizeof(d));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/index.php?n=1", s->port);
    assert_int_equal(clw_http_submit(h, url, NULL, NULL, &a), 0);
    int64_t deadline = clw_clock_mono_ms() + 5000;
    while (server_requests(s) < 1 && clw_clock_mono_ms() < deadline) {
        clw_http_wait(h, NULL, 0, 20);
        clw_http_run(h, on_done, &d);
    }
    assert_int_equal(clw_http_cancel(h, &b), 0);
    assert_int_equal(clw_http_cancel(h, &a), 1);
    assert_int_equal(clw_http_in_flight(h), 0);
    assert_int_equal(clw_http_cancel(h, &a), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/index.php?n=2", s->port);
    assert_int_equal(clw_http_submit(h, url, NULL, NULL, &b), 0);
    run_until(h, &d, 1);
    assert_ptr_equal(d.opaque, &b);
    assert_int_equal(d.ans.transport, CLW_TRANSPORT_OK);
    assert_int_equal(d.calls, 1);
    clw_answer_free(&d.ans);
    clw_http_free(h);
    server_stop(s);
    server_free(s);
}

/* Nothing listens: a connection failure, reported as not sent. */
static void test_refused(void **state)
{
    struct clw_http *h = new_client(4096);
    struct done d;
    char url[256];
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    (void)state;
    memset(&d, 0, sizeof(d));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/index.php?n=1", ntohs(a.sin_port));
    close(fd); /* bound, never listened: the port refuses */
    assert_int_equal(clw_http_submit(h, url, NULL, NULL, NULL), 0);
    run_until(h, &d, 1);
    assert_int_equal(d.ans.transport, CLW_TRANSPORT_CONNECT);
    assert_int_equal(d.sent, 0);
    clw_answer_free(&d.ans);
    clw_http_free(h);
}

int main(void)
{
    size_t n = sizeof(call_cases) / sizeof(call_cases[0]);
    struct CMUnitTest *tests = calloc(n + 4, sizeof(*tests));
    int rc;

    if (tests == NULL)
        return 1;
    for (size_t k = 0; k < n; k++) {
        tests[k].name = call_cases[k].name;
        tests[k].test_func = test_call;
        tests[k].initial_state = (void *)&call_cases[k];
    }
    tests[n] = (struct CMUnitTest){"keep-alive reuse across calls", test_reuse, NULL, NULL, NULL};
    tests[n + 1] = (struct CMUnitTest){"idle connection closed by the server",
                                       test_idle_connection_closed, NULL, NULL, NULL};
    tests[n + 2] = (struct CMUnitTest){"cancel", test_cancel, NULL, NULL, NULL};
    tests[n + 3] = (struct CMUnitTest){"connection refused", test_refused, NULL, NULL, NULL};
    rc = _cmocka_run_group_tests("http", tests, n + 4, NULL, NULL);
    free(tests);
    return rc;
}
