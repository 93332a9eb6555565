/* Metrics and health state: counters, gauges and histograms updated by the event loop and
 * rendered as Prometheus text by the listener thread (atomics, no locks on the update path). */
#ifndef CLW_METRICS_H
#define CLW_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "clw/request.h" /* enum clw_action */

struct clw_metrics;

/* Reasons for which the worker stops taking work; each is a 0/1 gauge
 * classiclink_paused{reason="..."} and makes /readyz answer 503. */
enum clw_pause_reason {
    CLW_PAUSE_WORKER_FAULT = 0,
    CLW_PAUSE_CIRCUIT_OPEN,
    CLW_PAUSE_PUBLISH_ERROR,
    CLW_PAUSE_CREDENTIALS, /* temporary credentials expired and cannot be refreshed */
    CLW_PAUSE_REASONS
};
const char *clw_pause_reason_name(enum clw_pause_reason r); /* "worker_fault", ... */

struct clw_metrics *clw_metrics_new(void);
void clw_metrics_free(struct clw_metrics *m);

/* A record was taken from the requests topic. */
void clw_metrics_consumed(struct clw_metrics *m);
/* A final outcome was acknowledged by Kafka. error_class NULL on success. seconds: from
 * receipt to acknowledgement (classiclink_request_duration_seconds). */
void clw_metrics_request_done(struct clw_metrics *m, int has_action, enum clw_action action,
                              int succeeded, const char *error_class, double seconds);
/* One signed API call finished. action: its wire action ("AttachClassicLinkVpc",
 * "DescribeVpcClassicLink", ...); cls: clw_class_name() of its class; code: the API's numeric
 * code, or -1 when there was none (transport failure, see http_status). Labels keep bounded
 * cardinality: unknown actions and codes are folded into "other". */
void clw_metrics_api_call(struct clw_metrics *m, const char *action, const char *cls, long code,
                          long http_status, double seconds);
/* An Attach/Detach call started carrying this many requests (classiclink_call_requests). */
void clw_metrics_call_requests(struct clw_metrics *m, size_t requests);
/* A request was scheduled for another attempt after a transient answer. */
void clw_metrics_retry(struct clw_metrics *m);
/* A request's dead letter was acknowledged with its outcome (classiclink_dead_letters_total). */
void clw_metrics_dead_letter(struct clw_metrics *m);
/* When the temporary credentials in use expire, wall-clock ms; negative for long-term keys (or
 * none yet): classiclink_credentials_expiry_timestamp_seconds then reads 0. */
void clw_metrics_set_credentials_expiry(struct clw_metrics *m, int64_t wall_ms);
/* A hand-over's commit (revocation, shutdown) did not reach the group coordinator. */
void clw_metrics_commit_failed(struct clw_metrics *m);

void clw_metrics_set_inflight(struct clw_metrics *m, long calls);
void clw_metrics_set_producer_queue(struct clw_metrics *m, long records);
/* Per requests-topic partition: records taken but not committed, consumer lag (-1 unknown),
 * last stored offset (-1 none). */
void clw_metrics_set_partition(struct clw_metrics *m, int32_t partition, long pending, long lag,
                               long committed);
void clw_metrics_forget_partition(struct clw_metrics *m, int32_t partition);

/* The rate limiter, one series per (action, region) of its keys: a worker's SecretIds share a
 * series, and no label carries a SecretId. action: the wire action (unknown ones fold into
 * "other"); region: as signed (past CLW_METRICS_RATELIMIT_SERIES series, or longer than 32
 * bytes, "other"). Called from the loop thread only (the listener reads without locks). */
#define CLW_METRICS_RATELIMIT_SERIES 64
/* The API answered a call the limiter hears of: admitted by the quota, or throttled
 * (classiclink_ratelimit_admitted_total, classiclink_ratelimit_throttled_total). */
void clw_metrics_ratelimit_answer(struct clw_metrics *m, const char *action, const char *region,
                                  int throttled);
/* The limiter's state (clw_ratelimit_stats): the calls per second it allows now
 * (classiclink_ratelimit_rate) and the share of api.quota it aims for
 * (classiclink_ratelimit_share). */
void clw_metrics_ratelimit_state(struct clw_metrics *m, const char *action, const char *region,
                                 double rate, double share);
/* api.quota, calls per second per action for the whole account: classiclink_api_quota{action}
 * for every action the worker calls; 0 (unknown): no series. */
void clw_metrics_set_api_quota(struct clw_metrics *m, double quota);

/* Health inputs. */
void clw_metrics_loop_alive(struct clw_metrics *m, int64_t mono_ms); /* each loop turn */
void clw_metrics_set_group(struct clw_metrics *m, int joined, int assigned_partitions);
void clw_metrics_set_producer_ok(struct clw_metrics *m, int ok);
void clw_metrics_set_paused(struct clw_metrics *m, enum clw_pause_reason r, int on,
                            const char *detail /* copied, may be NULL; no secrets */);

/* Prometheus text exposition (version 0.0.4). Returns malloc'd text, NULL on failure.
 * Thread-safe against the update functions. */
char *clw_metrics_render(struct clw_metrics *m, size_t *len);
/* Writes src into dst as a Prometheus label value (backslash, double quote and newline
 * escaped). Returns 0, or -1 when it did not fit: dst then holds a shorter value, never cut
 * inside an escape. */
int clw_metrics_label_escape(char *dst, size_t dstlen, const char *src);

/* /healthz: 1 when the loop ran within the last 10 s of now_mono_ms. */
int clw_metrics_healthy(struct clw_metrics *m, int64_t now_mono_ms);
/* /readyz: returns 1 when ready; *body gets a malloc'd JSON object naming why (or why not). */
int clw_metrics_ready(struct clw_metrics *m, char **body);

#endif
