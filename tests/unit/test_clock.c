/* Unit tests for the time sources and RFC 3339 formatting (clock.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "clw/clock.h"

struct rfc3339_case {
    const char *name;
    int64_t wall_ms;
    const char *expected;
};

static const struct rfc3339_case rfc3339_cases[] = {
    {"epoch", 0, "1970-01-01T00:00:00.000Z"},
    {"contract example", INT64_C(1764104791990), "2025-11-25T21:06:31.990Z"},
    {"whole second", INT64_C(1234567890000), "2009-02-13T23:31:30.000Z"},
    {"leap day 2024", INT64_C(1709164800123), "2024-02-29T00:00:00.123Z"},
    {"end of leap day 2000", INT64_C(951868799999), "2000-02-29T23:59:59.999Z"},
    {"one ms before epoch", -1, "1969-12-31T23:59:59.999Z"},
    {"one second and a ms before epoch", -1001, "1969-12-31T23:59:58.999Z"},
    {"last representable", INT64_C(253402300799999), "9999-12-31T23:59:59.999Z"},
    {"year 10000 is out of range", INT64_C(253402300800000), "0000-01-01T00:00:00.000Z"},
};

static void test_rfc3339_table(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rfc3339_cases) / sizeof(rfc3339_cases[0]); i++) {
        char out[CLW_RFC3339_LEN];

        memset(out, 'x', sizeof(out));
        print_message("case: %s\n", rfc3339_cases[i].name);
        clw_clock_rfc3339(rfc3339_cases[i].wall_ms, out);
        assert_string_equal(out, rfc3339_cases[i].expected);
    }
}

static void test_mono_never_goes_back(void **state)
{
    int64_t prev = clw_clock_mono_ms();
    int i;

    (void)state;
    assert_true(prev > 0);
    for (i = 0; i < 1000; i++) {
        int64_t now = clw_clock_mono_ms();
        assert_true(now >= prev);
        prev = now;
    }
}

static void test_wall_matches_time(void **state)
{
    int64_t before = (int64_t)time(NULL) * 1000;
    int64_t wall = clw_clock_wall_ms();
    int64_t after = (int64_t)time(NULL) * 1000 + 1000;

    (void)state;
    assert_true(wall >= before);
    assert_true(wall <= after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339_table),
        cmocka_unit_test(test_mono_never_goes_back),
        cmocka_unit_test(test_wall_matches_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
