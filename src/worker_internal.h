/* Worker internals shared by the worker_*.c files: the request (job), the API call that serves
 * 1..k of them, the partition and the worker. How they flow, one way:
 *
 *   intake ─► job life cycle (worker_lifecycle.c) ─► scheduler (worker_sched.c) ─► call
 *   (worker_call.c: sign through the API client, send, classify) ─► verdict (worker_verdict.c:
 *   what the answer means for each member; splits, follow-ups, retries are new or requeued
 *   calls) ─► job life cycle ─► publish (worker_publish.c / worker_txn.c) ─► offsets.
 *
 * Stages report to the life cycle with clw_job_fire(); it alone moves a job between states
 * and calls the next stage. A call never publishes, and a job never reaches into a call. */
#ifndef CLW_WORKER_INTERNAL_H
#define CLW_WORKER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "clw/answer.h"
#include "clw/api.h"
#include "clw/classify.h"
#include "clw/config.h"
#include "clw/creds.h"
#include "clw/gate.h"
#include "clw/http.h"
#include "clw/httpd.h"
#include "clw/kafka.h"
#include "clw/log.h"
#include "clw/metrics.h"
#include "clw/offsets.h"
#include "clw/ratelimit.h"
#include "clw/request.h"
#include "clw/strtab.h"
#include "clw/timers.h"
#include "clw/worker.h"

struct part;
struct job;
struct call;
struct pool_group;
struct worker;

/* ---- the job: one consumed record, from intake until its outcome is acknowledged ---------- */

/* States of a job; the transitions are listed in worker_lifecycle.c. */
enum job_state {
    JOB_TAKEN = 0,  /* consumed, being decoded */
    JOB_GATED,      /* valid; waits for an earlier request on one of its instances */
    JOB_READY,      /* holds its instances; waits in the scheduler's pool for a call */
    JOB_IN_CALL,    /* a member of a call (queued, running, backing off or held) */
    JOB_FINAL,      /* its outcome is decided; being handed to publishing */
    JOB_ORDERED,    /* exactly-once: final, waits for every earlier offset to be final and for
                       the end of a transaction commit or abort under way */
    JOB_PUBLISHING, /* outcome (and dead letter) produced, waiting for delivery reports */
    JOB_REPUBLISH,  /* a record must be produced again (timer armed) */
    JOB_IN_TXN,     /* exactly-once: delivered in the open transaction, not yet committed */
    JOB_DONE,       /* acknowledged (exactly-once: committed): freed on entry */
    JOB_STATES
};

/* What a stage tells the life cycle about a job. */
enum job_event {
    JEV_VALID = 0,  /* decoded, valid: enters the scheduler's gate */
    JEV_UNGATED,    /* holds every instance it names: joins the pool */
    JEV_PLACED,     /* taken into a call */
    JEV_DECIDED,    /* its outcome is final (job->succeeded, job->error_class) */
    JEV_HELD,       /* exactly-once: final, waits for the earlier offsets of its partition */
    JEV_PRODUCED,   /* every record it still had to produce is queued */
    JEV_UNPRODUCED, /* a record could not be queued or was not acknowledged: again later */
    JEV_RELEASED,   /* exactly-once: every earlier offset of its partition is final */
    JEV_DELIVERED,  /* every record it produced was acknowledged */
    JEV_COMMITTED,  /* exactly-once: its transaction committed */
    JEV_ABORTED,    /* exactly-once: its transaction aborted */
    JEV_EVENTS
};

/* The records a final job publishes; each is acknowledged separately. */
enum job_record { REC_OUTCOME = 1, REC_DEAD_LETTER = 2 };

/* Opaque of one produced record: which job, which record. */
struct delivery {
    struct job *job;
    enum job_record rec;
};

/* An Attach/Detach answer, shared by the members of the call it answered (reference counted):
 * the outcome reports the last one a request got. */
struct shared_answer {
    unsigned refs;
    size_t members; /* requests the call carried: the outcome's "coalesced" */
    struct clw_answer a;
};

/* Owned by its partition's job list; an orphan (part == NULL) is owned by its pending
 * deliveries. */
struct job {
    struct worker *w;
    struct part *part;
    int64_t offset;
    enum job_state state;
    struct job *prev, *next;   /* pool group, transaction list or timer-less republish list */
    struct job *pprev, *pnext; /* partition's job list */
    struct clw_timer timer;    /* JOB_REPUBLISH */
    int untimed;               /* on w->untimed: its timer could not be armed */
    struct clw_gate_ticket *ticket;
    struct clw_request req;
    char *group;             /* coalescing key (valid requests) */
    struct pool_group *pool; /* JOB_READY: its group in the pool */
    struct call *call;       /* JOB_IN_CALL: the call carrying it */
    size_t call_idx;         /* its place in call->members */
    char *key;               /* record key, NULL when none */
    size_t key_len;
    struct clw_kafka_header *hdrs; /* carried request headers (owned copies) */
    size_t n_hdrs;
    char trace_id[33];
    int64_t enqueued_ms; /* record timestamp, -1 unknown */
    int64_t received_ms;
    int64_t received_mono;
    int64_t completed_ms;       /* when the outcome became final */
    int attempts;               /* signed Attach/Detach calls that carried it */
    struct shared_answer *last; /* the last Attach/Detach answer it got, NULL before one */
    /* reconciliation and task follow-up */
    unsigned char *found; /* per instance: seen linked to the requested VPC */
    int reconciled;
    const char *task_status;
    /* the outcome */
    int succeeded;
    const char *error_class;
    char *out; /* encoded outcome, kept until acknowledged */
    size_t out_len;
    unsigned to_send; /* job_record bits still to produce */
    unsigned unacked; /* job_record bits produced and not yet acknowledged */
    struct delivery deliveries[2];
    /* The original record for the dead-letter topic (invalid requests with topic.dlq set). */
    char *raw_value;
    size_t raw_len;
    int raw_null; /* a tombstone */
    struct clw_kafka_header *raw_hdrs;
    size_t n_raw_hdrs;
};

/* ---- the call: one API call's group of members, across its attempts ---------------------- */

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
};

/* After a reconciliation, what happens to members whose requested state does not hold. */
enum call_resume {
    RESUME_FAIL = 0, /* their outcome is pending_error */
    RESUME_ACTION,   /* the group's action is sent again (marked reconciled: it then splits) */
};

/* Owned by the scheduler from creation until it has no members left. */
struct call {
    struct worker *w;
    enum call_kind kind;
    enum call_state state;
    struct call *prev, *next; /* the queued or held list, or the timer-less retry list */
    struct clw_timer timer;   /* CALL_BACKOFF */
    struct job **members;
    size_t n_members;
    size_t cap;
    size_t n_instances;
    /* what every member shares (owned copies) */
    enum clw_action action;
    char *region;
    char *vpc_id;
    /* the group's attempts */
    int attempts;         /* attempts of this call, for the backoff */
    int resign_streak;    /* consecutive 4200/4500 answers to fresh signatures */
    int64_t first_mono;   /* the group's first Attach/Detach attempt, -1 before it */
    int64_t paused_base;  /* worker paused time at the first attempt */
    int64_t exempt_ms;    /* time in calls that ended in a split: not spent from the budget */
    int64_t started_mono; /* the attempt in flight */
    int probe;            /* this attempt probes a worker fault or an open circuit */
    unsigned creds_gen;   /* the credentials the attempt in flight was signed with */
    int ambiguous;        /* an attempt may have taken effect without an answer saying so */
    int reconciled;       /* the group was reconciled after an "already" answer */
    int fresh;            /* formed from the pool, every answer so far a throttling one: the API
                           * did nothing, so ready requests of its key may join it */
    unsigned strikes;     /* splits that peeled off named members in this lineage of calls */
    size_t lineage;       /* members of the call the first such split began with */
    /* follow-ups */
    enum call_resume resume;   /* CALL_LINKS */
    const char *pending_error; /* CALL_LINKS with RESUME_FAIL */
    long links_offset;
    int links_failures;
    long long task_id; /* CALL_TASK */
    int task_polls;
    int64_t task_deadline;
};

/* Ready jobs with one coalescing key, oldest first. */
struct pool_group {
    struct clw_strtab_node node; /* first: a node is its group */
    struct job *head, *tail;
    size_t n_jobs;
    size_t n_instances;
    int64_t since;                  /* when its oldest job became ready (linger) */
    struct pool_group *prev, *next; /* the scheduler's order of groups */
    char key[];
};

struct jobq {
    struct job *head, *tail;
    size_t len;
};

/* Exactly-once: where the current transaction is (worker_txn.c). */
enum txn_phase {
    TXN_IDLE = 0,   /* none open: the next outcome begins one */
    TXN_OPEN,       /* outcomes are produced into it */
    TXN_FLUSHING,   /* its commit is due: waits until every record is acknowledged */
    TXN_COMMITTING, /* the transaction thread sends its offsets and commits it */
    TXN_ABORTING,   /* the transaction thread aborts it */
};

struct callq {
    struct call *head, *tail;
    size_t len;
};

/* The scheduler's state (worker_sched.c). */
struct sched {
    struct clw_gate *gate;
    struct clw_strtab groups;        /* key -> struct pool_group */
    struct pool_group *first, *last; /* groups with ready jobs, in order of their oldest */
    size_t ready;                    /* jobs in the pool */
    struct callq queued;             /* formed calls waiting for a slot (front first) */
    struct callq held;               /* calls parked by a worker fault */
    struct callq untimed;            /* calls whose backoff timer could not be armed */
    struct clw_timers timers;        /* calls in backoff */
    struct clw_ratelimit *rl;
    size_t running;          /* calls in flight */
    size_t calls;            /* live calls */
    int64_t rate_wait_until; /* nothing could start before this (rate limit), 0 none */
};

/* ---- partitions and the worker ------------------------------------------------------------ */

/* State of one assigned requests-topic partition. */
struct part {
    int32_t id;
    struct clw_offsets *offs;
    struct job *jobs; /* every live job of the partition */
    size_t n_jobs;
    int window_paused; /* too many records pending */
    int fetch_paused;  /* what the consumer was last told */
    int revoking;      /* being revoked: its pause state is left alone */
    int64_t stored;    /* last stored (or, exactly-once, committed) next-offset, -1 none */
    int64_t max_final; /* highest offset whose outcome became final, -1 none */
    int64_t released;  /* exactly-once: outcomes below this offset were released to publish;
                          the next transaction commits this offset */
};

struct worker {
    struct clw_config *cfg;
    const struct clw_worker_io *io;
    struct clw_api *api;
    struct clw_creds *creds;
    int creds_in_flight;      /* a refresh request is in flight (its address is its opaque) */
    int creds_forced;         /* the API refused the current temporary credentials: refresh now */
    int creds_refusals;       /* forced refreshes since an answer that accepted the credentials */
    int creds_failures;       /* refreshes failed in a row */
    int64_t creds_retry_mono; /* no refresh before this */
    int creds_fault;          /* temporary credentials expired (or never came): paused */
    char creds_why[256];      /* why the last refresh failed */
    struct clw_request_limits limits;
    struct clw_kafka *kafka;
    struct clw_http *http;
    struct clw_metrics *metrics;
    struct clw_httpd *httpd;
    struct sched sched;
    struct clw_timers timers; /* jobs waiting to publish again */
    struct jobq untimed;      /* jobs whose republish timer could not be armed */
    struct part **parts;      /* indexed by partition id */
    size_t n_parts;
    struct jobq txn; /* exactly-once: jobs delivered in the current transaction */
    int eos;         /* delivery.mode = exactly_once */
    enum txn_phase txn_phase;
    int64_t txn_started; /* TXN_OPEN since */
    int txn_failed;      /* a record of the current transaction was refused or not delivered */
    int32_t *txn_ids;    /* TXN_COMMITTING: the partitions whose offsets it commits */
    int64_t *txn_offs;   /* and those offsets (owned) */
    size_t txn_n;
    size_t taken;         /* records taken and not yet done, over every partition */
    size_t taken_cap;     /* no more records are taken beyond this (flow control) */
    int64_t last_consume; /* monotonic ms of the last consumer poll */
    int intake_more;      /* the last poll stopped at the intake limit: records may wait */
    size_t orphans;       /* jobs of forgotten partitions still waiting for a delivery report */
    uint64_t rng;
    int stopping;
    int64_t stop_since;    /* monotonic ms when the stop began (0: no stop drained) */
    int64_t stop_deadline; /* stop_since + worker.shutdown_timeout_ms */
    int exit_code;
    int joined;
    /* pauses */
    int fault_active;
    char fault_reason[256];
    int circuit_open;
    int publish_stuck;
    int commits_stalled; /* stored offsets are not reaching the group coordinator */
    int probe_in_flight;
    int64_t next_probe_mono;
    int transient_streak;
    char streak_key[64];
    int streak_distinct;
    int64_t paused_total; /* ms spent paused, ended pauses */
    int64_t paused_since; /* -1 when not paused */
    int64_t next_housekeeping;
};

/* worker_lifecycle.c: the job state machine */
void clw_job_fire(struct worker *w, struct job *job, enum job_event ev);
/* Decides the job's outcome: succeeded, or failed with error_class. */
void clw_job_decide(struct worker *w, struct job *job, int succeeded, const char *error_class);
/* Removes a job that will get no outcome from this worker (its partition is gone or the worker
 * stops): whoever consumes the partition next redoes it. */
void clw_job_abandon(struct worker *w, struct job *job);
void clw_job_free(struct job *job);
const char *clw_job_state_name(enum job_state s);
/* 1 once the job was sent to the API or has its outcome: a drain must finish it. */
int clw_job_started(const struct job *job);
void clw_job_log_ctx(const struct job *job, struct clw_log_ctx *ctx);

/* worker_intake.c */
void clw_worker_on_message(void *arg, const struct clw_kafka_msg *msg);
void clw_worker_on_assigned(void *arg, const int32_t *partitions, size_t n);
void clw_worker_on_revoked(void *arg, const int32_t *partitions, size_t n, int lost);
void clw_worker_sync_pause(struct worker *w, struct part *p);
void clw_worker_sync_all_pauses(struct worker *w);
void clw_worker_window_check(struct worker *w, struct part *p);
void clw_worker_forget_part(struct worker *w, struct part *p);
void clw_worker_drain_parts(struct worker *w, struct part **parts, size_t n, int64_t deadline);
/* Commits the partitions' stored offsets synchronously (revocation); a failure is counted. */
void clw_worker_commit_stored(struct worker *w, struct part **parts, size_t n);
void clw_part_unlink(struct job *job);

/* worker_handover.c: the hand-over policy */
/* Kafka handler: commits stalled (no new records are taken) or reach the coordinator again. */
void clw_worker_on_commits_stalled(void *arg, int stalled);
/* After the stop's drain: waits until every stored offset has reached the group coordinator
 * (after a pending rebalance, under the new generation) until stop_deadline, then leaves the
 * group; an offset still not committed then is logged as an error naming partitions and
 * offsets, counted, and makes the exit status CLW_EXIT_UNCOMMITTED. */
void clw_worker_leave_group(struct worker *w);

/* worker_sched.c: the gate, the pool, the call queues, the rate limiter, the in-flight cap */
int clw_sched_init(struct worker *w, char *err, size_t errlen);
void clw_sched_fini(struct worker *w);
/* Enters the gate; fires JEV_UNGATED at once or later. Returns 0, -1 when out of memory. */
int clw_sched_submit(struct worker *w, struct job *job);
void clw_sched_pool_add(struct worker *w, struct job *job);
/* The job's outcome is final: it leaves its call and the gate (later jobs may start). */
void clw_sched_release(struct worker *w, struct job *job);
/* The job leaves the scheduler altogether (abandoned). */
void clw_sched_drop(struct worker *w, struct job *job);
/* The next call to start now, marked running, or NULL. Under a worker fault or an open circuit
 * only a due probe comes out (call->probe set). */
struct call *clw_sched_next(struct worker *w, int64_t now);
/* A call's attempt could not start: it waits in front of the queue. */
void clw_sched_unstart(struct worker *w, struct call *call);
void clw_sched_queue(struct worker *w, struct call *call, int front);
void clw_sched_backoff(struct worker *w, struct call *call, int64_t due);
void clw_sched_hold(struct worker *w, struct call *call);
void clw_sched_unhold_all(struct worker *w);
/* The answer to a running call arrived. */
void clw_sched_answered(struct worker *w, struct call *call);
/* Splits the members order[k..n) off call into a new call (queued at the front, after call);
 * call keeps order[0..k). Returns the new call, NULL when out of memory (call is unchanged). */
struct call *clw_sched_split(struct worker *w, struct call *call, const size_t *order, size_t k);
/* Frees call if it has no members left and is not running (a call being decided must be
 * ended by its verdict this way). */
void clw_sched_end_if_empty(struct worker *w, struct call *call);
/* Serves due backoff timers. */
void clw_sched_tick(struct worker *w, int64_t now);
/* Milliseconds until the scheduler has something to do (0: now), at most max_ms. */
int64_t clw_sched_wait_ms(const struct worker *w, int64_t now, int64_t max_ms);
/* The rate limiter's key of a call, and the call's wire action. */
void clw_sched_rate_key(const struct worker *w, const struct call *call, char *key, size_t len);
enum clw_api_op clw_call_op(const struct call *call);

/* worker_creds.c: the credentials stage */
int clw_worker_creds_setup(struct worker *w, char *err, size_t errlen);
/* 1 when calls may be signed now. */
int clw_worker_creds_ready(const struct worker *w, int64_t now_wall);
void clw_worker_creds_tick(struct worker *w, int64_t now);
int64_t clw_worker_creds_wait_ms(const struct worker *w, int64_t now, int64_t max_ms);
void clw_worker_creds_done(struct worker *w, const struct clw_http_response *resp);
/* An answer to call: 1 when the API refused credentials that newer ones may replace (the call
 * is to be signed again once they are there), 0 otherwise. */
int clw_worker_creds_refused(struct worker *w, const struct call *call,
                             const struct clw_answer *ans);
void clw_worker_creds_reload(struct worker *w);

/* worker_call.c: attempts, answers, worker faults, the circuit breaker */
void clw_worker_dispatch(struct worker *w, int64_t now);
void clw_worker_on_http_done(void *opaque, const struct clw_http_response *resp, void *arg);
void clw_worker_pause_update(struct worker *w, int64_t now);
int64_t clw_worker_paused_total(const struct worker *w, int64_t now);
void clw_worker_fault(struct worker *w, struct call *call, const char *reason, int64_t now);
void clw_worker_retry(struct worker *w, struct call *call, int64_t delay, int64_t now);

/* worker_verdict.c: what an answer means for a call's members */
void clw_verdict_action(struct worker *w, struct call *call, struct clw_answer *ans,
                        enum clw_class cls, const char *why, int sent, int64_t now);
void clw_verdict_links(struct worker *w, struct call *call, struct clw_answer *ans,
                       enum clw_class cls, int64_t now);
void clw_verdict_task(struct worker *w, struct call *call, struct clw_answer *ans,
                      enum clw_class cls, int64_t now);
void clw_shared_answer_put(struct shared_answer *sa);

/* worker_publish.c */
void clw_publish_start(struct worker *w, struct job *job);
void clw_worker_on_delivered(void *arg, void *opaque, enum clw_publish_err err, const char *errstr);
void clw_publish_retry_later(struct worker *w, struct job *job, int64_t delay);
void clw_publish_tick(struct worker *w, int64_t now);
void clw_offsets_advance(struct worker *w, struct part *p);

/* worker_txn.c: the transaction of exactly-once mode, ended on the transaction thread */
int clw_worker_txn_ensure(struct worker *w);
void clw_worker_txn_delivered(struct worker *w, struct job *job);
void clw_worker_txn_hold(struct worker *w, struct job *job);
/* A record was refused or not delivered: librdkafka will not commit the current transaction,
 * so it is aborted when due. */
void clw_worker_txn_failed(struct worker *w);
/* 1 while the transaction's end is under way (flushing, committing, aborting): nothing is
 * produced, outcomes wait. */
int clw_worker_txn_busy(const struct worker *w);
/* Ends the open transaction now instead of when it is due (drains). */
void clw_worker_txn_commit_now(struct worker *w);
/* A lost assignment: the open transaction is aborted. */
void clw_worker_txn_abort(struct worker *w);
/* Advances the transaction: commits it when due, takes the transaction thread's result. */
void clw_worker_txn_tick(struct worker *w, int64_t now);
/* Milliseconds until clw_worker_txn_tick() has something to do by time alone, at most max_ms
 * (the other steps are woken by Kafka's descriptors). */
int64_t clw_worker_txn_wait_ms(const struct worker *w, int64_t now, int64_t max_ms);
/* Stop: commits what the drain finished, turning the loop until the transaction ended or
 * deadline. */
void clw_worker_txn_settle(struct worker *w, int64_t deadline);

/* worker.c */
void clw_worker_turn(struct worker *w, int consume, int max_wait_ms);

/* Lists. */
void clw_jobq_push(struct jobq *q, struct job *job, int front);
void clw_jobq_remove(struct jobq *q, struct job *job);
void clw_callq_push(struct callq *q, struct call *call, int front);
void clw_callq_remove(struct callq *q, struct call *call);

#endif
