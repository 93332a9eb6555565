/* vpc-sim unit tests: the simulator's own TC3-HMAC-SHA256 verifier against the tc3 vectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sim_tc3.h"

static cJSON *load_vectors(void)
{
    FILE *fp = fopen(SIM_TEST_DATA "/signing-vectors.json", "rb");
    static char text[1 << 16];
    size_t len;

    assert_non_null(fp);
    len = fread(text, 1, sizeof(text) - 1, fp);
    fclose(fp);
    text[len] = '\0';
    return cJSON_Parse(text);
}

static const char *str(const cJSON *vec, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(vec, key);

    if (!cJSON_IsString(item))
        fail_msg("vector member %s missing", key);
    return item->valuestring;
}

/* Every step of the algorithm for one vector, and the Authorization header both ways. */
static void check_vector(const cJSON *vec)
{
    const char *name = str(vec, "name");
    const char *payload = str(vec, "payload");
    const char *date = str(vec, "date");
    const char *service = str(vec, "service");
    const cJSON *ts_item = cJSON_GetObjectItemCaseSensitive(vec, "timestamp");
    char timestamp[32];
    char headers[512] = "";
    char hashed[CLW_SIM_TC3_HEX];
    char sig[CLW_SIM_TC3_HEX];
    char day[16];
    char authorization[1024];
    struct clw_sim_tc3_auth auth;
    char *creq;
    char *sts;

    assert_true(cJSON_IsNumber(ts_item));
    snprintf(timestamp, sizeof(timestamp), "%.0f", ts_item->valuedouble);
    clw_sim_tc3_date((int64_t)ts_item->valuedouble, day, sizeof(day));
    assert_string_equal(day, date);

    clw_sim_tc3_sha256_hex(payload, strlen(payload), hashed);
    if (strcmp(hashed, str(vec, "hashedPayload")) != 0)
        fail_msg("%s: payload hash %s", name, hashed);

    assert_int_equal(
        clw_sim_tc3_add_header(headers, sizeof(headers), "content-type", str(vec, "contentType")),
        0);
    assert_int_equal(clw_sim_tc3_add_header(headers, sizeof(headers), "host", str(vec, "host")), 0);
    creq = clw_sim_tc3_canonical_request(str(vec, "method"), headers, "content-type;host", hashed);
    assert_non_null(creq);
    clw_sim_tc3_sha256_hex(creq, strlen(creq), hashed);
    if (strcmp(hashed, str(vec, "hashedCanonicalRequest")) != 0)
        fail_msg("%s: canonical request hash %s for\n%s", name, hashed, creq);

    sts = clw_sim_tc3_string_to_sign(timestamp, date, service, creq);
    assert_non_null(sts);
    assert_int_equal(clw_sim_tc3_sign(str(vec, "secretKey"), date, service, sts, sig), 0);
    if (strcmp(sig, str(vec, "signature")) != 0)
        fail_msg("%s: signature %s, want %s", name, sig, str(vec, "signature"));
    assert_true(clw_sim_tc3_equal(sig, str(vec, "signature")));

    /* A wrong key, date or service gives another signature. */
    assert_int_equal(clw_sim_tc3_sign("wrong-key", date, service, sts, sig), 0);
    assert_false(clw_sim_tc3_equal(sig, str(vec, "signature")));
    assert_int_equal(clw_sim_tc3_sign(str(vec, "secretKey"), "2000-01-01", service, sts, sig), 0);
    assert_false(clw_sim_tc3_equal(sig, str(vec, "signature")));
    assert_int_equal(clw_sim_tc3_sign(str(vec, "secretKey"), date, "vpc-x", sts, sig), 0);
    assert_false(clw_sim_tc3_equal(sig, str(vec, "signature")));

    /* The published Authorization header parses into the parts that made it. */
    assert_int_equal(clw_sim_tc3_parse_auth(str(vec, "authorization"), &auth), 0);
    assert_string_equal(auth.secret_id, str(vec, "secretId"));
    assert_string_equal(auth.date, date);
    assert_string_equal(auth.service, service);
    assert_string_equal(auth.signed_headers, "content-type;host");
    assert_string_equal(auth.signature, str(vec, "signature"));
    snprintf(authorization, sizeof(authorization),
             "TC3-HMAC-SHA256 Credential=%s/%s/%s/tc3_request, SignedHeaders=%s, Signature=%s",
             auth.secret_id, auth.date, auth.service, auth.signed_headers, auth.signature);
    assert_string_equal(authorization, str(vec, "authorization"));

    free(creq);
    free(sts);
}

static void test_all_tc3_vectors(void **state)
{
    cJSON *doc = load_vectors();
    const cJSON *vec;
    int n = 0;

    (void)state;
    assert_non_null(doc);
    cJSON_ArrayForEach(vec, cJSON_GetObjectItemCaseSensitive(doc, "tc3"))
    {
        check_vector(vec);
        n++;
    }
    if (n == 0)
        fail_msg("no tc3 vector in signing-vectors.json");
    cJSON_Delete(doc);
}

#define SIG64 "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"

struct auth_case {
    const char *name;
    const char *header;
    int rc;
    const char *secret_id; /* when rc == 0 */
    const char *service;
    const char *signed_headers;
};

static const struct auth_case auth_cases[] = {
    {"canonical spelling",
     "TC3-HMAC-SHA256 Credential=AKID1/2024-01-02/vpc/tc3_request, "
     "SignedHeaders=content-type;host, Signature=" SIG64,
     0, "AKID1", "vpc", "content-type;host"},
    {"no blanks after commas, other order",
     "TC3-HMAC-SHA256 Signature=" SIG64 ",SignedHeaders=content-type;host;x-tc-action,"
     "Credential=AKID2/2024-01-02/cvm/tc3_request",
     0, "AKID2", "cvm", "content-type;host;x-tc-action"},
    {"other algorithm",
     "HMAC-SHA256 Credential=AKID1/2024-01-02/vpc/tc3_request, SignedHeaders=host, "
     "Signature=" SIG64,
     -1, NULL, NULL, NULL},
    {"algorithm without a blank", "TC3-HMAC-SHA256Credential=AKID1/2024-01-02/vpc/tc3_request", -1,
     NULL, NULL, NULL},
    {"missing signature",
     "TC3-HMAC-SHA256 Credential=AKID1/2024-01-02/vpc/tc3_request, SignedHeaders=host", -1, NULL,
     NULL, NULL},
    {"short signature",
     "TC3-HMAC-SHA256 Credential=AKID1/2024-01-02/vpc/tc3_request, SignedHeaders=host, "
     "Signature=abcdef",
     -1, NULL, NULL, NULL},
    {"signature not hex",
     "TC3-HMAC-SHA256 Credential=AKID1/2024-01-02/vpc/tc3_request, SignedHeaders=host, "
     "Signature=zz94ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168",
     -1, NULL, NULL, NULL},
    {"scope not tc3_request",
     "TC3-HMAC-SHA256 Credential=AKID1/2024-01-02/vpc/aws4_request, SignedHeaders=host, "
     "Signature=" SIG64,
     -1, NULL, NULL, NULL},
    {"credential with three parts",
     "TC3-HMAC-SHA256 Credential=AKID1/2024-01-02/tc3_request, SignedHeaders=host, "
     "Signature=" SIG64,
     -1, NULL, NULL, NULL},
    {"bad date",
     "TC3-HMAC-SHA256 Credential=AKID1/20240102/vpc/tc3_request, SignedHeaders=host, "
     "Signature=" SIG64,
     -1, NULL, NULL, NULL},
    {"empty secret id",
     "TC3-HMAC-SHA256 Credential=/2024-01-02/vpc/tc3_request, SignedHeaders=host, "
     "Signature=" SIG64,
     -1, NULL, NULL, NULL},
    {"part repeated",
     "TC3-HMAC-SHA256 Credential=AKID1/2024-01-02/vpc/tc3_request, SignedHeaders=host, "
     "SignedHeaders=host, Signature=" SIG64,
     -1, NULL, NULL, NULL},
    {"unknown part",
     "TC3-HMAC-SHA256 Credential=AKID1/2024-01-02/vpc/tc3_request, SignedHeaders=host, "
     "Region=gz, Signature=" SIG64,
     -1, NULL, NULL, NULL},
    {"empty", "", -1, NULL, NULL, NULL},
};

static void test_parse_auth_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(auth_cases) / sizeof(auth_cases[0]); i++) {
        const struct auth_case *c = &auth_cases[i];
        struct clw_sim_tc3_auth auth;
        int rc = clw_sim_tc3_parse_auth(c->header, &auth);

        if (rc != c->rc)
            fail_msg("%s: rc=%d, want %d", c->name, rc, c->rc);
        if (rc != 0)
            continue;
        assert_string_equal(auth.secret_id, c->secret_id);
        assert_string_equal(auth.service, c->service);
        assert_string_equal(auth.signed_headers, c->signed_headers);
        assert_string_equal(auth.date, "2024-01-02");
        assert_string_equal(auth.signature, SIG64);
    }
    assert_int_equal(clw_sim_tc3_parse_auth(NULL, &(struct clw_sim_tc3_auth){0}), -1);
}

struct header_case {
    const char *name;
    const char *value;
    const char *expected;
};

static const struct header_case header_cases[] = {
    {"content-type", "application/json; charset=utf-8",
     "content-type:application/json; "
     "charset=utf-8\n"},
    {"Host", "  VPC.TencentCloudAPI.com\t", "host:vpc.tencentcloudapi.com\n"},
    {"x-tc-action", "AttachClassicLinkVpc", "x-tc-action:attachclassiclinkvpc\n"},
    {"host", "", "host:\n"},
};

static void test_canonical_header_table(void **state)
{
    char small[8] = "";

    (void)state;
    for (size_t i = 0; i < sizeof(header_cases) / sizeof(header_cases[0]); i++) {
        char out[128] = "";

        assert_int_equal(
            clw_sim_tc3_add_header(out, sizeof(out), header_cases[i].name, header_cases[i].value),
            0);
        assert_string_equal(out, header_cases[i].expected);
    }
    assert_int_equal(clw_sim_tc3_add_header(small, sizeof(small), "content-type", "x"), -1);
    assert_string_equal(small, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_tc3_vectors),
        cmocka_unit_test(test_parse_auth_table),
        cmocka_unit_test(test_canonical_header_table),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
