/* Fuzz target: request decoding and validation under varying limits, then outcome encoding. */
#include "fuzz.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "clw/request.h"
#include "clw/result.h"

/*
 * Input: byte 0 picks the limits (bits 0-1 max_bytes, 2-3 max_instances, 4-5 default region),
 * the rest is the record value.
 */
#define REQ_DEFAULT_ID "classiclink.requests:3:1742"

static const size_t req_max_bytes[4] = {65536, 32, 256, 4096};
static const size_t req_max_instances[4] = {20, 1, 3, 100};
static const char *const req_regions[4] = {NULL, "", "ap-guangzhou", "bad region&x=1"};

/* Fields that are set must be valid, even for an invalid request. */
static void req_check(const struct clw_request *req, size_t len,
                      const struct clw_request_limits *lim)
{
    CLW_FUZZ_CHECK(req->request_id != NULL);
    CLW_FUZZ_CHECK(clw_request_valid_request_id(req->request_id) ||
                   strcmp(req->request_id, REQ_DEFAULT_ID) == 0);
    CLW_FUZZ_CHECK(req->region == NULL || clw_request_valid_region(req->region));
    CLW_FUZZ_CHECK(req->vpc_id == NULL || clw_request_valid_vpc_id(req->vpc_id));
    CLW_FUZZ_CHECK(req->n_instances == 0 || req->instance_ids != NULL);
    for (size_t i = 0; i < req->n_instances; i++)
        CLW_FUZZ_CHECK(req->instance_ids[i] != NULL &&
                       clw_request_valid_instance_id(req->instance_ids[i]));
    if (req->raw_request_id != NULL)
        CLW_FUZZ_CHECK(strlen(req->raw_request_id) <= 128);
    if (req->valid) {
        CLW_FUZZ_CHECK(req->reason == NULL && req->detail == NULL && req->raw_request_id == NULL);
        CLW_FUZZ_CHECK(req->region != NULL && req->vpc_id != NULL && req->has_action);
        CLW_FUZZ_CHECK(req->n_instances >= 1 && req->n_instances <= lim->max_instances);
        CLW_FUZZ_CHECK(len > 0 && len <= lim->max_bytes);
        /* The ids go into a signed query unencoded by the string to sign: none may carry a
         * query metacharacter. */
        CLW_FUZZ_CHECK(strpbrk(req->vpc_id, "&=%#? \r\n") == NULL);
        CLW_FUZZ_CHECK(strpbrk(req->region, "&=%#? \r\n") == NULL);
        for (size_t i = 0; i < req->n_instances; i++)
            CLW_FUZZ_CHECK(strpbrk(req->instance_ids[i], "&=%#? \r\n") == NULL);
    } else {
        CLW_FUZZ_CHECK(req->reason != NULL && req->detail != NULL);
        if (len == 0)
            CLW_FUZZ_CHECK(strcmp(req->reason, "Empty") == 0);
        else if (len > lim->max_bytes)
            CLW_FUZZ_CHECK(strcmp(req->reason, "TooLarge") == 0);
    }
}

/* Encodes the outcome the worker would publish for req; message and codeDesc take the raw
 * input too, to exercise the UTF-8 repair and the size cuts. */
static void req_encode(const struct clw_request *req, const char *raw)
{
    struct clw_outcome o;
    char desc[64];
    char *text;
    size_t len = 0;
    cJSON *root;

    memset(&o, 0, sizeof(o));
    o.request_id = req->request_id;
    o.raw_request_id = req->raw_request_id;
    o.action = req->has_action ? clw_action_name(req->action) : NULL;
    o.region = req->region;
    o.vpc_id = req->vpc_id;
    o.instance_ids = (const char *const *)req->instance_ids;
    o.n_instances = req->n_instances;
    o.attempts = 1;
    o.source_topic = "classiclink.requests";
    o.source_partition = 3;
    o.source_offset = 1742;
    o.enqueued_at_ms = -1;
    o.received_at_ms = 1700000000000;
    o.completed_at_ms = 1700000000123;
    o.has_code = 1;
    if (req->valid) {
        o.succeeded = 1;
        o.code = 0;
        o.code_desc = raw;
        o.message = raw;
        o.has_task_id = 1;
        o.task_id = 135254;
    } else {
        snprintf(desc, sizeof(desc), "InvalidRequest.%s", req->reason);
        o.code = 4000;
        o.code_desc = desc;
        o.message = req->detail;
        o.error_class = "invalid_request";
    }
    text = clw_result_encode(&o, &len);
    CLW_FUZZ_CHECK(text != NULL);
    CLW_FUZZ_CHECK(len == strlen(text) && len <= 65536);
    CLW_FUZZ_CHECK(clw_utf8_valid(text, len));
    root = cJSON_ParseWithLength(text, len);
    CLW_FUZZ_CHECK(cJSON_IsObject(root));
    cJSON_Delete(root);
    free(text);
}

int clw_fuzz_request(const uint8_t *data, size_t size)
{
    struct clw_request_limits lim;
    struct clw_request req;
    char *payload = NULL;
    char *raw = NULL;
    size_t len;

    if (size == 0)
        return 0;
    lim.max_bytes = req_max_bytes[data[0] & 3];
    lim.max_instances = req_max_instances[(data[0] >> 2) & 3];
    lim.default_region = req_regions[(data[0] >> 4) & 3];
    len = size - 1;
    /* An exact-size copy, so that any read past the end is caught; len 0 is a tombstone. */
    if (len > 0) {
        payload = malloc(len);
        CLW_FUZZ_CHECK(payload != NULL);
        memcpy(payload, data + 1, len);
    }
    raw = malloc(len + 1);
    CLW_FUZZ_CHECK(raw != NULL);
    if (len > 0)
        memcpy(raw, data + 1, len);
    raw[len] = '\0';

    CLW_FUZZ_CHECK(clw_request_parse(&req, payload, len, REQ_DEFAULT_ID, &lim) == 0);
    req_check(&req, len, &lim);
    req_encode(&req, raw);
    clw_request_free(&req);
    free(raw);
    free(payload);
    return 0;
}

#ifndef CLW_FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return clw_fuzz_request(data, size);
}
#endif
