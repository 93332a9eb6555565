/* The job: one consumed request, from intake until its outcome is acknowledged. One record with a
 * slice per stage, each slice written only by the file its comment names; the job's state
 * machine as one table (state x event -> state + action); the queue of job events the flow
 * drains. Stages never move a job between states: they post an event, and the flow applies the
 * table at a safe time (between loop phases), then runs the action it names. */
#ifndef CLW_WORKER_JOB_H
#define CLW_WORKER_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "clw/answer.h"
#include "clw/dlist.h"
#include "clw/kafka.h"
#include "clw/log.h"
#include "clw/request.h"
#include "clw/timers.h"

struct call;
struct pool_group;
struct clw_gate_ticket;

/* States of a job. */
enum job_state {
    JOB_TAKEN = 0,  /* consumed, being decoded */
    JOB_GATED,      /* valid; waits for an earlier request on one of its instances */
    JOB_READY,      /* holds its instances; waits in the scheduler's pool for a call */
    JOB_IN_CALL,    /* a member of a call (queued, running, backing off, held or waiting) */
    JOB_FINAL,      /* its outcome is decided; being handed to publishing */
    JOB_ORDERED,    /* exactly-once: decided, waits for every earlier offset of its partition
                       to be decided and for the end of a transaction commit or abort under way */
    JOB_PUBLISHING, /* outcome (and dead letter) produced, waiting for delivery reports */
    JOB_REPUBLISH,  /* a record must be produced again (timer armed) */
    JOB_IN_TXN,     /* exactly-once: delivered in the open transaction, not yet committed */
    JOB_DONE,       /* acknowledged (exactly-once: committed): freed by its action */
    JOB_STATES
};

/* What a stage says about a job. */
enum job_event {
    JEV_VALID = 0,  /* decoded, valid: enters the scheduler's gate (intake) */
    JEV_UNGATED,    /* holds every instance it names: joins the pool (scheduler) */
    JEV_PLACED,     /* taken into a call (scheduler) */
    JEV_DECIDED,    /* its outcome is final (verdict, or intake for an invalid request) */
    JEV_PRODUCED,   /* every record it still had to produce is queued (publish) */
    JEV_UNPRODUCED, /* a record could not be queued or was not acknowledged (publish) */
    JEV_RELEASED,   /* exactly-once: every earlier offset of its partition is final (txn) */
    JEV_DELIVERED,  /* every record it produced was acknowledged (publish) */
    JEV_COMMITTED,  /* exactly-once: its transaction committed (txn) */
    JEV_ABORTED,    /* exactly-once: its transaction aborted (txn) */
    JEV_EVENTS
};

/* What the flow does after a transition (worker_flow.c runs it). */
enum job_action {
    JACT_NONE = 0,
    JACT_GATE,      /* enter the per-instance gate */
    JACT_POOL,      /* join the pool of ready requests */
    JACT_PUBLISH,   /* decided (at least once) or released (exactly once): leave the call and
                       the gate if still there, then produce the outcome */
    JACT_HOLD,      /* exactly-once, decided: leave the call and the gate, wait for the
                       earlier offsets of the partition */
    JACT_TXN,       /* exactly-once, delivered: join the open transaction */
    JACT_FINISH,    /* done: count it, mark its offset done, free it */
    JACT_REPUBLISH, /* exactly-once, its transaction aborted: produce it again */
    JOB_ACTIONS
};

/* The records a final job publishes; each is acknowledged separately. */
enum pub_record { REC_OUTCOME = 1, REC_DEAD_LETTER = 2 };

/* Opaque of one produced record: which job, which record. */
struct delivery {
    struct job *job;
    enum pub_record rec;
};

/* An Attach/Detach answer, shared by the members of the call it answered (reference counted):
 * the outcome reports the last one a request got. */
struct shared_answer {
    unsigned refs;
    size_t members; /* requests the attempt carried: the outcome's "coalesced" */
    struct clw_answer a;
};

/* Drops one reference (NULL is fine). */
void clw_shared_answer_put(struct shared_answer *sa);

/* What the record said (written by worker_intake.c). */
struct job_record {
    const char *topic; /* borrowed: the requests topic */
    int32_t partition;
    int64_t offset;
    char *key; /* NULL when none */
    size_t key_len;
    struct clw_kafka_header *hdrs; /* carried request headers (owned copies) */
    size_t n_hdrs;
    char trace_id[33];
    int64_t enqueued_ms; /* record timestamp, -1 unknown */
    int64_t received_ms;
    int64_t received_mono;
    struct clw_request req;
    char *group; /* coalescing key (valid requests) */
    /* An invalid request with topic.dlq set: the original record for the dead letter. */
    int dead_letter;
    char *raw_value;
    size_t raw_len;
    int raw_null; /* a tombstone */
    struct clw_kafka_header *raw_hdrs;
    size_t n_raw_hdrs;
};

/* Its place in its partition's list (written by worker_part.c). */
struct job_part_link {
    int linked; /* 0: an orphan, its partition is gone */
    struct clw_dlink link;
};

/* Its place in the scheduler (written by worker_sched.c). */
struct job_sched {
    struct clw_gate_ticket *ticket;
    struct pool_group *pool; /* JOB_READY: its group in the pool */
    struct clw_dlink link;   /* the group's list */
};

/* The call carrying it (written by worker_callobj.c). */
struct job_member {
    struct call *call;
    size_t idx; /* its place in call->members */
};

/* Its attempts and the start of its retry budget (written by worker_call.c). */
struct job_attempts {
    int attempts;        /* signed Attach/Detach calls that carried it */
    int started;         /* 1 after its first Attach/Detach attempt */
    int64_t first_mono;  /* that attempt: retry.max_elapsed_ms counts from it */
    int64_t paused_base; /* the worker's paused time then */
};

/* What the answers meant for it (written by worker_verdict.c). */
struct job_verdict {
    struct shared_answer *last; /* the last Attach/Detach answer it got, NULL before one */
    unsigned char *found;       /* reconciliation: per instance, seen linked to its VPC */
    int reconciled;
    const char *task_status;
    int64_t exempt_ms; /* time in calls that ended in a split or a re-run: not spent */
};

/* Its records on their way to Kafka (written by worker_publish.c). */
struct job_publish {
    int started; /* its records were produced at least once */
    char *out;   /* encoded outcome, kept until acknowledged */
    size_t out_len;
    unsigned to_send; /* pub_record bits still to produce */
    unsigned unacked; /* pub_record bits produced and not yet acknowledged */
    struct delivery deliveries[2];
    struct clw_timer timer; /* JOB_REPUBLISH */
    int untimed;            /* on the untimed list: its timer could not be armed */
    struct clw_dlink link;  /* the untimed list */
};

/* Exactly-once: its place in the transaction's list (written by worker_txn.c). */
struct job_txn {
    int listed;
    struct clw_dlink link;
};

#define JOB_MAX_EVENTS 4

/* Owned by its partition's list; an orphan is owned by its pending deliveries. The first
 * fields are written by worker_job.c only. */
struct job {
    enum job_state state;
    int succeeded;           /* the outcome (clw_job_decide) */
    const char *error_class; /* NULL on success */
    int64_t completed_ms;    /* when the outcome became final */
    /* pending events, drained by the flow in order */
    struct job *ev_next;
    unsigned char ev[JOB_MAX_EVENTS];
    unsigned char n_ev;
    unsigned char queued;
    struct job_record rec;
    struct job_part_link part;
    struct job_sched sched;
    struct job_member member;
    struct job_attempts att;
    struct job_verdict verdict;
    struct job_publish pub;
    struct job_txn txn;
};

/* Jobs with pending events, in the order of their first (an intrusive list: posting never
 * allocates). */
struct job_queue {
    struct job *head, *tail;
    size_t jobs;
};

/* A zeroed job (the stages fill their slices), or NULL when out of memory. */
struct job *clw_job_new(void);
/* Frees the job and everything its slices own. It must be in no list and no call. */
void clw_job_free(struct job *job);

/* Posts ev for job (a job has at most JOB_MAX_EVENTS pending: more is a bug, and aborts). */
void clw_job_post(struct job_queue *q, struct job *job, enum job_event ev);
/* Takes the next pending event: 1 with *job and *ev, 0 when none. */
int clw_job_next_event(struct job_queue *q, struct job **job, enum job_event *ev);
/* Drops the job's pending events (it is abandoned). */
void clw_job_forget_events(struct job_queue *q, struct job *job);

/* Decides the job's outcome (succeeded, or failed with error_class) and posts JEV_DECIDED. The
 * caller has taken it out of its call. */
void clw_job_decide(struct job_queue *q, struct job *job, int succeeded, const char *error_class);

/* The table: where (from, ev) goes in the given mode (eos: delivery.mode = exactly_once), and
 * the action to run. Returns 0, or -1 when the table does not allow the event. Pure. */
int clw_job_transition(enum job_state from, enum job_event ev, int eos, enum job_state *to,
                       enum job_action *act);
/* Applies the table to the job (its state changes) and returns the action, or -1 when the event
 * is not allowed (the job is unchanged). The one state setter; the flow is its only caller. */
int clw_job_step(struct job *job, enum job_event ev, int eos, enum job_action *act);

const char *clw_job_state_name(enum job_state s);
const char *clw_job_event_name(enum job_event ev);
const char *clw_job_action_name(enum job_action act);

/* 1 once the job was sent to the API or has its outcome: a drain must finish it. */
int clw_job_started(const struct job *job);
void clw_job_log_ctx(const struct job *job, struct clw_log_ctx *ctx);

#endif
