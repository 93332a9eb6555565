/* HTTP adapter: many API calls in flight on one curl multi handle, connection reuse, per-attempt
 * timeouts, bounded response bodies. curl stays inside this module. Single-threaded. */
#ifndef CLW_HTTP_H
#define CLW_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "clw/answer.h"

struct clw_http;

struct clw_http_opts {
    int64_t timeout_ms;         /* whole attempt */
    int64_t connect_timeout_ms; /* connection phase */
    const char *ca_file;        /* NULL or "" for the system store */
    size_t max_body;            /* responses larger than this fail with CLW_TRANSPORT_TOO_LARGE */
    long max_connections;       /* connection cache size (>= calls in flight) */
};

/* The result of one finished call, borrowed for the duration of the done callback. body is the
 * response body (NUL-terminated, body_len bytes; NULL when none arrived). sent is 1 when the
 * request was (at least partly) written to the server, so its effect is unknown on a failure. */
struct clw_http_response {
    enum clw_transport transport;
    long status; /* 0 when no response */
    const char *body;
    size_t body_len;
    int64_t retry_after_ms; /* from a Retry-After header, -1 when absent */
    int sent;
};

/* Called once per finished call with its result. */
typedef void(clw_http_done_fn)(void *opaque, const struct clw_http_response *resp, void *arg);

/* Returns a new adapter or NULL with a message in err. Calls curl_global_init once. */
struct clw_http *clw_http_new(const struct clw_http_opts *opts, char *err, size_t errlen);
/* Aborts every call still in flight (no callbacks) and frees everything. */
void clw_http_free(struct clw_http *h);

/* Starts a call: GET url when body is NULL, else POST body (a form, unless headers say
 * otherwise). headers is NULL or a NULL-terminated list of "Name: value" lines added to the
 * request. url, body and headers are copied and wiped after use (they carry a signature).
 * opaque comes back in the done callback. Returns 0 or -1. */
int clw_http_submit(struct clw_http *h, const char *url, const char *body,
                    const char *const *headers, void *opaque);

/* Aborts the call started with opaque, if any, without a callback. Returns 1 if one was
 * aborted. */
int clw_http_cancel(struct clw_http *h, void *opaque);

/* Waits up to timeout_ms for socket activity of the calls or for one of fds to become readable
 * (curl_multi_poll). Returns 0, or -1 on a poll failure. */
int clw_http_wait(struct clw_http *h, const int *fds, size_t nfds, int timeout_ms);

/* Makes progress on every call and reports each finished one through done. Returns the number
 * of calls finished. */
int clw_http_run(struct clw_http *h, clw_http_done_fn *done, void *arg);

size_t clw_http_in_flight(const struct clw_http *h);

#endif
