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

/* Owns message and code_desc (malloc'd, may be NULL). */
struct clw_answer {
    enum clw_transport transport;
    long http_status; /* 0 when no response */
    int has_code;     /* 1 when the body carried an integer code (or a string of one) */
    long code;
    char *code_desc; /* the API's string code, NULL when absent */
    char *message;   /* NULL when absent */
    int has_task_id;
    long long task_id;
    int body_json; /* 1 when the body parsed as a JSON object */
    int64_t retry_after_ms; /* from a Retry-After header, -1 when absent */
};

/* Decodes a v2 response body into ans (which must be zeroed or freed before). Leaves
 * transport/http_status/retry_after_ms alone. Returns 0, -1 on allocation failure. A body
 * that is not a JSON object leaves body_json 0 and has_code 0. */
int clw_answer_parse_body(struct clw_answer *ans, const char *body, size_t len);
void clw_answer_free(struct clw_answer *ans);

/* Parses a Retry-After header value (delta-seconds or an HTTP date relative to now_wall_ms).
 * Returns milliseconds >= 0, or -1 when unparseable. */
int64_t clw_answer_parse_retry_after(const char *value, int64_t now_wall_ms);

#endif
