/* Outcome encoding: the results-topic JSON of the contract (section 4). cJSON stays inside. */
#ifndef CLW_RESULT_H
#define CLW_RESULT_H

#include <stddef.h>
#include <stdint.h>

/* Everything borrowed; NULL strings are published as JSON null. */
struct clw_outcome {
    const char *request_id;
    const char *raw_request_id; /* only for invalid requests; omitted when NULL */
    const char *action;         /* "AttachClassicLinkVpc", or NULL */
    const char *region;
    const char *vpc_id;
    const char *const *instance_ids; /* NULL -> null */
    size_t n_instances;
    int succeeded;
    int has_code;
    long code;
    const char *code_desc;
    const char *message; /* cut to 1 KiB (on a UTF-8 boundary); NULL -> "" */
    int has_task_id;
    long long task_id;
    const char *error_class; /* NULL on success */
    int attempts;
    long http_status;           /* published as httpStatus when > 0 */
    int reconciled;             /* published as "reconciled": true when set */
    const char *task_status;    /* "succeeded", "failed", "timeout", "unknown"; omitted when NULL */
    const char *api_request_id; /* API 3.0 RequestId of the last attempt; omitted when NULL */
    long coalesced;             /* requests that shared the deciding call; omitted when 0 */
    const char *source_topic;
    int32_t source_partition;
    int64_t source_offset;
    int64_t enqueued_at_ms; /* wall clock; < 0 -> null */
    int64_t received_at_ms;
    int64_t completed_at_ms;
};

/* Returns the malloc'd JSON text (at most 64 KiB) and its length, NULL on failure. */
char *clw_result_encode(const struct clw_outcome *o, size_t *len);

#endif
