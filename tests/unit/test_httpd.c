/* Unit tests for httpd: real HTTP requests over loopback against each endpoint, listen parsing,
 * bind failures. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "clw/clock.h"
#include "clw/httpd.h"
#include "clw/metrics.h"

/* ---- a minimal HTTP/1.1 client over a plain socket ---- */

struct http_reply {
    int status;
    char content_type[128];
    char allow[64];
    char body[65536];
    size_t body_len;
};

/* Connects to addr (an IPv4 or IPv6 literal) on port with a 5 s I/O timeout. Returns the
 * socket or -1. */
static int http_connect(const char *addr, int port)
{
    struct sockaddr_in s4;
    struct sockaddr_in6 s6;
    struct timeval tv = {5, 0};
    int fd = -1;
    int rc = -1;

    memset(&s4, 0, sizeof(s4));
    memset(&s6, 0, sizeof(s6));
    if (inet_pton(AF_INET, addr, &s4.sin_addr) == 1) {
        s4.sin_family = AF_INET;
        s4.sin_port = htons((uint16_t)port);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd >= 0)
            rc = connect(fd, (struct sockaddr *)&s4, sizeof(s4));
    } else if (inet_pton(AF_INET6, addr, &s6.sin6_addr) == 1) {
        s6.sin6_family = AF_INET6;
        s6.sin6_port = htons((uint16_t)port);
        fd = socket(AF_INET6, SOCK_STREAM, 0);
        if (fd >= 0)
            rc = connect(fd, (struct sockaddr *)&s6, sizeof(s6));
    }
    if (fd >= 0 && rc != 0) {
        close(fd);
        fd = -1;
    }
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    return fd;
}

/* Copies the value of header name (case-insensitive) from the header block into out. */
static void http_header(const char *head, const char *name, char *out, size_t outlen)
{
    const char *p = head;
    const char *eol;
    size_t n = strlen(name);
    size_t vlen;

    out[0] = '\0';
    for (eol = strstr(p, "\r\n"); eol && eol != p; eol = strstr(p, "\r\n")) {
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            p += n + 1;
            while (*p == ' ')
                p++;
            vlen = (size_t)(eol - p);
            if (vlen >= outlen)
                vlen = outlen - 1;
            memcpy(out, p, vlen);
            out[vlen] = '\0';
            return;
        }
        p = eol + 2;
    }
}

/* Sends one request (with body when not NULL) and reads the whole answer. Returns 0 or -1. */
static int http_do(const char *addr, int port, const char *method, const char *path,
                   const char *body, struct http_reply *r)
{
    static char raw[70000];
    char req[1024];
    size_t got = 0;
    ssize_t n;
    char *sep;
    int fd;
    int len;

    memset(r, 0, sizeof(*r));
    fd = http_connect(addr, port);
    if (fd < 0)
        return -1;
    len = snprintf(req, sizeof(req),
                   "%s %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
                   "Content-Length: %zu\r\n\r\n%s",
                   method, path, body ? strlen(body) : 0, body ? body : "");
    if (send(fd, req, (size_t)len, MSG_NOSIGNAL) != len)
        goto fail;
    while (got < sizeof(raw) - 1) {
        n = recv(fd, raw + got, sizeof(raw) - 1 - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    raw[got] = '\0';
    close(fd);
    if (sscanf(raw, "HTTP/1.1 %d", &r->status) != 1)
        return -1;
    sep = strstr(raw, "\r\n\r\n");
    if (!sep)
        return -1;
    sep[2] = '\0'; /* keep the last header's CRLF for http_header() */
    http_header(raw, "Content-Type", r->content_type, sizeof(r->content_type));
    http_header(raw, "Allow", r->allow, sizeof(r->allow));
    r->body_len = got - (size_t)(sep + 4 - raw);
    memcpy(r->body, sep + 4, r->body_len);
    r->body[r->body_len] = '\0';
    return 0;

fail:
    close(fd);
    return -1;
}

/* ---- endpoint table ---- */

enum setup {
    SETUP_NONE = 0,
    SETUP_ALIVE,       /* the loop reports a turn now */
    SETUP_STALE,       /* the last turn was 60 s ago */
    SETUP_READY,       /* group joined with 2 partitions, producer connected */
    SETUP_WORKER_FAULT /* paused with a detail */
};

struct endpoint_case {
    const char *name;
    enum setup setup;
    const char *method;
    const char *path;
    const char *body; /* request body or NULL */
    int status;
    const char *content_type;
    const char *want_body; /* exact body, or NULL */
    const char *contains;  /* a line the body must contain, or NULL */
};

#define T_TEXT    "text/plain; charset=utf-8"
#define T_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define T_JSON    "application/json"

static const struct endpoint_case endpoint_cases[] = {
    {"healthz before the loop ran", SETUP_NONE, "GET", "/healthz", NULL, 503, T_TEXT, NULL, NULL},
    {"healthz with a stale loop", SETUP_STALE, "GET", "/healthz", NULL, 503, T_TEXT, NULL, NULL},
    {"healthz alive", SETUP_ALIVE, "GET", "/healthz", NULL, 200, T_TEXT, "ok\n", NULL},
    {"healthz HEAD has no body", SETUP_ALIVE, "HEAD", "/healthz", NULL, 200, T_TEXT, "", NULL},
    {"readyz not joined", SETUP_NONE, "GET", "/readyz", NULL, 503, T_JSON,
     "{\"ready\":false,\"reasons\":[\"consumer group not joined\",\"producer not connected\"],"
     "\"partitions\":0}",
     NULL},
    {"readyz ready", SETUP_READY, "GET", "/readyz", NULL, 200, T_JSON,
     "{\"ready\":true,\"reasons\":[],\"partitions\":2}", NULL},
    {"readyz paused", SETUP_WORKER_FAULT, "GET", "/readyz", NULL, 503, T_JSON,
     "{\"ready\":false,\"reasons\":[\"paused: worker_fault: HTTP 401 from the API\"],"
     "\"partitions\":2}",
     NULL},
    {"metrics", SETUP_NONE, "GET", "/metrics", NULL, 200, T_METRICS, NULL,
     "classiclink_records_consumed_total 1\n"},
    {"metrics shows pause", SETUP_WORKER_FAULT, "GET", "/metrics", NULL, 200, T_METRICS, NULL,
     "classiclink_paused{reason=\"worker_fault\"} 1\n"},
    {"metrics with a query string", SETUP_NONE, "GET", "/metrics?x=1", NULL, 200, T_METRICS, NULL,
     "classiclink_up 1\n"},
    {"POST metrics", SETUP_NONE, "POST", "/metrics", NULL, 405, T_TEXT, NULL, NULL},
    {"POST metrics with a body", SETUP_NONE, "POST", "/metrics", "a=b&c=d", 405, T_TEXT, NULL,
     NULL},
    {"PUT readyz", SETUP_READY, "PUT", "/readyz", "{}", 405, T_TEXT, NULL, NULL},
    {"DELETE healthz", SETUP_ALIVE, "DELETE", "/healthz", NULL, 405, T_TEXT, NULL, NULL},
    {"root", SETUP_NONE, "GET", "/", NULL, 404, T_TEXT, NULL, NULL},
    {"unknown path", SETUP_NONE, "GET", "/nope", NULL, 404, T_TEXT, NULL, NULL},
    {"trailing slash", SETUP_NONE, "GET", "/metrics/", NULL, 404, T_TEXT, NULL, NULL},
    {"prefix only", SETUP_NONE, "GET", "/ready", NULL, 404, T_TEXT, NULL, NULL},
    {"POST unknown path", SETUP_NONE, "POST", "/nope", NULL, 404, T_TEXT, NULL, NULL},
};

static void apply_setup(struct clw_metrics *m, enum setup s)
{
    clw_metrics_consumed(m);
    switch (s) {
    case SETUP_NONE:
        break;
    case SETUP_ALIVE:
        clw_metrics_loop_alive(m, clw_clock_mono_ms());
        break;
    case SETUP_STALE:
        clw_metrics_loop_alive(m, clw_clock_mono_ms() - 60000);
        break;
    case SETUP_READY:
        clw_metrics_set_group(m, 1, 2);
        clw_metrics_set_producer_ok(m, 1);
        break;
    case SETUP_WORKER_FAULT:
        clw_metrics_set_group(m, 1, 2);
        clw_metrics_set_producer_ok(m, 1);
        clw_metrics_set_paused(m, CLW_PAUSE_WORKER_FAULT, 1, "HTTP 401 from the API");
        break;
    }
}

static void test_endpoint_table(void **state)
{
    static struct http_reply r;
    size_t i;
    struct clw_metrics *m;
    struct clw_httpd *d;
    char err[256];
    int port;

    (void)state;
    for (i = 0; i < sizeof(endpoint_cases) / sizeof(endpoint_cases[0]); i++) {
        const struct endpoint_case *c = &endpoint_cases[i];

        m = clw_metrics_new();
        assert_non_null(m);
        apply_setup(m, c->setup);
        d = clw_httpd_start("127.0.0.1:0", m, err, sizeof(err));
        if (!d)
            fail_msg("case %s: start: %s", c->name, err);
        port = clw_httpd_port(d);
        assert_true(port > 0 && port < 65536);
        if (http_do("127.0.0.1", port, c->method, c->path, c->body, &r) != 0)
            fail_msg("case %s: no HTTP answer", c->name);
        if (r.status != c->status)
            fail_msg("case %s: status %d want %d", c->name, r.status, c->status);
        if (strcmp(r.content_type, c->content_type) != 0)
            fail_msg("case %s: content type \"%s\" want \"%s\"", c->name, r.content_type,
                     c->content_type);
        if (c->want_body && strcmp(r.body, c->want_body) != 0)
            fail_msg("case %s: body \"%s\" want \"%s\"", c->name, r.body, c->want_body);
        if (c->contains && !strstr(r.body, c->contains))
            fail_msg("case %s: body lacks \"%s\":\n%s", c->name, c->contains, r.body);
        if (c->status == 405 && strcmp(r.allow, "GET, HEAD") != 0)
            fail_msg("case %s: Allow \"%s\"", c->name, r.allow);
        clw_httpd_stop(d);
        clw_metrics_free(m);
    }
}

/* The scrape is the same text clw_metrics_render() gives. */
static void test_metrics_body_is_rendering(void **state)
{
    static struct http_reply r;
    struct clw_metrics *m = clw_metrics_new();
    struct clw_httpd *d;
    char err[256];
    char *text;
    size_t len;

    (void)state;
    assert_non_null(m);
    clw_metrics_api_call(m, "AttachClassicLinkVpc", "success", 0, 200, 0.02);
    clw_metrics_set_partition(m, 7, 1, 2, 3);
    d = clw_httpd_start("127.0.0.1:0", m, err, sizeof(err));
    assert_non_null(d);
    assert_int_equal(http_do("127.0.0.1", clw_httpd_port(d), "GET", "/metrics", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    text = clw_metrics_render(m, &len);
    assert_non_null(text);
    assert_int_equal(r.body_len, len);
    assert_memory_equal(r.body, text, len);
    assert_non_null(strstr(r.body, "classiclink_consumer_lag{partition=\"7\"} 2\n"));
    free(text);
    clw_httpd_stop(d);
    clw_metrics_free(m);
}

/* ---- listen forms ---- */

static int ipv6_loopback_usable(void)
{
    struct sockaddr_in6 s6;
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    int ok;

    if (fd < 0)
        return 0;
    memset(&s6, 0, sizeof(s6));
    s6.sin6_family = AF_INET6;
    s6.sin6_addr = in6addr_loopback;
    ok = bind(fd, (struct sockaddr *)&s6, sizeof(s6)) == 0;
    close(fd);
    return ok;
}

struct listen_case {
    const char *name;
    const char *listen;
    int needs_ipv6;
    const char *reach[3]; /* addresses that must answer /healthz */
};

static const struct listen_case listen_cases[] = {
    {"ipv4 loopback", "127.0.0.1:0", 0, {"127.0.0.1"}},
    {"localhost", "localhost:0", 0, {NULL}}, /* ::1 or 127.0.0.1: checked via the port only */
    {"all addresses, ipv4 side", ":0", 0, {"127.0.0.1"}},
    {"all addresses, both sides", ":0", 1, {"127.0.0.1", "::1"}},
    {"ipv6 loopback", "[::1]:0", 1, {"::1"}},
    {"0.0.0.0", "0.0.0.0:0", 0, {"127.0.0.1"}},
};

static void test_listen_forms_table(void **state)
{
    static struct http_reply r;
    size_t i;
    size_t k;
    struct clw_metrics *m = clw_metrics_new();
    struct clw_httpd *d;
    char err[256];
    int v6 = ipv6_loopback_usable();

    (void)state;
    assert_non_null(m);
    clw_metrics_loop_alive(m, clw_clock_mono_ms());
    for (i = 0; i < sizeof(listen_cases) / sizeof(listen_cases[0]); i++) {
        const struct listen_case *c = &listen_cases[i];

        if (c->needs_ipv6 && !v6) {
            print_message("skipping %s: no IPv6 loopback here\n", c->name);
            continue;
        }
        d = clw_httpd_start(c->listen, m, err, sizeof(err));
        if (!d)
            fail_msg("case %s: start failed: %s", c->name, err);
        if (clw_httpd_port(d) <= 0)
            fail_msg("case %s: port %d", c->name, clw_httpd_port(d));
        for (k = 0; k < 3 && c->reach[k]; k++) {
            if (http_do(c->reach[k], clw_httpd_port(d), "GET", "/healthz", NULL, &r) != 0 ||
                r.status != 200)
                fail_msg("case %s: %s not answering (status %d)", c->name, c->reach[k], r.status);
        }
        clw_httpd_stop(d);
    }
    clw_metrics_free(m);
}

struct bad_listen_case {
    const char *name;
    const char *listen;
    const char *err_part;
};

static const struct bad_listen_case bad_listen_cases[] = {
    {"NULL", NULL, "empty listen address"},
    {"empty", "", "empty listen address"},
    {"no port separator", "127.0.0.1", "want HOST:PORT"},
    {"port only", "9090", "want HOST:PORT"},
    {"empty port", "127.0.0.1:", "bad port"},
    {"port not a number", "127.0.0.1:http", "bad port"},
    {"negative port", "127.0.0.1:-1", "bad port"},
    {"port too big", ":65536", "bad port"},
    {"huge port", ":99999999999999999999", "bad port"},
    {"ipv6 without brackets", "::1:9090", "[ADDR]:PORT"},
    {"bracket without port", "[::1]", "want [IPV6]:PORT"},
    {"bracket without colon", "[::1]9090", "want [IPV6]:PORT"},
    {"empty brackets", "[]:9090", "empty IPv6 address"},
    {"unclosed bracket", "[::1:9090", "want [IPV6]:PORT"},
    {"not an address in brackets", "[zz]:0", "cannot resolve"},
};

static void test_bad_listen_table(void **state)
{
    size_t i;
    struct clw_metrics *m = clw_metrics_new();
    struct clw_httpd *d;
    char err[256];

    (void)state;
    assert_non_null(m);
    for (i = 0; i < sizeof(bad_listen_cases) / sizeof(bad_listen_cases[0]); i++) {
        const struct bad_listen_case *c = &bad_listen_cases[i];

        err[0] = '\0';
        d = clw_httpd_start(c->listen, m, err, sizeof(err));
        if (d) {
            clw_httpd_stop(d);
            fail_msg("case %s: started", c->name);
        }
        if (!strstr(err, c->err_part) || !strstr(err, "metrics listener"))
            fail_msg("case %s: message \"%s\" lacks \"%s\"", c->name, err, c->err_part);
    }
    clw_metrics_free(m);
}

/* A second listener on the same port fails with the reason; once the first stops, the port is
 * free again. */
static void test_bind_conflict(void **state)
{
    struct clw_metrics *m = clw_metrics_new();
    struct clw_httpd *a;
    struct clw_httpd *b;
    char err[256];
    char listen_on[64];
    int port;

    (void)state;
    assert_non_null(m);
    a = clw_httpd_start("127.0.0.1:0", m, err, sizeof(err));
    assert_non_null(a);
    port = clw_httpd_port(a);
    snprintf(listen_on, sizeof(listen_on), "127.0.0.1:%d", port);
    err[0] = '\0';
    b = clw_httpd_start(listen_on, m, err, sizeof(err));
    assert_null(b);
    if (!strstr(err, "Address already in use") || !strstr(err, listen_on))
        fail_msg("message: %s", err);
    /* ":PORT" binds every address, so it conflicts too */
    snprintf(listen_on, sizeof(listen_on), ":%d", port);
    err[0] = '\0';
    b = clw_httpd_start(listen_on, m, err, sizeof(err));
    assert_null(b);
    assert_non_null(strstr(err, "Address already in use"));

    clw_httpd_stop(a);
    snprintf(listen_on, sizeof(listen_on), "127.0.0.1:%d", port);
    a = clw_httpd_start(listen_on, m, err, sizeof(err));
    if (!a)
        fail_msg("port %d not released by stop: %s", port, err);
    assert_int_equal(clw_httpd_port(a), port);
    clw_httpd_stop(a);
    clw_metrics_free(m);
}

/* A client that connects and sends nothing does not block the others. */
static void test_idle_client_does_not_block(void **state)
{
    static struct http_reply r;
    struct clw_metrics *m = clw_metrics_new();
    struct clw_httpd *d;
    char err[256];
    int idle;

    (void)state;
    assert_non_null(m);
    clw_metrics_loop_alive(m, clw_clock_mono_ms());
    d = clw_httpd_start("127.0.0.1:0", m, err, sizeof(err));
    assert_non_null(d);
    idle = http_connect("127.0.0.1", clw_httpd_port(d));
    assert_true(idle >= 0);
    assert_int_equal(send(idle, "GET /hea", 8, MSG_NOSIGNAL), 8);
    assert_int_equal(http_do("127.0.0.1", clw_httpd_port(d), "GET", "/healthz", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    close(idle);
    clw_httpd_stop(d);
    clw_metrics_free(m);
}

/* Several requests on one server, state changing in between, as a worker sees it. */
static void test_state_changes_visible(void **state)
{
    static struct http_reply r;
    struct clw_metrics *m = clw_metrics_new();
    struct clw_httpd *d;
    char err[256];
    int port;

    (void)state;
    assert_non_null(m);
    d = clw_httpd_start("127.0.0.1:0", m, err, sizeof(err));
    assert_non_null(d);
    port = clw_httpd_port(d);
    assert_int_equal(http_do("127.0.0.1", port, "GET", "/readyz", NULL, &r), 0);
    assert_int_equal(r.status, 503);
    clw_metrics_set_group(m, 1, 0);
    clw_metrics_set_producer_ok(m, 1);
    assert_int_equal(http_do("127.0.0.1", port, "GET", "/readyz", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    clw_metrics_set_paused(m, CLW_PAUSE_CIRCUIT_OPEN, 1, NULL);
    assert_int_equal(http_do("127.0.0.1", port, "GET", "/readyz", NULL, &r), 0);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "paused: circuit_open"));
    clw_metrics_set_paused(m, CLW_PAUSE_CIRCUIT_OPEN, 0, NULL);
    assert_int_equal(http_do("127.0.0.1", port, "GET", "/readyz", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    clw_httpd_stop(d);
    clw_metrics_free(m);
}

static void test_stop_null(void **state)
{
    (void)state;
    clw_httpd_stop(NULL);
    assert_int_equal(clw_httpd_port(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoint_table),
        cmocka_unit_test(test_metrics_body_is_rendering),
        cmocka_unit_test(test_listen_forms_table),
        cmocka_unit_test(test_bad_listen_table),
        cmocka_unit_test(test_bind_conflict),
        cmocka_unit_test(test_idle_client_does_not_block),
        cmocka_unit_test(test_state_changes_visible),
        cmocka_unit_test(test_stop_null),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
