/* HTTP adapter: curl multi with many API calls in flight, bounded bodies, reused connections.
 * Sockets are watched with epoll and driven by curl_multi_socket_action, so each wake-up costs
 * O(active sockets), not O(calls in flight) as curl_multi_perform/curl_multi_poll would. A call
 * slot (struct clw_http_call) owns one easy handle for its whole life: the options that never
 * change are set once when the slot is made, and a finished slot is kept for the next call, so
 * a call costs a few setopts and no allocation. */
#include "clw/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clw/clock.h"
#include "clw/log.h"

/* Receive buffer of an easy handle (curl's default is 16 KiB): answers are a few hundred bytes,
 * and with 1 000+ handles the default costs memory for nothing. Larger bodies take more reads. */
#define RECV_BUFFER 4096
/* First size of a response buffer; it grows by doubling up to max_body and is kept across the
 * calls of its slot. */
#define RESP_INITIAL 1024
/* Largest response buffer a slot keeps when it goes idle; a larger one is released. */
#define RESP_KEEP ((size_t)64 * 1024)
/* Events taken per epoll_wait: one per socket with news, so up to this many calls progress per
 * wake-up. */
#define WAIT_EVENTS 256

/* One call slot: an easy handle with its fixed options, the buffers of the current call, and its
 * place in the in-flight or idle list. In flight from submit until its callback returns or it is
 * cancelled; idle otherwise. */
struct clw_http_call {
    struct clw_http *h;
    CURL *easy;
    void *opaque;
    char *base; /* the URL last given to curl (scheme://authority/path), NULL none */
    size_t base_len;
    int has_target; /* CURLOPT_REQUEST_TARGET is set */
    char *body;     /* POST form, wiped after the call; capacity body_cap */
    size_t body_len;
    size_t body_cap;
    char *resp;
    size_t resp_len;
    size_t resp_cap;
    int too_large;
    int64_t retry_after_ms;
    struct curl_slist *headers;        /* extra request headers (API 3.0), NULL none */
    struct clw_http_call *prev, *next; /* the in-flight list, or the idle list (next only) */
};

/* Extra (non-curl) descriptors the event loop waits on, registered once. */
#define MAX_EXTRA_FDS 8

/* What epoll knows of a descriptor curl uses. A connection socket opened through on_open stays
 * registered while its connection idles in curl's cache (parked: curl is not watching it), so
 * the next call on that connection, which wants the same events, costs no epoll_ctl at all
 * (two fewer system calls per call). on_close forgets it before closing it. */
struct fd_state {
    uint32_t events;       /* registered with epoll; 0 when not registered */
    unsigned char ours;    /* opened by on_open (closed through on_close) */
    unsigned char watched; /* curl wants events for it now */
};

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
    struct clw_http_call *idle; /* slots kept for reuse (connections live in the multi cache) */
    int split_target;           /* send path?query as CURLOPT_REQUEST_TARGET (see setup_url) */
    struct fd_state *fds;       /* indexed by descriptor */
    size_t n_fds;
};

static int global_ready;

static void wipe(char *s, size_t n)
{
    if (s == NULL)
        return;
    volatile char *p = s;
    for (size_t i = 0; i < n; i++)
        p[i] = 0;
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
        size_t cap = call->resp_cap ? call->resp_cap : RESP_INITIAL;
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
        while (len > 0 &&
               (start[len - 1] == '\r' || start[len - 1] == '\n' || start[len - 1] == ' '))
            start[--len] = '\0';
        call->retry_after_ms = clw_answer_parse_retry_after(start, clw_clock_wall_ms());
    }
    return n;
}

/* The state of fd, the table grown to hold it; NULL when fd is negative or out of memory. */
static struct fd_state *fd_state(struct clw_http *h, int fd)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= h->n_fds) {
        size_t n = h->n_fds ? h->n_fds : 64;
        while (n <= (size_t)fd)
            n *= 2;
        struct fd_state *p = realloc(h->fds, n * sizeof(*p));
        if (p == NULL)
            return NULL;
        memset(p + h->n_fds, 0, (n - h->n_fds) * sizeof(*p));
        h->fds = p;
        h->n_fds = n;
    }
    return &h->fds[fd];
}

/* Registers fd for events (0: unregisters it), with as few epoll_ctl calls as it takes. */
static void fd_watch(struct clw_http *h, int fd, struct fd_state *st, uint32_t events)
{
    struct epoll_event ev;
    uint32_t had = st != NULL ? st->events : 0;
    if (st != NULL && had == events)
        return;
    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.fd = fd;
    if (events == 0) {
        epoll_ctl(h->epfd, EPOLL_CTL_DEL, fd, NULL);
    } else if (had == 0) {
        if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev) != 0 && errno == EEXIST)
            epoll_ctl(h->epfd, EPOLL_CTL_MOD, fd, &ev);
    } else if (epoll_ctl(h->epfd, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT) {
        epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev);
    }
    if (st != NULL)
        st->events = events;
}

/* curl tells which sockets to watch for what. */
static int on_socket(CURL *easy, curl_socket_t sock, int what, void *userp, void *socketp)
{
    struct clw_http *h = userp;
    struct fd_state *st = fd_state(h, sock);
    (void)easy;
    (void)socketp;
    if (what == CURL_POLL_REMOVE) {
        if (st != NULL && st->ours) {
            st->watched = 0; /* parked: stays registered, see struct fd_state */
            return 0;
        }
        fd_watch(h, sock, st, 0);
        return 0;
    }
    uint32_t events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
    if (st != NULL)
        st->watched = 1;
    fd_watch(h, sock, st, events); /* st NULL (out of memory): registered, not remembered */
    return 0;
}

/* curl's sockets are opened here so that parking (struct fd_state) knows which descriptors are
 * connections that on_close will see closed. */
static curl_socket_t on_open(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    struct clw_http *h = clientp;
    (void)purpose;
    int fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    if (fd < 0)
        return CURL_SOCKET_BAD;
    struct fd_state *st = fd_state(h, fd);
    if (st != NULL) {
        st->events = 0;
        st->ours = 1;
        st->watched = 0;
    }
    return fd;
}

/* Closing a descriptor takes it out of the epoll set; the table forgets it first. */
static int on_close(void *clientp, curl_socket_t fd)
{
    struct clw_http *h = clientp;
    if (fd >= 0 && (size_t)fd < h->n_fds)
        memset(&h->fds[fd], 0, sizeof(h->fds[fd]));
    return close(fd);
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct clw_http *h = userp;
    (void)multi;
    h->timer_due = timeout_ms < 0 ? -1 : clw_clock_mono_ms() + timeout_ms;
    return 0;
}

/* curl takes proxies from the environment. Through a plain-HTTP proxy the request line must
 * carry the whole URL, which a request target would replace: no split then. */
static int proxy_in_env(void)
{
    static const char *const names[] = {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy",
                                        "ALL_PROXY"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *v = getenv(names[i]);
        if (v != NULL && v[0] != '\0')
            return 1;
    }
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
    h->split_target = !proxy_in_env();
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

/* Frees a slot and its easy handle (which must not be in the multi handle). */
/* Drops the call's extra headers; they carry a signature, so they are wiped first. */
static void drop_headers(struct clw_http_call *call)
{
    for (struct curl_slist *l = call->headers; l != NULL; l = l->next)
        wipe(l->data, strlen(l->data));
    curl_slist_free_all(call->headers);
    call->headers = NULL;
}

static void call_free(struct clw_http_call *call)
{
    if (call == NULL)
        return;
    drop_headers(call);
    if (call->easy != NULL)
        curl_easy_cleanup(call->easy);
    wipe(call->body, call->body_cap);
    free(call->body);
    free(call->base);
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
    call->prev = call->next = NULL;
    h->n_calls--;
}

/* Ends the current call of a slot that is no longer in the multi handle: wipes the form (it
 * carries a signature) and keeps the slot for the next call. keep_easy is 0 when the handle's
 * connection is suspect (failed or cancelled mid-transfer): the handle is replaced on next use,
 * so its connection is closed now rather than reused. */
static void recycle(struct clw_http *h, struct clw_http_call *call, int keep_easy)
{
    drop_headers(call);
    if (call->easy != NULL)
        curl_easy_setopt(call->easy, CURLOPT_HTTPHEADER, NULL);
    wipe(call->body, call->body_len);
    call->body_len = 0;
    call->opaque = NULL;
    if (!keep_easy) {
        curl_easy_cleanup(call->easy);
        call->easy = NULL;
        free(call->base);
        call->base = NULL;
        call->base_len = 0;
        call->has_target = 0;
    }
    if (call->resp_cap > RESP_KEEP) {
        free(call->resp);
        call->resp = NULL;
        call->resp_cap = 0;
    }
    call->resp_len = 0;
    call->next = h->idle;
    h->idle = call;
}

void clw_http_free(struct clw_http *h)
{
    if (h == NULL)
        return;
    while (h->calls != NULL) {
        struct clw_http_call *call = h->calls;
        unlink_call(h, call);
        curl_multi_remove_handle(h->multi, call->easy);
        call_free(call);
    }
    while (h->idle != NULL) {
        struct clw_http_call *call = h->idle;
        h->idle = call->next;
        call_free(call);
    }
    if (h->multi != NULL)
        curl_multi_cleanup(h->multi);
    if (h->epfd >= 0)
        close(h->epfd);
    free(h->fds);
    free(h->ca_file);
    free(h);
}

/* A new easy handle with every option that is the same for all calls. NULL on failure. */
static CURL *new_easy(struct clw_http *h, struct clw_http_call *call)
{
    CURL *e = curl_easy_init();
    if (e == NULL)
        return NULL;
    unsigned int rc = 0;
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
    rc |= curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)RECV_BUFFER);
    rc |= curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open);
    rc |= curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, h);
    rc |= curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close);
    rc |= curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, h);
    if (h->ca_file != NULL)
        rc |= curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
    if (rc != 0) {
        curl_easy_cleanup(e);
        return NULL;
    }
    return e;
}

/* An idle slot, or a new one; with an easy handle either way. NULL when out of memory. */
static struct clw_http_call *take_slot(struct clw_http *h)
{
    struct clw_http_call *call = h->idle;
    if (call != NULL) {
        h->idle = call->next;
        call->next = NULL;
    } else {
        call = calloc(1, sizeof(*call));
        if (call == NULL)
            return NULL;
        call->h = h;
    }
    if (call->easy == NULL)
        call->easy = new_easy(h, call);
    if (call->easy == NULL) {
        call->next = h->idle;
        h->idle = call;
        return NULL;
    }
    return call;
}

/* Sets the URL of a call. A signed GET URL is long (every parameter is in its query), and curl
 * parses a new URL and formats it back a byte at a time on every call: that was a third of the
 * worker's instructions per call. So the URL is split: scheme://authority/path goes to
 * CURLOPT_URL only when it differs from the slot's last one (it never does for one endpoint),
 * and path?query goes verbatim as CURLOPT_REQUEST_TARGET. The request on the wire is the same.
 * URLs without a query or of unexpected shape are set whole. */
static int setup_url(struct clw_http *h, struct clw_http_call *call, const char *url)
{
    CURL *e = call->easy;
    const char *sep = strstr(url, "://");
    const char *path = sep != NULL ? sep + 3 + strcspn(sep + 3, "/?#") : NULL;
    const char *query = path != NULL && *path == '/' ? strchr(path, '?') : NULL;
    unsigned int rc = 0;
    if (!h->split_target || query == NULL || strchr(path, '#') != NULL) {
        if (call->has_target)
            rc |= curl_easy_setopt(e, CURLOPT_REQUEST_TARGET, (char *)NULL);
        call->has_target = 0;
        free(call->base);
        call->base = NULL;
        call->base_len = 0;
        rc |= curl_easy_setopt(e, CURLOPT_URL, url);
        return rc == 0 ? 0 : -1;
    }
    size_t base_len = (size_t)(query - url);
    if (call->base == NULL || call->base_len != base_len ||
        memcmp(call->base, url, base_len) != 0) {
        char *base = malloc(base_len + 1);
        if (base == NULL)
            return -1;
        memcpy(base, url, base_len);
        base[base_len] = '\0';
        free(call->base);
        call->base = base;
        call->base_len = base_len;
        rc |= curl_easy_setopt(e, CURLOPT_URL, base);
    }
    rc |= curl_easy_setopt(e, CURLOPT_REQUEST_TARGET, path);
    call->has_target = rc == 0;
    return rc == 0 ? 0 : -1;
}

/* The options of this call: the URL and the method with its form. curl copies the URL; the
 * form is ours (POSTFIELDS is not copied), kept in the slot. */
static int setup_call(struct clw_http *h, struct clw_http_call *call, const char *url,
                      const char *body, const char *const *headers)
{
    CURL *e = call->easy;
    unsigned int rc = 0;
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        struct curl_slist *l = curl_slist_append(call->headers, headers[i]);
        if (l == NULL)
            return -1;
        call->headers = l;
    }
    if (call->headers != NULL)
        rc |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, call->headers);
    call->retry_after_ms = -1;
    call->too_large = 0;
    call->resp_len = 0;
    if (body != NULL) {
        size_t len = strlen(body);
        if (len + 1 > call->body_cap) {
            char *p = malloc(len + 1);
            if (p == NULL)
                return -1;
            wipe(call->body, call->body_cap);
            free(call->body);
            call->body = p;
            call->body_cap = len + 1;
        }
        memcpy(call->body, body, len + 1);
        call->body_len = len;
        rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body);
        rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else {
        rc |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    if (rc != 0 || setup_url(h, call, url) != 0)
        return -1;
    return 0;
}

int clw_http_submit(struct clw_http *h, const char *url, const char *body,
                    const char *const *headers, void *opaque)
{
    struct clw_http_call *call = take_slot(h);
    if (call == NULL)
        return -1;
    call->opaque = opaque;
    if (setup_call(h, call, url, body, headers) != 0 ||
        curl_multi_add_handle(h->multi, call->easy) != CURLM_OK)
        goto fail;
    call->prev = NULL;
    call->next = h->calls;
    if (h->calls != NULL)
        h->calls->prev = call;
    h->calls = call;
    h->n_calls++;
    return 0;
fail:
    recycle(h, call, 0);
    return -1;
}

int clw_http_cancel(struct clw_http *h, void *opaque)
{
    for (struct clw_http_call *call = h->calls; call != NULL; call = call->next) {
        if (call->opaque == opaque) {
            unlink_call(h, call);
            curl_multi_remove_handle(h->multi, call->easy);
            /* A connection cut mid-transfer cannot be reused: drop the handle with it. */
            recycle(h, call, 0);
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
    struct epoll_event events[WAIT_EVENTS];
    int n = epoll_wait(h->epfd, events, WAIT_EVENTS, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    int running = 0;
    for (int i = 0; i < n; i++) {
        int fd = events[i].data.fd;
        if (is_extra(h, fd))
            continue; /* the caller drains its own descriptors */
        if (fd >= 0 && (size_t)fd < h->n_fds && h->fds[fd].ours && !h->fds[fd].watched) {
            /* A parked connection woke up (the server closed it): stop watching it, or a
             * level-triggered descriptor would wake every wait; curl finds it dead on reuse. */
            fd_watch(h, fd, &h->fds[fd], 0);
            continue;
        }
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
        struct clw_http_response resp;
        memset(&resp, 0, sizeof(resp));
        resp.transport = transport_of(rc, call->too_large);
        resp.retry_after_ms = call->retry_after_ms;
        curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &resp.status);
        long uploaded = 0;
        curl_easy_getinfo(call->easy, CURLINFO_REQUEST_SIZE, &uploaded);
        resp.sent = uploaded > 0 || resp.status > 0;
        if (call->resp_len > 0) {
            resp.body = call->resp;
            resp.body_len = call->resp_len;
        }
        if (resp.transport != CLW_TRANSPORT_OK)
            CLW_DEBUG("api call failed: %s", curl_easy_strerror(rc));
        unlink_call(h, call);
        curl_multi_remove_handle(h->multi, call->easy);
        void *opaque = call->opaque;
        call->opaque = NULL;
        finished++;
        /* The slot is recycled after the callback, which reads its response buffer. */
        done(opaque, &resp, arg);
        recycle(h, call, resp.transport == CLW_TRANSPORT_OK);
    }
    return finished;
}

size_t clw_http_in_flight(const struct clw_http *h)
{
    return h->n_calls;
}
