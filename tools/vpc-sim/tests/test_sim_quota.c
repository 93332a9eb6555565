/* vpc-sim unit tests: the sliding one-second quota, its phantom reserve, and the per-second
 * counters of the stats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "sim_quota.h"
#include "sim_stats.h"

struct quota_step {
    const char *name;
    const char *key;
    uint32_t limit;
    int64_t now_us;
    bool admitted;
};

/* Steps run in order against one quota. */
static const struct quota_step steps[] = {
    {"first", "k", 3, 1000000, true},
    {"second", "k", 3, 1100000, true},
    {"third", "k", 3, 1200000, true},
    {"fourth within the second", "k", 3, 1999999, false},
    {"other key has its own quota", "k2", 3, 1999999, true},
    {"first call leaves the window at exactly 1 s", "k", 3, 2000000, true},
    {"the window is full again", "k", 3, 2050000, false},
    {"the next one leaves at exactly 1 s too", "k", 3, 2100000, true},
    {"full again", "k", 3, 2150000, false},
    {"a long pause empties it", "k", 3, 9000000, true},
    {"limit 0 admits all", "k", 0, 9000001, true},
    {"and records nothing", "k", 0, 9000002, true},
    {"a new limit starts over", "k", 1, 9000003, true},
    {"limit 1", "k", 1, 9500000, false},
    {"refused calls are not recorded", "k", 1, 10000003, true},
};

static void test_quota_steps(void **state)
{
    struct clw_sim_quota quota = {0};

    (void)state;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        const struct quota_step *s = &steps[i];
        bool admitted = clw_sim_quota_admit(&quota, s->key, s->limit, 0, s->now_us);

        if (admitted != s->admitted)
            fail_msg("%s: admitted=%d, want %d", s->name, admitted, s->admitted);
    }
    clw_sim_quota_free(&quota);
    assert_int_equal(quota.count, 0);
}

/* A steady 1 call per ms offered for 5 s under a quota of 100/s: exactly 100 per second pass,
 * and no second-long window ever holds more than the quota. */
static void test_quota_steady_offer(void **state)
{
    struct clw_sim_quota quota = {0};
    int64_t admitted_at[600];
    size_t n = 0;

    (void)state;
    for (int64_t t = 0; t < 5000000; t += 1000) {
        if (clw_sim_quota_admit(&quota, "k", 100, 0, t)) {
            assert_true(n < sizeof(admitted_at) / sizeof(admitted_at[0]));
            admitted_at[n++] = t;
        }
    }
    assert_int_equal(n, 500);
    for (size_t i = 100; i < n; i++)
        assert_true(admitted_at[i] - admitted_at[i - 100] >= 1000000);
    clw_sim_quota_free(&quota);
}

/* A phantom client spends 40 of a quota of 100 calls/s: a client offering a call every ms gets
 * 60 a second, the phantom its 40, and no second-long window holds more than the quota. */
static void test_quota_reserve_steady(void **state)
{
    struct clw_sim_quota quota = {0};
    long per_second[8] = {0};
    uint64_t reserve_before = 0;

    (void)state;
    for (int64_t t = 10000000; t < 18000000; t += 1000) {
        if (t == 11000000)
            reserve_before = quota.reserve_admitted;
        if (clw_sim_quota_admit(&quota, "k", 100, 40, t))
            per_second[(t - 10000000) / 1000000]++;
    }
    /* the first second's window already held the phantom's last second: 40 of 100 */
    assert_int_equal(per_second[0], 60);
    for (int s = 1; s < 8; s++)
        if (per_second[s] < 59 || per_second[s] > 61)
            fail_msg("second %d: %ld admitted, want 60 +- 1", s, per_second[s]);
    assert_int_equal(quota.reserve_admitted - reserve_before, 7 * 40);
    clw_sim_quota_free(&quota);
    assert_int_equal(quota.reserve_admitted, 0);
}

struct reserve_step {
    const char *name;
    uint32_t limit, reserve;
    int64_t now_us;
    int calls; /* offered at now_us */
    int admitted;
};

/* Steps run in order against one quota under one key. */
static const struct reserve_step reserve_steps[] = {
    {"a fresh key: the phantom's last second is already in the window", 10, 9, 5000000, 5, 1},
    {"the phantom keeps spending while the client waits", 10, 9, 5500000, 5, 0},
    {"a second later one slot freed again", 10, 9, 6000000, 5, 1},
    {"a reserve change starts over: the window holds the new reserve's second", 10, 5, 6000001, 10,
     5},
    {"reserve 0: the plain quota", 10, 0, 6000002, 12, 10},
    {"a long pause: only the last second counts", 10, 5, 60000000, 10, 5},
    {"no quota, no phantom", 0, 5, 60000001, 50, 50},
};

static void test_quota_reserve_steps(void **state)
{
    struct clw_sim_quota quota = {0};

    (void)state;
    for (size_t i = 0; i < sizeof(reserve_steps) / sizeof(reserve_steps[0]); i++) {
        const struct reserve_step *s = &reserve_steps[i];
        int n = 0;

        for (int k = 0; k < s->calls; k++)
            n += clw_sim_quota_admit(&quota, "k", s->limit, s->reserve, s->now_us);
        if (n != s->admitted)
            fail_msg("%s: %d of %d admitted, want %d", s->name, n, s->calls, s->admitted);
    }
    clw_sim_quota_free(&quota);
}

struct persec_case {
    const char *name;
    int64_t adds[6]; /* seconds, 0 ends */
    int64_t now;
    uint64_t last3[3]; /* the counts of now-2, now-1, now */
};

static const struct persec_case persec_cases[] = {
    {"empty", {0}, 1000, {0, 0, 0}},
    {"one second", {1000, 1000, 1000, 0}, 1000, {0, 0, 3}},
    {"spread", {998, 999, 999, 1000, 0}, 1000, {1, 2, 1}},
    {"old slots do not count", {940, 940, 1000, 0}, 1000, {0, 0, 1}},
    {"a reused slot starts over", {940, 1000, 0}, 1000, {0, 0, 1}},
    {"counts age out", {1000, 1000, 0}, 1002, {2, 0, 0}},
};

static void test_persec_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(persec_cases) / sizeof(persec_cases[0]); i++) {
        const struct persec_case *c = &persec_cases[i];
        struct clw_sim_persec persec;
        cJSON *arr;
        int size;

        memset(&persec, 0, sizeof(persec));
        for (size_t j = 0; j < 6 && c->adds[j] != 0; j++)
            clw_sim_persec_add(&persec, c->adds[j]);
        arr = clw_sim_persec_to_json(&persec, c->now);
        size = cJSON_GetArraySize(arr);
        assert_int_equal(size, CLW_SIM_PERSEC_SLOTS);
        for (int k = 0; k < 3; k++) {
            double got = cJSON_GetArrayItem(arr, size - 3 + k)->valuedouble;

            if (got != (double)c->last3[k])
                fail_msg("%s: slot now-%d = %.0f, want %llu", c->name, 2 - k, got,
                         (unsigned long long)c->last3[k]);
        }
        cJSON_Delete(arr);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quota_steps),          cmocka_unit_test(test_quota_steady_offer),
        cmocka_unit_test(test_quota_reserve_steady), cmocka_unit_test(test_quota_reserve_steps),
        cmocka_unit_test(test_persec_table),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
