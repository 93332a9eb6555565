/* Unit tests for backoff: full-jitter delays, Retry-After, overflow safety, budget, splitmix64. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "clw/backoff.h"

struct delay_case {
    const char *name;
    int attempts;
    int64_t initial_ms;
    int64_t max_ms;
    uint64_t rnd;
    int64_t retry_after_ms;
    int64_t want;
};

static const struct delay_case delay_cases[] = {
    /* defaults 200 / 30000: the cap doubles from 200 */
    {"n1 rnd 0", 1, 200, 30000, 0, -1, 0},
    {"n1 rnd at cap", 1, 200, 30000, 200, -1, 200},
    {"n1 rnd cap+1 wraps", 1, 200, 30000, 201, -1, 0},
    {"n1 rnd 1000", 1, 200, 30000, 1000, -1, 196},
    {"n2 rnd at cap 400", 2, 200, 30000, 400, -1, 400},
    {"n2 rnd 401 wraps", 2, 200, 30000, 401, -1, 0},
    {"n3 rnd max", 3, 200, 30000, UINT64_MAX, -1, 600},
    {"n8 cap 25600", 8, 200, 30000, 25600, -1, 25600},
    {"n8 cap 25600 wraps", 8, 200, 30000, 25601, -1, 0},
    {"n9 capped at max", 9, 200, 30000, 30000, -1, 30000},
    {"n9 max+1 wraps", 9, 200, 30000, 30001, -1, 0},
    {"n0 treated as 1", 0, 200, 30000, 200, -1, 200},
    {"negative n treated as 1", -5, 200, 30000, 201, -1, 0},
    /* exact doubling boundary: 3 * 2^2 == 12 */
    {"product equals max", 3, 3, 12, 12, -1, 12},
    {"product one over max", 3, 3, 11, 12, -1, 0},
    {"product one over max at cap", 3, 3, 11, 11, -1, 11},
    {"next doubling capped", 4, 3, 12, 12, -1, 12},
    /* degenerate bounds */
    {"initial 0", 5, 0, 30000, 12345, -1, 0},
    {"max 0", 5, 200, 0, 12345, -1, 0},
    {"initial above max", 1, 500, 300, 300, -1, 300},
    {"negative initial", 3, -200, 30000, 999, -1, 0},
    {"negative max", 3, 200, -1, 999, -1, 0},
    /* no overflow for huge attempt counts or extreme bounds */
    {"n 10000", 10000, 200, 30000, 30000, -1, 30000},
    {"n INT_MAX", INT_MAX, 200, 30000, 30001, -1, 0},
    {"n 63 one ms", 63, 1, INT64_MAX, UINT64_C(1) << 62, -1, INT64_C(1) << 62},
    {"n 63 one ms wraps", 63, 1, INT64_MAX, (UINT64_C(1) << 62) + 1, -1, 0},
    {"n 64 one ms reaches max", 64, 1, INT64_MAX, UINT64_MAX, -1, INT64_MAX},
    {"n 65 one ms", 65, 1, INT64_MAX, UINT64_MAX - 1, -1, INT64_MAX - 1},
    {"max initial doubled", 2, INT64_MAX, INT64_MAX, UINT64_MAX, -1, INT64_MAX},
    {"large initial doubled", 2, INT64_MAX / 2 + 1, INT64_MAX, UINT64_MAX, -1, INT64_MAX},
    /* Retry-After is a lower bound, not a cap */
    {"retry-after raises", 1, 200, 30000, 50, 5000, 5000},
    {"retry-after below delay", 1, 200, 30000, 150, 10, 150},
    {"retry-after equal to delay", 1, 200, 30000, 150, 150, 150},
    {"retry-after 0", 1, 200, 30000, 150, 0, 150},
    {"retry-after 0 with delay 0", 1, 200, 30000, 0, 0, 0},
    {"retry-after absent", 1, 200, 30000, 0, -1, 0},
    {"retry-after other negative", 1, 200, 30000, 7, -1000, 7},
    {"retry-after above max", 20, 200, 30000, 0, 60000, 60000},
    {"retry-after with zero cap", 4, 0, 30000, 99, 1200, 1200},
};

static void test_delay_table(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(delay_cases) / sizeof(delay_cases[0]); i++) {
        const struct delay_case *c = &delay_cases[i];
        int64_t got =
            clw_backoff_delay_ms(c->attempts, c->initial_ms, c->max_ms, c->rnd, c->retry_after_ms);

        if (got != c->want)
            fail_msg("case %s: got %lld want %lld", c->name, (long long)got, (long long)c->want);
    }
}

struct bounds_case {
    const char *name;
    int attempts;
    int64_t initial_ms;
    int64_t max_ms;
    int64_t cap;
};

static const struct bounds_case bounds_cases[] = {
    {"n1", 1, 200, 30000, 200},
    {"n2", 2, 200, 30000, 400},
    {"n5", 5, 200, 30000, 3200},
    {"n8", 8, 200, 30000, 25600},
    {"n9", 9, 200, 30000, 30000},
    {"n40", 40, 200, 30000, 30000},
    {"n10000", 10000, 200, 30000, 30000},
    {"small cap", 1, 10, 10, 10},
    {"cap 1", 1, 1, 1, 1},
    {"huge", 100, 1000, INT64_MAX, INT64_MAX},
};

/* Over many random numbers every delay lies in [0, cap]; small caps are fully covered. */
static void test_delay_bounds(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bounds_cases) / sizeof(bounds_cases[0]); i++) {
        const struct bounds_case *c = &bounds_cases[i];
        uint64_t seed = 42 + i;
        int64_t lo = INT64_MAX;
        int64_t hi = -1;
        int seen[11] = {0};
        int k;

        for (k = 0; k < 20000; k++) {
            int64_t d = clw_backoff_delay_ms(c->attempts, c->initial_ms, c->max_ms,
                                             clw_rand_next(&seed), -1);

            if (d < 0 || d > c->cap)
                fail_msg("case %s: delay %lld outside [0, %lld]", c->name, (long long)d,
                         (long long)c->cap);
            if (d < lo)
                lo = d;
            if (d > hi)
                hi = d;
            if (c->cap <= 10)
                seen[d]++;
        }
        /* Full jitter: both ends of the range are reached (within 1% of the cap). */
        if (lo > c->cap / 100 || hi < c->cap - c->cap / 100)
            fail_msg("case %s: range [%lld, %lld] does not span [0, %lld]", c->name, (long long)lo,
                     (long long)hi, (long long)c->cap);
        if (c->cap <= 10) {
            int64_t v;

            for (v = 0; v <= c->cap; v++) {
                if (seen[v] == 0)
                    fail_msg("case %s: value %lld never drawn", c->name, (long long)v);
            }
        }
    }
}

/* Attempt counts up to 10 000 never overflow: delays stay within [0, max] and the cap never
 * shrinks as attempts grow. */
static void test_delay_huge_attempts(void **state)
{
    int n;
    int64_t prev_cap = 0;

    (void)state;
    for (n = 1; n <= 10000; n++) {
        /* rnd == 30000 returns the cap itself once the cap is 30000. */
        int64_t cap_probe = clw_backoff_delay_ms(n, 200, 30000, 30000, -1);
        int64_t d = clw_backoff_delay_ms(n, 200, 30000, UINT64_MAX, -1);
        int64_t big = clw_backoff_delay_ms(n, 7, INT64_MAX, UINT64_MAX, -1);

        if (d < 0 || d > 30000)
            fail_msg("n=%d: delay %lld outside [0, 30000]", n, (long long)d);
        if (big < 0)
            fail_msg("n=%d: negative delay %lld with max INT64_MAX", n, (long long)big);
        if (n >= 9 && cap_probe != 30000)
            fail_msg("n=%d: cap not reached (%lld)", n, (long long)cap_probe);
        if (n >= 9 && cap_probe < prev_cap)
            fail_msg("n=%d: cap shrank", n);
        if (n >= 9)
            prev_cap = cap_probe;
    }
    assert_int_equal(prev_cap, 30000);
}

struct exhausted_case {
    const char *name;
    int64_t elapsed_ms;
    int64_t delay_ms;
    int64_t max_elapsed_ms;
    int want;
};

static const struct exhausted_case exhausted_cases[] = {
    {"well within", 1000, 200, 600000, 0},
    {"exactly at budget", 599800, 200, 600000, 0},
    {"one ms over", 599801, 200, 600000, 1},
    {"elapsed already past", 700000, 0, 600000, 1},
    {"elapsed at budget, no delay", 600000, 0, 600000, 0},
    {"delay alone over", 0, 600001, 600000, 1},
    {"zero everything but budget", 0, 0, 1, 0},
    {"max 0 means never", 999999999, 30000, 0, 0},
    {"max 0 never even at int64 max", INT64_MAX, INT64_MAX, 0, 0},
    {"no overflow on huge sum", INT64_MAX - 10, INT64_MAX - 10, INT64_MAX, 1},
    {"huge but within", INT64_MAX / 2, INT64_MAX / 2, INT64_MAX, 0},
    {"huge delay small budget", 1, INT64_MAX, 600000, 1},
    {"negative delay treated as 0", 600000, -5, 600000, 0},
    {"negative elapsed treated as 0", -100, 600000, 600000, 0},
};

static void test_exhausted_table(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(exhausted_cases) / sizeof(exhausted_cases[0]); i++) {
        const struct exhausted_case *c = &exhausted_cases[i];
        int got = clw_backoff_exhausted(c->elapsed_ms, c->delay_ms, c->max_elapsed_ms);

        if (got != c->want)
            fail_msg("case %s: got %d want %d", c->name, got, c->want);
    }
}

struct rand_case {
    const char *name;
    uint64_t seed;
    uint64_t want[3];
};

/* Reference splitmix64 outputs (seed 0 and 1234567, as in the published reference code). */
static const struct rand_case rand_cases[] = {
    {"seed 0",
     0,
     {UINT64_C(0xE220A8397B1DCDAF), UINT64_C(0x6E789E6AA1B965F4), UINT64_C(0x06C45D188009454F)}},
    {"seed 1234567", 1234567, {UINT64_C(0x599ED017FB08FC85), 0, 0}},
};

static void test_rand_known_answers(void **state)
{
    size_t i;
    int k;

    (void)state;
    for (i = 0; i < sizeof(rand_cases) / sizeof(rand_cases[0]); i++) {
        const struct rand_case *c = &rand_cases[i];
        uint64_t s = c->seed;

        for (k = 0; k < 3; k++) {
            uint64_t got = clw_rand_next(&s);

            if (c->want[k] == 0)
                break;
            if (got != c->want[k])
                fail_msg("case %s: output %d is %llx want %llx", c->name, k,
                         (unsigned long long)got, (unsigned long long)c->want[k]);
        }
    }
}

/* The state advances; two generators with the same seed agree; outputs do not repeat early. */
static void test_rand_sequence(void **state)
{
    uint64_t a = 7;
    uint64_t b = 7;
    uint64_t prev = 0;
    int k;

    (void)state;
    for (k = 0; k < 1000; k++) {
        uint64_t x = clw_rand_next(&a);

        assert_int_equal(x, clw_rand_next(&b));
        assert_true(x != prev);
        prev = x;
    }
    assert_int_equal(a, b);
    assert_true(a != 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delay_table),         cmocka_unit_test(test_delay_bounds),
        cmocka_unit_test(test_delay_huge_attempts), cmocka_unit_test(test_exhausted_table),
        cmocka_unit_test(test_rand_known_answers),  cmocka_unit_test(test_rand_sequence),
    };

    return cmocka_run_group_tests_name("backoff", tests, NULL, NULL);
}
