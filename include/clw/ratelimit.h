/* Quota-aware rate limiting: a paced token bucket per key (SecretId|region|action) whose rate
 * seeks this worker's part of an account quota that a fleet of workers (and strangers) share.
 * Pure and single-threaded: the caller passes the monotonic time and a random seed. The
 * limiter owns its keys' state; keys are copied. ALGORITHM: see below. */
#ifndef CLW_RATELIMIT_H
#define CLW_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

struct clw_ratelimit;

struct clw_ratelimit_opts {
    double rate;     /* most calls per second per key (api.rate_limit), a hard cap; 0: none */
    double quota;    /* calls per second the account's quota admits per action, for the whole
                        fleet (api.quota); 0: unknown, a key is then not limited until its first
                        throttling answer */
    double min_rate; /* the rate never shrinks below this (> 0) */
    double burst_s;  /* bucket size in seconds of the current rate (>= 0); at least 1 call */
    uint64_t seed;   /* draws hold times (see below): random, each process its own */
};

/* Per-key figures for metrics. */
struct clw_ratelimit_stats {
    double rate;  /* calls per second the limiter allows now; 0 when not limited */
    double share; /* the fraction of the quota this worker aims for (clw_ratelimit_set_share) */
    uint64_t admitted;  /* answers the API admitted (not throttled) since the key was made */
    uint64_t throttled; /* throttling answers since the key was made */
};

/*
 * ALGORITHM. Every worker of a fleet runs its own limiter; they share the account's quota Q
 * (api.quota) without talking to each other. Each key has a share s (the worker's assigned
 * partitions over the topic's partitions, set by the scheduler; 1 until set) and a ceiling c,
 * where it was last throttled (at first s x Q). Its rate r follows a curve in time:
 *
 *   start    at 1/2 of s x Q for 1 s: shares that add up to 1 mean no burst, and a client that
 *            started less than a second ago learns nothing from a sliding second of quota;
 *   recover  concave (cubic) in 2 s from where it started to 97 % of c: fast while far below,
 *            slow near the ceiling, so recovery takes the same time at any rate;
 *   hold     at 97 % of c for 2 to 6 s, drawn at random per cut (opts.seed): members cut by
 *            the same excess fall out of step instead of probing together again;
 *   probe    while calls wait for tokens: + 0.05 x s x Q x t^3 (t in seconds) up to s x Q, five
 *            times slower above it, up to the caps (Q and api.rate_limit). Equal steps for equal
 *            shares (additive increase): members below their share catch up, and capacity freed
 *            by a member that left or a stranger that stopped is found within seconds;
 *   cut      a throttling answer to a call sent after the last cut, at least 250 ms after it,
 *            sets c to r, lowered to what the API admitted in the last second and, above s x Q,
 *            to s x Q (others want their share back) - by at most 20 % - and r to 0.8 x c.
 *            Throttles of calls sent before the cut answer the same excess: counted once, at
 *            any latency.
 *
 * The state is kept per unit of share, so a rebalance that changes s scales rate and ceiling at
 * once: the members of a fleet move to their new shares without a throttle in between. With Q
 * unknown (0) a key is not limited until its first throttling answer, which sets c to what the
 * API admitted in the last second; probing steps are then 0.05 x c x t^3.
 * Reasoning and simulated numbers: docs/design.md, "Rate limiting".
 */

/* Returns a limiter, or NULL for invalid options (NaN, infinite or negative values, min_rate
 * not > 0) or on allocation failure. */
struct clw_ratelimit *clw_ratelimit_new(const struct clw_ratelimit_opts *opts);
void clw_ratelimit_free(struct clw_ratelimit *rl);

/* Takes a token for key at now_ms. Returns 0 when the call may start now, else the number of
 * milliseconds until a token will be available (nothing taken). */
int64_t clw_ratelimit_acquire(struct clw_ratelimit *rl, const char *key, int64_t now_ms);

/* The API answered, at now_ms, a call for key that was sent at sent_ms. throttled: it was a
 * throttling answer (the rate is cut unless the call was sent before the last cut; the bucket
 * empties; retry_after_ms >= 0 holds the key until now_ms + retry_after_ms). Otherwise the call
 * counts as admitted by the API's quota. Answers that never reached the API (transport errors)
 * are not reported. */
void clw_ratelimit_answered(struct clw_ratelimit *rl, const char *key, int64_t sent_ms,
                            int64_t now_ms, int throttled, int64_t retry_after_ms);

/* Sets the fraction of the quota this worker aims for, in [0, 1] (NaN or out of range: nothing
 * changes): for key, or with key NULL for every key, present and future. A rate learnt from
 * throttles scales with the share. */
void clw_ratelimit_set_share(struct clw_ratelimit *rl, const char *key, double share,
                             int64_t now_ms);

/* The current rate of key in calls per second; 0 when the key is not limited. */
double clw_ratelimit_rate(const struct clw_ratelimit *rl, const char *key, int64_t now_ms);

/* Fills *st for key as of now_ms (an unseen key: its starting rate, no calls). */
void clw_ratelimit_stats(const struct clw_ratelimit *rl, const char *key, int64_t now_ms,
                         struct clw_ratelimit_stats *st);

/* Calls fn for every key the limiter holds (in no particular order); fn must not change rl. */
void clw_ratelimit_foreach(const struct clw_ratelimit *rl, int64_t now_ms,
                           void (*fn)(const char *key, const struct clw_ratelimit_stats *st,
                                      void *arg),
                           void *arg);

#endif
