/* Unit tests for the growable byte buffer (buf.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "clw/buf.h"

/* Pieces appended in order with clw_buf_puts, and what the buffer then holds. */
struct puts_case {
    const char *name;
    const char *pieces[5];
    const char *expected;
};

static const struct puts_case puts_cases[] = {
    {"one piece", {"abc"}, "abc"},
    {"several pieces", {"a", "bc", "", "def"}, "abcdef"},
    {"empty pieces only", {"", ""}, ""},
    {"crosses the first capacity",
     {"0123456789012345678901234567890123456789", "0123456789012345678901234567890123456789"},
     "01234567890123456789012345678901234567890123456789012345678901234567890123456789"},
};

static void test_puts_table(void **state)
{
    size_t i;
    size_t j;

    (void)state;
    for (i = 0; i < sizeof(puts_cases) / sizeof(puts_cases[0]); i++) {
        const struct puts_case *c = &puts_cases[i];
        struct clw_buf b = {0};
        size_t len = 0;
        char *s;

        print_message("case: %s\n", c->name);
        for (j = 0; j < 5 && c->pieces[j]; j++)
            clw_buf_puts(&b, c->pieces[j]);
        assert_false(clw_buf_failed(&b));
        assert_int_equal(b.len, strlen(c->expected));
        s = clw_buf_take(&b, &len);
        assert_non_null(s);
        assert_string_equal(s, c->expected);
        assert_int_equal(len, strlen(c->expected));
        assert_null(b.data);
        assert_int_equal(b.len, 0);
        free(s);
    }
}

struct printf_case {
    const char *name;
    const char *prefix;
    int number;
    const char *word;
    const char *expected;
};

static const struct printf_case printf_cases[] = {
    {"plain", "", 42, "x", "n=42 w=x"},
    {"after text", "head:", -7, "", "head:n=-7 w="},
    {"grows past capacity", "", 1234567890,
     "a-long-word-that-makes-the-output-longer-than-the-sixty-four-byte-first-allocation",
     "n=1234567890 w=a-long-word-that-makes-the-output-longer-than-the-sixty-four-byte-first-"
     "allocation"},
};

static void test_printf_table(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(printf_cases) / sizeof(printf_cases[0]); i++) {
        const struct printf_case *c = &printf_cases[i];
        struct clw_buf b = {0};

        print_message("case: %s\n", c->name);
        clw_buf_puts(&b, c->prefix);
        clw_buf_printf(&b, "n=%d w=%s", c->number, c->word);
        assert_false(clw_buf_failed(&b));
        assert_string_equal(b.data, c->expected);
        assert_int_equal(b.len, strlen(c->expected));
        clw_buf_free(&b);
        assert_null(b.data);
    }
}

static void test_binary_and_putc(void **state)
{
    struct clw_buf b = {0};
    char *s;
    size_t len;
    size_t i;

    (void)state;
    clw_buf_append(&b, "a\0b", 3);
    for (i = 0; i < 10000; i++)
        clw_buf_putc(&b, (char)('0' + i % 10));
    assert_false(clw_buf_failed(&b));
    assert_int_equal(b.len, 10003);
    assert_true(b.cap > b.len);
    assert_memory_equal(b.data, "a\0b0123", 7);
    assert_int_equal(b.data[b.len], '\0');
    s = clw_buf_take(&b, &len);
    assert_int_equal(len, 10003);
    assert_int_equal(s[10002], '9');
    free(s);
}

static void test_take_empty(void **state)
{
    struct clw_buf b = {0};
    size_t len = 99;
    char *s;

    (void)state;
    s = clw_buf_take(&b, &len);
    assert_non_null(s);
    assert_string_equal(s, "");
    assert_int_equal(len, 0);
    free(s);
}

static void test_failure_is_sticky(void **state)
{
    struct clw_buf b = {0};
    size_t len = 99;

    (void)state;
    clw_buf_puts(&b, "abc");
    /* A size that cannot be allocated: marks the buffer failed without reading the source. */
    clw_buf_append(&b, "x", SIZE_MAX);
    assert_true(clw_buf_failed(&b));
    assert_null(b.data);
    clw_buf_puts(&b, "more");
    clw_buf_printf(&b, "%d", 5);
    assert_true(clw_buf_failed(&b));
    assert_int_equal(b.len, 0);
    assert_null(clw_buf_take(&b, &len));
    assert_int_equal(len, 0);
    assert_false(clw_buf_failed(&b)); /* take resets the buffer */
    clw_buf_puts(&b, "ok");
    assert_string_equal(b.data, "ok");
    clw_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_puts_table),        cmocka_unit_test(test_printf_table),
        cmocka_unit_test(test_binary_and_putc),   cmocka_unit_test(test_take_empty),
        cmocka_unit_test(test_failure_is_sticky),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
