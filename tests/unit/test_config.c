/* Unit tests for configuration (config.c): table, sources, precedence, secrets, docs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clw/config.h"

#define DOC_PATH  CLW_TEST_DATA "/../../docs/configuration.md"
#define CONF_PATH CLW_TEST_DATA "/../../conf/classiclink-worker.conf"

/* ---- helpers ---- */

static char tmpdir[64];
static int tmp_seq;

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/clw-test-config-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes content to a new file in tmpdir with the given mode; returns its path (static). */
static const char *write_file(const char *content, mode_t mode)
{
    static char paths[8][128];
    char *path = paths[tmp_seq % 8];
    FILE *f;

    snprintf(path, 128, "%s/f%d", tmpdir, tmp_seq++);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, strlen(content), f), strlen(content));
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static char *dump_string(const struct clw_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    assert_non_null(f);
    clw_config_dump(cfg, f);
    assert_int_equal(fclose(f), 0);
    return text;
}

/* Finds "key = VALUE  # SOURCE" in the dump; returns 0 when found. */
static int dump_get(const struct clw_config *cfg, const char *key, char *value, size_t vlen,
                    char *source, size_t slen)
{
    char *text = dump_string(cfg);
    char *line = text;
    size_t klen = strlen(key);
    int rc = -1;

    while (line && *line) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strncmp(line, key, klen) == 0 && strncmp(line + klen, " = ", 3) == 0) {
            char *v = line + klen + 3;
            char *hash = strstr(v, "  # ");
            assert_non_null(hash);
            *hash = '\0';
            snprintf(value, vlen, "%s", v);
            if (source)
                snprintf(source, slen, "%s", hash + 4);
            rc = 0;
            break;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    return rc;
}

static void assert_dump(const struct clw_config *cfg, const char *key, const char *value,
                        const char *source)
{
    char v[512];
    char s[512];

    if (dump_get(cfg, key, v, sizeof(v), s, sizeof(s)) != 0)
        fail_msg("%s missing from the dump", key);
    assert_string_equal(v, value);
    if (source)
        assert_string_equal(s, source);
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle))
        fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

static void init(struct clw_config *cfg)
{
    assert_int_equal(clw_config_init(cfg), 0);
}

static void set_ok(struct clw_config *cfg, const char *key, const char *value, const char *src)
{
    char err[512] = "";

    if (clw_config_set(cfg, key, value, src, err, sizeof(err)) != 0)
        fail_msg("set %s=%s: %s", key, value, err);
}

static void set_creds(struct clw_config *cfg)
{
    set_ok(cfg, "api.secret_id", "AKIDexample", "t:1");
    set_ok(cfg, "api.secret_key", "keyexample", "t:2");
}

/* ---- environment stub ---- */

static const char *const *env_table;

static const char *fake_getenv(const char *name)
{
    size_t i;

    for (i = 0; env_table && env_table[i]; i += 2) {
        if (strcmp(env_table[i], name) == 0)
            return env_table[i + 1];
    }
    return NULL;
}

/* ---- defaults ---- */

struct default_case {
    const char *key;
    const char *value;
};

static const struct default_case default_cases[] = {
    {"api.ca_file", ""},
    {"api.coalesce.linger_ms", "0"},
    {"api.coalesce.max_instances", "100"},
    {"api.connect_timeout_ms", "3000"},
    {"api.endpoint", "https://vpc.api.qcloud.com/v2/index.php"},
    {"api.http_method", "GET"},
    {"api.metadata_endpoint", "http://metadata.tencentyun.com/latest/meta-data/cam/"
                              "security-credentials/"},
    {"api.on_worker_fault", "pause"},
    {"api.profile", "default"},
    {"api.quota", "100"},
    {"api.rate_limit", "0"},
    {"api.region", ""},
    {"api.role_name", ""},
    {"api.secret_id", ""},
    {"api.secret_id_file", ""},
    {"api.secret_key", ""},
    {"api.secret_key_file", ""},
    {"api.signature_method", "HmacSHA256"},
    {"api.sts_endpoint", "https://sts.tencentcloudapi.com/"},
    {"api.timeout_ms", "10000"},
    {"api.token", ""},
    {"api.token_file", ""},
    {"api.version", "2"},
    {"delivery.mode", "at_least_once"},
    {"kafka.group.id", "classiclink-worker"},
    {"log.format", "json"},
    {"log.level", "info"},
    {"metrics.listen", "127.0.0.1:9464"},
    {"retry.initial_backoff_ms", "200"},
    {"retry.max_backoff_ms", "30000"},
    {"retry.max_elapsed_ms", "600000"},
    {"task.follow", "false"},
    {"task.max_wait_ms", "300000"},
    {"topic.dlq", ""},
    {"topic.requests", "classiclink.requests"},
    {"topic.results", "classiclink.results"},
    {"worker.max_in_flight", "256"},
    {"worker.max_instances_per_request", "100"},
    {"worker.max_pending_per_partition", "1000"},
    {"worker.shutdown_timeout_ms", "20000"},
};

#define N_DEFAULTS (sizeof(default_cases) / sizeof(default_cases[0]))

static void test_defaults(void **state)
{
    struct clw_config cfg;
    char *text;
    char *p;
    size_t lines = 0;
    size_t i;

    (void)state;
    init(&cfg);
    for (i = 0; i < N_DEFAULTS; i++)
        assert_dump(&cfg, default_cases[i].key, default_cases[i].value, "default");
    /* Every key is in the table above, and the dump is sorted (the table is). */
    text = dump_string(&cfg);
    for (p = text, i = 0; *p; i++) {
        size_t klen = strlen(default_cases[i < N_DEFAULTS ? i : 0].key);
        assert_true(i < N_DEFAULTS);
        assert_int_equal(strncmp(p, default_cases[i].key, klen), 0);
        lines++;
        p = strchr(p, '\n') + 1;
    }
    assert_int_equal(lines, N_DEFAULTS);
    free(text);
    /* The struct members agree with the dump. */
    assert_int_equal(cfg.api_timeout_ms, 10000);
    assert_int_equal(cfg.api_connect_timeout_ms, 3000);
    assert_int_equal(cfg.worker_max_in_flight, 256);
    assert_int_equal(cfg.worker_max_pending_per_partition, 1000);
    assert_int_equal(cfg.worker_max_instances_per_request, 100);
    assert_int_equal(cfg.worker_shutdown_timeout_ms, 20000);
    assert_int_equal(cfg.retry_initial_backoff_ms, 200);
    assert_int_equal(cfg.retry_max_backoff_ms, 30000);
    assert_int_equal(cfg.retry_max_elapsed_ms, 600000);
    assert_int_equal(cfg.api_quota, 100);
    assert_int_equal(cfg.api_rate_limit, 0);
    assert_int_equal(cfg.api_signature_method, CLW_SIGN_HMAC_SHA256);
    assert_int_equal(cfg.api_http_method, CLW_HTTP_GET);
    assert_int_equal(cfg.api_on_worker_fault, CLW_FAULT_PAUSE);
    assert_string_equal(cfg.kafka_group_id, "classiclink-worker");
    assert_string_equal(cfg.topic_dlq, "");
    assert_string_equal(cfg.api_secret_key, "");
    assert_string_equal(cfg.log_level, "info");
    assert_string_equal(cfg.log_format, "json");
    assert_int_equal(cfg.kafka_props_len, 0);
    assert_int_equal(cfg.warnings_len, 0);
    clw_config_free(&cfg);
    assert_null(cfg.sources);
}

/* ---- good values ---- */

struct value_case {
    const char *key;
    const char *value;
    const char *shown; /* in the dump */
};

static const struct value_case good_cases[] = {
    {"api.timeout_ms", "1", "1"},
    {"api.timeout_ms", "3600000", "3600000"},
    {"worker.max_in_flight", "100000", "100000"},
    {"worker.max_pending_per_partition", "1000000", "1000000"},
    {"worker.max_instances_per_request", "1000", "1000"},
    {"worker.shutdown_timeout_ms", "0", "0"},
    {"retry.max_backoff_ms", "86400000", "86400000"},
    {"retry.max_elapsed_ms", "0", "0"},
    {"api.quota", "0", "0"},
    {"api.quota", "1000000", "1000000"},
    {"api.signature_method", "HmacSHA1", "HmacSHA1"},
    {"api.http_method", "POST", "POST"},
    {"api.on_worker_fault", "exit", "exit"},
    {"log.level", "debug", "debug"},
    {"log.format", "text", "text"},
    {"api.region", "ap-guangzhou", "ap-guangzhou"},
    {"api.region", "", ""},
    {"topic.dlq", "classiclink.dlq", "classiclink.dlq"},
    {"topic.requests", "Team_A-requests.v2", "Team_A-requests.v2"},
    {"api.endpoint", "http://127.0.0.1:8080/v2/index.php", "http://127.0.0.1:8080/v2/index.php"},
    {"api.endpoint", "http://[::1]:9/", "http://[::1]:9/"},
    {"metrics.listen", ":9464", ":9464"},
    {"metrics.listen", "", ""},
    {"metrics.listen", "[::1]:9464", "[::1]:9464"},
    {"metrics.listen", "0.0.0.0:1", "0.0.0.0:1"},
    {"metrics.listen", "metrics.internal:65535", "metrics.internal:65535"},
    {"api.secret_id", "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
     "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"},
    {"api.secret_key", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", "[redacted]"},
    {"api.token", "tok+/=", "[redacted]"},
    {"kafka.group.id", "my group", "my group"},
};

static void test_good_values(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++) {
        struct clw_config cfg;

        print_message("case: %s = %s\n", good_cases[i].key, good_cases[i].value);
        init(&cfg);
        set_ok(&cfg, good_cases[i].key, good_cases[i].value, "test.conf:7");
        assert_dump(&cfg, good_cases[i].key, good_cases[i].shown, "test.conf:7");
        clw_config_free(&cfg);
    }
}

/* ---- bad values ---- */

struct bad_case {
    const char *key;
    const char *value;
    const char *error; /* substring of the message; the message always starts with the key */
};

static const struct bad_case bad_cases[] = {
    {"api.timeout_ms", "abc", "\"abc\" is not an integer"},
    {"api.timeout_ms", "10s", "is not an integer"},
    {"api.timeout_ms", "", "\"\" is not an integer"},
    {"api.timeout_ms", "+5", "is not an integer"},
    {"api.timeout_ms", " 5", "is not an integer"},
    {"api.timeout_ms", "0x10", "is not an integer"},
    {"api.timeout_ms", "1e3", "is not an integer"},
    {"api.timeout_ms", "1.5", "is not an integer"},
    {"api.timeout_ms", "0", "\"0\" is out of range (1..3600000)"},
    {"api.timeout_ms", "3600001", "out of range (1..3600000)"},
    {"api.timeout_ms", "-1", "out of range"},
    {"api.timeout_ms", "99999999999999999999999", "out of range"},
    {"api.connect_timeout_ms", "0", "out of range"},
    {"worker.max_in_flight", "0", "out of range (1..100000)"},
    {"worker.max_in_flight", "100001", "out of range (1..100000)"},
    {"worker.max_pending_per_partition", "1000001", "out of range (1..1000000)"},
    {"worker.max_instances_per_request", "1001", "out of range (1..1000)"},
    {"worker.max_instances_per_request", "0", "out of range (1..1000)"},
    {"worker.shutdown_timeout_ms", "-1", "out of range (0..3600000)"},
    {"retry.initial_backoff_ms", "0", "out of range (1..3600000)"},
    {"retry.max_backoff_ms", "86400001", "out of range (1..86400000)"},
    {"retry.max_elapsed_ms", "-5", "out of range"},
    {"api.quota", "1000001", "out of range (0..1000000)"},
    {"api.quota", "-1", "out of range"},
    {"api.quota", "100.5", "is not an integer"},
    {"api.signature_method", "hmacsha256", "is not one of HmacSHA256 or HmacSHA1"},
    {"api.signature_method", "HmacSHA512", "is not one of"},
    {"api.http_method", "get", "is not one of GET or POST"},
    {"api.on_worker_fault", "PAUSE", "is not one of pause or exit"},
    {"log.level", "Info", "is not one of debug, info, warn or error"},
    {"log.level", "warning", "is not one of"},
    {"log.format", "JSON", "is not one of json or text"},
    {"topic.requests", "", "must not be empty"},
    {"topic.results", "bad topic", "not a valid topic name"},
    {"topic.dlq", "a/b", "not a valid topic name"},
    {"topic.requests", "..", "not a valid topic name"},
    {"kafka.group.id", "", "must not be empty"},
    {"api.region", "AP-Guangzhou", "is not a region"},
    {"api.region", "ap guangzhou", "is not a region"},
    {"api.endpoint", "ftp://example.com/", "must start with https://"},
    {"api.endpoint", "http://vpc.api.qcloud.com/v2/index.php", "only for loopback hosts"},
    {"metrics.listen", "9464", "is not HOST:PORT"},
    {"metrics.listen", "127.0.0.1:00", "is not HOST:PORT"},
    {"metrics.listen", "127.0.0.1:65536", "is not HOST:PORT"},
    {"metrics.listen", "127.0.0.1:", "is not HOST:PORT"},
    {"metrics.listen", "::1:9464", "IPv6 address in brackets"},
    {"metrics.listen", "[::1:9464", "is not HOST:PORT"},
    {"metrics.listen", "bad_host:80", "is not HOST:PORT"},
    {"api.secret_id", "AKID with space", "printable ASCII without blanks"},
    {"api.secret_id", "AKID\x01", "printable ASCII"},
    {"api.secret_key", "key\nmore", "control characters"},
    {"api.secret_key_file", "/run/x\n", "control characters"},
};

static void test_bad_values(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        struct clw_config cfg;
        char before[512];
        char after[512];
        char err[512] = "";

        print_message("case %zu: %s\n", i, c->key);
        init(&cfg);
        assert_int_equal(dump_get(&cfg, c->key, before, sizeof(before), NULL, 0), 0);
        assert_int_equal(clw_config_set(&cfg, c->key, c->value, "f:1", err, sizeof(err)), -1);
        assert_int_equal(strncmp(err, c->key, strlen(c->key)), 0);
        assert_contains(err, c->error);
        /* A rejected value changes nothing. */
        assert_int_equal(dump_get(&cfg, c->key, after, sizeof(after), NULL, 0), 0);
        assert_string_equal(before, after);
        clw_config_free(&cfg);
    }
}

static void test_secret_value_not_in_error(void **state)
{
    struct clw_config cfg;
    char err[512] = "";

    (void)state;
    init(&cfg);
    assert_int_equal(
        clw_config_set(&cfg, "api.secret_key", "TOPSECRET\x01", "-X", err, sizeof(err)), -1);
    assert_null(strstr(err, "TOPSECRET"));
    assert_int_equal(clw_config_set_arg(&cfg, "api.token=TOPSECRET\x02", err, sizeof(err)), -1);
    assert_null(strstr(err, "TOPSECRET"));
    assert_contains(err, "-X api.token=[redacted]: api.token:");
    clw_config_free(&cfg);
}

/* ---- unknown keys ---- */

struct unknown_case {
    const char *key;
    const char *error;
};

static const struct unknown_case unknown_cases[] = {
    {"api.timeuot_ms", "api.timeuot_ms: unknown key (did you mean api.timeout_ms?)"},
    {"timeout_ms", "timeout_ms: unknown key (did you mean api.timeout_ms?)"},
    {"log_level", "log_level: unknown key (did you mean log.level?)"},
    {"completely.different", "completely.different: unknown key"},
    {"Topic.requests", "unknown key"},
};

static void test_unknown_keys(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(unknown_cases) / sizeof(unknown_cases[0]); i++) {
        struct clw_config cfg;
        char content[256];
        char expected[512];
        char err[512] = "";
        const char *path;

        print_message("case: %s\n", unknown_cases[i].key);
        snprintf(content, sizeof(content), "# comment\n\n%s = 5\n", unknown_cases[i].key);
        path = write_file(content, 0600);
        init(&cfg);
        assert_int_equal(clw_config_load_file(&cfg, path, err, sizeof(err)), -1);
        snprintf(expected, sizeof(expected), "%s:3: ", path);
        assert_int_equal(strncmp(err, expected, strlen(expected)), 0);
        assert_contains(err, unknown_cases[i].error);
        clw_config_free(&cfg);
    }
}

/* ---- file syntax ---- */

struct syntax_case {
    const char *name;
    const char *content;
    const char *key;   /* looked up in the dump when rc == 0 */
    const char *value; /* expected value, or the error substring when rc == -1 */
    int line;          /* expected source line, or the error line */
    int rc;
};

static const struct syntax_case syntax_cases[] = {
    {"plain", "api.region = ap-guangzhou\n", "api.region", "ap-guangzhou", 1, 0},
    {"no blanks", "api.region=ap-beijing\n", "api.region", "ap-beijing", 1, 0},
    {"trimmed with tabs and CRLF", "\t api.region \t=\t ap-shanghai \r\n", "api.region",
     "ap-shanghai", 1, 0},
    {"comment lines and blank lines",
     "# api.region = ap-beijing\n\n   # indented comment\n"
     "api.region = ap-chengdu\n",
     "api.region", "ap-chengdu", 4, 0},
    {"hash inside a value is not a comment", "kafka.client.id = worker # one\n", "kafka.client.id",
     "worker # one", 1, 0},
    {"equals inside a value", "kafka.sasl.username = a=b\n", "kafka.sasl.username", "a=b", 1, 0},
    {"last occurrence wins", "api.timeout_ms = 5\napi.timeout_ms = 7\n", "api.timeout_ms", "7", 2,
     0},
    {"last kafka occurrence wins", "kafka.client.id = a\nkafka.client.id = b\n", "kafka.client.id",
     "b", 2, 0},
    {"byte order mark",
     "\xef\xbb\xbf"
     "api.region = ap-hongkong\n",
     "api.region", "ap-hongkong", 1, 0},
    {"no final newline", "api.region = ap-seoul", "api.region", "ap-seoul", 1, 0},
    {"empty value", "topic.dlq = x\ntopic.dlq =\n", "topic.dlq", "", 2, 0},
    {"missing equals", "api.region = a\napi.region ap-beijing\n", NULL, "expected \"key = value\"",
     2, -1},
    {"missing key", "= value\n", NULL, "missing key before '='", 1, -1},
    {"bad value names the key", "\n\napi.timeout_ms = soon\n", NULL,
     "api.timeout_ms: \"soon\" is not an integer", 3, -1},
};

static void test_file_syntax(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(syntax_cases) / sizeof(syntax_cases[0]); i++) {
        const struct syntax_case *c = &syntax_cases[i];
        struct clw_config cfg;
        char err[512] = "";
        char where[256];
        const char *path;
        int rc;

        print_message("case: %s\n", c->name);
        path = write_file(c->content, 0600);
        snprintf(where, sizeof(where), "%s:%d", path, c->line);
        init(&cfg);
        rc = clw_config_load_file(&cfg, path, err, sizeof(err));
        if (rc != c->rc)
            fail_msg("rc %d, err %s", rc, err);
        if (c->rc == 0) {
            assert_dump(&cfg, c->key, c->value, where);
        } else {
            assert_int_equal(strncmp(err, where, strlen(where)), 0);
            assert_int_equal(err[strlen(where)], ':');
            assert_contains(err, c->value);
        }
        clw_config_free(&cfg);
    }
}

static void test_missing_file(void **state)
{
    struct clw_config cfg;
    char err[512] = "";

    (void)state;
    init(&cfg);
    assert_int_equal(clw_config_load_file(&cfg, "/nonexistent/clw.conf", err, sizeof(err)), -1);
    assert_contains(err, "/nonexistent/clw.conf: cannot open");
    clw_config_free(&cfg);
}

/* ---- -X and environment ---- */

struct arg_case {
    const char *arg;
    int rc;
    const char *key;
    const char *value; /* dump value, or error substring */
};

static const struct arg_case arg_cases[] = {
    {"api.region=ap-guangzhou", 0, "api.region", "ap-guangzhou"},
    {" api.region = ap-beijing ", 0, "api.region", "ap-beijing"},
    {"kafka.bootstrap.servers=127.0.0.1:9092", 0, "kafka.bootstrap.servers", "127.0.0.1:9092"},
    {"kafka.sasl.username=a=b", 0, "kafka.sasl.username", "a=b"},
    {"api.timeout_ms", -1, NULL, "-X api.timeout_ms: expected key=value"},
    {"=5", -1, NULL, "-X =5: missing key before '='"},
    {"api.timeout_ms=abc", -1, NULL, "-X api.timeout_ms=abc: api.timeout_ms: \"abc\" is not an"},
    {"nope=1", -1, NULL, "-X nope=1: nope: unknown key"},
};

static void test_set_arg(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(arg_cases) / sizeof(arg_cases[0]); i++) {
        const struct arg_case *c = &arg_cases[i];
        struct clw_config cfg;
        char err[512] = "";

        print_message("case: %s\n", c->arg);
        init(&cfg);
        assert_int_equal(clw_config_set_arg(&cfg, c->arg, err, sizeof(err)), c->rc);
        if (c->rc == 0)
            assert_dump(&cfg, c->key, c->value, "-X");
        else
            assert_contains(err, c->value);
        clw_config_free(&cfg);
    }
}

static void test_env(void **state)
{
    static const char *const env[] = {"TENCENTCLOUD_SECRET_ID",
                                      "AKIDenv",
                                      "TENCENTCLOUD_SECRET_KEY",
                                      "keyenv",
                                      "TENCENTCLOUD_SESSION_TOKEN",
                                      "",
                                      "TENCENTCLOUD_REGION",
                                      "ap-nanjing",
                                      NULL};
    static const char *const bad_env[] = {"TENCENTCLOUD_REGION", "Not A Region", NULL};
    struct clw_config cfg;
    char err[512] = "";

    (void)state;
    init(&cfg);
    env_table = env;
    assert_int_equal(clw_config_apply_env(&cfg, fake_getenv, err, sizeof(err)), 0);
    assert_dump(&cfg, "api.secret_id", "AKIDenv", "env TENCENTCLOUD_SECRET_ID");
    assert_dump(&cfg, "api.secret_key", "[redacted]", "env TENCENTCLOUD_SECRET_KEY");
    assert_string_equal(cfg.api_secret_key, "keyenv");
    assert_dump(&cfg, "api.token", "", "default"); /* empty counts as unset */
    assert_dump(&cfg, "api.region", "ap-nanjing", "env TENCENTCLOUD_REGION");
    assert_int_equal(cfg.warnings_len, 0);
    clw_config_free(&cfg);

    init(&cfg);
    env_table = bad_env;
    assert_int_equal(clw_config_apply_env(&cfg, fake_getenv, err, sizeof(err)), -1);
    assert_contains(err, "env TENCENTCLOUD_REGION: api.region: \"Not A Region\" is not a region");
    env_table = NULL;
    clw_config_free(&cfg);
}

/* ---- precedence ---- */

struct prec_case {
    const char *name;
    int use_file;
    int use_env;
    int use_arg;
    int arg_first; /* main.c order: -X, then file, then env */
    const char *region;
    const char *region_source; /* "FILE" stands for the file's PATH:2 */
    const char *client_id;
    const char *client_source;
};

static const struct prec_case prec_cases[] = {
    {"default only", 0, 0, 0, 0, "", "default", NULL, NULL},
    {"file over default", 1, 0, 0, 0, "ap-file", "FILE", "file", "FILE"},
    {"env over file", 1, 1, 0, 0, "ap-env", "env TENCENTCLOUD_REGION", "file", "FILE"},
    {"-X over env and file, -X last", 1, 1, 1, 0, "ap-arg", "-X", "arg", "-X"},
    {"-X over env and file, -X first", 1, 1, 1, 1, "ap-arg", "-X", "arg", "-X"},
    {"-X over file, -X first", 1, 0, 1, 1, "ap-arg", "-X", "arg", "-X"},
    {"env alone", 0, 1, 0, 0, "ap-env", "env TENCENTCLOUD_REGION", NULL, NULL},
};

static void apply_arg(struct clw_config *cfg)
{
    char err[512] = "";

    assert_int_equal(clw_config_set_arg(cfg, "api.region=ap-arg", err, sizeof(err)), 0);
    assert_int_equal(clw_config_set_arg(cfg, "kafka.client.id=arg", err, sizeof(err)), 0);
}

static void test_precedence(void **state)
{
    static const char *const env[] = {"TENCENTCLOUD_REGION", "ap-env", NULL};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(prec_cases) / sizeof(prec_cases[0]); i++) {
        const struct prec_case *c = &prec_cases[i];
        const char *path =
            write_file("# file\napi.region = ap-file\nkafka.client.id = file\n", 0600);
        struct clw_config cfg;
        char err[512] = "";
        char file_src[256];
        char v[256];

        print_message("case: %s\n", c->name);
        init(&cfg);
        if (c->use_arg && c->arg_first)
            apply_arg(&cfg);
        if (c->use_file)
            assert_int_equal(clw_config_load_file(&cfg, path, err, sizeof(err)), 0);
        env_table = c->use_env ? env : NULL;
        assert_int_equal(clw_config_apply_env(&cfg, fake_getenv, err, sizeof(err)), 0);
        if (c->use_arg && !c->arg_first)
            apply_arg(&cfg);
        snprintf(file_src, sizeof(file_src), "%s:2", path);
        assert_dump(&cfg, "api.region", c->region,
                    strcmp(c->region_source, "FILE") == 0 ? file_src : c->region_source);
        snprintf(file_src, sizeof(file_src), "%s:3", path);
        if (c->client_id) {
            assert_dump(&cfg, "kafka.client.id", c->client_id,
                        strcmp(c->client_source, "FILE") == 0 ? file_src : c->client_source);
            assert_int_equal(cfg.kafka_props_len, 1);
        } else {
            assert_int_equal(dump_get(&cfg, "kafka.client.id", v, sizeof(v), NULL, 0), -1);
        }
        env_table = NULL;
        clw_config_free(&cfg);
    }
}

/* ---- kafka passthrough ---- */

struct kafka_case {
    const char *key;
    int rc;
    enum clw_kafka_scope scope;
    const char *name; /* property name, or error substring */
};

static const struct kafka_case kafka_cases[] = {
    {"kafka.bootstrap.servers", 0, CLW_KAFKA_BOTH, "bootstrap.servers"},
    {"kafka.consumer.fetch.wait.max.ms", 0, CLW_KAFKA_CONSUMER, "fetch.wait.max.ms"},
    {"kafka.producer.linger.ms", 0, CLW_KAFKA_PRODUCER, "linger.ms"},
    {"kafka.auto.offset.reset", 0, CLW_KAFKA_BOTH, "auto.offset.reset"},
    {"kafka.producer.partitioner", 0, CLW_KAFKA_PRODUCER, "partitioner"},
    {"kafka.consumerish.prop", 0, CLW_KAFKA_BOTH, "consumerish.prop"},
    {"kafka.enable.auto.commit", -1, 0,
     "kafka.enable.auto.commit: the worker always sets enable.auto.commit=true; it cannot be "
     "overridden"},
    {"kafka.consumer.enable.auto.commit", -1, 0, "always sets enable.auto.commit=true"},
    {"kafka.consumer.auto.commit.enable", -1, 0, "another name for enable.auto.commit"},
    {"kafka.enable.auto.offset.store", -1, 0, "always sets enable.auto.offset.store=false"},
    {"kafka.consumer.isolation.level", -1, 0, "always sets isolation.level=read_committed"},
    {"kafka.producer.enable.idempotence", -1, 0, "always sets enable.idempotence=true"},
    {"kafka.enable.idempotence", -1, 0, "always sets enable.idempotence=true"},
    {"kafka.producer.acks", -1, 0, "always sets acks=all"},
    {"kafka.acks", -1, 0, "always sets acks=all"},
    {"kafka.request.required.acks", -1, 0, "another name for acks"},
    {"kafka.consumer.group.id", -1, 0, "set the consumer group with kafka.group.id"},
    {"kafka.", -1, 0, "kafka.: empty librdkafka property name"},
    {"kafka.consumer.", -1, 0, "empty librdkafka property name"},
    {"kafka.producer", -1, 0, "empty librdkafka property name"},
    {"kafka.bad name", -1, 0, "invalid librdkafka property name"},
};

static void test_kafka_props(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(kafka_cases) / sizeof(kafka_cases[0]); i++) {
        const struct kafka_case *c = &kafka_cases[i];
        struct clw_config cfg;
        char err[512] = "";

        print_message("case: %s\n", c->key);
        init(&cfg);
        assert_int_equal(clw_config_set(&cfg, c->key, "v1", "f:9", err, sizeof(err)), c->rc);
        if (c->rc == 0) {
            assert_int_equal(cfg.kafka_props_len, 1);
            assert_int_equal(cfg.kafka_props[0].scope, c->scope);
            assert_string_equal(cfg.kafka_props[0].name, c->name);
            assert_string_equal(cfg.kafka_props[0].value, "v1");
            assert_string_equal(cfg.kafka_props[0].source, "f:9");
            assert_dump(&cfg, c->key, "v1", "f:9");
        } else {
            assert_int_equal(cfg.kafka_props_len, 0);
            assert_contains(err, c->name);
        }
        clw_config_free(&cfg);
    }
}

static void test_kafka_group_id_is_a_key(void **state)
{
    struct clw_config cfg;

    (void)state;
    init(&cfg);
    set_ok(&cfg, "kafka.group.id", "g1", "f:1");
    assert_string_equal(cfg.kafka_group_id, "g1");
    assert_int_equal(cfg.kafka_props_len, 0);
    /* Scopes are separate properties: both kept, each in the dump. */
    set_ok(&cfg, "kafka.client.id", "both", "f:2");
    set_ok(&cfg, "kafka.consumer.client.id", "cons", "f:3");
    assert_int_equal(cfg.kafka_props_len, 2);
    assert_dump(&cfg, "kafka.client.id", "both", "f:2");
    assert_dump(&cfg, "kafka.consumer.client.id", "cons", "f:3");
    clw_config_free(&cfg);
}

/* ---- secrets in the dump and warnings ---- */

static void test_dump_redacts_secrets(void **state)
{
    static const char *const secret_sets[][2] = {
        {"api.secret_key", "S3CRET-KEY"},
        {"api.token", "S3CRET-TOKEN"},
        {"kafka.sasl.password", "S3CRET-SASL"},
        {"kafka.ssl.key.password", "S3CRET-SSLKEY"},
        {"kafka.ssl.keystore.password", "S3CRET-KEYSTORE"},
        {"kafka.consumer.sasl.oauthbearer.client.secret", "S3CRET-OAUTH"},
        {"kafka.sasl.oauthbearer.config", "S3CRET-OAUTHCFG"},
        {"kafka.ssl.key.pem", "S3CRET-PEM"},
        {"kafka.ssl_key", "S3CRET-SSL_KEY"},
        {"kafka.producer.sasl.jaas.config", "S3CRET-JAAS"},
    };
    struct clw_config cfg;
    char *text;
    size_t i;

    (void)state;
    init(&cfg);
    for (i = 0; i < sizeof(secret_sets) / sizeof(secret_sets[0]); i++)
        set_ok(&cfg, secret_sets[i][0], secret_sets[i][1], "f:1");
    set_ok(&cfg, "kafka.sasl.username", "visible-user", "f:2");
    set_ok(&cfg, "kafka.ssl.key.location", "/etc/visible.pem", "f:3");
    text = dump_string(&cfg);
    assert_null(strstr(text, "S3CRET"));
    for (i = 0; i < sizeof(secret_sets) / sizeof(secret_sets[0]); i++) {
        char line[256];
        snprintf(line, sizeof(line), "%s = [redacted]  # f:1\n", secret_sets[i][0]);
        assert_contains(text, line);
    }
    assert_contains(text, "kafka.sasl.username = visible-user  # f:2\n");
    assert_contains(text, "kafka.ssl.key.location = /etc/visible.pem  # f:3\n");
    free(text);
    clw_config_free(&cfg);
}

static void test_secret_via_arg_warns(void **state)
{
    struct clw_config cfg;
    char err[512] = "";

    (void)state;
    init(&cfg);
    assert_int_equal(clw_config_set_arg(&cfg, "api.region=ap-guangzhou", err, sizeof(err)), 0);
    assert_int_equal(cfg.warnings_len, 0);
    assert_int_equal(clw_config_set_arg(&cfg, "api.secret_key=abc", err, sizeof(err)), 0);
    assert_int_equal(cfg.warnings_len, 1);
    assert_contains(cfg.warnings[0], "-X api.secret_key");
    assert_null(strstr(cfg.warnings[0], "abc"));
    assert_int_equal(clw_config_set_arg(&cfg, "kafka.sasl.password=pw", err, sizeof(err)), 0);
    assert_int_equal(cfg.warnings_len, 2);
    assert_contains(cfg.warnings[1], "-X kafka.sasl.password");
    /* The same warning is kept once. */
    assert_int_equal(clw_config_set_arg(&cfg, "api.secret_key=abd", err, sizeof(err)), 0);
    assert_int_equal(cfg.warnings_len, 2);
    clw_config_free(&cfg);
}

static void test_config_file_with_secret_warns(void **state)
{
    struct clw_config cfg;
    char err[512] = "";
    const char *path;

    (void)state;
    init(&cfg);
    path = write_file("api.region = ap-guangzhou\n", 0644);
    assert_int_equal(clw_config_load_file(&cfg, path, err, sizeof(err)), 0);
    assert_int_equal(cfg.warnings_len, 0);
    path = write_file("api.secret_key = k\n", 0600);
    assert_int_equal(clw_config_load_file(&cfg, path, err, sizeof(err)), 0);
    assert_int_equal(cfg.warnings_len, 0);
    path = write_file("kafka.sasl.password = p\n", 0640);
    assert_int_equal(clw_config_load_file(&cfg, path, err, sizeof(err)), 0);
    assert_int_equal(cfg.warnings_len, 1);
    assert_contains(cfg.warnings[0], "holds a secret and is readable by its group (mode 0640)");
    clw_config_free(&cfg);
}

/* ---- credential files ---- */

struct secret_file_case {
    const char *name;
    const char *key; /* the _file key */
    const char *content;
    mode_t mode;
    int rc;
    const char *expected; /* the loaded value, or the error substring */
    const char *warning;  /* substring of the one warning, or NULL for none */
};

static const struct secret_file_case secret_file_cases[] = {
    {"0600 is fine", "api.secret_key_file", "k1\n", 0600, 0, "k1", NULL},
    {"0400 is fine", "api.secret_key_file", "k1", 0400, 0, "k1", NULL},
    {"group-readable warns", "api.secret_key_file", "k2\n", 0640, 0, "k2",
     "api.secret_key_file: PATH is readable by its group (mode 0640)"},
    {"world-readable refused", "api.secret_key_file", "k3\n", 0644, -1,
     "api.secret_key_file: PATH is readable by others (mode 0644); refusing", NULL},
    {"world-readable token refused", "api.token_file", "t\n", 0604, -1, "readable by others", NULL},
    {"world-readable id refused", "api.secret_id_file", "AKID\n", 0644, -1, "readable by others",
     NULL},
    {"one newline stripped", "api.token_file", "tok\n", 0600, 0, "tok", NULL},
    {"CRLF stripped", "api.token_file", "tok\r\n", 0600, 0, "tok", NULL},
    {"only one newline stripped", "api.token_file", "tok\n\n", 0600, -1, "control characters",
     NULL},
    {"empty refused", "api.secret_key_file", "", 0600, -1, "PATH is empty", NULL},
    {"newline only is empty", "api.secret_key_file", "\n", 0600, -1, "PATH is empty", NULL},
    {"id with a blank refused", "api.secret_id_file", "AK ID\n", 0600, -1,
     "api.secret_id must be printable ASCII", NULL},
    {"id file", "api.secret_id_file", "AKIDfromfile\n", 0600, 0, "AKIDfromfile", NULL},
};

static void replace_path(char *out, size_t outlen, const char *pattern, const char *path)
{
    const char *at = strstr(pattern, "PATH");

    if (!at) {
        snprintf(out, outlen, "%s", pattern);
        return;
    }
    snprintf(out, outlen, "%.*s%s%s", (int)(at - pattern), pattern, path, at + 4);
}

static void test_secret_files(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(secret_file_cases) / sizeof(secret_file_cases[0]); i++) {
        const struct secret_file_case *c = &secret_file_cases[i];
        struct clw_config cfg;
        char err[512] = "";
        char expected[512];
        const char *path;
        char *value;
        int rc;

        print_message("case: %s\n", c->name);
        path = write_file(c->content, c->mode);
        init(&cfg);
        set_ok(&cfg, "api.secret_id", "AKIDx", "f:1");
        set_ok(&cfg, "api.secret_key", "keyx", "f:2");
        if (strcmp(c->key, "api.secret_id_file") == 0)
            set_ok(&cfg, "api.secret_id", "", "f:3");
        if (strcmp(c->key, "api.secret_key_file") == 0)
            set_ok(&cfg, "api.secret_key", "", "f:3");
        set_ok(&cfg, c->key, path, "f:4");
        rc = clw_config_finalize(&cfg, err, sizeof(err));
        if (rc != c->rc)
            fail_msg("rc %d: %s", rc, err);
        if (c->rc == 0) {
            value = strcmp(c->key, "api.token_file") == 0       ? cfg.api_token
                    : strcmp(c->key, "api.secret_id_file") == 0 ? cfg.api_secret_id
                                                                : cfg.api_secret_key;
            assert_string_equal(value, c->expected);
        } else {
            replace_path(expected, sizeof(expected), c->expected, path);
            assert_contains(err, expected);
        }
        if (c->warning) {
            replace_path(expected, sizeof(expected), c->warning, path);
            assert_int_equal(cfg.warnings_len, 1);
            assert_contains(cfg.warnings[0], expected);
        } else {
            assert_int_equal(cfg.warnings_len, 0);
        }
        clw_config_free(&cfg);
    }
}

static void test_secret_file_missing(void **state)
{
    struct clw_config cfg;
    char err[512] = "";

    (void)state;
    init(&cfg);
    set_ok(&cfg, "api.secret_id", "AKIDx", "f:1");
    set_ok(&cfg, "api.secret_key_file", "/nonexistent/key", "f:2");
    assert_int_equal(clw_config_finalize(&cfg, err, sizeof(err)), -1);
    assert_contains(err, "api.secret_key_file: /nonexistent/key: cannot open");
    clw_config_free(&cfg);
}

static void test_reload_secrets(void **state)
{
    struct clw_config cfg;
    char err[512] = "";
    const char *path = write_file("old-key\n", 0600);
    char v[64];
    FILE *f;

    (void)state;
    init(&cfg);
    set_ok(&cfg, "api.secret_id", "AKIDx", "f:1");
    set_ok(&cfg, "api.secret_key_file", path, "f:2");
    assert_int_equal(clw_config_finalize(&cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.api_secret_key, "old-key");
    assert_dump(&cfg, "api.secret_key", "[redacted]", "api.secret_key_file");
    /* A second finalize does not see the file's own value as a conflict. */
    assert_int_equal(clw_config_finalize(&cfg, err, sizeof(err)), 0);

    f = fopen(path, "w");
    assert_non_null(f);
    fputs("new-key\n", f);
    fclose(f);
    assert_int_equal(clw_config_reload_secrets(&cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.api_secret_key, "new-key");

    /* A failed reload keeps the old value. */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(clw_config_reload_secrets(&cfg, err, sizeof(err)), -1);
    assert_contains(err, "readable by others");
    assert_string_equal(cfg.api_secret_key, "new-key");
    assert_int_equal(unlink(path), 0);
    assert_int_equal(clw_config_reload_secrets(&cfg, err, sizeof(err)), -1);
    assert_contains(err, "cannot open");
    assert_string_equal(cfg.api_secret_key, "new-key");
    snprintf(v, sizeof(v), "%s", cfg.api_secret_id);
    assert_string_equal(v, "AKIDx");
    clw_config_free(&cfg);
}

/* ---- finalize ---- */

struct finalize_case {
    const char *name;
    const char *settings[8]; /* key, value pairs; sources "f:N" */
    int with_creds;
    int rc;
    const char *error;
};

static const struct finalize_case finalize_cases[] = {
    {"defaults with credentials", {NULL}, 1, 0, NULL},
    /* Missing credentials are reported by main.c after the --check-config dump. */
    {"no credentials", {NULL}, 0, 0, NULL},
    {"no secret key", {"api.secret_id", "AKID", NULL}, 0, 0, NULL},
    {"key and file",
     {"api.secret_key_file", "/x", NULL},
     1,
     -1,
     "api.secret_key (t:2) and api.secret_key_file (f:0) are both set"},
    {"id and file",
     {"api.secret_id_file", "/x", NULL},
     1,
     -1,
     "api.secret_id (t:1) and api.secret_id_file (f:0) are both set"},
    {"token and file",
     {"api.token", "t", "api.token_file", "/x", NULL},
     1,
     -1,
     "api.token (f:0) and api.token_file (f:1) are both set"},
    {"initial above max backoff",
     {"retry.initial_backoff_ms", "5000", "retry.max_backoff_ms", "4000", NULL},
     1,
     -1,
     "retry.initial_backoff_ms (5000, f:0) must not exceed retry.max_backoff_ms (4000, f:1)"},
    {"equal backoffs are fine",
     {"retry.initial_backoff_ms", "4000", "retry.max_backoff_ms", "4000", NULL},
     1,
     0,
     NULL},
    {"results equal requests",
     {"topic.results", "classiclink.requests", NULL},
     1,
     -1,
     "topic.results (f:0) must differ from topic.requests (default)"},
    {"dlq equal results",
     {"topic.dlq", "classiclink.results", NULL},
     1,
     -1,
     "topic.dlq (f:0) must differ"},
    {"unreadable ca file",
     {"api.ca_file", "/nonexistent/ca.pem", NULL},
     1,
     -1,
     "api.ca_file (f:0): /nonexistent/ca.pem:"},
};

static void test_finalize(void **state)
{
    size_t i;
    size_t j;

    (void)state;
    for (i = 0; i < sizeof(finalize_cases) / sizeof(finalize_cases[0]); i++) {
        const struct finalize_case *c = &finalize_cases[i];
        struct clw_config cfg;
        char err[512] = "";
        char src[32];
        int rc;

        print_message("case: %s\n", c->name);
        init(&cfg);
        if (c->with_creds)
            set_creds(&cfg);
        for (j = 0; c->settings[j]; j += 2) {
            snprintf(src, sizeof(src), "f:%zu", j / 2);
            set_ok(&cfg, c->settings[j], c->settings[j + 1], src);
        }
        rc = clw_config_finalize(&cfg, err, sizeof(err));
        if (rc != c->rc)
            fail_msg("rc %d: %s", rc, err);
        if (c->error)
            assert_contains(err, c->error);
        clw_config_free(&cfg);
    }
}

static void test_env_and_file_conflict(void **state)
{
    static const char *const env[] = {"TENCENTCLOUD_SECRET_KEY", "fromenv", NULL};
    struct clw_config cfg;
    char err[512] = "";
    const char *key = write_file("k\n", 0600);

    (void)state;
    init(&cfg);
    set_ok(&cfg, "api.secret_id", "AKID", "f:1");
    set_ok(&cfg, "api.secret_key_file", key, "f:2");
    env_table = env;
    assert_int_equal(clw_config_apply_env(&cfg, fake_getenv, err, sizeof(err)), 0);
    env_table = NULL;
    assert_int_equal(clw_config_finalize(&cfg, err, sizeof(err)), -1);
    assert_contains(err, "api.secret_key (env TENCENTCLOUD_SECRET_KEY) and api.secret_key_file "
                         "(f:2) are both set");
    clw_config_free(&cfg);
}

/* ---- endpoint ---- */

struct endpoint_case {
    const char *url;
    int rc;
    int https;
    const char *host;
    int port;
    const char *path; /* or the error substring */
};

static const struct endpoint_case endpoint_cases[] = {
    {"https://vpc.api.qcloud.com/v2/index.php", 0, 1, "vpc.api.qcloud.com", 0, "/v2/index.php"},
    {"https://vpc.api.qcloud.com", 0, 1, "vpc.api.qcloud.com", 0, "/"},
    {"https://vpc.api.qcloud.com:8443/v2/index.php", 0, 1, "vpc.api.qcloud.com", 8443,
     "/v2/index.php"},
    {"HTTPS://Vpc.Example.COM/", 0, 1, "Vpc.Example.COM", 0, "/"},
    {"http://127.0.0.1:18080/v2/index.php", 0, 0, "127.0.0.1", 18080, "/v2/index.php"},
    {"http://127.45.6.7/", 0, 0, "127.45.6.7", 0, "/"},
    {"http://localhost:80", 0, 0, "localhost", 80, "/"},
    {"http://LOCALHOST/x", 0, 0, "LOCALHOST", 0, "/x"},
    {"http://[::1]:8080/v2/index.php", 0, 0, "[::1]", 8080, "/v2/index.php"},
    {"https://[2001:db8::1]/", 0, 1, "[2001:db8::1]", 0, "/"},
    {"https://10.0.0.1:443/a/b", 0, 1, "10.0.0.1", 443, "/a/b"},
    {"http://10.0.0.1/", -1, 0, NULL, 0, "http:// is accepted only for loopback hosts"},
    {"http://vpc.api.qcloud.com/v2/index.php", -1, 0, NULL, 0, "only for loopback"},
    {"http://127.0.0.1.evil.example/", -1, 0, NULL, 0, "only for loopback"},
    {"http://[2001:db8::1]/", -1, 0, NULL, 0, "only for loopback"},
    {"http://localhost.evil.example/", -1, 0, NULL, 0, "only for loopback"},
    {"vpc.api.qcloud.com/v2/index.php", -1, 0, NULL, 0, "must start with https://"},
    {"ftp://host/", -1, 0, NULL, 0, "must start with https://"},
    {"", -1, 0, NULL, 0, "must start with https://"},
    {"https://", -1, 0, NULL, 0, "has no host"},
    {"https:///path", -1, 0, NULL, 0, "has no host"},
    {"https://user:pw@host/", -1, 0, NULL, 0, "user information"},
    {"https://host/path?Action=x", -1, 0, NULL, 0, "a query string is not allowed"},
    {"https://host/path#frag", -1, 0, NULL, 0, "a fragment is not allowed"},
    {"https://host:0/", -1, 0, NULL, 0, "invalid port"},
    {"https://host:65536/", -1, 0, NULL, 0, "invalid port"},
    {"https://host:/", -1, 0, NULL, 0, "invalid port"},
    {"https://host:44x/", -1, 0, NULL, 0, "invalid port"},
    {"https://[::1/", -1, 0, NULL, 0, "invalid IPv6 address"},
    {"https://[zz::1]/", -1, 0, NULL, 0, "invalid IPv6 address"},
    {"https://[::1]x/", -1, 0, NULL, 0, "invalid port"},
    {"https://ho st/", -1, 0, NULL, 0, "blanks"},
    {"https://host_name/", -1, 0, NULL, 0, "invalid host name"},
    {"https://-host/", -1, 0, NULL, 0, "invalid host name"},
    {"https://a..b/", -1, 0, NULL, 0, "invalid host name"},
};

static void test_endpoint_table(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(endpoint_cases) / sizeof(endpoint_cases[0]); i++) {
        const struct endpoint_case *c = &endpoint_cases[i];
        struct clw_endpoint ep;
        char err[512] = "";
        int rc;

        print_message("case: %s\n", c->url);
        rc = clw_config_parse_endpoint(c->url, &ep, err, sizeof(err));
        if (rc != c->rc)
            fail_msg("rc %d: %s", rc, err);
        if (rc == 0) {
            assert_int_equal(ep.https, c->https);
            assert_string_equal(ep.host, c->host);
            assert_int_equal(ep.port, c->port);
            assert_string_equal(ep.path, c->path);
        } else {
            assert_contains(err, c->path);
            assert_null(strstr(err, "pw")); /* user information is never echoed */
        }
    }
}

/* ---- generated reference and example file ---- */

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t cap = 0;
    size_t n = 0;

    *len = 0;
    if (!f)
        return NULL;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            data = realloc(data, cap);
            assert_non_null(data);
        }
        size_t r = fread(data + n, 1, 4096, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    data[n] = '\0';
    *len = n;
    return data;
}

static void test_reference_doc_is_fresh(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    const char *update = getenv("CLW_UPDATE_DOCS");
    char *current;
    size_t current_len;

    (void)state;
    assert_non_null(f);
    clw_config_write_reference(f);
    assert_int_equal(fclose(f), 0);
    assert_non_null(strstr(text, "| `api.timeout_ms` | `10000` | 1..3600000 |"));
    assert_non_null(strstr(text, "| `api.signature_method` | `HmacSHA256` | `HmacSHA256` or "
                                 "`HmacSHA1` |"));
    assert_non_null(strstr(text, "| `TENCENTCLOUD_SECRET_KEY` | `api.secret_key` |"));
    assert_non_null(strstr(text, "| `enable.auto.commit` | `true` | consumer |"));
    if (update && strcmp(update, "1") == 0) {
        f = fopen(DOC_PATH, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(text, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
        print_message("rewrote %s\n", DOC_PATH);
    }
    current = read_all(DOC_PATH, &current_len);
    if (!current || current_len != len || memcmp(current, text, len) != 0)
        fail_msg("%s is stale: run this test with CLW_UPDATE_DOCS=1 and commit the result",
                 DOC_PATH);
    free(current);
    free(text);
}

/* The example file loads as it is (everything commented out), and its commented settings
 * ("#key = value") name every key with its default. */
static void test_example_conf(void **state)
{
    struct clw_config as_is;
    struct clw_config uncommented;
    struct clw_config defaults;
    char err[512] = "";
    size_t len = 0;
    char *text = read_all(CONF_PATH, &len);
    char *settings;
    char *line;
    char *o;
    const char *path;
    size_t i;

    (void)state;
    assert_non_null(text);
    init(&as_is);
    init(&defaults);
    assert_int_equal(clw_config_load_file(&as_is, CONF_PATH, err, sizeof(err)), 0);
    {
        char *a = dump_string(&as_is);
        char *b = dump_string(&defaults);
        assert_string_equal(a, b);
        free(a);
        free(b);
    }

    settings = calloc(1, len + 1);
    assert_non_null(settings);
    o = settings;
    for (line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' && line[1] >= 'a' && line[1] <= 'z') {
            size_t n = strlen(line + 1);
            memcpy(o, line + 1, n);
            o[n] = '\n';
            o += n + 1;
        }
    }
    path = write_file(settings, 0600);
    init(&uncommented);
    if (clw_config_load_file(&uncommented, path, err, sizeof(err)) != 0)
        fail_msg("example settings: %s", err);
    for (i = 0; i < N_DEFAULTS; i++) {
        char v[512];
        char s[512];
        char needle[128];
        assert_int_equal(dump_get(&uncommented, default_cases[i].key, v, sizeof(v), s, sizeof(s)),
                         0);
        assert_string_equal(v, default_cases[i].value);
        if (strcmp(s, "default") == 0)
            fail_msg("%s is missing from %s", default_cases[i].key, CONF_PATH);
        snprintf(needle, sizeof(needle), "%s =", default_cases[i].key);
        assert_non_null(strstr(settings, needle));
    }
    assert_int_equal(uncommented.kafka_props_len, 0);
    free(settings);
    free(text);
    clw_config_free(&as_is);
    clw_config_free(&uncommented);
    clw_config_free(&defaults);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_good_values),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_secret_value_not_in_error),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_file_syntax),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_set_arg),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_kafka_props),
        cmocka_unit_test(test_kafka_group_id_is_a_key),
        cmocka_unit_test(test_dump_redacts_secrets),
        cmocka_unit_test(test_secret_via_arg_warns),
        cmocka_unit_test(test_config_file_with_secret_warns),
        cmocka_unit_test(test_secret_files),
        cmocka_unit_test(test_secret_file_missing),
        cmocka_unit_test(test_reload_secrets),
        cmocka_unit_test(test_finalize),
        cmocka_unit_test(test_env_and_file_conflict),
        cmocka_unit_test(test_endpoint_table),
        cmocka_unit_test(test_reference_doc_is_fresh),
        cmocka_unit_test(test_example_conf),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
