/* The job record, its state machine as one table, and the queue of job events. The table is the
 * only place that says what may follow what and which stage acts next; clw_job_step is the only
 * state setter, and only the flow (worker_flow.c) calls it. */
#include "worker_job.h"

#include <stdio.h>
#include <stdlib.h>

#include "clw/alloc.h"
#include "clw/clock.h"

enum mode { ANY = 0, AT_LEAST_ONCE, EXACTLY_ONCE };

struct transition {
    enum job_state from;
    enum job_event ev;
    enum mode mode;
    enum job_state to;
    enum job_action act;
};

/* clang-format off */
static const struct transition transitions[] = {
    /* from            event           mode           to               action */
    {JOB_TAKEN,      JEV_VALID,      ANY,           JOB_GATED,       JACT_GATE},
    {JOB_TAKEN,      JEV_DECIDED,    AT_LEAST_ONCE, JOB_FINAL,       JACT_PUBLISH},  /* invalid */
    {JOB_TAKEN,      JEV_DECIDED,    EXACTLY_ONCE,  JOB_ORDERED,     JACT_HOLD},     /* invalid */
    {JOB_GATED,      JEV_UNGATED,    ANY,           JOB_READY,       JACT_POOL},
    {JOB_READY,      JEV_PLACED,     ANY,           JOB_IN_CALL,     JACT_NONE},
    {JOB_IN_CALL,    JEV_DECIDED,    AT_LEAST_ONCE, JOB_FINAL,       JACT_PUBLISH},
    {JOB_IN_CALL,    JEV_DECIDED,    EXACTLY_ONCE,  JOB_ORDERED,     JACT_HOLD},
    {JOB_ORDERED,    JEV_RELEASED,   EXACTLY_ONCE,  JOB_FINAL,       JACT_PUBLISH},
    {JOB_FINAL,      JEV_PRODUCED,   ANY,           JOB_PUBLISHING,  JACT_NONE},
    {JOB_FINAL,      JEV_UNPRODUCED, ANY,           JOB_REPUBLISH,   JACT_NONE},
    {JOB_REPUBLISH,  JEV_PRODUCED,   ANY,           JOB_PUBLISHING,  JACT_NONE},
    {JOB_REPUBLISH,  JEV_UNPRODUCED, ANY,           JOB_REPUBLISH,   JACT_NONE},
    {JOB_PUBLISHING, JEV_UNPRODUCED, ANY,           JOB_REPUBLISH,   JACT_NONE},
    {JOB_PUBLISHING, JEV_DELIVERED,  AT_LEAST_ONCE, JOB_DONE,        JACT_FINISH},
    {JOB_PUBLISHING, JEV_DELIVERED,  EXACTLY_ONCE,  JOB_IN_TXN,      JACT_TXN},
    {JOB_IN_TXN,     JEV_COMMITTED,  EXACTLY_ONCE,  JOB_DONE,        JACT_FINISH},
    {JOB_IN_TXN,     JEV_ABORTED,    EXACTLY_ONCE,  JOB_REPUBLISH,   JACT_REPUBLISH},
};
/* clang-format on */

static const char *const state_names[JOB_STATES] = {
    "taken",   "gated",      "ready",     "in_call", "final",
    "ordered", "publishing", "republish", "in_txn",  "done",
};

static const char *const event_names[JEV_EVENTS] = {
    "valid",      "ungated",  "placed",    "decided",   "produced",
    "unproduced", "released", "delivered", "committed", "aborted",
};

static const char *const action_names[JOB_ACTIONS] = {
    "none", "gate", "pool", "publish", "hold", "txn", "finish", "republish",
};

const char *clw_job_state_name(enum job_state s)
{
    return s < JOB_STATES ? state_names[s] : "?";
}

const char *clw_job_event_name(enum job_event ev)
{
    return ev < JEV_EVENTS ? event_names[ev] : "?";
}

const char *clw_job_action_name(enum job_action act)
{
    return act < JOB_ACTIONS ? action_names[act] : "?";
}

int clw_job_transition(enum job_state from, enum job_event ev, int eos, enum job_state *to,
                       enum job_action *act)
{
    enum mode mode = eos ? EXACTLY_ONCE : AT_LEAST_ONCE;
    for (size_t i = 0; i < sizeof(transitions) / sizeof(transitions[0]); i++) {
        const struct transition *t = &transitions[i];
        if (t->from != from || t->ev != ev || (t->mode != ANY && t->mode != mode))
            continue;
        *to = t->to;
        *act = t->act;
        return 0;
    }
    return -1;
}

int clw_job_step(struct job *job, enum job_event ev, int eos, enum job_action *act)
{
    enum job_state to;
    if (clw_job_transition(job->state, ev, eos, &to, act) != 0)
        return -1;
    job->state = to;
    return 0;
}

/* ---- events ---------------------------------------------------------------------------------- */

void clw_job_post(struct job_queue *q, struct job *job, enum job_event ev)
{
    if (job->n_ev >= JOB_MAX_EVENTS) {
        /* A stage posting without end: a bug, never input. */
        CLW_ERROR("internal: more than %d events pending for one request", JOB_MAX_EVENTS);
        abort();
    }
    job->ev[job->n_ev++] = (unsigned char)ev;
    if (job->queued)
        return;
    job->queued = 1;
    job->ev_next = NULL;
    if (q->tail != NULL)
        q->tail->ev_next = job;
    else
        q->head = job;
    q->tail = job;
    q->jobs++;
}

static void unqueue_head(struct job_queue *q)
{
    struct job *job = q->head;
    q->head = job->ev_next;
    if (q->head == NULL)
        q->tail = NULL;
    job->ev_next = NULL;
    job->queued = 0;
    q->jobs--;
}

int clw_job_next_event(struct job_queue *q, struct job **jobp, enum job_event *ev)
{
    while (q->head != NULL) {
        struct job *job = q->head;
        if (job->n_ev == 0) {
            unqueue_head(q);
            continue;
        }
        *jobp = job;
        *ev = (enum job_event)job->ev[0];
        for (unsigned i = 1; i < job->n_ev; i++)
            job->ev[i - 1] = job->ev[i];
        job->n_ev--;
        if (job->n_ev == 0)
            unqueue_head(q); /* the action may free it: off the queue first */
        return 1;
    }
    return 0;
}

void clw_job_forget_events(struct job_queue *q, struct job *job)
{
    job->n_ev = 0;
    if (!job->queued)
        return;
    struct job *prev = NULL;
    for (struct job *j = q->head; j != NULL; prev = j, j = j->ev_next) {
        if (j != job)
            continue;
        if (prev != NULL)
            prev->ev_next = job->ev_next;
        else
            q->head = job->ev_next;
        if (q->tail == job)
            q->tail = prev;
        job->ev_next = NULL;
        job->queued = 0;
        q->jobs--;
        return;
    }
}

/* ---- the record ------------------------------------------------------------------------------ */

struct job *clw_job_new(void)
{
    return clw_calloc(1, sizeof(struct job));
}

void clw_job_decide(struct job_queue *q, struct job *job, int succeeded, const char *error_class)
{
    job->succeeded = succeeded;
    job->error_class = error_class;
    job->completed_ms = clw_clock_wall_ms();
    clw_job_post(q, job, JEV_DECIDED);
}

int clw_job_started(const struct job *job)
{
    return job->att.attempts > 0 || job->state >= JOB_FINAL;
}

void clw_job_log_ctx(const struct job *job, struct clw_log_ctx *ctx)
{
    ctx->request_id = job->rec.req.request_id;
    ctx->topic = job->rec.topic;
    ctx->partition = job->part.linked ? job->rec.partition : -1;
    ctx->offset = job->rec.offset;
    ctx->trace_id = job->rec.trace_id[0] ? job->rec.trace_id : NULL;
}

void clw_shared_answer_put(struct shared_answer *sa)
{
    if (sa != NULL && --sa->refs == 0) {
        clw_answer_free(&sa->a);
        free(sa);
    }
}

static void free_headers(struct clw_kafka_header *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)h[i].name);
        free((void *)h[i].value);
    }
    free(h);
}

void clw_job_free(struct job *job)
{
    struct job_record *r = &job->rec;
    clw_request_free(&r->req);
    free(r->group);
    free(r->key);
    free_headers(r->hdrs, r->n_hdrs);
    free_headers(r->raw_hdrs, r->n_raw_hdrs);
    free(r->raw_value);
    clw_shared_answer_put(job->verdict.last);
    free(job->verdict.found);
    free(job->pub.out);
    free(job);
}
