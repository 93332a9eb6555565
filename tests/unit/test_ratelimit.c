/* Unit tests for ratelimit: scripted steps on a simulated clock (start, recovery, hold, probing,
 * cuts, shares, Retry-After, the bucket), option checks, statistics, many keys. Fleets sharing a
 * quota: test_ratelimit_fleet.c. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clw/ratelimit.h"

/* ---- scripted steps ------------------------------------------------------------------------ */

enum step_op {
    STEP_END = 0,
    ACQ,   /* acquire(key, now) must return arg */
    THR,   /* a throttling answer at now to a call sent at arg (retry_after_ms = x) */
    OKS,   /* arg answers admitted by the API at now */
    RATE,  /* rate(key, now) must be x (within 1e-6) */
    ABOVE, /* rate(key, now) must be above x */
    DRAIN, /* exactly arg acquire(key, now) calls succeed, the next one waits */
    LOAD,  /* a backlog: acquire(key) every millisecond from now to arg */
    SHARE, /* set_share(key, x, now); key NULL: every key */
};

struct step {
    enum step_op op;
    const char *key;
    int64_t now;
    int64_t arg;
    double x;
    int64_t retry; /* THR: Retry-After, -1 none */
};

/* clang-format off */
#define A(key, now, wait)          {ACQ, (key), (now), (wait), 0, 0}
#define T(key, now, sent)          {THR, (key), (now), (sent), 0, -1}
#define TH(key, now, sent, retry)  {THR, (key), (now), (sent), 0, (retry)}
#define OK(key, now, n)            {OKS, (key), (now), (n), 0, 0}
#define R(key, now, rate)          {RATE, (key), (now), 0, (rate), 0}
#define GT(key, now, rate)         {ABOVE, (key), (now), 0, (rate), 0}
#define D(key, now, n)             {DRAIN, (key), (now), (n), 0, 0}
#define L(key, from, to)           {LOAD, (key), (from), (to), 0, 0}
#define S(key, now, share)         {SHARE, (key), (now), 0, (share), 0}
/* clang-format on */
#define MAX_STEPS 24

struct script_case {
    const char *name;
    struct clw_ratelimit_opts opts; /* rate, quota, min_rate, burst_s, seed */
    struct step steps[MAX_STEPS];
};

/* api.quota 100, no api.rate_limit, floor 1/s, bucket 0.05 s */
/* clang-format off */
#define Q100 {0, 100, 1, 0.05, 1}
/* clang-format on */

/* The recovery curve 2 s after a cut from c: 0.97 c - (0.97 c - 0.8 c) (1 - t/2 s)^3. */
#define RECOVERING(c, t_ms) (0.97 * (c) - (0.97 - 0.8) * (c)*pow(1 - (t_ms) / 2000.0, 3))

static const struct script_case script_cases[] = {
    {"a fresh key starts at half the quota for 1 s, then recovers to 97 % of it in 2 s",
     Q100,
     {A("k", 0, 0), R("k", 0, 50), R("k", 999, 50), R("k", 1000, 50), R("k", 2000, 97 - 47 * 0.125),
      R("k", 3000, 97), R("k", 3999, 97)}},
    {"without calls waiting it never probes above 97 %",
     Q100,
     {R("k", 0, 50), A("k", 0, 0), R("k", 100000, 97), A("k", 100000, 0), R("k", 200000, 97)}},
    {"with calls waiting it probes above 97 %, up to the quota",
     Q100,
     {L("k", 0, 3999), R("k", 3999, 97), L("k", 4000, 6000), R("k", 6000, 97), L("k", 6001, 9000),
      GT("k", 9000, 97), L("k", 9001, 30000), R("k", 30000, 100)}},
    {"a throttle cuts to 80 % of the rate and recovers to 97 % of it in 2 s",
     Q100,
     {A("k", 0, 0), R("k", 3950, 97), OK("k", 3950, 97), T("k", 4000, 3990), R("k", 4000, 0.8 * 97),
      R("k", 4500, RECOVERING(97, 500)), R("k", 6000, 0.97 * 97), R("k", 7999, 0.97 * 97)}},
    {"the ceiling is what the API admitted in the last second ...",
     Q100,
     {A("k", 0, 0), OK("k", 3950, 85), T("k", 4000, 3990), R("k", 4000, 0.8 * 85),
      R("k", 6000, 0.97 * 85)}},
    {"... but one cut takes at most 20 %",
     Q100,
     {A("k", 0, 0), OK("k", 3950, 10), T("k", 4000, 3990), R("k", 4000, 0.8 * 0.8 * 97),
      R("k", 6000, 0.97 * 0.8 * 97)}},
    {"answers before the cut, and cuts within 250 ms of it, count once",
     Q100,
     {A("k", 0, 0), OK("k", 3950, 97), T("k", 4000, 3990), T("k", 4100, 3999), T("k", 4249, 4100),
      R("k", 4249, RECOVERING(97, 249)), OK("k", 4249, 200), T("k", 4250, 4010),
      R("k", 4250, 0.8 * RECOVERING(97, 250)), R("k", 6250, 0.97 * RECOVERING(97, 250))}},
    {"a share scales the rate, the ceiling and new keys",
     Q100,
     {A("k", 0, 0), R("k", 3000, 97), S(NULL, 3000, 0.25), R("k", 3000, 0.25 * 97),
      R("new", 3000, 12.5), S("k", 3000, 0.5), R("k", 3000, 48.5), R("other", 3000, 12.5),
      S(NULL, 3000, 1), R("k", 3000, 97)}},
    {"a throttle after a share change: the ceiling is the rate, not the old share's calls",
     Q100,
     {A("k", 0, 0), OK("k", 3950, 30), S("k", 3950, 0.5), T("k", 4000, 3990),
      R("k", 4000, 0.8 * 48.5), R("k", 6000, 0.97 * 48.5)}},
    {"a member above its share that is throttled drops towards its share",
     {60, 100, 1, 0.05, 1},
     {S(NULL, 0, 0.5), L("k", 0, 30000), R("k", 30000, 60), OK("k", 30000, 100),
      T("k", 30001, 30000), R("k", 30001, 0.8 * 50), R("k", 32001, 0.97 * 50)}},
    {"shares out of range or NaN change nothing; 0 leaves the floor",
     Q100,
     {A("k", 0, 0), S(NULL, 3000, 1.5), S(NULL, 3000, -0.1), S(NULL, 3000, NAN), R("k", 3000, 97),
      S(NULL, 3000, 0), R("k", 3000, 1)}},
    {"quota unknown: not limited until a throttle, then 80 % of what the API admitted",
     {0, 0, 1, 0.05, 1},
     {A("k", 0, 0), A("k", 0, 0), A("k", 0, 0), R("k", 0, 0), OK("k", 50, 10), R("k", 60, 0),
      T("k", 100, 90), R("k", 100, 8), R("k", 2100, 9.7), R("other", 2100, 0)}},
    {"a configured rate without a quota: from the start, whatever the share",
     {10, 0, 1, 0.05, 1},
     {R("k", 0, 10), S(NULL, 0, 0.1), R("k", 0, 10), D("k", 0, 1), A("k", 50, 50), OK("k", 100, 10),
      T("k", 200, 150), R("k", 200, 8), R("k", 2200, 9.7)}},
    {"the configured rate caps the quota's share",
     {30, 100, 1, 0.05, 1},
     {R("k", 0, 30), R("k", 3000, 30)}},
    {"the bucket holds 0.05 s of the rate, at least one call",
     Q100,
     {D("k", 0, 2), A("k", 0, 10), A("k", 5, 5), A("k", 10, 0), D("k", 5000, 4), A("k", 5000, 2)}},
    {"a throttle empties the bucket; Retry-After holds the key",
     Q100,
     {A("k", 0, 0), OK("k", 3950, 97), TH("k", 4000, 3990, 2000), A("k", 4000, 2000),
      A("k", 5999, 1), A("k", 6000, 0), A("k", 6000, 0)}},
    {"a shorter Retry-After does not shorten a hold; a longer one extends it",
     Q100,
     {TH("k", 0, 0, 3000), TH("k", 1000, 1000, 500), A("k", 1000, 2000), TH("k", 1500, 1500, 5000),
      A("k", 1600, 4900)}},
    {"a huge Retry-After saturates",
     Q100,
     {TH("k", 1000, 1000, INT64_MAX), A("k", 2000, INT64_MAX - 2000)}},
    {"Retry-After holds a key without a quota too",
     {0, 0, 1, 0.05, 1},
     {OK("k", 0, 50), TH("k", 0, 0, 2000), R("k", 0, 40), A("k", 1000, 1000), A("k", 2000, 0),
      R("k", 2000, 48.5)}},
    {"keys are independent",
     Q100,
     {A("a", 0, 0), OK("a", 3950, 97), T("a", 4000, 3990), R("a", 4000, 77.6), R("b", 4000, 50),
      A("b", 4000, 0), R("b", 4000, 50)}},
    {"a clock going back counts as no time",
     Q100,
     {D("k", 1000, 2), A("k", 500, 10), A("k", 1005, 5), A("k", 1010, 0)}},
};

static void run_step(const struct script_case *c, size_t k, struct clw_ratelimit *rl)
{
    const struct step *s = &c->steps[k];
    int64_t got, n;
    double rate;

    switch (s->op) {
    case ACQ:
        got = clw_ratelimit_acquire(rl, s->key, s->now);
        if (got != s->arg)
            fail_msg("%s: step %zu acquire(%s, %lld) = %lld, want %lld", c->name, k, s->key,
                     (long long)s->now, (long long)got, (long long)s->arg);
        break;
    case THR:
        clw_ratelimit_answered(rl, s->key, s->arg, s->now, 1, s->retry);
        break;
    case OKS:
        for (n = 0; n < s->arg; n++)
            clw_ratelimit_answered(rl, s->key, s->now, s->now, 0, -1);
        break;
    case RATE:
    case ABOVE:
        rate = clw_ratelimit_rate(rl, s->key, s->now);
        if (s->op == RATE ? fabs(rate - s->x) > 1e-6 : rate <= s->x)
            fail_msg("%s: step %zu rate(%s, %lld) = %.9g, want %s%.9g", c->name, k, s->key,
                     (long long)s->now, rate, s->op == RATE ? "" : "more than ", s->x);
        break;
    case DRAIN:
        for (n = 0; n < s->arg; n++) {
            got = clw_ratelimit_acquire(rl, s->key, s->now);
            if (got != 0)
                fail_msg("%s: step %zu call %lld of %lld at %lld waits %lld", c->name, k,
                         (long long)n + 1, (long long)s->arg, (long long)s->now, (long long)got);
        }
        got = clw_ratelimit_acquire(rl, s->key, s->now);
        if (got <= 0)
            fail_msg("%s: step %zu: more than %lld calls at %lld", c->name, k, (long long)s->arg,
                     (long long)s->now);
        break;
    case LOAD:
        for (n = s->now; n <= s->arg; n++)
            while (clw_ratelimit_acquire(rl, s->key, n) == 0)
                ;
        break;
    case SHARE:
        clw_ratelimit_set_share(rl, s->key, s->x, s->now);
        break;
    case STEP_END:
        break;
    }
}

static void test_scripts(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(script_cases) / sizeof(script_cases[0]); i++) {
        const struct script_case *c = &script_cases[i];
        struct clw_ratelimit *rl = clw_ratelimit_new(&c->opts);

        if (rl == NULL)
            fail_msg("%s: new failed", c->name);
        for (size_t k = 0; k < MAX_STEPS && c->steps[k].op != STEP_END; k++)
            run_step(c, k, rl);
        clw_ratelimit_free(rl);
    }
}

/* ---- options ------------------------------------------------------------------------------- */

struct opts_case {
    const char *name;
    struct clw_ratelimit_opts opts;
    int valid;
};

static const struct opts_case opts_cases[] = {
    {"typical", {0, 100, 1, 0.05, 7}, 1},
    {"nothing known", {0, 0, 1, 0.05, 0}, 1},
    {"a rate and a quota", {20, 100, 0.5, 0.05, 0}, 1},
    {"no burst", {0, 100, 1, 0, 0}, 1},
    {"negative rate", {-1, 100, 1, 0.05, 0}, 0},
    {"NaN rate", {NAN, 100, 1, 0.05, 0}, 0},
    {"infinite rate", {INFINITY, 100, 1, 0.05, 0}, 0},
    {"negative quota", {0, -1, 1, 0.05, 0}, 0},
    {"NaN quota", {0, NAN, 1, 0.05, 0}, 0},
    {"infinite quota", {0, INFINITY, 1, 0.05, 0}, 0},
    {"min_rate 0", {0, 100, 0, 0.05, 0}, 0},
    {"NaN min_rate", {0, 100, NAN, 0.05, 0}, 0},
    {"negative burst", {0, 100, 1, -1, 0}, 0},
    {"infinite burst", {0, 100, 1, INFINITY, 0}, 0},
};

static void test_opts(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(opts_cases) / sizeof(opts_cases[0]); i++) {
        struct clw_ratelimit *rl = clw_ratelimit_new(&opts_cases[i].opts);

        if ((rl != NULL) != opts_cases[i].valid)
            fail_msg("%s: new gave %p, want %s", opts_cases[i].name, (void *)rl,
                     opts_cases[i].valid ? "a limiter" : "NULL");
        clw_ratelimit_free(rl);
    }
    assert_null(clw_ratelimit_new(NULL));
    clw_ratelimit_free(NULL);
}

/* min_rate above the cap is clamped to it. */
static void test_min_rate_clamped(void **state)
{
    const struct clw_ratelimit_opts o = {2, 0, 5, 0, 0};
    struct clw_ratelimit *rl = clw_ratelimit_new(&o);

    (void)state;
    assert_non_null(rl);
    clw_ratelimit_answered(rl, "k", 0, 0, 1, -1);
    assert_true(fabs(clw_ratelimit_rate(rl, "k", 0) - 2) < 1e-9);
    clw_ratelimit_free(rl);
}

/* NULL limiter or key: no limiting, no crash. */
static void test_null_arguments(void **state)
{
    const struct clw_ratelimit_opts o = Q100;
    struct clw_ratelimit *rl = clw_ratelimit_new(&o);
    struct clw_ratelimit_stats st;

    (void)state;
    assert_non_null(rl);
    assert_int_equal(clw_ratelimit_acquire(NULL, "k", 0), 0);
    assert_int_equal(clw_ratelimit_acquire(rl, NULL, 0), 0);
    clw_ratelimit_answered(NULL, "k", 0, 0, 1, 1000);
    clw_ratelimit_answered(rl, NULL, 0, 0, 1, 1000);
    clw_ratelimit_set_share(NULL, "k", 0.5, 0);
    assert_true(clw_ratelimit_rate(NULL, "k", 0) == 0);
    assert_true(clw_ratelimit_rate(rl, NULL, 0) == 0);
    clw_ratelimit_stats(NULL, "k", 0, &st);
    assert_true(st.rate == 0 && st.admitted == 0);
    clw_ratelimit_foreach(NULL, 0, NULL, NULL);
    clw_ratelimit_foreach(rl, 0, NULL, NULL);
    clw_ratelimit_free(rl);
}

/* ---- statistics ---------------------------------------------------------------------------- */

struct seen {
    char keys[4][64];
    struct clw_ratelimit_stats st[4];
    int n;
};

static void collect(const char *key, const struct clw_ratelimit_stats *st, void *arg)
{
    struct seen *seen = arg;

    assert_true(seen->n < 4);
    snprintf(seen->keys[seen->n], sizeof(seen->keys[0]), "%s", key);
    seen->st[seen->n++] = *st;
}

static const struct clw_ratelimit_stats *find(const struct seen *seen, const char *key)
{
    for (int i = 0; i < seen->n; i++)
        if (strcmp(seen->keys[i], key) == 0)
            return &seen->st[i];
    fail_msg("key %s not visited", key);
    return NULL;
}

static void test_stats(void **state)
{
    const struct clw_ratelimit_opts o = Q100;
    struct clw_ratelimit *rl = clw_ratelimit_new(&o);
    struct clw_ratelimit_stats st;
    struct seen seen = {0};
    const struct clw_ratelimit_stats *a;

    (void)state;
    assert_non_null(rl);
    /* an unseen key: its starting rate, the default share, no calls; nothing is made */
    clw_ratelimit_set_share(rl, NULL, 0.5, 0);
    clw_ratelimit_stats(rl, "AKID|ap-guangzhou|AttachClassicLinkVpc", 0, &st);
    assert_true(fabs(st.rate - 25) < 1e-9 && st.share == 0.5);
    assert_true(st.admitted == 0 && st.throttled == 0);
    clw_ratelimit_foreach(rl, 0, collect, &seen);
    assert_int_equal(seen.n, 0);

    for (int i = 0; i < 7; i++)
        clw_ratelimit_answered(rl, "AKID|ap-guangzhou|AttachClassicLinkVpc", 10, 60, 0, -1);
    clw_ratelimit_answered(rl, "AKID|ap-guangzhou|AttachClassicLinkVpc", 10, 60, 1, -1);
    clw_ratelimit_answered(rl, "AKID|ap-guangzhou|AttachClassicLinkVpc", 10, 70, 1, -1);
    assert_int_equal(clw_ratelimit_acquire(rl, "AKID|ap-shanghai|DetachClassicLinkVpc", 80), 0);
    clw_ratelimit_set_share(rl, "AKID|ap-shanghai|DetachClassicLinkVpc", 0.25, 80);

    clw_ratelimit_foreach(rl, 100, collect, &seen);
    assert_int_equal(seen.n, 2);
    a = find(&seen, "AKID|ap-guangzhou|AttachClassicLinkVpc");
    assert_int_equal(a->admitted, 7);
    assert_int_equal(a->throttled, 2);
    assert_true(a->share == 0.5);
    clw_ratelimit_stats(rl, "AKID|ap-guangzhou|AttachClassicLinkVpc", 100, &st);
    assert_true(st.rate == a->rate && st.rate == clw_ratelimit_rate(rl,
                                                                    "AKID|ap-guangzhou|"
                                                                    "AttachClassicLinkVpc",
                                                                    100));
    /* cut once (the second throttle answers a call sent before the cut), from its start of 25:
     * the ceiling 20 (7 admitted, but a cut takes at most 20 %), recovering for 40 ms */
    assert_true(fabs(a->rate - RECOVERING(20, 40)) < 1e-9);
    a = find(&seen, "AKID|ap-shanghai|DetachClassicLinkVpc");
    assert_true(a->admitted == 0 && a->throttled == 0 && a->share == 0.25);
    assert_true(fabs(a->rate - 12.5) < 1e-9);
    clw_ratelimit_free(rl);
}

/* ---- many keys ----------------------------------------------------------------------------- */

/* 200000 distinct keys (a region per request, say): keys idle for a minute are swept out and
 * start afresh; held and recently throttled keys keep their state through the sweeps. */
static void test_many_keys(void **state)
{
    const struct clw_ratelimit_opts o = {0, 20, 1, 0.1, 3};
    struct clw_ratelimit *rl = clw_ratelimit_new(&o);
    char key[64];

    (void)state;
    assert_non_null(rl);
    clw_ratelimit_answered(rl, "hot", 0, 0, 1, 2000000);
    for (int i = 0; i < 200000; i++) {
        int64_t now = (int64_t)i * 5; /* 5 ms apart: keys idle for a minute are at rest */

        snprintf(key, sizeof(key), "AKID|region-%d|AttachClassicLinkVpc", i);
        /* a fresh key: 10 calls/s, a bucket of one call */
        assert_int_equal(clw_ratelimit_acquire(rl, key, now), 0);
        if (clw_ratelimit_acquire(rl, key, now) != 100)
            fail_msg("key %d: second call not refused", i);
        if (i % 1000 == 0)
            clw_ratelimit_answered(rl, key, now, now, 1, -1);
    }
    /* the held key kept its hold and its ceiling: 80 % of its start (no calls admitted) */
    assert_int_equal(clw_ratelimit_acquire(rl, "hot", 1000000), 1000000);
    assert_true(fabs(clw_ratelimit_rate(rl, "hot", 1000000) - 0.97 * 8) < 1e-9);
    /* a key throttled 5 s ago kept its cut: 80 % of its ceiling, 80 % of its start */
    snprintf(key, sizeof(key), "AKID|region-%d|AttachClassicLinkVpc", 199000);
    assert_true(fabs(clw_ratelimit_rate(rl, key, 995000) - 0.8 * 8) < 1e-9);
    /* a key idle for 16 minutes was swept: it starts afresh */
    assert_int_equal(clw_ratelimit_acquire(rl, "AKID|region-5|AttachClassicLinkVpc", 1000000), 0);
    assert_int_equal(clw_ratelimit_acquire(rl, "AKID|region-5|AttachClassicLinkVpc", 1000000), 100);
    clw_ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scripts),
        cmocka_unit_test(test_opts),
        cmocka_unit_test(test_min_rate_clamped),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_many_keys),
    };

    return cmocka_run_group_tests_name("ratelimit", tests, NULL, NULL);
}
