/* Quota-aware rate limiting: AIMD token buckets per key in a chained hash table, O(1) per call. */
#include "clw/ratelimit.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clw/strtab.h"

#define RL_MIN_BUCKETS 16
/* Keys at rest are swept out once the table holds this many; see rl_sweep. */
#define RL_SWEEP_MIN 1024
/* Floating-point slack when a refill lands exactly on a whole token. */
#define RL_EPSILON 1e-9

/* The state of one key. An entry at rest (full bucket, full rate, no hold, cooldown over)
 * behaves exactly like an unseen key, which is what lets rl_sweep drop it. */
struct rl_entry {
    struct clw_strtab_node node; /* first: a node is its entry */
    double rate;                 /* current calls per second */
    double tokens;               /* 0..burst */
    int64_t updated_ms;          /* tokens and rate are as of this time */
    int64_t throttle_ms;         /* the last throttle that shrank the rate */
    int throttled;               /* throttle_ms is set */
    int64_t hold_until_ms;       /* Retry-After: no call before this */
    char key[];
};

struct clw_ratelimit {
    struct clw_ratelimit_opts opts; /* min_rate clamped to rate */
    struct clw_strtab entries;      /* key -> struct rl_entry */
    size_t sweep_at;                /* sweep when the table holds this many */
};

static struct rl_entry *rl_find(const struct clw_ratelimit *rl, const char *key)
{
    return (struct rl_entry *)clw_strtab_find(&rl->entries, key, clw_strtab_hash(key));
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
struct rl_sweep_ctx {
    struct clw_ratelimit *rl;
    int64_t now_ms;
};

static int rl_sweep_drop(struct clw_strtab_node *n, void *arg)
{
    const struct rl_sweep_ctx *ctx = arg;
    return rl_at_rest(ctx->rl, (struct rl_entry *)n, ctx->now_ms);
}

static void rl_dispose(struct clw_strtab_node *n)
{
    free(n);
}

static void rl_sweep(struct clw_ratelimit *rl, int64_t now_ms)
{
    struct rl_sweep_ctx ctx = {rl, now_ms};
    clw_strtab_remove_if(&rl->entries, rl_sweep_drop, &ctx, rl_dispose);
    size_t count = rl->entries.count;
    rl->sweep_at = count * 2 > RL_SWEEP_MIN ? count * 2 : RL_SWEEP_MIN;
}

/* The entry of key, created as an unseen key (full bucket, configured rate) when absent; NULL
 * on allocation failure. */
static struct rl_entry *rl_get(struct clw_ratelimit *rl, const char *key, int64_t now_ms)
{
    uint64_t hash = clw_strtab_hash(key);
    struct rl_entry *e = (struct rl_entry *)clw_strtab_find(&rl->entries, key, hash);
    size_t len;

    if (e != NULL)
        return e;
    if (rl->entries.count >= rl->sweep_at)
        rl_sweep(rl, now_ms);
    len = strlen(key);
    if (len < SIZE_MAX - sizeof(*e))
        e = malloc(sizeof(*e) + len + 1);
    if (e == NULL)
        return NULL;
    e->node.hash = hash;
    e->rate = rl->opts.rate;
    e->tokens = rl->opts.burst;
    e->updated_ms = now_ms;
    e->throttle_ms = 0;
    e->throttled = 0;
    e->hold_until_ms = INT64_MIN;
    memcpy(e->key, key, len + 1);
    e->node.key = e->key;
    clw_strtab_insert(&rl->entries, &e->node);
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
    if (clw_strtab_init(&rl->entries, RL_MIN_BUCKETS) != 0)
        goto fail;
    rl->sweep_at = RL_SWEEP_MIN;
    return rl;
fail:
    free(rl);
    return NULL;
}

void clw_ratelimit_free(struct clw_ratelimit *rl)
{
    if (rl == NULL)
        return;
    clw_strtab_fini(&rl->entries, rl_dispose);
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
    e = rl_find(rl, key);
    if (e == NULL)
        return rl->opts.rate;
    rl_project(rl, e, now_ms, &rate, &tokens);
    return rate;
}
