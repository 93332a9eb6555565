/* Configuration: one key table drives defaults, validation, the --check-config dump and docs. */
#include "clw/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Sources and ranks. Every table key and every kafka property remembers the label of the source
 * that set it; the label gives its rank: "default" 0, a file ("PATH:LINE", or the name of an
 * api.*_file key for a credential read from a file) 1, "env NAME" 2, "-X" 3. A set whose rank is
 * lower than the current value's is validated and then ignored, so main.c may apply -X before
 * it reads the file and the environment; equal or higher ranks replace (last one wins).
 */
enum { RANK_NONE = -1, RANK_DEFAULT = 0, RANK_FILE, RANK_ENV, RANK_ARG };

enum key_type {
    KEY_STRING, /* char *; values restricts it to a list when non-NULL */
    KEY_SECRET, /* char *; never printed, [redacted] when non-empty */
    KEY_INT,    /* int64_t within min..max */
    KEY_ENUM,   /* an enum stored as int: the index of the value in values */
};

struct key_def {
    const char *name;
    enum key_type type;
    size_t offset;
    const char *def;
    int64_t min;
    int64_t max;
    const char *const *values;
    const char *env; /* environment variable that sets it, or NULL */
    int (*check)(const char *value, char *err, size_t errlen);
    const char *range_doc; /* the reference's range column when not derived from min/max/values */
    const char *doc;
};

/* Table indices: the table below uses them as designated initializers. */
enum {
    K_KAFKA_GROUP_ID,
    K_TOPIC_REQUESTS,
    K_TOPIC_RESULTS,
    K_TOPIC_DLQ,
    K_API_ENDPOINT,
    K_API_REGION,
    K_API_SECRET_ID,
    K_API_SECRET_ID_FILE,
    K_API_SECRET_KEY,
    K_API_SECRET_KEY_FILE,
    K_API_TOKEN,
    K_API_TOKEN_FILE,
    K_API_SIGNATURE_METHOD,
    K_API_HTTP_METHOD,
    K_API_TIMEOUT_MS,
    K_API_CONNECT_TIMEOUT_MS,
    K_API_CA_FILE,
    K_API_ON_WORKER_FAULT,
    K_API_VERSION,
    K_API_QUOTA,
    K_API_RATE_LIMIT,
    K_API_COALESCE_MAX_INSTANCES,
    K_API_COALESCE_LINGER_MS,
    K_API_PROFILE,
    K_API_ROLE_NAME,
    K_API_METADATA_ENDPOINT,
    K_API_STS_ENDPOINT,
    K_TASK_FOLLOW,
    K_DELIVERY_MODE,
    K_TASK_MAX_WAIT_MS,
    K_WORKER_MAX_IN_FLIGHT,
    K_WORKER_MAX_PENDING_PER_PARTITION,
    K_WORKER_MAX_INSTANCES_PER_REQUEST,
    K_WORKER_SHUTDOWN_TIMEOUT_MS,
    K_RETRY_INITIAL_BACKOFF_MS,
    K_RETRY_MAX_BACKOFF_MS,
    K_RETRY_MAX_ELAPSED_MS,
    K_METRICS_LISTEN,
    K_LOG_LEVEL,
    K_LOG_FORMAT,
    K_COUNT
};

_Static_assert(sizeof(enum clw_sign_method) == sizeof(int), "enum keys are stored as int");
_Static_assert(sizeof(enum clw_http_method) == sizeof(int), "enum keys are stored as int");
_Static_assert(sizeof(enum clw_fault_policy) == sizeof(int), "enum keys are stored as int");
_Static_assert(sizeof(enum clw_api_version) == sizeof(int), "enum keys are stored as int");
_Static_assert(sizeof(enum clw_delivery_mode) == sizeof(int), "enum keys are stored as int");

static const char *const sign_methods[] = {"HmacSHA256", "HmacSHA1", NULL};
static const char *const http_methods[] = {"GET", "POST", NULL};
static const char *const fault_policies[] = {"pause", "exit", NULL};
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const log_formats[] = {"json", "text", NULL};
static const char *const api_versions[] = {"2", "3", NULL};
static const char *const booleans[] = {"false", "true", NULL};
static const char *const delivery_modes[] = {"at_least_once", "exactly_once", NULL};

static int check_group_id(const char *v, char *err, size_t errlen);
static int check_topic(const char *v, char *err, size_t errlen);
static int check_topic_optional(const char *v, char *err, size_t errlen);
static int check_endpoint(const char *v, char *err, size_t errlen);
static int check_http_url(const char *v, char *err, size_t errlen);
static int check_profile_name(const char *v, char *err, size_t errlen);
static int check_role_name(const char *v, char *err, size_t errlen);
static int check_region(const char *v, char *err, size_t errlen);
static int check_secret_id(const char *v, char *err, size_t errlen);
static int check_secret(const char *v, char *err, size_t errlen);
static int check_path(const char *v, char *err, size_t errlen);
static int check_listen(const char *v, char *err, size_t errlen);

#define OFF(member) offsetof(struct clw_config, member)
#define MAX_MS      INT64_C(3600000)

static const struct key_def keys[K_COUNT] = {
    [K_KAFKA_GROUP_ID] = {"kafka.group.id", KEY_STRING, OFF(kafka_group_id), "classiclink-worker",
                          0, 0, NULL, NULL, check_group_id, "non-empty", "consumer group"},
    [K_TOPIC_REQUESTS] = {"topic.requests", KEY_STRING, OFF(topic_requests), "classiclink.requests",
                          0, 0, NULL, NULL, check_topic, "topic name", "input topic"},
    [K_TOPIC_RESULTS] = {"topic.results", KEY_STRING, OFF(topic_results), "classiclink.results", 0,
                         0, NULL, NULL, check_topic, "topic name",
                         "outcome topic (must exist and be writable at start)"},
    [K_TOPIC_DLQ] = {"topic.dlq", KEY_STRING, OFF(topic_dlq), "", 0, 0, NULL, NULL,
                     check_topic_optional, "topic name or empty",
                     "dead-letter topic for undecodable input; empty turns it off"},
    [K_API_ENDPOINT] = {"api.endpoint", KEY_STRING, OFF(api_endpoint),
                        "https://vpc.api.qcloud.com/v2/index.php", 0, 0, NULL, NULL, check_endpoint,
                        "`https://HOST[:PORT][/PATH]`",
                        "API URL; the string to sign uses its host name without the port, and its "
                        "path; `http://` is accepted only for loopback hosts (127.0.0.0/8, ::1, "
                        "localhost); no user, query or fragment"},
    [K_API_REGION] = {"api.region", KEY_STRING, OFF(api_region), "", 0, 0, NULL,
                      "TENCENTCLOUD_REGION", check_region, "`[a-z0-9-]{1,32}` or empty",
                      "region used when a request names none"},
    [K_API_SECRET_ID] = {"api.secret_id", KEY_STRING, OFF(api_secret_id), "", 0, 0, NULL,
                         "TENCENTCLOUD_SECRET_ID", check_secret_id, "printable, no blanks",
                         "SecretId of the API key (required, here or in `api.secret_id_file`)"},
    [K_API_SECRET_ID_FILE] = {"api.secret_id_file", KEY_STRING, OFF(api_secret_id_file), "", 0, 0,
                              NULL, NULL, check_path, "path or empty",
                              "file holding the SecretId; re-read on SIGHUP"},
    [K_API_SECRET_KEY] = {"api.secret_key", KEY_SECRET, OFF(api_secret_key), "", 0, 0, NULL,
                          "TENCENTCLOUD_SECRET_KEY", check_secret, "secret",
                          "SecretKey of the API key (required, here or in `api.secret_key_file`)"},
    [K_API_SECRET_KEY_FILE] = {"api.secret_key_file", KEY_STRING, OFF(api_secret_key_file), "", 0,
                               0, NULL, NULL, check_path, "path or empty",
                               "file holding the SecretKey; re-read on SIGHUP"},
    [K_API_TOKEN] = {"api.token", KEY_SECRET, OFF(api_token), "", 0, 0, NULL,
                     "TENCENTCLOUD_SESSION_TOKEN", check_secret, "secret",
                     "session token of temporary credentials; empty for a permanent key"},
    [K_API_TOKEN_FILE] = {"api.token_file", KEY_STRING, OFF(api_token_file), "", 0, 0, NULL, NULL,
                          check_path, "path or empty",
                          "file holding the session token; re-read on SIGHUP"},
    [K_API_SIGNATURE_METHOD] = {"api.signature_method", KEY_ENUM, OFF(api_signature_method),
                                "HmacSHA256", 0, 0, sign_methods, NULL, NULL, NULL,
                                "signature algorithm"},
    [K_API_HTTP_METHOD] = {"api.http_method", KEY_ENUM, OFF(api_http_method), "GET", 0, 0,
                           http_methods, NULL, NULL, NULL,
                           "`GET` (query string) or `POST` (form body)"},
    [K_API_TIMEOUT_MS] = {"api.timeout_ms", KEY_INT, OFF(api_timeout_ms), "10000", 1, MAX_MS, NULL,
                          NULL, NULL, NULL, "limit of one API call attempt, in milliseconds"},
    [K_API_CONNECT_TIMEOUT_MS] = {"api.connect_timeout_ms", KEY_INT, OFF(api_connect_timeout_ms),
                                  "3000", 1, MAX_MS, NULL, NULL, NULL, NULL,
                                  "limit of connecting (TCP and TLS) per attempt, in milliseconds"},
    [K_API_CA_FILE] = {"api.ca_file", KEY_STRING, OFF(api_ca_file), "", 0, 0, NULL, NULL,
                       check_path, "path or empty",
                       "CA bundle for https endpoints; empty uses the system store"},
    [K_API_ON_WORKER_FAULT] = {"api.on_worker_fault", KEY_ENUM, OFF(api_on_worker_fault), "pause",
                               0, 0, fault_policies, NULL, NULL, NULL,
                               "on a worker fault (bad credentials, clock skew, TLS "
                               "verification): `pause` all partitions and probe, or `exit` with "
                               "status 3"},
    [K_API_VERSION] = {"api.version", KEY_ENUM, OFF(api_version), "2", 0, 0, api_versions, NULL,
                       NULL, NULL,
                       "`2`: the v2 API (`/v2/index.php`, HmacSHA1/HmacSHA256 query signature); "
                       "`3`: API 3.0 (JSON body, TC3-HMAC-SHA256); with `3` and the default "
                       "`api.endpoint`, the endpoint is `https://vpc.tencentcloudapi.com/`"},
    [K_API_QUOTA] = {"api.quota", KEY_INT, OFF(api_quota), "100", 0, 1000000, NULL, NULL, NULL,
                     NULL,
                     "API calls per second the account's quota admits per action, for every "
                     "worker sharing it (Tencent documents 100 for AttachClassicLinkVpc). Each "
                     "worker aims for its share (its partitions of the requests topic) and "
                     "corrects it by the throttling answers (4400, `RequestLimitExceeded*`, "
                     "HTTP 429) it gets: a fleet settles just under what is left of the quota "
                     "by other clients, and no worker exceeds this value. `0`: unknown, a "
                     "(SecretId, region, action) is not limited until its first throttling "
                     "answer"},
    [K_API_RATE_LIMIT] = {"api.rate_limit", KEY_INT, OFF(api_rate_limit), "0", 0, 1000000, NULL,
                          NULL, NULL, NULL,
                          "most API calls per second per (SecretId, region, action) of this "
                          "worker, whatever `api.quota` and the throttling answers allow; "
                          "`Retry-After` holds calls. `0`: no such cap"},
    [K_API_COALESCE_MAX_INSTANCES] = {"api.coalesce.max_instances", KEY_INT,
                                      OFF(api_coalesce_max_instances), "100", 1, 1000, NULL, NULL,
                                      NULL, NULL,
                                      "most instance ids in one API call when requests with the "
                                      "same action, region and `vpcId` share it (contract "
                                      "section 8); a request is never split, so a larger one "
                                      "still runs alone; `1` turns coalescing off. 100 is the "
                                      "largest size known to be safe (no document states the "
                                      "API's limit): more is warned about at start, and a call "
                                      "the API refuses for its length is split"},
    [K_API_COALESCE_LINGER_MS] = {"api.coalesce.linger_ms", KEY_INT, OFF(api_coalesce_linger_ms),
                                  "0", 0, 60000, NULL, NULL, NULL, NULL,
                                  "how long a ready request may wait for partners before its "
                                  "call starts (a full call starts at once); `0`: only requests "
                                  "that wait anyway (in-flight cap, rate limit, circuit, "
                                  "Retry-After) are merged, so an idle worker adds no latency"},
    [K_API_PROFILE] = {"api.profile", KEY_STRING, OFF(api_profile), "default", 0, 0, NULL, NULL,
                       check_profile_name, NULL,
                       "the section of the credentials profile file "
                       "(`TENCENTCLOUD_CREDENTIALS_FILE`, else `~/.tencentcloud/credentials`) "
                       "used when no keys are set (contract section 9); another name than "
                       "`default` must exist"},
    [K_API_ROLE_NAME] = {"api.role_name", KEY_STRING, OFF(api_role_name), "", 0, 0, NULL, NULL,
                         check_role_name, NULL,
                         "CAM role whose temporary credentials the CVM metadata service hands "
                         "out, when neither keys nor a profile are set; empty: the role the "
                         "metadata service lists, unless the `TKE_*` variables ask for OIDC"},
    [K_API_METADATA_ENDPOINT] = {"api.metadata_endpoint", KEY_STRING, OFF(api_metadata_endpoint),
                                 "http://metadata.tencentyun.com/latest/meta-data/cam/"
                                 "security-credentials/",
                                 0, 0, NULL, NULL, check_http_url, NULL,
                                 "the CVM metadata service's role credentials path (the role "
                                 "name is appended)"},
    [K_API_STS_ENDPOINT] = {"api.sts_endpoint", KEY_STRING, OFF(api_sts_endpoint),
                            "https://sts.tencentcloudapi.com/", 0, 0, NULL, NULL, check_endpoint,
                            NULL,
                            "STS for `AssumeRoleWithWebIdentity` with the `TKE_*` variables "
                            "(OIDC on TKE); `http://` only for loopback hosts"},
    [K_TASK_FOLLOW] = {"task.follow", KEY_ENUM, OFF(task_follow), "false", 0, 0, booleans, NULL,
                       NULL, NULL,
                       "`true`: poll `DescribeVpcTaskResult` for the returned `taskId` until the "
                       "task ends, and publish the outcome with `taskStatus` then"},
    [K_DELIVERY_MODE] = {"delivery.mode", KEY_ENUM, OFF(delivery_mode), "at_least_once", 0, 0,
                         delivery_modes, NULL, NULL, NULL,
                         "`exactly_once`: outcomes and their input offsets commit together in "
                         "Kafka transactions (needs `kafka.producer.transactional.id`, stable "
                         "per instance and never shared by two live processes); the API call "
                         "itself stays at-least-once"},
    [K_TASK_MAX_WAIT_MS] = {"task.max_wait_ms", KEY_INT, OFF(task_max_wait_ms), "300000", 1,
                            INT64_C(86400000), NULL, NULL, NULL, NULL,
                            "how long a task is followed before the outcome says `taskStatus` "
                            "`timeout`"},
    [K_WORKER_MAX_IN_FLIGHT] = {"worker.max_in_flight", KEY_INT, OFF(worker_max_in_flight), "256",
                                1, 100000, NULL, NULL, NULL, NULL, "API calls in flight at once"},
    [K_WORKER_MAX_PENDING_PER_PARTITION] = {"worker.max_pending_per_partition", KEY_INT,
                                            OFF(worker_max_pending_per_partition), "1000", 1,
                                            1000000, NULL, NULL, NULL, NULL,
                                            "records taken from one partition but not yet "
                                            "committed before the partition pauses"},
    [K_WORKER_MAX_INSTANCES_PER_REQUEST] = {"worker.max_instances_per_request", KEY_INT,
                                            OFF(worker_max_instances_per_request), "100", 1, 1000,
                                            NULL, NULL, NULL, NULL,
                                            "larger requests are invalid (`TooManyInstances`)"},
    [K_WORKER_SHUTDOWN_TIMEOUT_MS] = {"worker.shutdown_timeout_ms", KEY_INT,
                                      OFF(worker_shutdown_timeout_ms), "20000", 0, MAX_MS, NULL,
                                      NULL, NULL, NULL,
                                      "drain limit on SIGTERM and on revoke, in milliseconds"},
    [K_RETRY_INITIAL_BACKOFF_MS] = {"retry.initial_backoff_ms", KEY_INT,
                                    OFF(retry_initial_backoff_ms), "200", 1, MAX_MS, NULL, NULL,
                                    NULL, NULL,
                                    "delay before attempt n+1 is uniform in [0, min(max, "
                                    "initial·2^(n−1))]; `Retry-After` is a lower bound; must not "
                                    "exceed `retry.max_backoff_ms`"},
    [K_RETRY_MAX_BACKOFF_MS] = {"retry.max_backoff_ms", KEY_INT, OFF(retry_max_backoff_ms), "30000",
                                1, INT64_C(86400000), NULL, NULL, NULL, NULL,
                                "upper bound of one backoff delay; also the probe interval "
                                "while paused"},
    [K_RETRY_MAX_ELAPSED_MS] = {"retry.max_elapsed_ms", KEY_INT, OFF(retry_max_elapsed_ms),
                                "600000", 0, INT64_C(31536000000), NULL, NULL, NULL, NULL,
                                "retry budget from the first attempt, not counting time the "
                                "worker is paused; then `retries_exhausted`; `0` retries forever"},
    [K_METRICS_LISTEN] = {"metrics.listen", KEY_STRING, OFF(metrics_listen), "127.0.0.1:9464", 0, 0,
                          NULL, NULL, check_listen, "`HOST:PORT`, `[IPV6]:PORT`, `:PORT` or empty",
                          "listener for `/metrics`, `/healthz`, `/readyz`; `:PORT` listens on "
                          "all addresses; port 0 picks a free one (logged); empty disables it"},
    [K_LOG_LEVEL] = {"log.level", KEY_STRING, OFF(log_level), "info", 0, 0, log_levels, NULL, NULL,
                     NULL, "lowest level logged; re-read on SIGHUP"},
    [K_LOG_FORMAT] = {"log.format", KEY_STRING, OFF(log_format), "json", 0, 0, log_formats, NULL,
                      NULL, NULL, "`json` (one object a line) or `text`, to stderr"},
};

/* librdkafka properties the worker always sets itself (kafka module), refused in every scope. */
struct fixed_prop {
    const char *name;
    const char *value;
    const char *client;
    const char *alias_of; /* NULL, or the property this one is another name for */
};

static const struct fixed_prop fixed_props[] = {
    {"enable.auto.offset.store", "false", "consumer", NULL},
    {"enable.auto.commit", "true", "consumer", NULL},
    {"auto.commit.enable", "true", "consumer", "enable.auto.commit"},
    {"isolation.level", "read_committed", "consumer", NULL},
    {"enable.idempotence", "true", "producer", NULL},
    {"acks", "all", "producer", NULL},
    {"request.required.acks", "all", "producer", "acks"},
};

/* The credential keys and the keys naming their files. */
static const struct {
    int key;
    int file;
} secret_files[] = {
    {K_API_SECRET_ID, K_API_SECRET_ID_FILE},
    {K_API_SECRET_KEY, K_API_SECRET_KEY_FILE},
    {K_API_TOKEN, K_API_TOKEN_FILE},
};

#define N_SECRET_FILES  (sizeof(secret_files) / sizeof(secret_files[0]))
#define SECRET_FILE_MAX 65536
#define SHOW_MAX        64

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Overwrites memory in a way the compiler may not drop (no OpenSSL in this module). */
static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;

    while (n--)
        *v++ = 0;
}

static void free_wiped(char *s)
{
    if (s) {
        wipe(s, strlen(s));
        free(s);
    }
}

/* A copy of s fit for a message: control and non-ASCII bytes as \xHH, cut at SHOW_MAX bytes of
 * input with "...". quote adds double quotes. */
static const char *show(const char *s, char *out, size_t outlen, int quote)
{
    size_t o = 0;
    size_t i;

    if (outlen < 16)
        return "";
    if (quote)
        out[o++] = '"';
    for (i = 0; s[i] && o + 8 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i == SHOW_MAX) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (c < 0x20 || c >= 0x7f) {
            snprintf(out + o, outlen - o, "\\x%02x", c);
            o += 4;
        } else {
            if (quote && (c == '"' || c == '\\'))
                out[o++] = '\\';
            out[o++] = (char)c;
        }
    }
    if (quote)
        out[o++] = '"';
    out[o] = '\0';
    return out;
}

/* "PATH:LINE" ends in a colon and digits; checked before "env " so that no file name can pass
 * for the environment. */
static int is_file_label(const char *source)
{
    size_t n = strlen(source);
    size_t digits = 0;

    while (digits < n && source[n - 1 - digits] >= '0' && source[n - 1 - digits] <= '9')
        digits++;
    return digits > 0 && digits < n && source[n - 1 - digits] == ':';
}

static int source_rank(const char *source)
{
    if (!source)
        return RANK_NONE;
    if (strcmp(source, "default") == 0)
        return RANK_DEFAULT;
    if (strcmp(source, "-X") == 0)
        return RANK_ARG;
    if (is_file_label(source))
        return RANK_FILE;
    if (strncmp(source, "env ", 4) == 0)
        return RANK_ENV;
    return RANK_FILE;
}

static const struct key_def *find_key(const char *name)
{
    size_t i;

    for (i = 0; i < K_COUNT; i++) {
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    }
    return NULL;
}

static char **str_at(struct clw_config *cfg, const struct key_def *k)
{
    return (char **)(void *)((char *)cfg + k->offset);
}

static char *const *cstr_at(const struct clw_config *cfg, const struct key_def *k)
{
    return (char *const *)(const void *)((const char *)cfg + k->offset);
}

static int64_t *int_at(struct clw_config *cfg, const struct key_def *k)
{
    return (int64_t *)(void *)((char *)cfg + k->offset);
}

static int64_t cint_at(const struct clw_config *cfg, const struct key_def *k)
{
    int64_t v;

    memcpy(&v, (const char *)cfg + k->offset, sizeof(v));
    return v;
}

static int cenum_at(const struct clw_config *cfg, const struct key_def *k)
{
    int v;

    memcpy(&v, (const char *)cfg + k->offset, sizeof(v));
    return v;
}

static int value_index(const char *const *values, const char *v)
{
    int i;

    for (i = 0; values[i]; i++) {
        if (strcmp(values[i], v) == 0)
            return i;
    }
    return -1;
}

/* "`a`, `b` or `c`" (markdown) or "a, b or c" into out. */
static void list_values(const char *const *values, int markdown, char *out, size_t outlen)
{
    size_t o = 0;
    int i;

    out[0] = '\0';
    for (i = 0; values[i] && o < outlen; i++) {
        const char *sep = i == 0 ? "" : values[i + 1] ? ", " : " or ";
        int n = snprintf(out + o, outlen - o, markdown ? "%s`%s`" : "%s%s", sep, values[i]);
        if (n < 0)
            break;
        o += (size_t)n;
    }
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Trims in place; returns the start of the trimmed string. */
static char *trim(char *s)
{
    size_t n;

    while (is_blank(*s))
        s++;
    n = strlen(s);
    while (n > 0 && is_blank(s[n - 1]))
        n--;
    s[n] = '\0';
    return s;
}

static int has_control(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return 1;
    }
    return 0;
}

/* Strict decimal: optional '-', digits, nothing else. 0 ok, -1 not a number, -2 overflow. */
static int parse_int(const char *s, int64_t *out)
{
    const char *p = s;
    char *end = NULL;
    long long v;

    if (*p == '-')
        p++;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno == ERANGE)
        return -2;
    if (*end != '\0')
        return -1;
    *out = (int64_t)v;
    return 0;
}

/* ---- value checks (messages name the problem; the caller prefixes the key) ---- */

static int check_group_id(const char *v, char *err, size_t errlen)
{
    if (v[0] == '\0') {
        set_err(err, errlen, "must not be empty");
        return -1;
    }
    if (has_control(v)) {
        set_err(err, errlen, "must not contain control characters");
        return -1;
    }
    return 0;
}

static int check_topic(const char *v, char *err, size_t errlen)
{
    char tmp[96];
    size_t n = strlen(v);
    size_t i;

    if (n == 0) {
        set_err(err, errlen, "must not be empty");
        return -1;
    }
    if (n > 249 || strcmp(v, ".") == 0 || strcmp(v, "..") == 0)
        goto bad;
    for (i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            goto bad;
    }
    return 0;

bad:
    set_err(err, errlen, "%s is not a valid topic name (1-249 of [A-Za-z0-9._-])",
            show(v, tmp, sizeof(tmp), 1));
    return -1;
}

static int check_topic_optional(const char *v, char *err, size_t errlen)
{
    if (v[0] == '\0')
        return 0;
    return check_topic(v, err, errlen);
}

/* An http:// or https:// URL with a host and no blanks or control characters (the metadata
 * service is plain HTTP on a link-local address by design). */
static int check_http_url(const char *v, char *err, size_t errlen)
{
    const char *host = strncmp(v, "http://", 7) == 0    ? v + 7
                       : strncmp(v, "https://", 8) == 0 ? v + 8
                                                        : NULL;
    if (host == NULL || *host == '\0' || *host == '/' || strlen(v) > 1000) {
        set_err(err, errlen, "must be an http:// or https:// URL");
        return -1;
    }
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f) {
            set_err(err, errlen, "must be an http:// or https:// URL without blanks");
            return -1;
        }
    return 0;
}

/* 1..64 of [A-Za-z0-9._-]: a profile section name. */
static int check_profile_name(const char *v, char *err, size_t errlen)
{
    size_t n = strlen(v);
    if (n == 0 || n > 64 ||
        strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                  "0123456789._-") != n) {
        set_err(err, errlen, "must be 1-64 of [A-Za-z0-9._-]");
        return -1;
    }
    return 0;
}

/* Empty, or 1..128 of [A-Za-z0-9+=,.@_-]: a CAM role name (it goes into the metadata URL). */
static int check_role_name(const char *v, char *err, size_t errlen)
{
    size_t n = strlen(v);
    if (n > 128 || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                             "0123456789+=,.@_-") != n) {
        set_err(err, errlen, "must be a CAM role name: up to 128 of [A-Za-z0-9+=,.@_-]");
        return -1;
    }
    return 0;
}

static int check_endpoint(const char *v, char *err, size_t errlen)
{
    struct clw_endpoint ep;

    return clw_config_parse_endpoint(v, &ep, err, errlen);
}

static int check_region(const char *v, char *err, size_t errlen)
{
    char tmp[96];
    size_t n = strlen(v);
    size_t i;

    if (n == 0)
        return 0;
    if (n > 32)
        goto bad;
    for (i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            goto bad;
    }
    return 0;

bad:
    set_err(err, errlen, "%s is not a region (1-32 of [a-z0-9-], e.g. ap-guangzhou)",
            show(v, tmp, sizeof(tmp), 1));
    return -1;
}

static int check_secret_id(const char *v, char *err, size_t errlen)
{
    for (; *v; v++) {
        unsigned char c = (unsigned char)*v;
        if (c <= 0x20 || c >= 0x7f) {
            set_err(err, errlen, "must be printable ASCII without blanks or control characters");
            return -1;
        }
    }
    return 0;
}

static int check_secret(const char *v, char *err, size_t errlen)
{
    if (has_control(v)) {
        set_err(err, errlen, "must not contain control characters");
        return -1;
    }
    return 0;
}

static int check_path(const char *v, char *err, size_t errlen)
{
    if (has_control(v)) {
        set_err(err, errlen, "must not contain control characters");
        return -1;
    }
    return 0;
}

static int valid_hostname(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-'))
            return 0;
        if (c == '.' && i + 1 < n && s[i + 1] == '.')
            return 0;
    }
    return 1;
}

/* Decimal port 1..65535 in s[0..n). Returns the port or -1. */
static int parse_port(const char *s, size_t n)
{
    int port = 0;
    size_t i;

    if (n == 0 || n > 5)
        return -1;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        port = port * 10 + (s[i] - '0');
    }
    return port >= 1 && port <= 65535 ? port : -1;
}

/* An IPv6 literal without brackets in s[0..n). */
static int parse_ipv6(const char *s, size_t n, struct in6_addr *a)
{
    char tmp[INET6_ADDRSTRLEN + 1];

    if (n == 0 || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return inet_pton(AF_INET6, tmp, a) == 1 ? 0 : -1;
}

static int check_listen(const char *v, char *err, size_t errlen)
{
    char tmp[96];
    struct in6_addr a6;
    const char *colon;
    const char *close;
    size_t hlen;

    if (v[0] == '\0')
        return 0;
    if (v[0] == '[') {
        close = strchr(v, ']');
        if (!close || parse_ipv6(v + 1, (size_t)(close - v - 1), &a6) != 0 || close[1] != ':')
            goto bad;
        colon = close + 1;
    } else {
        colon = strrchr(v, ':');
        if (!colon)
            goto bad;
        hlen = (size_t)(colon - v);
        if (memchr(v, ':', hlen)) {
            set_err(err, errlen, "%s: write an IPv6 address in brackets, e.g. [::1]:9464",
                    show(v, tmp, sizeof(tmp), 1));
            return -1;
        }
        if (hlen > 0 && !valid_hostname(v, hlen))
            goto bad;
    }
    /* Port 0 picks a free port (the worker logs the one it got). */
    if (strcmp(colon + 1, "0") != 0 && parse_port(colon + 1, strlen(colon + 1)) < 0)
        goto bad;
    return 0;

bad:
    set_err(err, errlen, "%s is not HOST:PORT, [IPV6]:PORT or :PORT (port 0-65535)",
            show(v, tmp, sizeof(tmp), 1));
    return -1;
}

/* ---- endpoint ---- */

static int host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    size_t n = strlen(host);

    if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0)
        return 1;
    if (host[0] == '[' && n >= 2 && host[n - 1] == ']') {
        if (parse_ipv6(host + 1, n - 2, &a6) != 0)
            return 0;
        if (IN6_IS_ADDR_LOOPBACK(&a6))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
    }
    if (inet_pton(AF_INET, host, &a4) == 1)
        return ((const unsigned char *)&a4.s_addr)[0] == 127;
    return 0;
}

int clw_config_parse_endpoint(const char *url, struct clw_endpoint *ep, char *err, size_t errlen)
{
    char tmp[96];
    const char *p;
    const char *slash;
    const char *after;
    size_t alen;
    size_t hlen;
    struct in6_addr a6;
    const char *c;

    memset(ep, 0, sizeof(*ep));
    if (strncasecmp(url, "https://", 8) == 0) {
        ep->https = 1;
        p = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        p = url + 7;
    } else {
        set_err(err, errlen, "%s must start with https:// (or http:// for a loopback host)",
                show(url, tmp, sizeof(tmp), 1));
        goto fail;
    }
    for (c = url; *c; c++) {
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f) {
            set_err(err, errlen, "%s contains blanks, control or non-ASCII characters",
                    show(url, tmp, sizeof(tmp), 1));
            goto fail;
        }
    }
    if (strchr(url, '?')) {
        set_err(err, errlen, "%s: a query string is not allowed", show(url, tmp, sizeof(tmp), 1));
        goto fail;
    }
    if (strchr(url, '#')) {
        set_err(err, errlen, "%s: a fragment is not allowed", show(url, tmp, sizeof(tmp), 1));
        goto fail;
    }
    slash = strchr(p, '/');
    alen = slash ? (size_t)(slash - p) : strlen(p);
    if (memchr(p, '@', alen)) {
        /* Not echoed: user information may hold a password. */
        set_err(err, errlen, "user information (user@host) is not allowed in the URL");
        goto fail;
    }
    if (alen == 0) {
        set_err(err, errlen, "%s has no host", show(url, tmp, sizeof(tmp), 1));
        goto fail;
    }
    if (p[0] == '[') {
        const char *close = memchr(p, ']', alen);
        if (!close || parse_ipv6(p + 1, (size_t)(close - p - 1), &a6) != 0) {
            set_err(err, errlen, "%s has an invalid IPv6 address", show(url, tmp, sizeof(tmp), 1));
            goto fail;
        }
        hlen = (size_t)(close - p) + 1;
    } else {
        const char *colon = memchr(p, ':', alen);
        hlen = colon ? (size_t)(colon - p) : alen;
        if (!valid_hostname(p, hlen)) {
            set_err(err, errlen, "%s has an invalid host name", show(url, tmp, sizeof(tmp), 1));
            goto fail;
        }
    }
    if (hlen >= sizeof(ep->host)) {
        set_err(err, errlen, "host name too long");
        goto fail;
    }
    memcpy(ep->host, p, hlen);
    ep->host[hlen] = '\0';
    after = p + hlen;
    if (after < p + alen) {
        int port = -1;
        if (*after == ':')
            port = parse_port(after + 1, alen - hlen - 1);
        if (port < 0) {
            set_err(err, errlen, "%s has an invalid port (1-65535)",
                    show(url, tmp, sizeof(tmp), 1));
            goto fail;
        }
        ep->port = port;
    }
    if (slash) {
        if (strlen(slash) >= sizeof(ep->path)) {
            set_err(err, errlen, "URL path too long (at most %zu bytes)", sizeof(ep->path) - 1);
            goto fail;
        }
        memcpy(ep->path, slash, strlen(slash) + 1);
    } else {
        memcpy(ep->path, "/", 2);
    }
    if (!ep->https && !host_is_loopback(ep->host)) {
        set_err(err, errlen,
                "%s: http:// is accepted only for loopback hosts (127.0.0.0/8, [::1], "
                "localhost); use https://",
                show(url, tmp, sizeof(tmp), 1));
        goto fail;
    }
    return 0;

fail:
    memset(ep, 0, sizeof(*ep));
    return -1;
}

/* ---- warnings ---- */

static int push_warning(struct clw_config *cfg, const char *text)
{
    char **w;
    char *s;
    size_t i;

    for (i = 0; i < cfg->warnings_len; i++) {
        if (strcmp(cfg->warnings[i], text) == 0)
            return 0;
    }
    s = strdup(text);
    if (!s)
        return -1;
    w = realloc(cfg->warnings, (cfg->warnings_len + 1) * sizeof(*w));
    if (!w) {
        free(s);
        return -1;
    }
    w[cfg->warnings_len++] = s;
    cfg->warnings = w;
    return 0;
}

static int warn_arg_secret(struct clw_config *cfg, const char *key)
{
    char text[256];

    snprintf(text, sizeof(text),
             "-X %s: a secret on the command line is visible to other local users; prefer a "
             "file or the environment",
             key);
    return push_warning(cfg, text);
}

/* ---- kafka passthrough ---- */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* librdkafka properties whose values are secrets (its sensitive ones, and a margin). */
static int kafka_prop_is_secret(const char *name)
{
    return strstr(name, "password") != NULL || strstr(name, "secret") != NULL ||
           strstr(name, "sasl.jaas") != NULL || strstr(name, "sasl.oauthbearer.config") != NULL ||
           strcmp(name, "ssl.key.pem") == 0 || ends_with(name, ".key") || ends_with(name, "_key");
}

static const char *scope_prefix(enum clw_kafka_scope scope)
{
    switch (scope) {
    case CLW_KAFKA_CONSUMER:
        return "kafka.consumer.";
    case CLW_KAFKA_PRODUCER:
        return "kafka.producer.";
    default:
        return "kafka.";
    }
}

/* Appends a kafka property entry called name with no value yet; NULL when out of memory. */
static struct clw_kafka_prop *new_kafka_prop(struct clw_config *cfg, enum clw_kafka_scope scope,
                                             const char *name)
{
    struct clw_kafka_prop *props;
    struct clw_kafka_prop *p = NULL;
    char *nname = strdup(name);

    if (!nname)
        goto out;
    props = realloc(cfg->kafka_props, (cfg->kafka_props_len + 1) * sizeof(*props));
    if (!props)
        goto out;
    cfg->kafka_props = props;
    p = &props[cfg->kafka_props_len++];
    p->scope = scope;
    p->name = nname;
    p->value = NULL;
    p->source = NULL;
    nname = NULL;
out:
    free(nname);
    return p;
}

static int set_kafka(struct clw_config *cfg, const char *key, const char *value, const char *source,
                     char *err, size_t errlen)
{
    char kshow[96];
    enum clw_kafka_scope scope = CLW_KAFKA_BOTH;
    const char *name = key + strlen("kafka.");
    struct clw_kafka_prop *p = NULL;
    char *nvalue = NULL;
    char *nsource = NULL;
    int rank = source_rank(source);
    int rc = -1;
    size_t i;

    show(key, kshow, sizeof(kshow), 0);
    if (strncmp(name, "consumer.", 9) == 0 || strcmp(name, "consumer") == 0) {
        scope = CLW_KAFKA_CONSUMER;
        name += name[8] ? 9 : 8;
    } else if (strncmp(name, "producer.", 9) == 0 || strcmp(name, "producer") == 0) {
        scope = CLW_KAFKA_PRODUCER;
        name += name[8] ? 9 : 8;
    }
    if (name[0] == '\0') {
        set_err(err, errlen, "%s: empty librdkafka property name", kshow);
        goto out;
    }
    for (i = 0; name[i]; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c >= 0x7f || c == '=') {
            set_err(err, errlen, "%s: invalid librdkafka property name", kshow);
            goto out;
        }
    }
    for (i = 0; i < sizeof(fixed_props) / sizeof(fixed_props[0]); i++) {
        const struct fixed_prop *f = &fixed_props[i];
        if (strcmp(name, f->name) != 0)
            continue;
        if (f->alias_of)
            set_err(err, errlen,
                    "%s: %s is another name for %s, which the worker always sets to %s; it "
                    "cannot be overridden",
                    kshow, f->name, f->alias_of, f->value);
        else
            set_err(err, errlen, "%s: the worker always sets %s=%s; it cannot be overridden", kshow,
                    f->name, f->value);
        goto out;
    }
    if (strcmp(name, "group.id") == 0) {
        set_err(err, errlen, "%s: set the consumer group with kafka.group.id", kshow);
        goto out;
    }
    if (has_control(value)) {
        set_err(err, errlen, "%s: value must not contain control characters", kshow);
        goto out;
    }

    for (i = 0; i < cfg->kafka_props_len; i++) {
        if (cfg->kafka_props[i].scope == scope && strcmp(cfg->kafka_props[i].name, name) == 0) {
            p = &cfg->kafka_props[i];
            break;
        }
    }
    if (p && rank < source_rank(p->source)) {
        rc = 0; /* a lower-ranked source never replaces a higher one */
        goto out;
    }
    nvalue = strdup(value);
    nsource = strdup(source);
    if (!nvalue || !nsource)
        goto oom;
    if (!p) {
        p = new_kafka_prop(cfg, scope, name);
        if (!p)
            goto oom;
    }
    free_wiped(p->value);
    free(p->source);
    p->value = nvalue;
    p->source = nsource;
    nvalue = NULL;
    nsource = NULL;
    if (rank == RANK_ARG && value[0] && kafka_prop_is_secret(name) && warn_arg_secret(cfg, key))
        goto oom;
    rc = 0;
    goto out;

oom:
    set_err(err, errlen, "%s: out of memory", kshow);
out:
    free_wiped(nvalue);
    free(nsource);
    return rc;
}

/* ---- table keys ---- */

static int set_key(struct clw_config *cfg, const struct key_def *k, const char *value,
                   const char *source, char *err, size_t errlen)
{
    char msg[256];
    char vshow[96];
    size_t idx = (size_t)(k - keys);
    int rank = source_rank(source);
    int64_t num = 0;
    int ev = 0;
    char *nvalue = NULL;
    char *nsource = NULL;
    char **slot;
    int rc = -1;
    int r;

    if (k->type == KEY_SECRET)
        snprintf(vshow, sizeof(vshow), "[redacted]");
    else
        show(value, vshow, sizeof(vshow), 1);

    switch (k->type) {
    case KEY_INT:
        r = parse_int(value, &num);
        if (r == -1) {
            set_err(err, errlen, "%s: %s is not an integer", k->name, vshow);
            goto out;
        }
        if (r == -2 || num < k->min || num > k->max) {
            set_err(err, errlen, "%s: %s is out of range (%" PRId64 "..%" PRId64 ")", k->name,
                    vshow, k->min, k->max);
            goto out;
        }
        break;
    case KEY_ENUM:
        ev = value_index(k->values, value);
        if (ev < 0) {
            list_values(k->values, 0, msg, sizeof(msg));
            set_err(err, errlen, "%s: %s is not one of %s (case matters)", k->name, vshow, msg);
            goto out;
        }
        break;
    case KEY_STRING:
    case KEY_SECRET:
        if (k->values && value_index(k->values, value) < 0) {
            list_values(k->values, 0, msg, sizeof(msg));
            set_err(err, errlen, "%s: %s is not one of %s (case matters)", k->name, vshow, msg);
            goto out;
        }
        if (k->check && k->check(value, msg, sizeof(msg)) != 0) {
            set_err(err, errlen, "%s: %s", k->name, msg);
            goto out;
        }
        break;
    }

    if (rank < source_rank(cfg->sources[idx])) {
        rc = 0; /* validated, but a higher-ranked source already set this key */
        goto out;
    }
    nsource = strdup(source);
    if (!nsource)
        goto oom;
    switch (k->type) {
    case KEY_INT:
        *int_at(cfg, k) = num;
        break;
    case KEY_ENUM:
        memcpy((char *)cfg + k->offset, &ev, sizeof(ev));
        break;
    case KEY_STRING:
    case KEY_SECRET:
        nvalue = strdup(value);
        if (!nvalue)
            goto oom;
        slot = str_at(cfg, k);
        free_wiped(*slot);
        *slot = nvalue;
        nvalue = NULL;
        break;
    }
    free(cfg->sources[idx]);
    cfg->sources[idx] = nsource;
    nsource = NULL;
    if (rank == RANK_ARG && k->type == KEY_SECRET && value[0] && warn_arg_secret(cfg, k->name))
        goto oom;
    rc = 0;
    goto out;

oom:
    set_err(err, errlen, "%s: out of memory", k->name);
out:
    free(nsource);
    free_wiped(nvalue);
    return rc;
}

/* Edit distance of short strings, for "did you mean". */
static size_t edit_distance(const char *a, const char *b)
{
    size_t row[64];
    size_t la = strlen(a);
    size_t lb = strlen(b);
    size_t i;
    size_t j;

    if (la >= 64 || lb >= 64)
        return 64;
    for (j = 0; j <= lb; j++)
        row[j] = j;
    for (i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static const char *suggest_key(const char *key)
{
    const char *best = NULL;
    size_t best_d = 3;
    size_t n = strlen(key);
    size_t i;

    for (i = 0; i < K_COUNT; i++) {
        const char *name = keys[i].name;
        size_t m = strlen(name);
        size_t d;
        /* "timeout_ms" for "api.timeout_ms": the key without its section. */
        if (m > n + 1 && name[m - n - 1] == '.' && strcmp(name + m - n, key) == 0)
            return name;
        d = edit_distance(key, name);
        if (d < best_d) {
            best_d = d;
            best = name;
        }
    }
    return best;
}

int clw_config_set(struct clw_config *cfg, const char *key, const char *value, const char *source,
                   char *err, size_t errlen)
{
    char kshow[96];
    const struct key_def *k = find_key(key);
    const char *hint;

    if (k)
        return set_key(cfg, k, value, source, err, errlen);
    if (strncmp(key, "kafka.", 6) == 0)
        return set_kafka(cfg, key, value, source, err, errlen);
    hint = suggest_key(key);
    if (hint)
        set_err(err, errlen, "%s: unknown key (did you mean %s?)",
                show(key, kshow, sizeof(kshow), 0), hint);
    else
        set_err(err, errlen, "%s: unknown key", show(key, kshow, sizeof(kshow), 0));
    return -1;
}

/* ---- init / free ---- */

int clw_config_init(struct clw_config *cfg)
{
    char err[256];
    size_t i;

    memset(cfg, 0, sizeof(*cfg));
    cfg->sources = calloc(K_COUNT, sizeof(*cfg->sources));
    if (!cfg->sources)
        goto fail;
    for (i = 0; i < K_COUNT; i++) {
        if (set_key(cfg, &keys[i], keys[i].def, "default", err, sizeof(err)) != 0)
            goto fail;
    }
    return 0;

fail:
    clw_config_free(cfg);
    return -1;
}

void clw_config_free(struct clw_config *cfg)
{
    size_t i;

    for (i = 0; i < K_COUNT; i++) {
        if (keys[i].type == KEY_STRING || keys[i].type == KEY_SECRET)
            free_wiped(*str_at(cfg, &keys[i]));
    }
    if (cfg->sources) {
        for (i = 0; i < K_COUNT; i++)
            free(cfg->sources[i]);
        free(cfg->sources);
    }
    for (i = 0; i < cfg->kafka_props_len; i++) {
        free(cfg->kafka_props[i].name);
        free_wiped(cfg->kafka_props[i].value);
        free(cfg->kafka_props[i].source);
    }
    free(cfg->kafka_props);
    for (i = 0; i < cfg->warnings_len; i++)
        free(cfg->warnings[i]);
    free(cfg->warnings);
    memset(cfg, 0, sizeof(*cfg));
}

/* ---- sources: file, -X, environment ---- */

static int key_is_secret(const char *key)
{
    const struct key_def *k = find_key(key);

    if (k)
        return k->type == KEY_SECRET;
    if (strncmp(key, "kafka.", 6) == 0)
        return kafka_prop_is_secret(key);
    return 0;
}

int clw_config_load_file(struct clw_config *cfg, const char *path, char *err, size_t errlen)
{
    char msg[512];
    char kshow[96];
    char text[512];
    char *source = NULL;
    char *line = NULL;
    size_t cap = 0;
    size_t source_len = strlen(path) + 24;
    long lineno = 0;
    int holds_secret = 0;
    int rc = -1;
    struct stat st;
    ssize_t n;
    FILE *f;

    f = fopen(path, "re");
    if (!f) {
        set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
        set_err(err, errlen, "%s: not a readable file", path);
        goto out;
    }
    source = malloc(source_len);
    if (!source) {
        set_err(err, errlen, "%s: out of memory", path);
        goto out;
    }
    for (;;) {
        char *s;
        char *eq;
        char *key;
        char *value;

        errno = 0;
        n = getline(&line, &cap, f);
        if (n < 0)
            break;
        lineno++;
        if (memchr(line, '\0', (size_t)n)) {
            set_err(err, errlen, "%s:%ld: line contains a NUL byte", path, lineno);
            goto out;
        }
        s = line;
        if (lineno == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0)
            s += 3; /* a UTF-8 byte order mark some editors add */
        s = trim(s);
        if (s[0] == '\0' || s[0] == '#')
            continue;
        eq = strchr(s, '=');
        if (!eq) {
            set_err(err, errlen, "%s:%ld: %s: expected \"key = value\"", path, lineno,
                    show(s, kshow, sizeof(kshow), 0));
            goto out;
        }
        *eq = '\0';
        key = trim(s);
        value = trim(eq + 1);
        if (key[0] == '\0') {
            set_err(err, errlen, "%s:%ld: missing key before '='", path, lineno);
            goto out;
        }
        snprintf(source, source_len, "%s:%ld", path, lineno);
        if (clw_config_set(cfg, key, value, source, msg, sizeof(msg)) != 0) {
            set_err(err, errlen, "%s:%ld: %s", path, lineno, msg);
            goto out;
        }
        if (value[0] && key_is_secret(key))
            holds_secret = 1;
    }
    if (ferror(f)) {
        set_err(err, errlen, "%s: read error: %s", path, strerror(errno));
        goto out;
    }
    if (holds_secret && (st.st_mode & (S_IRGRP | S_IROTH))) {
        snprintf(text, sizeof(text),
                 "%s holds a secret and is readable by %s (mode %04o); chmod go-r it", path,
                 (st.st_mode & S_IROTH) ? "others" : "its group", (unsigned)(st.st_mode & 07777));
        if (push_warning(cfg, text) != 0) {
            set_err(err, errlen, "%s: out of memory", path);
            goto out;
        }
    }
    rc = 0;

out:
    if (line) {
        wipe(line, cap); /* the last line read may have held a secret */
        free(line);
    }
    free(source);
    fclose(f);
    return rc;
}

int clw_config_set_arg(struct clw_config *cfg, const char *arg, char *err, size_t errlen)
{
    char msg[512];
    char ashow[96];
    char vshow[96];
    char *copy = NULL;
    char *eq;
    char *key;
    char *value;
    int rc = -1;

    copy = strdup(arg);
    if (!copy) {
        set_err(err, errlen, "-X: out of memory");
        goto out;
    }
    eq = strchr(copy, '=');
    if (!eq) {
        set_err(err, errlen, "-X %s: expected key=value", show(arg, ashow, sizeof(ashow), 0));
        goto out;
    }
    *eq = '\0';
    key = trim(copy);
    value = trim(eq + 1);
    if (key[0] == '\0') {
        set_err(err, errlen, "-X %s: missing key before '='", show(arg, ashow, sizeof(ashow), 0));
        goto out;
    }
    if (clw_config_set(cfg, key, value, "-X", msg, sizeof(msg)) != 0) {
        set_err(err, errlen, "-X %s=%s: %s", show(key, ashow, sizeof(ashow), 0),
                key_is_secret(key) ? "[redacted]" : show(value, vshow, sizeof(vshow), 0), msg);
        goto out;
    }
    rc = 0;

out:
    if (copy) {
        wipe(copy, strlen(arg));
        free(copy);
    }
    return rc;
}

int clw_config_apply_env(struct clw_config *cfg, const char *(*getenv_fn)(const char *name),
                         char *err, size_t errlen)
{
    char msg[512];
    char source[64];
    char *copy;
    const char *v;
    size_t i;
    int r;

    for (i = 0; i < K_COUNT; i++) {
        if (!keys[i].env)
            continue;
        v = getenv_fn(keys[i].env);
        if (!v || v[0] == '\0')
            continue; /* empty counts as unset */
        copy = strdup(v);
        if (!copy) {
            set_err(err, errlen, "env %s: out of memory", keys[i].env);
            return -1;
        }
        snprintf(source, sizeof(source), "env %s", keys[i].env);
        r = set_key(cfg, &keys[i], trim(copy), source, msg, sizeof(msg));
        free_wiped(copy);
        if (r != 0) {
            set_err(err, errlen, "env %s: %s", keys[i].env, msg);
            return -1;
        }
    }
    return 0;
}

/* ---- credential files ---- */

/* Reads one credential file: a regular file not readable by others; one trailing newline is
 * removed. *warning gets a malloc'd text when the group may read it. */
static int read_secret_file(const struct key_def *fk, const char *path, char **out, char **warning,
                            char *err, size_t errlen)
{
    char text[512];
    char *buf = NULL;
    size_t len = 0;
    struct stat st;
    ssize_t r;
    int fd;
    int rc = -1;

    *out = NULL;
    *warning = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        set_err(err, errlen, "%s: %s: cannot open: %s", fk->name, path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        set_err(err, errlen, "%s: %s: not a regular file", fk->name, path);
        goto out;
    }
    if (st.st_mode & S_IROTH) {
        set_err(err, errlen,
                "%s: %s is readable by others (mode %04o); refusing it: chmod o-r (0600 or 0640)",
                fk->name, path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    buf = malloc(SECRET_FILE_MAX + 1);
    if (!buf) {
        set_err(err, errlen, "%s: out of memory", fk->name);
        goto out;
    }
    for (;;) {
        r = read(fd, buf + len, SECRET_FILE_MAX + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            set_err(err, errlen, "%s: %s: read error: %s", fk->name, path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > SECRET_FILE_MAX) {
            set_err(err, errlen, "%s: %s: larger than %d bytes", fk->name, path, SECRET_FILE_MAX);
            goto out;
        }
    }
    if (len > 0 && buf[len - 1] == '\n') {
        len--;
        if (len > 0 && buf[len - 1] == '\r')
            len--;
    }
    buf[len] = '\0';
    if (len == 0) {
        set_err(err, errlen, "%s: %s is empty", fk->name, path);
        goto out;
    }
    if (memchr(buf, '\0', len)) {
        set_err(err, errlen, "%s: %s contains a NUL byte", fk->name, path);
        goto out;
    }
    if (st.st_mode & S_IRGRP) {
        snprintf(text, sizeof(text), "%s: %s is readable by its group (mode %04o); chmod g-r it",
                 fk->name, path, (unsigned)(st.st_mode & 07777));
        *warning = strdup(text);
        if (!*warning) {
            set_err(err, errlen, "%s: out of memory", fk->name);
            goto out;
        }
    }
    *out = buf;
    buf = NULL;
    rc = 0;

out:
    if (buf) {
        wipe(buf, SECRET_FILE_MAX + 1);
        free(buf);
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Reads every configured credential file; installs them all or, on any error, none. */
static int load_secret_files(struct clw_config *cfg, char *err, size_t errlen)
{
    char msg[256];
    char *values[N_SECRET_FILES] = {NULL};
    char *sources[N_SECRET_FILES] = {NULL};
    char *warnings[N_SECRET_FILES] = {NULL};
    size_t i;
    int rc = -1;

    for (i = 0; i < N_SECRET_FILES; i++) {
        const struct key_def *k = &keys[secret_files[i].key];
        const struct key_def *fk = &keys[secret_files[i].file];
        const char *path = *cstr_at(cfg, fk);

        if (path[0] == '\0')
            continue;
        if (read_secret_file(fk, path, &values[i], &warnings[i], err, errlen) != 0)
            goto out;
        if (k->check && k->check(values[i], msg, sizeof(msg)) != 0) {
            set_err(err, errlen, "%s: %s: %s %s", fk->name, path, k->name, msg);
            goto out;
        }
        sources[i] = strdup(fk->name);
        if (!sources[i]) {
            set_err(err, errlen, "%s: out of memory", fk->name);
            goto out;
        }
    }
    for (i = 0; i < N_SECRET_FILES; i++) {
        if (warnings[i] && push_warning(cfg, warnings[i]) != 0) {
            set_err(err, errlen, "out of memory");
            goto out;
        }
    }
    for (i = 0; i < N_SECRET_FILES; i++) {
        const struct key_def *k = &keys[secret_files[i].key];
        char **slot = str_at(cfg, k);

        if (!values[i])
            continue;
        free_wiped(*slot);
        *slot = values[i];
        values[i] = NULL;
        free(cfg->sources[secret_files[i].key]);
        cfg->sources[secret_files[i].key] = sources[i];
        sources[i] = NULL;
    }
    rc = 0;

out:
    for (i = 0; i < N_SECRET_FILES; i++) {
        free_wiped(values[i]);
        free(sources[i]);
        free(warnings[i]);
    }
    return rc;
}

int clw_config_reload_secrets(struct clw_config *cfg, char *err, size_t errlen)
{
    return load_secret_files(cfg, err, errlen);
}

int clw_config_finalize(struct clw_config *cfg, char *err, size_t errlen)
{
    struct clw_endpoint ep;
    char msg[256];
    size_t i;

    for (i = 0; i < N_SECRET_FILES; i++) {
        int ki = secret_files[i].key;
        int fi = secret_files[i].file;
        const char *v = *cstr_at(cfg, &keys[ki]);
        const char *f = *cstr_at(cfg, &keys[fi]);

        /* A value that came from the file itself (an earlier finalize) is no conflict. */
        if (v[0] && f[0] && strcmp(cfg->sources[ki], keys[fi].name) != 0) {
            set_err(err, errlen, "%s (%s) and %s (%s) are both set; set only one", keys[ki].name,
                    cfg->sources[ki], keys[fi].name, cfg->sources[fi]);
            return -1;
        }
    }
    /* API 3.0 lives on its own host: the default endpoint follows api.version. */
    if (cfg->api_version == CLW_API_V3 && strcmp(cfg->sources[K_API_ENDPOINT], "default") == 0 &&
        strcmp(cfg->api_endpoint, keys[K_API_ENDPOINT].def) == 0) {
        char *v3 = strdup("https://vpc.tencentcloudapi.com/");
        char *src = strdup("default for api.version 3");
        if (v3 == NULL || src == NULL) {
            free(v3);
            free(src);
            set_err(err, errlen, "out of memory");
            return -1;
        }
        free(cfg->api_endpoint);
        cfg->api_endpoint = v3;
        free(cfg->sources[K_API_ENDPOINT]);
        cfg->sources[K_API_ENDPOINT] = src;
    }
    if (cfg->retry_initial_backoff_ms > cfg->retry_max_backoff_ms) {
        set_err(err, errlen,
                "retry.initial_backoff_ms (%" PRId64 ", %s) must not exceed "
                "retry.max_backoff_ms (%" PRId64 ", %s)",
                cfg->retry_initial_backoff_ms, cfg->sources[K_RETRY_INITIAL_BACKOFF_MS],
                cfg->retry_max_backoff_ms, cfg->sources[K_RETRY_MAX_BACKOFF_MS]);
        return -1;
    }
    if (clw_config_parse_endpoint(cfg->api_endpoint, &ep, msg, sizeof(msg)) != 0) {
        set_err(err, errlen, "api.endpoint (%s): %s", cfg->sources[K_API_ENDPOINT], msg);
        return -1;
    }
    if (strcmp(cfg->topic_results, cfg->topic_requests) == 0) {
        set_err(err, errlen, "topic.results (%s) must differ from topic.requests (%s)",
                cfg->sources[K_TOPIC_RESULTS], cfg->sources[K_TOPIC_REQUESTS]);
        return -1;
    }
    if (cfg->topic_dlq[0] && (strcmp(cfg->topic_dlq, cfg->topic_requests) == 0 ||
                              strcmp(cfg->topic_dlq, cfg->topic_results) == 0)) {
        set_err(err, errlen, "topic.dlq (%s) must differ from topic.requests and topic.results",
                cfg->sources[K_TOPIC_DLQ]);
        return -1;
    }
    if (cfg->api_ca_file[0] && access(cfg->api_ca_file, R_OK) != 0) {
        set_err(err, errlen, "api.ca_file (%s): %s: %s", cfg->sources[K_API_CA_FILE],
                cfg->api_ca_file, strerror(errno));
        return -1;
    }
    if (cfg->delivery_mode == CLW_DELIVERY_EXACTLY_ONCE) {
        int has_tid = 0;
        for (size_t k = 0; k < cfg->kafka_props_len; k++)
            has_tid |= cfg->kafka_props[k].scope != CLW_KAFKA_CONSUMER &&
                       strcmp(cfg->kafka_props[k].name, "transactional.id") == 0 &&
                       cfg->kafka_props[k].value[0] != '\0';
        if (!has_tid) {
            set_err(err, errlen,
                    "delivery.mode (%s): exactly_once needs "
                    "kafka.producer.transactional.id",
                    cfg->sources[K_DELIVERY_MODE]);
            return -1;
        }
    }
    if (load_secret_files(cfg, err, errlen) != 0)
        return -1;
    /* Missing credentials are main.c's to report, after --check-config printed the dump. */
    return 0;
}

/* ---- dump and reference ---- */

struct dump_line {
    const char *key;
    char *owned;       /* key when built here (kafka properties) */
    const char *value; /* NULL: the number in num */
    const char *source;
    char num[32];
};

static int dump_cmp(const void *a, const void *b)
{
    const struct dump_line *x = a;
    const struct dump_line *y = b;

    return strcmp(x->key, y->key);
}

/* Values are printed as they are, except control bytes (from -X or the environment) as \xHH. */
static void put_clean(FILE *out, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
}

void clw_config_dump(const struct clw_config *cfg, FILE *out)
{
    size_t n = K_COUNT + cfg->kafka_props_len;
    struct dump_line *lines = calloc(n, sizeof(*lines));
    size_t i;

    if (!lines) {
        fputs("# out of memory\n", out);
        return;
    }
    for (i = 0; i < K_COUNT; i++) {
        const struct key_def *k = &keys[i];
        struct dump_line *l = &lines[i];

        l->key = k->name;
        l->source = cfg->sources[i];
        switch (k->type) {
        case KEY_INT:
            snprintf(l->num, sizeof(l->num), "%" PRId64, cint_at(cfg, k));
            l->value = NULL; /* not l->num: qsort moves the lines */
            break;
        case KEY_ENUM:
            l->value = k->values[cenum_at(cfg, k)];
            break;
        case KEY_SECRET:
            l->value = (*cstr_at(cfg, k))[0] ? "[redacted]" : "";
            break;
        case KEY_STRING:
            l->value = *cstr_at(cfg, k);
            break;
        }
    }
    for (i = 0; i < cfg->kafka_props_len; i++) {
        const struct clw_kafka_prop *p = &cfg->kafka_props[i];
        const char *prefix = scope_prefix(p->scope);
        struct dump_line *l = &lines[K_COUNT + i];
        size_t len = strlen(prefix) + strlen(p->name) + 1;

        l->owned = malloc(len);
        if (!l->owned) {
            fputs("# out of memory\n", out);
            goto out;
        }
        snprintf(l->owned, len, "%s%s", prefix, p->name);
        l->key = l->owned;
        l->value = kafka_prop_is_secret(p->name) && p->value[0] ? "[redacted]" : p->value;
        l->source = p->source;
    }
    qsort(lines, n, sizeof(*lines), dump_cmp);
    for (i = 0; i < n; i++) {
        fputs(lines[i].key, out);
        fputs(" = ", out);
        put_clean(out, lines[i].value ? lines[i].value : lines[i].num);
        fputs("  # ", out);
        put_clean(out, lines[i].source);
        fputc('\n', out);
    }

out:
    for (i = 0; i < n; i++)
        free(lines[i].owned);
    free(lines);
}

/* Markdown table cell text: '|' escaped. */
static void put_cell(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputc('\\', out);
        fputc(*s, out);
    }
}

void clw_config_write_reference(FILE *out)
{
    char values[256];
    size_t i;

    fputs(
        "# Configuration reference\n"
        "\n"
        "<!-- Generated from the key table in src/config.c by clw_config_write_reference(); do\n"
        "     not edit. tests/unit/test_config.c fails while this file is stale and rewrites it\n"
        "     when run with CLW_UPDATE_DOCS=1. -->\n"
        "\n"
        "classiclink-worker reads `key = value` lines from the file named with `-c FILE`, or\n"
        "else from the first existing of `/etc/classiclink-worker/classiclink-worker.conf` and\n"
        "`./conf/classiclink-worker.conf` (none existing is not an error). `-X key=value` sets\n"
        "any key from the command line; `--check-config` validates and prints every effective\n"
        "`key = value  # source`, sorted by key, secrets as `[redacted]`.\n"
        "\n"
        "## Rules\n"
        "\n"
        "- Precedence, lowest first: default, file, environment, `-X`. Within one source the\n"
        "  last occurrence of a key wins. A value from a higher source is never replaced by a\n"
        "  lower one, whatever the order in which the sources are read.\n"
        "- `#` starts a comment only as the first non-blank character of a line; anywhere else\n"
        "  it is part of the value. Keys and values are trimmed of surrounding blanks; there is\n"
        "  no quoting, so a value may contain `=` and `#`.\n"
        "- Unknown keys outside `kafka.*` are errors. Every error names the `file:line`, the `-X`\n"
        "  argument or the environment variable, and the key.\n"
        "- Numbers are decimal integers without sign, unit or trailing text, within the range\n"
        "  shown; durations are in milliseconds. Listed values are case-sensitive.\n"
        "\n"
        "## Keys\n"
        "\n"
        "| key | default | range / values | meaning |\n"
        "|---|---|---|---|\n"
        "| `kafka.<prop>` | | any librdkafka property | librdkafka property for the consumer and "
        "the producer (e.g. `kafka.bootstrap.servers`, `kafka.security.protocol`, "
        "`kafka.sasl.*`); librdkafka rejects properties it does not know at start |\n"
        "| `kafka.consumer.<prop>` | | any librdkafka property | consumer only; wins over "
        "`kafka.<prop>` |\n"
        "| `kafka.producer.<prop>` | | any librdkafka property | producer only; wins over "
        "`kafka.<prop>` |\n",
        out);
    for (i = 0; i < K_COUNT; i++) {
        const struct key_def *k = &keys[i];

        fprintf(out, "| `%s` | ", k->name);
        if (k->def[0]) {
            fputc('`', out);
            put_cell(out, k->def);
            fputc('`', out);
        } else {
            fputs("empty", out);
        }
        fputs(" | ", out);
        if (k->type == KEY_INT) {
            fprintf(out, "%" PRId64 "..%" PRId64, k->min, k->max);
        } else if (k->values) {
            list_values(k->values, 1, values, sizeof(values));
            put_cell(out, values);
        } else if (k->range_doc) {
            put_cell(out, k->range_doc);
        }
        fputs(" | ", out);
        put_cell(out, k->doc);
        if (k->env)
            fprintf(out, "; environment `%s`", k->env);
        fputs(" |\n", out);
    }

    fputs("\n"
          "## Environment\n"
          "\n"
          "An environment variable set to an empty string counts as unset.\n"
          "\n"
          "| variable | key |\n"
          "|---|---|\n",
          out);
    for (i = 0; i < K_COUNT; i++) {
        if (keys[i].env)
            fprintf(out, "| `%s` | `%s` |\n", keys[i].env, keys[i].name);
    }

    fputs("\n"
          "## Kafka properties the worker sets itself\n"
          "\n"
          "These are always set and cannot be overridden: a `kafka.*`, `kafka.consumer.*` or\n"
          "`kafka.producer.*` key naming one of them is an error. The consumer group is\n"
          "`kafka.group.id` (`kafka.consumer.group.id` is refused).\n"
          "\n"
          "| property | value | client |\n"
          "|---|---|---|\n",
          out);
    for (i = 0; i < sizeof(fixed_props) / sizeof(fixed_props[0]); i++) {
        const struct fixed_prop *f = &fixed_props[i];
        if (f->alias_of)
            fprintf(out, "| `%s` | (another name for `%s`) | %s |\n", f->name, f->alias_of,
                    f->client);
        else
            fprintf(out, "| `%s` | `%s` | %s |\n", f->name, f->value, f->client);
    }
    fputs("\n"
          "The worker changes five librdkafka defaults, which may be overridden:\n"
          "`auto.offset.reset=earliest` (a new group must not skip queued requests), consumer\n"
          "`auto.commit.interval.ms=100` (a committable offset reaches the group coordinator\n"
          "within 100 ms, not librdkafka's 5 000: with publishing before it, a crash redoes less\n"
          "than a quarter second of work, not five seconds), consumer `session.timeout.ms=10000` "
          "(after a crash the group waits this\n"
          "long for the dead member, and no member can commit meanwhile; librdkafka's 45 000 is\n"
          "longer than `worker.shutdown_timeout_ms`, so a SIGTERM in that window could not wait\n"
          "for the group to settle; with `group.instance.id` set it above a restart's "
          "duration),\n"
          "consumer `heartbeat.interval.ms=1000` (members learn of a rebalance within a second, "
          "not\n"
          "three: while a rebalance is pending no member can commit and intake waits, so a "
          "scale-up\n"
          "costs the fleet about a second of its quota)\n"
          "and producer `partitioner=murmur2_random` (the same partition for a key as Java\n"
          "clients). Revocation and SIGTERM commit before they return (SIGTERM: exit status 4\n"
          "when it could not).\n"
          "\n"
          "## Credentials and secrets\n"
          "\n"
          "- `api.secret_id` and `api.secret_key` are required; each comes from its key, its\n"
          "  `_file` key or its environment variable. Setting a key and its `_file` key (from any\n"
          "  sources) is an error.\n"
          "- A `_file` key names a file holding the value; one trailing newline is removed. It is\n"
          "  read at start and again on SIGHUP (a failed re-read keeps the old credentials). A\n"
          "  file readable by others is refused; one readable by its group draws a warning.\n"
          "- `api.secret_key`, `api.token` and librdkafka properties holding secrets (names\n"
          "  containing `password`, `secret`, `sasl.jaas` or `sasl.oauthbearer.config`,\n"
          "  `ssl.key.pem`, names ending in `.key` or `_key`) are printed as `[redacted]`.\n"
          "- A warning is logged when a secret is set with `-X` (command lines are visible to\n"
          "  other local users) and when a configuration file holding a secret is readable by\n"
          "  group or others.\n",
          out);
}
