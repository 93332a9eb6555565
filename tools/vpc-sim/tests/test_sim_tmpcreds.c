/* vpc-sim unit tests: issued temporary credentials (ids, expiry, the bounded table), modes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <string.h>

#include "sim_svcmode.h"
#include "sim_tmpcreds.h"

static bool all_in(const char *s, const char *extra)
{
    for (; *s != '\0'; s++) {
        if (!isalnum((unsigned char)*s) && strchr(extra, *s) == NULL)
            return false;
    }
    return true;
}

static void test_issue_and_find(void **unused)
{
    struct clw_sim_tmpcreds creds = {0};
    const struct clw_sim_tmpcred *a;
    const struct clw_sim_tmpcred *b;
    char a_id[CLW_SIM_TMP_ID_LEN + 1];

    (void)unused;
    a = clw_sim_tmpcreds_issue(&creds, CLW_SIM_TMP_METADATA, "cvm-role/r", 1000, 30);
    assert_non_null(a);
    assert_int_equal(strlen(a->secret_id), CLW_SIM_TMP_ID_LEN);
    assert_memory_equal(a->secret_id, "AKID", 4);
    assert_true(all_in(a->secret_id, ""));
    assert_int_equal(strlen(a->secret_key), CLW_SIM_TMP_KEY_LEN);
    assert_true(all_in(a->secret_key, ""));
    assert_int_equal(strlen(a->token), CLW_SIM_TMP_TOKEN_LEN);
    assert_true(all_in(a->token, "-_"));
    assert_int_equal(a->expires, 1030);
    assert_string_equal(a->account, "cvm-role/r");
    memcpy(a_id, a->secret_id, sizeof(a_id));

    b = clw_sim_tmpcreds_issue(&creds, CLW_SIM_TMP_STS, "oidc-role/arn", 1000, 60);
    assert_non_null(b);
    assert_string_not_equal(b->secret_id, a_id);
    assert_int_not_equal(b->serial, clw_sim_tmpcreds_find(&creds, a_id)->serial);
    assert_ptr_equal(clw_sim_tmpcreds_find(&creds, b->secret_id), b);
    assert_null(clw_sim_tmpcreds_find(&creds, "AKIDnothing"));

    /* Valid while now < expires. */
    assert_int_equal(clw_sim_tmpcreds_live(&creds, 1029), 2);
    assert_int_equal(clw_sim_tmpcreds_live(&creds, 1030), 1);
    assert_int_equal(clw_sim_tmpcreds_live(&creds, 1060), 0);
    clw_sim_tmpcreds_free(&creds);
    assert_int_equal(creds.count, 0);
}

/* A full table forgets the expired credentials first, or else its oldest quarter. */
static void test_table_is_bounded(void **unused)
{
    struct clw_sim_tmpcreds creds = {0};
    const struct clw_sim_tmpcred *cred;
    char first_id[CLW_SIM_TMP_ID_LEN + 1] = {0};

    (void)unused;
    for (uint32_t i = 0; i < CLW_SIM_TMP_MAX; i++)
        assert_non_null(clw_sim_tmpcreds_issue(&creds, CLW_SIM_TMP_METADATA, "a", 100, 10));
    assert_int_equal(creds.count, CLW_SIM_TMP_MAX);
    cred = clw_sim_tmpcreds_issue(&creds, CLW_SIM_TMP_METADATA, "a", 200, 1000);
    assert_non_null(cred);
    assert_int_equal(creds.count, 1);
    assert_ptr_equal(clw_sim_tmpcreds_find(&creds, cred->secret_id), cred);

    for (uint32_t i = 1; i < CLW_SIM_TMP_MAX; i++) {
        cred = clw_sim_tmpcreds_issue(&creds, CLW_SIM_TMP_METADATA, "a", 200, 1000);
        assert_non_null(cred);
        if (i == CLW_SIM_TMP_MAX / 4)
            memcpy(first_id, cred->secret_id, sizeof(first_id));
    }
    assert_int_equal(creds.count, CLW_SIM_TMP_MAX);
    cred = clw_sim_tmpcreds_issue(&creds, CLW_SIM_TMP_METADATA, "a", 300, 1000);
    assert_non_null(cred);
    assert_int_equal(creds.count, CLW_SIM_TMP_MAX - CLW_SIM_TMP_MAX / 4 + 1);
    /* The oldest quarter is gone, the next one is now the oldest, and lookups still work. */
    assert_ptr_equal(creds.items[0], clw_sim_tmpcreds_find(&creds, first_id));
    assert_ptr_equal(clw_sim_tmpcreds_find(&creds, cred->secret_id), cred);
    clw_sim_tmpcreds_free(&creds);
}

static void test_rfc3339(void **unused)
{
    char out[32];

    (void)unused;
    clw_sim_rfc3339(0, out, sizeof(out));
    assert_string_equal(out, "1970-01-01T00:00:00Z");
    clw_sim_rfc3339(1764104792, out, sizeof(out));
    assert_string_equal(out, "2025-11-25T21:06:32Z");
}

struct mode_case {
    const char *text;
    int rc;
    enum clw_sim_svcmode_kind kind;
    int status;
};

static const struct mode_case mode_cases[] = {
    {"up", 0, CLW_SIM_SVC_UP, 0},
    {"drop", 0, CLW_SIM_SVC_DROP, 0},
    {"http:503", 0, CLW_SIM_SVC_HTTP, 503},
    {"http:404", 0, CLW_SIM_SVC_HTTP, 404},
    {"not-json", 0, CLW_SIM_SVC_NOT_JSON, 0},
    {"missing-fields", 0, CLW_SIM_SVC_MISSING_FIELDS, 0},
    {"http:200", -1, CLW_SIM_SVC_UP, 0},
    {"http:600", -1, CLW_SIM_SVC_UP, 0},
    {"http:50x", -1, CLW_SIM_SVC_UP, 0},
    {"http:", -1, CLW_SIM_SVC_UP, 0},
    {"down", -1, CLW_SIM_SVC_UP, 0},
    {"", -1, CLW_SIM_SVC_UP, 0},
};

static void test_modes(void **unused)
{
    (void)unused;
    for (size_t i = 0; i < sizeof(mode_cases) / sizeof(mode_cases[0]); i++) {
        const struct mode_case *c = &mode_cases[i];
        struct clw_sim_svcmode mode = {CLW_SIM_SVC_UP, 0};
        char back[32];
        int rc = clw_sim_svcmode_parse(c->text, &mode);

        if (rc != c->rc)
            fail_msg("%s: rc=%d", c->text, rc);
        assert_int_equal(mode.kind, c->kind);
        assert_int_equal(mode.status, c->status);
        if (rc != 0)
            continue;
        clw_sim_svcmode_format(&mode, back, sizeof(back));
        assert_string_equal(back, c->text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issue_and_find),
        cmocka_unit_test(test_table_is_bounded),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_modes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
