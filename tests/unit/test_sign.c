/* Unit tests for sign: v2 and TC3 known-answer vectors from tests/data, URL encoding, sort order,
 * HMAC, TC3 canonical form and input checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "clw/sign.h"

#ifndef CLW_TEST_DATA
#error "CLW_TEST_DATA must name the tests/data directory"
#endif

#define MAX_PARAMS 16

/* ---- known-answer vectors ---------------------------------------------------------------- */

static char *read_file(const char *path)
{
    FILE *f = NULL;
    char *data = NULL;
    long size;

    f = fopen(path, "rb");
    if (f == NULL)
        goto fail;
    if (fseek(f, 0, SEEK_END) != 0)
        goto fail;
    size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto fail;
    data = malloc((size_t)size + 1);
    if (data == NULL)
        goto fail;
    if (fread(data, 1, (size_t)size, f) != (size_t)size)
        goto fail;
    data[size] = '\0';
    fclose(f);
    return data;
fail:
    free(data);
    if (f != NULL)
        fclose(f);
    return NULL;
}

static const char *json_str(const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

    return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* Checks one v2 vector: string to sign (when given), signature, URL-encoded signature (when
 * given), and the tail of the signed query. */
static void check_v2_vector(const cJSON *vec)
{
    const char *name = json_str(vec, "name");
    const char *key = json_str(vec, "secretKey");
    const char *method = json_str(vec, "method");
    const char *host = json_str(vec, "host");
    const char *path = json_str(vec, "path");
    const char *algorithm = json_str(vec, "algorithm");
    const char *want_sts = json_str(vec, "stringToSign");
    const char *want_sig = json_str(vec, "signature");
    const char *want_enc = json_str(vec, "signatureUrlEncoded");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(vec, "params");
    const cJSON *p;
    struct clw_param list[MAX_PARAMS];
    enum clw_sign_method sm = CLW_SIGN_HMAC_SHA256;
    size_t n = 0;
    char sig[CLW_SIGN_B64_MAX];
    char *sts;
    char *enc;
    char *query;
    char *tail;

    if (name == NULL || key == NULL || method == NULL || host == NULL || path == NULL ||
        algorithm == NULL || want_sig == NULL || !cJSON_IsObject(params))
        fail_msg("vector %s: missing a required field", name ? name : "(unnamed)");
    if (strcmp(algorithm, "HmacSHA256") == 0)
        sm = CLW_SIGN_HMAC_SHA256;
    else if (strcmp(algorithm, "HmacSHA1") == 0)
        sm = CLW_SIGN_HMAC_SHA1;
    else
        fail_msg("vector %s: unknown algorithm %s", name, algorithm);

    cJSON_ArrayForEach(p, params)
    {
        if (n == MAX_PARAMS || !cJSON_IsString(p))
            fail_msg("vector %s: too many or non-string params", name);
        list[n].name = p->string;
        list[n].value = p->valuestring;
        n++;
    }

    sts = clw_sign_string_to_sign(method, host, path, list, n);
    assert_non_null(sts);
    if (want_sts != NULL && strcmp(sts, want_sts) != 0)
        fail_msg("vector %s: string to sign\n got  %s\n want %s", name, sts, want_sts);

    assert_int_equal(clw_sign_hmac_b64(sm, key, strlen(key), sts, strlen(sts), sig), 0);
    if (strcmp(sig, want_sig) != 0)
        fail_msg("vector %s: signature got %s want %s", name, sig, want_sig);

    enc = clw_url_encode(sig);
    assert_non_null(enc);
    if (want_enc != NULL && strcmp(enc, want_enc) != 0)
        fail_msg("vector %s: encoded signature got %s want %s", name, enc, want_enc);

    query = clw_sign_v2_query(sm, method, host, path, list, n, key);
    assert_non_null(query);
    tail = strstr(query, "Signature=");
    if (tail == NULL || strcmp(tail + strlen("Signature="), enc) != 0 ||
        (tail != query && tail[-1] != '&'))
        fail_msg("vector %s: query does not end with Signature=%s: %s", name, enc, query);

    free(query);
    free(enc);
    free(sts);
}

static void test_signing_vectors(void **state)
{
    char *text;
    cJSON *root;
    const cJSON *v2;
    const cJSON *vec;
    int count = 0;

    (void)state;
    text = read_file(CLW_TEST_DATA "/signing-vectors.json");
    if (text == NULL)
        fail_msg("cannot read %s", CLW_TEST_DATA "/signing-vectors.json");
    root = cJSON_Parse(text);
    assert_non_null(root);
    v2 = cJSON_GetObjectItemCaseSensitive(root, "v2");
    assert_true(cJSON_IsArray(v2));
    cJSON_ArrayForEach(vec, v2)
    {
        check_v2_vector(vec);
        count++;
    }
    if (count == 0)
        fail_msg("no v2 vectors in %s", CLW_TEST_DATA "/signing-vectors.json");
    print_message("checked %d v2 signing vectors\n", count);
    cJSON_Delete(root);
    free(text);
}

/* ---- TC3-HMAC-SHA256 (API 3.0) ------------------------------------------------------------ */

/* Signature from an Authorization value: the text after ", Signature=". */
static const char *tc3_signature_of(const char *auth)
{
    const char *p = strstr(auth, ", Signature=");

    return p != NULL ? p + strlen(", Signature=") : NULL;
}

/* Checks one tc3 vector: hashed payload, hashed canonical request, signature and the whole
 * Authorization value. The vectors sign "POST /" with an empty query unless they say
 * otherwise. */
static void check_tc3_vector(const cJSON *vec)
{
    const char *name = json_str(vec, "name");
    const char *path = json_str(vec, "path");
    const char *query = json_str(vec, "query");
    const char *payload = json_str(vec, "payload");
    const char *want_hp = json_str(vec, "hashedPayload");
    const char *want_hc = json_str(vec, "hashedCanonicalRequest");
    const char *want_sig = json_str(vec, "signature");
    const char *want_auth = json_str(vec, "authorization");
    const char *want_date = json_str(vec, "date");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(vec, "timestamp");
    struct clw_tc3_input in;
    char hp[65];
    char hc[65];
    char *auth;
    const char *sig;

    memset(&in, 0, sizeof(in));
    in.secret_id = json_str(vec, "secretId");
    in.secret_key = json_str(vec, "secretKey");
    in.service = json_str(vec, "service");
    in.host = json_str(vec, "host");
    in.method = json_str(vec, "method");
    in.content_type = json_str(vec, "contentType");
    in.path = path != NULL ? path : "/";
    in.query = query != NULL ? query : "";
    if (name == NULL || in.secret_id == NULL || in.secret_key == NULL || in.service == NULL ||
        in.host == NULL || in.method == NULL || in.content_type == NULL || payload == NULL ||
        want_hp == NULL || want_hc == NULL || want_sig == NULL || want_auth == NULL ||
        !cJSON_IsNumber(ts))
        fail_msg("tc3 vector %s: missing a required field", name ? name : "(unnamed)");
    in.payload = payload;
    in.payload_len = strlen(payload);
    in.timestamp = (int64_t)ts->valuedouble;

    memset(hp, 'x', sizeof(hp));
    memset(hc, 'x', sizeof(hc));
    auth = clw_sign_tc3_authorization(&in, hp, hc);
    if (auth == NULL)
        fail_msg("tc3 vector %s: NULL", name);
    if (strcmp(hp, want_hp) != 0)
        fail_msg("tc3 vector %s: hashed payload\n got  %s\n want %s", name, hp, want_hp);
    if (strcmp(hc, want_hc) != 0)
        fail_msg("tc3 vector %s: hashed canonical request\n got  %s\n want %s", name, hc, want_hc);
    sig = tc3_signature_of(auth);
    if (sig == NULL || strcmp(sig, want_sig) != 0)
        fail_msg("tc3 vector %s: signature\n got  %s\n want %s", name, sig ? sig : "(none)",
                 want_sig);
    if (strcmp(auth, want_auth) != 0)
        fail_msg("tc3 vector %s: authorization\n got  %s\n want %s", name, auth, want_auth);
    if (want_date != NULL && strstr(auth, want_date) == NULL)
        fail_msg("tc3 vector %s: credential date is not %s: %s", name, want_date, auth);
    /* The hash outputs are optional. */
    free(auth);
    auth = clw_sign_tc3_authorization(&in, NULL, NULL);
    assert_non_null(auth);
    assert_string_equal(auth, want_auth);
    free(auth);
}

static void test_tc3_vectors(void **state)
{
    char *text;
    cJSON *root;
    const cJSON *list;
    const cJSON *vec;
    int count = 0;

    (void)state;
    text = read_file(CLW_TEST_DATA "/signing-vectors.json");
    if (text == NULL)
        fail_msg("cannot read %s", CLW_TEST_DATA "/signing-vectors.json");
    root = cJSON_Parse(text);
    assert_non_null(root);
    list = cJSON_GetObjectItemCaseSensitive(root, "tc3");
    if (!cJSON_IsArray(list))
        fail_msg("no tc3 list in %s", CLW_TEST_DATA "/signing-vectors.json");
    cJSON_ArrayForEach(vec, list)
    {
        check_tc3_vector(vec);
        count++;
    }
    if (count == 0)
        fail_msg("no tc3 vectors in %s", CLW_TEST_DATA "/signing-vectors.json");
    print_message("checked %d tc3 signing vectors\n", count);
    cJSON_Delete(root);
    free(text);
}

/* Derived cases: the expected values were computed with an independent implementation
 * (Python hashlib/hmac) of the published algorithm, for SecretId "AKIDexample", SecretKey
 * "secretExample", service "vpc". Header values are lower-cased and trimmed. */
struct tc3_case {
    const char *name;
    const char *method;
    const char *host;
    const char *path;
    const char *query;
    const char *content_type;
    const char *payload;
    size_t payload_len;
    int64_t timestamp;
    const char *date;
    const char *hashed_payload;
    const char *hashed_canonical;
    const char *signature;
};

static const struct tc3_case tc3_cases[] = {
    {"attach vpc", "POST", "vpc.tencentcloudapi.com", "/", "", "application/json; charset=utf-8",
     "{\"VpcId\":\"vpc-2ari9m7h\",\"InstanceIds\":[\"ins-df454d\"]}", 53, 1700000000LL,
     "2023-11-14", "840b69586bee505699ecee7fd583b7c2468e7c21772c570fa32c1d7a8068e3e2",
     "471919f5024b7dfd61897cf6f17228933cbdcdb62b22d4acf095a5e8d21ae979",
     "00bdb4c32e1836d19aa77a81c2e5438f1f48c980869be61f0ddf3852127c6919"},
    {"last second of a UTC day", "POST", "vpc.tencentcloudapi.com", "/", "",
     "application/json; charset=utf-8", "{}", 2, 1551139199LL, "2019-02-25",
     "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
     "b2859081bcb09014f2b02afc1acc1d623b9046a294f8f0675f2564f9c82f1591",
     "34f33f912dbfc6c6ca936d6c5a70a35e47a2e43cf2360ffd0a02c0bf0c872267"},
    {"first second of the next UTC day", "POST", "vpc.tencentcloudapi.com", "/", "",
     "application/json; charset=utf-8", "{}", 2, 1551139200LL, "2019-02-26",
     "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
     "b2859081bcb09014f2b02afc1acc1d623b9046a294f8f0675f2564f9c82f1591",
     "221eae8504bca5287899f1b698d40748a495bac2be26fe869313eeae4cad330c"},
    {"leap day", "POST", "vpc.tencentcloudapi.com", "/", "", "application/json; charset=utf-8",
     "{}", 2, 1709208000LL, "2024-02-29",
     "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
     "b2859081bcb09014f2b02afc1acc1d623b9046a294f8f0675f2564f9c82f1591",
     "0d0ebcd77e7e26c45beb5349a7a640bdc378dfe0d88f9c14180e2d970833030d"},
    {"epoch", "POST", "vpc.tencentcloudapi.com", "/", "", "application/json; charset=utf-8", "{}",
     2, 0LL, "1970-01-01", "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
     "b2859081bcb09014f2b02afc1acc1d623b9046a294f8f0675f2564f9c82f1591",
     "a40769ba4594f0cee30c35fd7eeb888de0512ab922ba0dc645aaab612c896061"},
    {"year 9999", "POST", "vpc.tencentcloudapi.com", "/", "", "application/json", "{}", 2,
     253402300799LL, "9999-12-31",
     "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
     "47fe372f9e0d2c27d5a005c0b50459dee3e6ac0f36778066e951f132d98f3931",
     "1ab52b521f11dda9981e73c0fe389e3b1bd5e4ee339e1744f7ede1bdfaa3f844"},
    {"empty payload", "POST", "vpc.tencentcloudapi.com", "/", "", "application/json; charset=utf-8",
     "", 0, 1700000000LL, "2023-11-14",
     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "6f8f3cc6c760e35843cff625a0fa5e78eaa7b8cc592ecd5b9c1fee3c9749f732",
     "42e49b78c35bdfd2698b31bdc5a82ffae2c8fa8cb43e45e1a3e097d726e27eb7"},
    {"GET with a query", "GET", "vpc.tencentcloudapi.com", "/", "Limit=10&Offset=0",
     "application/x-www-form-urlencoded", "", 0, 1700000000LL, "2023-11-14",
     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "7a6c30180b1239130762352c87cce56bb4e145d179e6003bff9d7297800bb42a",
     "f153d0c04ec98ecdaba3ecc04cfc014ed03d3a3043b1f81f75ad853be7f1cd73"},
    {"payload with a NUL byte", "POST", "vpc.tencentcloudapi.com", "/", "", "application/json",
     "{\"a\":\"\0\"}", 9, 1700000000LL, "2023-11-14",
     "9a2f4cf56dc34833b5da618c36e2c26638bf608575beca6a802438ff4ce21f8b",
     "dd227fe8f7a4715007ebf49899bd011bf473d5aecf674bff859e500c931080e1",
     "8ecd1e17307eb1346eecb185d3f525acf5b99959a815d0c9d9e1ea6417208846"},
    {"upper-case host and content type", "POST", "VPC.TencentCloudAPI.com", "/", "",
     "Application/JSON; charset=UTF-8", "{}", 2, 1700000000LL, "2023-11-14",
     "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
     "b2859081bcb09014f2b02afc1acc1d623b9046a294f8f0675f2564f9c82f1591",
     "5634df8a32baf40ff9769b90628462c95ad106d167d0564b5313b1e91b2f6d7d"},
    {"spaces around header values", "POST", " vpc.tencentcloudapi.com\t", "/", "",
     "  application/json; charset=utf-8 ", "{}", 2, 1700000000LL, "2023-11-14",
     "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
     "b2859081bcb09014f2b02afc1acc1d623b9046a294f8f0675f2564f9c82f1591",
     "5634df8a32baf40ff9769b90628462c95ad106d167d0564b5313b1e91b2f6d7d"},
};

static void test_tc3_table(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(tc3_cases) / sizeof(tc3_cases[0]); i++) {
        const struct tc3_case *c = &tc3_cases[i];
        struct clw_tc3_input in = {"AKIDexample", "secretExample", "vpc",       c->host,
                                   c->method,     c->path,         c->query,    c->content_type,
                                   c->payload,    c->payload_len,  c->timestamp};
        char want_auth[256];
        char hp[65];
        char hc[65];
        char *auth = clw_sign_tc3_authorization(&in, hp, hc);

        if (auth == NULL)
            fail_msg("case %s: NULL", c->name);
        if (strcmp(hp, c->hashed_payload) != 0)
            fail_msg("case %s: hashed payload %s want %s", c->name, hp, c->hashed_payload);
        if (strcmp(hc, c->hashed_canonical) != 0)
            fail_msg("case %s: hashed canonical %s want %s", c->name, hc, c->hashed_canonical);
        snprintf(want_auth, sizeof(want_auth),
                 "TC3-HMAC-SHA256 Credential=AKIDexample/%s/vpc/tc3_request, "
                 "SignedHeaders=content-type;host, Signature=%s",
                 c->date, c->signature);
        if (strcmp(auth, want_auth) != 0)
            fail_msg("case %s:\n got  %s\n want %s", c->name, auth, want_auth);
        free(auth);
    }
}

/* A different key, id, service, payload, method, query or second changes the value. */
static void test_tc3_sensitivity(void **state)
{
    static const char body[] = "{\"VpcId\":\"vpc-1\"}";
    const struct clw_tc3_input base = {"AKIDa",   "key",
                                       "vpc",     "vpc.tencentcloudapi.com",
                                       "POST",    "/",
                                       "",        "application/json",
                                       body,      sizeof(body) - 1,
                                       1700000000};
    struct clw_tc3_input in;
    char *want = clw_sign_tc3_authorization(&base, NULL, NULL);
    char *got;
    int k;

    (void)state;
    assert_non_null(want);
    for (k = 0; k < 8; k++) {
        in = base;
        switch (k) {
        case 0:
            in.secret_key = "kex";
            break;
        case 1:
            in.service = "cvm";
            break;
        case 2:
            in.payload_len--;
            break;
        case 3:
            in.method = "GET";
            break;
        case 4:
            in.query = "a=1";
            break;
        case 5:
            in.timestamp++;
            break;
        case 6:
            in.path = "/x";
            break;
        default:
            in.content_type = "application/json; charset=utf-8";
            break;
        }
        got = clw_sign_tc3_authorization(&in, NULL, NULL);
        assert_non_null(got);
        if (strcmp(tc3_signature_of(got), tc3_signature_of(want)) == 0)
            fail_msg("variant %d does not change the signature", k);
        free(got);
    }
    /* A NULL query is the empty query. */
    in = base;
    in.query = NULL;
    got = clw_sign_tc3_authorization(&in, NULL, NULL);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
    free(want);
}

/* Missing fields, line breaks that would forge canonical lines, and timestamps outside the
 * four-digit years give NULL (and empty hash outputs). */
static void test_tc3_bad_input(void **state)
{
    const struct clw_tc3_input base = {
        "AKIDa", "key", "vpc", "h", "POST", "/", "", "application/json", "{}", 2, 1700000000};
    struct clw_tc3_input in;
    char hp[65];
    char hc[65];
    char *got;
    int k;

    (void)state;
    assert_null(clw_sign_tc3_authorization(NULL, NULL, NULL));
    for (k = 0; k < 17; k++) {
        in = base;
        switch (k) {
        case 0:
            in.secret_id = NULL;
            break;
        case 1:
            in.secret_key = NULL;
            break;
        case 2:
            in.service = NULL;
            break;
        case 3:
            in.host = NULL;
            break;
        case 4:
            in.method = NULL;
            break;
        case 5:
            in.path = NULL;
            break;
        case 6:
            in.content_type = NULL;
            break;
        case 7:
            in.payload = NULL;
            break;
        case 8:
            in.host = "h\nx-evil:1";
            break;
        case 9:
            in.content_type = "application/json\r\nhost:other";
            break;
        case 10:
            in.query = "a=1\n";
            break;
        case 11:
            in.secret_id = "AKID/2019-01-01";
            break;
        case 12:
            in.service = "";
            break;
        case 13:
            in.service = "vpc/x";
            break;
        case 14:
            in.timestamp = -1;
            break;
        case 15:
            in.timestamp = INT64_C(253402300800);
            break;
        default:
            in.method = "POST\n";
            break;
        }
        memset(hp, 'x', sizeof(hp));
        memset(hc, 'x', sizeof(hc));
        got = clw_sign_tc3_authorization(&in, hp, hc);
        if (got != NULL)
            fail_msg("bad input %d accepted: %s", k, got);
        assert_int_equal(hp[0], '\0');
        assert_int_equal(hc[0], '\0');
    }
    /* NULL payload with length 0 is an empty payload. */
    in = base;
    in.payload = NULL;
    in.payload_len = 0;
    got = clw_sign_tc3_authorization(&in, hp, NULL);
    assert_non_null(got);
    assert_string_equal(hp, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    free(got);
}

/* ---- URL encoding -------------------------------------------------------------------------- */

struct url_case {
    const char *name;
    const char *in;
    const char *want;
};

static const struct url_case url_cases[] = {
    {"empty", "", ""},
    {"unreserved kept", "AZaz09-_.~", "AZaz09-_.~"},
    {"all letters and digits", "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
     "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"},
    {"space is %20 never +", "a b", "a%20b"},
    {"gen-delims", ":/?#[]@", "%3A%2F%3F%23%5B%5D%40"},
    {"sub-delims", "!$&'()*+,;=", "%21%24%26%27%28%29%2A%2B%2C%3B%3D"},
    {"percent", "100%", "100%25"},
    {"other ascii", "\"<>\\^`{|}", "%22%3C%3E%5C%5E%60%7B%7C%7D"},
    {"base64 signature", "NSI3UqqD99b/UJb4tbG/xZpRW64=", "NSI3UqqD99b%2FUJb4tbG%2FxZpRW64%3D"},
    {"plus in base64", "p3n+pxBq", "p3n%2BpxBq"},
    {"utf-8 two bytes", "caf\xc3\xa9", "caf%C3%A9"},
    {"utf-8 three bytes", "\xe4\xb8\xad", "%E4%B8%AD"},
    {"utf-8 four bytes", "\xf0\x9f\x98\x80", "%F0%9F%98%80"},
    {"control and high bytes", "\x01\x09\x0a\x1f\x7f\x80\xff", "%01%09%0A%1F%7F%80%FF"},
    {"upper-case hex", "\xab\xcd\xef", "%AB%CD%EF"},
    {"vpc and instance ids", "vpc-2ari9m7h", "vpc-2ari9m7h"},
    {"legacy vpc id", "gz_vpc_245", "gz_vpc_245"},
};

static void test_url_encode_table(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(url_cases) / sizeof(url_cases[0]); i++) {
        const struct url_case *c = &url_cases[i];
        char *got = clw_url_encode(c->in);

        if (got == NULL)
            fail_msg("case %s: NULL", c->name);
        if (strcmp(got, c->want) != 0)
            fail_msg("case %s: got %s want %s", c->name, got, c->want);
        free(got);
    }
}

/* Every byte value 1..255 alone: unreserved ones unchanged, others as %XX upper-case. */
static void test_url_encode_every_byte(void **state)
{
    static const char hex[] = "0123456789ABCDEF";
    int b;
    int kept = 0;

    (void)state;
    for (b = 1; b < 256; b++) {
        char in[2] = {(char)b, '\0'};
        char want[4];
        char *got = clw_url_encode(in);
        int unreserved = (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') ||
                         (b >= '0' && b <= '9') || b == '-' || b == '_' || b == '.' || b == '~';

        assert_non_null(got);
        if (unreserved) {
            want[0] = (char)b;
            want[1] = '\0';
            kept++;
        } else {
            want[0] = '%';
            want[1] = hex[b >> 4];
            want[2] = hex[b & 15];
            want[3] = '\0';
        }
        if (strcmp(got, want) != 0)
            fail_msg("byte 0x%02X: got %s want %s", (unsigned)b, got, want);
        free(got);
    }
    assert_int_equal(kept, 26 + 26 + 10 + 4);
}

static void test_url_encode_null(void **state)
{
    (void)state;
    assert_null(clw_url_encode(NULL));
}

/* ---- string to sign ------------------------------------------------------------------------ */

struct sts_case {
    const char *name;
    const char *method;
    const char *host;
    const char *path;
    struct clw_param params[MAX_PARAMS];
    size_t n;
    const char *want;
};

static const struct sts_case sts_cases[] = {
    {"no params", "GET", "h", "/v2/index.php", {{NULL, NULL}}, 0, "GETh/v2/index.php?"},
    {"Timestamp before instanceIds.0",
     "GET",
     "vpc.api.qcloud.com",
     "/v2/index.php",
     {{"instanceIds.0", "ins-1"}, {"Timestamp", "1"}},
     2,
     "GETvpc.api.qcloud.com/v2/index.php?Timestamp=1&instanceIds.0=ins-1"},
    {"instanceIds.10 before instanceIds.2",
     "GET",
     "h",
     "/p",
     {{"instanceIds.2", "c"}, {"instanceIds.10", "b"}, {"instanceIds.1", "a"}},
     3,
     "GETh/p?instanceIds.1=a&instanceIds.10=b&instanceIds.2=c"},
    {"upper case sorts before lower case",
     "POST",
     "h",
     "/p",
     {{"vpcId", "v"}, {"Action", "A"}, {"Zone", "z"}},
     3,
     "POSTh/p?Action=A&Zone=z&vpcId=v"},
    {"prefix sorts first", "GET", "h", "/p", {{"ab", "2"}, {"a", "1"}}, 2, "GETh/p?a=1&ab=2"},
    {"underscore becomes dot in names",
     "GET",
     "h",
     "/p",
     {{"instanceIds_0", "ins-1"}, {"Nonce", "7"}},
     2,
     "GETh/p?Nonce=7&instanceIds.0=ins-1"},
    /* '.' (0x2E) sorts before '0' (0x30) and '_' (0x5F) after it: sorting must use the
     * transformed name. */
    {"sort uses the transformed name",
     "GET",
     "h",
     "/p",
     {{"a0", "x"}, {"a_b", "y"}, {"a-c", "z"}},
     3,
     "GETh/p?a-c=z&a.b=y&a0=x"},
    {"underscore in values kept",
     "GET",
     "h",
     "/p",
     {{"vpcId", "gz_vpc_245"}},
     1,
     "GETh/p?vpcId=gz_vpc_245"},
    {"raw values, not encoded",
     "GET",
     "h",
     "/p",
     {{"b", "x y&z=1/2+3"}, {"a", "caf\xc3\xa9"}},
     2,
     "GETh/p?a=caf\xc3\xa9&b=x y&z=1/2+3"},
    {"empty value",
     "GET",
     "h",
     "/p",
     {{"Token", ""}, {"Action", "X"}},
     2,
     "GETh/p?Action=X&Token="},
    {"byte order on high bytes",
     "GET",
     "h",
     "/p",
     {{"\xc3\xa9", "2"}, {"z", "1"}},
     2,
     "GETh/p?z=1&\xc3\xa9=2"},
};

static void test_string_to_sign_table(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(sts_cases) / sizeof(sts_cases[0]); i++) {
        const struct sts_case *c = &sts_cases[i];
        char *got = clw_sign_string_to_sign(c->method, c->host, c->path, c->params, c->n);

        if (got == NULL)
            fail_msg("case %s: NULL", c->name);
        if (strcmp(got, c->want) != 0)
            fail_msg("case %s:\n got  %s\n want %s", c->name, got, c->want);
        free(got);
    }
}

static void test_string_to_sign_bad_input(void **state)
{
    const struct clw_param null_value[] = {{"a", NULL}};
    const struct clw_param null_name[] = {{NULL, "x"}};

    (void)state;
    assert_null(clw_sign_string_to_sign(NULL, "h", "/p", NULL, 0));
    assert_null(clw_sign_string_to_sign("GET", NULL, "/p", NULL, 0));
    assert_null(clw_sign_string_to_sign("GET", "h", NULL, NULL, 0));
    assert_null(clw_sign_string_to_sign("GET", "h", "/p", NULL, 1));
    assert_null(clw_sign_string_to_sign("GET", "h", "/p", null_value, 1));
    assert_null(clw_sign_string_to_sign("GET", "h", "/p", null_name, 1));
}

/* ---- HMAC + Base64 ------------------------------------------------------------------------- */

struct hmac_case {
    const char *name;
    enum clw_sign_method method;
    const char *key;
    size_t key_len;
    const char *msg;
    size_t msg_len;
    int want_ret;
    const char *want;
};

static char long_key[131]; /* 0xaa bytes, filled by test_hmac_table */

static const struct hmac_case hmac_cases[] = {
    {"rfc4231 case 2 sha256", CLW_SIGN_HMAC_SHA256, "Jefe", 4, "what do ya want for nothing?", 28,
     0, "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="},
    {"rfc2202 case 2 sha1", CLW_SIGN_HMAC_SHA1, "Jefe", 4, "what do ya want for nothing?", 28, 0,
     "7/zfauXrL6LSdBbV8YTfnCWafHk="},
    {"rfc4231 case 1 sha256", CLW_SIGN_HMAC_SHA256,
     "\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b", 20,
     "Hi There", 8, 0, "sDRMYdjbOFNcqK/OrwvxK4gdwgDJgz2nJuk3bC4yz/c="},
    {"rfc2202 case 1 sha1", CLW_SIGN_HMAC_SHA1,
     "\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b", 20,
     "Hi There", 8, 0, "thcxhlUFcmTii8C2+zeMjvFGvgA="},
    {"rfc4231 case 6 key longer than block", CLW_SIGN_HMAC_SHA256, long_key, sizeof(long_key),
     "Test Using Larger Than Block-Size Key - Hash Key First", 54, 0,
     "YOQxWR7gtn8Niiaqy/W3f44LxiE3KMUUBUYEDw7jf1Q="},
    {"empty key and message sha256", CLW_SIGN_HMAC_SHA256, "", 0, "", 0, 0,
     "thNnmggU2ex3L5XXeMNfxf8Wl8STcVZTxscSFEKSxa0="},
    {"empty key and message sha1", CLW_SIGN_HMAC_SHA1, "", 0, "", 0, 0,
     "+9sdGxiqbAgyS31ktx+3Y3BpDh0="},
    {"lengths, not NUL, delimit", CLW_SIGN_HMAC_SHA256, "k\0ey", 4, "m\0sg", 4, 0,
     "2EbcdAiq+wAywY/kd+Uw3P/I3Yi9lZU/TqVV34lDOL4="},
    {"unknown method", (enum clw_sign_method)7, "k", 1, "m", 1, -1, ""},
    {"NULL key with a length", CLW_SIGN_HMAC_SHA256, NULL, 3, "m", 1, -1, ""},
    {"NULL message with a length", CLW_SIGN_HMAC_SHA256, "k", 1, NULL, 3, -1, ""},
};

static void test_hmac_table(void **state)
{
    size_t i;

    (void)state;
    memset(long_key, 0xaa, sizeof(long_key));
    for (i = 0; i < sizeof(hmac_cases) / sizeof(hmac_cases[0]); i++) {
        const struct hmac_case *c = &hmac_cases[i];
        char out[CLW_SIGN_B64_MAX];
        int ret;

        memset(out, 'x', sizeof(out));
        ret = clw_sign_hmac_b64(c->method, c->key, c->key_len, c->msg, c->msg_len, out);
        if (ret != c->want_ret)
            fail_msg("case %s: returned %d want %d", c->name, ret, c->want_ret);
        if (strcmp(out, c->want) != 0)
            fail_msg("case %s: got %s want %s", c->name, out, c->want);
    }
}

/* ---- signed query ------------------------------------------------------------------------- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1; /* the encoder must only emit upper-case hex */
}

/* Percent-decodes [s, s+len) into a new string; NULL when malformed. */
static char *url_decode(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    size_t i;
    size_t o = 0;

    assert_non_null(out);
    for (i = 0; i < len; i++) {
        if (s[i] == '%') {
            int hi;
            int lo;

            if (i + 2 >= len)
                goto fail;
            hi = hex_value(s[i + 1]);
            lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0)
                goto fail;
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (s[i] == '+' || s[i] == ' ' || s[i] == '&' || s[i] == '=') {
            goto fail; /* never emitted unencoded inside a name or value */
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
fail:
    free(out);
    return NULL;
}

struct decoded {
    char *name[MAX_PARAMS + 1];
    char *value[MAX_PARAMS + 1];
    size_t n;
};

static void decoded_free(struct decoded *d)
{
    size_t i;

    for (i = 0; i < d->n; i++) {
        free(d->name[i]);
        free(d->value[i]);
    }
    d->n = 0;
}

/* Splits "a=b&c=d" into decoded pairs; fails the test when malformed. */
static void decode_query(const char *q, struct decoded *d)
{
    const char *p = q;

    d->n = 0;
    while (*p != '\0') {
        const char *amp = strchr(p, '&');
        const char *end = amp != NULL ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));

        if (eq == NULL || d->n == MAX_PARAMS + 1)
            fail_msg("malformed query %s", q);
        d->name[d->n] = url_decode(p, (size_t)(eq - p));
        d->value[d->n] = url_decode(eq + 1, (size_t)(end - eq - 1));
        d->n++;
        if (d->name[d->n - 1] == NULL || d->value[d->n - 1] == NULL)
            fail_msg("bad percent-encoding in %s", q);
        p = amp != NULL ? amp + 1 : end;
    }
}

struct query_case {
    const char *name;
    enum clw_sign_method method;
    const char *http_method;
    struct clw_param params[MAX_PARAMS];
    size_t n;
    const char *want_prefix; /* the encoded query up to "Signature=" */
};

static const struct query_case query_cases[] = {
    {"attach sha256",
     CLW_SIGN_HMAC_SHA256,
     "GET",
     {{"Action", "AttachClassicLinkVpc"},
      {"instanceIds.0", "ins-df454d"},
      {"instanceIds.1", "ins-5d8a23rs"},
      {"Nonce", "11886"},
      {"Region", "ap-guangzhou"},
      {"SecretId", "AKIDexample"},
      {"SignatureMethod", "HmacSHA256"},
      {"Timestamp", "1465185768"},
      {"vpcId", "vpc-2ari9m7h"}},
     9,
     "Action=AttachClassicLinkVpc&Nonce=11886&Region=ap-guangzhou&SecretId=AKIDexample&"
     "SignatureMethod=HmacSHA256&Timestamp=1465185768&instanceIds.0=ins-df454d&"
     "instanceIds.1=ins-5d8a23rs&vpcId=vpc-2ari9m7h&"},
    {"special characters sha1 post",
     CLW_SIGN_HMAC_SHA1,
     "POST",
     {{"Token", "a+b/c=d e&f"},
      {"instanceIds_0", "ins-1"},
      {"Nonce", "1"},
      {"message", "caf\xc3\xa9 100%"},
      {"we ird", "x"}},
     5,
     "Nonce=1&Token=a%2Bb%2Fc%3Dd%20e%26f&instanceIds_0=ins-1&message=caf%C3%A9%20100%25&"
     "we%20ird=x&"},
    {"no params", CLW_SIGN_HMAC_SHA256, "GET", {{NULL, NULL}}, 0, ""},
};

static void test_v2_query_roundtrip(void **state)
{
    static const char host[] = "vpc.api.qcloud.com";
    static const char path[] = "/v2/index.php";
    static const char key[] = "Gu5t9xGARNpq86cd98joQYCN3Cozk1qA";
    size_t i;
    size_t j;

    (void)state;
    for (i = 0; i < sizeof(query_cases) / sizeof(query_cases[0]); i++) {
        const struct query_case *c = &query_cases[i];
        struct clw_param back[MAX_PARAMS];
        struct decoded d;
        char *query;
        char *sts;
        char sig[CLW_SIGN_B64_MAX];

        query = clw_sign_v2_query(c->method, c->http_method, host, path, c->params, c->n, key);
        if (query == NULL)
            fail_msg("case %s: NULL", c->name);
        if (strncmp(query, c->want_prefix, strlen(c->want_prefix)) != 0 ||
            strncmp(query + strlen(c->want_prefix), "Signature=", 10) != 0)
            fail_msg("case %s:\n got  %s\n want %sSignature=...", c->name, query, c->want_prefix);

        memset(&d, 0, sizeof(d));
        decode_query(query, &d);
        if (d.n != c->n + 1 || strcmp(d.name[c->n], "Signature") != 0)
            fail_msg("case %s: %zu pairs, last %s", c->name, d.n, d.n ? d.name[d.n - 1] : "-");
        /* Every input parameter comes back exactly once with its value. */
        for (j = 0; j < c->n; j++) {
            size_t k;
            int found = 0;

            for (k = 0; k < c->n; k++) {
                if (strcmp(d.name[k], c->params[j].name) == 0 &&
                    strcmp(d.value[k], c->params[j].value) == 0)
                    found++;
            }
            if (found != 1)
                fail_msg("case %s: param %s found %d times", c->name, c->params[j].name, found);
            back[j].name = d.name[j];
            back[j].value = d.value[j];
        }
        /* A server recomputes the signature from the decoded parameters. */
        sts = clw_sign_string_to_sign(c->http_method, host, path, back, c->n);
        assert_non_null(sts);
        assert_int_equal(clw_sign_hmac_b64(c->method, key, strlen(key), sts, strlen(sts), sig), 0);
        if (strcmp(sig, d.value[c->n]) != 0)
            fail_msg("case %s: signature %s does not verify (want %s)", c->name, d.value[c->n],
                     sig);
        free(sts);
        decoded_free(&d);
        free(query);
    }
}

/* A different key, method or parameter value changes the signature. */
static void test_v2_query_sensitivity(void **state)
{
    const struct clw_param a[] = {{"Action", "X"}, {"Nonce", "1"}};
    const struct clw_param b[] = {{"Action", "X"}, {"Nonce", "2"}};
    char *base = clw_sign_v2_query(CLW_SIGN_HMAC_SHA256, "GET", "h", "/p", a, 2, "k");
    char *other_key = clw_sign_v2_query(CLW_SIGN_HMAC_SHA256, "GET", "h", "/p", a, 2, "k2");
    char *other_http = clw_sign_v2_query(CLW_SIGN_HMAC_SHA256, "POST", "h", "/p", a, 2, "k");
    char *other_alg = clw_sign_v2_query(CLW_SIGN_HMAC_SHA1, "GET", "h", "/p", a, 2, "k");
    char *other_val = clw_sign_v2_query(CLW_SIGN_HMAC_SHA256, "GET", "h", "/p", b, 2, "k");

    (void)state;
    assert_non_null(base);
    assert_non_null(other_key);
    assert_non_null(other_http);
    assert_non_null(other_alg);
    assert_non_null(other_val);
    assert_string_not_equal(strstr(base, "Signature="), strstr(other_key, "Signature="));
    assert_string_not_equal(strstr(base, "Signature="), strstr(other_http, "Signature="));
    assert_string_not_equal(strstr(base, "Signature="), strstr(other_alg, "Signature="));
    assert_string_not_equal(strstr(base, "Signature="), strstr(other_val, "Signature="));
    free(base);
    free(other_key);
    free(other_http);
    free(other_alg);
    free(other_val);
}

static void test_v2_query_bad_input(void **state)
{
    const struct clw_param a[] = {{"Action", "X"}};

    (void)state;
    assert_null(clw_sign_v2_query(CLW_SIGN_HMAC_SHA256, "GET", "h", "/p", a, 1, NULL));
    assert_null(clw_sign_v2_query(CLW_SIGN_HMAC_SHA256, NULL, "h", "/p", a, 1, "k"));
    assert_null(clw_sign_v2_query((enum clw_sign_method)9, "GET", "h", "/p", a, 1, "k"));
}

static void test_wipe(void **state)
{
    char secret[] = "Gu5t9xGARNpq86cd98joQYCN3Cozk1qA";
    size_t i;

    (void)state;
    clw_sign_wipe(secret, sizeof(secret));
    for (i = 0; i < sizeof(secret); i++)
        assert_int_equal(secret[i], 0);
    clw_sign_wipe(NULL, 10); /* must not crash */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signing_vectors),
        cmocka_unit_test(test_tc3_vectors),
        cmocka_unit_test(test_tc3_table),
        cmocka_unit_test(test_tc3_sensitivity),
        cmocka_unit_test(test_tc3_bad_input),
        cmocka_unit_test(test_url_encode_table),
        cmocka_unit_test(test_url_encode_every_byte),
        cmocka_unit_test(test_url_encode_null),
        cmocka_unit_test(test_string_to_sign_table),
        cmocka_unit_test(test_string_to_sign_bad_input),
        cmocka_unit_test(test_hmac_table),
        cmocka_unit_test(test_v2_query_roundtrip),
        cmocka_unit_test(test_v2_query_sensitivity),
        cmocka_unit_test(test_v2_query_bad_input),
        cmocka_unit_test(test_wipe),
    };

    return cmocka_run_group_tests_name("sign", tests, NULL, NULL);
}
