/* Metrics and health state: atomic counters, gauges and histograms, rendered as Prometheus text. */
#include "clw/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clw/buf.h"

#ifndef CLW_VERSION
#define CLW_VERSION "unknown"
#endif

/* Label value tables. Every labelled family is a fixed array indexed by these, so no caller
 * input can add a series: unknown values fold into "other". */
enum { METRICS_ACTION_UNKNOWN = 2, METRICS_ACTIONS = 3 };
static const char *const metrics_action_names[METRICS_ACTIONS] = {
    "AttachClassicLinkVpc", "DetachClassicLinkVpc", "unknown"};

/* Actions of API calls: the requests' actions and the follow-up calls, any other as "other". */
enum { METRICS_API_ACTION_OTHER = 5, METRICS_API_ACTIONS = 6 };
static const char *const metrics_api_action_names[METRICS_API_ACTIONS] = {
    "AttachClassicLinkVpc",         "DetachClassicLinkVpc",  "DescribeVpcClassicLink",
    "DescribeClassicLinkInstances", "DescribeVpcTaskResult", "other"};

/* Requests per call (classiclink_call_requests): bucket bounds. */
static const unsigned metrics_call_bounds[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};
#define METRICS_CALL_BOUNDS (sizeof(metrics_call_bounds) / sizeof(metrics_call_bounds[0]))

enum { METRICS_STATUS_SUCCEEDED = 0, METRICS_STATUS_FAILED, METRICS_STATUSES };
static const char *const metrics_status_names[METRICS_STATUSES] = {"succeeded", "failed"};

enum { METRICS_ECLASS_NONE = 0, METRICS_ECLASS_OTHER = 5, METRICS_ECLASSES = 6 };
static const char *const metrics_eclass_names[METRICS_ECLASSES] = {
    "", "invalid_request", "api_error", "retries_exhausted", "task_failed", "other"};

enum { METRICS_CLASS_OTHER = 5, METRICS_CLASSES = 6 };
static const char *const metrics_class_names[METRICS_CLASSES] = {
    "success", "permanent", "transient", "resign", "worker_fault", "other"};

/* API codes with their own series; any other numeric code is "other". */
static const long metrics_known_codes[] = {0,    4000, 4100, 4101, 4102, 4103, 4104, 4105, 4106,
                                           4107, 4108, 4109, 4110, 4200, 4300, 4400, 4500, 4600,
                                           5000, 5100, 5200, 5300, 5400, 5500, 6000, 6100, 6200};
#define METRICS_N_KNOWN_CODES (sizeof(metrics_known_codes) / sizeof(metrics_known_codes[0]))
/* Calls that got no API code: labelled by HTTP status ("http_<status>" for these, "http_other"
 * for the rest) or "none" when no HTTP status arrived at all. 200 means a 200 answer whose body
 * carried no code. */
static const long metrics_known_statuses[] = {200, 400, 401, 403, 404, 408,
                                              429, 500, 502, 503, 504};
#define METRICS_N_KNOWN_STATUSES                                                                   \
    (sizeof(metrics_known_statuses) / sizeof(metrics_known_statuses[0]))
#define METRICS_CODE_HTTP_OTHER (METRICS_N_KNOWN_CODES + METRICS_N_KNOWN_STATUSES)
#define METRICS_CODE_NONE       (METRICS_CODE_HTTP_OTHER + 1)
#define METRICS_CODE_OTHER      (METRICS_CODE_HTTP_OTHER + 2)
#define METRICS_CODES           (METRICS_CODE_HTTP_OTHER + 3)

/* Histogram buckets (seconds), shared by both latency histograms; le strings are rendered as
 * written here so the output never depends on float formatting. */
static const double metrics_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                        1,     2.5,  5,     10,   30,  60};
static const char *const metrics_bound_names[] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60"};
#define METRICS_BOUNDS (sizeof(metrics_bounds) / sizeof(metrics_bounds[0]))

/* Longest pause detail kept (bytes, without the NUL). */
#define METRICS_DETAIL_MAX 200
/* A loop turn older than this makes /healthz fail. */
#define METRICS_HEALTHY_MS 10000
/* Upper bound on tracked partitions, so a confused caller cannot grow the table forever. */
#define METRICS_MAX_PARTITIONS 65536
/* Longest region label kept; longer ones are "other" (requests' regions have at most 32). */
#define METRICS_REGION_MAX 32
/* Series of the rate limiter for regions of their own; the rest of the table is kept for one
 * "other" series per action. */
#define METRICS_RL_NAMED (CLW_METRICS_RATELIMIT_SERIES - METRICS_API_ACTIONS)

/* Bucket counts are stored per bucket (not cumulative) plus one overflow bucket; the count is
 * their total, so _count and the +Inf bucket always agree even while updates race a render.
 * The sum is kept in integer microseconds. */
struct metrics_histogram {
    atomic_ullong buckets[METRICS_BOUNDS + 1];
    atomic_ullong sum_us;
};

/* One (action, region) of the rate limiter. The loop thread fills an entry, then publishes it by
 * raising n_rl; afterwards only its atomics change, so the listener reads it without a lock.
 * Doubles are kept as their bits. */
struct metrics_rl_series {
    size_t action; /* index into metrics_api_action_names */
    char region[METRICS_REGION_MAX + 1];
    atomic_ullong admitted;
    atomic_ullong throttled;
    atomic_ullong rate_bits;
    atomic_ullong share_bits;
    atomic_int has_state;
};

struct metrics_partition {
    int32_t partition;
    long pending;
    long lag;
    long committed;
};

struct clw_metrics {
    atomic_ullong requests[METRICS_ACTIONS][METRICS_STATUSES][METRICS_ECLASSES];
    atomic_ullong api_calls[METRICS_API_ACTIONS][METRICS_CLASSES][METRICS_CODES];
    atomic_ullong call_requests[METRICS_CALL_BOUNDS + 1];
    atomic_ullong call_requests_sum;
    struct metrics_histogram api_duration;
    struct metrics_histogram request_duration;
    atomic_ullong consumed;
    atomic_ullong retries;
    atomic_ullong dead_letters;
    atomic_llong creds_expiry_ms;
    atomic_ullong commit_failures;
    atomic_long inflight;
    atomic_long producer_queue;
    struct metrics_rl_series rl[CLW_METRICS_RATELIMIT_SERIES];
    atomic_size_t n_rl;
    atomic_ullong api_quota_bits;

    /* Health. */
    atomic_llong heartbeat_ms;
    atomic_int heartbeat_set;
    atomic_int joined;
    atomic_int assigned;
    atomic_int producer_ok;
    atomic_int paused[CLW_PAUSE_REASONS];

    /* Per-partition gauges: a sorted array, set rarely compared with the counters. */
    pthread_mutex_t part_lock;
    struct metrics_partition *parts;
    size_t n_parts;
    size_t cap_parts;

    /* Pause details, written and read under pause_lock together with the paused flags. */
    pthread_mutex_t pause_lock;
    char detail[CLW_PAUSE_REASONS][METRICS_DETAIL_MAX + 1];
};

const char *clw_pause_reason_name(enum clw_pause_reason r)
{
    switch (r) {
    case CLW_PAUSE_WORKER_FAULT:
        return "worker_fault";
    case CLW_PAUSE_CIRCUIT_OPEN:
        return "circuit_open";
    case CLW_PAUSE_CREDENTIALS:
        return "credentials";
    case CLW_PAUSE_PUBLISH_ERROR:
        return "publish_error";
    case CLW_PAUSE_REASONS:
        break;
    }
    return "unknown";
}

struct clw_metrics *clw_metrics_new(void)
{
    struct clw_metrics *m;

    m = calloc(1, sizeof(*m));
    if (!m)
        goto fail;
    if (pthread_mutex_init(&m->part_lock, NULL) != 0)
        goto fail_free;
    if (pthread_mutex_init(&m->pause_lock, NULL) != 0)
        goto fail_part;
    return m;

fail_part:
    pthread_mutex_destroy(&m->part_lock);
fail_free:
    free(m);
fail:
    return NULL;
}

void clw_metrics_free(struct clw_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->pause_lock);
    pthread_mutex_destroy(&m->part_lock);
    free(m->parts);
    free(m);
}

static void metrics_inc(atomic_ullong *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static unsigned long long metrics_get(atomic_ullong *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static void metrics_observe(struct metrics_histogram *h, double seconds)
{
    size_t i;
    unsigned long long us;

    /* NaN and negative durations (a clock oddity) count as 0; absurd ones are capped at a
     * year so the conversion stays defined. */
    if (!(seconds > 0.0))
        seconds = 0.0;
    if (seconds > 31536000.0)
        seconds = 31536000.0;
    for (i = 0; i < METRICS_BOUNDS; i++) {
        if (seconds <= metrics_bounds[i])
            break;
    }
    us = (unsigned long long)llround(seconds * 1e6);
    atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
    metrics_inc(&h->buckets[i]);
}

static size_t metrics_eclass_index(const char *error_class)
{
    size_t i;

    if (!error_class || !*error_class)
        return METRICS_ECLASS_NONE;
    for (i = 1; i < METRICS_ECLASS_OTHER; i++) {
        if (strcmp(error_class, metrics_eclass_names[i]) == 0)
            return i;
    }
    return METRICS_ECLASS_OTHER;
}

static size_t metrics_class_index(const char *cls)
{
    size_t i;

    if (!cls)
        return METRICS_CLASS_OTHER;
    for (i = 0; i < METRICS_CLASS_OTHER; i++) {
        if (strcmp(cls, metrics_class_names[i]) == 0)
            return i;
    }
    return METRICS_CLASS_OTHER;
}

static size_t metrics_code_index(long code, long http_status)
{
    size_t i;

    if (code >= 0) {
        for (i = 0; i < METRICS_N_KNOWN_CODES; i++) {
            if (metrics_known_codes[i] == code)
                return i;
        }
        return METRICS_CODE_OTHER;
    }
    if (http_status <= 0)
        return METRICS_CODE_NONE;
    for (i = 0; i < METRICS_N_KNOWN_STATUSES; i++) {
        if (metrics_known_statuses[i] == http_status)
            return METRICS_N_KNOWN_CODES + i;
    }
    return METRICS_CODE_HTTP_OTHER;
}

/* The label value of code index i, written into out (at least 16 bytes). */
static void metrics_code_name(size_t i, char *out, size_t outlen)
{
    if (i < METRICS_N_KNOWN_CODES)
        snprintf(out, outlen, "%ld", metrics_known_codes[i]);
    else if (i < METRICS_CODE_HTTP_OTHER)
        snprintf(out, outlen, "http_%ld", metrics_known_statuses[i - METRICS_N_KNOWN_CODES]);
    else if (i == METRICS_CODE_HTTP_OTHER)
        snprintf(out, outlen, "http_other");
    else if (i == METRICS_CODE_NONE)
        snprintf(out, outlen, "none");
    else
        snprintf(out, outlen, "other");
}

static size_t metrics_action_index(int has_action, enum clw_action action)
{
    if (!has_action)
        return METRICS_ACTION_UNKNOWN;
    if (action == CLW_ACTION_ATTACH)
        return 0;
    if (action == CLW_ACTION_DETACH)
        return 1;
    return METRICS_ACTION_UNKNOWN;
}

void clw_metrics_consumed(struct clw_metrics *m)
{
    metrics_inc(&m->consumed);
}

void clw_metrics_request_done(struct clw_metrics *m, int has_action, enum clw_action action,
                              int succeeded, const char *error_class, double seconds)
{
    size_t a = metrics_action_index(has_action, action);
    size_t s = succeeded ? METRICS_STATUS_SUCCEEDED : METRICS_STATUS_FAILED;

    metrics_inc(&m->requests[a][s][metrics_eclass_index(error_class)]);
    metrics_observe(&m->request_duration, seconds);
}

static size_t metrics_api_action_index(const char *action)
{
    size_t a;

    for (a = 0; action != NULL && a < METRICS_API_ACTION_OTHER; a++)
        if (strcmp(action, metrics_api_action_names[a]) == 0)
            return a;
    return METRICS_API_ACTION_OTHER;
}

void clw_metrics_api_call(struct clw_metrics *m, const char *action, const char *cls, long code,
                          long http_status, double seconds)
{
    size_t a = metrics_api_action_index(action);

    metrics_inc(&m->api_calls[a][metrics_class_index(cls)][metrics_code_index(code, http_status)]);
    metrics_observe(&m->api_duration, seconds);
}

void clw_metrics_call_requests(struct clw_metrics *m, size_t requests)
{
    size_t i;

    for (i = 0; i < METRICS_CALL_BOUNDS; i++)
        if (requests <= metrics_call_bounds[i])
            break;
    metrics_inc(&m->call_requests[i]);
    atomic_fetch_add_explicit(&m->call_requests_sum, (unsigned long long)requests,
                              memory_order_relaxed);
}

void clw_metrics_retry(struct clw_metrics *m)
{
    metrics_inc(&m->retries);
}

void clw_metrics_dead_letter(struct clw_metrics *m)
{
    metrics_inc(&m->dead_letters);
}

void clw_metrics_set_credentials_expiry(struct clw_metrics *m, int64_t wall_ms)
{
    atomic_store_explicit(&m->creds_expiry_ms, wall_ms > 0 ? (long long)wall_ms : 0,
                          memory_order_relaxed);
}

static unsigned long long metrics_bits(double v)
{
    unsigned long long bits;

    memcpy(&bits, &v, sizeof(bits));
    return bits;
}

static double metrics_double(atomic_ullong *a)
{
    unsigned long long bits = atomic_load_explicit(a, memory_order_relaxed);
    double v;

    memcpy(&v, &bits, sizeof(v));
    return v;
}

/* The index of the series of (a, region) among the first n, or n when absent; *named counts
 * the series with a region of their own. */
static size_t metrics_rl_index(const struct clw_metrics *m, size_t n, size_t a, const char *region,
                               size_t *named)
{
    size_t i;

    *named = 0;
    for (i = 0; i < n; i++) {
        if (m->rl[i].action == a && strcmp(m->rl[i].region, region) == 0)
            break;
        *named += strcmp(m->rl[i].region, "other") != 0;
    }
    return i;
}

/* The series of (action, region), made when absent; past METRICS_RL_NAMED regions of their own
 * the region is "other", for which a slot per action is kept. Loop thread only. */
static struct metrics_rl_series *metrics_rl_find(struct clw_metrics *m, const char *action,
                                                 const char *region)
{
    size_t a = metrics_api_action_index(action);
    size_t n = atomic_load_explicit(&m->n_rl, memory_order_relaxed);
    size_t named;
    size_t i;
    struct metrics_rl_series *sr;

    if (region == NULL || strlen(region) > METRICS_REGION_MAX)
        region = "other";
    i = metrics_rl_index(m, n, a, region, &named);
    if (i == n && strcmp(region, "other") != 0 && named >= METRICS_RL_NAMED) {
        region = "other";
        i = metrics_rl_index(m, n, a, region, &named);
    }
    if (i < n)
        return &m->rl[i];
    if (n >= CLW_METRICS_RATELIMIT_SERIES)
        return NULL;
    sr = &m->rl[n];
    sr->action = a;
    snprintf(sr->region, sizeof(sr->region), "%s", region);
    atomic_store_explicit(&m->n_rl, n + 1, memory_order_release);
    return sr;
}

void clw_metrics_ratelimit_answer(struct clw_metrics *m, const char *action, const char *region,
                                  int throttled)
{
    struct metrics_rl_series *sr = metrics_rl_find(m, action, region);

    if (sr != NULL)
        metrics_inc(throttled ? &sr->throttled : &sr->admitted);
}

void clw_metrics_ratelimit_state(struct clw_metrics *m, const char *action, const char *region,
                                 double rate, double share)
{
    struct metrics_rl_series *sr = metrics_rl_find(m, action, region);

    if (sr == NULL)
        return;
    atomic_store_explicit(&sr->rate_bits, metrics_bits(rate), memory_order_relaxed);
    atomic_store_explicit(&sr->share_bits, metrics_bits(share), memory_order_relaxed);
    atomic_store_explicit(&sr->has_state, 1, memory_order_release);
}

void clw_metrics_set_api_quota(struct clw_metrics *m, double quota)
{
    atomic_store_explicit(&m->api_quota_bits, metrics_bits(quota), memory_order_relaxed);
}

void clw_metrics_commit_failed(struct clw_metrics *m)
{
    metrics_inc(&m->commit_failures);
}

void clw_metrics_set_inflight(struct clw_metrics *m, long calls)
{
    atomic_store_explicit(&m->inflight, calls, memory_order_relaxed);
}

void clw_metrics_set_producer_queue(struct clw_metrics *m, long records)
{
    atomic_store_explicit(&m->producer_queue, records, memory_order_relaxed);
}

/* Index of partition in the sorted table, or where it would be inserted (*found 0). Called
 * with part_lock held. */
static size_t metrics_part_find(const struct clw_metrics *m, int32_t partition, int *found)
{
    size_t lo = 0;
    size_t hi = m->n_parts;
    size_t mid;

    *found = 0;
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (m->parts[mid].partition == partition) {
            *found = 1;
            return mid;
        }
        if (m->parts[mid].partition < partition)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void clw_metrics_set_partition(struct clw_metrics *m, int32_t partition, long pending, long lag,
                               long committed)
{
    size_t i;
    size_t cap;
    int found;
    struct metrics_partition *parts;

    pthread_mutex_lock(&m->part_lock);
    i = metrics_part_find(m, partition, &found);
    if (!found) {
        if (m->n_parts >= METRICS_MAX_PARTITIONS)
            goto out;
        if (m->n_parts == m->cap_parts) {
            cap = m->cap_parts ? m->cap_parts * 2 : 16;
            parts = realloc(m->parts, cap * sizeof(*parts));
            if (!parts)
                goto out; /* the gauge is missing until memory returns; counting goes on */
            m->parts = parts;
            m->cap_parts = cap;
        }
        memmove(&m->parts[i + 1], &m->parts[i], (m->n_parts - i) * sizeof(m->parts[0]));
        m->n_parts++;
        m->parts[i].partition = partition;
    }
    m->parts[i].pending = pending;
    m->parts[i].lag = lag;
    m->parts[i].committed = committed;
out:
    pthread_mutex_unlock(&m->part_lock);
}

void clw_metrics_forget_partition(struct clw_metrics *m, int32_t partition)
{
    size_t i;
    int found;

    pthread_mutex_lock(&m->part_lock);
    i = metrics_part_find(m, partition, &found);
    if (found) {
        memmove(&m->parts[i], &m->parts[i + 1], (m->n_parts - i - 1) * sizeof(m->parts[0]));
        m->n_parts--;
    }
    pthread_mutex_unlock(&m->part_lock);
}

void clw_metrics_loop_alive(struct clw_metrics *m, int64_t mono_ms)
{
    atomic_store_explicit(&m->heartbeat_ms, (long long)mono_ms, memory_order_relaxed);
    atomic_store_explicit(&m->heartbeat_set, 1, memory_order_release);
}

void clw_metrics_set_group(struct clw_metrics *m, int joined, int assigned_partitions)
{
    atomic_store_explicit(&m->joined, joined ? 1 : 0, memory_order_relaxed);
    atomic_store_explicit(&m->assigned, assigned_partitions, memory_order_relaxed);
}

void clw_metrics_set_producer_ok(struct clw_metrics *m, int ok)
{
    atomic_store_explicit(&m->producer_ok, ok ? 1 : 0, memory_order_relaxed);
}

void clw_metrics_set_paused(struct clw_metrics *m, enum clw_pause_reason r, int on,
                            const char *detail)
{
    size_t i = 0;
    unsigned char c;
    char *out;

    if ((unsigned)r >= CLW_PAUSE_REASONS)
        return;
    pthread_mutex_lock(&m->pause_lock);
    out = m->detail[r];
    /* Kept as printable ASCII only, so the readiness body is valid JSON and one line whatever
     * the caller passed; anything else becomes '?'. */
    if (on && detail) {
        for (; i < METRICS_DETAIL_MAX && detail[i]; i++) {
            c = (unsigned char)detail[i];
            out[i] = (char)((c >= 0x20 && c < 0x7f) ? c : '?');
        }
    }
    out[i] = '\0';
    atomic_store_explicit(&m->paused[r], on ? 1 : 0, memory_order_relaxed);
    pthread_mutex_unlock(&m->pause_lock);
}

int clw_metrics_label_escape(char *dst, size_t dstlen, const char *src)
{
    size_t o = 0;
    size_t need;
    const char *esc;
    int rc = 0;

    if (dstlen == 0)
        return -1;
    for (; *src; src++) {
        esc = NULL;
        if (*src == '\\')
            esc = "\\\\";
        else if (*src == '"')
            esc = "\\\"";
        else if (*src == '\n')
            esc = "\\n";
        need = esc ? 2 : 1;
        if (o + need >= dstlen) {
            rc = -1; /* cut before the character, never inside an escape */
            break;
        }
        if (esc) {
            dst[o++] = esc[0];
            dst[o++] = esc[1];
        } else {
            dst[o++] = *src;
        }
    }
    dst[o] = '\0';
    return rc;
}

static void metrics_family(struct clw_buf *b, const char *name, const char *type, const char *help)
{
    clw_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics_render_histogram(struct clw_buf *b, const char *name, const char *help,
                                     struct metrics_histogram *h)
{
    size_t i;
    unsigned long long cum = 0;
    unsigned long long sum_us = atomic_load_explicit(&h->sum_us, memory_order_relaxed);

    metrics_family(b, name, "histogram", help);
    for (i = 0; i < METRICS_BOUNDS; i++) {
        cum += metrics_get(&h->buckets[i]);
        clw_buf_printf(b, "%s_bucket{le=\"%s\"} %llu\n", name, metrics_bound_names[i], cum);
    }
    cum += metrics_get(&h->buckets[METRICS_BOUNDS]);
    clw_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, cum);
    clw_buf_printf(b, "%s_sum %llu.%06llu\n", name, sum_us / 1000000ULL, sum_us % 1000000ULL);
    clw_buf_printf(b, "%s_count %llu\n", name, cum);
}

static void metrics_render_requests(struct clw_buf *b, struct clw_metrics *m)
{
    size_t a;
    size_t s;
    size_t e;
    unsigned long long v;
    int expected;

    metrics_family(b, "classiclink_requests_total", "counter",
                   "Final outcomes acknowledged by Kafka, by action, status and error class.");
    for (a = 0; a < METRICS_ACTIONS; a++) {
        for (s = 0; s < METRICS_STATUSES; s++) {
            for (e = 0; e < METRICS_ECLASSES; e++) {
                v = metrics_get(&m->requests[a][s][e]);
                /* The combinations that can happen are always shown (zero included) so rates
                 * work from the first scrape; odd ones only once they occurred. */
                expected = s == METRICS_STATUS_SUCCEEDED
                               ? e == METRICS_ECLASS_NONE
                               : (e != METRICS_ECLASS_NONE && e != METRICS_ECLASS_OTHER);
                if (!expected && v == 0)
                    continue;
                clw_buf_printf(b,
                               "classiclink_requests_total{action=\"%s\",status=\"%s\","
                               "error_class=\"%s\"} %llu\n",
                               metrics_action_names[a], metrics_status_names[s],
                               metrics_eclass_names[e], v);
            }
        }
    }
}

static void metrics_render_api_calls(struct clw_buf *b, struct clw_metrics *m)
{
    size_t a;
    size_t c;
    size_t k;
    unsigned long long v;
    char code[32];

    metrics_family(b, "classiclink_api_calls_total", "counter",
                   "Signed API calls by action, result class and API code (http_<status> or "
                   "none when the API gave no code, other for unlisted codes).");
    for (a = 0; a < METRICS_API_ACTIONS; a++) {
        for (c = 0; c < METRICS_CLASSES; c++) {
            for (k = 0; k < METRICS_CODES; k++) {
                v = metrics_get(&m->api_calls[a][c][k]);
                if (v == 0)
                    continue;
                metrics_code_name(k, code, sizeof(code));
                clw_buf_printf(b,
                               "classiclink_api_calls_total{action=\"%s\",class=\"%s\","
                               "code=\"%s\"} %llu\n",
                               metrics_api_action_names[a], metrics_class_names[c], code, v);
            }
        }
    }
}

static void metrics_render_call_requests(struct clw_buf *b, struct clw_metrics *m)
{
    static const char name[] = "classiclink_call_requests";
    size_t i;
    unsigned long long cum = 0;

    metrics_family(b, name, "histogram",
                   "Requests carried by one Attach/Detach call (1 when a request ran alone).");
    for (i = 0; i < METRICS_CALL_BOUNDS; i++) {
        cum += metrics_get(&m->call_requests[i]);
        clw_buf_printf(b, "%s_bucket{le=\"%u\"} %llu\n", name, metrics_call_bounds[i], cum);
    }
    cum += metrics_get(&m->call_requests[METRICS_CALL_BOUNDS]);
    clw_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, cum);
    clw_buf_printf(b, "%s_sum %llu\n", name, metrics_get(&m->call_requests_sum));
    clw_buf_printf(b, "%s_count %llu\n", name, cum);
}

static void metrics_render_partitions(struct clw_buf *b, struct clw_metrics *m)
{
    size_t i;
    const struct metrics_partition *p;

    pthread_mutex_lock(&m->part_lock);
    metrics_family(b, "classiclink_pending_records", "gauge",
                   "Records taken from the partition and not yet committed.");
    for (i = 0; i < m->n_parts; i++) {
        p = &m->parts[i];
        clw_buf_printf(b, "classiclink_pending_records{partition=\"%" PRId32 "\"} %ld\n",
                       p->partition, p->pending);
    }
    metrics_family(b, "classiclink_consumer_lag", "gauge",
                   "Records behind the partition's high watermark (absent while unknown).");
    for (i = 0; i < m->n_parts; i++) {
        p = &m->parts[i];
        if (p->lag >= 0)
            clw_buf_printf(b, "classiclink_consumer_lag{partition=\"%" PRId32 "\"} %ld\n",
                           p->partition, p->lag);
    }
    metrics_family(b, "classiclink_committed_offset", "gauge",
                   "Last offset stored for commit on the partition (absent while none).");
    for (i = 0; i < m->n_parts; i++) {
        p = &m->parts[i];
        if (p->committed >= 0)
            clw_buf_printf(b, "classiclink_committed_offset{partition=\"%" PRId32 "\"} %ld\n",
                           p->partition, p->committed);
    }
    pthread_mutex_unlock(&m->part_lock);
}

/* The rate limiter's families, one line per series (gauges once its state is known), and the
 * configured quota per action. */
static void metrics_render_ratelimit(struct clw_buf *b, struct clw_metrics *m)
{
    static const struct {
        const char *name;
        const char *type;
        const char *help;
    } fam[] = {
        {"classiclink_ratelimit_rate", "gauge",
         "API calls per second the rate limiter allows now, by action and region."},
        {"classiclink_ratelimit_share", "gauge",
         "The share of api.quota this worker aims for (its partitions of the requests topic)."},
        {"classiclink_ratelimit_admitted_total", "counter",
         "API answers the quota admitted (not throttled), by action and region."},
        {"classiclink_ratelimit_throttled_total", "counter",
         "Throttling API answers (over the quota), by action and region."},
    };
    size_t n = atomic_load_explicit(&m->n_rl, memory_order_acquire);
    double quota = metrics_double(&m->api_quota_bits);
    char region[2 * METRICS_REGION_MAX + 1];

    for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
        metrics_family(b, fam[f].name, fam[f].type, fam[f].help);
        for (size_t i = 0; i < n; i++) {
            struct metrics_rl_series *sr = &m->rl[i];

            if (f < 2 && !atomic_load_explicit(&sr->has_state, memory_order_acquire))
                continue;
            clw_metrics_label_escape(region, sizeof(region), sr->region);
            clw_buf_printf(b, "%s{action=\"%s\",region=\"%s\"} ", fam[f].name,
                           metrics_api_action_names[sr->action], region);
            if (f == 0)
                clw_buf_printf(b, "%.6g\n", metrics_double(&sr->rate_bits));
            else if (f == 1)
                clw_buf_printf(b, "%.6g\n", metrics_double(&sr->share_bits));
            else
                clw_buf_printf(b, "%llu\n", metrics_get(f == 2 ? &sr->admitted : &sr->throttled));
        }
    }
    metrics_family(b, "classiclink_api_quota", "gauge",
                   "api.quota: API calls per second the account admits per action, for every "
                   "worker sharing it (absent while unknown).");
    for (size_t a = 0; quota > 0 && a < METRICS_API_ACTION_OTHER; a++)
        clw_buf_printf(b, "classiclink_api_quota{action=\"%s\"} %.6g\n",
                       metrics_api_action_names[a], quota);
}

char *clw_metrics_render(struct clw_metrics *m, size_t *len)
{
    struct clw_buf b = {0};
    char version[128];
    int r;

    clw_metrics_label_escape(version, sizeof(version), CLW_VERSION);
    metrics_family(&b, "classiclink_build_info", "gauge",
                   "Always 1; the version label names the running build.");
    clw_buf_printf(&b, "classiclink_build_info{version=\"%s\"} 1\n", version);
    metrics_family(&b, "classiclink_up", "gauge", "Always 1 while the worker serves metrics.");
    clw_buf_puts(&b, "classiclink_up 1\n");

    metrics_family(&b, "classiclink_records_consumed_total", "counter",
                   "Records taken from the requests topic.");
    clw_buf_printf(&b, "classiclink_records_consumed_total %llu\n", metrics_get(&m->consumed));
    metrics_render_requests(&b, m);
    metrics_render_histogram(&b, "classiclink_request_duration_seconds",
                             "Time from receipt of a request to acknowledgement of its outcome.",
                             &m->request_duration);
    metrics_render_api_calls(&b, m);
    metrics_render_histogram(&b, "classiclink_api_call_duration_seconds",
                             "Duration of one signed API call.", &m->api_duration);
    metrics_render_call_requests(&b, m);
    metrics_family(&b, "classiclink_retries_total", "counter",
                   "Requests scheduled for another attempt after a transient answer.");
    clw_buf_printf(&b, "classiclink_retries_total %llu\n", metrics_get(&m->retries));
    metrics_family(&b, "classiclink_dead_letters_total", "counter",
                   "Invalid requests whose dead letter was acknowledged with the outcome.");
    clw_buf_printf(&b, "classiclink_dead_letters_total %llu\n", metrics_get(&m->dead_letters));
    metrics_family(&b, "classiclink_credentials_expiry_timestamp_seconds", "gauge",
                   "Unix time at which the temporary credentials in use expire; 0 for "
                   "long-term keys.");
    clw_buf_printf(&b, "classiclink_credentials_expiry_timestamp_seconds %lld\n",
                   atomic_load_explicit(&m->creds_expiry_ms, memory_order_relaxed) / 1000);
    metrics_family(&b, "classiclink_commit_failures_total", "counter",
                   "Hand-overs (revocation, shutdown) whose commit did not reach the group "
                   "coordinator: the next owner redoes the offsets logged.");
    clw_buf_printf(&b, "classiclink_commit_failures_total %llu\n",
                   metrics_get(&m->commit_failures));
    metrics_family(&b, "classiclink_inflight_calls", "gauge", "API calls in flight.");
    clw_buf_printf(&b, "classiclink_inflight_calls %ld\n",
                   atomic_load_explicit(&m->inflight, memory_order_relaxed));
    metrics_family(&b, "classiclink_producer_queue_records", "gauge",
                   "Outcome records waiting in the producer queue.");
    clw_buf_printf(&b, "classiclink_producer_queue_records %ld\n",
                   atomic_load_explicit(&m->producer_queue, memory_order_relaxed));
    metrics_family(&b, "classiclink_assigned_partitions", "gauge",
                   "Requests-topic partitions assigned to this worker.");
    clw_buf_printf(&b, "classiclink_assigned_partitions %d\n",
                   atomic_load_explicit(&m->assigned, memory_order_relaxed));
    metrics_render_partitions(&b, m);
    metrics_render_ratelimit(&b, m);

    metrics_family(&b, "classiclink_paused", "gauge",
                   "1 while the worker takes no work for this reason.");
    for (r = 0; r < CLW_PAUSE_REASONS; r++)
        clw_buf_printf(&b, "classiclink_paused{reason=\"%s\"} %d\n",
                       clw_pause_reason_name((enum clw_pause_reason)r),
                       atomic_load_explicit(&m->paused[r], memory_order_relaxed));
    return clw_buf_take(&b, len);
}

int clw_metrics_healthy(struct clw_metrics *m, int64_t now_mono_ms)
{
    long long last;

    if (!atomic_load_explicit(&m->heartbeat_set, memory_order_acquire))
        return 0;
    last = atomic_load_explicit(&m->heartbeat_ms, memory_order_relaxed);
    /* A heartbeat "from the future" (another thread's clock read raced ours) counts as now. */
    return (long long)now_mono_ms - last <= METRICS_HEALTHY_MS;
}

/* Appends s as a JSON string; s is printable ASCII (pause details are sanitized on entry). */
static void metrics_json_string(struct clw_buf *b, const char *s)
{
    clw_buf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            clw_buf_putc(b, '\\');
        if ((unsigned char)*s < 0x20)
            clw_buf_printf(b, "\\u%04x", (unsigned)(unsigned char)*s);
        else
            clw_buf_putc(b, *s);
    }
    clw_buf_putc(b, '"');
}

int clw_metrics_ready(struct clw_metrics *m, char **body)
{
    struct clw_buf b = {0};
    /* At most one reason per input: group, producer and each pause reason. */
    char reasons[2 + CLW_PAUSE_REASONS][METRICS_DETAIL_MAX + 64];
    int n = 0;
    int i;
    int r;

    if (!atomic_load_explicit(&m->joined, memory_order_relaxed))
        snprintf(reasons[n++], sizeof(reasons[0]), "consumer group not joined");
    if (!atomic_load_explicit(&m->producer_ok, memory_order_relaxed))
        snprintf(reasons[n++], sizeof(reasons[0]), "producer not connected");
    pthread_mutex_lock(&m->pause_lock);
    for (r = 0; r < CLW_PAUSE_REASONS; r++) {
        if (!atomic_load_explicit(&m->paused[r], memory_order_relaxed))
            continue;
        if (m->detail[r][0])
            snprintf(reasons[n++], sizeof(reasons[0]), "paused: %s: %s",
                     clw_pause_reason_name((enum clw_pause_reason)r), m->detail[r]);
        else
            snprintf(reasons[n++], sizeof(reasons[0]), "paused: %s",
                     clw_pause_reason_name((enum clw_pause_reason)r));
    }
    pthread_mutex_unlock(&m->pause_lock);

    clw_buf_printf(&b, "{\"ready\":%s,\"reasons\":[", n ? "false" : "true");
    for (i = 0; i < n; i++) {
        if (i)
            clw_buf_putc(&b, ',');
        metrics_json_string(&b, reasons[i]);
    }
    clw_buf_printf(&b, "],\"partitions\":%d}",
                   atomic_load_explicit(&m->assigned, memory_order_relaxed));
    *body = clw_buf_take(&b, NULL);
    return n == 0;
}
