/* Unit tests for the job's state machine and its event queue: every (state, event) pair, in both
 * delivery modes, goes where the table below says or is refused; the queue keeps each job's
 * events in order, never allocates, and forgets an abandoned job's. The table here restates the
 * one in src/worker_job.c (and docs/design.md): a change to either must be made on purpose. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/worker_job.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

enum mode { BOTH = 0, ALO, EOS };

struct row {
    enum job_state from;
    enum job_event ev;
    enum mode mode;
    enum job_state to;
    enum job_action act;
};

/* What may follow what. Anything not listed is refused. */
static const struct row legal[] = {
    {JOB_TAKEN, JEV_VALID, BOTH, JOB_GATED, JACT_GATE},
    {JOB_TAKEN, JEV_DECIDED, ALO, JOB_FINAL, JACT_PUBLISH},
    {JOB_TAKEN, JEV_DECIDED, EOS, JOB_ORDERED, JACT_HOLD},
    {JOB_GATED, JEV_UNGATED, BOTH, JOB_READY, JACT_POOL},
    {JOB_READY, JEV_PLACED, BOTH, JOB_IN_CALL, JACT_NONE},
    {JOB_IN_CALL, JEV_DECIDED, ALO, JOB_FINAL, JACT_PUBLISH},
    {JOB_IN_CALL, JEV_DECIDED, EOS, JOB_ORDERED, JACT_HOLD},
    {JOB_ORDERED, JEV_RELEASED, EOS, JOB_FINAL, JACT_PUBLISH},
    {JOB_FINAL, JEV_PRODUCED, BOTH, JOB_PUBLISHING, JACT_NONE},
    {JOB_FINAL, JEV_UNPRODUCED, BOTH, JOB_REPUBLISH, JACT_NONE},
    {JOB_REPUBLISH, JEV_PRODUCED, BOTH, JOB_PUBLISHING, JACT_NONE},
    {JOB_REPUBLISH, JEV_UNPRODUCED, BOTH, JOB_REPUBLISH, JACT_NONE},
    {JOB_PUBLISHING, JEV_UNPRODUCED, BOTH, JOB_REPUBLISH, JACT_NONE},
    {JOB_PUBLISHING, JEV_DELIVERED, ALO, JOB_DONE, JACT_FINISH},
    {JOB_PUBLISHING, JEV_DELIVERED, EOS, JOB_IN_TXN, JACT_TXN},
    {JOB_IN_TXN, JEV_COMMITTED, EOS, JOB_DONE, JACT_FINISH},
    {JOB_IN_TXN, JEV_ABORTED, EOS, JOB_REPUBLISH, JACT_REPUBLISH},
};

static const struct row *expected(enum job_state from, enum job_event ev, int eos)
{
    for (size_t i = 0; i < N_OF(legal); i++) {
        const struct row *r = &legal[i];
        if (r->from == from && r->ev == ev && (r->mode == BOTH || (r->mode == EOS) == (eos != 0)))
            return r;
    }
    return NULL;
}

/* Every pair, both modes: the table's answer, and what clw_job_step does to a job. */
static void test_every_pair(void **state)
{
    (void)state;
    size_t allowed = 0;
    for (int eos = 0; eos <= 1; eos++)
        for (int s = 0; s < JOB_STATES; s++)
            for (int e = 0; e < JEV_EVENTS; e++) {
                const struct row *want = expected((enum job_state)s, (enum job_event)e, eos);
                enum job_state to = JOB_STATES;
                enum job_action act = JOB_ACTIONS;
                int rc = clw_job_transition((enum job_state)s, (enum job_event)e, eos, &to, &act);
                struct job job;
                memset(&job, 0, sizeof(job));
                job.state = (enum job_state)s;
                enum job_action stepped = JOB_ACTIONS;
                int step = clw_job_step(&job, (enum job_event)e, eos, &stepped);
                const char *name = clw_job_state_name((enum job_state)s);
                const char *evn = clw_job_event_name((enum job_event)e);
                if (want == NULL) {
                    if (rc != -1 || step != -1)
                        fail_msg("%s + %s (%s): allowed, want refused", name, evn,
                                 eos ? "exactly-once" : "at-least-once");
                    if (job.state != (enum job_state)s)
                        fail_msg("%s + %s: a refused event changed the state", name, evn);
                    continue;
                }
                allowed++;
                if (rc != 0 || to != want->to || act != want->act)
                    fail_msg("%s + %s (%s): %s/%s, want %s/%s", name, evn,
                             eos ? "exactly-once" : "at-least-once",
                             rc ? "refused" : clw_job_state_name(to), clw_job_action_name(act),
                             clw_job_state_name(want->to), clw_job_action_name(want->act));
                if (step != 0 || job.state != want->to || stepped != want->act)
                    fail_msg("%s + %s: clw_job_step did not apply the table", name, evn);
            }
    /* Every row of the table was reached: BOTH rows count once per mode. */
    size_t rows = 0;
    for (size_t i = 0; i < N_OF(legal); i++)
        rows += legal[i].mode == BOTH ? 2 : 1;
    assert_int_equal(allowed, rows);
}

/* A request's life, at least once and exactly once, by the table alone. */
static void test_lives(void **state)
{
    (void)state;
    static const enum job_event alo[] = {JEV_VALID,    JEV_UNGATED,    JEV_PLACED,   JEV_DECIDED,
                                         JEV_PRODUCED, JEV_UNPRODUCED, JEV_PRODUCED, JEV_DELIVERED};
    static const enum job_event eos[] = {JEV_VALID,    JEV_UNGATED,   JEV_PLACED,    JEV_DECIDED,
                                         JEV_RELEASED, JEV_PRODUCED,  JEV_DELIVERED, JEV_ABORTED,
                                         JEV_PRODUCED, JEV_DELIVERED, JEV_COMMITTED};
    struct job job;
    enum job_action act;
    memset(&job, 0, sizeof(job));
    for (size_t i = 0; i < N_OF(alo); i++)
        assert_int_equal(clw_job_step(&job, alo[i], 0, &act), 0);
    assert_int_equal(job.state, JOB_DONE);
    assert_int_equal(act, JACT_FINISH);
    memset(&job, 0, sizeof(job));
    for (size_t i = 0; i < N_OF(eos); i++)
        assert_int_equal(clw_job_step(&job, eos[i], 1, &act), 0);
    assert_int_equal(job.state, JOB_DONE);
    /* An invalid request is decided at once. */
    memset(&job, 0, sizeof(job));
    assert_int_equal(clw_job_step(&job, JEV_DECIDED, 0, &act), 0);
    assert_int_equal(job.state, JOB_FINAL);
    assert_int_equal(act, JACT_PUBLISH);
}

static void test_names(void **state)
{
    (void)state;
    for (int s = 0; s < JOB_STATES; s++)
        assert_string_not_equal(clw_job_state_name((enum job_state)s), "?");
    for (int e = 0; e < JEV_EVENTS; e++)
        assert_string_not_equal(clw_job_event_name((enum job_event)e), "?");
    for (int a = 0; a < JOB_ACTIONS; a++)
        assert_string_not_equal(clw_job_action_name((enum job_action)a), "?");
    assert_string_equal(clw_job_state_name(JOB_STATES), "?");
    assert_string_equal(clw_job_event_name(JEV_EVENTS), "?");
}

/* ---- the event queue ---------------------------------------------------------------------------
 */

static void test_queue_order(void **state)
{
    (void)state;
    struct job_queue q = {0};
    struct job a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    clw_job_post(&q, &a, JEV_VALID);
    clw_job_post(&q, &b, JEV_DECIDED);
    clw_job_post(&q, &a, JEV_UNGATED);
    assert_int_equal(q.jobs, 2);
    struct job *job;
    enum job_event ev;
    /* Jobs in the order of their first event; each job's events in order. */
    assert_int_equal(clw_job_next_event(&q, &job, &ev), 1);
    assert_ptr_equal(job, &a);
    assert_int_equal(ev, JEV_VALID);
    assert_int_equal(clw_job_next_event(&q, &job, &ev), 1);
    assert_ptr_equal(job, &a);
    assert_int_equal(ev, JEV_UNGATED);
    /* An event posted while draining (by an action) comes after what was queued. */
    clw_job_post(&q, &a, JEV_PLACED);
    assert_int_equal(clw_job_next_event(&q, &job, &ev), 1);
    assert_ptr_equal(job, &b);
    assert_int_equal(clw_job_next_event(&q, &job, &ev), 1);
    assert_ptr_equal(job, &a);
    assert_int_equal(ev, JEV_PLACED);
    assert_int_equal(clw_job_next_event(&q, &job, &ev), 0);
    assert_int_equal(q.jobs, 0);
    assert_null(q.head);
    assert_null(q.tail);
}

static void test_queue_forget(void **state)
{
    (void)state;
    struct job_queue q = {0};
    struct job a, b, c;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&c, 0, sizeof(c));
    clw_job_post(&q, &a, JEV_VALID);
    clw_job_post(&q, &b, JEV_VALID);
    clw_job_post(&q, &c, JEV_VALID);
    clw_job_forget_events(&q, &c); /* the tail */
    clw_job_forget_events(&q, &a); /* the head */
    clw_job_forget_events(&q, &a); /* twice is fine */
    assert_int_equal(q.jobs, 1);
    struct job *job;
    enum job_event ev;
    assert_int_equal(clw_job_next_event(&q, &job, &ev), 1);
    assert_ptr_equal(job, &b);
    assert_int_equal(clw_job_next_event(&q, &job, &ev), 0);
    /* A forgotten job can be posted again. */
    clw_job_post(&q, &c, JEV_DECIDED);
    assert_int_equal(clw_job_next_event(&q, &job, &ev), 1);
    assert_ptr_equal(job, &c);
    assert_int_equal(ev, JEV_DECIDED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_pair),   cmocka_unit_test(test_lives),
        cmocka_unit_test(test_names),        cmocka_unit_test(test_queue_order),
        cmocka_unit_test(test_queue_forget),
    };
    return cmocka_run_group_tests_name("worker_job", tests, NULL, NULL);
}
