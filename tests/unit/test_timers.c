/* Unit tests of the timer heap: ordering, re-arming, disarming from the middle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "clw/timers.h"

struct op {
    char kind; /* 'a' arm, 'd' disarm */
    int timer;
    int64_t due;
};

struct scenario {
    const char *name;
    struct op ops[12];
    int64_t now;
    int expect[8]; /* timer numbers popped at now, in order, -1 ends */
};

static const struct scenario scenarios[] = {
    {"pops in due order", {{'a', 0, 30}, {'a', 1, 10}, {'a', 2, 20}}, 100, {1, 2, 0, -1}},
    {"only due ones", {{'a', 0, 30}, {'a', 1, 10}, {'a', 2, 20}}, 20, {1, 2, -1}},
    {"re-arm moves later", {{'a', 0, 5}, {'a', 1, 10}, {'a', 0, 50}}, 60, {1, 0, -1}},
    {"re-arm moves earlier", {{'a', 0, 50}, {'a', 1, 10}, {'a', 0, 1}}, 60, {0, 1, -1}},
    {"disarm middle",
     {{'a', 0, 1}, {'a', 1, 2}, {'a', 2, 3}, {'a', 3, 4}, {'a', 4, 5}, {'d', 2, 0}},
     60,
     {0, 1, 3, 4, -1}},
    {"disarm root", {{'a', 0, 1}, {'a', 1, 2}, {'a', 2, 3}, {'d', 0, 0}}, 60, {1, 2, -1}},
    {"disarm idle is a no-op", {{'d', 0, 0}, {'a', 1, 7}}, 60, {1, -1}},
    {"nothing due", {{'a', 0, 100}}, 50, {-1}},
};

static void test_scenarios(void **state)
{
    (void)state;
    for (size_t s = 0; s < sizeof(scenarios) / sizeof(scenarios[0]); s++) {
        const struct scenario *sc = &scenarios[s];
        struct clw_timers t = {0};
        struct clw_timer tm[8];
        for (int i = 0; i < 8; i++)
            clw_timer_init(&tm[i]);
        for (size_t i = 0; i < 12 && sc->ops[i].kind != 0; i++) {
            if (sc->ops[i].kind == 'a')
                assert_int_equal(clw_timers_arm(&t, &tm[sc->ops[i].timer], sc->ops[i].due), 0);
            else
                clw_timers_disarm(&t, &tm[sc->ops[i].timer]);
        }
        for (int i = 0;; i++) {
            struct clw_timer *got = clw_timers_pop_due(&t, sc->now);
            if (sc->expect[i] < 0) {
                if (got != NULL)
                    fail_msg("%s: unexpected timer %d", sc->name, (int)(got - tm));
                break;
            }
            if (got != &tm[sc->expect[i]])
                fail_msg("%s: pop %d expected timer %d", sc->name, i, sc->expect[i]);
            assert_int_equal(got->idx, CLW_TIMER_IDLE);
        }
        clw_timers_free(&t);
    }
}

/* Random arm/disarm against a brute-force model: the heap always pops the minimum. */
static void test_random_against_model(void **state)
{
    (void)state;
    enum { N = 500 };
    struct clw_timers t = {0};
    static struct clw_timer tm[N];
    int armed[N] = {0};
    for (int i = 0; i < N; i++)
        clw_timer_init(&tm[i]);
    srand(7);
    for (int round = 0; round < 20000; round++) {
        int i = rand() % N;
        if (rand() % 3 == 0) {
            clw_timers_disarm(&t, &tm[i]);
            armed[i] = 0;
        } else {
            assert_int_equal(clw_timers_arm(&t, &tm[i], rand() % 100000), 0);
            armed[i] = 1;
        }
        if (round % 97 == 0) {
            int64_t min = INT64_MAX;
            for (int j = 0; j < N; j++)
                if (armed[j] && tm[j].due < min)
                    min = tm[j].due;
            struct clw_timer *top = clw_timers_peek(&t);
            if (min == INT64_MAX)
                assert_null(top);
            else
                assert_int_equal(top->due, min);
        }
    }
    int64_t last = -1;
    size_t popped = 0;
    for (;;) {
        struct clw_timer *got = clw_timers_pop_due(&t, INT64_MAX);
        if (got == NULL)
            break;
        assert_true(got->due >= last);
        last = got->due;
        popped++;
    }
    size_t expect = 0;
    for (int j = 0; j < N; j++)
        expect += (size_t)armed[j];
    assert_int_equal(popped, expect);
    clw_timers_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scenarios),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
