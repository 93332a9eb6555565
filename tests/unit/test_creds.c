/* Unit tests for creds: the chain of sources (table-driven, on files in a temporary directory),
 * the CVM role and OIDC refresh requests and answers, the refresh schedule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "clw/creds.h"

static char dir[64];

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/clw-creds-XXXXXX");
    assert_non_null(mkdtemp(dir));
    mkdir(strcat(strcpy((char[128]){0}, dir), "/.tencentcloud"), 0700);
    write_file(".tencentcloud/credentials",
               "[default]\nsecret_id = AKIDhome\nsecret_key = homeKey\n[broken]\nsecret_id = x\n");
    write_file("other", "[prod]\nsecret_id = AKIDprod\nsecret_key = prodKey\ntoken = prodTok\n");
    write_file("token", "web-token-\"quoted\"\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void config(struct clw_config *cfg, const char *const *kv)
{
    char err[256];
    assert_int_equal(clw_config_init(cfg), 0);
    for (size_t i = 0; kv[i] != NULL; i += 2)
        if (clw_config_set(cfg, kv[i], kv[i + 1], "-X", err, sizeof(err)) != 0)
            fail_msg("%s: %s", kv[i], err);
    if (clw_config_finalize(cfg, err, sizeof(err)) != 0)
        fail_msg("finalize: %s", err);
}

/* ---- the chain ----------------------------------------------------------------------------- */

enum { HOME = 1, FILE_OTHER = 2, FILE_MISSING = 4, TKE_ALL = 8, TKE_PART = 16 };

struct chain_case {
    const char *name;
    const char *kv[8];
    unsigned env;
    enum clw_creds_source source; /* when err is NULL */
    const char *err;
    const char *desc; /* part of the description */
};

static const struct chain_case chain_cases[] = {
    {"keys win",
     {"api.secret_id", "AKIDx", "api.secret_key", "k"},
     HOME | TKE_ALL,
     CLW_CREDS_STATIC,
     NULL,
     "keys"},
    {"half a pair is an error",
     {"api.secret_id", "AKIDx"},
     HOME,
     0,
     "api.secret_id is set but api.secret_key is not",
     NULL},
    {"the home profile file", {NULL}, HOME, CLW_CREDS_PROFILE, NULL, "profile [default] of /"},
    {"TENCENTCLOUD_CREDENTIALS_FILE and api.profile",
     {"api.profile", "prod"},
     HOME | FILE_OTHER,
     CLW_CREDS_PROFILE,
     NULL,
     "profile [prod]"},
    {"a named file must exist", {NULL}, HOME | FILE_MISSING, 0, "does not exist", NULL},
    {"a named profile must exist",
     {"api.profile", "staging"},
     HOME,
     0,
     "no profile [staging]",
     NULL},
    {"a profile needs both keys",
     {"api.profile", "broken"},
     HOME,
     0,
     "needs secret_id and secret_key",
     NULL},
    {"the profile beats a role", {"api.role_name", "r1"}, HOME, CLW_CREDS_PROFILE, NULL, "profile"},
    {"a named role", {"api.role_name", "r1"}, 0, CLW_CREDS_CVM_ROLE, NULL, "CVM role r1"},
    {"the role beats OIDC", {"api.role_name", "r1"}, TKE_ALL, CLW_CREDS_CVM_ROLE, NULL, "r1"},
    {"OIDC", {NULL}, TKE_ALL, CLW_CREDS_OIDC, NULL, "OIDC role qcs::cam::uin/1:roleName/r"},
    {"part of OIDC is an error", {NULL}, TKE_PART, 0, "TKE_ROLE_ARN is not set", NULL},
    {"nothing: the metadata service is left", {NULL}, 0, CLW_CREDS_NONE, NULL, "none"},
};

static void env_for(unsigned flags, struct clw_creds_env *env, char *home, char *file, char *token)
{
    memset(env, 0, sizeof(*env));
    snprintf(home, 128, "%s", dir);
    snprintf(file, 128, "%s/%s", dir, flags & FILE_MISSING ? "missing" : "other");
    snprintf(token, 128, "%s/token", dir);
    if (flags & HOME)
        env->home = home;
    if (flags & (FILE_OTHER | FILE_MISSING))
        env->credentials_file = file;
    if (flags & (TKE_ALL | TKE_PART)) {
        env->tke_region = "ap-guangzhou";
        env->tke_provider_id = "prov";
        env->tke_token_file = token;
        env->tke_role_arn = flags & TKE_ALL ? "qcs::cam::uin/1:roleName/r" : NULL;
    }
}

static void test_chain(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(chain_cases) / sizeof(chain_cases[0]); i++) {
        const struct chain_case *c = &chain_cases[i];
        struct clw_config cfg;
        struct clw_creds_env env;
        char home[128], file[128], token[128], err[256] = "", desc[512];
        config(&cfg, c->kv);
        env_for(c->env, &env, home, file, token);
        struct clw_creds *cr = clw_creds_new(&cfg, &env, err, sizeof(err));
        if (c->err != NULL) {
            if (cr != NULL || strstr(err, c->err) == NULL)
                fail_msg("%s: want error %s, got %s", c->name, c->err, cr ? "a source" : err);
        } else {
            if (cr == NULL)
                fail_msg("%s: %s", c->name, err);
            if (clw_creds_source(cr) != c->source)
                fail_msg("%s: source %d, want %d", c->name, clw_creds_source(cr), c->source);
            clw_creds_describe(cr, desc, sizeof(desc));
            if (strstr(desc, c->desc) == NULL)
                fail_msg("%s: description %s", c->name, desc);
            if (strstr(desc, "Key") != NULL || strstr(desc, "prodTok") != NULL)
                fail_msg("%s: a secret in the description", c->name);
        }
        clw_creds_free(cr);
        clw_config_free(&cfg);
    }
}

static void test_profile_values(void **state)
{
    static const char *const kv[] = {"api.profile", "prod", NULL};
    struct clw_config cfg;
    struct clw_creds_env env;
    char home[128], file[128], token[128], err[256];
    struct clw_api_creds out;
    unsigned gen = 0;
    (void)state;
    config(&cfg, kv);
    env_for(HOME | FILE_OTHER, &env, home, file, token);
    struct clw_creds *c = clw_creds_new(&cfg, &env, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(clw_creds_get(c, &cfg, 0, &out, &gen), 0);
    assert_string_equal(out.secret_id, "AKIDprod");
    assert_string_equal(out.secret_key, "prodKey");
    assert_string_equal(out.token, "prodTok");
    assert_string_equal(clw_creds_principal(c, &cfg), "AKIDprod");
    assert_int_equal(clw_creds_refresh_at_ms(c), -1);
    /* SIGHUP: a rotated file is read again, and the generation moves */
    write_file("other", "[prod]\nsecret_id = AKIDprod2\nsecret_key = prodKey2\n");
    unsigned before = gen;
    assert_int_equal(clw_creds_reload(c, err, sizeof(err)), 0);
    assert_int_equal(clw_creds_get(c, &cfg, 0, &out, &gen), 0);
    assert_string_equal(out.secret_id, "AKIDprod2");
    assert_string_equal(out.token, "");
    assert_true(gen != before);
    /* a broken rotation keeps the old keys */
    write_file("other", "[prod]\nsecret_id = only\n");
    assert_int_equal(clw_creds_reload(c, err, sizeof(err)), -1);
    assert_int_equal(clw_creds_get(c, &cfg, 0, &out, &gen), 0);
    assert_string_equal(out.secret_id, "AKIDprod2");
    write_file("other", "[prod]\nsecret_id = AKIDprod\nsecret_key = prodKey\ntoken = prodTok\n");
    clw_creds_free(c);
    clw_config_free(&cfg);
}

/* ---- a CVM role ---------------------------------------------------------------------------- */

#define NOW_MS INT64_C(1700000000000)
#define META_DOC                                                                                   \
    "{\"TmpSecretId\":\"AKIDtmp%d\",\"TmpSecretKey\":\"tmpKey\",\"Token\":\"tok\","                \
    "\"ExpiredTime\":%lld,\"Code\":\"Success\"}"

static int answer_doc(struct clw_creds *c, int n, long long expired_s, int64_t now, char *err)
{
    char doc[256];
    snprintf(doc, sizeof(doc), META_DOC, n, expired_s);
    return clw_creds_answer(c, CLW_TRANSPORT_OK, 200, doc, strlen(doc), now, err, 256);
}

static void test_cvm_role(void **state)
{
    static const char *const kv[] = {"api.metadata_endpoint", "http://127.0.0.1:9/meta", NULL};
    struct clw_config cfg;
    struct clw_creds_env env;
    struct clw_api_request req;
    struct clw_api_creds out;
    unsigned gen = 0;
    char err[256];
    (void)state;
    config(&cfg, kv);
    memset(&env, 0, sizeof(env));
    struct clw_creds *c = clw_creds_new(&cfg, &env, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(clw_creds_source(c), CLW_CREDS_NONE);
    clw_creds_discover(c);
    assert_true(clw_creds_temporary(c));
    assert_int_equal(clw_creds_get(c, &cfg, NOW_MS, &out, &gen), -1); /* none yet */
    assert_int_equal(clw_creds_refresh_at_ms(c), 0);                  /* at once */
    /* first the role list (a slash is added to the endpoint) */
    assert_int_equal(clw_creds_request(c, NOW_MS, &req, err, sizeof(err)), 0);
    assert_string_equal(req.url, "http://127.0.0.1:9/meta/");
    assert_null(req.body);
    clw_api_request_free(&req);
    assert_int_equal(clw_creds_answer(c, CLW_TRANSPORT_OK, 404, "", 0, NOW_MS, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "lists no CAM role"));
    assert_int_equal(
        clw_creds_answer(c, CLW_TRANSPORT_OK, 200, "bad role!", 9, NOW_MS, err, sizeof(err)), -1);
    assert_int_equal(
        clw_creds_answer(c, CLW_TRANSPORT_OK, 200, "worker\n", 7, NOW_MS, err, sizeof(err)), 1);
    assert_string_equal(clw_creds_principal(c, &cfg), "cvm-role/worker");
    /* then the role's credentials */
    assert_int_equal(clw_creds_request(c, NOW_MS, &req, err, sizeof(err)), 0);
    assert_string_equal(req.url, "http://127.0.0.1:9/meta/worker");
    clw_api_request_free(&req);
    assert_int_equal(
        clw_creds_answer(c, CLW_TRANSPORT_TIMEOUT, 0, NULL, 0, NOW_MS, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "timed out"));
    assert_int_equal(
        clw_creds_answer(c, CLW_TRANSPORT_OK, 200, "<html>", 6, NOW_MS, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "malformed credentials"));
    /* already expired: refused */
    assert_int_equal(answer_doc(c, 0, NOW_MS / 1000, NOW_MS, err), -1);
    /* 7200 s of life */
    assert_int_equal(answer_doc(c, 1, NOW_MS / 1000 + 7200, NOW_MS, err), 0);
    assert_int_equal(clw_creds_get(c, &cfg, NOW_MS, &out, &gen), 0);
    assert_string_equal(out.secret_id, "AKIDtmp1");
    assert_string_equal(out.token, "tok");
    unsigned first = gen;
    assert_int_equal(clw_creds_expiry_ms(c), NOW_MS + 7200000);
    assert_int_equal(clw_creds_refresh_at_ms(c), NOW_MS + 4800000); /* two thirds */
    /* a failed refresh keeps them; a good one replaces them */
    assert_int_equal(clw_creds_answer(c, CLW_TRANSPORT_OK, 503, "", 0, NOW_MS, err, sizeof(err)),
                     -1);
    assert_int_equal(clw_creds_get(c, &cfg, NOW_MS + 1000, &out, &gen), 0);
    assert_int_equal(gen, first);
    assert_int_equal(answer_doc(c, 2, NOW_MS / 1000 + 7300, NOW_MS + 5000, err), 0);
    assert_int_equal(clw_creds_get(c, &cfg, NOW_MS + 5000, &out, &gen), 0);
    assert_string_equal(out.secret_id, "AKIDtmp2");
    assert_true(gen != first);
    assert_string_equal(clw_creds_principal(c, &cfg), "cvm-role/worker"); /* stable */
    /* expired: nothing to sign with */
    assert_int_equal(clw_creds_get(c, &cfg, NOW_MS + 7300 * 1000, &out, &gen), -1);
    clw_creds_free(c);
    clw_config_free(&cfg);
}

/* When the next refresh starts: two thirds of the life or five minutes before the expiry,
 * whichever is first, but not before half of it. */
static void test_refresh_schedule(void **state)
{
    static const char *const kv[] = {"api.role_name", "r", NULL};
    static const struct {
        long long life_s;
        long long at_s;
    } cases[] = {{7200, 4800}, {3600, 2400}, {900, 600}, {600, 300}, {480, 240}, {30, 15}, {2, 1}};
    struct clw_config cfg;
    struct clw_creds_env env;
    char err[256];
    (void)state;
    config(&cfg, kv);
    memset(&env, 0, sizeof(env));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct clw_creds *c = clw_creds_new(&cfg, &env, err, sizeof(err));
        assert_non_null(c);
        assert_int_equal(answer_doc(c, 1, NOW_MS / 1000 + cases[i].life_s, NOW_MS, err), 0);
        if (clw_creds_refresh_at_ms(c) != NOW_MS + cases[i].at_s * 1000)
            fail_msg("life %lld s: refresh after %lld ms, want %lld s", cases[i].life_s,
                     (long long)(clw_creds_refresh_at_ms(c) - NOW_MS), cases[i].at_s);
        clw_creds_free(c);
    }
    clw_config_free(&cfg);
}

/* ---- OIDC ---------------------------------------------------------------------------------- */

static void test_oidc(void **state)
{
    static const char *const kv[] = {"api.sts_endpoint", "https://sts.example.test/", NULL};
    struct clw_config cfg;
    struct clw_creds_env env;
    struct clw_api_request req;
    struct clw_api_creds out;
    unsigned gen;
    char home[128], file[128], token[128], err[256];
    (void)state;
    config(&cfg, kv);
    env_for(TKE_ALL, &env, home, file, token);
    struct clw_creds *c = clw_creds_new(&cfg, &env, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(clw_creds_request(c, NOW_MS, &req, err, sizeof(err)), 0);
    assert_string_equal(req.url, "https://sts.example.test/");
    /* the token read from its file, without the line end, escaped in the JSON body */
    assert_non_null(strstr(req.body, "\"WebIdentityToken\":\"web-token-\\\"quoted\\\"\""));
    assert_non_null(strstr(req.body, "\"ProviderId\":\"prov\""));
    assert_non_null(strstr(req.body, "\"RoleArn\":\"qcs::cam::uin/1:roleName/r\""));
    assert_non_null(strstr(req.body, "\"RoleSessionName\":\"classiclink-worker-1700000000\""));
    int seen = 0;
    for (size_t i = 0; req.headers[i] != NULL; i++)
        seen += strcmp(req.headers[i], "Authorization: SKIP") == 0 ||
                strcmp(req.headers[i], "X-TC-Action: AssumeRoleWithWebIdentity") == 0 ||
                strcmp(req.headers[i], "X-TC-Version: 2018-08-13") == 0 ||
                strcmp(req.headers[i], "X-TC-Region: ap-guangzhou") == 0;
    assert_int_equal(seen, 4);
    clw_api_request_free(&req);
    static const char refused[] =
        "{\"Response\":{\"Error\":{\"Code\":\"InvalidParameter."
        "WebIdentityTokenError\",\"Message\":\"m\"},\"RequestId\":\"r\"}}";
    assert_int_equal(clw_creds_answer(c, CLW_TRANSPORT_OK, 200, refused, strlen(refused), NOW_MS,
                                      err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "InvalidParameter.WebIdentityTokenError"));
    char ok[256];
    snprintf(ok, sizeof(ok),
             "{\"Response\":{\"Credentials\":{\"Token\":\"t\",\"TmpSecretId\":\"AKIDsts\","
             "\"TmpSecretKey\":\"k\"},\"ExpiredTime\":%lld,\"RequestId\":\"r\"}}",
             (long long)(NOW_MS / 1000 + 600));
    assert_int_equal(
        clw_creds_answer(c, CLW_TRANSPORT_OK, 200, ok, strlen(ok), NOW_MS, err, sizeof(err)), 0);
    assert_int_equal(clw_creds_get(c, &cfg, NOW_MS, &out, &gen), 0);
    assert_string_equal(out.secret_id, "AKIDsts");
    assert_string_equal(clw_creds_principal(c, &cfg), "oidc/qcs::cam::uin/1:roleName/r");
    /* a token file gone: a clear error, no request */
    char path[256];
    snprintf(path, sizeof(path), "%s/token", dir);
    unlink(path);
    assert_int_equal(clw_creds_request(c, NOW_MS, &req, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "does not exist"));
    write_file("token", "web-token-\"quoted\"\n");
    clw_creds_free(c);
    clw_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain),    cmocka_unit_test(test_profile_values),
        cmocka_unit_test(test_cvm_role), cmocka_unit_test(test_refresh_schedule),
        cmocka_unit_test(test_oidc),
    };
    return cmocka_run_group_tests_name("creds", tests, setup, teardown);
}
