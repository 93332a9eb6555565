/* The API's answer to one attempt: transport result, HTTP status and the decoded v2 body
 * ({"code":N|"N","message":"...","codeDesc":"...","taskId":N}). cJSON stays inside. */
#ifndef CLW_ANSWER_H
#define CLW_ANSWER_H

#include <stddef.h>
#include <stdint.h>

enum clw_transport {
    CLW_TRANSPORT_OK = 0,   /* a complete HTTP response arrived */
    CLW_TRANSPORT_TIMEOUT,  /* connect or total timeout */
    CLW_TRANSPORT_CONNECT,  /* DNS / connection refused / reset before a response */
    CLW_TRANSPORT_TLS,      /* TLS handshake or certificate verification failed */
    CLW_TRANSPORT_ERROR,    /* other send/receive failure (connection dropped mid-response) */
    CLW_TRANSPORT_TOO_LARGE /* the response body exceeded the limit */
};

/* One row of a DescribeVpcClassicLink (v2) or DescribeClassicLinkInstances (v3) answer. */
struct clw_link {
    char *instance_id;
    char *vpc_id;    /* v2 "vpcId" (may be a legacy id) or v3 "VpcId" */
    char *un_vpc_id; /* v2 "unVpcId" (the vpc-xxxxxxxx form), NULL when absent */
};

/* Owns every pointer (malloc'd, may be NULL). */
struct clw_answer {
    enum clw_transport transport;
    long http_status; /* 0 when no response */
    int api_version;  /* 2 or 3: which body grammar was parsed (0 before parsing) */
    int has_code;     /* 1 when the body carried an integer code (or a string of one); for v3,
                         1 with code 0 on success and 0 on an error (see code_desc) */
    long code;
    char *code_desc;  /* the API's string code (v3: Response.Error.Code), NULL when absent */
    char *message;    /* NULL when absent (v3: Response.Error.Message) */
    char *request_id; /* v3 Response.RequestId, NULL when absent */
    int has_task_id;
    long long task_id;      /* v2 taskId (v3: Response.TaskId when present) */
    int body_json;          /* 1 when the body parsed as a JSON object */
    int64_t retry_after_ms; /* from a Retry-After header, -1 when absent */
    /* DescribeVpcTaskResult: data.status 0 success, 1 failed, 2 running; -1 when absent. */
    int task_status;
    /* Describe* link listings: the rows of this page and the total across pages (-1 when
     * absent). */
    struct clw_link *links;
    size_t n_links;
    long total_count;
};

/* Decodes a v2 response body into ans (which must be zeroed or freed before): api_version 2,
 * code/codeDesc/message/taskId, data.status (DescribeVpcTaskResult) into task_status, and
 * totalCount + data[] {instanceId, vpcId, unVpcId} (DescribeVpcClassicLink) into links. Leaves
 * transport/http_status/retry_after_ms alone. Returns 0, -1 on allocation failure. A body
 * that is not a JSON object leaves body_json 0 and has_code 0. */
int clw_answer_parse_body(struct clw_answer *ans, const char *body, size_t len);
void clw_answer_free(struct clw_answer *ans);

/* Decodes an API 3.0 body {"Response":{...,"Error":{"Code":"...","Message":"..."},
 * "RequestId":"..."}} into ans (zeroed or freed before): api_version 3; success -> has_code 1,
 * code 0; error -> has_code 0 with code_desc/message; TaskId, TotalCount and a
 * ClassicLinkInstanceSet [{"InstanceId","VpcId"}] are read when present. Returns 0, -1 on
 * allocation failure. A body without a Response object leaves body_json 0. */
int clw_answer_parse_body_v3(struct clw_answer *ans, const char *body, size_t len);

/* Temporary credentials: TmpSecretId, TmpSecretKey, Token and ExpiredTime (Unix seconds).
 * Every string owned and wiped by clw_tmp_creds_free. */
struct clw_tmp_creds {
    char *secret_id;
    char *secret_key;
    char *token;
    int64_t expired_s;
};

/* Where temporary credentials come from, for clw_answer_parse_tmp_creds. */
enum clw_tmp_creds_doc {
    CLW_TMP_CREDS_METADATA, /* the CVM metadata service: {"TmpSecretId", "TmpSecretKey", "Token",
                               "ExpiredTime", "Code": "Success"} */
    CLW_TMP_CREDS_STS,      /* STS AssumeRoleWithWebIdentity: {"Response": {"Credentials":
                               {"TmpSecretId", "TmpSecretKey", "Token"}, "ExpiredTime"}} or an
                               API 3.0 error */
};

/* Decodes a credential document into out (zeroed by the caller). Returns 0 when every member is
 * there (non-empty strings, ExpiredTime a positive integer), 1 when the document is well formed
 * but refuses or lacks them (why says which member or the API's error code), -1 when it is not
 * such a document at all or on allocation failure. why (may be NULL) never carries a secret.
 * On 1 and -1 out is left empty. */
int clw_answer_parse_tmp_creds(enum clw_tmp_creds_doc doc, const char *body, size_t len,
                               struct clw_tmp_creds *out, char *why, size_t whylen);
void clw_tmp_creds_free(struct clw_tmp_creds *c);

/* Parses a Retry-After header value (delta-seconds or an HTTP date relative to now_wall_ms).
 * Returns milliseconds >= 0, or -1 when unparseable. */
int64_t clw_answer_parse_retry_after(const char *value, int64_t now_wall_ms);

#endif
