/* Quota-aware rate limiting: per-key token buckets whose rate follows what the API admits, in a
 * chained hash table, O(1) per call. */
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
/* Admitted calls are counted over the last second in slots of this many milliseconds. */
#define RL_SLOT_MS 100
#define RL_SLOTS   10
/* A call that waited for the limiter this recently means demand exceeds the rate: the rate may
 * grow. Without demand it stays, so an idle key cannot save up a rate far over the quota. */
#define RL_DEMAND_MS 1000

/* The state of one key. An entry at rest (see rl_at_rest) behaves exactly like an unseen key,
 * which is what lets rl_sweep drop it. */
struct rl_entry {
    struct clw_strtab_node node; /* first: a node is its entry */
    int limited;                 /* the key has a rate: configured, or set by a throttle */
    double rate;                 /* current calls per second, when limited */
    double tokens;               /* 0..burst */
    int64_t updated_ms;          /* tokens and rate are as of this time */
    int throttled;               /* throttle_ms is set */
    int64_t throttle_ms;         /* the last throttle that lowered the rate */
    double before;               /* the rate before that throttle: revisions stay below it */
    int64_t waited_ms;           /* the last time a call had to wait for a token */
    int64_t hold_until_ms;       /* Retry-After: no call before this */
    int64_t slot_id[RL_SLOTS];   /* which RL_SLOT_MS slot of time slot_ok[i] counts */
    uint32_t slot_ok[RL_SLOTS];  /* calls admitted by the API in that slot */
    char key[];
};

struct clw_ratelimit {
    struct clw_ratelimit_opts opts; /* rate >= 0, min_rate clamped to rate when configured */
    double cap;                     /* opts.rate, or infinity when none is configured */
    struct clw_strtab entries;      /* key -> struct rl_entry */
    size_t sweep_at;                /* sweep when the table holds this many */
};

static struct rl_entry *rl_find(const struct clw_ratelimit *rl, const char *key)
{
    return (struct rl_entry *)clw_strtab_find(&rl->entries, key, clw_strtab_hash(key));
}

static double rl_burst(const struct clw_ratelimit *rl, double rate)
{
    return fmax(1.0, rate * rl->opts.burst_s);
}

/* Calls the API admitted for e in the second up to now_ms. */
static uint32_t rl_admitted(const struct rl_entry *e, int64_t now_ms)
{
    int64_t slot = now_ms / RL_SLOT_MS;
    uint32_t n = 0;

    for (int i = 0; i < RL_SLOTS; i++)
        if (e->slot_id[i] > slot - RL_SLOTS && e->slot_id[i] <= slot)
            n += e->slot_ok[i];
    return n;
}

static void rl_count_admitted(struct rl_entry *e, int64_t now_ms)
{
    int64_t slot = now_ms / RL_SLOT_MS;
    int i = (int)(slot % RL_SLOTS);

    if (i < 0)
        i += RL_SLOTS;
    if (e->slot_id[i] != slot) {
        e->slot_id[i] = slot;
        e->slot_ok[i] = 0;
    }
    if (e->slot_ok[i] < UINT32_MAX)
        e->slot_ok[i]++;
}

/* Rate and tokens of e as of now_ms, without changing e: the bucket refills at the rate, and
 * the rate grows while there is demand. A clock that went back counts as no time passed. */
static void rl_project(const struct clw_ratelimit *rl, const struct rl_entry *e, int64_t now_ms,
                       double *rate, double *tokens)
{
    double dt = now_ms > e->updated_ms ? (double)(now_ms - e->updated_ms) / 1000.0 : 0.0;
    double r = e->rate;

    *tokens = fmin(rl_burst(rl, r), e->tokens + r * dt);
    if (now_ms - e->waited_ms <= RL_DEMAND_MS)
        r = fmin(rl->cap, r * (1 + rl->opts.increase * dt));
    *rate = r;
}

static void rl_update(const struct clw_ratelimit *rl, struct rl_entry *e, int64_t now_ms)
{
    if (!e->limited)
        return;
    rl_project(rl, e, now_ms, &e->rate, &e->tokens);
    if (now_ms > e->updated_ms)
        e->updated_ms = now_ms;
}

static int rl_in_cooldown(const struct clw_ratelimit *rl, const struct rl_entry *e, int64_t now_ms)
{
    return e->throttled && now_ms - e->throttle_ms < rl->opts.cooldown_ms;
}

static int rl_at_rest(const struct clw_ratelimit *rl, const struct rl_entry *e, int64_t now_ms)
{
    double rate;
    double tokens;

    if (e->hold_until_ms > now_ms || rl_in_cooldown(rl, e, now_ms) || rl_admitted(e, now_ms) > 0)
        return 0;
    if (!e->limited)
        return 1;
    if (rl->opts.rate <= 0)
        return 0; /* a rate learnt from throttles is kept */
    rl_project(rl, e, now_ms, &rate, &tokens);
    return rate >= rl->opts.rate && tokens >= rl_burst(rl, rate);
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

/* The entry of key, created as an unseen key (limited at the configured rate with a full bucket,
 * or not limited) when absent; NULL on allocation failure. */
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
        e = calloc(1, sizeof(*e) + len + 1);
    if (e == NULL)
        return NULL;
    e->node.hash = hash;
    e->limited = rl->opts.rate > 0;
    e->rate = rl->opts.rate;
    e->before = rl->cap;
    e->tokens = e->limited ? rl_burst(rl, e->rate) : 0;
    e->updated_ms = now_ms;
    e->waited_ms = INT64_MIN / 2;
    e->hold_until_ms = INT64_MIN;
    for (int i = 0; i < RL_SLOTS; i++)
        e->slot_id[i] = INT64_MIN;
    memcpy(e->key, key, len + 1);
    e->node.key = e->key;
    clw_strtab_insert(&rl->entries, &e->node);
    return e;
}

/* Options a limiter can work with: finite, min_rate > 0, 0 < decrease <= 1, increase >= 0,
 * burst_s >= 0, cooldown >= 0. */
static int rl_opts_ok(const struct clw_ratelimit_opts *o)
{
    return !isnan(o->rate) && isfinite(o->rate) && isfinite(o->min_rate) && o->min_rate > 0 &&
           isfinite(o->decrease) && o->decrease > 0 && o->decrease <= 1 && isfinite(o->increase) &&
           o->increase >= 0 && isfinite(o->burst_s) && o->burst_s >= 0 && o->cooldown_ms >= 0;
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
    if (rl->opts.rate < 0)
        rl->opts.rate = 0;
    if (rl->opts.rate > 0 && rl->opts.min_rate > rl->opts.rate)
        rl->opts.min_rate = rl->opts.rate;
    rl->cap = rl->opts.rate > 0 ? rl->opts.rate : INFINITY;
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

    if (rl == NULL || key == NULL)
        return 0;
    /* Without a configured rate an unseen key is not limited: no entry is made for it. */
    e = rl->opts.rate > 0 ? rl_get(rl, key, now_ms) : rl_find(rl, key);
    if (e == NULL)
        return 0; /* not limited, or out of memory: rather call than stall every request */
    if (e->hold_until_ms > now_ms)
        return e->hold_until_ms - now_ms;
    if (!e->limited)
        return 0;
    rl_update(rl, e, now_ms);
    if (e->tokens >= 1 - RL_EPSILON) {
        e->tokens = e->tokens >= 1 ? e->tokens - 1 : 0;
        return 0;
    }
    e->waited_ms = now_ms;
    /* At the current rate; the rate may grow meanwhile, so this never waits too little. */
    wait = ceil((1 - e->tokens) * 1000.0 / e->rate);
    return wait >= 1 ? (int64_t)wait : 1;
}

/* The rate a throttle sets: just under what the API admitted in the last second, and under
 * the rate that was throttled. */
static double rl_target(const struct clw_ratelimit *rl, const struct rl_entry *e, double before,
                        int64_t now_ms)
{
    return fmax(rl->opts.min_rate,
                rl->opts.decrease * fmin(before, (double)rl_admitted(e, now_ms)));
}

/* Just after a throttle, the estimate may rise with admitted answers that arrived after it: one
 * burst's answers come in any order. */
static void rl_revise(const struct clw_ratelimit *rl, struct rl_entry *e, int64_t now_ms)
{
    double target = rl_target(rl, e, e->before, now_ms);

    if (target > e->rate)
        e->rate = target;
}

void clw_ratelimit_answered(struct clw_ratelimit *rl, const char *key, int64_t now_ms,
                            int throttled, int64_t retry_after_ms)
{
    struct rl_entry *e;

    if (rl == NULL || key == NULL)
        return;
    e = rl_get(rl, key, now_ms);
    if (e == NULL)
        return;
    rl_update(rl, e, now_ms);
    if (!throttled) {
        rl_count_admitted(e, now_ms);
        if (e->limited && rl_in_cooldown(rl, e, now_ms))
            rl_revise(rl, e, now_ms);
        return;
    }
    if (!e->limited) {
        /* The first throttle of an unconfigured key starts its limiter at what the API took. */
        e->limited = 1;
        e->before = rl->cap;
        e->rate = rl_target(rl, e, e->before, now_ms);
        e->updated_ms = now_ms;
        e->throttled = 1;
        e->throttle_ms = now_ms;
    } else if (!e->throttled ||
               (now_ms - e->throttle_ms >= rl->opts.cooldown_ms && now_ms >= e->throttle_ms)) {
        /* Answers to calls sent before the last decrease arrive in a bunch: count them once. */
        e->before = e->rate;
        e->rate = rl_target(rl, e, e->before, now_ms);
        e->throttled = 1;
        e->throttle_ms = now_ms;
    } else {
        rl_revise(rl, e, now_ms);
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

    if (rl == NULL || key == NULL)
        return 0;
    e = rl_find(rl, key);
    if (e == NULL)
        return rl->opts.rate;
    if (!e->limited)
        return 0;
    rl_project(rl, e, now_ms, &rate, &tokens);
    return rate;
}
