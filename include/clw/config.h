/* Configuration: one table of keys (type, default, bounds, doc) drives parsing, --check-config
 * and the generated reference; sources are default < file < environment < -X. */
#ifndef CLW_CONFIG_H
#define CLW_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum clw_sign_method { CLW_SIGN_HMAC_SHA256 = 0, CLW_SIGN_HMAC_SHA1 };
enum clw_http_method { CLW_HTTP_GET = 0, CLW_HTTP_POST };
enum clw_fault_policy { CLW_FAULT_PAUSE = 0, CLW_FAULT_EXIT };
enum clw_api_version { CLW_API_V2 = 0, CLW_API_V3 };
enum clw_delivery_mode { CLW_DELIVERY_AT_LEAST_ONCE = 0, CLW_DELIVERY_EXACTLY_ONCE };

/* Scope of a passthrough librdkafka property. */
enum clw_kafka_scope { CLW_KAFKA_BOTH = 0, CLW_KAFKA_CONSUMER, CLW_KAFKA_PRODUCER };

/* One librdkafka property from a kafka.*, kafka.consumer.* or kafka.producer.* key, with the
 * prefix removed (name "bootstrap.servers"). Owned by the config. */
struct clw_kafka_prop {
    enum clw_kafka_scope scope;
    char *name;
    char *value;
    char *source; /* "default", "FILE:LINE", "env NAME" or "-X" */
};

/* Effective configuration. Every string member is owned by the config, never NULL after
 * clw_config_init() ("" when empty). Secrets (api_secret_key, api_token) are wiped on free. */
struct clw_config {
    /* kafka */
    char *kafka_group_id;
    struct clw_kafka_prop *kafka_props; /* in the order set; later entries win */
    size_t kafka_props_len;
    /* topics */
    char *topic_requests;
    char *topic_results;
    char *topic_dlq;
    /* api */
    char *api_endpoint;
    char *api_region;
    char *api_secret_id;
    char *api_secret_key;
    char *api_token;
    char *api_secret_id_file;
    char *api_secret_key_file;
    char *api_token_file;
    enum clw_sign_method api_signature_method;
    enum clw_http_method api_http_method;
    int64_t api_timeout_ms;
    int64_t api_connect_timeout_ms;
    char *api_ca_file;
    enum clw_fault_policy api_on_worker_fault;
    enum clw_api_version api_version;
    int64_t api_quota;      /* calls/s the account admits per action, whole fleet; 0 = unknown */
    int64_t api_rate_limit; /* calls/s per SecretId+region+action, a cap; 0 = none */
    int64_t api_coalesce_max_instances;
    int64_t api_coalesce_linger_ms;
    char *api_profile;
    char *api_role_name;
    char *api_metadata_endpoint;
    char *api_sts_endpoint;
    /* task follow-up */
    int task_follow; /* 0 false, 1 true */
    int64_t task_max_wait_ms;
    /* delivery */
    enum clw_delivery_mode delivery_mode;
    /* worker */
    int64_t worker_max_in_flight;
    int64_t worker_max_pending_per_partition;
    int64_t worker_max_instances_per_request;
    int64_t worker_shutdown_timeout_ms;
    /* retry */
    int64_t retry_initial_backoff_ms;
    int64_t retry_max_backoff_ms;
    int64_t retry_max_elapsed_ms;
    /* operations */
    char *metrics_listen;
    char *log_level;  /* validated: debug|info|warn|error */
    char *log_format; /* validated: json|text */

    /* Where each table key's value came from, indexed like the table; owned. */
    char **sources;
    /* Warnings collected while loading (secret via -X, readable secret file); owned. */
    char **warnings;
    size_t warnings_len;
};

/* Fills every key with its default. Returns 0, or -1 on allocation failure. */
int clw_config_init(struct clw_config *cfg);
void clw_config_free(struct clw_config *cfg);

/* Sets one key from a given source label ("FILE:LINE", "env NAME", "-X"). Unknown keys outside
 * kafka.*, bad values and out-of-range numbers fail with a message naming the key in err.
 * Returns 0 or -1.
 *
 * Precedence: each table key and each kafka property keeps the label of the source that set it,
 * and the label gives a rank: "default" 0, "FILE:LINE" 1, "env NAME" 2, "-X" 3. A value is
 * always validated, but a set whose rank is lower than the current value's is then ignored
 * (returns 0), while an equal or higher rank replaces it (within one source the last one wins).
 * So main.c may apply the -X arguments before it reads the file and the environment. kafka.*,
 * kafka.consumer.* and kafka.producer.* keys go to kafka_props (one entry per scope and name);
 * kafka.group.id is a table key; properties the worker sets itself (enable.auto.commit, acks,
 * ...) and empty property names are refused. */
int clw_config_set(struct clw_config *cfg, const char *key, const char *value, const char *source,
                   char *err, size_t errlen);

/* Reads a "key = value" file. Errors read "PATH:LINE: key: problem". Returns 0 or -1. A missing
 * file is an error here (the caller decides which files are optional). */
int clw_config_load_file(struct clw_config *cfg, const char *path, char *err, size_t errlen);

/* Parses one -X argument "key=value". Returns 0 or -1 with a message naming the argument. */
int clw_config_set_arg(struct clw_config *cfg, const char *arg, char *err, size_t errlen);

/* Applies TENCENTCLOUD_SECRET_ID, TENCENTCLOUD_SECRET_KEY, TENCENTCLOUD_SESSION_TOKEN and
 * TENCENTCLOUD_REGION from getenv_fn (getenv in production, a table in tests). Environment
 * ranks between file and -X: it does not override a value set by -X. Returns 0 or -1. */
int clw_config_apply_env(struct clw_config *cfg, const char *(*getenv_fn)(const char *name),
                         char *err, size_t errlen);

/* Cross-key checks (key and its _file both set, backoff bounds, endpoint scheme and loopback
 * rule for http://, distinct topics, readable api.ca_file), then reads the *_file credentials
 * (a file readable by others is refused; one readable by its group adds a warning). Missing
 * credentials are not checked here. Returns 0 or -1. */
int clw_config_finalize(struct clw_config *cfg, char *err, size_t errlen);

/* Re-reads the *_file credentials (SIGHUP). Returns 0 or -1; on failure cfg is unchanged. */
int clw_config_reload_secrets(struct clw_config *cfg, char *err, size_t errlen);

/* Prints every effective "key = value  # source" line sorted by key, secrets as [redacted]. */
void clw_config_dump(const struct clw_config *cfg, FILE *out);

/* Writes the configuration reference (Markdown table) generated from the key table. */
void clw_config_write_reference(FILE *out);

/* Parsed pieces of api_endpoint: scheme, host (no port; an IPv6 literal keeps its brackets, as
 * in a Host header), port, path ("/" when the URL has none). Valid after finalize. */
struct clw_endpoint {
    int https;
    char host[256];
    int port; /* 0 when the URL names none */
    char path[512];
};
int clw_config_parse_endpoint(const char *url, struct clw_endpoint *ep, char *err, size_t errlen);

#endif
