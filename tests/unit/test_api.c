/* Unit tests for api: the signed request of each call in both dialects (parameters, headers,
 * body, no secret on the wire, a v2 signature that matches what is sent) and answer parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clw/api.h"
#include "clw/sign.h"

#define SECRET_KEY "apiTestSecretKeyNeverOnTheWire0"
#define NOW_S      INT64_C(1700000000)

static struct clw_api *api_for(const char *const *settings)
{
    struct clw_config cfg;
    char err[256];
    assert_int_equal(clw_config_init(&cfg), 0);
    for (size_t i = 0; settings[i] != NULL; i += 2)
        if (clw_config_set(&cfg, settings[i], settings[i + 1], "-X", err, sizeof(err)) != 0)
            fail_msg("%s: %s", settings[i], err);
    if (clw_config_finalize(&cfg, err, sizeof(err)) != 0)
        fail_msg("finalize: %s", err);
    struct clw_api *api = clw_api_new(&cfg, err, sizeof(err));
    if (api == NULL)
        fail_msg("api: %s", err);
    clw_config_free(&cfg);
    return api;
}

static const char *const ids_ab[] = {"ins-a", "ins-b"};

struct build_case {
    const char *name;
    const char *settings[8]; /* key, value, ..., NULL */
    struct clw_api_call call;
    const char *token;
    const char *url_prefix;  /* the URL starts with it */
    const char *body_prefix; /* NULL: no body */
    const char *want[10];    /* each somewhere in URL, body or headers */
    const char *absent[4];   /* none of these anywhere */
};

static const char *const V2_GET[] = {NULL};
static const char *const V2_POST[] = {"api.http_method", "POST", NULL};
static const char *const V3[] = {"api.version", "3", NULL};

static const struct build_case build_cases[] = {
    {"v2 GET attach: every parameter in the query",
     {NULL},
     {CLW_API_ATTACH, "ap-guangzhou", "vpc-1", ids_ab, 2, 0, 0},
     "",
     "https://vpc.api.qcloud.com/v2/index.php?",
     NULL,
     {"Action=AttachClassicLinkVpc", "Region=ap-guangzhou", "SecretId=AKIDapi1",
      "Timestamp=1700000000", "Nonce=42", "SignatureMethod=HmacSHA256", "vpcId=vpc-1",
      "instanceIds.0=ins-a", "instanceIds.1=ins-b", "Signature="},
     {"Token=", SECRET_KEY}},
    {"v2 POST detach with a token: a form body",
     {"api.http_method", "POST"},
     {CLW_API_DETACH, "ap-shanghai", "gz_vpc_9", ids_ab, 1, 0, 0},
     "sessionToken1",
     "https://vpc.api.qcloud.com/v2/index.php",
     "",
     {"Action=DetachClassicLinkVpc", "Region=ap-shanghai", "vpcId=gz_vpc_9", "instanceIds.0=ins-a",
      "Token=sessionToken1", "Signature="},
     {"instanceIds.1", SECRET_KEY, "?"}},
    {"v2 link listing: a page of 50",
     {NULL},
     {CLW_API_LIST_LINKS, "ap-guangzhou", "vpc-1", NULL, 0, 100, 0},
     "",
     "https://vpc.api.qcloud.com/v2/index.php?",
     NULL,
     {"Action=DescribeVpcClassicLink", "vpcId=vpc-1", "offset=100", "limit=50"},
     {"instanceIds", SECRET_KEY}},
    {"v2 task result",
     {NULL},
     {CLW_API_TASK_RESULT, "ap-guangzhou", "vpc-1", NULL, 0, 0, 135254},
     "",
     "https://vpc.api.qcloud.com/v2/index.php?",
     NULL,
     {"Action=DescribeVpcTaskResult", "taskId=135254"},
     {"vpcId", SECRET_KEY}},
    {"v3 attach: JSON body, X-TC headers, TC3 authorization",
     {"api.version", "3"},
     {CLW_API_ATTACH, "ap-guangzhou", "vpc-1", ids_ab, 2, 0, 0},
     "",
     "https://vpc.tencentcloudapi.com/",
     "{\"VpcId\":\"vpc-1\",\"InstanceIds\":[\"ins-a\",\"ins-b\"]}",
     {"X-TC-Action: AttachClassicLinkVpc", "X-TC-Version: 2017-03-12", "X-TC-Region: ap-guangzhou",
      "X-TC-Timestamp: 1700000000", "Content-Type: application/json; charset=utf-8",
      "Authorization: TC3-HMAC-SHA256 Credential=AKIDapi1/2023-11-14/vpc/tc3_request, "
      "SignedHeaders=content-type;host, Signature="},
     {"X-TC-Token", SECRET_KEY}},
    {"v3 link listing with a token",
     {"api.version", "3"},
     {CLW_API_LIST_LINKS, "ap-guangzhou", "vpc-1", NULL, 0, 50, 0},
     "sessionToken2",
     "https://vpc.tencentcloudapi.com/",
     "{\"Filters\":[{\"Name\":\"vpc-id\",\"Values\":[\"vpc-1\"]}],\"Offset\":50,\"Limit\":50}",
     {"X-TC-Action: DescribeClassicLinkInstances", "X-TC-Token: sessionToken2"},
     {SECRET_KEY}},
    {"v3 task result",
     {"api.version", "3"},
     {CLW_API_TASK_RESULT, "ap-guangzhou", NULL, NULL, 0, 0, 77},
     "",
     "https://vpc.tencentcloudapi.com/",
     "{\"TaskId\":77}",
     {"X-TC-Action: DescribeVpcTaskResult"},
     {SECRET_KEY}},
};

static int in_request(const struct clw_api_request *r, const char *s)
{
    if (strstr(r->url, s) != NULL || (r->body != NULL && strstr(r->body, s) != NULL))
        return 1;
    for (size_t i = 0; r->headers != NULL && r->headers[i] != NULL; i++)
        if (strstr(r->headers[i], s) != NULL)
            return 1;
    return 0;
}

static void test_build(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(build_cases) / sizeof(build_cases[0]); i++) {
        const struct build_case *c = &build_cases[i];
        struct clw_api *api = api_for(c->settings);
        struct clw_api_creds creds = {"AKIDapi1", SECRET_KEY, c->token};
        struct clw_api_request r;
        if (clw_api_build(api, &c->call, &creds, NOW_S, 42, &r) != 0)
            fail_msg("%s: build failed", c->name);
        if (strncmp(r.url, c->url_prefix, strlen(c->url_prefix)) != 0)
            fail_msg("%s: url %s", c->name, r.url);
        if ((c->body_prefix == NULL) != (r.body == NULL) ||
            (r.body != NULL && strncmp(r.body, c->body_prefix, strlen(c->body_prefix)) != 0))
            fail_msg("%s: body %s", c->name, r.body ? r.body : "(none)");
        for (size_t k = 0; k < 10 && c->want[k] != NULL; k++)
            if (!in_request(&r, c->want[k]))
                fail_msg("%s: %s not in the request", c->name, c->want[k]);
        for (size_t k = 0; k < 4 && c->absent[k] != NULL; k++)
            if (in_request(&r, c->absent[k]))
                fail_msg("%s: %s in the request", c->name, c->absent[k]);
        clw_api_request_free(&r);
        assert_null(r.url);
        clw_api_free(api);
    }
}

/* ---- the v2 signature matches the parameters actually sent -------------------------------- */

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes %XX in place. */
static void url_decode(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (s[0] == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
            *o++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
}

static void check_v2_signature(const char *const *settings, const char *method, const char *host,
                               const char *path)
{
    struct clw_api *api = api_for(settings);
    struct clw_api_creds creds = {"AKIDapi1", SECRET_KEY, "tok"};
    struct clw_api_call call = {CLW_API_ATTACH, "ap-guangzhou", "vpc-1", ids_ab, 2, 0, 0};
    struct clw_api_request r;
    assert_int_equal(clw_api_build(api, &call, &creds, NOW_S, 7, &r), 0);
    const char *form = r.body != NULL ? r.body : strchr(r.url, '?') + 1;
    char *copy = strdup(form);
    struct clw_param params[16];
    char *signature = NULL;
    size_t n = 0;
    for (char *save = NULL, *pair = strtok_r(copy, "&", &save); pair != NULL;
         pair = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(pair, '=');
        assert_non_null(eq);
        *eq = '\0';
        url_decode(pair);
        url_decode(eq + 1);
        if (strcmp(pair, "Signature") == 0)
            signature = eq + 1;
        else
            params[n++] = (struct clw_param){pair, eq + 1};
    }
    assert_non_null(signature);
    char *sts = clw_sign_string_to_sign(method, host, path, params, n);
    char want[CLW_SIGN_B64_MAX];
    assert_int_equal(clw_sign_hmac_b64(CLW_SIGN_HMAC_SHA256, SECRET_KEY, strlen(SECRET_KEY), sts,
                                       strlen(sts), want),
                     0);
    assert_string_equal(signature, want);
    free(sts);
    free(copy);
    clw_api_request_free(&r);
    clw_api_free(api);
}

static void test_v2_signature_matches_what_is_sent(void **state)
{
    static const char *const loopback[] = {"api.endpoint", "http://127.0.0.1:8480/v2/index.php",
                                           NULL};
    (void)state;
    check_v2_signature(V2_GET, "GET", "vpc.api.qcloud.com", "/v2/index.php");
    check_v2_signature(V2_POST, "POST", "vpc.api.qcloud.com", "/v2/index.php");
    /* the host is signed without its port */
    check_v2_signature(loopback, "GET", "127.0.0.1", "/v2/index.php");
}

/* ---- answers ------------------------------------------------------------------------------- */

static void test_parse(void **state)
{
    static const char v2_ok[] = "{\"code\":0,\"message\":\"\",\"taskId\":5}";
    static const char v3_err[] = "{\"Response\":{\"Error\":{\"Code\":\"ResourceNotFound\","
                                 "\"Message\":\"VPC vpc-1\"},\"RequestId\":\"rid-1\"}}";
    struct clw_api *v2 = api_for(V2_GET);
    struct clw_api *v3 = api_for(V3);
    struct clw_answer a;
    (void)state;

    memset(&a, 0, sizeof(a));
    assert_int_equal(clw_api_parse(v2, CLW_TRANSPORT_OK, 200, v2_ok, strlen(v2_ok), -1, &a), 0);
    assert_int_equal(a.api_version, 2);
    assert_true(a.has_code && a.code == 0 && a.has_task_id && a.task_id == 5);
    clw_answer_free(&a);

    /* not a 200: the body is not read, the status is kept */
    assert_int_equal(clw_api_parse(v2, CLW_TRANSPORT_OK, 503, v2_ok, strlen(v2_ok), 2000, &a), 0);
    assert_int_equal(a.http_status, 503);
    assert_false(a.has_code);
    assert_int_equal(a.retry_after_ms, 2000);
    clw_answer_free(&a);

    assert_int_equal(clw_api_parse(v2, CLW_TRANSPORT_TIMEOUT, 0, NULL, 0, -1, &a), 0);
    assert_int_equal(a.transport, CLW_TRANSPORT_TIMEOUT);
    assert_false(a.body_json);
    clw_answer_free(&a);

    assert_int_equal(clw_api_parse(v3, CLW_TRANSPORT_OK, 200, v3_err, strlen(v3_err), -1, &a), 0);
    assert_int_equal(a.api_version, 3);
    assert_string_equal(a.code_desc, "ResourceNotFound");
    assert_string_equal(a.request_id, "rid-1");
    clw_answer_free(&a);

    assert_string_equal(clw_api_action(v2, CLW_API_LIST_LINKS), "DescribeVpcClassicLink");
    assert_string_equal(clw_api_action(v3, CLW_API_LIST_LINKS), "DescribeClassicLinkInstances");
    assert_string_equal(clw_api_host(v3), "vpc.tencentcloudapi.com");
    assert_true(clw_api_https(v2));
    clw_api_free(v2);
    clw_api_free(v3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_v2_signature_matches_what_is_sent),
        cmocka_unit_test(test_parse),
    };
    return cmocka_run_group_tests_name("api", tests, NULL, NULL);
}
