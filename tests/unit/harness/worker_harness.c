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
    if (clw_worker_open(w, cfg, &io, err, sizeof(err)) != 0)
        fail_msg("worker: %s", err);
    return w;
}

void clw_test_worker_reset(struct worker *w)
{
    clw_worker_reset(w);
}

void clw_test_worker_free(struct worker *w, struct clw_config *cfg)
{
    clw_test_worker_reset(w);
    clw_kafka_purge(w->kafka, 1000); /* the orphans' delivery reports: they are freed */
    assert_int_equal(clw_publish_orphans(&w->pub), 0);
    clw_worker_close(w);
    free(w);
    clw_config_free(cfg);
}

struct job *clw_test_job(struct worker *w, int64_t offset)
{
    struct part *p = clw_parts_get(&w->parts, 0, 0);
    for (struct job *job = p != NULL ? clw_parts_first(p) : NULL; job != NULL;
         job = clw_parts_next(job))
        if (job->rec.offset == offset)
            return job;
    return NULL;
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
