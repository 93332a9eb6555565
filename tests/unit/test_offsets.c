/* Unit tests for offsets: scripted add/done sequences and a 100 000-offset model run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clw/offsets.h"

#define MAX_OPS 16

struct offsets_op {
    char kind; /* 'A' add, 'D' done */
    int64_t offset;
    int want_ret;
    int64_t want_commit; /* clw_offsets_commit_point() after the op */
    size_t want_pending; /* clw_offsets_pending() after the op */
};

struct offsets_case {
    const char *name;
    struct offsets_op ops[MAX_OPS];
};

#define A(o, r, cp, p)                                                                             \
    {                                                                                              \
        'A', (o), (r), (cp), (p)                                                                   \
    }
#define D(o, r, cp, p)                                                                             \
    {                                                                                              \
        'D', (o), (r), (cp), (p)                                                                   \
    }

static const struct offsets_case cases[] = {
    {"nothing done yet", {A(5, 0, -1, 1), A(6, 0, -1, 2)}},
    {"in order",
     {A(0, 0, -1, 1), A(1, 0, -1, 2), A(2, 0, -1, 3), D(0, 0, 1, 2), D(1, 0, 2, 1), D(2, 0, 3, 0)}},
    {"gaps 5 7 10 in order",
     {A(5, 0, -1, 1), A(7, 0, -1, 2), A(10, 0, -1, 3), D(5, 0, 7, 2), D(7, 0, 10, 1),
      D(10, 0, 11, 0)}},
    {"gaps 5 7 10 out of order",
     {A(5, 0, -1, 1), A(7, 0, -1, 2), A(10, 0, -1, 3), D(10, 0, 5, 3), D(7, 0, 5, 3),
      D(5, 0, 11, 0)}},
    {"middle first",
     {A(5, 0, -1, 1), A(7, 0, -1, 2), A(10, 0, -1, 3), D(7, 0, 5, 3), D(5, 0, 10, 1),
      D(10, 0, 11, 0)}},
    {"done twice after release", {A(1, 0, -1, 1), D(1, 0, 2, 0), D(1, -1, 2, 0)}},
    {"done twice while held",
     {A(1, 0, -1, 1), A(2, 0, -1, 2), D(2, 0, 1, 2), D(2, -1, 1, 2), D(1, 0, 3, 0)}},
    {"unknown offsets",
     {A(1, 0, -1, 1), A(3, 0, -1, 2), D(2, -1, -1, 2), D(0, -1, -1, 2), D(4, -1, -1, 2),
      D(-1, -1, -1, 2), D(INT64_MAX, -1, -1, 2), D(3, 0, 1, 2)}},
    {"done on an empty tracker", {D(0, -1, -1, 0), D(7, -1, -1, 0)}},
    {"add out of order",
     {A(5, 0, -1, 1), A(5, 1, -1, 1), A(4, 1, -1, 1), A(6, 0, -1, 2), A(0, 1, -1, 2)}},
    {"add below the released point",
     {A(5, 0, -1, 1), D(5, 0, 6, 0), A(3, 1, 6, 0), A(5, 1, 6, 0), A(6, 0, 6, 1)}},
    {"add after everything was done",
     {A(1, 0, -1, 1), D(1, 0, 2, 0), A(10, 0, 10, 1), D(10, 0, 11, 0)}},
    {"invalid offsets", {A(-1, 1, -1, 0), A(INT64_MIN, 1, -1, 0), A(INT64_MAX, 1, -1, 0)}},
    {"offset 0", {A(0, 0, -1, 1), D(0, 0, 1, 0)}},
    {"largest offset",
     {A(INT64_MAX - 2, 0, -1, 1), A(INT64_MAX - 1, 0, -1, 2), D(INT64_MAX - 1, 0, INT64_MAX - 2, 2),
      D(INT64_MAX - 2, 0, INT64_MAX, 0)}},
    {"wide gaps",
     {A(100, 0, -1, 1), A(100000, 0, -1, 2), A(INT64_C(10000000000), 0, -1, 3),
      D(100, 0, 100000, 2), D(INT64_C(10000000000), 0, 100000, 2),
      D(100000, 0, INT64_C(10000000001), 0)}},
};

static void test_offsets_table(void **state)
{
    size_t i;
    size_t k;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct offsets_case *c = &cases[i];
        struct clw_offsets *t = clw_offsets_new();

        assert_non_null(t);
        if (clw_offsets_commit_point(t) != -1 || clw_offsets_pending(t) != 0)
            fail_msg("case %s: a new tracker is not empty", c->name);
        for (k = 0; k < MAX_OPS && c->ops[k].kind != 0; k++) {
            const struct offsets_op *op = &c->ops[k];
            int ret =
                op->kind == 'A' ? clw_offsets_add(t, op->offset) : clw_offsets_done(t, op->offset);
            int64_t cp = clw_offsets_commit_point(t);
            size_t pending = clw_offsets_pending(t);

            if (ret != op->want_ret)
                fail_msg("case %s: op %zu %c %lld returned %d want %d", c->name, k, op->kind,
                         (long long)op->offset, ret, op->want_ret);
            if (cp != op->want_commit)
                fail_msg("case %s: op %zu commit point %lld want %lld", c->name, k, (long long)cp,
                         (long long)op->want_commit);
            if (pending != op->want_pending)
                fail_msg("case %s: op %zu pending %zu want %zu", c->name, k, pending,
                         op->want_pending);
        }
        clw_offsets_free(t);
    }
}

/* xorshift64 (seed must be non-zero). */
static uint64_t test_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

#define VOLUME 100000
#define WINDOW 1000

/* 100 000 offsets with gaps, added in order and marked done in random order within a sliding
 * window of up to 1 000 pending; commit point and pending count checked after every step
 * against a plain array model. */
static void test_offsets_volume(void **state)
{
    int64_t *offs = malloc(VOLUME * sizeof(*offs));
    unsigned char *done = calloc(VOLUME, 1);
    int *open = malloc(WINDOW * sizeof(*open)); /* indices added and not yet done */
    struct clw_offsets *t = clw_offsets_new();
    uint64_t seed = 88172645463325252u;
    size_t nopen = 0;
    size_t added = 0;
    size_t low = 0; /* model: lowest index not done */
    size_t max_pending = 0;
    int64_t last_done = -1;
    int ever_done = 0;
    size_t i;

    (void)state;
    assert_non_null(offs);
    assert_non_null(done);
    assert_non_null(open);
    assert_non_null(t);
    for (i = 0; i < VOLUME; i++)
        offs[i] = (int64_t)i * 2 + (int64_t)(i % 3 == 0) + 1000; /* gaps of 1 or 2 or 3 */

    while (added < VOLUME || nopen > 0) {
        int do_add = added < VOLUME && (nopen == 0 || (nopen < WINDOW && test_rand(&seed) % 2));
        int64_t want_cp;
        size_t want_pending;

        if (do_add) {
            if (clw_offsets_add(t, offs[added]) != 0)
                fail_msg("add %lld failed", (long long)offs[added]);
            open[nopen++] = (int)added;
            added++;
        } else {
            size_t pick = (size_t)(test_rand(&seed) % nopen);
            int idx = open[pick];

            open[pick] = open[--nopen];
            if (clw_offsets_done(t, offs[idx]) != 0)
                fail_msg("done %lld failed", (long long)offs[idx]);
            done[idx] = 1;
            ever_done = 1;
            while (low < added && done[low]) {
                last_done = offs[low];
                low++;
            }
            /* Marking it again is refused, whether released or still held. */
            if (clw_offsets_done(t, offs[idx]) != -1)
                fail_msg("second done of %lld accepted", (long long)offs[idx]);
        }
        if (!ever_done)
            want_cp = -1;
        else if (low < added)
            want_cp = offs[low];
        else
            want_cp = last_done + 1;
        want_pending = added - low;
        if (clw_offsets_commit_point(t) != want_cp)
            fail_msg("after %zu adds: commit point %lld want %lld", added,
                     (long long)clw_offsets_commit_point(t), (long long)want_cp);
        if (clw_offsets_pending(t) != want_pending)
            fail_msg("after %zu adds: pending %zu want %zu", added, clw_offsets_pending(t),
                     want_pending);
        if (want_pending > max_pending)
            max_pending = want_pending;
    }
    assert_int_equal(clw_offsets_pending(t), 0);
    assert_int_equal(clw_offsets_commit_point(t), offs[VOLUME - 1] + 1);
    /* Out-of-order dones actually held entries behind undone ones. */
    assert_true(max_pending > WINDOW);
    /* Released and never-taken (gap: 1001, 1002, 1004, 1007, ...) offsets are unknown. */
    assert_int_equal(offs[2], 1004);
    assert_int_equal(clw_offsets_done(t, 1003), -1);
    assert_int_equal(clw_offsets_done(t, offs[VOLUME - 1]), -1);
    clw_offsets_free(t);
    free(open);
    free(done);
    free(offs);
}

/* A long run where the front stays undone: everything is held, then released at once. */
static void test_offsets_held_front(void **state)
{
    struct clw_offsets *t = clw_offsets_new();
    int64_t o;

    (void)state;
    assert_non_null(t);
    for (o = 0; o < 50000; o++)
        assert_int_equal(clw_offsets_add(t, o * 3), 0);
    for (o = 49999; o >= 1; o--)
        assert_int_equal(clw_offsets_done(t, o * 3), 0);
    assert_int_equal(clw_offsets_pending(t), 50000);
    assert_int_equal(clw_offsets_commit_point(t), 0);
    assert_int_equal(clw_offsets_done(t, 0), 0);
    assert_int_equal(clw_offsets_pending(t), 0);
    assert_int_equal(clw_offsets_commit_point(t), 49999 * 3 + 1);
    clw_offsets_free(t);
}

static void test_offsets_null(void **state)
{
    (void)state;
    assert_int_equal(clw_offsets_add(NULL, 1), 1);
    assert_int_equal(clw_offsets_done(NULL, 1), -1);
    assert_int_equal(clw_offsets_commit_point(NULL), -1);
    assert_int_equal(clw_offsets_pending(NULL), 0);
    clw_offsets_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offsets_table),
        cmocka_unit_test(test_offsets_volume),
        cmocka_unit_test(test_offsets_held_front),
        cmocka_unit_test(test_offsets_null),
    };

    return cmocka_run_group_tests_name("offsets", tests, NULL, NULL);
}
