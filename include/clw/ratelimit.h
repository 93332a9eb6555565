/* Quota-aware rate limiting: a token bucket per key (SecretId|region|action) whose rate follows
 * what the API admits. A throttling answer sets the rate just under the calls the API admitted
 * over the last second; while calls wait for the limiter the rate grows slowly, until the next
 * throttle (AIMD that settles under the quota instead of halving). Retry-After is a hard hold.
 * Pure and single-threaded: the caller passes the monotonic time. */
#ifndef CLW_RATELIMIT_H
#define CLW_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

struct clw_ratelimit;

struct clw_ratelimit_opts {
    double rate;         /* most calls per second per key; 0: none configured, a key is not
                            limited until its first throttling answer */
    double min_rate;     /* the rate never shrinks below this (> 0) */
    double decrease;     /* on a throttle the rate becomes decrease x min(rate, calls the API
                            admitted in the last second), in (0, 1] */
    double increase;     /* while calls wait for the limiter the rate grows by this fraction of
                            itself per second (>= 0), e.g. 0.02 */
    double burst_s;      /* bucket size in seconds of the current rate (>= 0); at least 1 call */
    int64_t cooldown_ms; /* throttles closer together than this count once (>= 0) */
};

/* Returns a limiter, or NULL for invalid options or on allocation failure. A negative rate is
 * treated as 0. */
struct clw_ratelimit *clw_ratelimit_new(const struct clw_ratelimit_opts *opts);
void clw_ratelimit_free(struct clw_ratelimit *rl);

/* Takes a token for key at now_ms. Returns 0 when the call may start now, else the number of
 * milliseconds until a token will be available (nothing taken). */
int64_t clw_ratelimit_acquire(struct clw_ratelimit *rl, const char *key, int64_t now_ms);

/* The API answered a call made for key at now_ms. throttled: it was a throttling answer (the
 * rate shrinks, once per cooldown; the bucket empties; retry_after_ms >= 0 holds the key until
 * now_ms + retry_after_ms). Otherwise the call counts as admitted by the API's quota: right
 * after a throttle, admitted calls may raise an estimate that was made before all answers of a
 * burst were in. Answers that never reached the API (transport errors) are not reported. */
void clw_ratelimit_answered(struct clw_ratelimit *rl, const char *key, int64_t now_ms,
                            int throttled, int64_t retry_after_ms);

/* The current rate of key in calls per second; 0 when the key is not limited. */
double clw_ratelimit_rate(const struct clw_ratelimit *rl, const char *key, int64_t now_ms);

#endif
