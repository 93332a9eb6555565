/* Quota-aware rate limiting: AIMD token buckets per key in a chained hash table, O(1) per call. */
#include "clw/ratelimit.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RL_MIN_BUCKETS 16
/* Keys at rest are swept out once the table holds this many; see rl_sweep. */
#define RL_SWEEP_MIN 1024
/* Floating-point slack when a refill lands exactly on a whole token. */
#define RL_EPSILON 1e-9

/* The state of one key. An entry at rest (full bucket, full rate, no hold, cooldown over)
 * behaves exactly like an unseen key, which is what lets rl_sweep drop it. */
struct rl_entry {
    struct rl_entry *chain;
    uint64_t hash;
    double rate;           /* current calls per second */
    double tokens;         /* 0..burst */
    int64_t updated_ms;    /* tokens and rate are as of this time */
    int64_t throttle_ms;   /* the last throttle that shrank the rate */
    int throttled;         /* throttle_ms is set */
    int64_t hold_until_ms; /* Retry-After: no call before this */
    char key[];
};

struct clw_ratelimit {
    struct clw_ratelimit_opts opts; /* min_rate clamped to rate */
    struct rl_entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
    size_t sweep_at; /* sweep when count reaches this */
};

/* FNV-1a with a 64-bit finaliser so the bucket index (low bits) depends on every byte. */
static uint64_t rl_hash(const char *s)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);

    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(0x100000001b3);
    }
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    return h;
}

static struct rl_entry *rl_find(const struct clw_ratelimit *rl, const char *key, uint64_t hash)
{
    struct rl_entry *e = rl->buckets[hash & (rl->nbuckets - 1)];

    while (e != NULL && (e->hash != hash || strcmp(e->key, key) != 0))
        e = e->chain;
    return e;
}

/* Rehashes into nbuckets buckets; on allocation failure the table stays (chains get longer). */
static void rl_resize(struct clw_ratelimit *rl, size_t nbuckets)
{
    struct rl_entry **nb = calloc(nbuckets, sizeof(*nb));
    size_t i;

    if (nb == NULL)
        return;
    for (i = 0; i < rl->nbuckets; i++) {
        struct rl_entry *e = rl->buckets[i];

        while (e != NULL) {
            struct rl_entry *next = e->chain;
            size_t b = e->hash & (nbuckets - 1);

            e->chain = nb[b];
            nb[b] = e;
            e = next;
        }
    }
    free(rl->buckets);
    rl->buckets = nb;
    rl->nbuckets = nbuckets;
}

/* Calls gained from t0 to t0 + dt seconds while the rate grows from r0 by inc per second up to
 * cap: the integral of the rate, so the refill does not depend on how often we are asked. */
static double rl_gain(double r0, double inc, double cap, double dt)
{
    double t_cap;

    if (r0 >= cap || inc <= 0)
        return r0 * dt;
    t_cap = (cap - r0) / inc;
    if (t_cap >= dt)
        return r0 * dt + inc * dt * dt / 2;
    return r0 * t_cap + inc * t_cap * t_cap / 2 + cap * (dt - t_cap);
}

/* Rate and tokens of e as of now_ms, without changing e. A clock that went back counts as no
 * time passed. */
static void rl_project(const struct clw_ratelimit *rl, const struct rl_entry *e, int64_t now_ms,
                       double *rate, double *tokens)
{
    const struct clw_ratelimit_opts *o = &rl->opts;
    double dt = now_ms > e->updated_ms ? (double)(now_ms - e->updated_ms) / 1000.0 : 0.0;
    double r = e->rate;
    double t = e->tokens + rl_gain(r, o->increase, o->rate, dt);

    if (r < o->rate)
        r = fmin(o->rate, r + o->increase * dt);
    *rate = r;
    *tokens = fmin(o->burst, t);
}

static void rl_update(const struct clw_ratelimit *rl, struct rl_entry *e, int64_t now_ms)
{
    rl_project(rl, e, now_ms, &e->rate, &e->tokens);
    if (now_ms > e->updated_ms)
        e->updated_ms = now_ms;
}

static int rl_at_rest(const struct clw_ratelimit *rl, const struct rl_entry *e, int64_t now_ms)
{
    double rate;
    double tokens;

    rl_project(rl, e, now_ms, &rate, &tokens);
    return rate >= rl->opts.rate && tokens >= rl->opts.burst && e->hold_until_ms <= now_ms &&
           (!e->throttled || now_ms - e->throttle_ms >= rl->opts.cooldown_ms);
}

/* Drops every entry at rest, so keys seen once (a region from a request, say) cannot grow the
 * table without bound. Runs when the table doubled since the last sweep: amortised O(1). */
static void rl_sweep(struct clw_ratelimit *rl, int64_t now_ms)
{
    size_t i;

    for (i = 0; i < rl->nbuckets; i++) {
        struct rl_entry **pp = &rl->buckets[i];

        while (*pp != NULL) {
            struct rl_entry *e = *pp;

            if (rl_at_rest(rl, e, now_ms)) {
                *pp = e->chain;
                free(e);
                rl->count--;
            } else {
                pp = &e->chain;
            }
        }
    }
    rl->sweep_at = rl->count * 2 > RL_SWEEP_MIN ? rl->count * 2 : RL_SWEEP_MIN;
}

/* The entry of key, created as an unseen key (full bucket, configured rate) when absent; NULL
 * on allocation failure. */
static struct rl_entry *rl_get(struct clw_ratelimit *rl, const char *key, int64_t now_ms)
{
    uint64_t hash = rl_hash(key);
    struct rl_entry *e = rl_find(rl, key, hash);
    size_t len;
    size_t b;

    if (e != NULL)
        return e;
    if (rl->count >= rl->sweep_at)
        rl_sweep(rl, now_ms);
    len = strlen(key);
    if (len < SIZE_MAX - sizeof(*e))
        e = malloc(sizeof(*e) + len + 1);
    if (e == NULL)
        return NULL;
    e->hash = hash;
    e->rate = rl->opts.rate;
    e->tokens = rl->opts.burst;
    e->updated_ms = now_ms;
    e->throttle_ms = 0;
    e->throttled = 0;
    e->hold_until_ms = INT64_MIN;
    memcpy(e->key, key, len + 1);
    if (rl->count >= rl->nbuckets && rl->nbuckets <= SIZE_MAX / 2 / sizeof(*rl->buckets))
        rl_resize(rl, rl->nbuckets * 2);
    b = hash & (rl->nbuckets - 1);
    e->chain = rl->buckets[b];
    rl->buckets[b] = e;
    rl->count++;
    return e;
}

/* Options a limiter can work with: finite, burst >= 1, min_rate > 0, 0 < decrease <= 1,
 * increase >= 0, cooldown >= 0. A disabled limiter (rate <= 0) ignores the rest. */
static int rl_opts_ok(const struct clw_ratelimit_opts *o)
{
    if (isnan(o->rate))
        return 0;
    if (o->rate <= 0)
        return 1;
    return isfinite(o->rate) && isfinite(o->burst) && o->burst >= 1 && isfinite(o->min_rate) &&
           o->min_rate > 0 && isfinite(o->decrease) && o->decrease > 0 && o->decrease <= 1 &&
           isfinite(o->increase) && o->increase >= 0 && o->cooldown_ms >= 0;
}

struct clw_ratelimit *clw_ratelimit_new(const struct clw_ratelimit_opts *opts)
{
    struct clw_ratelimit *rl = NULL;

    if (opts == NULL || !rl_opts_ok(opts))
        goto fail;
    rl = calloc(1, sizeof(*rl));
    if (rl == NULL)
        goto fail;
    rl->opts = *opts;
    if (rl->opts.rate > 0 && rl->opts.min_rate > rl->opts.rate)
        rl->opts.min_rate = rl->opts.rate;
    rl->buckets = calloc(RL_MIN_BUCKETS, sizeof(*rl->buckets));
    if (rl->buckets == NULL)
        goto fail;
    rl->nbuckets = RL_MIN_BUCKETS;
    rl->sweep_at = RL_SWEEP_MIN;
    return rl;
fail:
    free(rl);
    return NULL;
}

void clw_ratelimit_free(struct clw_ratelimit *rl)
{
    size_t i;

    if (rl == NULL)
        return;
    for (i = 0; i < rl->nbuckets; i++) {
        struct rl_entry *e = rl->buckets[i];

        while (e != NULL) {
            struct rl_entry *next = e->chain;

            free(e);
            e = next;
        }
    }
    free(rl->buckets);
    free(rl);
}

int64_t clw_ratelimit_acquire(struct clw_ratelimit *rl, const char *key, int64_t now_ms)
{
    struct rl_entry *e;
    double wait;

    if (rl == NULL || key == NULL || rl->opts.rate <= 0)
        return 0;
    e = rl_get(rl, key, now_ms);
    if (e == NULL)
        return 0; /* out of memory: rather call than stall every request */
    rl_update(rl, e, now_ms);
    if (e->hold_until_ms > now_ms)
        return e->hold_until_ms - now_ms;
    if (e->tokens >= 1 - RL_EPSILON) {
        e->tokens = e->tokens >= 1 ? e->tokens - 1 : 0;
        return 0;
    }
    /* At the current rate; the rate may grow meanwhile, so this never waits too little. */
    wait = ceil((1 - e->tokens) * 1000.0 / e->rate);
    return wait >= 1 ? (int64_t)wait : 1;
}

void clw_ratelimit_throttled(struct clw_ratelimit *rl, const char *key, int64_t now_ms,
                             int64_t retry_after_ms)
{
    struct rl_entry *e;

    if (rl == NULL || key == NULL || rl->opts.rate <= 0)
        return;
    e = rl_get(rl, key, now_ms);
    if (e == NULL)
        return;
    rl_update(rl, e, now_ms);
    /* Answers to calls sent before the last decrease arrive in a bunch: count them once. */
    if (!e->throttled || now_ms - e->throttle_ms >= rl->opts.cooldown_ms) {
        e->rate = fmax(rl->opts.min_rate, e->rate * rl->opts.decrease);
        e->throttle_ms = now_ms;
        e->throttled = 1;
    }
    /* The server is over its quota now: no saved-up burst goes out on top of it. */
    e->tokens = 0;
    if (retry_after_ms >= 0) {
        int64_t until =
            now_ms > 0 && retry_after_ms > INT64_MAX - now_ms ? INT64_MAX : now_ms + retry_after_ms;

        if (until > e->hold_until_ms)
            e->hold_until_ms = until;
    }
}

double clw_ratelimit_rate(const struct clw_ratelimit *rl, const char *key, int64_t now_ms)
{
    const struct rl_entry *e;
    double rate;
    double tokens;

    if (rl == NULL)
        return 0;
    if (key == NULL || rl->opts.rate <= 0)
        return rl->opts.rate;
    e = rl_find(rl, key, rl_hash(key));
    if (e == NULL)
        return rl->opts.rate;
    rl_project(rl, e, now_ms, &rate, &tokens);
    return rate;
}
