/* Quota-aware rate limiting: a token bucket per key (SecretId|region|action) whose rate shrinks
 * on throttling answers and recovers slowly (AIMD), with Retry-After as a hard hold. Pure and
 * single-threaded: the caller passes the monotonic time. */
#ifndef CLW_RATELIMIT_H
#define CLW_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

struct clw_ratelimit;

struct clw_ratelimit_opts {
    double rate;         /* configured calls per second per key; <= 0 disables limiting */
    double burst;        /* bucket size in calls (>= 1) */
    double min_rate;     /* the rate never shrinks below this (> 0) */
    double decrease;     /* multiplicative factor on a throttle, e.g. 0.5 */
    double increase;     /* additive calls/s regained per second without throttling, e.g. 1 */
    int64_t cooldown_ms; /* throttles closer together than this count once (e.g. 1000) */
};

struct clw_ratelimit *clw_ratelimit_new(const struct clw_ratelimit_opts *opts);
void clw_ratelimit_free(struct clw_ratelimit *rl);

/* Takes a token for key at now_ms. Returns 0 when the call may start now, else the number of
 * milliseconds until a token will be available (nothing taken). */
int64_t clw_ratelimit_acquire(struct clw_ratelimit *rl, const char *key, int64_t now_ms);

/* A call for key was answered with a throttling signal: shrink the rate (once per cooldown) and,
 * when retry_after_ms >= 0, hold the key until now_ms + retry_after_ms. */
void clw_ratelimit_throttled(struct clw_ratelimit *rl, const char *key, int64_t now_ms,
                             int64_t retry_after_ms);

/* The current rate of key in calls per second (the configured one for an unseen key). */
double clw_ratelimit_rate(const struct clw_ratelimit *rl, const char *key, int64_t now_ms);

#endif
