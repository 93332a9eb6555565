/* Quota-aware rate limiting: per-key paced token buckets whose rate seeks this worker's part of
 * a quota shared by a fleet (cubic recovery, hold, convex probing, cut on throttles), in a
 * chained hash table, O(1) per call. The algorithm is described in clw/ratelimit.h. */
#include "clw/ratelimit.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clw/backoff.h" /* clw_rand_next */
#include "clw/strtab.h"

#define RL_MIN_BUCKETS 16
/* Keys at rest are swept out once the table holds this many; see rl_sweep. */
#define RL_SWEEP_MIN 1024
/* Floating-point slack when a refill lands exactly on a whole token. */
#define RL_EPSILON 1e-9
/* Admitted calls are counted over the last second in slots of this many milliseconds; one slot
 * more than a second's worth, the oldest counted in part. */
#define RL_SLOT_MS 100
#define RL_SLOTS   11
/* A call that waited for the limiter this recently means demand exceeds the rate: the rate may
 * probe above its ceiling. Without demand it stays, so an idle key cannot save up a rate far
 * over the quota. */
#define RL_DEMAND_MS 1000

/* The curve (see the header and docs/design.md, "Rate limiting"; the values were chosen with
 * tests/unit/test_ratelimit_fleet.c):
 * - a fresh key starts at RL_START of its share of the quota and stays there RL_START_MS: a
 *   sliding second of quota, shared with other clients, tells nothing to a client that started
 *   less than a second ago;
 * - a cut leaves RL_CUT of the rate that was throttled; cuts are at least RL_CUT_GAP_MS apart;
 * - recovery takes RL_RECOVER_MS to come back to RL_TARGET of the ceiling, where the rate holds
 *   for RL_HOLD_MS x [0.5, 1.5) (drawn per cut);
 * - then, while calls wait, it probes: RL_PROBE x quota x (seconds of probing)^3 per unit of
 *   share up to the fair share, RL_PROBE_ABOVE x that beyond it. */
#define RL_START       0.5
#define RL_START_MS    1000
#define RL_CUT         0.8
#define RL_CUT_GAP_MS  250
#define RL_TARGET      0.97
#define RL_RECOVER_MS  2000
#define RL_HOLD_MS     4000
#define RL_PROBE       0.05
#define RL_PROBE_ABOVE 0.01
/* Probing time counts no further than this (the rate is capped long before, where a cap
 * exists; this keeps the cube finite where none does). */
#define RL_PROBE_MAX_MS 120000
/* Shares are kept at least this, so that state per unit of share stays finite. */
#define RL_MIN_SHARE 0.001
/* A key with a quota or a configured rate, untouched this long, is at rest (see rl_at_rest). */
#define RL_FORGET_MS 60000

/* The state of one key. Rates are kept per unit of share (suffix _n): the rate is share x the
 * curve, clamped to [min_rate, cap]. */
struct rl_entry {
    struct clw_strtab_node node; /* first: a node is its entry */
    int limited;                 /* the key has a rate: a quota, a configured rate, a throttle */
    double share;                /* RL_MIN_SHARE..1 */
    int64_t share_ms;            /* when share last changed; INT64_MIN / 2: never */
    double ceil_n;               /* the ceiling: the rate last throttled, or the quota */
    double from_n;               /* where the curve started (after a cut, or at the start) */
    int64_t curve_ms;            /* time along the curve as of updated_ms */
    int64_t probe_ms;            /* curve time where the hold ends and probing begins */
    uint64_t prng;               /* draws the hold, so that a fleet's members fall out of step */
    double tokens;               /* 0..burst */
    int64_t updated_ms;          /* tokens and curve_ms are as of this time */
    int64_t cut_ms;              /* the last cut; INT64_MIN: none */
    int64_t used_ms;             /* the last acquire or answer */
    int64_t waited_ms;           /* the last time a call had to wait for a token */
    int64_t hold_until_ms;       /* Retry-After: no call before this */
    int64_t slot_id[RL_SLOTS];   /* which RL_SLOT_MS slot of time slot_ok[i] counts */
    uint32_t slot_ok[RL_SLOTS];  /* calls admitted by the API in that slot */
    uint64_t admitted;           /* answers admitted by the API, ever */
    uint64_t throttled;          /* throttling answers, ever */
    char key[];
};

struct clw_ratelimit {
    struct clw_ratelimit_opts opts; /* rate, quota >= 0; min_rate clamped to the cap */
    double cap;                     /* min(rate, quota) of those configured, else infinity */
    double share;                   /* the share of keys made from now on */
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

/* The curve per unit of share at curve time t (ms). Probing adds the same calls per second to
 * every member of a fleet with equal shares, cubic in the time spent probing: additive increase,
 * so members below their fair share catch up. Up to the fair share (the quota per unit of share)
 * it adds RL_PROBE x the quota x seconds^3; beyond it, where only capacity other members leave
 * unused can be found, RL_PROBE_ABOVE x the quota x seconds^3, so that a member does not take
 * the others' shares faster than their recovery gives them back. Without a quota, RL_PROBE of
 * the ceiling. */
static double rl_curve(const struct clw_ratelimit *rl, const struct rl_entry *e, int64_t t)
{
    double target = RL_TARGET * e->ceil_n;
    double fair = rl->opts.quota > 0 ? rl->opts.quota : INFINITY;
    double unit = rl->opts.quota > 0 ? rl->opts.quota : e->ceil_n;
    double v, below;

    if (t < 0)
        return e->from_n;
    if (t < RL_RECOVER_MS) {
        double left = 1.0 - (double)t / RL_RECOVER_MS;
        return target - (target - e->from_n) * left * left * left;
    }
    if (t <= e->probe_ms)
        return target;
    v = (double)(t - e->probe_ms) / 1000.0;
    if (target + RL_PROBE * unit * v * v * v <= fair)
        return target + RL_PROBE * unit * v * v * v;
    /* the time the fast probe reached the fair share */
    below = target < fair ? cbrt((fair - target) / (RL_PROBE * unit)) : 0;
    v -= below;
    return fmax(target, fair) + RL_PROBE_ABOVE * unit * v * v * v;
}

static double rl_rate_at(const struct clw_ratelimit *rl, const struct rl_entry *e, int64_t t)
{
    return fmin(rl->cap, fmax(rl->opts.min_rate, e->share * rl_curve(rl, e, t)));
}

/* Calls the API admitted for e in the second up to now_ms: the slots of the last second, the
 * oldest one in proportion to the part of it within that second (answers spread evenly). */
static double rl_admitted(const struct rl_entry *e, int64_t now_ms)
{
    int64_t slot = now_ms / RL_SLOT_MS;
    double part = 1.0 - (double)(now_ms - slot * RL_SLOT_MS + 1) / RL_SLOT_MS;
    double n = 0;

    for (int i = 0; i < RL_SLOTS; i++) {
        if (e->slot_id[i] > slot - RL_SLOTS + 1 && e->slot_id[i] <= slot)
            n += e->slot_ok[i];
        else if (e->slot_id[i] == slot - RL_SLOTS + 1)
            n += part * e->slot_ok[i];
    }
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

/* Curve time and tokens of e as of now_ms, without changing e: the bucket refills at the rate;
 * recovery and hold run on the clock, probing only while there is demand. A clock that went
 * back counts as no time passed. */
static void rl_project(const struct clw_ratelimit *rl, const struct rl_entry *e, int64_t now_ms,
                       int64_t *curve_ms, double *tokens)
{
    int64_t dt = now_ms > e->updated_ms ? now_ms - e->updated_ms : 0;
    int64_t t = e->curve_ms;
    double rate = rl_rate_at(rl, e, t);
    int64_t step;

    *tokens = e->tokens + rate * (double)dt / 1000.0;
    if (t < e->probe_ms) {
        step = dt < e->probe_ms - t ? dt : e->probe_ms - t;
        t += step;
        dt -= step;
    }
    if (dt > 0 && now_ms - e->waited_ms <= RL_DEMAND_MS)
        t += dt;
    if (t > e->probe_ms + RL_PROBE_MAX_MS)
        t = e->probe_ms + RL_PROBE_MAX_MS;
    *curve_ms = t;
    *tokens = fmin(rl_burst(rl, rl_rate_at(rl, e, t)), *tokens);
}

static void rl_update(const struct clw_ratelimit *rl, struct rl_entry *e, int64_t now_ms)
{
    if (!e->limited)
        return;
    rl_project(rl, e, now_ms, &e->curve_ms, &e->tokens);
    if (now_ms > e->updated_ms)
        e->updated_ms = now_ms;
}

static int rl_at_rest(const struct clw_ratelimit *rl, const struct rl_entry *e, int64_t now_ms)
{
    if (e->hold_until_ms > now_ms || rl_admitted(e, now_ms) > 0)
        return 0;
    if (!e->limited)
        return 1;
    if (rl->opts.quota <= 0 && rl->opts.rate <= 0)
        return 0; /* a rate learnt from throttles is all there is to go by: kept */
    /* Forgetting a learnt ceiling restarts the key at its share: safe, if not as good. */
    return now_ms - e->used_ms >= RL_FORGET_MS &&
           (e->cut_ms == INT64_MIN || now_ms - e->cut_ms >= RL_FORGET_MS);
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

/* Draws how long e holds before it probes: RL_HOLD_MS x [0.5, 1.5). Members of a fleet often
 * take cuts from the same excess; holding alike, they would probe alike and be cut together
 * again, the one below its share never catching up. */
static void rl_draw_hold(struct rl_entry *e)
{
    double u = (double)(clw_rand_next(&e->prng) >> 11) / 9007199254740992.0; /* [0, 1) */

    e->probe_ms = RL_RECOVER_MS + (int64_t)(RL_HOLD_MS * (0.5 + u));
}

/* Sets e up as an unseen key at now_ms: with a quota, starting at RL_START of its share of it
 * (full bucket); with only a configured rate, at that rate whatever the share; with neither,
 * not limited. */
static void rl_init(const struct clw_ratelimit *rl, struct rl_entry *e, int64_t now_ms)
{
    e->share = rl->share;
    e->share_ms = INT64_MIN / 2;
    e->prng = rl->opts.seed ^ e->node.hash;
    if (rl->opts.quota > 0) {
        e->limited = 1;
        e->ceil_n = rl->opts.quota;
        e->from_n = RL_START * rl->opts.quota;
        e->curve_ms = -RL_START_MS;
        rl_draw_hold(e);
    } else if (rl->opts.rate > 0) {
        e->limited = 1;
        e->ceil_n = e->from_n = rl->opts.rate / RL_MIN_SHARE;
        e->probe_ms = RL_RECOVER_MS;
        e->curve_ms = e->probe_ms;
    }
    e->tokens = e->limited ? rl_burst(rl, rl_rate_at(rl, e, e->curve_ms)) : 0;
    e->updated_ms = now_ms;
    e->used_ms = now_ms;
    e->cut_ms = INT64_MIN;
    e->waited_ms = INT64_MIN / 2;
    e->hold_until_ms = INT64_MIN;
    for (int i = 0; i < RL_SLOTS; i++)
        e->slot_id[i] = INT64_MIN;
}

/* The entry of key, created as an unseen key when absent; NULL on allocation failure. */
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
    rl_init(rl, e, now_ms);
    memcpy(e->key, key, len + 1);
    e->node.key = e->key;
    clw_strtab_insert(&rl->entries, &e->node);
    return e;
}

/* Options a limiter can work with: finite, rate and quota >= 0, min_rate > 0, burst_s >= 0. */
static int rl_opts_ok(const struct clw_ratelimit_opts *o)
{
    return isfinite(o->rate) && o->rate >= 0 && isfinite(o->quota) && o->quota >= 0 &&
           isfinite(o->min_rate) && o->min_rate > 0 && isfinite(o->burst_s) && o->burst_s >= 0;
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
    rl->cap = INFINITY;
    if (rl->opts.rate > 0)
        rl->cap = rl->opts.rate;
    if (rl->opts.quota > 0)
        rl->cap = fmin(rl->cap, rl->opts.quota);
    if (rl->opts.min_rate > rl->cap)
        rl->opts.min_rate = rl->cap;
    rl->share = 1;
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

static int rl_limits_unseen(const struct clw_ratelimit *rl)
{
    return rl->opts.quota > 0 || rl->opts.rate > 0;
}

int64_t clw_ratelimit_acquire(struct clw_ratelimit *rl, const char *key, int64_t now_ms)
{
    struct rl_entry *e;
    double wait;

    if (rl == NULL || key == NULL)
        return 0;
    /* Without a quota or a rate an unseen key is not limited: no entry is made for it. */
    e = rl_limits_unseen(rl) ? rl_get(rl, key, now_ms) : rl_find(rl, key);
    if (e == NULL)
        return 0; /* not limited, or out of memory: rather call than stall every request */
    e->used_ms = now_ms;
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
    wait = ceil((1 - e->tokens) * 1000.0 / rl_rate_at(rl, e, e->curve_ms));
    return wait >= 1 ? (int64_t)wait : 1;
}

/* A throttle of a call sent after the last cut: the ceiling becomes the rate that was too much
 * (for a key not limited yet: what the API admitted over the last second), and recovery starts
 * from RL_CUT of it. */
static void rl_cut(struct clw_ratelimit *rl, struct rl_entry *e, int64_t now_ms)
{
    double rate;

    if (e->limited) {
        /* What the API admitted over the last second tells where the quota's edge was better
         * than a rate that was still climbing; at most one cut's worth below the rate. */
        rate = rl_rate_at(rl, e, e->curve_ms);
        /* (not the second after a share change: its admitted calls were for the old share) */
        double edge = now_ms - e->share_ms < 1000 ? rate : fmin(rate, rl_admitted(e, now_ms));
        /* Above its share of the quota a member only used what others left: they want it back. */
        if (rl->opts.quota > 0)
            edge = fmin(edge, e->share * rl->opts.quota);
        rate = fmax(RL_CUT * rate, edge);
    } else {
        rate = fmax(rl->opts.min_rate, rl_admitted(e, now_ms));
        e->limited = 1;
        e->updated_ms = now_ms;
    }
    e->ceil_n = rate / e->share;
    e->from_n = RL_CUT * e->ceil_n;
    e->curve_ms = 0;
    rl_draw_hold(e);
    e->cut_ms = now_ms;
}

void clw_ratelimit_answered(struct clw_ratelimit *rl, const char *key, int64_t sent_ms,
                            int64_t now_ms, int throttled, int64_t retry_after_ms)
{
    struct rl_entry *e;

    if (rl == NULL || key == NULL)
        return;
    e = rl_get(rl, key, now_ms);
    if (e == NULL)
        return;
    e->used_ms = now_ms;
    rl_update(rl, e, now_ms);
    if (!throttled) {
        rl_count_admitted(e, now_ms);
        e->admitted++;
        return;
    }
    e->throttled++;
    /* Answers to calls sent before the last cut are the same excess, already acted on; so are
     * those soon after it, while the quota's sliding second still holds the excess. */
    if (e->cut_ms == INT64_MIN || (sent_ms >= e->cut_ms && now_ms - e->cut_ms >= RL_CUT_GAP_MS))
        rl_cut(rl, e, now_ms);
    /* The server is over its quota now: no saved-up burst goes out on top of it. */
    e->tokens = 0;
    if (retry_after_ms >= 0) {
        int64_t until =
            now_ms > 0 && retry_after_ms > INT64_MAX - now_ms ? INT64_MAX : now_ms + retry_after_ms;

        if (until > e->hold_until_ms)
            e->hold_until_ms = until;
    }
}

static void rl_share(const struct clw_ratelimit *rl, struct rl_entry *e, double share,
                     int64_t now_ms)
{
    rl_update(rl, e, now_ms);
    if (share != e->share)
        e->share_ms = now_ms;
    e->share = share;
    e->tokens = fmin(e->tokens, rl_burst(rl, rl_rate_at(rl, e, e->curve_ms)));
}

void clw_ratelimit_set_share(struct clw_ratelimit *rl, const char *key, double share,
                             int64_t now_ms)
{
    struct rl_entry *e;

    if (rl == NULL || !(share >= 0 && share <= 1))
        return;
    share = fmax(RL_MIN_SHARE, share);
    if (key == NULL) {
        rl->share = share;
        for (size_t b = 0; b < rl->entries.nbuckets; b++)
            for (struct clw_strtab_node *n = rl->entries.buckets[b]; n != NULL; n = n->chain)
                rl_share(rl, (struct rl_entry *)n, share, now_ms);
        return;
    }
    e = rl_get(rl, key, now_ms);
    if (e != NULL)
        rl_share(rl, e, share, now_ms);
}

/* *st for e as of now_ms, without changing e. */
static void rl_stats_of(const struct clw_ratelimit *rl, const struct rl_entry *e, int64_t now_ms,
                        struct clw_ratelimit_stats *st)
{
    int64_t t = e->curve_ms;
    double tokens;

    if (e->limited)
        rl_project(rl, e, now_ms, &t, &tokens);
    st->rate = e->limited ? rl_rate_at(rl, e, t) : 0;
    st->share = e->share;
    st->admitted = e->admitted;
    st->throttled = e->throttled;
}

void clw_ratelimit_stats(const struct clw_ratelimit *rl, const char *key, int64_t now_ms,
                         struct clw_ratelimit_stats *st)
{
    const struct rl_entry *e;
    struct rl_entry unseen;

    memset(st, 0, sizeof(*st));
    if (rl == NULL || key == NULL)
        return;
    e = rl_find(rl, key);
    if (e == NULL) {
        memset(&unseen, 0, sizeof(unseen));
        rl_init(rl, &unseen, now_ms);
        e = &unseen;
    }
    rl_stats_of(rl, e, now_ms, st);
}

double clw_ratelimit_rate(const struct clw_ratelimit *rl, const char *key, int64_t now_ms)
{
    struct clw_ratelimit_stats st;

    clw_ratelimit_stats(rl, key, now_ms, &st);
    return st.rate;
}

void clw_ratelimit_foreach(const struct clw_ratelimit *rl, int64_t now_ms,
                           void (*fn)(const char *key, const struct clw_ratelimit_stats *st,
                                      void *arg),
                           void *arg)
{
    struct clw_ratelimit_stats st;

    if (rl == NULL || fn == NULL)
        return;
    for (size_t b = 0; b < rl->entries.nbuckets; b++) {
        for (const struct clw_strtab_node *n = rl->entries.buckets[b]; n != NULL; n = n->chain) {
            const struct rl_entry *e = (const struct rl_entry *)n;

            rl_stats_of(rl, e, now_ms, &st);
            fn(e->key, &st, arg);
        }
    }
}
