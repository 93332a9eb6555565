/* Worker calls: scheduling under the in-flight cap, signing, answers, retries, worker faults and
 * the circuit breaker. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clw/backoff.h"
#include "clw/classify.h"
#include "clw/clock.h"
#include "clw/ratelimit.h"
#include "clw/sign.h"
#include "worker_internal.h"

/* Consecutive transient failures (across at least two instances) that open the circuit. */
#define CIRCUIT_THRESHOLD 20
/* Freshly signed attempts answered 4200/4500 in a row before we call it clock skew. */
#define RESIGN_LIMIT 3

void clw_worker_list_remove(struct jobq *q, struct job *job)
{
    if (job->prev != NULL)
        job->prev->next = job->next;
    else
        q->head = job->next;
    if (job->next != NULL)
        job->next->prev = job->prev;
    else
        q->tail = job->prev;
    job->prev = job->next = NULL;
    q->len--;
}

static void list_push(struct jobq *q, struct job *job, int front)
{
    job->prev = job->next = NULL;
    if (q->head == NULL) {
        q->head = q->tail = job;
    } else if (front) {
        job->next = q->head;
        q->head->prev = job;
        q->head = job;
    } else {
        job->prev = q->tail;
        q->tail->next = job;
        q->tail = job;
    }
    q->len++;
}

void clw_worker_enqueue_ready(struct worker *w, struct job *job, int front)
{
    job->state = JOB_READY;
    list_push(&w->ready, job, front);
}

void clw_worker_gate_ready(void *jobp, void *arg)
{
    struct job *job = jobp;
    clw_worker_enqueue_ready(arg, job, 0);
}

int64_t clw_worker_paused_total(const struct worker *w, int64_t now)
{
    return w->paused_total + (w->paused_since >= 0 ? now - w->paused_since : 0);
}

/* Starts or ends the paused-time clock when any pause reason changes. */
void clw_worker_pause_update(struct worker *w, int64_t now)
{
    int paused = w->fault_active || w->circuit_open || w->publish_stuck;
    if (paused && w->paused_since < 0) {
        w->paused_since = now;
    } else if (!paused && w->paused_since >= 0) {
        w->paused_total += now - w->paused_since;
        w->paused_since = -1;
    }
    clw_worker_sync_all_pauses(w);
}

/* The metrics state changes before the log line, so that whoever reads the log and then asks
 * /readyz sees the new state. */
static void set_fault(struct worker *w, int on, const char *reason, int64_t now)
{
    w->fault_active = on;
    if (on) {
        snprintf(w->fault_reason, sizeof(w->fault_reason), "%s", reason);
        w->next_probe_mono = now + w->cfg->retry_max_backoff_ms;
        clw_metrics_set_paused(w->metrics, CLW_PAUSE_WORKER_FAULT, 1, w->fault_reason);
        CLW_ERROR("worker fault: %s; pausing all partitions, probing every %" PRId64 " ms",
                  w->fault_reason, w->cfg->retry_max_backoff_ms);
    } else {
        clw_metrics_set_paused(w->metrics, CLW_PAUSE_WORKER_FAULT, 0, NULL);
        CLW_WARN("worker fault cleared (%s); resuming", w->fault_reason);
        w->fault_reason[0] = '\0';
        while (w->held.head != NULL) {
            struct job *job = w->held.head;
            clw_worker_list_remove(&w->held, job);
            clw_worker_enqueue_ready(w, job, 0);
        }
    }
    clw_worker_pause_update(w, now);
}

static void set_circuit(struct worker *w, int open, int64_t now)
{
    w->circuit_open = open;
    clw_metrics_set_paused(w->metrics, CLW_PAUSE_CIRCUIT_OPEN, open,
                           open ? "consecutive transient API failures" : NULL);
    if (open) {
        w->next_probe_mono = now + w->cfg->retry_max_backoff_ms;
        CLW_ERROR("circuit open after %d consecutive transient failures; probing every %" PRId64
                  " ms",
                  w->transient_streak, w->cfg->retry_max_backoff_ms);
    } else {
        CLW_WARN("circuit closed");
    }
    clw_worker_pause_update(w, now);
}

static void note_transient(struct worker *w, const struct job *job)
{
    const char *key = job->req.n_instances > 0 ? job->req.instance_ids[0] : "";
    if (w->transient_streak == 0) {
        snprintf(w->streak_key, sizeof(w->streak_key), "%s", key);
        w->streak_distinct = 0;
    } else if (strcmp(w->streak_key, key) != 0) {
        w->streak_distinct = 1;
    }
    w->transient_streak++;
}

static void note_not_transient(struct worker *w, int64_t now)
{
    w->transient_streak = 0;
    if (w->circuit_open)
        set_circuit(w, 0, now);
}

/* Builds the signed v2 call for one attempt of the job's current phase (fresh Timestamp and
 * Nonce) and submits it. */
static int start_call_v2(struct worker *w, struct job *job)
{
    const struct clw_config *cfg = w->cfg;
    const struct clw_request *req = &job->req;
    size_t cap = 12 + req->n_instances;
    size_t scratch_len = 32 * (req->n_instances + 1);
    struct clw_param *params = calloc(cap, sizeof(*params));
    char *scratch = malloc(scratch_len);
    char *query = NULL;
    char *url = NULL;
    int rc = -1;
    if (params == NULL || scratch == NULL)
        goto out;
    char timestamp[24];
    char nonce[24];
    snprintf(timestamp, sizeof(timestamp), "%" PRId64, clw_clock_wall_ms() / 1000);
    snprintf(nonce, sizeof(nonce), "%" PRIu64, (clw_rand_next(&w->rng) >> 2) + 1);
    size_t n = 0;
    params[n++] = (struct clw_param){"Action", clw_worker_phase_action(job)};
    params[n++] = (struct clw_param){"Region", req->region};
    params[n++] = (struct clw_param){"Timestamp", timestamp};
    params[n++] = (struct clw_param){"Nonce", nonce};
    params[n++] = (struct clw_param){"SecretId", cfg->api_secret_id};
    params[n++] = (struct clw_param){
        "SignatureMethod",
        cfg->api_signature_method == CLW_SIGN_HMAC_SHA256 ? "HmacSHA256" : "HmacSHA1"};
    if (cfg->api_token[0] != '\0')
        params[n++] = (struct clw_param){"Token", cfg->api_token};
    n += clw_worker_phase_params(job, params + n, scratch, scratch_len);
    int post = cfg->api_http_method == CLW_HTTP_POST;
    query = clw_sign_v2_query(cfg->api_signature_method, post ? "POST" : "GET", w->ep.host,
                              w->ep.path, params, n, cfg->api_secret_key);
    if (query == NULL)
        goto out;
    if (post) {
        rc = clw_http_submit(w->http, w->endpoint, query, NULL, 2, job);
    } else {
        size_t len = strlen(w->endpoint) + strlen(query) + 2;
        url = malloc(len);
        if (url == NULL)
            goto out;
        snprintf(url, len, "%s?%s", w->endpoint, query);
        rc = clw_http_submit(w->http, url, NULL, NULL, 2, job);
    }
out:
    if (query != NULL)
        clw_sign_wipe(query, strlen(query));
    if (url != NULL)
        clw_sign_wipe(url, strlen(url));
    free(query);
    free(url);
    free(params);
    free(scratch);
    return rc;
}

/* Starts the job's next call (v2 or API 3.0) and accounts for it. Returns 0 or -1. */
static int start_call(struct worker *w, struct job *job, int64_t now)
{
    int rc =
        w->cfg->api_version == CLW_API_V3 ? clw_worker_start_v3(w, job) : start_call_v2(w, job);
    if (rc == 0 && job->phase == PHASE_ACTION) {
        if (job->first_attempt_mono < 0) {
            job->first_attempt_mono = now;
            job->paused_base = clw_worker_paused_total(w, now);
        }
        job->attempts++;
    }
    if (rc == 0) {
        job->call_started_mono = now;
        job->state = JOB_CALLING;
        w->calling++;
    }
    return rc;
}

static void schedule_retry(struct worker *w, struct job *job, int64_t now)
{
    const struct clw_config *cfg = w->cfg;
    int64_t retry_after = job->has_last ? job->last.retry_after_ms : -1;
    int64_t delay =
        clw_backoff_delay_ms(job->attempts, cfg->retry_initial_backoff_ms,
                             cfg->retry_max_backoff_ms, clw_rand_next(&w->rng), retry_after);
    int64_t start = job->first_attempt_mono >= 0 ? job->first_attempt_mono : now;
    int64_t elapsed = now - start - (clw_worker_paused_total(w, now) - job->paused_base);
    if (job->first_attempt_mono >= 0 &&
        clw_backoff_exhausted(elapsed, delay, cfg->retry_max_elapsed_ms)) {
        if (job->ambiguous)
            clw_worker_begin_reconcile(w, job, "retries_exhausted");
        else
            clw_worker_finalize(w, job, 0, "retries_exhausted");
        return;
    }
    clw_metrics_retry(w->metrics);
    job->state = JOB_BACKOFF;
    if (clw_timers_arm(&w->timers, &job->timer, now + delay) != 0)
        clw_worker_enqueue_ready(w, job, 0); /* no memory for a timer: retry at once */
}

/* The rate limiter's key of the job's next call: SecretId, region and action. */
static void rate_key(const struct worker *w, const struct job *job, char *key, size_t len)
{
    snprintf(key, len, "%s|%s|%s", w->cfg->api_secret_id, job->req.region,
             clw_worker_phase_action(job));
}

/* Starts jobs from the ready queue while slots are free. Under a worker fault or an open circuit
 * only one probe call runs per retry.max_backoff_ms. While draining, the queue holds only jobs
 * that must finish (see clw_worker_drain_parts). */
void clw_worker_dispatch(struct worker *w, int64_t now)
{
    size_t max = (size_t)w->cfg->worker_max_in_flight;
    if (now < w->rate_hold_until)
        return;
    while (w->calling < max) {
        struct job *job = NULL;
        int probe = 0;
        if (w->fault_active || w->circuit_open) {
            if (w->probe_in_flight || now < w->next_probe_mono)
                break;
            struct jobq *q = w->fault_active ? &w->held : &w->ready;
            job = q->head;
            if (job == NULL)
                break;
            clw_worker_list_remove(q, job);
            probe = 1;
        } else {
            job = w->ready.head;
            if (job == NULL)
                break;
            clw_worker_list_remove(&w->ready, job);
        }
        char key[512];
        rate_key(w, job, key, sizeof(key));
        int64_t wait = clw_ratelimit_acquire(w->ratelimit, key, now);
        if (wait > 0) {
            /* Over the API quota: the job keeps its place; nothing starts until then. */
            list_push(probe && w->fault_active ? &w->held : &w->ready, job, 1);
            w->rate_hold_until = now + wait;
            break;
        }
        if (start_call(w, job, now) != 0) {
            struct clw_log_ctx ctx;
            clw_worker_log_ctx(job, &ctx);
            CLW_LOG(CLW_LOG_WARN, &ctx, "cannot start the API call (out of memory); retrying");
            schedule_retry(w, job, now);
            break;
        }
        if (probe) {
            job->probe = 1;
            w->probe_in_flight = 1;
            w->next_probe_mono = now + w->cfg->retry_max_backoff_ms;
        }
    }
    clw_metrics_set_inflight(w->metrics, (long)w->calling);
}

static void worker_fault(struct worker *w, struct job *job, const char *reason, int64_t now)
{
    if (w->cfg->api_on_worker_fault == CLW_FAULT_EXIT) {
        CLW_ERROR("worker fault: %s; exiting (api.on_worker_fault = exit)", reason);
        w->exit_code = CLW_EXIT_WORKER_FAULT;
        w->stopping = 1;
        clw_worker_abandon(w, job);
        return;
    }
    job->state = JOB_HELD;
    list_push(&w->held, job, 0);
    if (!w->fault_active)
        set_fault(w, 1, reason, now);
}

static void describe_fault(const struct clw_answer *ans, const char *why, char *out, size_t len)
{
    if (ans->has_code)
        snprintf(out, len, "API answered code %ld%s%s", ans->code, ans->code_desc ? " " : "",
                 ans->code_desc ? ans->code_desc : "");
    else if (ans->transport == CLW_TRANSPORT_TLS)
        snprintf(out, len, "TLS verification of the API endpoint failed");
    else if (ans->http_status > 0)
        snprintf(out, len, "API endpoint answered HTTP %ld", ans->http_status);
    else
        snprintf(out, len, "%s", why);
}

/* 1 when a failed attempt may still have taken effect: the request reached the server and no
 * answer said it was refused. */
static int effect_unknown(const struct clw_answer *ans, int sent)
{
    if (!sent)
        return 0;
    return ans->transport == CLW_TRANSPORT_TIMEOUT || ans->transport == CLW_TRANSPORT_ERROR ||
           ans->transport == CLW_TRANSPORT_TOO_LARGE || ans->http_status >= 500 ||
           (ans->transport == CLW_TRANSPORT_OK && ans->http_status == 200 && !ans->has_code &&
            ans->code_desc == NULL);
}

static void action_answer(struct worker *w, struct job *job, enum clw_class cls, const char *why,
                          int sent, int64_t now)
{
    struct clw_log_ctx ctx;
    clw_worker_log_ctx(job, &ctx);
    int attach = job->req.action == CLW_ACTION_ATTACH;
    switch (cls) {
    case CLW_CLASS_SUCCESS:
        job->resign_streak = 0;
        note_not_transient(w, now);
        if (w->cfg->task_follow && job->last.has_task_id)
            clw_worker_begin_task(w, job, now);
        else
            clw_worker_finalize(w, job, 1, NULL);
        break;
    case CLW_CLASS_PERMANENT:
        note_not_transient(w, now);
        /* "Already linked" / "not found" may be our own earlier attempt's doing. */
        if ((attach && clw_classify_already_linked(&job->last)) ||
            (!attach && clw_classify_not_found(&job->last)))
            clw_worker_begin_reconcile(w, job, "api_error");
        else
            clw_worker_finalize(w, job, 0, "api_error");
        break;
    case CLW_CLASS_RESIGN:
        if (++job->resign_streak >= RESIGN_LIMIT) {
            char reason[200];
            snprintf(reason, sizeof(reason),
                     "code %ld on %d consecutive freshly signed attempts (clock skew?)",
                     job->last.code, RESIGN_LIMIT);
            worker_fault(w, job, reason, now);
        } else {
            clw_worker_enqueue_ready(w, job, 1);
        }
        break;
    case CLW_CLASS_TRANSIENT:
        if (effect_unknown(&job->last, sent))
            job->ambiguous = 1;
        CLW_LOG(CLW_LOG_INFO, &ctx, "attempt %d failed transiently (%s); will retry", job->attempts,
                why);
        /* Throttling says "slower", not "down": the rate limiter handles it, the circuit
         * breaker never counts it (contract section 8). */
        if (!clw_classify_throttled(&job->last))
            note_transient(w, job);
        if (!w->circuit_open && w->transient_streak >= CIRCUIT_THRESHOLD && w->streak_distinct)
            set_circuit(w, 1, now);
        schedule_retry(w, job, now);
        break;
    case CLW_CLASS_WORKER_FAULT: {
        char reason[256];
        describe_fault(&job->last, why, reason, sizeof(reason));
        worker_fault(w, job, reason, now);
        break;
    }
    }
}

void clw_worker_on_http_done(void *opaque, struct clw_answer *ans, int sent, void *arg)
{
    struct worker *w = arg;
    struct job *job = opaque;
    int64_t now = clw_clock_mono_ms();
    w->calling--;
    struct clw_answer *slot = job->phase == PHASE_ACTION ? &job->last : &job->aux;
    clw_answer_free(slot);
    *slot = *ans; /* takes ownership */
    if (job->phase == PHASE_ACTION)
        job->has_last = 1;
    const char *why = "";
    enum clw_class cls = clw_classify(slot, &why);
    clw_metrics_api_call(w->metrics, job->req.action, clw_class_name(cls),
                         slot->has_code ? slot->code : -1, slot->http_status,
                         (double)(now - job->call_started_mono) / 1000.0);
    int was_probe = job->probe;
    job->probe = 0;
    if (was_probe)
        w->probe_in_flight = 0;
    struct clw_log_ctx ctx;
    clw_worker_log_ctx(job, &ctx);
    CLW_LOG(CLW_LOG_DEBUG, &ctx, "attempt %d: %s answered: %s (%s)", job->attempts,
            clw_worker_phase_action(job), clw_class_name(cls), why);
    if (cls != CLW_CLASS_WORKER_FAULT && was_probe && w->fault_active)
        set_fault(w, 0, NULL, now);
    int throttled = clw_classify_throttled(slot);
    if (throttled || slot->body_json) {
        /* An answer from the API itself: it counts toward what the quota admits. */
        char key[512];
        rate_key(w, job, key, sizeof(key));
        clw_ratelimit_answered(w->ratelimit, key, now, throttled,
                               throttled ? slot->retry_after_ms : -1);
    }
    if (job->phase == PHASE_ACTION)
        action_answer(w, job, cls, why, sent, now);
    else
        clw_worker_followup_answer(w, job, (int)cls, now);
}
