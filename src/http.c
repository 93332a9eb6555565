/* HTTP adapter: curl multi with many API calls in flight, bounded bodies, reused connections.
 * Sockets are watched with epoll and driven by curl_multi_socket_action, so each wake-up costs
 * O(active sockets), not O(calls in flight) as curl_multi_perform/curl_multi_poll would. */
#include "clw/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clw/clock.h"
#include "clw/log.h"

/* One call. Owned by the adapter from submit until its callback returns or it is cancelled. */
struct clw_http_call {
    struct clw_http *h;
    CURL *easy;
    void *opaque;
    char *url;
    char *body;
    size_t body_len;
    char *resp;
    size_t resp_len;
    size_t resp_cap;
    int too_large;
    int64_t retry_after_ms;
    struct clw_http_call *prev, *next; /* the in-flight list */
};

/* Extra (non-curl) descriptors the event loop waits on, registered once. */
#define MAX_EXTRA_FDS 8

struct clw_http {
    CURLM *multi;
    int epfd;
    int extra[MAX_EXTRA_FDS];
    size_t n_extra;
    int64_t timer_due; /* monotonic ms when curl wants CURL_SOCKET_TIMEOUT; -1 none */
    struct clw_http_opts opts;
    char *ca_file;
    struct clw_http_call *calls; /* in flight */
    size_t n_calls;
    CURL **idle; /* easy handles kept for reuse (their connections live in the multi cache) */
    size_t n_idle;
    size_t cap_idle;
};

static int global_ready;

static void wipe_free(char *s, size_t n)
{
    if (s == NULL)
        return;
    volatile char *p = s;
    for (size_t i = 0; i < n; i++)
        p[i] = 0;
    free(s);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct clw_http_call *call = userp;
    size_t n = size * nmemb;
    if (call->resp_len + n > call->h->opts.max_body) {
        call->too_large = 1;
        return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
    }
    if (call->resp_len + n + 1 > call->resp_cap) {
        size_t cap = call->resp_cap ? call->resp_cap : 1024;
        while (cap < call->resp_len + n + 1)
            cap *= 2;
        char *p = realloc(call->resp, cap);
        if (p == NULL)
            return 0;
        call->resp = p;
        call->resp_cap = cap;
    }
    memcpy(call->resp + call->resp_len, data, n);
    call->resp_len += n;
    call->resp[call->resp_len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    struct clw_http_call *call = userp;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof(name) - 1 && n < 256 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
        char value[256];
        size_t vlen = n - (sizeof(name) - 1);
        memcpy(value, data + sizeof(name) - 1, vlen);
        value[vlen] = '\0';
        char *start = value;
        while (*start == ' ' || *start == '\t')
            start++;
        size_t len = strlen(start);
        while (len > 0 && (start[len - 1] == '\r' || start[len - 1] == '\n' || start[len - 1] == ' '))
            start[--len] = '\0';
        call->retry_after_ms = clw_answer_parse_retry_after(start, clw_clock_wall_ms());
    }
    return n;
}

/* curl tells which sockets to watch for what; socketp remembers that a socket is registered. */
static int on_socket(CURL *easy, curl_socket_t sock, int what, void *userp, void *socketp)
{
    struct clw_http *h = userp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(h->epfd, EPOLL_CTL_DEL, sock, NULL);
        curl_multi_assign(h->multi, sock, NULL);
        return 0;
    }
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
    ev.data.fd = sock;
    if (socketp == NULL) {
        if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, sock, &ev) != 0 && errno == EEXIST)
            epoll_ctl(h->epfd, EPOLL_CTL_MOD, sock, &ev);
        curl_multi_assign(h->multi, sock, h);
    } else if (epoll_ctl(h->epfd, EPOLL_CTL_MOD, sock, &ev) != 0 && errno == ENOENT) {
        epoll_ctl(h->epfd, EPOLL_CTL_ADD, sock, &ev);
    }
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct clw_http *h = userp;
    (void)multi;
    h->timer_due = timeout_ms < 0 ? -1 : clw_clock_mono_ms() + timeout_ms;
    return 0;
}

struct clw_http *clw_http_new(const struct clw_http_opts *opts, char *err, size_t errlen)
{
    struct clw_http *h = NULL;
    if (!global_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            snprintf(err, errlen, "curl_global_init failed");
            return NULL;
        }
        global_ready = 1;
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL)
        goto fail;
    h->epfd = -1;
    h->opts = *opts;
    if (opts->ca_file != NULL && opts->ca_file[0] != '\0') {
        h->ca_file = strdup(opts->ca_file);
        if (h->ca_file == NULL)
            goto fail;
    }
    h->opts.ca_file = h->ca_file;
    h->timer_due = -1;
    h->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (h->epfd < 0) {
        snprintf(err, errlen, "epoll: %s", strerror(errno));
        clw_http_free(h);
        return NULL;
    }
    h->multi = curl_multi_init();
    if (h->multi == NULL)
        goto fail;
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, opts->max_connections);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    return h;
fail:
    snprintf(err, errlen, "cannot create the HTTP client (out of memory)");
    clw_http_free(h);
    return NULL;
}

static void call_free(struct clw_http_call *call)
{
    wipe_free(call->url, call->url ? strlen(call->url) : 0);
    wipe_free(call->body, call->body_len);
    free(call->resp);
    free(call);
}

static void unlink_call(struct clw_http *h, struct clw_http_call *call)
{
    if (call->prev != NULL)
        call->prev->next = call->next;
    else
        h->calls = call->next;
    if (call->next != NULL)
        call->next->prev = call->prev;
    h->n_calls--;
}

/* Keeps the easy handle for the next call; its connection stays in the multi's cache. */
static void recycle_easy(struct clw_http *h, CURL *easy)
{
    curl_multi_remove_handle(h->multi, easy);
    if (h->n_idle == h->cap_idle) {
        size_t cap = h->cap_idle ? h->cap_idle * 2 : 64;
        CURL **p = realloc(h->idle, cap * sizeof(*p));
        if (p == NULL) {
            curl_easy_cleanup(easy);
            return;
        }
        h->idle = p;
        h->cap_idle = cap;
    }
    h->idle[h->n_idle++] = easy;
}

void clw_http_free(struct clw_http *h)
{
    if (h == NULL)
        return;
    while (h->calls != NULL) {
        struct clw_http_call *call = h->calls;
        unlink_call(h, call);
        curl_multi_remove_handle(h->multi, call->easy);
        curl_easy_cleanup(call->easy);
        call_free(call);
    }
    for (size_t i = 0; i < h->n_idle; i++)
        curl_easy_cleanup(h->idle[i]);
    free(h->idle);
    if (h->multi != NULL)
        curl_multi_cleanup(h->multi);
    if (h->epfd >= 0)
        close(h->epfd);
    free(h->ca_file);
    free(h);
}

static int setup_easy(struct clw_http *h, struct clw_http_call *call)
{
    CURL *e = call->easy;
    curl_easy_reset(e);
    int rc = 0;
    rc |= curl_easy_setopt(e, CURLOPT_URL, call->url);
    rc |= curl_easy_setopt(e, CURLOPT_PRIVATE, call);
    rc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    rc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
    rc |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    rc |= curl_easy_setopt(e, CURLOPT_HEADERDATA, call);
    rc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)h->opts.timeout_ms);
    rc |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)h->opts.connect_timeout_ms);
    rc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    rc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    rc |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    rc |= curl_easy_setopt(e, CURLOPT_USERAGENT, "classiclink-worker/" CLW_VERSION);
    rc |= curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->opts.max_body);
    if (h->ca_file != NULL)
        rc |= curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
    if (call->body != NULL) {
        rc |= curl_easy_setopt(e, CURLOPT_POST, 1L);
        rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body);
        rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
    }
    return rc == 0 ? 0 : -1;
}

int clw_http_submit(struct clw_http *h, const char *url, const char *body, void *opaque)
{
    struct clw_http_call *call = calloc(1, sizeof(*call));
    if (call == NULL)
        return -1;
    call->h = h;
    call->opaque = opaque;
    call->retry_after_ms = -1;
    call->url = strdup(url);
    if (call->url == NULL)
        goto fail;
    if (body != NULL) {
        call->body_len = strlen(body);
        call->body = malloc(call->body_len + 1);
        if (call->body == NULL)
            goto fail;
        memcpy(call->body, body, call->body_len + 1);
    }
    if (h->n_idle > 0)
        call->easy = h->idle[--h->n_idle];
    else
        call->easy = curl_easy_init();
    if (call->easy == NULL)
        goto fail;
    if (setup_easy(h, call) != 0 || curl_multi_add_handle(h->multi, call->easy) != CURLM_OK) {
        curl_easy_cleanup(call->easy);
        goto fail;
    }
    call->next = h->calls;
    if (h->calls != NULL)
        h->calls->prev = call;
    h->calls = call;
    h->n_calls++;
    return 0;
fail:
    call_free(call);
    return -1;
}

int clw_http_cancel(struct clw_http *h, void *opaque)
{
    for (struct clw_http_call *call = h->calls; call != NULL; call = call->next) {
        if (call->opaque == opaque) {
            unlink_call(h, call);
            curl_multi_remove_handle(h->multi, call->easy);
            /* A connection cut mid-transfer cannot be reused: drop the handle with it. */
            curl_easy_cleanup(call->easy);
            call_free(call);
            return 1;
        }
    }
    return 0;
}

static void watch_extra(struct clw_http *h, const int *fds, size_t nfds)
{
    for (size_t i = 0; i < nfds; i++) {
        int known = 0;
        for (size_t j = 0; j < h->n_extra; j++)
            known |= h->extra[j] == fds[i];
        if (known || h->n_extra == MAX_EXTRA_FDS)
            continue;
        struct epoll_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN;
        ev.data.fd = fds[i];
        if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, fds[i], &ev) == 0)
            h->extra[h->n_extra++] = fds[i];
    }
}

static int is_extra(const struct clw_http *h, int fd)
{
    for (size_t j = 0; j < h->n_extra; j++)
        if (h->extra[j] == fd)
            return 1;
    return 0;
}

int clw_http_wait(struct clw_http *h, const int *fds, size_t nfds, int timeout_ms)
{
    watch_extra(h, fds, nfds);
    int64_t now = clw_clock_mono_ms();
    if (h->timer_due >= 0 && h->timer_due - now < timeout_ms)
        timeout_ms = h->timer_due <= now ? 0 : (int)(h->timer_due - now);
    struct epoll_event events[64];
    int n = epoll_wait(h->epfd, events, 64, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    int running = 0;
    for (int i = 0; i < n; i++) {
        int fd = events[i].data.fd;
        if (is_extra(h, fd))
            continue; /* the caller drains its own descriptors */
        int mask = (events[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                   (events[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                   (events[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
        curl_multi_socket_action(h->multi, fd, mask, &running);
    }
    return 0;
}

static enum clw_transport transport_of(CURLcode rc, int too_large)
{
    if (too_large || rc == CURLE_FILESIZE_EXCEEDED)
        return CLW_TRANSPORT_TOO_LARGE;
    switch (rc) {
    case CURLE_OK:
        return CLW_TRANSPORT_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return CLW_TRANSPORT_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        return CLW_TRANSPORT_CONNECT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        return CLW_TRANSPORT_TLS;
    default:
        return CLW_TRANSPORT_ERROR;
    }
}

int clw_http_run(struct clw_http *h, clw_http_done_fn *done, void *arg)
{
    int running = 0;
    int finished = 0;
    if (h->timer_due >= 0 && h->timer_due <= clw_clock_mono_ms()) {
        h->timer_due = -1;
        curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    CURLMsg *msg;
    int left = 0;
    for (;;) {
        msg = curl_multi_info_read(h->multi, &left);
        if (msg == NULL)
            break;
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct clw_http_call *call = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&call);
        if (call == NULL)
            continue;
        CURLcode rc = msg->data.result;
        struct clw_answer ans;
        memset(&ans, 0, sizeof(ans));
        ans.transport = transport_of(rc, call->too_large);
        ans.retry_after_ms = call->retry_after_ms;
        long status = 0;
        curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
        ans.http_status = status;
        long uploaded = 0;
        curl_easy_getinfo(call->easy, CURLINFO_REQUEST_SIZE, &uploaded);
        int sent = uploaded > 0 || status > 0;
        if (ans.transport == CLW_TRANSPORT_OK && status == 200 && call->resp != NULL)
            clw_answer_parse_body(&ans, call->resp, call->resp_len);
        if (ans.transport != CLW_TRANSPORT_OK)
            CLW_DEBUG("api call failed: %s", curl_easy_strerror(rc));
        unlink_call(h, call);
        if (ans.transport == CLW_TRANSPORT_OK)
            recycle_easy(h, call->easy);
        else {
            curl_multi_remove_handle(h->multi, call->easy);
            curl_easy_cleanup(call->easy);
        }
        void *opaque = call->opaque;
        call_free(call);
        finished++;
        done(opaque, &ans, sent, arg);
    }
    return finished;
}

size_t clw_http_in_flight(const struct clw_http *h)
{
    return h->n_calls;
}
