/* Unit tests for the guard alone (virtual time): transient failures of the service open the
 * circuit, throttling answers and resource locks never do, only a probe's answer closes it, the
 * probes space out; a worker fault holds everything until a probe passes; a credential fault
 * pauses and a refresh resumes; paused time is counted; every pause change is announced. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/worker_guard.h"

#define INITIAL     200
#define MAX_BACKOFF 30000

struct fixture {
    struct clw_config cfg;
    struct clw_metrics *metrics;
    struct guard g;
};

static void setup_with(struct fixture *f, const char *on_fault)
{
    char err[256];
    assert_int_equal(clw_config_init(&f->cfg), 0);
    const char *kv[][2] = {{"retry.initial_backoff_ms", "200"},
                           {"retry.max_backoff_ms", "30000"},
                           {"api.on_worker_fault", on_fault},
                           {"metrics.listen", ""}};
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        assert_int_equal(clw_config_set(&f->cfg, kv[i][0], kv[i][1], "-X", err, sizeof(err)), 0);
    if (clw_config_finalize(&f->cfg, err, sizeof(err)) != 0)
        fail_msg("configuration: %s", err);
    f->metrics = clw_metrics_new();
    assert_non_null(f->metrics);
    clw_guard_init(&f->g, &f->cfg, f->metrics);
}

static void teardown(struct fixture *f)
{
    clw_metrics_free(f->metrics);
    clw_config_free(&f->cfg);
}

static const char *const two[] = {"ins-a", "ins-b"};
static const char *const one_a[] = {"ins-a"};

/* An answer to an Attach/Detach call carrying ids. */
static void answer(struct guard *g, int outage, int probe, const char *const *ids, size_t n,
                   int64_t now)
{
    struct guard_answer ga = {
        .action = 1, .probe = probe, .outage = outage, .instance_ids = ids, .n_instances = n};
    clw_guard_answered(g, &ga, now);
}

static void test_transient_failures_open_the_circuit(void **state)
{
    (void)state;
    struct fixture f;
    setup_with(&f, "pause");
    unsigned gen = clw_guard_generation(&f.g);
    for (int i = 0; i < 19; i++)
        answer(&f.g, 1, 0, two, 2, 1000 + i);
    assert_false(f.g.circuit_open);
    assert_int_equal(clw_guard_start_mode(&f.g, 2000), GUARD_START_ALL);
    answer(&f.g, 1, 0, two, 2, 1100);
    assert_true(clw_guard_paused(&f.g));
    assert_int_not_equal(clw_guard_generation(&f.g), gen);
    /* No call until the first probe is due, after retry.initial_backoff_ms. */
    assert_int_equal(clw_guard_start_mode(&f.g, 1100 + INITIAL - 1), GUARD_START_NONE);
    assert_int_equal(clw_guard_wait_ms(&f.g, 1100, 100000), INITIAL);
    assert_int_equal(clw_guard_start_mode(&f.g, 1100 + INITIAL), GUARD_START_PROBE);
    teardown(&f);
}

static void test_throttling_and_locks_never_open_it(void **state)
{
    (void)state;
    struct fixture f;
    setup_with(&f, "pause");
    /* Throttling and a resource lock are not outages (outage 0): they end the streak. */
    for (int i = 0; i < 100; i++) {
        answer(&f.g, 1, 0, two, 2, i);
        answer(&f.g, 0, 0, two, 2, i);
    }
    assert_false(clw_guard_paused(&f.g));
    /* One instance failing alone, however often, is not an outage of the service. */
    for (int i = 0; i < 100; i++)
        answer(&f.g, 1, 0, one_a, 1, 200 + i);
    assert_false(clw_guard_paused(&f.g));
    /* Follow-up calls (listings, task polls) do not count. */
    struct guard_answer follow = {.action = 0, .outage = 1, .instance_ids = two, .n_instances = 2};
    for (int i = 0; i < 100; i++)
        clw_guard_answered(&f.g, &follow, 400 + i);
    assert_false(clw_guard_paused(&f.g));
    teardown(&f);
}

static int64_t open_circuit(struct guard *g, int64_t now)
{
    for (int i = 0; i < 20; i++)
        answer(g, 1, 0, two, 2, now);
    assert_true(g->circuit_open);
    return now;
}

static void test_only_a_probe_closes_it(void **state)
{
    (void)state;
    struct fixture f;
    setup_with(&f, "pause");
    int64_t t = open_circuit(&f.g, 10000);
    /* A success from a call sent before the outage: the circuit stays open. */
    answer(&f.g, 0, 0, two, 2, t + 5);
    assert_true(f.g.circuit_open);
    /* The probe goes, fails: the next one waits twice as long. */
    t += INITIAL;
    assert_int_equal(clw_guard_start_mode(&f.g, t), GUARD_START_PROBE);
    clw_guard_probe_started(&f.g, t);
    assert_int_equal(clw_guard_start_mode(&f.g, t + 100000), GUARD_START_NONE); /* one at a time */
    answer(&f.g, 1, 1, two, 2, t + 10);
    assert_true(f.g.circuit_open);
    assert_int_equal(clw_guard_wait_ms(&f.g, t + 10, 100000), 2 * INITIAL);
    /* The probe answers well: closed, and the paused time counted. */
    t += 10 + 2 * INITIAL;
    clw_guard_probe_started(&f.g, t);
    answer(&f.g, 0, 1, two, 2, t + 20);
    assert_false(clw_guard_paused(&f.g));
    assert_int_equal(clw_guard_start_mode(&f.g, t + 20), GUARD_START_ALL);
    assert_int_equal(clw_guard_paused_total(&f.g, t + 1000), t + 20 - 10000);
    teardown(&f);
}

/* Probes space out: doubling up to 4 s while the circuit is young (an outage of up to a minute
 * is seen within about 5 s of its end), then up to a fifteenth of the time open, at most
 * retry.max_backoff_ms. */
static void test_probes_space_out(void **state)
{
    (void)state;
    struct fixture f;
    setup_with(&f, "pause");
    int64_t opened = open_circuit(&f.g, 0);
    int64_t t = opened;
    int64_t last = 0;
    int64_t longest_first_minute = 0;
    while (t < opened + 15 * 60 * 1000) {
        int64_t wait = clw_guard_wait_ms(&f.g, t, INT64_MAX);
        t += wait;
        assert_int_equal(clw_guard_start_mode(&f.g, t), GUARD_START_PROBE);
        clw_guard_probe_started(&f.g, t);
        answer(&f.g, 1, 1, two, 2, t);
        last = clw_guard_wait_ms(&f.g, t, INT64_MAX);
        if (t < opened + 60000 && last > longest_first_minute)
            longest_first_minute = last;
        assert_true(last <= MAX_BACKOFF);
    }
    print_message("longest wait in the first minute %lld ms, after 15 min %lld ms\n",
                  (long long)longest_first_minute, (long long)last);
    assert_true(longest_first_minute <= 4000);
    assert_int_equal(last, MAX_BACKOFF);
    teardown(&f);
}

static void test_a_cancelled_probe_lets_the_next_go(void **state)
{
    (void)state;
    struct fixture f;
    setup_with(&f, "pause");
    int64_t t = open_circuit(&f.g, 0) + INITIAL;
    clw_guard_probe_started(&f.g, t);
    assert_int_equal(clw_guard_start_mode(&f.g, t + 1), GUARD_START_NONE);
    clw_guard_probe_lost(&f.g, t + 1);
    assert_int_equal(clw_guard_start_mode(&f.g, t + 1), GUARD_START_PROBE);
    teardown(&f);
}

static void test_a_worker_fault_holds_until_a_probe_passes(void **state)
{
    (void)state;
    struct fixture f;
    setup_with(&f, "pause");
    assert_int_equal(clw_guard_fault(&f.g, "code 4104", 1000), 0);
    assert_true(clw_guard_paused(&f.g));
    assert_false(clw_guard_exit_requested(&f.g));
    /* A held call probes every retry.max_backoff_ms. */
    assert_int_equal(clw_guard_start_mode(&f.g, 1000 + MAX_BACKOFF - 1), GUARD_START_NONE);
    assert_int_equal(clw_guard_start_mode(&f.g, 1000 + MAX_BACKOFF), GUARD_START_HELD);
    clw_guard_probe_started(&f.g, 1000 + MAX_BACKOFF);
    /* Answered with a worker fault again: still paused, nothing to release. */
    struct guard_answer still = {.action = 1, .probe = 1, .fault = 1};
    clw_guard_answered(&f.g, &still, 1000 + MAX_BACKOFF + 5);
    assert_true(clw_guard_paused(&f.g));
    assert_false(clw_guard_take_unhold(&f.g));
    /* The next probe passes: resumed, and the held calls are released once. */
    int64_t t = 1000 + 2 * MAX_BACKOFF;
    assert_int_equal(clw_guard_start_mode(&f.g, t), GUARD_START_HELD);
    clw_guard_probe_started(&f.g, t);
    answer(&f.g, 0, 1, two, 2, t + 5);
    assert_false(clw_guard_paused(&f.g));
    assert_true(clw_guard_take_unhold(&f.g));
    assert_false(clw_guard_take_unhold(&f.g));
    teardown(&f);
}

static void test_a_worker_fault_exits_when_asked(void **state)
{
    (void)state;
    struct fixture f;
    setup_with(&f, "exit");
    assert_int_equal(clw_guard_fault(&f.g, "code 4104", 0), 1);
    assert_true(clw_guard_exit_requested(&f.g));
    teardown(&f);
}

static void test_credentials_pause_and_a_refresh_resumes(void **state)
{
    (void)state;
    struct fixture f;
    setup_with(&f, "pause");
    unsigned gen = clw_guard_generation(&f.g);
    clw_guard_creds_fault(&f.g, 1, "expired", 500);
    assert_true(clw_guard_paused(&f.g));
    assert_true(clw_guard_creds_blocked(&f.g));
    assert_int_not_equal(clw_guard_generation(&f.g), gen);
    clw_guard_creds_fault(&f.g, 0, NULL, 1500);
    assert_false(clw_guard_paused(&f.g));
    assert_false(clw_guard_creds_blocked(&f.g));
    assert_int_equal(clw_guard_paused_total(&f.g, 9999), 1000);
    teardown(&f);

    setup_with(&f, "exit");
    clw_guard_creds_fault(&f.g, 1, "expired", 0);
    assert_true(clw_guard_exit_requested(&f.g));
    teardown(&f);
}

static void test_a_stuck_publisher_pauses(void **state)
{
    (void)state;
    struct fixture f;
    setup_with(&f, "pause");
    unsigned gen = clw_guard_generation(&f.g);
    clw_guard_publish_stuck(&f.g, 0, NULL, 10); /* not stuck: nothing changes */
    assert_int_equal(clw_guard_generation(&f.g), gen);
    clw_guard_publish_stuck(&f.g, 1, "topic missing", 100);
    assert_true(clw_guard_paused(&f.g));
    /* The API is not paused by it: calls may go on. */
    assert_int_equal(clw_guard_start_mode(&f.g, 100), GUARD_START_ALL);
    clw_guard_publish_stuck(&f.g, 0, NULL, 400);
    assert_false(clw_guard_paused(&f.g));
    assert_int_equal(clw_guard_paused_total(&f.g, 500), 300);
    teardown(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transient_failures_open_the_circuit),
        cmocka_unit_test(test_throttling_and_locks_never_open_it),
        cmocka_unit_test(test_only_a_probe_closes_it),
        cmocka_unit_test(test_probes_space_out),
        cmocka_unit_test(test_a_cancelled_probe_lets_the_next_go),
        cmocka_unit_test(test_a_worker_fault_holds_until_a_probe_passes),
        cmocka_unit_test(test_a_worker_fault_exits_when_asked),
        cmocka_unit_test(test_credentials_pause_and_a_refresh_resumes),
        cmocka_unit_test(test_a_stuck_publisher_pauses),
    };
    return cmocka_run_group_tests_name("worker_guard", tests, NULL, NULL);
}
