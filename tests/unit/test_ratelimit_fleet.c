/* Unit tests for ratelimit in a fleet: K simulated workers, each with its own limiter and a
 * backlog, share one sliding-second quota on virtual time (harness/fleet_sim.c). Settled share
 * and throttled share of the quota, convergence, fairness, a stranger spending part of the
 * quota, members joining and leaving, the start-up burst. */
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
#include "harness/fleet_sim.h"

/* The worker's options with api.quota q (api.rate_limit unset). */
#define OPTS(q_)                                                                                   \
    {                                                                                              \
        .rate = 0, .quota = (q_), .min_rate = 1, .burst_s = 0.05                                   \
    }

/* K members on a quota of 100 calls/s, answers in 50-60 ms, 256 calls in flight each, shares
 * set from the assignment, api.quota 100; rebalances take 1 s. */
#define FLEET(k_, stranger_, end_s_)                                                               \
    {                                                                                              \
        .quota = 100, .stranger = (stranger_), .members = (k_), .latency_ms = 50, .jitter_ms = 10, \
        .max_in_flight = 256, .wired = 1, .rebalance_ms = 1000, .opts = OPTS(100),                 \
        .end_ms = (end_s_)*1000                                                                    \
    }

/* Checked at the start of a run and of a member that joins. */
#define START_THROTTLED 5    /* at most this many calls throttled in the first 2 s */
#define START_ADMITTED  0.55 /* at least this share of 2 s of the quota left by the stranger */
#define START_CONVERGED 8    /* 3 s in a row at >= 90 % of it ended by this second */

struct fleet_case {
    const char *name;
    struct fleet_params p;
    int settled_s;     /* the settled window runs from here to the end */
    double min_rate;   /* fleet calls admitted per second over it, at least ... */
    double max_rate;   /* ... and at most */
    double max_thr;    /* throttled share of the fleet's calls over it, at most */
    double min_window; /* every 3 s of it admit at least this many calls per second on
                          average: no collapse */
    double min_fair;   /* Jain's index of the members' admitted calls over it (0: unchecked) */
    int check_start;   /* the run starts without a burst: START_* */
    double after_min;  /* from 5 s after each rebalance to the next event, every second admits
                          at least this share of the quota (0: unchecked) */
    int check_joiner;  /* a member that joined has at most START_THROTTLED calls throttled in
                          its first 2 s */
};

/* K members on a quota of 100 calls/s, as FLEET, with events. */
#define EVENTS(k_, wired_, ...)                                                                    \
    {                                                                                              \
        .quota = 100, .members = (k_), .latency_ms = 50, .jitter_ms = 10, .max_in_flight = 256,    \
        .wired = (wired_), .rebalance_ms = 1000, .opts = OPTS(100), .end_ms = 75000, .events = {   \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }
/* Three members on another quota, latency, calls in flight. */
#define SHAPE(quota_, api_quota_, latency_, jitter_, in_flight_, wired_)                           \
    {                                                                                              \
        .quota = (quota_), .members = 3, .latency_ms = (latency_), .jitter_ms = (jitter_),         \
        .max_in_flight = (in_flight_), .wired = (wired_), .rebalance_ms = 1000,                    \
        .opts = OPTS(api_quota_), .end_ms = 75000                                                  \
    }
/* A settled window from from_ s to the end: calls admitted per second in [lo_, hi_], at most
 * thr_ of them throttled, every 3 s at least 90 % of lo_ per second. */
#define SETTLED(from_, lo_, hi_, thr_)                                                             \
    .settled_s = (from_), .min_rate = (lo_), .max_rate = (hi_), .max_thr = (thr_),                 \
    .min_window = 0.9 * (lo_)

/* clang-format off */
static const struct fleet_case fleet_cases[] = {
    {"1 worker", FLEET(1, 0, 75), SETTLED(15, 90, 100, 0.02), .check_start = 1},
    {"2 workers", FLEET(2, 0, 75), SETTLED(15, 90, 100, 0.02), .min_fair = 0.9, .check_start = 1},
    {"3 workers", FLEET(3, 0, 75), SETTLED(15, 90, 100, 0.02), .min_fair = 0.9, .check_start = 1},
    {"5 workers", FLEET(5, 0, 75), SETTLED(15, 90, 100, 0.02), .min_fair = 0.9, .check_start = 1},
    {"1 worker, a stranger spends 40/s", FLEET(1, 40, 75), SETTLED(15, 55, 60, 0.02),
     .check_start = 1},
    {"3 workers, a stranger spends 40/s", FLEET(3, 40, 75), SETTLED(15, 55, 60, 0.02),
     .min_fair = 0.85, .check_start = 1},
    {"3 workers, one leaves at 30 s", EVENTS(3, 1, {FLEET_LEAVE, 30000}),
     SETTLED(40, 90, 100, 0.02), .min_fair = 0.9, .after_min = 0.8},
    {"3 workers, a fourth joins at 30 s", EVENTS(3, 1, {FLEET_JOIN, 30000}),
     SETTLED(40, 90, 100, 0.02), .min_fair = 0.9, .after_min = 0.8, .check_joiner = 1},
    {"3 workers started one by one, 5 s apart",
     EVENTS(1, 1, {FLEET_JOIN, 5000}, {FLEET_JOIN, 10000}), SETTLED(20, 90, 100, 0.02),
     .min_fair = 0.9, .check_start = 1, .after_min = 0.8, .check_joiner = 1},
    {"3 workers, answers in 1-6 ms", SHAPE(100, 100, 0, 5, 256, 1), SETTLED(15, 90, 100, 0.02),
     .min_fair = 0.9, .check_start = 1},
    {"3 workers, answers in 301-401 ms", SHAPE(100, 100, 300, 100, 256, 1),
     SETTLED(15, 90, 100, 0.02), .min_fair = 0.9, .check_start = 1},
    /* At 6 calls/s a member's throttling answers are a larger part of its calls. */
    {"3 workers, quota 20, 16 calls in flight", SHAPE(20, 20, 50, 10, 16, 1),
     SETTLED(15, 17, 20, 0.035), .min_fair = 0.85, .check_start = 1},
    {"3 workers, quota 1000, answers in 21-31 ms", SHAPE(1000, 1000, 20, 10, 1024, 1),
     SETTLED(15, 900, 1000, 0.02), .min_fair = 0.9, .check_start = 1},
    /* Without shares every member starts at half the quota: a burst, then the same settling. */
    {"3 workers, shares not set", SHAPE(100, 100, 50, 10, 256, 0), SETTLED(15, 90, 100, 0.02),
     .min_fair = 0.8},
    {"3 workers, shares not set, one leaves at 30 s", EVENTS(3, 0, {FLEET_LEAVE, 30000}),
     SETTLED(45, 90, 100, 0.02), .min_fair = 0.8},
    /* api.quota 0: not limited until the first throttling answer (a burst), then settles. */
    {"1 worker, quota unknown", {.quota = 100, .members = 1, .latency_ms = 50, .jitter_ms = 10,
     .max_in_flight = 256, .wired = 1, .rebalance_ms = 1000, .opts = OPTS(0), .end_ms = 75000},
     SETTLED(15, 90, 100, 0.02)},
    {"3 workers, quota unknown", SHAPE(100, 0, 50, 10, 256, 1), SETTLED(15, 90, 100, 0.02),
     .min_fair = 0.85},
    {"3 workers, api.quota 200 where the API admits 100", SHAPE(100, 200, 50, 10, 256, 1),
     SETTLED(15, 90, 100, 0.02), .min_fair = 0.85},
};
/* clang-format on */

/* The end of the first 3 s in which the fleet's calls averaged >= 90 % of avail. */
static int converged_at(const struct fleet_result *r, int avail)
{
    for (int t = 0; t + 3 <= r->seconds; t++)
        if (fleet_admitted(r, -1, t, t + 3) >= 0.9 * avail * 3)
            return t + 3;
    return r->seconds + 1;
}

/* The fewest calls the fleet had admitted in 3 s in a row within [from_s, to_s), per second. */
static double worst_window(const struct fleet_result *r, int from_s, int to_s)
{
    double worst = INFINITY;

    for (int t = from_s; t + 3 <= to_s; t++)
        worst = fmin(worst, (double)fleet_admitted(r, -1, t, t + 3) / 3.0);
    return worst;
}

static void check_fleet(const struct fleet_case *c, const struct fleet_result *r)
{
    int end = r->seconds;
    int avail = c->p.quota - c->p.stranger;
    long ok = fleet_admitted(r, -1, c->settled_s, end);
    long thr = fleet_throttled(r, -1, c->settled_s, end);
    double rate = (double)ok / (end - c->settled_s);
    double thr_share = ok + thr > 0 ? (double)thr / (double)(ok + thr) : 0;
    double fair = fleet_fairness(r, c->settled_s, end);
    int conv = converged_at(r, avail);
    double worst = worst_window(r, c->settled_s, end);
    long start_ok = fleet_admitted(r, -1, 0, 2);
    long start_thr = fleet_throttled(r, -1, 0, 2);
    int failed = 0;

    print_message("%s: settled %.1f calls/s (%.1f %% of the %d left, worst 3 s %.1f %%), "
                  "%.2f %% throttled, fairness %.3f, converged at %d s; first 2 s: %ld admitted, "
                  "%ld throttled\n",
                  c->name, rate, 100 * rate / avail, avail, 100 * worst / avail, 100 * thr_share,
                  fair, conv, start_ok, start_thr);
    if (rate < c->min_rate || rate > c->max_rate) {
        print_error("%s: settled at %.1f calls/s, want [%.0f, %.0f]\n", c->name, rate, c->min_rate,
                    c->max_rate);
        failed = 1;
    }
    if (thr_share > c->max_thr) {
        print_error("%s: %.2f %% of the settled calls throttled, want <= %.2f %%\n", c->name,
                    100 * thr_share, 100 * c->max_thr);
        failed = 1;
    }
    if (c->min_fair > 0 && fair < c->min_fair) {
        print_error("%s: fairness %.3f, want >= %.3f\n", c->name, fair, c->min_fair);
        failed = 1;
    }
    if (c->check_start && conv > START_CONVERGED) {
        print_error("%s: converged at %d s, want <= %d s\n", c->name, conv, START_CONVERGED);
        failed = 1;
    }
    if (worst < c->min_window) {
        print_error("%s: 3 s averaged %.1f calls/s, want >= %.1f\n", c->name, worst, c->min_window);
        failed = 1;
    }
    if (c->check_start && start_thr > START_THROTTLED) {
        print_error("%s: %ld calls throttled in the first 2 s, want <= %d\n", c->name, start_thr,
                    START_THROTTLED);
        failed = 1;
    }
    if (c->check_start && start_ok < START_ADMITTED * 2 * avail) {
        print_error("%s: %ld calls admitted in the first 2 s, want >= %.0f\n", c->name, start_ok,
                    START_ADMITTED * 2 * avail);
        failed = 1;
    }
    for (int k = 0; k < FLEET_MAX_EVENTS && c->p.events[k].kind != FLEET_NONE; k++) {
        int from = (int)((c->p.events[k].at_ms + c->p.rebalance_ms) / 1000) + 5;
        int to = k + 1 < FLEET_MAX_EVENTS && c->p.events[k + 1].kind != FLEET_NONE
                     ? (int)(c->p.events[k + 1].at_ms / 1000)
                     : end;

        for (int t = from; c->after_min > 0 && t < to; t++) {
            long n = fleet_admitted(r, -1, t, t + 1);

            if (n < c->after_min * c->p.quota) {
                print_error("%s: second %d admitted %ld calls, want >= %.0f (5 s after the "
                            "rebalance at %.1f s)\n",
                            c->name, t, n, c->after_min * c->p.quota,
                            (double)(c->p.events[k].at_ms + c->p.rebalance_ms) / 1000.0);
                failed = 1;
                break;
            }
        }
        if (c->check_joiner && c->p.events[k].kind == FLEET_JOIN) {
            int j = c->p.members + k; /* members start in event order */
            int s0 = (int)(r->start_ms[j] / 1000);
            long n = fleet_throttled(r, j, s0, s0 + 2);

            if (n > START_THROTTLED) {
                print_error("%s: member %d, which joined at %.1f s, had %ld calls throttled in "
                            "its first 2 s, want <= %d\n",
                            c->name, j, (double)r->start_ms[j] / 1000.0, n, START_THROTTLED);
                failed = 1;
            }
        }
    }
    if (failed || getenv("CLW_FLEET_TRACE") != NULL)
        fleet_print(c->name, r);
    if (failed)
        fail_msg("%s: see above", c->name);
}

static void test_fleet(void **state)
{
    static struct fleet_result r;
    const struct fleet_case *c = *state;

    fleet_run(&c->p, &r);
    check_fleet(c, &r);
}

#define N_CASES (sizeof(fleet_cases) / sizeof(fleet_cases[0]))

int main(void)
{
    struct CMUnitTest tests[N_CASES];

    /* One test per case, so that every failing case is reported. */
    for (size_t i = 0; i < N_CASES; i++) {
        memset(&tests[i], 0, sizeof(tests[i]));
        tests[i].name = fleet_cases[i].name;
        tests[i].test_func = test_fleet;
        tests[i].initial_state = (void *)&fleet_cases[i];
    }
    return cmocka_run_group_tests_name("ratelimit_fleet", tests, NULL, NULL);
}
