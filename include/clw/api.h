/* The VPC API client: one interface for the calls the worker makes (attach, detach, list links,
 * read a task), with the v2 and API 3.0 dialects behind it. It builds the signed request of one
 * attempt and parses an answer into struct clw_answer; it sends nothing (the HTTP adapter does).
 * Pure and single-threaded. */
#ifndef CLW_API_H
#define CLW_API_H

#include <stddef.h>
#include <stdint.h>

#include "clw/answer.h"
#include "clw/config.h"

/* What a call does; the dialect picks the wire action. */
enum clw_api_op {
    CLW_API_ATTACH = 0,  /* AttachClassicLinkVpc */
    CLW_API_DETACH,      /* DetachClassicLinkVpc */
    CLW_API_LIST_LINKS,  /* v2 DescribeVpcClassicLink, v3 DescribeClassicLinkInstances */
    CLW_API_TASK_RESULT, /* DescribeVpcTaskResult */
};

/* Rows per page of a link listing (the v2 maximum). */
#define CLW_API_LINKS_PAGE 50

/* One call's parameters; every string borrowed, each an id validated by the request grammar
 * (clw_request_valid_*) before it gets here. */
struct clw_api_call {
    enum clw_api_op op;
    const char *region;
    const char *vpc_id;              /* attach, detach, list links */
    const char *const *instance_ids; /* attach, detach */
    size_t n_instances;
    long offset;       /* list links: the page's first row */
    long long task_id; /* task result */
};

/* Credentials of one attempt; borrowed. token is "" when none. */
struct clw_api_creds {
    const char *secret_id;
    const char *secret_key;
    const char *token;
};

/* The signed request of one attempt. Every string is owned and carries a signature or a token:
 * clw_api_request_free wipes and frees them. headers is NULL or NULL-terminated. body is NULL for
 * a GET. */
struct clw_api_request {
    char *url;
    char *body;
    char **headers;
};

struct clw_api;

/* A client for cfg's api.version, api.endpoint (already finalized: the v3 default applied),
 * api.signature_method and api.http_method. Returns NULL with a message in err. */
struct clw_api *clw_api_new(const struct clw_config *cfg, char *err, size_t errlen);
void clw_api_free(struct clw_api *api);

/* The URL calls go to, and its host name as signed (no port). Owned by api. */
const char *clw_api_endpoint(const struct clw_api *api);
const char *clw_api_host(const struct clw_api *api);
/* 1 when the endpoint is https. */
int clw_api_https(const struct clw_api *api);

/* The wire action name of op in this dialect (a static string). */
const char *clw_api_action(const struct clw_api *api, enum clw_api_op op);

/* Builds the signed request of one attempt at wall time now_s with nonce (v2 only; > 0). Returns
 * 0, or -1 on allocation failure (out is then empty). */
int clw_api_build(const struct clw_api *api, const struct clw_api_call *call,
                  const struct clw_api_creds *creds, int64_t now_s, uint64_t nonce,
                  struct clw_api_request *out);
void clw_api_request_free(struct clw_api_request *req);
/* Appends the header line "name: value" at req->headers[*n] (the caller sized the array) and
 * counts it in *n. Returns 0, or -1 on allocation failure. */
int clw_api_request_header(struct clw_api_request *req, size_t *n, const char *name,
                           const char *value);

/* Fills ans (zeroed by the caller) from one attempt's result: transport, HTTP status, the body
 * (parsed with this dialect's grammar when the status is 200) and Retry-After (ms, -1 none).
 * Returns 0, or -1 on allocation failure (ans then holds what could be read). */
int clw_api_parse(const struct clw_api *api, enum clw_transport transport, long http_status,
                  const char *body, size_t body_len, int64_t retry_after_ms,
                  struct clw_answer *ans);

#endif
