/* An in-process worker without broker and API, for the unit tests of the worker's own paths. */
#include "worker_harness.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static volatile sig_atomic_t no_flag;
static const struct clw_worker_io io = {&no_flag, &no_flag, -1, NULL, NULL};

static void on_delivered(void *arg, void *opaque, enum clw_publish_err err, const char *errstr)
{
    clw_worker_on_delivered(arg, opaque, err, errstr);
}

static void set_all(struct clw_config *cfg, const char *const *kv)
{
    char err[512];
    for (size_t i = 0; kv != NULL && kv[i] != NULL; i += 2)
        if (clw_config_set(cfg, kv[i], kv[i + 1], "-X", err, sizeof(err)) != 0)
            fail_msg("%s=%s: %s", kv[i], kv[i + 1], err);
}

struct worker *clw_test_worker_new(struct clw_config *cfg, const char *const *kv)
{
    static const char *const base[] = {"kafka.bootstrap.servers",
                                       "127.0.0.1:1",
                                       "api.secret_id",
                                       "AKIDharness",
                                       "api.secret_key",
                                       "harnessKey",
                                       "api.region",
                                       "ap-guangzhou",
                                       "api.endpoint",
                                       "http://127.0.0.1:1/v2/index.php",
                                       "metrics.listen",
                                       "",
                                       NULL};
    char err[512];
    assert_int_equal(clw_config_init(cfg), 0);
    set_all(cfg, base);
    set_all(cfg, kv);
    if (clw_config_finalize(cfg, err, sizeof(err)) != 0)
        fail_msg("configuration: %s", err);
    struct worker *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    w->cfg = cfg;
    w->io = &io;
    w->paused_since = -1;
    w->rng = 42;
    w->limits.max_bytes = 65536;
    w->limits.max_instances = 100;
    w->limits.default_region = cfg->api_region;
    w->taken_cap = 1000;
    w->api = clw_api_new(cfg, err, sizeof(err));
    assert_non_null(w->api);
    assert_int_equal(clw_worker_creds_setup(w, err, sizeof(err)), 0);
    assert_int_equal(clw_sched_init(w, err, sizeof(err)), 0);
    w->metrics = clw_metrics_new();
    assert_non_null(w->metrics);
    struct clw_http_opts ho = {
        .timeout_ms = 1000, .connect_timeout_ms = 1000, .max_body = 65536, .max_connections = 4};
    w->http = clw_http_new(&ho, err, sizeof(err));
    assert_non_null(w->http);
    struct clw_kafka_handlers h = {.arg = w, .delivered = on_delivered};
    w->kafka = clw_kafka_new(cfg, &h, err, sizeof(err));
    assert_non_null(w->kafka);
    return w;
}

void clw_test_worker_reset(struct worker *w)
{
    for (size_t i = 0; i < w->n_parts; i++)
        if (w->parts[i] != NULL)
            clw_worker_forget_part(w, w->parts[i]);
    while (w->untimed.head != NULL) {
        struct job *job = w->untimed.head;
        clw_jobq_remove(&w->untimed, job);
        job->untimed = 0;
    }
    w->stopping = 0;
    w->exit_code = 0;
}

void clw_test_worker_free(struct worker *w, struct clw_config *cfg)
{
    clw_test_worker_reset(w);
    clw_kafka_purge(w->kafka, 1000); /* the orphans' delivery reports: they are freed */
    assert_int_equal(w->orphans, 0);
    clw_kafka_free(w->kafka);
    clw_http_free(w->http);
    clw_sched_fini(w);
    clw_timers_free(&w->timers);
    clw_metrics_free(w->metrics);
    clw_creds_free(w->creds);
    clw_api_free(w->api);
    free(w->parts);
    free(w);
    clw_config_free(cfg);
}

struct clw_kafka_msg clw_test_record(int64_t offset, const char *value)
{
    static const struct clw_kafka_header hdrs[] = {
        {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 55},
        {"x-request-id", "xr-1", 4}};
    struct clw_kafka_msg m = {
        "requests",    0,    offset, "key", 3, value, value != NULL ? strlen(value) : 0,
        1700000000000, hdrs, 2};
    return m;
}
