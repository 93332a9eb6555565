/* Worker lifecycle: start-up, the event loop, SIGHUP reloads and the draining shutdown. */
#include "clw/worker.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "clw/backoff.h"
#include "clw/clock.h"
#include "worker_internal.h"

/* Largest response body accepted from the API; a v2 answer is a few hundred bytes. */
#define MAX_RESPONSE_BODY ((size_t)1024 * 1024)
/* Records taken from the consumer per loop turn, so HTTP progress is never starved. */
#define RECORDS_PER_TURN 512
/* While the intake is full the consumer is still polled this often, for one record at most:
 * rebalance events and max.poll.interval.ms depend on it. */
#define GATED_POLL_MS 5000
/* Upper bound on one wait, so housekeeping runs even when idle. */
#define IDLE_WAIT_MS 1000
/* Exactly-once: how long a stop waits at least for the last transaction to end. */
#define TXN_SETTLE_MS 5000

static int wait_timeout(const struct worker *w, int64_t now, int max_wait_ms)
{
    int64_t wait = clw_sched_wait_ms(w, now, max_wait_ms);
    wait = clw_worker_creds_wait_ms(w, now, wait);
    if (w->eos)
        wait = clw_worker_txn_wait_ms(w, now, wait);
    /* Re-publications wait while a transaction ends (the transaction thread wakes the loop). */
    if (!clw_worker_txn_busy(w)) {
        struct clw_timer *tm = clw_timers_peek(&w->timers);
        if (tm != NULL && tm->due - now < wait)
            wait = tm->due - now;
        if (w->untimed.len > 0)
            wait = 0;
    }
    if ((w->fault_active || w->circuit_open) && !w->probe_in_flight &&
        w->next_probe_mono - now < wait)
        wait = w->next_probe_mono - now;
    if (w->intake_more && w->taken < w->taken_cap && !w->stopping)
        wait = 0;
    /* Work the scheduler could start now (it found no rate-limit or linger wait). */
    const struct sched *s = &w->sched;
    if (!w->fault_active && !w->circuit_open && s->rate_wait_until == 0 &&
        clw_worker_creds_ready(w, clw_clock_wall_ms()) &&
        s->running < (size_t)w->cfg->worker_max_in_flight && (s->queued.len > 0 || s->ready > 0))
        wait = 0;
    return wait < 0 ? 0 : (int)wait;
}

static void housekeeping(struct worker *w, int64_t now)
{
    if (now < w->next_housekeeping)
        return;
    w->next_housekeeping = now + 1000;
    clw_metrics_set_producer_queue(w->metrics, clw_kafka_producer_queue_len(w->kafka));
    for (size_t i = 0; i < w->n_parts; i++) {
        struct part *p = w->parts[i];
        if (p == NULL)
            continue;
        int64_t high = clw_kafka_high_watermark(w->kafka, p->id);
        long lag = high >= 0 && p->stored >= 0 ? (long)(high - p->stored) : -1;
        clw_metrics_set_partition(w->metrics, p->id, (long)clw_offsets_pending(p->offs), lag,
                                  (long)p->stored);
    }
}

/* One turn of the loop: wait for Kafka, HTTP or a timer, then serve what is ready. consume is 0
 * while draining inside a rebalance callback (the consumer must not be polled there). */
void clw_worker_turn(struct worker *w, int consume, int max_wait_ms)
{
    int fds[3];
    size_t nfds = clw_kafka_fds(w->kafka, fds, 2);
    if (w->io->wake_fd >= 0)
        fds[nfds++] = w->io->wake_fd;
    int64_t now = clw_clock_mono_ms();
    clw_http_wait(w->http, fds, nfds, wait_timeout(w, now, max_wait_ms));
    clw_kafka_drain_fds(w->kafka);
    if (w->io->wake_fd >= 0) {
        char buf[64];
        while (read(w->io->wake_fd, buf, sizeof(buf)) > 0) {
        }
    }
    clw_http_run(w->http, clw_worker_on_http_done, w);
    clw_kafka_poll_producer(w->kafka);
    now = clw_clock_mono_ms();
    if (consume) {
        /* Flow control: take records only while the intake has room. Pausing partitions for
         * this would cost more: librdkafka 2.0.2 drops what it prefetched and fetches a resumed
         * partition again only after up to a second (bench/RESULTS.md). Its own prefetch is
         * bounded by queued.max.messages.kbytes instead. */
        size_t room = w->taken < w->taken_cap ? w->taken_cap - w->taken : 0;
        if (room > RECORDS_PER_TURN)
            room = RECORDS_PER_TURN;
        if (room == 0 && now - w->last_consume >= GATED_POLL_MS)
            room = 1;
        if (room > 0) {
            /* Stopped at the limit: the consumer may hold more records, and librdkafka wakes
             * the loop only when its queue turns non-empty, so the loop must not sleep once
             * room frees up (exactly-once frees it at a transaction commit, after this). */
            w->intake_more = clw_kafka_poll_consumer(w->kafka, (int)room) >= (int)room;
            w->last_consume = now;
        }
    }
    clw_publish_tick(w, now);
    clw_sched_tick(w, now);
    clw_worker_creds_tick(w, now);
    clw_worker_dispatch(w, now);
    if (w->eos)
        clw_worker_txn_tick(w, now);
    clw_metrics_loop_alive(w->metrics, now);
    housekeeping(w, now);
}

static void on_fatal(void *arg, const char *errstr)
{
    struct worker *w = arg;
    CLW_ERROR("fatal Kafka error: %s", errstr);
    w->exit_code = CLW_EXIT_FATAL;
    w->stopping = 1;
}

static void handle_hup(struct worker *w)
{
    if (w->io->reload == NULL)
        return;
    if (w->io->reload(w->cfg, w->io->reload_arg) == 0)
        CLW_INFO("SIGHUP: credentials and log level reloaded");
    else
        CLW_ERROR("SIGHUP: reload failed; keeping the previous credentials");
    clw_worker_creds_reload(w);
}

/* Waits until the cluster describes the results (and dead-letter) topic. Returns 0 when they
 * exist, -1 when the cluster says one does not, or a stop was requested. */
static int await_output_topics(struct worker *w)
{
    for (int tries = 0;; tries++) {
        if (*w->io->stop)
            return -1;
        /* /healthz reports the process alive while it waits (it never depends on Kafka). */
        clw_metrics_loop_alive(w->metrics, clw_clock_mono_ms());
        char missing[256];
        int rc = clw_kafka_output_topics_exist(w->kafka, 5000, missing, sizeof(missing));
        if (rc == 1)
            return 0;
        if (rc == 0) {
            CLW_ERROR("topic %s does not exist (create it before starting the worker)", missing);
            w->exit_code = CLW_EXIT_FATAL;
            return -1;
        }
        if (tries % 6 == 0)
            CLW_WARN("waiting for the Kafka cluster to answer (bootstrap servers unreachable?)");
    }
}

/* Registers the transactional producer (fencing an earlier instance with the same
 * transactional.id). Returns 0, or -1 when fatal or a stop was requested. */
static int start_transactions(struct worker *w)
{
    for (;;) {
        if (*w->io->stop)
            return -1;
        clw_metrics_loop_alive(w->metrics, clw_clock_mono_ms());
        char err[512];
        if (clw_kafka_txn_init(w->kafka, 5000, err, sizeof(err)) == 0)
            return 0;
        if (strstr(err, "timed out") == NULL && strstr(err, "Timed out") == NULL) {
            CLW_ERROR("cannot start Kafka transactions: %s", err);
            w->exit_code = CLW_EXIT_FATAL;
            return -1;
        }
        CLW_WARN("waiting for the transaction coordinator: %s", err);
    }
}

static int setup(struct worker *w, char *err, size_t errlen)
{
    const struct clw_config *cfg = w->cfg;
    w->api = clw_api_new(cfg, err, errlen);
    if (w->api == NULL)
        return -1;
    if (clw_worker_creds_setup(w, err, errlen) != 0) {
        w->exit_code = CLW_EXIT_CONFIG;
        return -1;
    }
    w->limits.max_bytes = (size_t)64 * 1024;
    w->limits.max_instances = (size_t)cfg->worker_max_instances_per_request;
    w->limits.default_region = cfg->api_region;
    if (getrandom(&w->rng, sizeof(w->rng), 0) != (ssize_t)sizeof(w->rng))
        w->rng = (uint64_t)clw_clock_wall_ms() ^ ((uint64_t)getpid() << 32);
    w->paused_since = -1;
    w->eos = cfg->delivery_mode == CLW_DELIVERY_EXACTLY_ONCE;
    /* Enough records to keep every call slot busy while others wait for an instance or a
     * retry, and with coalescing a full call's worth for each of 64 keys (VPCs) at once: the
     * calls a quota admits leave full. The per-partition window
     * (worker.max_pending_per_partition) still applies. */
    w->taken_cap = (size_t)cfg->worker_max_in_flight * 4 + 256;
    if (cfg->api_coalesce_max_instances > 1)
        w->taken_cap += (size_t)cfg->api_coalesce_max_instances * 64;
    if (clw_sched_init(w, err, errlen) != 0)
        return -1;
    w->metrics = clw_metrics_new();
    if (w->metrics == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (cfg->metrics_listen[0] != '\0') {
        w->httpd = clw_httpd_start(cfg->metrics_listen, w->metrics, err, errlen);
        if (w->httpd == NULL)
            return -1;
        const char *colon = strrchr(cfg->metrics_listen, ':');
        int host_len = colon ? (int)(colon - cfg->metrics_listen) : 0;
        CLW_INFO("metrics listening on %.*s:%d", host_len, cfg->metrics_listen,
                 clw_httpd_port(w->httpd));
    }
    struct clw_http_opts hopts = {
        .timeout_ms = cfg->api_timeout_ms,
        .connect_timeout_ms = cfg->api_connect_timeout_ms,
        .ca_file = cfg->api_ca_file,
        .max_body = MAX_RESPONSE_BODY,
        .max_connections = (long)cfg->worker_max_in_flight + 16,
    };
    w->http = clw_http_new(&hopts, err, errlen);
    if (w->http == NULL)
        return -1;
    struct clw_kafka_handlers h = {
        .arg = w,
        .message = clw_worker_on_message,
        .assigned = clw_worker_on_assigned,
        .revoked = clw_worker_on_revoked,
        .delivered = clw_worker_on_delivered,
        .fatal = on_fatal,
        .commits_stalled = clw_worker_on_commits_stalled,
    };
    w->kafka = clw_kafka_new(cfg, &h, err, errlen);
    return w->kafka != NULL ? 0 : -1;
}

/* Stop: pause fetching, finish what must be finished (calls already sent, and every request
 * below an outcome already published, so that the commit point reaches past every published
 * outcome), bounded by worker.shutdown_timeout_ms (exactly-once: the transactions commit as they
 * go, and the last one gets at least TXN_SETTLE_MS); then leave the group, which commits. */
static void drain(struct worker *w)
{
    w->stopping = 1;
    w->stop_since = clw_clock_mono_ms();
    w->stop_deadline = w->stop_since + w->cfg->worker_shutdown_timeout_ms;
    if (w->exit_code == CLW_EXIT_FATAL)
        return; /* the clients are unusable: nothing more can be published or committed */
    clw_worker_sync_all_pauses(w);
    CLW_INFO("stopping: %zu call(s) in flight, %zu request(s) taken", w->sched.running, w->taken);
    struct part **list = calloc(w->n_parts ? w->n_parts : 1, sizeof(*list));
    if (list == NULL)
        return; /* nothing drained: whatever is uncommitted is redone after the restart */
    size_t n = 0;
    for (size_t i = 0; i < w->n_parts; i++)
        if (w->parts[i] != NULL)
            list[n++] = w->parts[i];
    int64_t deadline = w->stop_deadline;
    clw_worker_drain_parts(w, list, n, deadline);
    free(list);
    if (w->eos) {
        int64_t least = clw_clock_mono_ms() + TXN_SETTLE_MS;
        clw_worker_txn_settle(w, deadline > least ? deadline : least);
    }
}

static void teardown(struct worker *w)
{
    if (w->kafka != NULL) {
        clw_worker_leave_group(w);
        /* Whatever the close could not forget (no assignment callbacks ran). */
        for (size_t i = 0; i < w->n_parts; i++)
            if (w->parts[i] != NULL)
                clw_worker_forget_part(w, w->parts[i]);
        /* Outcomes the close could not get acknowledged are dropped, so that the jobs waiting
         * for their reports are freed: their offsets were never committed. */
        clw_kafka_purge(w->kafka, 1000);
        clw_kafka_free(w->kafka);
    }
    if (w->httpd != NULL)
        clw_httpd_stop(w->httpd);
    clw_http_free(w->http);
    clw_sched_fini(w);
    clw_timers_free(&w->timers);
    clw_metrics_free(w->metrics);
    clw_creds_free(w->creds);
    clw_api_free(w->api);
    free(w->parts);
    free(w->txn_ids); /* a commit that did not end before the stop */
    free(w->txn_offs);
}

int clw_worker_run(struct clw_config *cfg, const struct clw_worker_io *io)
{
    struct worker w;
    memset(&w, 0, sizeof(w));
    w.cfg = cfg;
    w.io = io;
    char err[512];
    if (setup(&w, err, sizeof(err)) != 0) {
        int code = w.exit_code == CLW_EXIT_CONFIG ? CLW_EXIT_CONFIG : CLW_EXIT_FATAL;
        if (code == CLW_EXIT_CONFIG)
            CLW_ERROR("configuration error: %s", err);
        else
            CLW_ERROR("cannot start: %s", err);
        teardown(&w);
        return code;
    }
    if (await_output_topics(&w) != 0) {
        teardown(&w);
        return w.exit_code;
    }
    if (w.eos && start_transactions(&w) != 0) {
        teardown(&w);
        return w.exit_code;
    }
    clw_metrics_set_producer_ok(w.metrics, 1);
    if (clw_kafka_subscribe(w.kafka, err, sizeof(err)) != 0) {
        CLW_ERROR("%s", err);
        teardown(&w);
        return CLW_EXIT_FATAL;
    }
    CLW_INFO("classiclink-worker %s consuming %s (group %s), publishing to %s, API %s%s",
             CLW_VERSION, cfg->topic_requests, cfg->kafka_group_id, cfg->topic_results,
             clw_api_https(w.api) ? "https://" : "http://", clw_api_host(w.api));
    while (!*io->stop && !w.stopping) {
        if (*io->hup) {
            *io->hup = 0;
            handle_hup(&w);
        }
        clw_worker_turn(&w, 1, IDLE_WAIT_MS);
    }
    drain(&w);
    teardown(&w); /* leaving the group may set CLW_EXIT_UNCOMMITTED */
    CLW_INFO("stopped");
    return w.exit_code;
}
