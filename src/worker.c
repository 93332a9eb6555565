/* The worker: start-up, the event loop, signals, the stop and revoke drains. It owns the adapters
 * and the stages, routes what the adapters report to the stage it concerns, drains the job
 * events after each phase of the loop, and reads the stages' news (pauses, fatal errors) as
 * return values and flags. The only file that turns the loop, and the only one that calls every
 * stage. */
#include "worker_stages.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "clw/alloc.h"
#include "clw/backoff.h"
#include "clw/clock.h"
#include "clw/log.h"

/* Largest response body accepted from the API; a v2 answer is a few hundred bytes. */
#define MAX_RESPONSE_BODY ((size_t)1024 * 1024)
/* Records taken from the consumer per loop turn, so HTTP progress is never starved. */
#define RECORDS_PER_TURN 512
/* While the intake is full the consumer is still polled this often, for one record at most:
 * rebalance events and max.poll.interval.ms depend on it. */
#define GATED_POLL_MS 5000
/* Upper bound on one wait, so housekeeping runs even when idle. */
#define IDLE_WAIT_MS 1000
/* The largest call known to be safe: DescribeClassicLinkInstances pages at 100, and nothing
 * documents a limit on AttachClassicLinkVpc's instanceIds (docs/operations.md). */
#define SAFE_CALL_INSTANCES 100
/* The least time a stop gives its final commit, even when the drain used up
 * worker.shutdown_timeout_ms: five automatic commit intervals of a stable group. */
#define COMMIT_LEAST_MS 1000
/* Partitions named in one log line of an incomplete hand-over. */
#define GAPS_LOGGED 64
/* Exactly-once: how long a stop waits at least for the last transaction to end. */
#define TXN_SETTLE_MS 5000

static void turn(struct worker *w, int consume, int max_wait_ms);

static void stop_with(struct worker *w, int code)
{
    if (w->exit_code == CLW_EXIT_OK || code == CLW_EXIT_FATAL)
        w->exit_code = code;
    w->stopping = 1;
}

/* After each phase: the job events are drained, the partitions follow the guard's pauses, held
 * calls go once a worker fault cleared, and a stage's fatal news stops the worker. */
static void settle(struct worker *w)
{
    clw_flow_drain(&w->flow);
    if (clw_guard_take_unhold(&w->guard))
        clw_sched_unhold_all(&w->sched);
    if (clw_guard_generation(&w->guard) != w->guard_seen) {
        w->guard_seen = clw_guard_generation(&w->guard);
        clw_parts_sync_all(&w->parts);
    }
    if (w->flow.failed || w->txn.fatal)
        stop_with(w, CLW_EXIT_FATAL);
    if (clw_guard_exit_requested(&w->guard))
        stop_with(w, CLW_EXIT_WORKER_FAULT);
}

/* ---- jobs leaving ------------------------------------------------------------------------------
 */

/* Removes a job that will get no outcome from this worker (its partition is gone or the worker
 * stops): whoever consumes the partition next redoes it. */
static void abandon(struct worker *w, struct job *job)
{
    clw_flow_forget(&w->flow, job);
    clw_txn_drop(&w->txn, job);
    clw_sched_drop(&w->sched, job);
    int orphan = clw_publish_drop(&w->pub, job);
    clw_parts_unlink(&w->parts, job);
    if (!orphan)
        clw_job_free(job);
}

static void forget_part(struct worker *w, struct part *p)
{
    struct job *next;
    for (struct job *job = clw_parts_first(p); job != NULL; job = next) {
        next = clw_parts_next(job); /* abandoning frees this job only */
        abandon(w, job);
    }
    clw_parts_forget(&w->parts, p);
}

/* Winds a partition down before it is revoked or the worker stops. The drain limit is the
 * highest offset whose request was sent or has an outcome: every request at or below it must
 * finish (even with retries), so that the commit point can pass every outcome published;
 * requests above it have not started and are abandoned — the next owner redoes them. */
static void wind_down(struct worker *w, struct part *p)
{
    int64_t limit = p->max_final;
    for (struct job *job = clw_parts_first(p); job != NULL; job = clw_parts_next(job))
        if (clw_job_started(job) && job->rec.offset > limit)
            limit = job->rec.offset;
    struct job *next;
    for (struct job *job = clw_parts_first(p); job != NULL; job = next) {
        next = clw_parts_next(job);
        if (job->rec.offset > limit)
            abandon(w, job);
    }
}

/* Turns the loop (without consuming) until the partitions' jobs are done or the deadline. */
static void drain_parts(struct worker *w, struct part **parts, size_t n, int64_t deadline)
{
    for (size_t i = 0; i < n; i++)
        wind_down(w, parts[i]);
    for (;;) {
        int busy = 0;
        int waiting_commit = 0;
        for (size_t i = 0; i < n; i++)
            for (const struct job *job = clw_parts_first(parts[i]); job != NULL;
                 job = clw_parts_next(job)) {
                busy = 1;
                waiting_commit |= job->state == JOB_IN_TXN;
            }
        int64_t left = deadline - clw_clock_mono_ms();
        if (!busy || left <= 0)
            break;
        if (waiting_commit)
            clw_txn_commit_now(&w->txn); /* exactly-once: commit what finished */
        turn(w, 0, left < 100 ? (int)left : 100);
    }
}

/* Commits the partitions' stored offsets synchronously (revocation, shutdown). */
static void commit_stored(struct worker *w, struct part **parts, size_t n)
{
    int32_t *ids = clw_calloc(n ? n : 1, sizeof(*ids));
    int64_t *offs = clw_calloc(n ? n : 1, sizeof(*offs));
    size_t k = 0;
    if (ids == NULL || offs == NULL) {
        CLW_WARN("out of memory committing; the offsets go with the next automatic commit");
    } else {
        for (size_t i = 0; i < n; i++)
            if (parts[i]->stored >= 0) {
                ids[k] = parts[i]->id;
                offs[k++] = parts[i]->stored;
            }
        if (clw_kafka_commit(w->kafka, ids, offs, k) != 0)
            clw_metrics_commit_failed(w->metrics);
    }
    free(ids);
    free(offs);
}

/* Stop with api.on_worker_fault = exit: the held calls' requests get no outcome here. */
static void abandon_held(struct worker *w)
{
    struct call *call;
    while ((call = clw_sched_first_held(&w->sched)) != NULL)
        abandon(w, call->members[call->n_members - 1]); /* the last one's leaving frees it */
}

/* ---- routing what the adapters report ---------------------------------------------------------
 */

static void on_message(void *arg, const struct clw_kafka_msg *msg)
{
    struct worker *w = arg;
    if (w->stopping)
        return; /* not taken: redone after the restart */
    if (clw_intake_take(&w->intake, msg) != 0)
        stop_with(w, CLW_EXIT_FATAL);
}

/* The worker's share of the account's quota follows its assignment: its partitions over the
 * requests topic's (the fleet divides api.quota by partitions, whoever holds them). */
static void share_quota(struct worker *w)
{
    size_t total = (size_t)clw_kafka_requests_partitions(w->kafka);
    if (total < w->parts.n)
        total = w->parts.n; /* the topic grew since the metadata was read */
    size_t mine = clw_parts_assigned(&w->parts);
    clw_sched_set_share(&w->sched, total > 0 ? (double)mine / (double)total : 1.0,
                        clw_clock_mono_ms());
}

static void on_assigned(void *arg, const int32_t *partitions, size_t n)
{
    struct worker *w = arg;
    for (size_t i = 0; i < n; i++) {
        struct part *p = clw_parts_get(&w->parts, partitions[i], 1);
        if (p == NULL) {
            CLW_ERROR("out of memory assigning partition %d", (int)partitions[i]);
            continue;
        }
        clw_parts_set_revoking(&w->parts, p, 0);
    }
    w->joined = 1;
    clw_metrics_set_group(w->metrics, 1, (int)clw_parts_assigned(&w->parts));
    share_quota(w);
    clw_parts_sync_all(&w->parts);
}

static void on_revoked(void *arg, const int32_t *partitions, size_t n, int lost)
{
    struct worker *w = arg;
    struct part **list = clw_calloc(n ? n : 1, sizeof(*list));
    size_t k = 0;
    for (size_t i = 0; i < n && list != NULL; i++) {
        struct part *p = clw_parts_get(&w->parts, partitions[i], 0);
        if (p != NULL) {
            clw_parts_set_revoking(&w->parts, p, 1);
            list[k++] = p;
        }
    }
    /* Exactly-once: a lost assignment's outcomes must not commit without their offsets (the
     * abort runs on the transaction thread; what it discards is produced again only for the
     * partitions still assigned). */
    if (lost && w->eos)
        clw_txn_abort(&w->txn);
    /* A lost assignment stores nothing; a stopping worker has drained already. Otherwise the
     * revoked partitions' work finishes within the limit, every acknowledgement storing its
     * partition's new commit point. */
    if (!lost && !w->stopping && list != NULL)
        drain_parts(w, list, k, clw_clock_mono_ms() + w->cfg->worker_shutdown_timeout_ms);
    /* The new owner starts from the committed offsets: commit now and wait (exactly-once:
     * the transactions committed them). A stopping worker committed before leaving the group:
     * here it runs inside rd_kafka_consumer_close(), where a synchronous commit hung or tripped
     * librdkafka 2.0.2's assertion "!rd_kafka_assignment_in_progress" (the close itself commits
     * what is stored). */
    if (!lost && !w->eos && !w->stopping && list != NULL && w->exit_code != CLW_EXIT_FATAL)
        commit_stored(w, list, k);
    free(list);
    for (size_t i = 0; i < n; i++) {
        struct part *p = clw_parts_get(&w->parts, partitions[i], 0);
        if (p == NULL)
            continue;
        if (p->jobs.len > 0)
            CLW_WARN("partition %d revoked with %zu request(s) unfinished; the next owner redoes "
                     "them",
                     (int)p->id, p->jobs.len);
        forget_part(w, p);
    }
    clw_metrics_set_group(w->metrics, w->joined, (int)clw_parts_assigned(&w->parts));
    share_quota(w);
}

static void on_delivered(void *arg, void *opaque, enum clw_publish_err err, const char *errstr)
{
    struct worker *w = arg;
    clw_publish_delivered(&w->pub, opaque, err, errstr);
}

static void on_http_done(void *opaque, const struct clw_http_response *resp, void *arg)
{
    struct worker *w = arg;
    if (clw_creds_stage_owns(&w->creds, opaque))
        clw_creds_stage_done(&w->creds, resp);
    else
        clw_calls_answered(&w->calls, opaque, resp);
}

static void on_commits_stalled(void *arg, int stalled)
{
    struct worker *w = arg;
    if (stalled)
        CLW_WARN("commits are not reaching the group coordinator (a rebalance is pending or the "
                 "coordinator is unreachable): taking no new records until they do, %zu "
                 "request(s) taken",
                 w->parts.taken);
    else
        CLW_INFO("commits reach the group coordinator again: taking records");
    clw_parts_set_commits_stalled(&w->parts, stalled);
}

static void on_fatal(void *arg, const char *errstr)
{
    struct worker *w = arg;
    CLW_ERROR("fatal Kafka error: %s", errstr);
    stop_with(w, CLW_EXIT_FATAL);
}

void clw_worker_take(struct worker *w, const struct clw_kafka_msg *msg)
{
    on_message(w, msg);
    settle(w);
}

void clw_worker_http_done(struct worker *w, void *opaque, const struct clw_http_response *resp)
{
    on_http_done(opaque, resp, w);
    settle(w);
}

void clw_worker_delivered(struct worker *w, void *opaque, enum clw_publish_err err,
                          const char *errstr)
{
    on_delivered(w, opaque, err, errstr);
    settle(w);
}

void clw_worker_step(struct worker *w, int64_t now)
{
    settle(w);
    clw_publish_tick(&w->pub, now);
    settle(w);
    clw_sched_tick(&w->sched, now);
    clw_creds_stage_tick(&w->creds, now);
    clw_calls_dispatch(&w->calls, now);
    settle(w);
    clw_txn_tick(&w->txn, now);
    settle(w);
}

static void forget_all(struct worker *w)
{
    for (size_t i = 0; i < w->parts.n; i++)
        if (w->parts.parts[i] != NULL)
            forget_part(w, w->parts.parts[i]);
}

void clw_worker_reset(struct worker *w)
{
    forget_all(w);
    w->stopping = 0;
    w->exit_code = 0;
    clw_parts_set_stopping(&w->parts, 0);
    clw_flow_clear_failure(&w->flow);
}

/* ---- the loop ------------------------------------------------------------------------------- */

static int wait_timeout(const struct worker *w, int64_t now, int max_wait_ms)
{
    int64_t wait = clw_sched_wait_ms(&w->sched, now, max_wait_ms);
    wait = clw_creds_stage_wait_ms(&w->creds, now, wait);
    wait = clw_txn_wait_ms(&w->txn, now, wait);
    wait = clw_publish_wait_ms(&w->pub, now, wait);
    wait = clw_guard_wait_ms(&w->guard, now, wait);
    if (w->intake_more && clw_intake_room(&w->intake) > 0 && !w->stopping)
        wait = 0;
    /* Work the scheduler could start now (it found no rate-limit or linger wait). */
    if (clw_guard_start_mode(&w->guard, now) == GUARD_START_ALL &&
        clw_creds_stage_ready(&w->creds, clw_clock_wall_ms()) && clw_sched_startable(&w->sched))
        wait = 0;
    return wait < 0 ? 0 : (int)wait;
}

static void housekeeping(struct worker *w, int64_t now)
{
    if (now < w->next_housekeeping)
        return;
    w->next_housekeeping = now + 1000;
    clw_metrics_set_producer_queue(w->metrics, clw_kafka_producer_queue_len(w->kafka));
    clw_metrics_set_credentials_expiry(w->metrics, clw_creds_expiry_ms(w->creds.creds));
    clw_sched_report(&w->sched, w->metrics, now);
    for (size_t i = 0; i < w->parts.n; i++) {
        const struct part *p = w->parts.parts[i];
        if (p == NULL)
            continue;
        int64_t high = clw_kafka_high_watermark(w->kafka, p->id);
        long lag = high >= 0 && p->stored >= 0 ? (long)(high - p->stored) : -1;
        clw_metrics_set_partition(w->metrics, p->id, (long)clw_offsets_pending(p->offs), lag,
                                  (long)p->stored);
    }
}

/* One turn of the loop: wait for Kafka, HTTP or a timer, then serve what is ready, phase by
 * phase, each followed by the job events it caused. consume is 0 while draining inside a
 * rebalance callback (the consumer must not be polled there). */
static void turn(struct worker *w, int consume, int max_wait_ms)
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
    clw_http_run(w->http, on_http_done, w);
    settle(w);
    clw_kafka_poll_producer(w->kafka);
    settle(w);
    now = clw_clock_mono_ms();
    if (consume) {
        /* Flow control: take records only while the intake has room. Pausing partitions for
         * this would cost more: librdkafka 2.0.2 drops what it prefetched and fetches a resumed
         * partition again only after up to a second (bench/RESULTS.md). Its own prefetch is
         * bounded by queued.max.messages.kbytes instead. */
        size_t room = clw_intake_room(&w->intake);
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
        settle(w);
    }
    clw_worker_step(w, now);
    clw_metrics_loop_alive(w->metrics, now);
    housekeeping(w, now);
}

static void handle_hup(struct worker *w)
{
    if (w->io->reload == NULL)
        return;
    if (w->io->reload(w->cfg, w->io->reload_arg) == 0)
        CLW_INFO("SIGHUP: credentials and log level reloaded");
    else
        CLW_ERROR("SIGHUP: reload failed; keeping the previous credentials");
    clw_creds_stage_reload(&w->creds);
}

/* ---- start-up ---------------------------------------------------------------------------------
 */

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

static uint64_t seed_rng(void)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
        seed = (uint64_t)clw_clock_wall_ms() ^ ((uint64_t)getpid() << 32);
    return seed;
}

int clw_worker_open(struct worker *w, struct clw_config *cfg, const struct clw_worker_io *io,
                    char *err, size_t errlen)
{
    memset(w, 0, sizeof(*w));
    w->cfg = cfg;
    w->io = io;
    w->eos = cfg->delivery_mode == CLW_DELIVERY_EXACTLY_ONCE;
    w->api = clw_api_new(cfg, err, errlen);
    w->metrics = clw_metrics_new();
    if (w->api == NULL)
        return -1;
    if (w->metrics == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    clw_guard_init(&w->guard, cfg, w->metrics);
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
    if (clw_creds_stage_setup(&w->creds, cfg, w->http, &w->guard, err, errlen) != 0) {
        w->exit_code = CLW_EXIT_CONFIG;
        return -1;
    }
    if (cfg->api_coalesce_max_instances > SAFE_CALL_INSTANCES)
        CLW_WARN("api.coalesce.max_instances = %" PRId64 ": no documentation says the API takes "
                 "more than %d instance ids in one call; calls it refuses for their length are "
                 "split",
                 (int64_t)cfg->api_coalesce_max_instances, SAFE_CALL_INSTANCES);
    clw_flow_init(&w->flow, w->eos, &w->sched, &w->parts, &w->pub, &w->txn, w->metrics);
    uint64_t seed = seed_rng();
    if (clw_sched_init(&w->sched, cfg, w->api, w->creds.creds, w->http, &w->guard, &w->flow.events,
                       clw_rand_next(&seed), err, errlen) != 0)
        return -1;
    if (cfg->metrics_listen[0] != '\0') {
        w->httpd = clw_httpd_start(cfg->metrics_listen, w->metrics, err, errlen);
        if (w->httpd == NULL)
            return -1;
        const char *colon = strrchr(cfg->metrics_listen, ':');
        int host_len = colon ? (int)(colon - cfg->metrics_listen) : 0;
        CLW_INFO("metrics listening on %.*s:%d", host_len, cfg->metrics_listen,
                 clw_httpd_port(w->httpd));
    }
    struct clw_kafka_handlers h = {
        .arg = w,
        .message = on_message,
        .assigned = on_assigned,
        .revoked = on_revoked,
        .delivered = on_delivered,
        .fatal = on_fatal,
        .commits_stalled = on_commits_stalled,
    };
    w->kafka = clw_kafka_new(cfg, &h, err, errlen);
    if (w->kafka == NULL)
        return -1;
    clw_parts_init(&w->parts, cfg, w->kafka, w->metrics, &w->guard, w->eos);
    clw_txn_init(&w->txn, w->eos, w->kafka, &w->parts, &w->flow.events);
    clw_publish_init(&w->pub, cfg, w->kafka, w->metrics, &w->txn, &w->guard, &w->flow.events);
    clw_intake_init(&w->intake, cfg, &w->parts, w->metrics, &w->flow.events);
    clw_verdict_init(&w->verdict, seed, cfg, &w->flow.events, &w->sched, &w->guard, w->metrics);
    clw_calls_init(&w->calls, seed ^ 0x9e3779b97f4a7c15ull, cfg, w->api, w->http, w->metrics,
                   &w->sched, &w->guard, &w->creds, &w->verdict);
    w->opened = 1;
    return 0;
}

/* The offsets still to commit: "partition 3 committed 200, done to 250; ..." (at most
 * GAPS_LOGGED of them) into buf; returns how many partitions there are. */
static size_t describe_gaps(struct worker *w, char *buf, size_t size)
{
    struct clw_commit_gap gaps[GAPS_LOGGED];
    size_t n = clw_kafka_uncommitted(w->kafka, w->stop_since, gaps, GAPS_LOGGED);
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && i < GAPS_LOGGED && len < size; i++) {
        char committed[24] = "none";
        if (gaps[i].committed >= 0)
            snprintf(committed, sizeof(committed), "%lld", (long long)gaps[i].committed);
        len += (size_t)snprintf(buf + len, size - len, "%spartition %d committed %s, done to %lld",
                                i ? "; " : "", (int)gaps[i].partition, committed,
                                (long long)gaps[i].stored);
    }
    return n;
}

/* The hand-over (contract section 5; design section 4): after the stop's drain, waits until
 * every stored offset has reached the group coordinator (behind a pending rebalance, under the
 * new generation: the assign callback commits at once), within worker.shutdown_timeout_ms and at
 * least COMMIT_LEAST_MS; then leaves the group. An offset still not committed then is logged as
 * an error naming partitions and offsets, counted, and makes the exit status 4. */
static void leave_group(struct worker *w)
{
    if (w->exit_code != CLW_EXIT_FATAL && w->stop_since > 0) {
        int64_t least = clw_clock_mono_ms() + COMMIT_LEAST_MS;
        int64_t deadline = w->stop_deadline > least ? w->stop_deadline : least;
        while (clw_kafka_uncommitted(w->kafka, w->stop_since, NULL, 0) > 0) {
            int64_t left = deadline - clw_clock_mono_ms();
            if (left <= 0)
                break;
            turn(w, 1, left < 100 ? (int)left : 100);
        }
    }
    char gaps[4096];
    size_t n = w->exit_code != CLW_EXIT_FATAL ? describe_gaps(w, gaps, sizeof(gaps)) : 0;
    if (n > 0) {
        /* Counted now, while the close below may still keep the process (and its metrics)
         * up until the group settles. */
        clw_metrics_commit_failed(w->metrics);
        CLW_WARN("%zu partition(s) not committed within worker.shutdown_timeout_ms (a rebalance "
                 "is pending, the coordinator is unreachable, or "
                 "kafka.consumer.auto.commit.interval.ms is long); leaving the group: %s",
                 n, gaps);
    }
    /* Leaving the group runs the revoke handler, which forgets every partition; librdkafka
     * commits what is stored once more (behind a pending JoinGroup it waits for the group to
     * settle, then fails). */
    clw_kafka_close(w->kafka, 5000);
    if (n == 0)
        return;
    n = describe_gaps(w, gaps, sizeof(gaps));
    if (n == 0) {
        CLW_INFO("the offsets were committed when leaving the group after all");
        return;
    }
    CLW_ERROR("hand-over incomplete: the final commit of %zu partition(s) did not reach the group "
              "coordinator; the next owner redoes these offsets (exit %d): %s",
              n, CLW_EXIT_UNCOMMITTED, gaps);
    if (w->exit_code == CLW_EXIT_OK)
        w->exit_code = CLW_EXIT_UNCOMMITTED;
}

void clw_worker_close(struct worker *w)
{
    if (w->kafka != NULL) {
        if (w->subscribed)
            leave_group(w);
        /* Whatever the close could not forget (no assignment callbacks ran). */
        if (w->opened)
            forget_all(w);
        /* Outcomes the close could not get acknowledged are dropped, so that the jobs waiting
         * for their reports are freed: their offsets were never committed. */
        clw_kafka_purge(w->kafka, 1000);
        clw_kafka_free(w->kafka);
    }
    if (w->httpd != NULL)
        clw_httpd_stop(w->httpd);
    clw_http_free(w->http);
    if (w->opened) {
        clw_txn_fini(&w->txn);
        clw_publish_fini(&w->pub);
        clw_parts_fini(&w->parts);
    }
    clw_sched_fini(&w->sched);
    clw_metrics_free(w->metrics);
    clw_creds_stage_fini(&w->creds);
    clw_api_free(w->api);
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
    clw_parts_set_stopping(&w->parts, 1);
    if (w->exit_code == CLW_EXIT_WORKER_FAULT)
        abandon_held(w);
    CLW_INFO("stopping: %zu call(s) in flight, %zu request(s) taken", w->sched.running,
             w->parts.taken);
    struct part **list = NULL;
    long n = clw_parts_list(&w->parts, &list);
    if (n < 0)
        return; /* nothing drained: whatever is uncommitted is redone after the restart */
    int64_t deadline = w->stop_deadline;
    drain_parts(w, list, (size_t)n, deadline);
    free(list);
    if (!w->eos)
        return;
    /* Exactly-once: commit what the drain finished, turning the loop until the transaction
     * ended or the deadline. */
    int64_t least = clw_clock_mono_ms() + TXN_SETTLE_MS;
    if (deadline < least)
        deadline = least;
    for (;;) {
        if (w->exit_code == CLW_EXIT_FATAL)
            return; /* the clients are unusable */
        clw_txn_commit_now(&w->txn);
        if (clw_txn_idle(&w->txn))
            return;
        int64_t left = deadline - clw_clock_mono_ms();
        if (left <= 0) {
            CLW_WARN("stopping before the Kafka transaction ended; its outcomes are published "
                     "again by the next owner");
            return;
        }
        turn(w, 0, left < 100 ? (int)left : 100);
    }
}

int clw_worker_run(struct clw_config *cfg, const struct clw_worker_io *io)
{
    struct worker *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        CLW_ERROR("cannot start: out of memory");
        return CLW_EXIT_FATAL;
    }
    char err[512];
    if (clw_worker_open(w, cfg, io, err, sizeof(err)) != 0) {
        int code = w->exit_code == CLW_EXIT_CONFIG ? CLW_EXIT_CONFIG : CLW_EXIT_FATAL;
        if (code == CLW_EXIT_CONFIG)
            CLW_ERROR("configuration error: %s", err);
        else
            CLW_ERROR("cannot start: %s", err);
        clw_worker_close(w);
        free(w);
        return code;
    }
    int code = CLW_EXIT_OK;
    if (await_output_topics(w) != 0 || (w->eos && start_transactions(w) != 0)) {
        code = w->exit_code;
        clw_worker_close(w);
        free(w);
        return code;
    }
    clw_metrics_set_producer_ok(w->metrics, 1);
    clw_metrics_set_api_quota(w->metrics, (double)cfg->api_quota);
    w->subscribed = 1;
    if (clw_kafka_subscribe(w->kafka, err, sizeof(err)) != 0) {
        CLW_ERROR("%s", err);
        w->exit_code = CLW_EXIT_FATAL;
        clw_worker_close(w);
        free(w);
        return CLW_EXIT_FATAL;
    }
    CLW_INFO("classiclink-worker %s consuming %s (group %s), publishing to %s, API %s%s",
             CLW_VERSION, cfg->topic_requests, cfg->kafka_group_id, cfg->topic_results,
             clw_api_https(w->api) ? "https://" : "http://", clw_api_host(w->api));
    while (!*io->stop && !w->stopping) {
        if (*io->hup) {
            *io->hup = 0;
            handle_hup(w);
        }
        turn(w, 1, IDLE_WAIT_MS);
    }
    drain(w);
    clw_worker_close(w); /* leaving the group may find the hand-over incomplete: exit 4 */
    code = w->exit_code;
    free(w);
    CLW_INFO("stopped");
    return code;
}
