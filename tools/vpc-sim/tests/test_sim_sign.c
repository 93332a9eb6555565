/* vpc-sim unit tests: the simulator's own v2 verifier against every known-answer vector. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sim_params.h"
#include "sim_sign.h"

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

/* Percent-encodes everything outside [A-Za-z0-9-_.~], as a client would. */
static void url_encode(const char *s, char *out, size_t outsz)
{
    size_t o = 0;

    for (; *s != '\0' && o + 4 < outsz; s++) {
        unsigned char c = (unsigned char)*s;

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, outsz - o, "%%%02X", c);
    }
    out[o] = '\0';
}

static void check_vector(const cJSON *vec)
{
    const char *name = cJSON_GetObjectItem(vec, "name")->valuestring;
    const char *key = cJSON_GetObjectItem(vec, "secretKey")->valuestring;
    const char *method = cJSON_GetObjectItem(vec, "method")->valuestring;
    const char *host = cJSON_GetObjectItem(vec, "host")->valuestring;
    const char *path = cJSON_GetObjectItem(vec, "path")->valuestring;
    const char *algorithm = cJSON_GetObjectItem(vec, "algorithm")->valuestring;
    const char *signature = cJSON_GetObjectItem(vec, "signature")->valuestring;
    const cJSON *sts_item = cJSON_GetObjectItem(vec, "stringToSign");
    const cJSON *prm;
    struct clw_sim_params params = {0};
    struct clw_sim_params wire = {0};
    char query[4096] = "";
    char enc[512];
    char sig[CLW_SIM_SIG_MAX];
    enum clw_sim_hmac hmac;
    char *sts;

    cJSON_ArrayForEach(prm, cJSON_GetObjectItem(vec, "params"))
    {
        assert_int_equal(clw_sim_params_add(&params, prm->string, prm->valuestring),
                         CLW_SIM_PARAMS_OK);
        url_encode(prm->valuestring, enc, sizeof(enc));
        snprintf(query + strlen(query), sizeof(query) - strlen(query), "%s=%s&", prm->string, enc);
    }
    hmac = clw_sim_sign_hmac_for(clw_sim_params_get(&params, "SignatureMethod"));
    assert_int_equal(hmac, strcmp(algorithm, "HmacSHA256") == 0 ? CLW_SIM_HMAC_SHA256
                                                                : CLW_SIM_HMAC_SHA1);

    sts = clw_sim_sign_string(method, host, path, &params);
    assert_non_null(sts);
    if (cJSON_IsString(sts_item))
        assert_string_equal(sts, sts_item->valuestring);
    assert_int_equal(clw_sim_sign_hmac(hmac, key, sts, sig), 0);
    if (strcmp(sig, signature) != 0)
        fail_msg("%s: got %s, want %s", name, sig, signature);
    free(sts);

    /* Verification from decoded parameters, and a wrong key or a changed value fail. */
    assert_int_equal(clw_sim_params_add(&params, "Signature", signature), CLW_SIM_PARAMS_OK);
    assert_true(clw_sim_sign_verify(method, host, path, &params, key));
    assert_false(clw_sim_sign_verify(method, host, path, &params, "wrong-key"));
    assert_false(
        clw_sim_sign_verify(strcmp(method, "GET") == 0 ? "POST" : "GET", host, path, &params, key));

    /* The same request as it arrives on the wire: URL-encoded, signature too. */
    url_encode(signature, enc, sizeof(enc));
    if (cJSON_IsString(cJSON_GetObjectItem(vec, "signatureUrlEncoded")))
        assert_string_equal(enc, cJSON_GetObjectItem(vec, "signatureUrlEncoded")->valuestring);
    snprintf(query + strlen(query), sizeof(query) - strlen(query), "Signature=%s", enc);
    assert_int_equal(clw_sim_params_parse(&wire, query, strlen(query)), CLW_SIM_PARAMS_OK);
    assert_true(clw_sim_sign_verify(method, host, path, &wire, key));

    clw_sim_params_free(&params);
    clw_sim_params_free(&wire);
}

static void test_all_v2_vectors(void **state)
{
    cJSON *doc = load_vectors();
    const cJSON *vec;
    int n = 0;

    (void)state;
    assert_non_null(doc);
    cJSON_ArrayForEach(vec, cJSON_GetObjectItem(doc, "v2"))
    {
        check_vector(vec);
        n++;
    }
    assert_int_equal(n, cJSON_GetArraySize(cJSON_GetObjectItem(doc, "v2")));
    assert_true(n >= 8);
    cJSON_Delete(doc);
}

struct sts_case {
    const char *name;
    const char *method;
    const char *query; /* as on the wire */
    const char *expected;
};

static const struct sts_case sts_cases[] = {
    {"underscore names become dots", "GET", "instanceIds_0=ins-1&Action=A",
     "GEThost/v2/index.php?Action=A&instanceIds.0=ins-1"},
    {"byte order: capitals first, 10 before 2", "POST",
     "instanceIds.2=b&instanceIds.10=a&Timestamp=1&Nonce=2",
     "POSThost/v2/index.php?Nonce=2&Timestamp=1&instanceIds.10=a&instanceIds.2=b"},
    {"signature is left out", "GET", "B=2&Signature=abc%3D&A=1", "GEThost/v2/index.php?A=1&B=2"},
    {"values are raw, not encoded", "GET", "v=a%2Fb%2Bc%3Dd+e", "GEThost/v2/index.php?v=a/b+c=d e"},
    {"empty value", "GET", "A=&B", "GEThost/v2/index.php?A=&B="},
};

static void test_string_to_sign_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(sts_cases) / sizeof(sts_cases[0]); i++) {
        const struct sts_case *c = &sts_cases[i];
        struct clw_sim_params params = {0};
        char *sts;

        assert_int_equal(clw_sim_params_parse(&params, c->query, strlen(c->query)),
                         CLW_SIM_PARAMS_OK);
        sts = clw_sim_sign_string(c->method, "host", "/v2/index.php", &params);
        if (sts == NULL || strcmp(sts, c->expected) != 0)
            fail_msg("%s: got %s", c->name, sts != NULL ? sts : "(null)");
        free(sts);
        clw_sim_params_free(&params);
    }
}

struct method_case {
    const char *signature_method;
    enum clw_sim_hmac expected;
};

static const struct method_case method_cases[] = {
    {"HmacSHA256", CLW_SIM_HMAC_SHA256},
    {"HmacSHA1", CLW_SIM_HMAC_SHA1},
    {NULL, CLW_SIM_HMAC_SHA1},
    {"hmacsha256", CLW_SIM_HMAC_SHA1},
    {"TC3-HMAC-SHA256", CLW_SIM_HMAC_SHA1},
};

static void test_signature_method_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(method_cases) / sizeof(method_cases[0]); i++)
        assert_int_equal(clw_sim_sign_hmac_for(method_cases[i].signature_method),
                         method_cases[i].expected);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_v2_vectors),
        cmocka_unit_test(test_string_to_sign_table),
        cmocka_unit_test(test_signature_method_table),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
