/* The scheduler under throttling (contract section 8): a call that got only throttling answers
 * takes the ready requests of its key before it is sent again, other answers freeze a call's
 * members, and throttling answers do not grow the backoff; a member leaving a call in flight
 * keeps its instances gated until the attempt ended. Driven in-process: records in,
 * calls out of the scheduler, API answers handed to the worker as the HTTP adapter would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "clw/clock.h"
#include "harness/worker_harness.h"

#define INITIAL_BACKOFF 1000
#define THROTTLED                                                                                  \
    "{\"code\":4400,\"message\":\"too many calls\",\"codeDesc\":\"RequestLimitExceeded\"}"
#define SUCCEEDED "{\"code\":0,\"message\":\"\",\"codeDesc\":\"Success\"}"

/* The scheduler's clock runs ahead of the real one so that lingering groups, backoff timers
 * and the rate limiter's bucket are always due; each step moves a minute further. */
static int64_t ahead;

static int64_t later(void)
{
    ahead += 60000;
    return clw_clock_mono_ms() + ahead;
}

static struct worker *make_worker(struct clw_config *cfg, const char *max_instances)
{
    const char *const kv[] = {"retry.initial_backoff_ms",
                              "1000",
                              "retry.max_backoff_ms",
                              "30000",
                              "retry.max_elapsed_ms",
                              "0",
                              "api.coalesce.max_instances",
                              max_instances,
                              NULL};
    ahead = 0;
    return clw_test_worker_new(cfg, kv);
}

/* Takes one request for vpc and instance ins at offset. */
static void take_ins(struct worker *w, int64_t offset, const char *vpc, const char *ins)
{
    char value[160];
    snprintf(value, sizeof(value),
             "{\"requestId\":\"r-%lld\",\"vpcId\":\"%s\",\"instanceIds\":[\"%s\"]}",
             (long long)offset, vpc, ins);
    struct clw_kafka_msg m = clw_test_record(offset, value);
    clw_worker_on_message(w, &m);
    assert_false(w->stopping);
}

/* Takes one single-instance request for vpc at offset (instance ins-<offset>). */
static void take(struct worker *w, int64_t offset, const char *vpc)
{
    char ins[32];
    snprintf(ins, sizeof(ins), "ins-%lld", (long long)offset);
    take_ins(w, offset, vpc, ins);
}

static struct job *job_at(struct worker *w, int64_t offset)
{
    for (struct job *job = w->parts[0]->jobs; job != NULL; job = job->pnext)
        if (job->offset == offset)
            return job;
    fail_msg("no request at offset %lld", (long long)offset);
    return NULL;
}

/* Hands call an answer as the HTTP adapter would at the end of its transfer (which never ran:
 * nothing drives the adapter): a JSON body with HTTP 200, or (body NULL) an HTTP status alone.
 * Returns the real monotonic time after the answer was handled. */
static int64_t answer(struct worker *w, struct call *call, long status, const char *body)
{
    struct clw_http_response resp = {
        CLW_TRANSPORT_OK, status, body, body != NULL ? strlen(body) : 0, -1, 1};
    assert_int_equal(call->state, CALL_RUNNING);
    assert_int_equal(clw_http_cancel(w->http, call), 1);
    clw_worker_on_http_done(call, &resp, w);
    return clw_clock_mono_ms();
}

/* Starts every call that is due (as the event loop's turn does) and returns the one carrying
 * the request at offset, which must be running. */
static struct call *started(struct worker *w, int64_t offset)
{
    int64_t now = later();
    clw_sched_tick(w, now);
    clw_worker_dispatch(w, now);
    for (const struct job *job = w->parts[0]->jobs; job != NULL; job = job->pnext)
        if (job->offset == offset) {
            assert_int_equal(job->state, JOB_IN_CALL);
            assert_int_equal(job->call->state, CALL_RUNNING);
            return job->call;
        }
    fail_msg("no request at offset %lld", (long long)offset);
    return NULL;
}

static int members_of(const struct call *call, const char *vpc)
{
    int n = 0;
    for (size_t i = 0; i < call->n_members; i++)
        n += strstr(call->members[i]->group, vpc) != NULL;
    return n;
}

static void finish(struct worker *w, struct call *call, struct clw_config *cfg)
{
    answer(w, call, 200, SUCCEEDED);
    clw_test_worker_free(w, cfg);
}

/* ---- top-up ---------------------------------------------------------------------------------- */

struct top_up_case {
    const char *name;
    long status;      /* the first answer: HTTP status ... */
    const char *body; /* ... and body (NULL: none) */
    const char *max_instances;
    size_t members_after; /* members of the call sent again */
};

static const struct top_up_case top_up_cases[] = {
    /* Throttled: the four requests of vpc-1 that arrived meanwhile join; vpc-2's does not. */
    {"throttled (4400)", 200, THROTTLED, "100", 5},
    {"throttled (HTTP 429)", 429, NULL, "100", 5},
    /* Up to api.coalesce.max_instances only. */
    {"throttled, call limit 3", 200, THROTTLED, "3", 3},
    /* Any other answer may have reached the API: the call's members stay as they were. */
    {"HTTP 503", 503, NULL, "100", 1},
    {"service unavailable (5100)", 200,
     "{\"code\":5100,\"message\":\"busy\",\"codeDesc\":\"ServiceUnavailable\"}", "100", 1},
};

static void test_top_up(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(top_up_cases) / sizeof(top_up_cases[0]); i++) {
        const struct top_up_case *tc = &top_up_cases[i];
        print_message("%s\n", tc->name);
        struct clw_config cfg;
        struct worker *w = make_worker(&cfg, tc->max_instances);
        take(w, 0, "vpc-1");
        struct call *call = started(w, 0);
        assert_non_null(call);
        assert_int_equal(call->n_members, 1);
        for (int64_t o = 1; o <= 4; o++)
            take(w, o, "vpc-1");
        take(w, 5, "vpc-2");

        answer(w, call, tc->status, tc->body);
        assert_int_equal(call->state, CALL_BACKOFF);
        struct call *again = started(w, 0);
        assert_ptr_equal(again, call);
        assert_int_equal(call->n_members, tc->members_after);
        assert_int_equal(call->n_instances, tc->members_after);
        assert_int_equal(members_of(call, "vpc-1"), (int)tc->members_after);
        assert_int_equal(call->members[0]->offset, 0); /* the first member stays first */
        finish(w, call, &cfg);
    }
}

/* A call that was answered by the API once is no longer topped up, even if throttled later:
 * the members' outcomes are tied to what the API saw. */
static void test_no_top_up_after_a_real_answer(void **state)
{
    (void)state;
    struct clw_config cfg;
    struct worker *w = make_worker(&cfg, "100");
    take(w, 0, "vpc-1");
    struct call *call = started(w, 0);
    assert_non_null(call);
    answer(w, call, 503, NULL);
    assert_ptr_equal(started(w, 0), call);
    take(w, 1, "vpc-1");
    answer(w, call, 200, THROTTLED);
    assert_ptr_equal(started(w, 0), call);
    assert_int_equal(call->n_members, 1);
    finish(w, call, &cfg);
}

/* ---- backoff --------------------------------------------------------------------------------- */

/* Lower bounds of the delays before the next attempts after `rounds` answers of one kind, in
 * ms. */
static void delays(long status, const char *body, int64_t *out, int rounds)
{
    struct clw_config cfg;
    struct worker *w = make_worker(&cfg, "100");
    take(w, 0, "vpc-1");
    struct call *call = started(w, 0);
    assert_non_null(call);
    for (int r = 0; r < rounds; r++) {
        int64_t after = answer(w, call, status, body);
        assert_int_equal(call->state, CALL_BACKOFF);
        /* The delay was added to a time not later than after: it is at least this. */
        out[r] = call->timer.due - after;
        assert_ptr_equal(started(w, 0), call);
        assert_int_equal(call->attempts, r + 2);
    }
    finish(w, call, &cfg);
}

static void test_throttling_does_not_grow_the_backoff(void **state)
{
    (void)state;
    enum { ROUNDS = 10 };
    int64_t d[ROUNDS];
    delays(200, THROTTLED, d, ROUNDS);
    for (int r = 0; r < ROUNDS; r++) {
        print_message("throttled %d: %lld ms\n", r + 1, (long long)d[r]);
        assert_in_range(d[r], 0, INITIAL_BACKOFF);
    }
    /* Other transient answers back off exponentially: the same draws go past the initial. */
    delays(503, NULL, d, ROUNDS);
    int64_t most = 0;
    for (int r = 0; r < ROUNDS; r++)
        most = d[r] > most ? d[r] : most;
    print_message("HTTP 503, longest delay of %d: %lld ms\n", ROUNDS, (long long)most);
    assert_true(most > INITIAL_BACKOFF);
}

/* ---- a member leaving a call in flight ------------------------------------------------------ */

/* A request leaves a call whose attempt is in flight (its partition was lost): its instance
 * stays gated until that attempt has ended, and the answer is read against what was sent, so
 * an error naming the leaver is not taken as the remaining member's. */
static void test_a_leaving_member_keeps_its_instances_until_the_attempt_ended(void **state)
{
    (void)state;
    struct clw_config cfg;
    struct worker *w = make_worker(&cfg, "100");
    take_ins(w, 0, "vpc-1", "ins-a");
    take_ins(w, 1, "vpc-1", "ins-b");
    struct call *call = started(w, 0);
    assert_int_equal(call->n_members, 2);
    take_ins(w, 2, "vpc-2", "ins-b"); /* waits for the request at offset 1 */
    assert_int_equal(job_at(w, 2)->state, JOB_GATED);

    clw_job_abandon(w, job_at(w, 1));
    assert_int_equal(call->n_members, 1);
    assert_int_equal(call->state, CALL_RUNNING);
    /* The attempt still carries ins-b: the later request may not start beside it. */
    assert_int_equal(job_at(w, 2)->state, JOB_GATED);

    answer(w, call, 200,
           "{\"code\":4000,\"message\":\"instance ins-b not found in region ap-guangzhou\","
           "\"codeDesc\":\"InvalidInstance.NotFound\"}");
    /* The attempt ended: ins-b is free. The error named the leaver, not the member left: it
     * is sent again, undecided. */
    assert_int_equal(job_at(w, 2)->state, JOB_READY);
    struct job *left = job_at(w, 0);
    assert_int_equal(left->state, JOB_IN_CALL);
    assert_ptr_equal(left->call, call);
    assert_int_equal(call->state, CALL_QUEUED);
    assert_int_equal(left->last->members, 2); /* the answer came to a call of two */
    struct call *again = started(w, 0);
    assert_ptr_equal(again, call);
    finish(w, call, &cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_top_up),
        cmocka_unit_test(test_no_top_up_after_a_real_answer),
        cmocka_unit_test(test_throttling_does_not_grow_the_backoff),
        cmocka_unit_test(test_a_leaving_member_keeps_its_instances_until_the_attempt_ended),
    };
    return cmocka_run_group_tests_name("worker_sched", tests, NULL, NULL);
}
