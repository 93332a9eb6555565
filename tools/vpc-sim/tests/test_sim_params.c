/* vpc-sim unit tests: decoding query strings and form bodies into parameters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sim_params.h"

struct parse_case {
    const char *name;
    const char *input;
    enum clw_sim_params_err err;
    const char *expect[6][2]; /* name/value pairs in order, NULL-terminated */
};

static const struct parse_case cases[] = {
    {"plain pairs", "a=1&b=2", CLW_SIM_PARAMS_OK, {{"a", "1"}, {"b", "2"}}},
    {"percent and plus", "s=a%2Fb%2bc%3D+d", CLW_SIM_PARAMS_OK, {{"s", "a/b+c= d"}}},
    {"utf-8 bytes", "n=%E4%B8%AD", CLW_SIM_PARAMS_OK, {{"n", "\xe4\xb8\xad"}}},
    {"underscore normalised",
     "instanceIds_0=ins-1",
     CLW_SIM_PARAMS_OK,
     {{"instanceIds.0", "ins-1"}}},
    {"empty segments skipped", "&a=1&&b=&", CLW_SIM_PARAMS_OK, {{"a", "1"}, {"b", ""}}},
    {"name without value", "flag", CLW_SIM_PARAMS_OK, {{"flag", ""}}},
    {"value keeps '='", "sig=ab==", CLW_SIM_PARAMS_OK, {{"sig", "ab=="}}},
    {"empty input", "", CLW_SIM_PARAMS_OK, {{NULL, NULL}}},
    {"duplicate", "a=1&a=2", CLW_SIM_PARAMS_DUPLICATE, {{NULL, NULL}}},
    {"duplicate after normalising", "x.y=1&x_y=2", CLW_SIM_PARAMS_DUPLICATE, {{NULL, NULL}}},
    {"broken escape", "a=%zz", CLW_SIM_PARAMS_BAD_ENCODING, {{NULL, NULL}}},
    {"truncated escape", "a=%4", CLW_SIM_PARAMS_BAD_ENCODING, {{NULL, NULL}}},
    {"NUL byte", "a=x%00y", CLW_SIM_PARAMS_BAD_ENCODING, {{NULL, NULL}}},
    {"empty name", "=1", CLW_SIM_PARAMS_BAD_ENCODING, {{NULL, NULL}}},
};

static void test_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct parse_case *c = &cases[i];
        struct clw_sim_params params = {0};
        enum clw_sim_params_err err = clw_sim_params_parse(&params, c->input, strlen(c->input));
        size_t n = 0;

        if (err != c->err)
            fail_msg("%s: error %d, want %d", c->name, err, c->err);
        if (c->err == CLW_SIM_PARAMS_OK) {
            for (; c->expect[n][0] != NULL; n++) {
                assert_true(n < params.count);
                assert_string_equal(params.items[n].name, c->expect[n][0]);
                assert_string_equal(params.items[n].value, c->expect[n][1]);
                assert_string_equal(clw_sim_params_get(&params, c->expect[n][0]), c->expect[n][1]);
            }
            if (params.count != n)
                fail_msg("%s: %zu params, want %zu", c->name, params.count, n);
        }
        clw_sim_params_free(&params);
    }
}

static void test_length_bounded(void **state)
{
    struct clw_sim_params params = {0};
    const char *text = "a=1&b=2";

    (void)state;
    /* Only the first 3 bytes count: the input need not be NUL-terminated. */
    assert_int_equal(clw_sim_params_parse(&params, text, 3), CLW_SIM_PARAMS_OK);
    assert_int_equal(params.count, 1);
    assert_null(clw_sim_params_get(&params, "b"));
    clw_sim_params_free(&params);
}

static void test_too_many(void **state)
{
    struct clw_sim_params params = {0};
    char name[32];
    enum clw_sim_params_err err = CLW_SIM_PARAMS_OK;

    (void)state;
    for (int i = 0; i <= CLW_SIM_PARAMS_MAX && err == CLW_SIM_PARAMS_OK; i++) {
        snprintf(name, sizeof(name), "p%d", i);
        err = clw_sim_params_add(&params, name, "v");
    }
    assert_int_equal(err, CLW_SIM_PARAMS_TOO_MANY);
    assert_int_equal(params.count, CLW_SIM_PARAMS_MAX);
    clw_sim_params_free(&params);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_length_bounded),
        cmocka_unit_test(test_too_many),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
