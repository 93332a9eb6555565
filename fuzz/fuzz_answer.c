/* Fuzz target: API answer decoding, classification, transport codeDesc and Retry-After. */
#include "fuzz.h"

#include <string.h>

#include "clw/answer.h"
#include "clw/classify.h"

/*
 * Input: byte 0 picks the transport (mod 6) and the clock, bytes 1-2 the HTTP status (as a
 * signed 16-bit number, so 200 and odd values both occur), then "RETRY-AFTER\nBODY" (without a
 * newline everything is the body and there is no Retry-After).
 */
#define ANS_RETRY_CAP_MS (86400LL * 1000)

static const int64_t ans_now[4] = {0, 1700000000000LL, 784111777000LL, 253402300799000LL};

static int ans_is_transport_desc(const char *d)
{
    return strcmp(d, "Transport.Timeout") == 0 || strcmp(d, "Transport.Connect") == 0 ||
           strcmp(d, "Transport.TLS") == 0 || strcmp(d, "Transport.HttpStatus") == 0;
}

static void ans_check_retry_after(const uint8_t *p, size_t n, int64_t now)
{
    char *value = malloc(n + 1);
    int64_t ms;

    CLW_FUZZ_CHECK(value != NULL);
    memcpy(value, p, n);
    value[n] = '\0';
    ms = clw_answer_parse_retry_after(value, now);
    CLW_FUZZ_CHECK(ms == -1 || (ms >= 0 && ms <= ANS_RETRY_CAP_MS));
    free(value);
}

static void ans_check_body(const uint8_t *p, size_t n, enum clw_transport transport, long status)
{
    struct clw_answer ans;
    const char *why = NULL;
    const char *desc;
    enum clw_class cls;
    char *body = n > 0 ? malloc(n) : NULL; /* exact size: over-reads are caught */

    CLW_FUZZ_CHECK(n == 0 || body != NULL);
    if (n > 0)
        memcpy(body, p, n);
    memset(&ans, 0, sizeof(ans));
    ans.transport = transport;
    ans.http_status = status;
    ans.retry_after_ms = 1234;
    CLW_FUZZ_CHECK(clw_answer_parse_body(&ans, body, n) == 0);
    CLW_FUZZ_CHECK(ans.transport == transport && ans.http_status == status &&
                   ans.retry_after_ms == 1234);
    if (!ans.body_json)
        CLW_FUZZ_CHECK(!ans.has_code && !ans.has_task_id && ans.message == NULL &&
                       ans.code_desc == NULL);
    if (ans.message != NULL)
        (void)strlen(ans.message);
    if (ans.code_desc != NULL)
        (void)strlen(ans.code_desc);

    cls = clw_classify(&ans, &why);
    CLW_FUZZ_CHECK(cls >= CLW_CLASS_SUCCESS && cls <= CLW_CLASS_WORKER_FAULT);
    CLW_FUZZ_CHECK(why != NULL && why[0] != '\0');
    CLW_FUZZ_CHECK(strcmp(clw_class_name(cls), "unknown") != 0);
    if (cls == CLW_CLASS_SUCCESS)
        CLW_FUZZ_CHECK(transport == CLW_TRANSPORT_OK && status == 200 && ans.body_json &&
                       ans.has_code && ans.code == 0);

    desc = clw_classify_transport_desc(&ans);
    /* NULL exactly when the API answered with a decodable code. */
    if (transport == CLW_TRANSPORT_OK && status == 200 && ans.body_json && ans.has_code)
        CLW_FUZZ_CHECK(desc == NULL);
    else
        CLW_FUZZ_CHECK(desc != NULL && ans_is_transport_desc(desc));

    clw_answer_free(&ans);
    free(body);
}

int clw_fuzz_answer(const uint8_t *data, size_t size)
{
    const uint8_t *rest, *nl;
    size_t rest_len;
    enum clw_transport transport;
    int64_t now;
    long status;

    if (size < 3)
        return 0;
    transport = (enum clw_transport)(data[0] % 6);
    now = ans_now[(data[0] >> 4) & 3];
    status = (long)(int16_t)(uint16_t)((unsigned)data[1] << 8 | data[2]);
    rest = data + 3;
    rest_len = size - 3;
    nl = rest_len > 0 ? memchr(rest, '\n', rest_len) : NULL;
    if (nl != NULL) {
        ans_check_retry_after(rest, (size_t)(nl - rest), now);
        rest_len -= (size_t)(nl - rest) + 1;
        rest = nl + 1;
    }
    ans_check_body(rest, rest_len, transport, status);
    /* The whole remainder as a Retry-After value too (stops at a NUL). */
    ans_check_retry_after(data + 3, size - 3, now);
    return 0;
}

#ifndef CLW_FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return clw_fuzz_answer(data, size);
}
#endif
