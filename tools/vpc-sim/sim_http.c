/* vpc-sim: the HTTP(S) front end on libmicrohttpd; held answers wait on the timer thread. */
#include "sim_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#define MAX_BODY       ((size_t)1024 * 1024)
#define CONN_MEMORY    (64 * 1024)
#define IDLE_TIMEOUT_S 120
#define LISTEN_BACKLOG 4096

enum phase {
    PHASE_RECEIVING, /* collecting the body */
    PHASE_HELD,      /* answer computed, connection suspended until the timer fires */
    PHASE_RELEASED,  /* timer fired: deliver the answer */
};

/* One request on one connection, from the request line to completion. */
struct exchange {
    struct clw_sim_http *http;
    struct MHD_Connection *conn;
    char *target; /* raw request target with the query string */
    char *body;
    size_t body_len;
    bool body_too_large;
    bool called; /* the access handler has seen this request before */
    enum phase phase;
    struct clw_sim_response resp;
};

/* MHD calls this with the raw URI before parsing it: the exchange starts here so that the
 * query string is seen undecoded (the simulator decodes it itself). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct exchange *ex = calloc(1, sizeof(*ex));

    if (ex == NULL)
        return NULL;
    ex->http = cls;
    ex->conn = conn;
    ex->target = strdup(uri);
    if (ex->target == NULL) {
        free(ex);
        return NULL;
    }
    return ex;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct exchange *ex = *req_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (ex == NULL)
        return;
    clw_sim_response_free(&ex->resp);
    free(ex->target);
    free(ex->body);
    free(ex);
    *req_cls = NULL;
}

static void append_body(struct exchange *ex, const char *data, size_t len)
{
    char *body;

    if (ex->body_too_large || ex->body_len + len > MAX_BODY) {
        ex->body_too_large = true;
        return;
    }
    body = realloc(ex->body, ex->body_len + len + 1);
    if (body == NULL) {
        ex->body_too_large = true;
        return;
    }
    memcpy(body + ex->body_len, data, len);
    ex->body = body;
    ex->body_len += len;
    ex->body[ex->body_len] = '\0';
}

static enum MHD_Result deliver(struct exchange *ex)
{
    struct clw_sim_response *resp = &ex->resp;
    struct MHD_Response *r;
    enum MHD_Result ret;
    char value[16];

    if (resp->disposition == CLW_SIM_CLOSE)
        return MHD_NO; /* MHD closes the connection without an answer */
    r = MHD_create_response_from_buffer_with_free_callback(resp->body_len, resp->body, free);
    if (r == NULL)
        return MHD_NO;
    resp->body = NULL; /* now owned by r */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    if (resp->retry_after_s > 0) {
        snprintf(value, sizeof(value), "%d", resp->retry_after_s);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, value);
    }
    ret = MHD_queue_response(ex->conn, (unsigned int)resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Timer thread: the hold is over. */
static void on_timer(void *arg)
{
    struct exchange *ex = arg;

    ex->phase = PHASE_RELEASED;
    MHD_resume_connection(ex->conn);
}

static const char *lookup_header(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
}

static enum MHD_Result answer(struct exchange *ex, const char *method)
{
    struct clw_sim_request req = {
        .method = method,
        .host = MHD_lookup_connection_value(ex->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST),
        .target = ex->target,
        .content_type =
            MHD_lookup_connection_value(ex->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
        .body = ex->body != NULL ? ex->body : "",
        .body_len = ex->body_len,
        .header = lookup_header,
        .header_ctx = ex->conn,
    };

    if (ex->body_too_large) {
        memset(&ex->resp, 0, sizeof(ex->resp));
        ex->resp.status = MHD_HTTP_CONTENT_TOO_LARGE;
        ex->resp.content_type = "text/plain";
        ex->resp.body = strdup("request body too large\n");
        ex->resp.body_len = ex->resp.body != NULL ? strlen(ex->resp.body) : 0;
        return deliver(ex);
    }
    clw_sim_handle(ex->http->sim, &req, &ex->resp);
    if (ex->resp.delay_ms == 0)
        return deliver(ex);
    /* Hold the answer without blocking this event-loop thread. */
    ex->phase = PHASE_HELD;
    MHD_suspend_connection(ex->conn);
    if (clw_sim_timer_add(&ex->http->timer, ex->resp.delay_ms, ex) != 0) {
        ex->phase = PHASE_RELEASED; /* shutting down: answer now */
        MHD_resume_connection(ex->conn);
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct exchange *ex = *req_cls;

    (void)cls;
    (void)conn;
    (void)url;
    (void)version;
    if (ex == NULL)
        return MHD_NO; /* out of memory in on_uri */
    switch (ex->phase) {
    case PHASE_RECEIVING:
        if (*upload_data_size > 0) {
            append_body(ex, upload_data, *upload_data_size);
            *upload_data_size = 0;
            return MHD_YES;
        }
        /* The first call comes before any body. Answer from the second call on: MHD closes
         * the connection after an answer queued in the first call, losing keep-alive. */
        if (!ex->called) {
            ex->called = true;
            return MHD_YES;
        }
        return answer(ex, method);
    case PHASE_HELD:
        return MHD_YES; /* not expected: MHD does not call suspended connections */
    case PHASE_RELEASED:
        return deliver(ex);
    }
    return MHD_NO;
}

int clw_sim_http_start(struct clw_sim_http *http, struct clw_sim *sim,
                       const struct clw_sim_http_options *opts, char *err, size_t errsz)
{
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                         MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_TURBO;
    bool tls = opts->tls_cert_pem != NULL && opts->tls_key_pem != NULL;
    const union MHD_DaemonInfo *info;
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)opts->tls_cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)opts->tls_key_pem},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_OptionItem no_opts[] = {{MHD_OPTION_END, 0, NULL}};

    memset(http, 0, sizeof(*http));
    http->sim = sim;
    if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        snprintf(err, errsz, "this libmicrohttpd has no TLS support");
        return -1;
    }
    if (tls)
        flags |= MHD_USE_TLS;
    if (opts->addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (clw_sim_timer_start(&http->timer, on_timer) != 0) {
        snprintf(err, errsz, "cannot start the timer thread");
        return -1;
    }
    http->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, http, MHD_OPTION_SOCK_ADDR, &opts->addr,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, http, MHD_OPTION_NOTIFY_COMPLETED, on_completed, http,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)(opts->threads > 1 ? opts->threads : 0),
        MHD_OPTION_CONNECTION_LIMIT, opts->connection_limit, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)LISTEN_BACKLOG, MHD_OPTION_ARRAY,
        tls ? tls_opts : no_opts, MHD_OPTION_END);
    if (http->daemon == NULL) {
        clw_sim_timer_stop(&http->timer);
        snprintf(err, errsz, "cannot start the HTTP%s server (address in use?)", tls ? "S" : "");
        return -1;
    }
    info = MHD_get_daemon_info(http->daemon, MHD_DAEMON_INFO_BIND_PORT);
    http->port = info != NULL ? info->port : 0;
    return 0;
}

void clw_sim_http_stop(struct clw_sim_http *http)
{
    if (http->daemon == NULL)
        return;
    /* Release every held connection first: MHD must not stop with suspended ones. */
    clw_sim_timer_stop(&http->timer);
    MHD_stop_daemon(http->daemon);
    http->daemon = NULL;
}
