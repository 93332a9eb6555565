/* Unit tests for profile: the credentials profile file, table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clw/profile.h"

struct profile_case {
    const char *name;
    const char *text;
    const char *section;
    int rc;
    const char *secret_id; /* NULL: absent */
    const char *secret_key;
    const char *token;
    const char *err; /* a part of the message when rc is -1 */
};

static const struct profile_case cases[] = {
    {"the SDKs' layout", "[default]\nsecret_id = AKID1\nsecret_key = k1\n", "default", 1, "AKID1",
     "k1", NULL, NULL},
    {"with a token", "[default]\nsecret_id=AKID1\nsecret_key=k1\ntoken=t1\n", "default", 1, "AKID1",
     "k1", "t1", NULL},
    {"another profile", "[default]\nsecret_id=a\nsecret_key=b\n[prod]\nsecret_id=c\nsecret_key=d\n",
     "prod", 1, "c", "d", NULL, NULL},
    {"no such profile", "[default]\nsecret_id=a\nsecret_key=b\n", "prod", 0, NULL, NULL, NULL,
     NULL},
    {"empty file", "", "default", 0, NULL, NULL, NULL, NULL},
    {"blanks, CRLF, comments",
     "# top\r\n\r\n  [ default ]  \r\n ; c\r\n\tsecret_id\t=\tA B \r\n"
     "secret_key = =x=\r\n",
     "default", 1, "A B", "=x=", NULL, NULL},
    {"the last value of a key wins", "[default]\nsecret_id=a\nsecret_id=b\nsecret_key=k\n",
     "default", 1, "b", "k", NULL, NULL},
    {"a section may come back",
     "[default]\nsecret_id=a\n[x]\nsecret_key=no\n[default]\n"
     "secret_key=k\n",
     "default", 1, "a", "k", NULL, NULL},
    {"unknown keys are ignored", "[default]\nregion=ap-guangzhou\nsecret_id=a\nsecret_key=k\n",
     "default", 1, "a", "k", NULL, NULL},
    {"keys are case-sensitive", "[default]\nSECRET_ID=a\nsecret_key=k\n", "default", 1, NULL, "k",
     NULL, NULL},
    {"an empty value is kept empty", "[default]\nsecret_id=\nsecret_key=k\n", "default", 1, "", "k",
     NULL, NULL},
    {"names are not prefixes", "[default2]\nsecret_id=a\n", "default", 0, NULL, NULL, NULL, NULL},
    {"no final newline", "[default]\nsecret_id=a\nsecret_key=k", "default", 1, "a", "k", NULL,
     NULL},
    {"a line without =", "[default]\nsecret_id a\n", "default", -1, NULL, NULL, NULL,
     "line 2: expected key = value"},
    {"an unclosed section", "[default\nsecret_id=a\n", "default", -1, NULL, NULL, NULL,
     "line 1: a section must read [name]"},
    {"an empty section name", "[ ]\n", "default", -1, NULL, NULL, NULL, "line 1"},
    {"a key missing before =", "[default]\n = v\n", "default", -1, NULL, NULL, NULL,
     "a key is missing"},
    {"errors never show a value", "[default]\nsecret_key=TOPSECRET\nbroken TOPSECRET\n", "default",
     -1, NULL, NULL, NULL, "line 3"},
};

static void check_opt(const char *what, const char *want, const char *got)
{
    if ((want == NULL) != (got == NULL) || (want != NULL && strcmp(want, got) != 0))
        fail_msg("%s: want %s, got %s", what, want ? want : "(absent)", got ? got : "(absent)");
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct profile_case *c = &cases[i];
        struct clw_profile p;
        char err[128] = "";
        memset(&p, 0, sizeof(p));
        int rc = clw_profile_parse(c->text, strlen(c->text), c->section, &p, err, sizeof(err));
        if (rc != c->rc)
            fail_msg("%s: rc %d, want %d (%s)", c->name, rc, c->rc, err);
        check_opt(c->name, c->secret_id, p.secret_id);
        check_opt(c->name, c->secret_key, p.secret_key);
        check_opt(c->name, c->token, p.token);
        if (c->err != NULL && strstr(err, c->err) == NULL)
            fail_msg("%s: message %s, want %s", c->name, err, c->err);
        if (strstr(err, "TOPSECRET") != NULL)
            fail_msg("%s: a value in the message", c->name);
        clw_profile_free(&p);
        assert_null(p.secret_key);
    }
}

static void test_limits(void **state)
{
    (void)state;
    struct clw_profile p;
    char err[128];
    memset(&p, 0, sizeof(p));
    /* a NUL byte inside is not a profile file */
    static const char nul[] = "[default]\nsecret_id=a\0b\n";
    assert_int_equal(clw_profile_parse(nul, sizeof(nul) - 1, "default", &p, err, sizeof(err)), -1);
    /* more than 64 KiB is refused */
    size_t n = CLW_PROFILE_MAX_BYTES + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, '#', n);
    assert_int_equal(clw_profile_parse(big, n, "default", &p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "64 KiB"));
    free(big);
    /* err may be NULL */
    assert_int_equal(clw_profile_parse("x", 1, "default", &p, NULL, 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests_name("profile", tests, NULL, NULL);
}
