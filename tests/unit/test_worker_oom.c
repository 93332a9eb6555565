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

#include "../../src/worker_internal.h"
#include "clw/alloc.h"
#include "clw/clock.h"

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

static volatile sig_atomic_t no_flag;
static const struct clw_worker_io io = {&no_flag, &no_flag, -1, NULL, NULL};

static void on_delivered(void *arg, void *opaque, enum clw_publish_err err, const char *errstr)
{
    clw_worker_on_delivered(arg, opaque, err, errstr);
}

static struct worker *make_worker(struct clw_config *cfg, int dlq)
{
    static const char *const kv[] = {"kafka.bootstrap.servers",
                                     "127.0.0.1:1",
                                     "api.secret_id",
                                     "AKIDoom",
                                     "api.secret_key",
                                     "oomKey",
                                     "api.region",
                                     "ap-guangzhou",
                                     "api.endpoint",
                                     "http://127.0.0.1:1/v2/index.php",
                                     "metrics.listen",
                                     "",
                                     NULL};
    char err[512];
    assert_int_equal(clw_config_init(cfg), 0);
    for (size_t i = 0; kv[i] != NULL; i += 2)
        assert_int_equal(clw_config_set(cfg, kv[i], kv[i + 1], "-X", err, sizeof(err)), 0);
    if (dlq)
        assert_int_equal(clw_config_set(cfg, "topic.dlq", "dlq", "-X", err, sizeof(err)), 0);
    assert_int_equal(clw_config_finalize(cfg, err, sizeof(err)), 0);
    struct worker *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    w->cfg = cfg;
    w->io = &io;
    w->paused_since = -1;
    w->rng = 42;
    w->limits.max_bytes = 65536;
    w->limits.max_instances = 100;
    w->limits.default_region = cfg->api_region;
    w->taken_cap = 1000;
    w->api = clw_api_new(cfg, err, sizeof(err));
    assert_non_null(w->api);
    assert_int_equal(clw_worker_creds_setup(w, err, sizeof(err)), 0);
    assert_int_equal(clw_sched_init(w, err, sizeof(err)), 0);
    w->metrics = clw_metrics_new();
    assert_non_null(w->metrics);
    struct clw_http_opts ho = {
        .timeout_ms = 1000, .connect_timeout_ms = 1000, .max_body = 65536, .max_connections = 4};
    w->http = clw_http_new(&ho, err, sizeof(err));
    assert_non_null(w->http);
    struct clw_kafka_handlers h = {.arg = w, .delivered = on_delivered};
    w->kafka = clw_kafka_new(cfg, &h, err, sizeof(err));
    assert_non_null(w->kafka);
    return w;
}

/* Forgets every partition (abandoning its jobs) and starts the worker afresh. */
static void reset(struct worker *w)
{
    for (size_t i = 0; i < w->n_parts; i++)
        if (w->parts[i] != NULL)
            clw_worker_forget_part(w, w->parts[i]);
    while (w->untimed.head != NULL) {
        struct job *job = w->untimed.head;
        clw_jobq_remove(&w->untimed, job);
        job->untimed = 0;
    }
    w->stopping = 0;
    w->exit_code = 0;
}

static void free_worker(struct worker *w, struct clw_config *cfg)
{
    reset(w);
    clw_kafka_purge(w->kafka, 1000); /* the orphans' delivery reports: they are freed */
    assert_int_equal(w->orphans, 0);
    clw_kafka_free(w->kafka);
    clw_http_free(w->http);
    clw_sched_fini(w);
    clw_timers_free(&w->timers);
    clw_metrics_free(w->metrics);
    clw_creds_free(w->creds);
    clw_api_free(w->api);
    free(w->parts);
    free(w);
    clw_config_free(cfg);
}

static struct clw_kafka_msg record(int64_t offset, const char *value)
{
    static const struct clw_kafka_header hdrs[] = {
        {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 55},
        {"x-request-id", "xr-1", 4}};
    struct clw_kafka_msg m = {
        "requests",    0,    offset, "key", 3, value, value != NULL ? strlen(value) : 0,
        1700000000000, hdrs, 2};
    return m;
}

/* The invariant after a failure: the partition's commit point is not past any live job, and
 * either the worker stops with status 2 or the record is alive (pending). */
static void check_nothing_skipped(struct worker *w, int64_t offset, const char *what, long n)
{
    struct part *p = w->n_parts > 0 ? w->parts[0] : NULL;
    if (w->stopping) {
        if (w->exit_code != CLW_EXIT_FATAL)
            fail_msg("%s, allocation %ld: stopping with status %d, not 2", what, n, w->exit_code);
    }
    if (p == NULL)
        return; /* nothing taken: the consumer's position never passed it */
    int64_t cp = clw_offsets_commit_point(p->offs);
    for (const struct job *job = p->jobs; job != NULL; job = job->pnext)
        if (cp > job->offset)
            fail_msg("%s, allocation %ld: commit point %lld past live offset %lld", what, n,
                     (long long)cp, (long long)job->offset);
    if (!w->stopping && p->jobs == NULL && cp > offset)
        fail_msg("%s, allocation %ld: the record vanished and its offset is done", what, n);
    if (!w->stopping && p->jobs == NULL)
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
        reset(w);
        if (!in.fired)
            break;
    }
    print_message("%s: %ld allocations, each failed once\n", what, n - 1);
    return n - 1;
}

/* ---- intake ---------------------------------------------------------------------------------- */

static void take_valid(struct worker *w, long n)
{
    struct clw_kafka_msg m = record(7, "{\"requestId\":\"r-1\",\"vpcId\":\"vpc-1\","
                                       "\"instanceIds\":[\"ins-1\",\"ins-2\"]}");
    clw_worker_on_message(w, &m);
    check_nothing_skipped(w, 7, "a valid record", n);
    if (!w->stopping) /* taken: ready in the pool for a call */
        assert_int_equal(w->parts[0]->jobs->state, JOB_READY);
}

static void test_intake(void **state)
{
    struct clw_config cfg;
    struct worker *w = make_worker(&cfg, 0);
    (void)state;
    assert_true(sweep(w, "intake of a valid record", take_valid) > 10);
    free_worker(w, &cfg);
}

/* ---- an invalid record: decided at once, its outcome (and dead letter) published ----------- */

static void take_invalid(struct worker *w, long n)
{
    struct clw_kafka_msg m = record(3, "{not json");
    clw_worker_on_message(w, &m);
    check_nothing_skipped(w, 3, "an invalid record", n);
    if (w->stopping)
        return;
    struct job *job = w->parts[0]->jobs;
    /* Published, or waiting to be published again (timer or, without memory for one, the
     * timer-less list served every turn). */
    if (job->state == JOB_REPUBLISH) {
        assert_true(job->timer.idx != CLW_TIMER_IDLE || job->untimed);
        /* Once memory is back the next turn publishes it. */
        clw_publish_tick(w, clw_clock_mono_ms() + 60000);
    }
    assert_int_equal(job->state, JOB_PUBLISHING);
    assert_int_equal(job->to_send, 0);
}

static void test_publish(void **state)
{
    struct clw_config cfg;
    struct worker *w = make_worker(&cfg, 1); /* with a dead-letter topic: two records */
    (void)state;
    assert_true(sweep(w, "an invalid record, outcome and dead letter", take_invalid) > 5);
    free_worker(w, &cfg);
}

/* ---- a failed delivery: produced again later, through a timer ---------------------------------
 */

/* Returns 1 when the n-th allocation after the failed delivery report was made to fail. */
static int redeliver(struct worker *w, long n)
{
    struct clw_kafka_msg m = record(5, "");
    clw_worker_on_message(w, &m);
    struct job *job = w->parts[0]->jobs;
    assert_int_equal(job->state, JOB_PUBLISHING);
    struct injector in = {n, 0, 0};
    clw_alloc_set_fail_hook(fail_nth, &in);
    clw_kafka_purge(w->kafka, 1000); /* the delivery fails: its report says "retry" */
    check_nothing_skipped(w, 5, "a failed delivery", n);
    assert_int_equal(job->state, JOB_REPUBLISH);
    assert_true(job->timer.idx != CLW_TIMER_IDLE || job->untimed);
    clw_publish_tick(w, clw_clock_mono_ms() + 60000);
    check_nothing_skipped(w, 5, "a failed delivery, produced again", n);
    clw_alloc_set_fail_hook(NULL, NULL);
    if (job->state == JOB_REPUBLISH) /* that turn's allocation failed: the next turn */
        clw_publish_tick(w, clw_clock_mono_ms() + 120000);
    assert_int_equal(job->state, JOB_PUBLISHING);
    assert_int_equal(job->to_send, 0);
    assert_int_equal(clw_offsets_commit_point(w->parts[0]->offs), -1); /* none acknowledged */
    return in.fired;
}

static void test_redelivery(void **state)
{
    struct clw_config cfg;
    struct worker *w = make_worker(&cfg, 0);
    long n = 1;
    (void)state;
    while (redeliver(w, n)) {
        reset(w);
        n++;
    }
    print_message("a failed delivery: %ld allocations, each failed once\n", n - 1);
    free_worker(w, &cfg);
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
