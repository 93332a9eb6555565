/* Fault injection on the worker's own paths: every allocation of taking a record, deciding and
 * publishing its outcome, re-publishing after a failed delivery, and arming a timer is made to
 * fail in turn (a failing allocator hook). Whatever fails, a record is either still pending —
 * its offset below the commit point, its job alive to finish later — or the worker stops with
 * exit status 2: never an offset that could commit past an unfinished record. The worker runs
 * without a broker (its producer only queues) and without an API (no call starts). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clw/alloc.h"
#include "clw/clock.h"
#include "harness/worker_harness.h"

/* ---- the failing allocator ------------------------------------------------------------------ */

struct injector {
    long countdown; /* the allocation that fails: 1 = the next one; 0 = none */
    long seen;
    int fired;
};

static int fail_nth(void *arg)
{
    struct injector *in = arg;
    in->seen++;
    if (in->countdown > 0 && --in->countdown == 0) {
        in->fired = 1;
        return 1;
    }
    return 0;
}

/* ---- a worker without broker and API -------------------------------------------------------- */

static struct worker *make_worker(struct clw_config *cfg, int dlq)
{
    static const char *const with_dlq[] = {"topic.dlq", "dlq", NULL};
    return clw_test_worker_new(cfg, dlq ? with_dlq : NULL);
}

/* The invariant after a failure: the partition's commit point is not past any live job, and
 * either the worker stops with status 2 or the record is alive (pending). */
static void check_nothing_skipped(struct worker *w, int64_t offset, const char *what, long n)
{
    struct part *p = clw_parts_get(&w->parts, 0, 0);
    if (w->stopping) {
        if (w->exit_code != CLW_EXIT_FATAL)
            fail_msg("%s, allocation %ld: stopping with status %d, not 2", what, n, w->exit_code);
    }
    if (p == NULL)
        return; /* nothing taken: the consumer's position never passed it */
    int64_t cp = clw_offsets_commit_point(p->offs);
    for (const struct job *job = clw_parts_first(p); job != NULL; job = clw_parts_next(job))
        if (cp > job->rec.offset)
            fail_msg("%s, allocation %ld: commit point %lld past live offset %lld", what, n,
                     (long long)cp, (long long)job->rec.offset);
    if (!w->stopping && p->jobs.len == 0 && cp > offset)
        fail_msg("%s, allocation %ld: the record vanished and its offset is done", what, n);
    if (!w->stopping && p->jobs.len == 0)
        fail_msg("%s, allocation %ld: the record vanished without a stop", what, n);
}

/* Runs step with the n-th allocation failing, for every n until none fails; returns how many
 * allocations the step makes. */
static long sweep(struct worker *w, const char *what, void (*step)(struct worker *w, long n))
{
    long n = 1;
    for (;; n++) {
        struct injector in = {n, 0, 0};
        clw_alloc_set_fail_hook(fail_nth, &in);
        step(w, n);
        clw_alloc_set_fail_hook(NULL, NULL);
        clw_test_worker_reset(w);
        if (!in.fired)
            break;
    }
    print_message("%s: %ld allocations, each failed once\n", what, n - 1);
    return n - 1;
}

/* ---- intake ---------------------------------------------------------------------------------- */

static void take_valid(struct worker *w, long n)
{
    struct clw_kafka_msg m = clw_test_record(7, "{\"requestId\":\"r-1\",\"vpcId\":\"vpc-1\","
                                                "\"instanceIds\":[\"ins-1\",\"ins-2\"]}");
    clw_worker_take(w, &m);
    check_nothing_skipped(w, 7, "a valid record", n);
    if (!w->stopping) /* taken: ready in the pool for a call */
        assert_int_equal(clw_parts_first(clw_parts_get(&w->parts, 0, 0))->state, JOB_READY);
}

static void test_intake(void **state)
{
    struct clw_config cfg;
    struct worker *w = make_worker(&cfg, 0);
    (void)state;
    assert_true(sweep(w, "intake of a valid record", take_valid) > 10);
    clw_test_worker_free(w, &cfg);
}

/* ---- an invalid record: decided at once, its outcome (and dead letter) published ----------- */

static void take_invalid(struct worker *w, long n)
{
    struct clw_kafka_msg m = clw_test_record(3, "{not json");
    clw_worker_take(w, &m);
    check_nothing_skipped(w, 3, "an invalid record", n);
    if (w->stopping)
        return;
    struct job *job = clw_parts_first(clw_parts_get(&w->parts, 0, 0));
    /* Published, or waiting to be published again (timer or, without memory for one, the
     * timer-less list served every turn). */
    if (job->state == JOB_REPUBLISH) {
        assert_true(job->pub.timer.idx != CLW_TIMER_IDLE || job->pub.untimed);
        /* Once memory is back the next turn publishes it. */
        clw_worker_step(w, clw_clock_mono_ms() + 60000);
    }
    assert_int_equal(job->state, JOB_PUBLISHING);
    assert_int_equal(job->pub.to_send, 0);
}

static void test_publish(void **state)
{
    struct clw_config cfg;
    struct worker *w = make_worker(&cfg, 1); /* with a dead-letter topic: two records */
    (void)state;
    assert_true(sweep(w, "an invalid record, outcome and dead letter", take_invalid) > 5);
    clw_test_worker_free(w, &cfg);
}

/* ---- a failed delivery: produced again later, through a timer ---------------------------------
 */

/* Returns 1 when the n-th allocation after the failed delivery report was made to fail. */
static int redeliver(struct worker *w, long n)
{
    struct clw_kafka_msg m = clw_test_record(5, "");
    clw_worker_take(w, &m);
    struct job *job = clw_parts_first(clw_parts_get(&w->parts, 0, 0));
    assert_int_equal(job->state, JOB_PUBLISHING);
    struct injector in = {n, 0, 0};
    clw_alloc_set_fail_hook(fail_nth, &in);
    clw_kafka_purge(w->kafka, 1000); /* the delivery fails: its report says "retry" */
    clw_flow_drain(&w->flow);        /* the report's news is taken, as after the loop's phase */
    check_nothing_skipped(w, 5, "a failed delivery", n);
    assert_int_equal(job->state, JOB_REPUBLISH);
    assert_true(job->pub.timer.idx != CLW_TIMER_IDLE || job->pub.untimed);
    clw_worker_step(w, clw_clock_mono_ms() + 60000);
    check_nothing_skipped(w, 5, "a failed delivery, produced again", n);
    clw_alloc_set_fail_hook(NULL, NULL);
    if (job->state == JOB_REPUBLISH) /* that turn's allocation failed: the next turn */
        clw_worker_step(w, clw_clock_mono_ms() + 120000);
    assert_int_equal(job->state, JOB_PUBLISHING);
    assert_int_equal(job->pub.to_send, 0);
    assert_int_equal(clw_offsets_commit_point(clw_parts_get(&w->parts, 0, 0)->offs),
                     -1); /* none acknowledged */
    return in.fired;
}

static void test_redelivery(void **state)
{
    struct clw_config cfg;
    struct worker *w = make_worker(&cfg, 0);
    long n = 1;
    (void)state;
    while (redeliver(w, n)) {
        clw_test_worker_reset(w);
        n++;
    }
    print_message("a failed delivery: %ld allocations, each failed once\n", n - 1);
    clw_test_worker_free(w, &cfg);
}

/* ---- the pure pieces: a failed allocation changes nothing -------------------------------------
 */

static void test_offsets_and_timers(void **state)
{
    (void)state;
    struct injector in = {0, 0, 0};
    struct clw_offsets *t = clw_offsets_new();
    assert_non_null(t);
    for (int64_t o = 0; o < 16; o++) /* the first ring is full */
        assert_int_equal(clw_offsets_add(t, o), 0);
    in.countdown = 1;
    clw_alloc_set_fail_hook(fail_nth, &in);
    assert_int_equal(clw_offsets_add(t, 16), -1); /* out of memory: not a re-delivery (1) */
    clw_alloc_set_fail_hook(NULL, NULL);
    assert_int_equal(clw_offsets_pending(t), 16);
    assert_int_equal(clw_offsets_add(t, 16), 0); /* taken once memory is back */
    assert_int_equal(clw_offsets_add(t, 16), 1); /* and a second copy is a re-delivery */
    clw_offsets_free(t);

    struct clw_timers timers = {0};
    struct clw_timer a, b;
    clw_timer_init(&a);
    clw_timer_init(&b);
    in.countdown = 1;
    in.fired = 0;
    clw_alloc_set_fail_hook(fail_nth, &in);
    assert_int_equal(clw_timers_arm(&timers, &a, 10), -1);
    clw_alloc_set_fail_hook(NULL, NULL);
    assert_int_equal(a.idx, CLW_TIMER_IDLE);
    assert_null(clw_timers_peek(&timers));
    assert_int_equal(clw_timers_arm(&timers, &a, 10), 0);
    assert_int_equal(clw_timers_arm(&timers, &b, 5), 0);
    assert_ptr_equal(clw_timers_pop_due(&timers, 5), &b);
    clw_timers_free(&timers);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offsets_and_timers),
        cmocka_unit_test(test_intake),
        cmocka_unit_test(test_publish),
        cmocka_unit_test(test_redelivery),
    };
    return cmocka_run_group_tests_name("worker_oom", tests, NULL, NULL);
}
