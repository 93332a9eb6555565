/* Request decoding: a Kafka record value -> validated request, or the contract's invalid
 * reason (first match wins). cJSON stays inside this module. */
#ifndef CLW_REQUEST_H
#define CLW_REQUEST_H

#include <stddef.h>

enum clw_action { CLW_ACTION_ATTACH = 0, CLW_ACTION_DETACH };

const char *clw_action_name(enum clw_action action);

struct clw_request_limits {
    size_t max_bytes;           /* 65536 */
    size_t max_instances;       /* worker.max_instances_per_request */
    const char *default_region; /* api.region, "" or NULL when unset */
};

/* The decoded request. Every pointer is owned by the struct and freed by clw_request_free().
 * For an invalid request, fields that were carried validly are still set; the rest are NULL
 * (has_action 0). */
struct clw_request {
    int valid;
    const char *reason;   /* NULL when valid, else static "NotJson", "BadVpcId", ... */
    char *detail;         /* human-readable detail for an invalid request, NULL when valid */
    char *request_id;     /* always set: the request's own when valid, else default_request_id */
    char *raw_request_id; /* an invalid requestId, cut to 128 bytes; NULL otherwise */
    int has_action;
    enum clw_action action;
    char *region; /* region used: the request's, else the default; NULL if none valid */
    char *vpc_id;
    char **instance_ids;
    size_t n_instances;
};

/* Decodes payload (may be NULL with len 0: a tombstone). default_request_id is
 * "<topic>:<partition>:<offset>". Always fills req (valid or not); returns 0, or -1 only on
 * allocation failure. */
int clw_request_parse(struct clw_request *req, const void *payload, size_t len,
                      const char *default_request_id, const struct clw_request_limits *lim);
void clw_request_free(struct clw_request *req);

/* Id grammar, shared with the checks before signing. Each returns 1 when s matches. */
int clw_request_valid_vpc_id(const char *s);
int clw_request_valid_instance_id(const char *s);
int clw_request_valid_region(const char *s);
int clw_request_valid_request_id(const char *s);

/* 1 when the bytes are well-formed UTF-8 (no overlong forms, no surrogates, <= U+10FFFF). */
int clw_utf8_valid(const void *p, size_t len);

#endif
