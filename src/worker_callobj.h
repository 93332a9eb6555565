/* The call: one API call's group of members across its attempts, splits and follow-ups. Its core
 * (members, kind, state, wire parameters, what the attempt in flight carried) is written only by
 * worker_callobj.c; the slices below it by the file their comment names. */
#ifndef CLW_WORKER_CALLOBJ_H
#define CLW_WORKER_CALLOBJ_H

#include <stddef.h>
#include <stdint.h>

#include "clw/api.h"
#include "clw/dlist.h"
#include "clw/timers.h"
#include "worker_job.h"

enum call_kind {
    CALL_ACTION = 0, /* AttachClassicLinkVpc / DetachClassicLinkVpc for every member */
    CALL_LINKS,      /* list the VPC's links: reconcile every member */
    CALL_TASK,       /* read the members' shared task */
};

enum call_state {
    CALL_QUEUED = 0, /* waits for an in-flight slot and a rate-limit token */
    CALL_RUNNING,    /* an attempt is in flight */
    CALL_BACKOFF,    /* waits for its retry time */
    CALL_HELD,       /* parked by a worker fault */
    CALL_DECIDING,   /* answered; in no list while its verdict is worked out */
    CALL_WAITING,    /* in no list: waits for the lone call confirming its error */
};

/* After a reconciliation, what happens to the members. */
enum call_resume {
    RESUME_FAIL = 0, /* those whose state holds succeed, the rest fail with pending_error (a
                        lone "already" answer, or an ambiguous group out of retries) */
    RESUME_NAMED,    /* a shared "already" answer (call->cause) naming members: the named ones
                        get their lone outcome (reconciled, or failed with it); other members
                        whose state holds succeed where their lone call would also have heard
                        "already" (end_named in worker_verdict.c); the rest are sent again */
};

/* Where the call waits (written by worker_sched.c). */
struct call_wait {
    struct clw_dlink link;  /* the queued or held list, or the timer-less retry list */
    struct clw_timer timer; /* CALL_BACKOFF */
    int fresh;              /* formed from the pool, every answer so far a throttling one: the
                             * API did nothing, so ready requests of its key may join it */
    struct call *confirms;  /* set on a lone call confirming a shared error: the waiting call */
    struct call *waits_for; /* set on the waiting call: the lone call */
    /* Gate tickets of members that left while an attempt was in flight: their instances stay
     * gated until it has ended. */
    struct clw_gate_ticket **held_tickets;
    size_t n_held_tickets;
};

/* Its attempts (written by worker_call.c). */
struct call_attempt {
    int64_t started_mono; /* the attempt in flight */
    int probe;            /* this attempt probes a worker fault or an open circuit */
    unsigned creds_gen;   /* the credentials the attempt in flight was signed with */
};

/* Its lineage and follow-ups (written by worker_verdict.c). */
struct call_plan {
    int ambiguous;             /* an attempt may have taken effect without an answer saying so */
    int resign_streak;         /* consecutive 4200/4500 answers to fresh signatures */
    unsigned strikes;          /* splits that peeled off named members in this lineage */
    size_t lineage;            /* members of the call the first such split began with */
    enum call_resume resume;   /* CALL_LINKS */
    const char *pending_error; /* CALL_LINKS */
    long links_offset;
    int links_failures;
    long long task_id; /* CALL_TASK */
    int task_polls;
    int64_t task_begun;
    int64_t task_deadline;
};

/* Owned by the scheduler from creation until it has no members left. */
struct call {
    enum call_kind kind;
    enum call_state state;
    struct job **members;
    size_t n_members;
    size_t cap;
    size_t n_instances;
    int attempts; /* attempts since the call last changed its make-up or kind (the backoff) */
    /* what every member shares (owned copies): the wire parameters */
    enum clw_action action;
    char *region;
    char *vpc_id;
    /* What the attempt in flight carried (a verdict is read against it): copies of every
     * instance id sent, in member order, and the number of members. */
    char *sent_buf;
    const char **sent_ids;
    size_t n_sent_ids;
    size_t n_sent_members;
    /* The answer that led to a reconciliation or a confirmation (referenced). */
    struct shared_answer *cause;
    struct call_wait wait;
    struct call_attempt att;
    struct call_plan plan;
};

/* A call for the request of first (kind ACTION), or NULL when out of memory. */
struct call *clw_callobj_new(const struct job *first);
/* A call with like's kind and wire parameters and no members, or NULL. */
struct call *clw_callobj_like(const struct call *like);
/* Frees the call (it must be in no list and carry no member). */
void clw_callobj_free(struct call *call);

/* Room for n members. Returns 0, -1 when out of memory. */
int clw_callobj_reserve(struct call *call, size_t n);
/* Adds job (room reserved) as the call's last member. */
void clw_callobj_add(struct call *call, struct job *job);
/* Takes job out of its call (the last member takes its place). */
void clw_callobj_remove(struct job *job);
/* Moves the members order[k..n) of call into a new call (its kind and wire parameters copied);
 * call keeps order[0..k). Returns the new call, NULL when out of memory (call is unchanged). */
struct call *clw_callobj_split(struct call *call, const size_t *order, size_t k);

void clw_callobj_set_state(struct call *call, enum call_state state);
/* A new kind (a follow-up of the same members); its attempts count from 0. */
void clw_callobj_set_kind(struct call *call, enum call_kind kind);
/* One more attempt started. */
void clw_callobj_attempted(struct call *call);
/* The call's make-up changed (a split): its attempts count from 0. */
void clw_callobj_restart(struct call *call);
/* References sa (NULL drops the cause). */
void clw_callobj_set_cause(struct call *call, struct shared_answer *sa);

/* Copies what the attempt about to start carries (every member's instance ids). Returns 0, -1
 * when out of memory. */
int clw_callobj_snapshot(struct call *call);

/* The call's wire operation. */
enum clw_api_op clw_callobj_op(const struct call *call);

#endif
