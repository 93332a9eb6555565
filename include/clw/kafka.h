/* Kafka adapter: the request consumer (cooperative-sticky group member, manual offset store)
 * and the idempotent outcome producer. librdkafka stays inside this module. Every handler runs
 * on the caller's thread inside clw_kafka_poll_* and clw_kafka_close calls; the one thread of
 * its own (exactly-once: the transaction thread, which waits for the broker so that the
 * caller never does) calls no handler. */
#ifndef CLW_KAFKA_H
#define CLW_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include "clw/commits.h"
#include "clw/config.h"

struct clw_kafka;

/* One record header; name and value borrowed for the duration of the handler. */
struct clw_kafka_header {
    const char *name;
    const void *value; /* NULL for a null header value */
    size_t value_len;
};

/* A consumed record, borrowed for the duration of the message handler. */
struct clw_kafka_msg {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *key; /* NULL when the record has no key */
    size_t key_len;
    const void *value; /* NULL for a tombstone */
    size_t value_len;
    int64_t timestamp_ms; /* -1 when unknown */
    const struct clw_kafka_header *headers;
    size_t n_headers;
};

/* Publish result classes for delivery reports. */
enum clw_publish_err {
    CLW_PUBLISH_OK = 0,
    CLW_PUBLISH_RETRY, /* transient (timeout, broker down): produce again */
    CLW_PUBLISH_STUCK, /* topic missing, not authorised, record too large: pause everything */
};

struct clw_kafka_handlers {
    void *arg;
    /* A record from the requests topic. */
    void (*message)(void *arg, const struct clw_kafka_msg *msg);
    /* Partitions of the requests topic were added to the assignment. */
    void (*assigned)(void *arg, const int32_t *partitions, size_t n);
    /* Partitions are about to be removed. The handler drains (it may call clw_kafka_poll_producer
     * and clw_kafka_store), then returns; pauses are cleared and the partitions unassigned after
     * it returns. lost is 1 when the assignment was lost: nothing may be stored. */
    void (*revoked)(void *arg, const int32_t *partitions, size_t n, int lost);
    /* Delivery report of a clw_kafka_produce() call. */
    void (*delivered)(void *arg, void *opaque, enum clw_publish_err err, const char *errstr);
    /* A fatal client error (e.g. fenced, idempotence broken): the worker must stop, exit 2. */
    void (*fatal)(void *arg, const char *errstr);
    /* Stored offsets have not reached the group coordinator for two automatic commit intervals
     * plus 100 ms, at least 500 ms (stalled = 1), or they reach it again (0). librdkafka commits
     * only while the group is stable, and nothing sent while this member waits in JoinGroup
     * could commit (design section 4, hand-over while the group rebalances): a rebalance is
     * pending, or the coordinator cannot be reached. Reported from clw_kafka_poll_consumer. */
    void (*commits_stalled)(void *arg, int stalled);
};

/* Creates consumer and producer from cfg (kafka.* passthrough applied, enforced settings
 * refused). Does not subscribe yet. Returns NULL with a message in err. */
struct clw_kafka *clw_kafka_new(const struct clw_config *cfg, const struct clw_kafka_handlers *h,
                                char *err, size_t errlen);

/* Checks that every kafka.* property is known to librdkafka and acceptable, without creating
 * clients (for --check-config). Returns 0 or -1 with a message naming the key. */
int clw_kafka_validate_config(const struct clw_config *cfg, char *err, size_t errlen);

/* Waits up to timeout_ms for the cluster to describe the results topic and, when configured,
 * the dead-letter topic. Returns 1 when they exist, 0 when the cluster answered that one does
 * not (its name in missing, of missing_len bytes), -1 when the cluster did not answer. */
int clw_kafka_output_topics_exist(struct clw_kafka *k, int timeout_ms, char *missing,
                                  size_t missing_len);

/* Subscribes to the requests topic. Returns 0 or -1. */
int clw_kafka_subscribe(struct clw_kafka *k, char *err, size_t errlen);
/* The requests topic's partition count as the start-up metadata said (the fleet's share of the
 * API quota is counted in partitions), 0 when unknown. */
int clw_kafka_requests_partitions(const struct clw_kafka *k);

/* File descriptors that become readable when consumer or producer events are queued or a
 * transaction operation ended; add them to the event loop's poll set and drain them with
 * clw_kafka_drain_fds(). */
size_t clw_kafka_fds(const struct clw_kafka *k, int *fds, size_t cap);
void clw_kafka_drain_fds(struct clw_kafka *k);

/* Serves consumer events (records, rebalances, errors) until the queue is empty or max records
 * were handed out. Returns the number of records. */
int clw_kafka_poll_consumer(struct clw_kafka *k, int max);
/* Serves producer events (delivery reports, errors). Returns the number of delivery reports. */
int clw_kafka_poll_producer(struct clw_kafka *k);

/* Where a produced record goes. */
enum clw_kafka_dest { CLW_DEST_RESULTS = 0, CLW_DEST_DLQ };

/* Produces a record to the results topic or the dead-letter topic; key (may be NULL), value
 * (may be NULL) and headers are copied. Returns 0, or -1 when the local queue is full or the
 * record was refused (the caller retries later), -2 when the open transaction failed and takes
 * no record until it is aborted (the caller retries after the abort). */
int clw_kafka_produce(struct clw_kafka *k, enum clw_kafka_dest dest, const void *key,
                      size_t key_len, const void *value, size_t value_len,
                      const struct clw_kafka_header *headers, size_t n_headers, void *opaque,
                      char *err, size_t errlen);

/* Stores next_offset (the next offset to consume) for a requests-topic partition; committed
 * by the auto-commit timer, on revoke and on close. Returns 0 or -1 (not assigned). */
int clw_kafka_store(struct clw_kafka *k, int32_t partition, int64_t next_offset);

/* The requests-topic partitions whose stored offset the group coordinator has not acknowledged:
 * every assigned one, and those revoked at or after since_ms (monotonic). Writes up to cap to
 * out (NULL when cap is 0), in partition order; returns how many there are. */
size_t clw_kafka_uncommitted(const struct clw_kafka *k, int64_t since_ms,
                             struct clw_commit_gap *out, size_t cap);

/* Commits the given requests-topic offsets (next to consume) now and waits for the group
 * coordinator's answer (revocation and shutdown: nothing may be left to the auto-commit timer).
 * Returns 0, or -1 when the commit failed (logged). */
int clw_kafka_commit(struct clw_kafka *k, const int32_t *partitions, const int64_t *offsets,
                     size_t n);

/* Pauses or resumes fetching of one requests-topic partition. */
void clw_kafka_pause(struct clw_kafka *k, int32_t partition, int pause);

/* The partition's high watermark as last seen by the consumer's fetches (no network call), or
 * -1 when unknown. */
int64_t clw_kafka_high_watermark(struct clw_kafka *k, int32_t partition);

/* Transactions (delivery.mode=exactly_once; the producer has a transactional.id). */

/* Registers the transactional producer, fencing an earlier instance with the same
 * transactional.id and aborting its open transaction, and starts the transaction thread.
 * Returns 0, -1 with a message. */
int clw_kafka_txn_init(struct clw_kafka *k, int timeout_ms, char *err, size_t errlen);
/* Starts a transaction (no broker round trip). Returns 0, -1 with a message (fatal). */
int clw_kafka_txn_begin(struct clw_kafka *k, char *err, size_t errlen);

/* Ending a transaction runs on the transaction thread; one operation at a time, and nothing may
 * be produced from its start until clw_kafka_txn_poll() returned its result. */
enum clw_txn_result { CLW_TXN_COMMITTED = 0, CLW_TXN_ABORTED, CLW_TXN_FATAL, CLW_TXN_RUNNING };
/* Starts committing the open transaction with the given requests-topic offsets (next to
 * consume; the consumer's group metadata is taken now). Call it once every produced record is
 * acknowledged (clw_kafka_producer_queue_len() is 0). Retriable errors are retried (the call
 * resumes) until the broker answers; an abortable error aborts the transaction (its records
 * are discarded: the caller produces them again in a new one); a fatal error (e.g. fenced)
 * ends the producer. Returns 0, -1 with a message (out of memory, or an operation runs). */
int clw_kafka_txn_commit_start(struct clw_kafka *k, const int32_t *partitions,
                               const int64_t *offsets, size_t n, char *err, size_t errlen);
/* Starts aborting the open transaction (queued records are purged, their delivery reports
 * fail). Returns 0, -1 with a message. */
int clw_kafka_txn_abort_start(struct clw_kafka *k, char *err, size_t errlen);
/* The operation started last: CLW_TXN_RUNNING while it runs, then its result, once (commit:
 * COMMITTED, ABORTED or FATAL; abort: ABORTED or FATAL, with a message in err). Its end makes
 * a descriptor of clw_kafka_fds() readable. */
enum clw_txn_result clw_kafka_txn_poll(struct clw_kafka *k, char *err, size_t errlen);

/* Messages waiting in the producer queue (for metrics and flush decisions). */
int clw_kafka_producer_queue_len(const struct clw_kafka *k);

/* Leaves the group: the revoked handler runs for the remaining assignment; stored offsets are
 * committed. Then serves delivery reports until every produced record is acknowledged, for up
 * to flush_ms. Returns 0 or -1. */
int clw_kafka_close(struct clw_kafka *k, int flush_ms);
/* Drops every record not yet acknowledged and serves their delivery reports (a purge error,
 * CLW_PUBLISH_RETRY), waiting up to wait_ms for the ones already sent: the handler sees every
 * record it produced once, so whatever it keeps for a report is released. For the end of a
 * run, after clw_kafka_close() (the records' offsets were never committed), and for tests
 * that need a failed delivery. */
void clw_kafka_purge(struct clw_kafka *k, int wait_ms);
/* Stops the transaction thread (waiting for the librdkafka call it is in) and frees both
 * clients. */
void clw_kafka_free(struct clw_kafka *k);

#endif
