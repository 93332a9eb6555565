/* Exactly-once transactions (delivery.mode = exactly_once): outcomes, dead letters and the input
 * offsets they complete commit together, about every 100 ms, ended on the Kafka adapter's
 * transaction thread while the loop keeps turning. Every field below, and the job slice named
 * for it, are written only by worker_txn.c. */
#ifndef CLW_WORKER_TXN_H
#define CLW_WORKER_TXN_H

#include <stddef.h>
#include <stdint.h>

#include "clw/kafka.h"
#include "worker_job.h"
#include "worker_part.h"

enum txn_phase {
    TXN_IDLE = 0,   /* none open: the next outcome begins one */
    TXN_OPEN,       /* outcomes are produced into it */
    TXN_FLUSHING,   /* its commit is due: waits until every record is acknowledged */
    TXN_COMMITTING, /* the transaction thread sends its offsets and commits it */
    TXN_ABORTING,   /* the transaction thread aborts it */
};

struct txn {
    int eos; /* delivery.mode = exactly_once (else everything here is idle) */
    enum txn_phase phase;
    int64_t started; /* TXN_OPEN since */
    int failed;      /* a record of the current transaction was refused or not delivered */
    int fatal;       /* a fatal transaction error (fenced): the worker stops (exit 2) */
    int32_t *ids;    /* TXN_COMMITTING: the partitions whose offsets it commits */
    int64_t *offs;   /* and those offsets (owned) */
    size_t n;
    struct clw_dlist list;    /* jobs delivered in the current transaction */
    struct clw_kafka *kafka;  /* borrowed */
    struct parts *parts;      /* borrowed */
    struct job_queue *events; /* borrowed */
};

void clw_txn_init(struct txn *t, int eos, struct clw_kafka *kafka, struct parts *parts,
                  struct job_queue *events);
void clw_txn_fini(struct txn *t);

/* Opens a transaction before the first record of a batch is produced. Returns 0, -1 when fatal.
 * Callers produce only while no end is under way (clw_txn_busy() is 0). */
int clw_txn_ensure(struct txn *t);
/* A record was refused or not delivered: the current transaction is aborted when due. */
void clw_txn_record_failed(struct txn *t);
/* 1 while the transaction's end is under way (flushing, committing, aborting). */
int clw_txn_busy(const struct txn *t);
/* 1 while no transaction is open or ending. */
int clw_txn_idle(const struct txn *t);
/* The job is final: its offset is done in the watermark; outcomes up to the watermark are
 * released (JEV_RELEASED) unless a transaction ends. */
void clw_txn_hold(struct txn *t, struct job *job);
/* Every record of the job was delivered in the open transaction: it waits for the commit. */
void clw_txn_delivered(struct txn *t, struct job *job);
/* The job leaves the transaction's list (abandoned). */
void clw_txn_drop(struct txn *t, struct job *job);
/* Ends the open transaction now instead of when it is due (drains). */
void clw_txn_commit_now(struct txn *t);
/* A lost assignment: the open transaction is aborted. */
void clw_txn_abort(struct txn *t);
/* Advances the transaction: commits it when due, takes the transaction thread's result. */
void clw_txn_tick(struct txn *t, int64_t now);
/* Milliseconds until clw_txn_tick() has something to do by time alone, at most max_ms. */
int64_t clw_txn_wait_ms(const struct txn *t, int64_t now, int64_t max_ms);

#endif
