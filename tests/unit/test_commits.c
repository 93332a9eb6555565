/* Unit tests for commits: scripted assign/store/ack/revoke sequences with the stall flag and
 * the gaps a hand-over leaves after each step. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "clw/commits.h"

#define STALL_MS 500
#define MAX_OPS  12

struct op {
    char kind; /* 'A' assigned, 'S' stored, 'K' acked, 'R' revoked, 'L' lost */
    int32_t partition;
    int64_t offset;   /* S, K */
    int64_t at;       /* time of the op and of the checks after it */
    int want_stalled; /* clw_commits_stalled(at) */
    const char *gaps; /* clw_commits_gaps(since) as "p:committed..stored p:..." */
};

struct commits_case {
    const char *name;
    int64_t since; /* for clw_commits_gaps */
    struct op ops[MAX_OPS];
};

static const struct commits_case cases[] = {
    {"acknowledged in time: no stall, no gap",
     0,
     {{'A', 3, 0, 1000, 0, ""},
      {'S', 3, 10, 1100, 0, "3:-1..10"},
      {'K', 3, 10, 1300, 0, ""},
      {'S', 3, 25, 1400, 0, "3:10..25"},
      {'K', 3, 25, 1600, 0, ""}}},
    {"no acknowledgement for the stall time",
     0,
     {{'A', 0, 0, 1000, 0, ""},
      {'S', 0, 7, 1000, 0, "0:-1..7"},
      {'S', 0, 9, 1499, 0, "0:-1..9"},
      {'S', 0, 12, 1500, 1, "0:-1..12"},
      {'K', 0, 12, 9000, 0, ""}}},
    {"progress restarts the clock",
     0,
     {{'A', 1, 0, 0, 0, ""},
      {'S', 1, 50, 100, 0, "1:-1..50"},
      {'K', 1, 40, 550, 0, "1:40..50"},
      {'S', 1, 60, 1049, 0, "1:40..60"},
      {'K', 1, 40, 1050, 1, "1:40..60"},
      {'K', 1, 60, 1060, 0, ""}}},
    {"an old acknowledgement changes nothing",
     0,
     {{'A', 2, 0, 0, 0, ""},
      {'S', 2, 30, 0, 0, "2:-1..30"},
      {'K', 2, 30, 100, 0, ""},
      {'S', 2, 45, 200, 0, "2:30..45"},
      {'K', 2, 20, 800, 1, "2:30..45"}}},
    {"a revoked partition owes its offset but does not stall",
     5000,
     {{'A', 4, 0, 1000, 0, ""},
      {'S', 4, 8, 1000, 0, "4:-1..8"},
      {'R', 4, 0, 6000, 0, "4:-1..8"},
      {'K', 4, 8, 6100, 0, ""}}},
    {"revoked before the stop began: not reported",
     5000,
     {{'A', 4, 0, 1000, 0, ""}, {'S', 4, 8, 1000, 0, "4:-1..8"}, {'R', 4, 0, 4000, 0, ""}}},
    {"a lost assignment owes nothing",
     0,
     {{'A', 6, 0, 0, 0, ""}, {'S', 6, 8, 0, 0, "6:-1..8"}, {'L', 6, 0, 900, 0, ""}}},
    {"re-assignment starts afresh",
     0,
     {{'A', 7, 0, 0, 0, ""},
      {'S', 7, 8, 0, 0, "7:-1..8"},
      {'R', 7, 0, 100, 0, "7:-1..8"},
      {'A', 7, 0, 200, 0, ""},
      {'S', 7, 9, 200, 0, "7:-1..9"}}},
    {"stores to unassigned partitions are ignored",
     0,
     {{'S', 9, 8, 0, 0, ""},
      {'K', 9, 8, 0, 0, ""},
      {'A', 2, 0, 0, 0, ""},
      {'S', 9, 1, 0, 0, ""},
      {'R', 2, 0, 0, 0, ""},
      {'S', 2, 5, 0, 0, ""}}},
    {"several partitions in partition order",
     0,
     {{'A', 11, 0, 0, 0, ""},
      {'A', 0, 0, 0, 0, ""},
      {'A', 5, 0, 0, 0, ""},
      {'S', 11, 100, 0, 0, "11:-1..100"},
      {'S', 0, 3, 0, 0, "0:-1..3 11:-1..100"},
      {'K', 11, 100, 100, 0, "0:-1..3"},
      {'S', 5, 4, 400, 0, "0:-1..3 5:-1..4"},
      {'K', 0, 3, 600, 0, "5:-1..4"},
      {'S', 11, 120, 700, 0, "5:-1..4 11:100..120"},
      {'L', 5, 0, 899, 0, "11:100..120"},
      {'K', 11, 110, 1200, 0, "11:110..120"},
      {'K', 11, 110, 1700, 1, "11:110..120"}}},
};

static void describe(const struct clw_commits *c, int64_t since, char *buf, size_t size)
{
    struct clw_commit_gap gaps[16];
    size_t n = clw_commits_gaps(c, since, gaps, 16);
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && i < 16; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%d:%lld..%lld", i ? " " : "",
                                (int)gaps[i].partition, (long long)gaps[i].committed,
                                (long long)gaps[i].stored);
}

static void test_commits_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct commits_case *tc = &cases[i];
        struct clw_commits *c = clw_commits_new(STALL_MS);
        assert_non_null(c);
        for (size_t k = 0; k < MAX_OPS && tc->ops[k].kind != 0; k++) {
            const struct op *op = &tc->ops[k];
            switch (op->kind) {
            case 'A':
                assert_int_equal(clw_commits_assigned(c, op->partition), 0);
                break;
            case 'S':
                clw_commits_stored(c, op->partition, op->offset, op->at);
                break;
            case 'K':
                clw_commits_acked(c, op->partition, op->offset, op->at);
                break;
            default:
                clw_commits_revoked(c, op->partition, op->kind == 'L', op->at);
                break;
            }
            char got[256];
            describe(c, tc->since, got, sizeof(got));
            if (clw_commits_stalled(c, op->at) != op->want_stalled || strcmp(got, op->gaps) != 0)
                fail_msg("%s, op %zu: stalled %d (want %d), gaps \"%s\" (want \"%s\")", tc->name, k,
                         clw_commits_stalled(c, op->at), op->want_stalled, got, op->gaps);
        }
        clw_commits_free(c);
    }
}

static void test_commits_gap_count_beyond_cap(void **state)
{
    (void)state;
    struct clw_commits *c = clw_commits_new(STALL_MS);
    assert_non_null(c);
    for (int32_t p = 0; p < 5; p++) {
        assert_int_equal(clw_commits_assigned(c, p), 0);
        clw_commits_stored(c, p, 10 + p, 0);
    }
    struct clw_commit_gap two[2];
    assert_int_equal(clw_commits_gaps(c, 0, two, 2), 5);
    assert_int_equal(two[1].partition, 1);
    assert_int_equal(two[1].stored, 11);
    assert_int_equal(clw_commits_gaps(c, 0, NULL, 0), 5);
    assert_int_equal(clw_commits_assigned(c, -1), -1);
    clw_commits_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commits_table),
        cmocka_unit_test(test_commits_gap_count_beyond_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
