/* Partitions: each assigned requests-topic partition's list of jobs, its window of pending
 * records, its fetch pause and its commit point. Every field below is written only by
 * worker_part.c. */
#ifndef CLW_WORKER_PART_H
#define CLW_WORKER_PART_H

#include <stddef.h>
#include <stdint.h>

#include "clw/config.h"
#include "clw/kafka.h"
#include "clw/metrics.h"
#include "clw/offsets.h"
#include "worker_guard.h"
#include "worker_job.h"

/* One assigned partition. */
struct part {
    int32_t id;
    struct clw_offsets *offs;
    struct clw_dlist jobs; /* every live job of the partition (job->part.link) */
    int window_paused;     /* too many records pending */
    int fetch_paused;      /* what the consumer was last told */
    int revoking;          /* being revoked: its pause state is left alone */
    int64_t stored;        /* last stored (or, exactly-once, committed) next-offset, -1 none */
    int64_t max_final;     /* highest offset whose outcome became final, -1 none */
    int64_t released;      /* exactly-once: outcomes below this offset were released to publish;
                              the next transaction commits this offset */
};

/* The partitions of the worker. */
struct parts {
    struct part **parts; /* indexed by partition id */
    size_t n;
    size_t taken;        /* jobs linked over every partition (records taken, not yet done) */
    int stopping;        /* the worker stops: every partition stays paused */
    int commits_stalled; /* stored offsets are not reaching the group coordinator: no intake */
    int eos;             /* delivery.mode = exactly_once: commit points travel in transactions */
    const struct clw_config *cfg; /* borrowed */
    struct clw_kafka *kafka;      /* borrowed */
    struct clw_metrics *metrics;  /* borrowed */
    const struct guard *guard;    /* borrowed: its pauses pause every partition */
};

void clw_parts_init(struct parts *ps, const struct clw_config *cfg, struct clw_kafka *kafka,
                    struct clw_metrics *metrics, const struct guard *guard, int eos);
/* Frees the table; every partition must have been forgotten. */
void clw_parts_fini(struct parts *ps);

/* The partition id, or NULL; create: make it when missing (NULL when out of memory). */
struct part *clw_parts_get(struct parts *ps, int32_t id, int create);
/* The partition the job belongs to, NULL for an orphan. */
struct part *clw_parts_of(const struct parts *ps, const struct job *job);
/* Every assigned partition in *out (malloc'd, caller frees); returns the count, or -1 when out
 * of memory. */
long clw_parts_list(const struct parts *ps, struct part ***out);
size_t clw_parts_assigned(const struct parts *ps);

/* Adds a new job (its record's partition and offset set) to its partition's list. */
void clw_parts_link(struct parts *ps, struct part *p, struct job *job);
/* Takes the job out of its partition's list (it becomes an orphan). */
void clw_parts_unlink(struct parts *ps, struct job *job);
/* The partition's jobs, in no particular order: the first, and the one after job (NULL at the
 * end). */
struct job *clw_parts_first(const struct part *p);
struct job *clw_parts_next(const struct job *job);
/* Forgets a partition whose jobs have all been taken out of its list. */
void clw_parts_forget(struct parts *ps, struct part *p);

/* Tells the consumer whether to fetch the partition: paused while its window is full, a guard
 * pause is active, commits stall, or the worker stops; revoking partitions are left alone. */
void clw_parts_sync_pause(struct parts *ps, struct part *p);
void clw_parts_sync_all(struct parts *ps);
void clw_parts_set_stopping(struct parts *ps, int on);
/* Commits are not reaching the group coordinator (a rebalance is pending, or it cannot be
 * reached): no new records, so that what cannot be committed does not grow to the window. */
void clw_parts_set_commits_stalled(struct parts *ps, int on);
void clw_parts_set_revoking(struct parts *ps, struct part *p, int on);
/* The per-partition window: pause at worker.max_pending_per_partition records pending, resume at
 * half (pausing drops prefetched records, so it must not flap). */
void clw_parts_window_check(struct parts *ps, struct part *p);

/* The job's outcome became final. */
void clw_parts_final(struct parts *ps, const struct job *job);
/* At least once: the job's outcome is acknowledged; its offset is done, and the partition's
 * commit point is stored when it moved. Exactly once: the window is checked. */
void clw_parts_done(struct parts *ps, int32_t partition, int64_t offset);
/* Exactly once: the job is final; its offset is done in the watermark (it commits with the
 * transaction that carries the partition's watermark). */
void clw_parts_hold(struct parts *ps, const struct job *job);
/* Exactly once: outcomes below offset were released; a transaction committed offset. */
void clw_parts_set_released(struct part *p, int64_t offset);
void clw_parts_set_committed(struct part *p, int64_t offset);

#endif
