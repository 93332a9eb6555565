/* Unit tests for ratelimit: scripted token-bucket, AIMD and Retry-After steps on a simulated
 * clock, option checks, many keys, and convergence to a simulated server quota. */
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
    THR,   /* throttled(key, now, arg = retry_after_ms) */
    RATE,  /* rate(key, now) must be rate (within 1e-6) */
    DRAIN, /* exactly arg acquire(key, now) calls succeed, the next one waits */
};

struct step {
    enum step_op op;
    const char *key;
    int64_t now;
    int64_t arg; /* ACQ: the wait wanted; THR: retry_after_ms */
    double rate; /* RATE: the rate wanted */
};

/* clang-format off */
#define A(key, now, wait)    {ACQ, (key), (now), (wait), 0}
#define T(key, now, retry)   {THR, (key), (now), (retry), 0}
#define R(key, now, rate)    {RATE, (key), (now), 0, (rate)}
#define D(key, now, n)       {DRAIN, (key), (now), (n), 0}
/* clang-format on */
#define MAX_STEPS 24

struct script_case {
    const char *name;
    struct clw_ratelimit_opts opts; /* rate, burst, min_rate, decrease, increase, cooldown_ms */
    struct step steps[MAX_STEPS];
};

/* rate 10/s, burst 1, min 1, halve, no recovery, 1 s cooldown */
/* clang-format off */
#define FIXED10 {10, 1, 1, 0.5, 0, 1000}
/* clang-format on */

static const struct script_case script_cases[] = {
    {"rate 0 is unlimited",
     {0, 1, 1, 0.5, 1, 1000},
     {A("k", 0, 0), A("k", 0, 0), A("k", 0, 0), T("k", 0, 5000), A("k", 1, 0), R("k", 1, 0)}},
    {"negative rate is unlimited, whatever the rest",
     {-1, 0, 0, 7, -3, -1},
     {A("k", 0, 0), A("k", 0, 0), R("k", 0, -1)}},
    {"burst, then one call per 1/rate",
     {10, 3, 1, 0.5, 0, 1000},
     /* a refused call takes nothing; at 350 ms there are 2.5 tokens */
     {A("k", 0, 0), A("k", 0, 0), A("k", 0, 0), A("k", 0, 100), A("k", 0, 100), A("k", 50, 50),
      A("k", 100, 0), A("k", 100, 100), A("k", 350, 0), A("k", 350, 0), A("k", 350, 50)}},
    {"the bucket holds at most burst",
     {10, 2, 1, 0.5, 0, 1000},
     {A("k", 0, 0), A("k", 0, 0), A("k", 0, 100), A("k", 100000, 0), A("k", 100000, 0),
      A("k", 100000, 100)}},
    {"fractional rate",
     {0.5, 1, 0.1, 0.5, 0, 1000},
     {A("k", 0, 0), A("k", 0, 2000), A("k", 1500, 500), A("k", 2000, 0)}},
    {"a throttle halves the rate once per cooldown, not below min_rate",
     FIXED10,
     {R("k", 0, 10), T("k", 0, -1), R("k", 0, 5), T("k", 500, -1), R("k", 500, 5), T("k", 999, -1),
      R("k", 999, 5), T("k", 1000, -1), R("k", 1000, 2.5), T("k", 2000, -1), R("k", 2000, 1.25),
      T("k", 3000, -1), R("k", 3000, 1), T("k", 4000, -1), R("k", 4000, 1)}},
    {"cooldown 0 counts every throttle",
     {10, 1, 1, 0.5, 0, 0},
     {T("k", 0, -1), T("k", 0, -1), R("k", 0, 2.5)}},
    {"a throttle empties the bucket",
     {10, 5, 1, 0.5, 0, 1000},
     {T("k", 0, -1), A("k", 0, 200), A("k", 199, 1), A("k", 200, 0)}},
    {"the rate recovers by increase per second up to the configured rate",
     {10, 1, 1, 0.5, 1, 1000},
     {T("k", 0, -1), R("k", 0, 5), R("k", 1000, 6), R("k", 2500, 7.5), R("k", 5000, 10),
      R("k", 60000, 10), T("k", 60000, -1), R("k", 60000, 5)}},
    {"recovery counts from the last throttle",
     {10, 1, 1, 0.5, 1, 1000},
     {T("k", 0, -1), T("k", 2000, -1), /* 7 / 2 */
      R("k", 2000, 3.5), R("k", 3000, 4.5)}},
    {"tokens refill at the growing rate (its integral)",
     {10, 100, 1, 0.5, 2, 1000},
     /* 1 s from 5/s growing by 2/s per s: 5 + 1 = 6 tokens, then 1000 / 7 ms to the next;
      * 3 s more: 7 -> 10/s in 1.5 s (12.75 tokens), then 10/s for 1.5 s (15) */
     {T("k", 0, -1), D("k", 1000, 6), A("k", 1000, 143), D("k", 4000, 27), A("k", 4000, 25),
      R("k", 4000, 10)}},
    {"the refill past the cap is linear",
     {10, 100, 1, 0.5, 2, 1000},
     /* 5 -> 10/s in 2.5 s: 18.75 tokens, then 10/s for 1.5 s: 33.75 */
     {T("k", 0, -1), D("k", 4000, 33), A("k", 4000, 25), R("k", 4000, 10)}},
    {"Retry-After holds the key",
     {10, 1, 1, 0.5, 1, 1000},
     {T("k", 0, 3000), A("k", 0, 3000), A("k", 2500, 500), A("k", 2999, 1), A("k", 3000, 0),
      A("k", 3000, 125)}}, /* rate 5 + 3 = 8/s */
    {"a shorter Retry-After does not shorten a hold",
     FIXED10,
     {T("k", 0, 3000), T("k", 1000, 500), A("k", 1000, 2000)}},
    {"a longer Retry-After extends a hold",
     FIXED10,
     {T("k", 0, 1000), T("k", 500, 5000), A("k", 600, 4900)}},
    {"Retry-After 0 holds nothing", FIXED10, {T("k", 0, 0), A("k", 0, 200), A("k", 200, 0)}},
    {"no Retry-After holds nothing", FIXED10, {T("k", 0, -1), A("k", 0, 200), A("k", 200, 0)}},
    {"huge Retry-After saturates",
     FIXED10,
     {T("k", 1000, INT64_MAX), A("k", 2000, INT64_MAX - 2000)}},
    {"keys are independent",
     FIXED10,
     {A("a", 0, 0), A("a", 0, 100), A("b", 0, 0), T("b", 0, 5000), R("a", 0, 10), R("b", 0, 5),
      A("a", 100, 0), A("b", 100, 4900), A("AKID1|ap-guangzhou|AttachClassicLinkVpc", 0, 0),
      A("AKID1|ap-guangzhou|DetachClassicLinkVpc", 0, 0),
      A("AKID1|ap-guangzhou|AttachClassicLinkVpc", 0, 100)}},
    {"an unseen key has the configured rate", FIXED10, {R("never", 12345, 10)}},
    {"min_rate above the rate is clamped to it",
     {2, 1, 5, 0.5, 0, 1000},
     {T("k", 0, -1), R("k", 0, 2)}},
    {"decrease 1 only empties the bucket",
     {10, 1, 1, 1, 0, 1000},
     {T("k", 0, -1), R("k", 0, 10), A("k", 0, 100)}},
    {"a clock going back counts as no time",
     FIXED10,
     {A("k", 1000, 0), A("k", 500, 100), A("k", 1050, 50), A("k", 1100, 0)}},
    {"a throttle from before the last one is within its cooldown",
     FIXED10,
     {T("k", 5000, -1), T("k", 4000, -1), R("k", 5000, 5)}},
};

static void test_scripts(void **state)
{
    size_t i, k;

    (void)state;
    for (i = 0; i < sizeof(script_cases) / sizeof(script_cases[0]); i++) {
        const struct script_case *c = &script_cases[i];
        struct clw_ratelimit *rl = clw_ratelimit_new(&c->opts);

        if (rl == NULL)
            fail_msg("%s: new failed", c->name);
        for (k = 0; k < MAX_STEPS && c->steps[k].op != STEP_END; k++) {
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
                clw_ratelimit_throttled(rl, s->key, s->now, s->arg);
                break;
            case RATE:
                rate = clw_ratelimit_rate(rl, s->key, s->now);
                if (fabs(rate - s->rate) > 1e-6)
                    fail_msg("%s: step %zu rate(%s, %lld) = %g, want %g", c->name, k, s->key,
                             (long long)s->now, rate, s->rate);
                break;
            case DRAIN:
                for (n = 0; n < s->arg; n++) {
                    got = clw_ratelimit_acquire(rl, s->key, s->now);
                    if (got != 0)
                        fail_msg("%s: step %zu call %lld of %lld at %lld waits %lld", c->name, k,
                                 (long long)n + 1, (long long)s->arg, (long long)s->now,
                                 (long long)got);
                }
                got = clw_ratelimit_acquire(rl, s->key, s->now);
                if (got <= 0)
                    fail_msg("%s: step %zu: more than %lld calls at %lld", c->name, k,
                             (long long)s->arg, (long long)s->now);
                break;
            case STEP_END:
                break;
            }
        }
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
    {"typical", {20, 5, 0.5, 0.5, 1, 1000}, 1},
    {"burst exactly 1", {20, 1, 0.5, 0.5, 1, 1000}, 1},
    {"decrease 1", {20, 5, 0.5, 1, 1, 1000}, 1},
    {"no recovery", {20, 5, 0.5, 0.5, 0, 1000}, 1},
    {"no cooldown", {20, 5, 0.5, 0.5, 1, 0}, 1},
    {"disabled ignores the rest", {0, -1, -1, -1, -1, -1}, 1},
    {"NaN rate", {NAN, 5, 0.5, 0.5, 1, 1000}, 0},
    {"infinite rate", {INFINITY, 5, 0.5, 0.5, 1, 1000}, 0},
    {"burst below 1", {20, 0.5, 0.5, 0.5, 1, 1000}, 0},
    {"NaN burst", {20, NAN, 0.5, 0.5, 1, 1000}, 0},
    {"min_rate 0", {20, 5, 0, 0.5, 1, 1000}, 0},
    {"decrease 0", {20, 5, 0.5, 0, 1, 1000}, 0},
    {"decrease above 1", {20, 5, 0.5, 1.5, 1, 1000}, 0},
    {"negative increase", {20, 5, 0.5, 0.5, -1, 1000}, 0},
    {"infinite increase", {20, 5, 0.5, 0.5, INFINITY, 1000}, 0},
    {"negative cooldown", {20, 5, 0.5, 0.5, 1, -1}, 0},
};

static void test_opts(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(opts_cases) / sizeof(opts_cases[0]); i++) {
        struct clw_ratelimit *rl = clw_ratelimit_new(&opts_cases[i].opts);

        if ((rl != NULL) != opts_cases[i].valid)
            fail_msg("%s: new gave %p, want %s", opts_cases[i].name, (void *)rl,
                     opts_cases[i].valid ? "a limiter" : "NULL");
        clw_ratelimit_free(rl);
    }
    assert_null(clw_ratelimit_new(NULL));
    clw_ratelimit_free(NULL);
}

/* NULL limiter or key: no limiting, no crash. */
static void test_null_arguments(void **state)
{
    const struct clw_ratelimit_opts o = FIXED10;
    struct clw_ratelimit *rl = clw_ratelimit_new(&o);

    (void)state;
    assert_non_null(rl);
    assert_int_equal(clw_ratelimit_acquire(NULL, "k", 0), 0);
    assert_int_equal(clw_ratelimit_acquire(rl, NULL, 0), 0);
    clw_ratelimit_throttled(NULL, "k", 0, 1000);
    clw_ratelimit_throttled(rl, NULL, 0, 1000);
    assert_true(clw_ratelimit_rate(NULL, "k", 0) == 0);
    assert_true(clw_ratelimit_rate(rl, NULL, 0) == 10);
    clw_ratelimit_free(rl);
}

/* ---- many keys ----------------------------------------------------------------------------- */

/* 200000 distinct keys (a region per request, say): throttled and held keys keep their state
 * through the sweeps that drop keys at rest, and every key still answers correctly. */
static void test_many_keys(void **state)
{
    const struct clw_ratelimit_opts o = {10, 2, 1, 0.5, 1, 1000};
    struct clw_ratelimit *rl = clw_ratelimit_new(&o);
    char key[64];
    int i;

    (void)state;
    assert_non_null(rl);
    clw_ratelimit_throttled(rl, "hot", 0, 600000);
    for (i = 0; i < 200000; i++) {
        int64_t now = i; /* 1 ms apart: every earlier key is back at rest after 200 ms */

        snprintf(key, sizeof(key), "AKID|region-%d|AttachClassicLinkVpc", i);
        assert_int_equal(clw_ratelimit_acquire(rl, key, now), 0);
        assert_int_equal(clw_ratelimit_acquire(rl, key, now), 0);
        if (clw_ratelimit_acquire(rl, key, now) != 100)
            fail_msg("key %d: third call not refused", i);
        if (i % 1000 == 0)
            clw_ratelimit_throttled(rl, key, now, -1);
    }
    /* the held key kept its hold and its shrunk rate */
    assert_int_equal(clw_ratelimit_acquire(rl, "hot", 200000), 400000);
    assert_true(fabs(clw_ratelimit_rate(rl, "hot", 200000) - 10) < 1e-9); /* recovered */
    /* a recently throttled key kept its shrunk rate */
    assert_true(
        fabs(clw_ratelimit_rate(rl, "AKID|region-199000|AttachClassicLinkVpc", 199000) - 5) < 1e-9);
    /* a key seen long ago (maybe swept) behaves like an unseen key */
    assert_int_equal(clw_ratelimit_acquire(rl, "AKID|region-5|AttachClassicLinkVpc", 300000), 0);
    assert_int_equal(clw_ratelimit_acquire(rl, "AKID|region-5|AttachClassicLinkVpc", 300000), 0);
    assert_int_equal(clw_ratelimit_acquire(rl, "AKID|region-5|AttachClassicLinkVpc", 300000), 100);
    clw_ratelimit_free(rl);
}

/* ---- convergence to a server quota ---------------------------------------------------------- */

/* A server that answers "throttled" to every call beyond quota in one fixed 1 s window
 * (throttled calls count too), optionally with a Retry-After. */
struct fake_server {
    int quota;
    int64_t retry_after_ms; /* -1: none */
    int64_t window;
    int count;
};

static int fake_server_call(struct fake_server *s, int64_t now_ms)
{
    int64_t window = now_ms / 1000;

    if (window != s->window) {
        s->window = window;
        s->count = 0;
    }
    s->count++;
    return s->count > s->quota;
}

struct answer_event {
    int64_t at;
    int throttled;
};

#define SIM_MAX_PENDING 65536
#define SIM_END_MS      60000
#define SIM_TAIL_MS     30000 /* the achieved rate is measured over [SIM_TAIL_MS, SIM_END_MS) */

struct sim_result {
    long calls;
    long throttled;
    long tail_ok;
    long tail_throttled;
    long tail_calls;
};

/* A client that calls as fast as the limiter allows for 60 simulated seconds; answers arrive
 * latency_ms after the call and throttled ones are fed back. */
static void simulate(const struct clw_ratelimit_opts *o, struct fake_server *srv,
                     int64_t latency_ms, struct sim_result *res)
{
    static struct answer_event pending[SIM_MAX_PENDING];
    struct clw_ratelimit *rl = clw_ratelimit_new(o);
    size_t head = 0, tail = 0;
    int64_t t = 0;

    assert_non_null(rl);
    memset(res, 0, sizeof(*res));
    srv->window = -1;
    srv->count = 0;
    while (t < SIM_END_MS) {
        int64_t wait;
        int64_t next;

        while (head != tail && pending[head].at <= t) {
            if (pending[head].throttled)
                clw_ratelimit_throttled(rl, "k", pending[head].at, srv->retry_after_ms);
            head = (head + 1) % SIM_MAX_PENDING;
        }
        wait = clw_ratelimit_acquire(rl, "k", t);
        if (wait == 0) {
            int thr = fake_server_call(srv, t);

            res->calls++;
            res->throttled += thr;
            if (t >= SIM_TAIL_MS) {
                res->tail_calls++;
                res->tail_throttled += thr;
                res->tail_ok += !thr;
            }
            pending[tail].at = t + latency_ms;
            pending[tail].throttled = thr;
            tail = (tail + 1) % SIM_MAX_PENDING;
            assert_true(tail != head);
            continue;
        }
        assert_true(wait > 0);
        next = t + wait;
        if (head != tail && pending[head].at < next)
            next = pending[head].at;
        t = next;
    }
    clw_ratelimit_free(rl);
}

struct converge_case {
    const char *name;
    int quota;
    struct clw_ratelimit_opts opts;
    int64_t latency_ms;
    int64_t retry_after_ms;
    double max_throttled;      /* fraction of all calls */
    double max_tail_throttled; /* fraction of the calls of the last 30 s */
};

static const struct converge_case converge_cases[] = {
    {"quota 20, configured 80, instant answers", 20, {80, 5, 0.5, 0.5, 1, 1000}, 0, -1, 0.10, 0.05},
    {"quota 20, configured 80, 200 ms answers",
     20,
     {80, 5, 0.5, 0.5, 1, 1000},
     200,
     -1,
     0.10,
     0.05},
    {"quota 20, configured 80, Retry-After 1 s",
     20,
     {80, 5, 0.5, 0.5, 1, 1000},
     50,
     1000,
     0.10,
     0.05},
    {"quota 20, configured 160, burst 20", 20, {160, 20, 0.5, 0.5, 1, 1000}, 100, -1, 0.10, 0.05},
    {"quota 100, configured 400", 100, {400, 10, 1, 0.5, 5, 1000}, 50, -1, 0.10, 0.05},
    {"quota 5, configured 20", 5, {20, 2, 0.2, 0.5, 0.2, 1000}, 100, -1, 0.10, 0.05},
    {"quota 50, gentle decrease 0.7", 50, {200, 5, 1, 0.7, 2, 1000}, 100, -1, 0.10, 0.05},
    {"configured at the quota", 20, {20, 1, 0.5, 0.5, 1, 1000}, 100, -1, 0.10, 0.05},
    {"configured below the quota is never throttled",
     20,
     {15, 1, 0.5, 0.5, 1, 1000},
     100,
     -1,
     1e-9,
     1e-9},
    /* 50 times the quota: the rate halves once per cooldown, so the descent takes about
     * log2(50) = 6 s, and the calls of those seconds are mostly throttled. After it the
     * steady state is as calm as in the other cases. */
    {"quota 20, configured 1000: slow descent, calm after",
     20,
     {1000, 50, 0.5, 0.5, 1, 1000},
     100,
     -1,
     0.45,
     0.03},
};

static void test_convergence(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(converge_cases) / sizeof(converge_cases[0]); i++) {
        const struct converge_case *c = &converge_cases[i];
        struct fake_server srv = {c->quota, c->retry_after_ms, -1, 0};
        struct sim_result res;
        double achieved, frac, tail_frac;

        simulate(&c->opts, &srv, c->latency_ms, &res);
        achieved = (double)res.tail_ok / ((SIM_END_MS - SIM_TAIL_MS) / 1000.0);
        frac = res.calls > 0 ? (double)res.throttled / (double)res.calls : 1.0;
        tail_frac = res.tail_calls > 0 ? (double)res.tail_throttled / (double)res.tail_calls : 1.0;
        print_message("%s: %ld calls, %ld throttled (%.1f%%), last 30 s %.2f/s ok, %.1f%% "
                      "throttled\n",
                      c->name, res.calls, res.throttled, 100 * frac, achieved, 100 * tail_frac);
        if (achieved < 0.5 * c->quota || achieved > 1.05 * c->quota)
            fail_msg("%s: achieved %.2f/s, want within [%.2f, %.2f]", c->name, achieved,
                     0.5 * c->quota, 1.05 * c->quota);
        if (frac >= c->max_throttled)
            fail_msg("%s: %.1f%% of calls throttled (retry storm), want < %.1f%%", c->name,
                     100 * frac, 100 * c->max_throttled);
        if (tail_frac >= c->max_tail_throttled)
            fail_msg("%s: %.1f%% of the last 30 s throttled, want < %.1f%%", c->name,
                     100 * tail_frac, 100 * c->max_tail_throttled);
    }
}

/* The simulation can tell a storm: a limiter that never shrinks (decrease 1) keeps calling at
 * the configured 80/s against a quota of 20/s, and most calls come back throttled. */
static void test_convergence_detects_a_storm(void **state)
{
    const struct clw_ratelimit_opts o = {80, 5, 0.5, 1, 1, 1000};
    struct fake_server srv = {20, -1, -1, 0};
    struct sim_result res;

    (void)state;
    simulate(&o, &srv, 0, &res);
    print_message("no decrease: %ld calls, %ld throttled\n", res.calls, res.throttled);
    assert_true(res.throttled * 2 > res.calls);
    assert_true(res.tail_ok <= 20 * 30);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scripts),        cmocka_unit_test(test_opts),
        cmocka_unit_test(test_null_arguments), cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_convergence),    cmocka_unit_test(test_convergence_detects_a_storm),
    };

    return cmocka_run_group_tests_name("ratelimit", tests, NULL, NULL);
}
