/* Kafka adapter: request consumer and outcome producer on librdkafka, with pipe wake-ups, and
 * the transaction thread of exactly-once mode. */
#define _GNU_SOURCE
#include "clw/kafka.h"

#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clw/clock.h"
#include "clw/commits.h"
#include "clw/log.h"

/* send_offsets_to_transaction is not resumable: each call is one request, and a response
 * that arrives after the call's timeout counts as a timeout, so the timeout is generous. */
#define TXN_SEND_OFFSETS_MS 30000
/* commit/abort_transaction resume after a timeout: the transaction thread waits in slices of
 * this long, so that clw_kafka_free() never waits longer than one slice for it. */
#define TXN_SLICE_MS 1000
/* Least time between two tries after a retriable error (no busy loop on a quick refusal). */
#define TXN_RETRY_MS 100

enum txn_op { TXN_OP_NONE = 0, TXN_OP_COMMIT, TXN_OP_ABORT };

/* The transaction thread's mailbox: one operation at a time, started by the loop thread. */
struct txn_thread {
    pthread_t thread;
    int started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    enum txn_op op;                           /* to run next, NONE once it ran */
    int pending;                              /* started, result not taken yet */
    atomic_int quit;                          /* clw_kafka_free(): give up retrying */
    rd_kafka_topic_partition_list_t *offsets; /* TXN_OP_COMMIT: offsets to send, or NULL */
    rd_kafka_consumer_group_metadata_t *cgmd;
    enum clw_txn_result result; /* CLW_TXN_RUNNING until the operation ended */
    char err[512];
};

struct clw_kafka {
    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    rd_kafka_queue_t *consumer_q;
    rd_kafka_queue_t *producer_q;
    int pipe_rd;
    int pipe_wr;
    char *topic_requests;
    char *topic_results;
    char *topic_dlq;         /* NULL when off */
    int requests_partitions; /* of topic_requests, as the last metadata said; 0 unknown */
    struct clw_kafka_handlers h;
    int fatal_reported;
    struct clw_commits *commits; /* stored versus acknowledged offsets (at least once) */
    int commits_stalled;         /* as last reported to the handler */
    struct txn_thread txn;
};

/* Settings the worker relies on; the config module refuses user overrides of these. */
static const char *const consumer_forced[][2] = {
    {"enable.auto.offset.store", "false"},
    {"enable.auto.commit", "true"},
    {"isolation.level", "read_committed"},
    {"enable.partition.eof", "false"},
};
static const char *const consumer_defaults[][2] = {
    {"auto.offset.reset", "earliest"},
    /* A committable offset reaches the coordinator within 100 ms of being stored (librdkafka:
     * 5 000); with publishing before it, completion to commit stays under the 0.25 s of
     * throughput a crash may redo (contract section 5, commit cadence; bench/RESULTS.md). */
    {"auto.commit.interval.ms", "100"},
    /* After a crash the group waits this long for the dead member before the survivors get a
     * new generation, and none of their commits can land meanwhile (design section 4, hand-over
     * while the group rebalances): 10 s, not librdkafka's 45 s, so that a stop within
     * worker.shutdown_timeout_ms (20 s) can wait for it. Heartbeats come from librdkafka's own
     * thread, whatever the loop does; static members set it above their restart time. */
    {"session.timeout.ms", "10000"},
    /* A member learns of a rebalance through its next heartbeat, and until all have rejoined
     * no commit lands and intake waits (design section 4): 1 s, not 3 s, so that a scale-up
     * costs the fleet about a second of its quota, not three (bench/RESULTS.md, issue 21). */
    {"heartbeat.interval.ms", "1000"},
    /* The worker's intake bounds what it takes; this bounds what librdkafka prefetches. */
    {"queued.max.messages.kbytes", "8192"},
    {"partition.assignment.strategy", "cooperative-sticky"},
};
static const char *const producer_forced[][2] = {
    {"enable.idempotence", "true"},
    {"acks", "all"},
};
static const char *const producer_defaults[][2] = {
    {"partitioner", "murmur2_random"},
    {"linger.ms", "5"},
};

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, const char *label,
                    char *err, size_t errlen)
{
    char rderr[512];
    if (rd_kafka_conf_set(conf, name, value, rderr, sizeof(rderr)) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "%s: %s", label, rderr);
        return -1;
    }
    return 0;
}

static void set_list(rd_kafka_conf_t *conf, const char *const (*list)[2], size_t n)
{
    char ignored[256];
    for (size_t i = 0; i < n; i++)
        rd_kafka_conf_set(conf, list[i][0], list[i][1], ignored, sizeof(ignored));
}

/* Applies the kafka.* passthrough properties of the given side; BOTH first, then the side's own
 * (which win). */
static int apply_props(rd_kafka_conf_t *conf, const struct clw_config *cfg,
                       enum clw_kafka_scope side, char *err, size_t errlen)
{
    static const char *const prefix[] = {"kafka.", "kafka.consumer.", "kafka.producer."};
    for (int pass = 0; pass < 2; pass++) {
        enum clw_kafka_scope want = pass == 0 ? CLW_KAFKA_BOTH : side;
        for (size_t i = 0; i < cfg->kafka_props_len; i++) {
            const struct clw_kafka_prop *p = &cfg->kafka_props[i];
            if (p->scope != want)
                continue;
            char label[512];
            snprintf(label, sizeof(label), "%s%s (%s)", prefix[p->scope], p->name, p->source);
            if (conf_set(conf, p->name, p->value, label, err, errlen) != 0)
                return -1;
        }
    }
    return 0;
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    enum clw_log_level l = level <= 3   ? CLW_LOG_ERROR
                           : level == 4 ? CLW_LOG_WARN
                           : level <= 6 ? CLW_LOG_INFO
                                        : CLW_LOG_DEBUG;
    CLW_LOG(l, NULL, "kafka %s: %s", fac, buf);
}

static void report_fatal(struct clw_kafka *k, rd_kafka_t *rk)
{
    char buf[512];
    rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof(buf));
    if (k->fatal_reported)
        return;
    k->fatal_reported = 1;
    char msg[640];
    snprintf(msg, sizeof(msg), "%s: %s", rd_kafka_err2name(orig), buf);
    k->h.fatal(k->h.arg, msg);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct clw_kafka *k = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        report_fatal(k, rk);
        return;
    }
    CLW_WARN("kafka %s: %s: %s", rd_kafka_name(rk), rd_kafka_err2name((rd_kafka_resp_err_t)err),
             reason);
}

static enum clw_publish_err publish_class(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return CLW_PUBLISH_OK;
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
        return CLW_PUBLISH_STUCK;
    default:
        return CLW_PUBLISH_RETRY;
    }
}

/* Serves one event of the producer's queue: a delivery report is handed to the handler one
 * record at a time; an error is what the consumer's error callback gets (the event API returns
 * errors as events, not through the callback). Other events (statistics) are dropped, as they
 * were without their callbacks. Returns the number of records reported. */
static int serve_producer_event(struct clw_kafka *k, rd_kafka_event_t *ev)
{
    int n = 0;
    switch (rd_kafka_event_type(ev)) {
    case RD_KAFKA_EVENT_DR: {
        const rd_kafka_message_t *m;
        while ((m = rd_kafka_event_message_next(ev)) != NULL) {
            k->h.delivered(k->h.arg, m->_private, publish_class(m->err),
                           m->err ? rd_kafka_err2str(m->err) : "");
            n++;
        }
        break;
    }
    case RD_KAFKA_EVENT_ERROR:
        on_error(k->producer,
                 rd_kafka_event_error_is_fatal(ev) ? RD_KAFKA_RESP_ERR__FATAL
                                                   : rd_kafka_event_error(ev),
                 rd_kafka_event_error_string(ev), k);
        break;
    default:
        break;
    }
    rd_kafka_event_destroy(ev);
    return n;
}

static int32_t *partitions_of(const struct clw_kafka *k,
                              const rd_kafka_topic_partition_list_t *parts, size_t *n)
{
    int32_t *out = calloc((size_t)parts->cnt + 1, sizeof(*out));
    *n = 0;
    if (out == NULL)
        return NULL;
    for (int i = 0; i < parts->cnt; i++)
        if (strcmp(parts->elems[i].topic, k->topic_requests) == 0)
            out[(*n)++] = parts->elems[i].partition;
    return out;
}

/* Offset commit results (automatic, synchronous, on unassign): what reached the coordinator. */
static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    struct clw_kafka *k = opaque;
    int64_t now = clw_clock_mono_ms();
    for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && offsets != NULL && i < offsets->cnt; i++) {
        const rd_kafka_topic_partition_t *e = &offsets->elems[i];
        if (e->err == RD_KAFKA_RESP_ERR_NO_ERROR && e->offset >= 0 &&
            strcmp(e->topic, k->topic_requests) == 0)
            clw_commits_acked(k->commits, e->partition, e->offset, now);
    }
}

/* Commits every stored offset of the current assignment that the coordinator has not
 * acknowledged, and waits. Called from the cooperative assign callback: the new generation is
 * usable there and no JoinGroup is in flight (librdkafka starts no rejoin before the assign
 * call), so this is the first moment the work done during a rebalance can be committed. */
static void commit_waiting(struct clw_kafka *k)
{
    struct clw_commit_gap gaps[64];
    size_t n = clw_commits_gaps(k->commits, INT64_MAX, gaps, 64);
    if (n > 64)
        n = 64; /* the rest goes with the automatic commit */
    int32_t ids[64];
    int64_t offs[64];
    for (size_t i = 0; i < n; i++) {
        ids[i] = gaps[i].partition;
        offs[i] = gaps[i].stored;
    }
    if (n > 0 && clw_kafka_commit(k, ids, offs, n) == 0)
        CLW_DEBUG("committed %zu partition(s) with the new generation", n);
}

/* "1,2,3" of the partitions for a log line, ",..." when cut. */
static void list_partitions(const int32_t *ids, size_t n, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; ids != NULL && i < n; i++) {
        if (len + 16 >= size) {
            snprintf(buf + len, size - len, ",...");
            return;
        }
        len += (size_t)snprintf(buf + len, size - len, "%s%d", i ? "," : "", (int)ids[i]);
    }
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct clw_kafka *k = opaque;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    size_t n = 0;
    int32_t *ids = partitions_of(k, parts, &n);
    rd_kafka_error_t *error = NULL;
    char list[256];
    list_partitions(ids, n, list, sizeof(list));
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        CLW_INFO("assigned %d partition(s) (%s): %s", parts->cnt,
                 cooperative ? "cooperative" : "eager", list);
        if (cooperative)
            commit_waiting(k);
        for (size_t i = 0; ids != NULL && i < n; i++)
            if (clw_commits_assigned(k->commits, ids[i]) != 0)
                CLW_WARN("out of memory tracking the commits of partition %d", (int)ids[i]);
        if (ids != NULL)
            k->h.assigned(k->h.arg, ids, n);
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
    } else {
        int lost = rd_kafka_assignment_lost(rk);
        CLW_INFO("revoking %d partition(s)%s: %s", parts->cnt, lost ? " (assignment lost)" : "",
                 list);
        if (ids != NULL)
            k->h.revoked(k->h.arg, ids, n, lost);
        int64_t now = clw_clock_mono_ms();
        for (size_t i = 0; ids != NULL && i < n; i++)
            clw_commits_revoked(k->commits, ids[i], lost, now);
        /* A pause survives re-assignment in librdkafka 2.0.2: clear it here. */
        rd_kafka_resume_partitions(rk, parts);
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            rd_kafka_assign(rk, NULL);
    }
    if (error != NULL) {
        CLW_ERROR("rebalance: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    free(ids);
}

static rd_kafka_conf_t *base_conf(struct clw_kafka *k)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_error_cb(conf, on_error);
    return conf;
}

static rd_kafka_conf_t *consumer_conf(struct clw_kafka *k, const struct clw_config *cfg, char *err,
                                      size_t errlen)
{
    rd_kafka_conf_t *conf = base_conf(k);
    set_list(conf, consumer_defaults, sizeof(consumer_defaults) / sizeof(consumer_defaults[0]));
    if (apply_props(conf, cfg, CLW_KAFKA_CONSUMER, err, errlen) != 0)
        goto fail;
    if (conf_set(conf, "group.id", cfg->kafka_group_id, "kafka.group.id", err, errlen) != 0)
        goto fail;
    set_list(conf, consumer_forced, sizeof(consumer_forced) / sizeof(consumer_forced[0]));
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static rd_kafka_conf_t *producer_conf(struct clw_kafka *k, const struct clw_config *cfg, char *err,
                                      size_t errlen)
{
    rd_kafka_conf_t *conf = base_conf(k);
    set_list(conf, producer_defaults, sizeof(producer_defaults) / sizeof(producer_defaults[0]));
    if (apply_props(conf, cfg, CLW_KAFKA_PRODUCER, err, errlen) != 0)
        goto fail;
    set_list(conf, producer_forced, sizeof(producer_forced) / sizeof(producer_forced[0]));
    /* Delivery reports as events, served by clw_kafka_poll_producer() on the loop thread: a
     * commit's or an abort's flush on the transaction thread then only waits for them
     * (with a delivery callback it would run the handler on that thread). */
    rd_kafka_conf_set_events(conf, RD_KAFKA_EVENT_DR);
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

int clw_kafka_validate_config(const struct clw_config *cfg, char *err, size_t errlen)
{
    struct clw_kafka k;
    memset(&k, 0, sizeof(k));
    rd_kafka_conf_t *c = consumer_conf(&k, cfg, err, errlen);
    if (c == NULL)
        return -1;
    rd_kafka_conf_destroy(c);
    rd_kafka_conf_t *p = producer_conf(&k, cfg, err, errlen);
    if (p == NULL)
        return -1;
    rd_kafka_conf_destroy(p);
    return 0;
}

struct clw_kafka *clw_kafka_new(const struct clw_config *cfg, const struct clw_kafka_handlers *h,
                                char *err, size_t errlen)
{
    struct clw_kafka *k = calloc(1, sizeof(*k));
    rd_kafka_conf_t *conf = NULL;
    if (k == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    k->pipe_rd = k->pipe_wr = -1;
    k->h = *h;
    k->topic_requests = strdup(cfg->topic_requests);
    k->topic_results = strdup(cfg->topic_results);
    if (cfg->topic_dlq[0] != '\0')
        k->topic_dlq = strdup(cfg->topic_dlq);
    if (k->topic_requests == NULL || k->topic_results == NULL ||
        (cfg->topic_dlq[0] != '\0' && k->topic_dlq == NULL)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        goto fail;
    }
    k->pipe_rd = fds[0];
    k->pipe_wr = fds[1];

    char rderr[512];
    conf = consumer_conf(k, cfg, err, errlen);
    if (conf == NULL)
        goto fail;
    k->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof(rderr));
    if (k->consumer == NULL) {
        snprintf(err, errlen, "kafka consumer: %s", rderr);
        goto fail; /* conf is still ours on failure */
    }
    conf = NULL; /* now owned by the consumer */
    char interval[32];
    size_t interval_len = sizeof(interval);
    long commit_ms = 5000;
    if (rd_kafka_conf_get(rd_kafka_conf(k->consumer), "auto.commit.interval.ms", interval,
                          &interval_len) == RD_KAFKA_CONF_OK)
        commit_ms = strtol(interval, NULL, 10);
    /* An acknowledgement is due within one interval plus a round trip: two plus 100 ms, and no
     * less than 500 ms (a loaded broker answers slowly; a false stall pauses every partition). */
    int64_t stall_ms = 2 * (int64_t)commit_ms + 100;
    k->commits = clw_commits_new(stall_ms > 500 ? stall_ms : 500);
    if (k->commits == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    conf = producer_conf(k, cfg, err, errlen);
    if (conf == NULL)
        goto fail;
    k->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof(rderr));
    if (k->producer == NULL) {
        snprintf(err, errlen, "kafka producer: %s", rderr);
        goto fail;
    }
    conf = NULL; /* now owned by the producer */

    rd_kafka_poll_set_consumer(k->consumer);
    k->consumer_q = rd_kafka_queue_get_consumer(k->consumer);
    k->producer_q = rd_kafka_queue_get_main(k->producer);
    if (k->consumer_q == NULL || k->producer_q == NULL) {
        snprintf(err, errlen, "kafka: cannot get event queues");
        goto fail;
    }
    rd_kafka_queue_io_event_enable(k->consumer_q, k->pipe_wr, "c", 1);
    rd_kafka_queue_io_event_enable(k->producer_q, k->pipe_wr, "p", 1);
    return k;
fail:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    clw_kafka_free(k);
    return NULL;
}

/* The partitions of topic name, 0 when it is not listed (or has none). */
static int topic_partitions(const struct rd_kafka_metadata *md, const char *name)
{
    for (int i = 0; i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, name) == 0 &&
            md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topics[i].partition_cnt > 0)
            return md->topics[i].partition_cnt;
    return 0;
}

static int topic_listed(const struct rd_kafka_metadata *md, const char *name)
{
    return topic_partitions(md, name) > 0;
}

int clw_kafka_requests_partitions(const struct clw_kafka *k)
{
    return k->requests_partitions;
}

int clw_kafka_output_topics_exist(struct clw_kafka *k, int timeout_ms, char *missing,
                                  size_t missing_len)
{
    const struct rd_kafka_metadata *md = NULL;
    /* All topics: asking for one by name could make a broker auto-create it. */
    rd_kafka_resp_err_t err = rd_kafka_metadata(k->producer, 1, NULL, &md, timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    const char *absent = NULL;
    k->requests_partitions = topic_partitions(md, k->topic_requests);
    if (!topic_listed(md, k->topic_results))
        absent = k->topic_results;
    else if (k->topic_dlq != NULL && !topic_listed(md, k->topic_dlq))
        absent = k->topic_dlq;
    if (absent != NULL)
        snprintf(missing, missing_len, "%s", absent);
    rd_kafka_metadata_destroy(md);
    return absent == NULL;
}

int clw_kafka_subscribe(struct clw_kafka *k, char *err, size_t errlen)
{
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, k->topic_requests, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t rc = rd_kafka_subscribe(k->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "subscribe %s: %s", k->topic_requests, rd_kafka_err2str(rc));
        return -1;
    }
    return 0;
}

size_t clw_kafka_fds(const struct clw_kafka *k, int *fds, size_t cap)
{
    if (cap < 1)
        return 0;
    fds[0] = k->pipe_rd;
    return 1;
}

void clw_kafka_drain_fds(struct clw_kafka *k)
{
    char buf[256];
    while (read(k->pipe_rd, buf, sizeof(buf)) > 0) {
    }
}

#define CLW_MAX_HEADERS 64

static void deliver_record(struct clw_kafka *k, rd_kafka_message_t *m)
{
    struct clw_kafka_header hdrs[CLW_MAX_HEADERS];
    size_t n_hdrs = 0;
    rd_kafka_headers_t *rh = NULL;
    if (rd_kafka_message_headers(m, &rh) == RD_KAFKA_RESP_ERR_NO_ERROR && rh != NULL) {
        const char *name;
        const void *value;
        size_t size;
        for (size_t i = 0;
             n_hdrs < CLW_MAX_HEADERS &&
             rd_kafka_header_get_all(rh, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
             i++) {
            hdrs[n_hdrs].name = name;
            hdrs[n_hdrs].value = value;
            hdrs[n_hdrs].value_len = size;
            n_hdrs++;
        }
    }
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    struct clw_kafka_msg msg = {
        .topic = rd_kafka_topic_name(m->rkt),
        .partition = m->partition,
        .offset = m->offset,
        .key = m->key,
        .key_len = m->key_len,
        .value = m->payload,
        .value_len = m->payload ? m->len : 0,
        .timestamp_ms = tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? -1 : ts,
        .headers = hdrs,
        .n_headers = n_hdrs,
    };
    k->h.message(k->h.arg, &msg);
}

int clw_kafka_poll_consumer(struct clw_kafka *k, int max)
{
    int records = 0;
    while (records < max) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(k->consumer, 0);
        if (m == NULL)
            break;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            deliver_record(k, m);
            records++;
        } else if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
            report_fatal(k, k->consumer);
        } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            CLW_WARN("kafka consumer: %s", rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
    }
    int stalled = clw_commits_stalled(k->commits, clw_clock_mono_ms());
    if (stalled != k->commits_stalled) {
        k->commits_stalled = stalled;
        if (k->h.commits_stalled != NULL)
            k->h.commits_stalled(k->h.arg, stalled);
    }
    return records;
}

int clw_kafka_poll_producer(struct clw_kafka *k)
{
    int n = 0;
    rd_kafka_event_t *ev;
    while ((ev = rd_kafka_queue_poll(k->producer_q, 0)) != NULL)
        n += serve_producer_event(k, ev);
    return n;
}

int clw_kafka_produce(struct clw_kafka *k, enum clw_kafka_dest dest, const void *key,
                      size_t key_len, const void *value, size_t value_len,
                      const struct clw_kafka_header *headers, size_t n_headers, void *opaque,
                      char *err, size_t errlen)
{
    const char *topic = dest == CLW_DEST_DLQ ? k->topic_dlq : k->topic_results;
    if (topic == NULL) {
        snprintf(err, errlen, "no dead-letter topic configured");
        return -1;
    }
    rd_kafka_headers_t *rh = rd_kafka_headers_new(n_headers);
    for (size_t i = 0; i < n_headers; i++)
        rd_kafka_header_add(rh, headers[i].name, -1, headers[i].value,
                            (ssize_t)headers[i].value_len);
    rd_kafka_resp_err_t rc = rd_kafka_producev(
        k->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
        RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(rh), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(rh); /* still ours when producev failed */
        snprintf(err, errlen, "%s", rd_kafka_err2str(rc));
        /* Transactional: the transaction failed and takes records again only once aborted. */
        return rc == RD_KAFKA_RESP_ERR__STATE ? -2 : -1;
    }
    return 0;
}

int clw_kafka_store(struct clw_kafka *k, int32_t partition, int64_t next_offset)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, k->topic_requests, partition)->offset = next_offset;
    rd_kafka_resp_err_t rc = rd_kafka_offsets_store(k->consumer, list);
    int ok = rc == RD_KAFKA_RESP_ERR_NO_ERROR && list->elems[0].err == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (ok)
        clw_commits_stored(k->commits, partition, next_offset, clw_clock_mono_ms());
    else
        CLW_WARN("cannot store offset %lld of %s [%d]: %s", (long long)next_offset,
                 k->topic_requests, (int)partition, rd_kafka_err2str(rc ? rc : list->elems[0].err));
    /* Destroyed at once: a held list blocked rd_kafka_destroy() in 2.0.2. */
    rd_kafka_topic_partition_list_destroy(list);
    return ok ? 0 : -1;
}

size_t clw_kafka_uncommitted(const struct clw_kafka *k, int64_t since_ms,
                             struct clw_commit_gap *out, size_t cap)
{
    return k->commits != NULL ? clw_commits_gaps(k->commits, since_ms, out, cap) : 0;
}

int clw_kafka_commit(struct clw_kafka *k, const int32_t *partitions, const int64_t *offsets,
                     size_t n)
{
    if (n == 0)
        return 0;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(list, k->topic_requests, partitions[i])->offset =
            offsets[i];
    rd_kafka_resp_err_t rc = rd_kafka_commit(k->consumer, list, 0 /* synchronous */);
    int ok = rc == RD_KAFKA_RESP_ERR_NO_ERROR;
    int64_t now = clw_clock_mono_ms();
    for (int i = 0; i < list->cnt; i++) {
        if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (ok)
                rc = list->elems[i].err;
            ok = 0;
        } else if (rc == RD_KAFKA_RESP_ERR_NO_ERROR) {
            clw_commits_acked(k->commits, list->elems[i].partition, list->elems[i].offset, now);
        }
    }
    if (!ok)
        CLW_WARN("cannot commit offsets of %s: %s", k->topic_requests, rd_kafka_err2str(rc));
    rd_kafka_topic_partition_list_destroy(list);
    return ok ? 0 : -1;
}

void clw_kafka_pause(struct clw_kafka *k, int32_t partition, int pause)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, k->topic_requests, partition);
    if (pause)
        rd_kafka_pause_partitions(k->consumer, list);
    else
        rd_kafka_resume_partitions(k->consumer, list);
    rd_kafka_topic_partition_list_destroy(list);
}

/* Fills err from a transactional API error and destroys the error. */
static void txn_error(rd_kafka_error_t *error, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: %s", what, rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
}

static void *txn_main(void *arg);

int clw_kafka_txn_init(struct clw_kafka *k, int timeout_ms, char *err, size_t errlen)
{
    rd_kafka_error_t *error = rd_kafka_init_transactions(k->producer, timeout_ms);
    if (error != NULL) {
        txn_error(error, "init_transactions", err, errlen);
        return -1;
    }
    if (k->txn.started)
        return 0;
    struct txn_thread *t = &k->txn;
    if (pthread_mutex_init(&t->lock, NULL) != 0)
        goto fail;
    if (pthread_cond_init(&t->cond, NULL) != 0) {
        pthread_mutex_destroy(&t->lock);
        goto fail;
    }
    if (pthread_create(&t->thread, NULL, txn_main, k) != 0) {
        pthread_cond_destroy(&t->cond);
        pthread_mutex_destroy(&t->lock);
        goto fail;
    }
    t->started = 1;
    return 0;
fail:
    snprintf(err, errlen, "cannot start the transaction thread");
    return -1;
}

int clw_kafka_txn_begin(struct clw_kafka *k, char *err, size_t errlen)
{
    rd_kafka_error_t *error = rd_kafka_begin_transaction(k->producer);
    if (error == NULL)
        return 0;
    txn_error(error, "begin_transaction", err, errlen);
    return -1;
}

/* Transaction thread: 1 when a call that failed with error should be made again (it resumes
 * the operation under way, or sends the same request again); the error is destroyed then.
 * Logs once per operation that the broker keeps it waiting. */
static int txn_retry(struct clw_kafka *k, rd_kafka_error_t *error, const char *what,
                     int64_t called_at, int *waited)
{
    if (rd_kafka_error_txn_requires_abort(error) || !rd_kafka_error_is_retriable(error) ||
        atomic_load(&k->txn.quit))
        return 0;
    if (!*waited)
        CLW_WARN("Kafka transaction: %s waits for the broker (%s); retrying until it answers", what,
                 rd_kafka_error_string(error));
    *waited = 1;
    rd_kafka_error_destroy(error);
    int64_t rest = called_at + TXN_RETRY_MS - clw_clock_mono_ms();
    if (rest > 0) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)rest * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 1;
}

/* Transaction thread: aborts the open transaction. Returns ABORTED, or FATAL when it could not
 * be aborted (no new transaction can begin then). */
static enum clw_txn_result txn_abort(struct clw_kafka *k, char *err, size_t errlen)
{
    rd_kafka_error_t *error;
    int waited = 0;
    for (;;) {
        int64_t at = clw_clock_mono_ms();
        error = rd_kafka_abort_transaction(k->producer, TXN_SLICE_MS);
        if (error == NULL || !txn_retry(k, error, "abort_transaction", at, &waited))
            break;
    }
    if (error == NULL)
        return CLW_TXN_ABORTED;
    txn_error(error, "abort_transaction", err, errlen);
    return CLW_TXN_FATAL;
}

/* Transaction thread: sends the offsets (the same ones on every try, as librdkafka asks), then
 * commits; anything neither retriable nor fatal is answered by aborting. */
static enum clw_txn_result txn_commit(struct clw_kafka *k, rd_kafka_topic_partition_list_t *offsets,
                                      const rd_kafka_consumer_group_metadata_t *cgmd, char *err,
                                      size_t errlen)
{
    rd_kafka_error_t *error = NULL;
    const char *what = "send_offsets_to_transaction";
    int waited = 0;
    while (offsets != NULL) {
        int64_t at = clw_clock_mono_ms();
        error =
            rd_kafka_send_offsets_to_transaction(k->producer, offsets, cgmd, TXN_SEND_OFFSETS_MS);
        if (error == NULL || !txn_retry(k, error, what, at, &waited))
            break;
    }
    if (error == NULL) {
        what = "commit_transaction";
        for (;;) {
            int64_t at = clw_clock_mono_ms();
            error = rd_kafka_commit_transaction(k->producer, TXN_SLICE_MS);
            if (error == NULL || !txn_retry(k, error, what, at, &waited))
                break;
        }
    }
    if (error == NULL)
        return CLW_TXN_COMMITTED;
    int fatal = rd_kafka_error_is_fatal(error);
    txn_error(error, what, err, errlen);
    if (fatal || atomic_load(&k->txn.quit))
        return CLW_TXN_FATAL;
    char abort_err[256];
    if (txn_abort(k, abort_err, sizeof(abort_err)) == CLW_TXN_FATAL) {
        snprintf(err, errlen, "%s", abort_err);
        return CLW_TXN_FATAL;
    }
    return CLW_TXN_ABORTED;
}

/* The transaction thread: runs one operation at a time and wakes the loop when it ended. */
static void *txn_main(void *arg)
{
    struct clw_kafka *k = arg;
    struct txn_thread *t = &k->txn;
    pthread_mutex_lock(&t->lock);
    for (;;) {
        while (t->op == TXN_OP_NONE && !atomic_load(&t->quit))
            pthread_cond_wait(&t->cond, &t->lock);
        if (atomic_load(&t->quit))
            break;
        enum txn_op op = t->op;
        rd_kafka_topic_partition_list_t *offsets = t->offsets;
        rd_kafka_consumer_group_metadata_t *cgmd = t->cgmd;
        t->offsets = NULL;
        t->cgmd = NULL;
        pthread_mutex_unlock(&t->lock);
        char err[512] = "";
        enum clw_txn_result r = op == TXN_OP_COMMIT ? txn_commit(k, offsets, cgmd, err, sizeof(err))
                                                    : txn_abort(k, err, sizeof(err));
        if (offsets != NULL)
            rd_kafka_topic_partition_list_destroy(offsets);
        if (cgmd != NULL)
            rd_kafka_consumer_group_metadata_destroy(cgmd);
        pthread_mutex_lock(&t->lock);
        t->op = TXN_OP_NONE;
        t->result = r;
        snprintf(t->err, sizeof(t->err), "%s", err);
        /* The loop sleeps in epoll on this pipe; a full pipe wakes it just the same. */
        if (write(k->pipe_wr, "t", 1) < 0 && errno != EAGAIN)
            CLW_WARN("kafka: cannot wake the event loop: %s", strerror(errno));
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

/* Hands an operation to the transaction thread; takes offsets and cgmd (may be NULL). */
static int txn_start(struct clw_kafka *k, enum txn_op op, rd_kafka_topic_partition_list_t *offsets,
                     rd_kafka_consumer_group_metadata_t *cgmd, char *err, size_t errlen)
{
    struct txn_thread *t = &k->txn;
    if (!t->started) {
        snprintf(err, errlen, "transactions are not initialised");
        goto fail;
    }
    pthread_mutex_lock(&t->lock);
    if (t->pending) {
        pthread_mutex_unlock(&t->lock);
        snprintf(err, errlen, "a transaction operation is under way");
        goto fail;
    }
    t->op = op;
    t->pending = 1;
    t->offsets = offsets;
    t->cgmd = cgmd;
    t->result = CLW_TXN_RUNNING;
    t->err[0] = '\0';
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
    return 0;
fail:
    if (offsets != NULL)
        rd_kafka_topic_partition_list_destroy(offsets);
    if (cgmd != NULL)
        rd_kafka_consumer_group_metadata_destroy(cgmd);
    return -1;
}

int clw_kafka_txn_commit_start(struct clw_kafka *k, const int32_t *partitions,
                               const int64_t *offsets, size_t n, char *err, size_t errlen)
{
    rd_kafka_topic_partition_list_t *list = NULL;
    rd_kafka_consumer_group_metadata_t *cgmd = NULL;
    if (n > 0) {
        list = rd_kafka_topic_partition_list_new((int)n);
        for (size_t i = 0; i < n; i++)
            rd_kafka_topic_partition_list_add(list, k->topic_requests, partitions[i])->offset =
                offsets[i];
        /* The group generation these offsets were computed in: a later rebalance fences them. */
        cgmd = rd_kafka_consumer_group_metadata(k->consumer);
        if (cgmd == NULL) {
            rd_kafka_topic_partition_list_destroy(list);
            snprintf(err, errlen, "no consumer group metadata");
            return -1;
        }
    }
    return txn_start(k, TXN_OP_COMMIT, list, cgmd, err, errlen);
}

int clw_kafka_txn_abort_start(struct clw_kafka *k, char *err, size_t errlen)
{
    return txn_start(k, TXN_OP_ABORT, NULL, NULL, err, errlen);
}

enum clw_txn_result clw_kafka_txn_poll(struct clw_kafka *k, char *err, size_t errlen)
{
    struct txn_thread *t = &k->txn;
    if (!t->started)
        return CLW_TXN_RUNNING; /* never started: nothing will end */
    pthread_mutex_lock(&t->lock);
    enum clw_txn_result r = t->pending ? t->result : CLW_TXN_RUNNING;
    if (r != CLW_TXN_RUNNING) {
        t->pending = 0;
        snprintf(err, errlen, "%s", t->err);
    }
    pthread_mutex_unlock(&t->lock);
    return r;
}

int64_t clw_kafka_high_watermark(struct clw_kafka *k, int32_t partition)
{
    int64_t low = -1;
    int64_t high = -1;
    if (rd_kafka_get_watermark_offsets(k->consumer, k->topic_requests, partition, &low, &high) !=
        RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    return high;
}

int clw_kafka_producer_queue_len(const struct clw_kafka *k)
{
    return rd_kafka_outq_len(k->producer);
}

/* Serves producer events until every produced record is reported or deadline (monotonic ms)
 * passes. Returns the records still unreported. */
static int serve_reports(struct clw_kafka *k, int64_t deadline)
{
    while (rd_kafka_outq_len(k->producer) > 0) {
        int64_t left = deadline - clw_clock_mono_ms();
        if (left <= 0)
            break;
        rd_kafka_event_t *ev = rd_kafka_queue_poll(k->producer_q, left < 100 ? (int)left : 100);
        if (ev != NULL)
            serve_producer_event(k, ev);
    }
    return rd_kafka_outq_len(k->producer);
}

int clw_kafka_close(struct clw_kafka *k, int flush_ms)
{
    int rc = 0;
    if (k->consumer != NULL) {
        rd_kafka_resp_err_t err = rd_kafka_consumer_close(k->consumer);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            CLW_WARN("consumer close: %s", rd_kafka_err2str(err));
            rc = -1;
        }
    }
    if (k->producer == NULL)
        return rc;
    /* rd_kafka_flush() would only wait: delivery reports are events this loop serves. */
    if (serve_reports(k, clw_clock_mono_ms() + flush_ms) > 0) {
        CLW_WARN("producer flush: %d outcome(s) not acknowledged", rd_kafka_outq_len(k->producer));
        return -1;
    }
    return rc;
}

void clw_kafka_purge(struct clw_kafka *k, int wait_ms)
{
    if (k->producer == NULL)
        return;
    rd_kafka_purge(k->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    serve_reports(k, clw_clock_mono_ms() + wait_ms);
}

/* Stops the transaction thread once the librdkafka call it is in returned. */
static void txn_stop(struct clw_kafka *k)
{
    struct txn_thread *t = &k->txn;
    if (!t->started)
        return;
    pthread_mutex_lock(&t->lock);
    atomic_store(&t->quit, 1);
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    if (t->offsets != NULL) /* started, never run */
        rd_kafka_topic_partition_list_destroy(t->offsets);
    if (t->cgmd != NULL)
        rd_kafka_consumer_group_metadata_destroy(t->cgmd);
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->lock);
    t->started = 0;
}

void clw_kafka_free(struct clw_kafka *k)
{
    if (k == NULL)
        return;
    txn_stop(k);
    if (k->consumer_q != NULL)
        rd_kafka_queue_destroy(k->consumer_q);
    if (k->producer_q != NULL)
        rd_kafka_queue_destroy(k->producer_q);
    if (k->consumer != NULL)
        rd_kafka_destroy(k->consumer);
    if (k->producer != NULL)
        rd_kafka_destroy(k->producer);
    if (k->pipe_rd >= 0)
        close(k->pipe_rd);
    if (k->pipe_wr >= 0)
        close(k->pipe_wr);
    free(k->topic_requests);
    free(k->topic_results);
    free(k->topic_dlq);
    clw_commits_free(k->commits);
    free(k);
}
