/* A worker built in-process for unit tests: real configuration, stages, producer and HTTP
 * adapter, but no broker (its producer only queues) and no API (nothing is sent unless a test
 * drives it). The tests drive it through the routes worker.c gives the adapters. */
#ifndef CLW_TEST_WORKER_HARNESS_H
#define CLW_TEST_WORKER_HARNESS_H

#include "../../../src/worker_stages.h"

/* Builds a worker over cfg (initialised here; freed by clw_test_worker_free). kv is a
 * NULL-terminated list of extra configuration key/value pairs, applied after the defaults the
 * harness sets (bootstrap servers and endpoint nobody listens on, credentials, region). Fails
 * the running cmocka test on any error. */
struct worker *clw_test_worker_new(struct clw_config *cfg, const char *const *kv);

/* Forgets every partition (abandoning its jobs) and clears a stop: the worker starts afresh. */
void clw_test_worker_reset(struct worker *w);

/* Resets w, drops its queued outcomes (failing the test if a job stays orphaned), frees w and
 * cfg. */
void clw_test_worker_free(struct worker *w, struct clw_config *cfg);

/* A record of topic "requests", partition 0, at offset, with value (NULL: a tombstone). The
 * value is borrowed. */
struct clw_kafka_msg clw_test_record(int64_t offset, const char *value);

/* The job at offset of partition 0, or NULL. */
struct job *clw_test_job(struct worker *w, int64_t offset);

#endif
