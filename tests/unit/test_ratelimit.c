/* Unit tests for ratelimit: scripted token-bucket, throttle and Retry-After steps on a simulated
 * clock, option checks, many keys, and settling under a simulated server quota. */
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
    THR,   /* answered(key, now, throttled, retry_after_ms = arg) */
    OKS,   /* arg answers admitted by the API at now */
    RATE,  /* rate(key, now) must be rate (within 1e-6) */
    DRAIN, /* exactly arg acquire(key, now) calls succeed, the next one waits */
};

struct step {
    enum step_op op;
    const char *key;
    int64_t now;
    int64_t arg;
    double rate; /* RATE: the rate wanted */
};

/* clang-format off */
#define A(key, now, wait)    {ACQ, (key), (now), (wait), 0}
#define T(key, now, retry)   {THR, (key), (now), (retry), 0}
#define OK(key, now, n)      {OKS, (key), (now), (n), 0}
#define R(key, now, rate)    {RATE, (key), (now), 0, (rate)}
#define D(key, now, n)       {DRAIN, (key), (now), (n), 0}
/* clang-format on */
#define MAX_STEPS 24

struct script_case {
    const char *name;
    struct clw_ratelimit_opts opts; /* rate, min_rate, decrease, increase, burst_s, cooldown_ms */
    struct step steps[MAX_STEPS];
};

/* configured 10/s, min 1, decrease 0.5, no growth, burst 1 call, 1 s cooldown */
/* clang-format off */
#define FIXED10 {10, 1, 0.5, 0, 0, 1000}
/* clang-format on */

static const struct script_case script_cases[] = {
    {"no configured rate: unlimited until the first throttle, then what the API took",
     {0, 1, 0.9, 0.02, 0.05, 1000},
     {A("k", 0, 0), A("k", 0, 0), A("k", 0, 0), R("k", 0, 0), OK("k", 50, 10), R("k", 60, 0),
      A("k", 60, 0), T("k", 100, -1), R("k", 100, 9), A("k", 100, 112), R("other", 100, 0),
      A("other", 100, 0)}},
    {"the estimate rises with the rest of a burst's answers, under the rate before",
     {20, 1, 0.9, 0, 0.05, 1000},
     {OK("k", 0, 5), T("k", 10, -1), R("k", 10, 4.5), OK("k", 20, 10), R("k", 20, 13.5),
      OK("k", 30, 20), R("k", 30, 18), T("k", 500, -1), R("k", 500, 18),
      /* a second later the burst's answers are out of the window: the API took nothing */
      T("k", 1010, -1), R("k", 1010, 1)}},
    {"unconfigured: later answers raise a first estimate made too early",
     {0, 1, 0.9, 0, 0.05, 1000},
     {OK("k", 0, 3), T("k", 0, -1), R("k", 0, 2.7), T("k", 1, -1), OK("k", 2, 97), R("k", 2, 90),
      OK("k", 950, 50), R("k", 950, 135),
      /* past the cooldown: only the answers of the last second count */
      T("k", 1000, -1), R("k", 1000, 45)}},
    {"burst_s sizes the bucket; a throttle empties it; Retry-After holds the key",
     {10, 1, 0.9, 0, 0.5, 1000},
     {D("k", 0, 5), OK("k", 0, 5), T("k", 0, 3000), R("k", 0, 4.5), A("k", 0, 3000),
      A("k", 2999, 1), A("k", 3000, 0), A("k", 3000, 0), A("k", 3000, 167)}},
    {"the bucket holds at least one call",
     FIXED10,
     {A("k", 0, 0), A("k", 0, 100), A("k", 50, 50), A("k", 100, 0), A("k", 100000, 0),
      A("k", 100000, 100)}},
    {"fractional rate",
     {0.5, 0.1, 0.5, 0, 0, 1000},
     {A("k", 0, 0), A("k", 0, 2000), A("k", 1500, 500), A("k", 2000, 0)}},
    {"the rate grows only while calls wait",
     {10, 1, 0.5, 0.1, 0, 1000},
     {T("k", 0, -1), R("k", 0, 1), R("k", 5000, 1), A("k", 5000, 0), A("k", 5000, 1000),
      R("k", 6000, 1.1), R("k", 7000, 1)}},
    {"... and not past the configured rate",
     {10, 1, 0.5, 100, 0, 1000},
     {T("k", 0, -1), R("k", 0, 1), A("k", 0, 1000), R("k", 500, 10), R("k", 900, 10)}},
    {"a throttle counts once per cooldown",
     FIXED10,
     {OK("k", 0, 20), T("k", 0, -1), R("k", 0, 5), T("k", 500, -1), R("k", 500, 5), T("k", 999, -1),
      R("k", 999, 5), OK("k", 1000, 4), T("k", 1000, -1), R("k", 1000, 2)}},
    {"cooldown 0 counts every throttle",
     {10, 1, 0.5, 0, 0, 0},
     {OK("k", 0, 10), T("k", 0, -1), T("k", 0, -1), R("k", 0, 2.5)}},
    {"min_rate is the floor", {10, 2, 0.5, 0, 0, 1000}, {T("k", 0, -1), R("k", 0, 2)}},
    {"min_rate above the rate is clamped to it",
     {2, 5, 0.5, 0, 0, 1000},
     {T("k", 0, -1), R("k", 0, 2)}},
    {"decrease 1 keeps the rate when the API took more",
     {10, 1, 1, 0, 0, 1000},
     {OK("k", 0, 20), T("k", 0, -1), R("k", 0, 10), A("k", 0, 100)}},
    {"a shorter Retry-After does not shorten a hold",
     FIXED10,
     {T("k", 0, 3000), T("k", 1000, 500), A("k", 1000, 2000)}},
    {"a longer Retry-After extends a hold",
     FIXED10,
     {T("k", 0, 1000), T("k", 500, 5000), A("k", 600, 4900)}},
    {"Retry-After 0 holds nothing", FIXED10, {T("k", 0, 0), A("k", 0, 1000), A("k", 1000, 0)}},
    {"huge Retry-After saturates",
     FIXED10,
     {T("k", 1000, INT64_MAX), A("k", 2000, INT64_MAX - 2000)}},
    {"Retry-After holds an unconfigured key too",
     {0, 1, 0.9, 0, 0, 1000},
     {OK("k", 0, 50), T("k", 0, 2000), A("k", 1000, 1000), A("k", 2000, 0), R("k", 2000, 45)}},
    {"keys are independent",
     FIXED10,
     {A("a", 0, 0), A("a", 0, 100), A("b", 0, 0), OK("b", 0, 10), T("b", 0, 5000), R("a", 0, 10),
      R("b", 0, 5), A("a", 100, 0), A("b", 100, 4900),
      A("AKID1|ap-guangzhou|AttachClassicLinkVpc", 0, 0),
      A("AKID1|ap-guangzhou|DetachClassicLinkVpc", 0, 0),
      A("AKID1|ap-guangzhou|AttachClassicLinkVpc", 0, 100)}},
    {"an unseen key has the configured rate", FIXED10, {R("never", 12345, 10)}},
    {"a clock going back counts as no time",
     FIXED10,
     {A("k", 1000, 0), A("k", 500, 100), A("k", 1050, 50), A("k", 1100, 0)}},
    {"a throttle from before the last one is within its cooldown",
     FIXED10,
     {OK("k", 4900, 8), T("k", 5000, -1), T("k", 4000, -1), R("k", 5000, 4)}},
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
        clw_ratelimit_answered(rl, s->key, s->now, 1, s->arg);
        break;
    case OKS:
        for (n = 0; n < s->arg; n++)
            clw_ratelimit_answered(rl, s->key, s->now, 0, -1);
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
                         (long long)n + 1, (long long)s->arg, (long long)s->now, (long long)got);
        }
        got = clw_ratelimit_acquire(rl, s->key, s->now);
        if (got <= 0)
            fail_msg("%s: step %zu: more than %lld calls at %lld", c->name, k, (long long)s->arg,
                     (long long)s->now);
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
    {"typical", {20, 0.5, 0.9, 0.02, 0.05, 1000}, 1},
    {"unconfigured", {0, 0.5, 0.9, 0.02, 0.05, 1000}, 1},
    {"negative rate is unconfigured", {-1, 0.5, 0.9, 0.02, 0.05, 1000}, 1},
    {"decrease 1", {20, 0.5, 1, 0.02, 0.05, 1000}, 1},
    {"no growth", {20, 0.5, 0.9, 0, 0.05, 1000}, 1},
    {"no burst", {20, 0.5, 0.9, 0.02, 0, 1000}, 1},
    {"no cooldown", {20, 0.5, 0.9, 0.02, 0.05, 0}, 1},
    {"NaN rate", {NAN, 0.5, 0.9, 0.02, 0.05, 1000}, 0},
    {"infinite rate", {INFINITY, 0.5, 0.9, 0.02, 0.05, 1000}, 0},
    {"min_rate 0", {20, 0, 0.9, 0.02, 0.05, 1000}, 0},
    {"NaN min_rate", {20, NAN, 0.9, 0.02, 0.05, 1000}, 0},
    {"decrease 0", {20, 0.5, 0, 0.02, 0.05, 1000}, 0},
    {"decrease above 1", {20, 0.5, 1.5, 0.02, 0.05, 1000}, 0},
    {"negative increase", {20, 0.5, 0.9, -1, 0.05, 1000}, 0},
    {"infinite increase", {20, 0.5, 0.9, INFINITY, 0.05, 1000}, 0},
    {"negative burst", {20, 0.5, 0.9, 0.02, -1, 1000}, 0},
    {"negative cooldown", {20, 0.5, 0.9, 0.02, 0.05, -1}, 0},
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

/* NULL limiter or key: no limiting, no crash. */
static void test_null_arguments(void **state)
{
    const struct clw_ratelimit_opts o = FIXED10;
    struct clw_ratelimit *rl = clw_ratelimit_new(&o);

    (void)state;
    assert_non_null(rl);
    assert_int_equal(clw_ratelimit_acquire(NULL, "k", 0), 0);
    assert_int_equal(clw_ratelimit_acquire(rl, NULL, 0), 0);
    clw_ratelimit_answered(NULL, "k", 0, 1, 1000);
    clw_ratelimit_answered(rl, NULL, 0, 1, 1000);
    assert_true(clw_ratelimit_rate(NULL, "k", 0) == 0);
    assert_true(clw_ratelimit_rate(rl, NULL, 0) == 0);
    clw_ratelimit_free(rl);
}

/* ---- many keys ----------------------------------------------------------------------------- */

/* 200000 distinct keys (a region per request, say): throttled and held keys keep their state
 * through the sweeps that drop keys at rest, and every key still answers correctly. */
static void test_many_keys(void **state)
{
    const struct clw_ratelimit_opts o = {10, 1, 0.5, 0, 0.2, 1000};
    struct clw_ratelimit *rl = clw_ratelimit_new(&o);
    char key[64];

    (void)state;
    assert_non_null(rl);
    clw_ratelimit_answered(rl, "hot", 0, 1, 600000);
    for (int i = 0; i < 200000; i++) {
        int64_t now = i; /* 1 ms apart: every earlier key is back at rest after 200 ms */

        snprintf(key, sizeof(key), "AKID|region-%d|AttachClassicLinkVpc", i);
        assert_int_equal(clw_ratelimit_acquire(rl, key, now), 0);
        assert_int_equal(clw_ratelimit_acquire(rl, key, now), 0);
        if (clw_ratelimit_acquire(rl, key, now) != 100)
            fail_msg("key %d: third call not refused", i);
        if (i % 1000 == 0) {
            for (int k = 0; k < 8; k++)
                clw_ratelimit_answered(rl, key, now, 0, -1);
            clw_ratelimit_answered(rl, key, now, 1, -1);
        }
    }
    /* the held key kept its hold and its shrunk rate */
    assert_int_equal(clw_ratelimit_acquire(rl, "hot", 200000), 400000);
    assert_true(fabs(clw_ratelimit_rate(rl, "hot", 200000) - 1) < 1e-9);
    /* a recently throttled key kept its shrunk rate: half of what the API took */
    assert_true(
        fabs(clw_ratelimit_rate(rl, "AKID|region-199000|AttachClassicLinkVpc", 199000) - 4) < 1e-9);
    /* a key seen long ago (maybe swept) behaves like an unseen key */
    assert_int_equal(clw_ratelimit_acquire(rl, "AKID|region-5|AttachClassicLinkVpc", 300000), 0);
    assert_int_equal(clw_ratelimit_acquire(rl, "AKID|region-5|AttachClassicLinkVpc", 300000), 0);
    assert_int_equal(clw_ratelimit_acquire(rl, "AKID|region-5|AttachClassicLinkVpc", 300000), 100);
    clw_ratelimit_free(rl);
}

/* ---- settling under a server quota ---------------------------------------------------------- */

/* A server that admits quota calls per second: over a sliding second of admitted calls (as
 * vpc-sim does), or in fixed 1 s windows where throttled calls count too. */
struct fake_server {
    int quota;
    int sliding;
    int64_t retry_after_ms; /* -1: none */
    int64_t window;         /* fixed: the current window */
    int count;              /* fixed: calls in it */
    int64_t *times;         /* sliding: admit times, a ring of quota entries */
    int head, n;
};

static int fake_server_throttles(struct fake_server *s, int64_t now_ms)
{
    if (!s->sliding) {
        if (now_ms / 1000 != s->window) {
            s->window = now_ms / 1000;
            s->count = 0;
        }
        return ++s->count > s->quota;
    }
    if (s->n < s->quota) {
        s->times[(s->head + s->n++) % s->quota] = now_ms;
        return 0;
    }
    if (s->times[s->head] > now_ms - 1000)
        return 1;
    s->times[s->head] = now_ms;
    s->head = (s->head + 1) % s->quota;
    return 0;
}

struct answer_event {
    int64_t at;
    int throttled;
};

#define SIM_MAX_PENDING 65536
#define SIM_END_MS      60000
#define SIM_SETTLED_MS  5000 /* measured over [SIM_SETTLED_MS, SIM_END_MS) */

struct sim_result {
    long calls;
    long throttled;
    long tail_ok;
    long tail_throttled;
    long tail_calls;
};

/* A client with max_in_flight call slots that calls as fast as the limiter allows for 60
 * simulated seconds; answers arrive latency_ms after the call and are fed back. */
static void simulate(const struct clw_ratelimit_opts *o, struct fake_server *srv,
                     int64_t latency_ms, int max_in_flight, struct sim_result *res)
{
    static struct answer_event pending[SIM_MAX_PENDING];
    struct clw_ratelimit *rl = clw_ratelimit_new(o);
    size_t head = 0, tail = 0;
    int in_flight = 0;
    int64_t t = 0;

    assert_non_null(rl);
    memset(res, 0, sizeof(*res));
    srv->window = -1;
    srv->count = 0;
    srv->head = srv->n = 0;
    srv->times = calloc((size_t)srv->quota, sizeof(*srv->times));
    assert_non_null(srv->times);
    while (t < SIM_END_MS) {
        int64_t wait = 0;
        int64_t next;

        while (head != tail && pending[head].at <= t) {
            clw_ratelimit_answered(rl, "k", pending[head].at, pending[head].throttled,
                                   pending[head].throttled ? srv->retry_after_ms : -1);
            head = (head + 1) % SIM_MAX_PENDING;
            in_flight--;
        }
        if (in_flight < max_in_flight) {
            wait = clw_ratelimit_acquire(rl, "k", t);
            if (wait == 0) {
                int thr = fake_server_throttles(srv, t);

                res->calls++;
                res->throttled += thr;
                if (t >= SIM_SETTLED_MS) {
                    res->tail_calls++;
                    res->tail_throttled += thr;
                    res->tail_ok += !thr;
                }
                pending[tail].at = t + latency_ms;
                pending[tail].throttled = thr;
                tail = (tail + 1) % SIM_MAX_PENDING;
                in_flight++;
                assert_true(tail != head);
                continue;
            }
        }
        next = wait > 0 ? t + wait : SIM_END_MS;
        if (head != tail && pending[head].at < next)
            next = pending[head].at;
        t = next > t ? next : t + 1;
    }
    free(srv->times);
    clw_ratelimit_free(rl);
}

struct converge_case {
    const char *name;
    int quota;
    int sliding;
    struct clw_ratelimit_opts opts;
    int64_t latency_ms;
    int max_in_flight;
    int64_t retry_after_ms;
    double min_share;          /* of the quota, admitted per second after 5 s */
    double max_tail_throttled; /* fraction of the calls after 5 s */
};

/* The worker's options: see worker setup. */
#define WORKER_OPTS(rate)                                                                          \
    {                                                                                              \
        (rate), 1, 0.9, 0.02, 0.05, 1000                                                           \
    }

static const struct converge_case converge_cases[] = {
    {"unconfigured, quota 100, 256 in flight, 50 ms", 100, 1, WORKER_OPTS(0), 50, 256, -1, 0.85,
     0.02},
    {"unconfigured, quota 100, fixed windows", 100, 0, WORKER_OPTS(0), 50, 256, -1, 0.85, 0.02},
    {"unconfigured, quota 100, instant answers", 100, 1, WORKER_OPTS(0), 0, 256, -1, 0.85, 0.02},
    {"unconfigured, quota 100, 300 ms answers", 100, 1, WORKER_OPTS(0), 300, 1024, -1, 0.85, 0.02},
    {"unconfigured, quota 20, 16 in flight", 20, 1, WORKER_OPTS(0), 50, 16, -1, 0.85, 0.02},
    {"unconfigured, quota 1000, 1024 in flight, 20 ms", 1000, 1, WORKER_OPTS(0), 20, 1024, -1, 0.85,
     0.02},
    {"unconfigured, quota 100, Retry-After 1 s", 100, 1, WORKER_OPTS(0), 50, 256, 1000, 0.80, 0.02},
    {"configured 400, quota 100", 100, 1, WORKER_OPTS(400), 50, 256, -1, 0.85, 0.02},
    {"configured 1000, quota 20", 20, 1, WORKER_OPTS(1000), 100, 256, -1, 0.85, 0.02},
    {"configured at the quota", 100, 1, WORKER_OPTS(100), 50, 256, -1, 0.85, 0.02},
    {"configured below the quota is never throttled", 100, 1, WORKER_OPTS(80), 50, 256, -1, 0.79,
     1e-9},
};

static void test_settles_under_the_quota(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(converge_cases) / sizeof(converge_cases[0]); i++) {
        const struct converge_case *c = &converge_cases[i];
        struct fake_server srv = {
            .quota = c->quota, .sliding = c->sliding, .retry_after_ms = c->retry_after_ms};
        struct sim_result res;

        simulate(&c->opts, &srv, c->latency_ms, c->max_in_flight, &res);
        double secs = (SIM_END_MS - SIM_SETTLED_MS) / 1000.0;
        double achieved = (double)res.tail_ok / secs;
        double tail_frac =
            res.tail_calls > 0 ? (double)res.tail_throttled / (double)res.tail_calls : 1.0;
        print_message("%s: %ld calls, %ld throttled; after 5 s %.2f/s admitted (%.0f%% of the "
                      "quota), %.2f%% throttled\n",
                      c->name, res.calls, res.throttled, achieved, 100 * achieved / c->quota,
                      100 * tail_frac);
        if (achieved < c->min_share * c->quota || achieved > 1.0 * c->quota)
            fail_msg("%s: admitted %.2f/s, want within [%.2f, %d]", c->name, achieved,
                     c->min_share * c->quota, c->quota);
        if (tail_frac > c->max_tail_throttled)
            fail_msg("%s: %.2f%% of the calls after 5 s throttled, want <= %.2f%%", c->name,
                     100 * tail_frac, 100 * c->max_tail_throttled);
    }
}

/* The simulation can tell oscillation: the old rule (halve the rate on a throttle, whatever the
 * API took) spends most of its time far under the quota. */
static void test_halving_would_oscillate(void **state)
{
    const struct clw_ratelimit_opts o = {100, 1, 0.5, 0.02, 0.05, 1000};
    struct fake_server srv = {.quota = 100, .sliding = 1, .retry_after_ms = -1};
    struct sim_result res;

    (void)state;
    simulate(&o, &srv, 50, 256, &res);
    print_message("halving: %.2f/s admitted after 5 s\n",
                  (double)res.tail_ok / ((SIM_END_MS - SIM_SETTLED_MS) / 1000.0));
    assert_true((double)res.tail_ok / ((SIM_END_MS - SIM_SETTLED_MS) / 1000.0) < 85);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scripts),
        cmocka_unit_test(test_opts),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_settles_under_the_quota),
        cmocka_unit_test(test_halving_would_oscillate),
    };

    return cmocka_run_group_tests_name("ratelimit", tests, NULL, NULL);
}
