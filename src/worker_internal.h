/* Worker internals shared by the worker_*.c files: the job, partition and worker structs. */
#ifndef CLW_WORKER_INTERNAL_H
#define CLW_WORKER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "clw/answer.h"
#include "clw/config.h"
#include "clw/gate.h"
#include "clw/http.h"
#include "clw/httpd.h"
#include "clw/kafka.h"
#include "clw/log.h"
#include "clw/metrics.h"
#include "clw/offsets.h"
#include "clw/request.h"
#include "clw/sign.h"
#include "clw/timers.h"
#include "clw/worker.h"

enum job_state {
    JOB_GATED,      /* waiting for an earlier request on one of its instances */
    JOB_READY,      /* may start; waiting for an in-flight slot (in the ready queue) */
    JOB_CALLING,    /* an API call is in flight */
    JOB_BACKOFF,    /* waiting for its retry time (timer armed) */
    JOB_HELD,       /* parked by a worker fault (in the held list) */
    JOB_PUBLISHING, /* outcome (and dead letter) produced, waiting for delivery reports */
    JOB_REPUBLISH,  /* a record must be produced again (timer armed) */
    JOB_ORDERED,    /* exactly-once: final, waiting for every earlier offset to be final */
    JOB_IN_TXN,     /* exactly-once: delivered in the open transaction, not yet committed */
};

struct part;
struct job;

/* What the job's next API call is for. */
enum job_phase {
    PHASE_ACTION,    /* AttachClassicLinkVpc / DetachClassicLinkVpc */
    PHASE_RECONCILE, /* DescribeVpcClassicLink: is the requested state already there? */
    PHASE_TASK,      /* DescribeVpcTaskResult: follow the returned task */
};

/* The records a final job publishes; each is acknowledged separately. */
enum job_record { REC_OUTCOME = 1, REC_DEAD_LETTER = 2 };

/* Opaque of one produced record: which job, which record. */
struct delivery {
    struct job *job;
    enum job_record rec;
};

/* One consumed record from intake until its outcome is acknowledged (or it is abandoned). Owned
 * by its partition's job list; an orphan (part == NULL) is owned by the pending delivery. */
struct job {
    struct worker *w;
    struct part *part;
    int64_t offset;
    enum job_state state;
    struct job *prev, *next;   /* ready queue or held list */
    struct job *pprev, *pnext; /* partition's job list */
    struct clw_timer timer;
    struct clw_gate_ticket *ticket;
    struct clw_request req;
    char *key; /* record key, NULL when none */
    size_t key_len;
    struct clw_kafka_header *hdrs; /* carried request headers (owned copies) */
    size_t n_hdrs;
    char trace_id[33];
    int64_t enqueued_ms; /* record timestamp, -1 unknown */
    int64_t received_ms;
    int64_t received_mono;
    int64_t completed_ms; /* when the outcome became final */
    int attempts;
    int resign_streak;
    int64_t first_attempt_mono; /* -1 before the first attempt */
    int64_t paused_base;        /* worker paused time at the first attempt */
    int64_t call_started_mono;
    int probe; /* this call probes a worker fault or an open circuit */
    enum job_phase phase;
    int ambiguous;          /* an attempt may have taken effect without an answer saying so */
    struct clw_answer last; /* the last answer to the action (what the outcome reports) */
    int has_last;
    struct clw_answer aux; /* the last answer of a follow-up call (describe, task) */
    /* follow-ups */
    const char *pending_error; /* the outcome's error class if reconciling cannot confirm */
    unsigned char *found;      /* per instance: seen linked to the requested VPC */
    long describe_offset;
    int followups; /* follow-up calls made in the current phase */
    int64_t task_deadline;
    const char *task_status;
    int reconciled;
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
    int succeeded;
    const char *error_class;
};

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
    int64_t released;  /* exactly-once: outcomes below this offset were released to publish */
};

struct jobq {
    struct job *head, *tail;
    size_t len;
};

struct worker {
    struct clw_config *cfg;
    const struct clw_worker_io *io;
    struct clw_endpoint ep;
    char endpoint[1024]; /* the API URL in use (api.endpoint, or the v3 default) */
    struct clw_request_limits limits;
    struct clw_kafka *kafka;
    struct clw_http *http;
    struct clw_gate *gate;
    struct clw_metrics *metrics;
    struct clw_httpd *httpd;
    struct clw_ratelimit *ratelimit; /* NULL when api.rate_limit is 0 */
    int64_t rate_hold_until;         /* no call starts before this (monotonic ms) */
    struct clw_timers timers;
    struct part **parts; /* indexed by partition id */
    size_t n_parts;
    struct jobq ready;
    struct jobq held;
    struct jobq txn; /* exactly-once: jobs delivered in the open transaction */
    int eos;         /* delivery.mode = exactly_once */
    int in_txn;      /* a transaction is open */
    int64_t txn_started;
    size_t calling;
    size_t taken;         /* records taken and not yet done, over every partition */
    size_t taken_cap;     /* no more records are taken beyond this (flow control) */
    int64_t last_consume; /* monotonic ms of the last consumer poll */
    size_t orphans;       /* jobs of forgotten partitions still waiting for a delivery report */
    uint64_t rng;
    int stopping;
    int exit_code;
    int joined;
    /* pauses */
    int fault_active;
    char fault_reason[256];
    int circuit_open;
    int publish_stuck;
    int probe_in_flight;
    int64_t next_probe_mono;
    int transient_streak;
    char streak_key[64];
    int streak_distinct;
    int64_t paused_total; /* ms spent paused, ended pauses */
    int64_t paused_since; /* -1 when not paused */
    int64_t next_housekeeping;
};

/* worker_intake.c */
void clw_worker_on_message(void *arg, const struct clw_kafka_msg *msg);
void clw_worker_on_assigned(void *arg, const int32_t *partitions, size_t n);
void clw_worker_on_revoked(void *arg, const int32_t *partitions, size_t n, int lost);
void clw_worker_sync_pause(struct worker *w, struct part *p);
void clw_worker_sync_all_pauses(struct worker *w);
void clw_worker_window_check(struct worker *w, struct part *p);
void clw_worker_abandon(struct worker *w, struct job *job);
void clw_worker_job_free(struct job *job);
void clw_worker_forget_part(struct worker *w, struct part *p);
void clw_worker_drain_parts(struct worker *w, struct part **parts, size_t n, int64_t deadline);

/* worker_call.c */
void clw_worker_dispatch(struct worker *w, int64_t now);
void clw_worker_on_http_done(void *opaque, struct clw_answer *ans, int sent, void *arg);
void clw_worker_gate_ready(void *job, void *arg);
void clw_worker_enqueue_ready(struct worker *w, struct job *job, int front);
void clw_worker_list_remove(struct jobq *q, struct job *job);
void clw_worker_pause_update(struct worker *w, int64_t now);
int64_t clw_worker_paused_total(const struct worker *w, int64_t now);

/* worker_followup.c */
size_t clw_worker_phase_params(const struct job *job, struct clw_param *params, char *scratch,
                               size_t scratch_len);
const char *clw_worker_phase_action(const struct job *job);
void clw_worker_begin_reconcile(struct worker *w, struct job *job, const char *pending_error);
void clw_worker_begin_task(struct worker *w, struct job *job, int64_t now);
void clw_worker_followup_answer(struct worker *w, struct job *job, int cls, int64_t now);

/* worker_publish.c */
void clw_worker_finalize(struct worker *w, struct job *job, int succeeded, const char *error_class);
void clw_worker_publish(struct worker *w, struct job *job);
void clw_worker_on_delivered(void *arg, void *opaque, enum clw_publish_err err, const char *errstr);
void clw_worker_log_ctx(const struct job *job, struct clw_log_ctx *ctx);

/* worker_v3.c */
int clw_worker_start_v3(struct worker *w, struct job *job);

/* worker_txn.c */
int clw_worker_txn_ensure(struct worker *w);
void clw_worker_txn_delivered(struct worker *w, struct job *job);
void clw_worker_txn_hold(struct worker *w, struct job *job);
void clw_worker_txn_commit(struct worker *w);
void clw_worker_txn_abort(struct worker *w);
void clw_worker_txn_tick(struct worker *w, int64_t now);

/* worker.c */
void clw_worker_turn(struct worker *w, int consume, int max_wait_ms);
void clw_worker_on_timer(struct worker *w, struct job *job, int64_t now);

#endif
