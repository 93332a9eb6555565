/* Operations listener: /metrics, /healthz and /readyz over libmicrohttpd on its own thread. */
#include "clw/httpd.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <microhttpd.h>

#include "clw/clock.h"
#include "clw/log.h"

/* Scrapers and probes need few connections; a small limit keeps a flood from costing memory. */
#define HTTPD_CONNECTION_LIMIT     32
#define HTTPD_CONNECTION_TIMEOUT_S 10
#define HTTPD_BACKLOG              64

#define HTTPD_TEXT         "text/plain; charset=utf-8"
#define HTTPD_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define HTTPD_JSON         "application/json"

struct clw_httpd {
    struct MHD_Daemon *daemon;
    struct clw_metrics *m; /* borrowed */
    int port;
};

/* Routes libmicrohttpd's own messages into our log. */
__attribute__((format(printf, 2, 0))) static void httpd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;

    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    CLW_WARN("metrics listener: %s", msg);
}

/* Queues a response; data is either static (must_free 0) or malloc'd and handed over. */
static enum MHD_Result httpd_reply(struct MHD_Connection *conn, unsigned int status,
                                   const char *type, char *data, size_t len, int must_free)
{
    struct MHD_Response *resp;
    enum MHD_Result ret = MHD_NO;

    resp = MHD_create_response_from_buffer(
        len, data, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        if (must_free)
            free(data);
        goto out;
    }
    /* From here on the response owns data. */
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type) != MHD_YES ||
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES)
        goto out_destroy;
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED &&
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") != MHD_YES)
        goto out_destroy;
    ret = MHD_queue_response(conn, status, resp);
out_destroy:
    MHD_destroy_response(resp);
out:
    return ret;
}

static enum MHD_Result httpd_static(struct MHD_Connection *conn, unsigned int status,
                                    const char *text)
{
    return httpd_reply(conn, status, HTTPD_TEXT, (char *)text, strlen(text), 0);
}

static enum MHD_Result httpd_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **req_cls)
{
    struct clw_httpd *d = cls;
    char *body = NULL;
    size_t len = 0;
    int ok;
    enum MHD_Result ret;

    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;
    /* Answered on the first call: no endpoint reads a request body, and a body sent anyway
     * is never buffered (MHD closes the connection after the answer instead). */
    if (strcmp(url, "/metrics") != 0 && strcmp(url, "/healthz") != 0 &&
        strcmp(url, "/readyz") != 0) {
        ret = httpd_static(conn, MHD_HTTP_NOT_FOUND, "not found\n");
        goto out;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        ret = httpd_static(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
        goto out;
    }
    if (strcmp(url, "/healthz") == 0) {
        if (clw_metrics_healthy(d->m, clw_clock_mono_ms()))
            ret = httpd_static(conn, MHD_HTTP_OK, "ok\n");
        else
            ret = httpd_static(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                               "event loop stalled for more than 10 s\n");
        goto out;
    }
    if (strcmp(url, "/readyz") == 0) {
        ok = clw_metrics_ready(d->m, &body);
        if (!body) {
            ret = httpd_static(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
            goto out;
        }
        ret = httpd_reply(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, HTTPD_JSON, body,
                          strlen(body), 1);
        goto out;
    }
    body = clw_metrics_render(d->m, &len);
    if (!body) {
        ret = httpd_static(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
        goto out;
    }
    ret = httpd_reply(conn, MHD_HTTP_OK, HTTPD_METRICS_TYPE, body, len, 1);
out:
    return ret;
}

/* Splits listen into host (empty for all addresses, brackets removed) and port. Returns 0, or
 * -1 with a message in err. */
static int httpd_parse_listen(const char *listen_on, char *host, size_t hostlen, int *port,
                              char *err, size_t errlen)
{
    const char *colon;
    const char *rb;
    const char *p;
    size_t n;
    long v = 0;

    if (!listen_on || !*listen_on) {
        snprintf(err, errlen, "metrics listener: empty listen address (want HOST:PORT)");
        return -1;
    }
    if (listen_on[0] == '[') {
        rb = strchr(listen_on, ']');
        if (!rb || rb[1] != ':') {
            snprintf(err, errlen, "metrics listener: bad listen address \"%s\" (want [IPV6]:PORT)",
                     listen_on);
            return -1;
        }
        n = (size_t)(rb - listen_on - 1);
        colon = rb + 1;
        p = listen_on + 1;
        if (n == 0) {
            snprintf(err, errlen, "metrics listener: empty IPv6 address in \"%s\"", listen_on);
            return -1;
        }
    } else {
        colon = strrchr(listen_on, ':');
        if (!colon) {
            snprintf(err, errlen, "metrics listener: bad listen address \"%s\" (want HOST:PORT)",
                     listen_on);
            return -1;
        }
        n = (size_t)(colon - listen_on);
        p = listen_on;
        if (memchr(p, ':', n)) {
            snprintf(err, errlen,
                     "metrics listener: bad listen address \"%s\" (write IPv6 addresses as "
                     "[ADDR]:PORT)",
                     listen_on);
            return -1;
        }
    }
    if (n >= hostlen) {
        snprintf(err, errlen, "metrics listener: host name too long in \"%s\"", listen_on);
        return -1;
    }
    memcpy(host, p, n);
    host[n] = '\0';
    p = colon + 1;
    if (!*p)
        goto bad_port;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            goto bad_port;
        v = v * 10 + (*p - '0');
        if (v > 65535)
            goto bad_port;
    }
    *port = (int)v;
    return 0;

bad_port:
    snprintf(err, errlen, "metrics listener: bad port in \"%s\" (want 0..65535)", listen_on);
    return -1;
}

/* Creates, binds and listens on one address. Returns the socket, or -1 with errno set. */
static int httpd_bind(const struct sockaddr *sa, socklen_t salen, int v6only)
{
    int fd;
    int one = 1;
    int saved;

    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        goto fail;
    /* Lets a restarted worker bind while old connections sit in TIME_WAIT; on Linux it still
     * refuses a second listener on the same port. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
        goto fail_close;
    if (sa->sa_family == AF_INET6 && v6only >= 0 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) != 0)
        goto fail_close;
    if (bind(fd, sa, salen) != 0)
        goto fail_close;
    if (listen(fd, HTTPD_BACKLOG) != 0)
        goto fail_close;
    return fd;

fail_close:
    saved = errno;
    close(fd);
    errno = saved;
fail:
    return -1;
}

/* Opens the listening socket for host/port. Returns it, or -1 with a message in err. */
static int httpd_open(const char *listen_on, const char *host, int port, int *is_v6, char *err,
                      size_t errlen)
{
    struct sockaddr_in6 s6;
    struct sockaddr_in s4;
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    struct addrinfo *ai;
    char portstr[8];
    int fd = -1;
    int rc;
    int e = 0;

    if (!*host) {
        /* ":PORT": every IPv4 and IPv6 address on one dual-stack socket, or IPv4 alone where
         * the host has no IPv6. */
        memset(&s6, 0, sizeof(s6));
        s6.sin6_family = AF_INET6;
        s6.sin6_addr = in6addr_any;
        s6.sin6_port = htons((uint16_t)port);
        fd = httpd_bind((const struct sockaddr *)&s6, sizeof(s6), 0);
        *is_v6 = 1;
        if (fd < 0 && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL)) {
            memset(&s4, 0, sizeof(s4));
            s4.sin_family = AF_INET;
            s4.sin_addr.s_addr = htonl(INADDR_ANY);
            s4.sin_port = htons((uint16_t)port);
            fd = httpd_bind((const struct sockaddr *)&s4, sizeof(s4), -1);
            *is_v6 = 0;
        }
        if (fd < 0)
            snprintf(err, errlen, "metrics listener: cannot listen on %s: %s", listen_on,
                     strerror(errno));
        goto out;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    snprintf(portstr, sizeof(portstr), "%d", port);
    rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "metrics listener: cannot resolve \"%s\": %s", host,
                 gai_strerror(rc));
        goto out;
    }
    /* The first address that binds wins (for "localhost": ::1 or 127.0.0.1). */
    for (ai = res; ai; ai = ai->ai_next) {
        fd = httpd_bind(ai->ai_addr, ai->ai_addrlen, -1);
        if (fd >= 0) {
            *is_v6 = ai->ai_family == AF_INET6;
            break;
        }
        if (!e)
            e = errno;
    }
    if (fd < 0)
        snprintf(err, errlen, "metrics listener: cannot listen on %s: %s", listen_on,
                 strerror(e ? e : EADDRNOTAVAIL));
out:
    if (res)
        freeaddrinfo(res);
    return fd;
}

/* The port a socket is bound to, or -1. */
static int httpd_bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

struct clw_httpd *clw_httpd_start(const char *listen, struct clw_metrics *m, char *err,
                                  size_t errlen)
{
    struct clw_httpd *d = NULL;
    char host[256];
    int port = 0;
    int fd = -1;
    int is_v6 = 0;
    unsigned int flags;

    if (errlen)
        err[0] = '\0';
    if (httpd_parse_listen(listen, host, sizeof(host), &port, err, errlen) != 0)
        goto fail;
    d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "metrics listener: out of memory");
        goto fail;
    }
    d->m = m;
    /* We bind ourselves rather than through MHD: that gives the caller the real reason
     * ("Address already in use") and control over dual stack. */
    fd = httpd_open(listen, host, port, &is_v6, err, errlen);
    if (fd < 0)
        goto fail;
    d->port = httpd_bound_port(fd);
    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
        flags |= MHD_USE_EPOLL;
    else if (MHD_is_feature_supported(MHD_FEATURE_POLL) == MHD_YES)
        flags |= MHD_USE_POLL;
    if (is_v6)
        flags |= MHD_USE_IPv6;
    d->daemon =
        MHD_start_daemon(flags, 0, NULL, NULL, httpd_handle, d, MHD_OPTION_EXTERNAL_LOGGER,
                         httpd_log, NULL, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned int)HTTPD_CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
                         (unsigned int)HTTPD_CONNECTION_TIMEOUT_S, MHD_OPTION_END);
    if (!d->daemon) {
        /* Some of MHD's failure paths close the socket and some do not; closing it here could
         * close an unrelated descriptor, so a rare leak is the lesser evil (the worker exits). */
        snprintf(err, errlen, "metrics listener: cannot start the HTTP server on %s", listen);
        goto fail;
    }
    /* From here on MHD owns fd and closes it in MHD_stop_daemon(). */
    return d;

fail:
    free(d);
    return NULL;
}

int clw_httpd_port(const struct clw_httpd *d)
{
    return d ? d->port : -1;
}

void clw_httpd_stop(struct clw_httpd *d)
{
    if (!d)
        return;
    MHD_stop_daemon(d->daemon);
    free(d);
}
