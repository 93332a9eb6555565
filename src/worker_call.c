/* Worker calls: starting an attempt (signed through the API client, sent by the HTTP adapter),
 * taking its answer to the verdict, worker faults, probes and the circuit breaker. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clw/alloc.h"
#include "clw/backoff.h"
#include "clw/classify.h"
#include "clw/clock.h"
#include "worker_internal.h"

/* Consecutive transient failures (across at least two instances) that open the circuit. */
#define CIRCUIT_THRESHOLD 20

int64_t clw_worker_paused_total(const struct worker *w, int64_t now)
{
    return w->paused_total + (w->paused_since >= 0 ? now - w->paused_since : 0);
}

/* Starts or ends the paused-time clock when any pause reason changes. */
void clw_worker_pause_update(struct worker *w, int64_t now)
{
    int paused = w->fault_active || w->circuit_open || w->publish_stuck || w->creds_fault;
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
        clw_sched_unhold_all(w);
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

/* A transient failure of an Attach/Detach call: the streak spans two instances once a call
 * carries two, or two calls start with different ones. */
static void note_transient(struct worker *w, const struct call *call, int64_t now)
{
    const char *key = call->n_members > 0 && call->members[0]->req.n_instances > 0
                          ? call->members[0]->req.instance_ids[0]
                          : "";
    if (w->transient_streak == 0) {
        snprintf(w->streak_key, sizeof(w->streak_key), "%s", key);
        w->streak_distinct = call->n_instances > 1;
    } else if (call->n_instances > 1 || strcmp(w->streak_key, key) != 0) {
        w->streak_distinct = 1;
    }
    w->transient_streak++;
    if (!w->circuit_open && w->transient_streak >= CIRCUIT_THRESHOLD && w->streak_distinct)
        set_circuit(w, 1, now);
}

static void note_not_transient(struct worker *w, int64_t now)
{
    w->transient_streak = 0;
    if (w->circuit_open)
        set_circuit(w, 0, now);
}

void clw_worker_fault(struct worker *w, struct call *call, const char *reason, int64_t now)
{
    if (w->cfg->api_on_worker_fault == CLW_FAULT_EXIT) {
        CLW_ERROR("worker fault: %s; exiting (api.on_worker_fault = exit)", reason);
        w->exit_code = CLW_EXIT_WORKER_FAULT;
        w->stopping = 1;
        while (call->n_members > 0)
            clw_job_abandon(w, call->members[call->n_members - 1]);
        clw_sched_end_if_empty(w, call);
        return;
    }
    clw_sched_hold(w, call);
    if (!w->fault_active)
        set_fault(w, 1, reason, now);
}

void clw_worker_retry(struct worker *w, struct call *call, int64_t delay, int64_t now)
{
    clw_metrics_retry(w->metrics);
    clw_sched_backoff(w, call, now + delay);
}

/* The instance ids of every member, in member order (malloc'd array of borrowed strings). */
static const char **call_instance_ids(const struct call *call)
{
    const char **ids = clw_malloc((call->n_instances ? call->n_instances : 1) * sizeof(*ids));
    if (ids == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < call->n_members; i++) {
        const struct clw_request *req = &call->members[i]->req;
        for (size_t j = 0; j < req->n_instances; j++)
            ids[k++] = req->instance_ids[j];
    }
    return ids;
}

/* Signs and sends the call's next attempt (fresh Timestamp and Nonce). Returns 0 or -1. */
static int start(struct worker *w, struct call *call, int64_t now)
{
    const struct clw_config *cfg = w->cfg;
    const char **ids = NULL;
    struct clw_api_call ac = {
        .op = clw_call_op(call),
        .region = call->region,
        .vpc_id = call->vpc_id,
        .offset = call->links_offset,
        .task_id = call->task_id,
    };
    if (call->kind == CALL_ACTION) {
        ids = call_instance_ids(call);
        if (ids == NULL)
            return -1;
        ac.instance_ids = ids;
        ac.n_instances = call->n_instances;
    }
    struct clw_api_creds creds;
    struct clw_api_request req;
    uint64_t nonce = (clw_rand_next(&w->rng) >> 2) + 1;
    int64_t wall = clw_clock_wall_ms();
    int rc = clw_creds_get(w->creds, cfg, wall, &creds, &call->creds_gen);
    if (rc == 0)
        rc = clw_api_build(w->api, &ac, &creds, wall / 1000, nonce, &req);
    free(ids);
    if (rc != 0)
        return -1;
    rc = clw_http_submit(w->http, req.url, req.body, (const char *const *)req.headers, call);
    clw_api_request_free(&req);
    if (rc != 0)
        return -1;
    call->attempts++;
    call->started_mono = now;
    if (call->kind == CALL_ACTION) {
        if (call->first_mono < 0) {
            call->first_mono = now;
            call->paused_base = clw_worker_paused_total(w, now);
        }
        for (size_t i = 0; i < call->n_members; i++)
            call->members[i]->attempts++;
        clw_metrics_call_requests(w->metrics, call->n_members);
    }
    return 0;
}

/* Starts calls while the scheduler hands them out. Under a worker fault or an open circuit
 * only one probe call runs per retry.max_backoff_ms. */
void clw_worker_dispatch(struct worker *w, int64_t now)
{
    struct call *call;
    if (!clw_worker_creds_ready(w, clw_clock_wall_ms()))
        return; /* nothing to sign with (yet, or a refresh is due at once) */
    while ((call = clw_sched_next(w, now)) != NULL) {
        if (start(w, call, now) != 0) {
            CLW_WARN("cannot start an API call (out of memory); retrying");
            call->probe = 0;
            clw_sched_unstart(w, call);
            break;
        }
        if (call->probe) {
            w->probe_in_flight = 1;
            w->next_probe_mono = now + w->cfg->retry_max_backoff_ms;
        }
    }
    clw_metrics_set_inflight(w->metrics, (long)w->sched.running);
}

void clw_worker_on_http_done(void *opaque, const struct clw_http_response *resp, void *arg)
{
    struct worker *w = arg;
    if (opaque == &w->creds_in_flight) {
        clw_worker_creds_done(w, resp);
        return;
    }
    struct call *call = opaque;
    int64_t now = clw_clock_mono_ms();
    clw_sched_answered(w, call);
    struct clw_answer ans;
    memset(&ans, 0, sizeof(ans));
    if (clw_api_parse(w->api, resp->transport, resp->status, resp->body, resp->body_len,
                      resp->retry_after_ms, &ans) != 0)
        CLW_WARN("out of memory reading an API answer; treating it as undecodable");
    const char *why = "";
    enum clw_class cls = clw_classify(&ans, &why);
    const char *action = clw_api_action(w->api, clw_call_op(call));
    clw_metrics_api_call(w->metrics, action, clw_class_name(cls), ans.has_code ? ans.code : -1,
                         ans.http_status, (double)(now - call->started_mono) / 1000.0);
    int was_probe = call->probe;
    call->probe = 0;
    if (was_probe)
        w->probe_in_flight = 0;
    CLW_DEBUG("%s for %zu request(s), attempt %d: %s (%s)", action, call->n_members, call->attempts,
              clw_class_name(cls), why);
    if (clw_worker_creds_refused(w, call, &ans)) {
        /* Signed with credentials that were replaced, or are being: sign it again. */
        clw_answer_free(&ans);
        clw_sched_queue(w, call, 1);
        return;
    }
    if (cls != CLW_CLASS_WORKER_FAULT && was_probe && w->fault_active)
        set_fault(w, 0, NULL, now);
    int throttled = clw_classify_throttled(&ans);
    if (throttled || ans.body_json) {
        /* An answer from the API itself: it counts toward what the quota admits. */
        char key[512];
        clw_sched_rate_key(w, call, key, sizeof(key));
        clw_ratelimit_answered(w->sched.rl, key, call->started_mono, now, throttled,
                               throttled ? ans.retry_after_ms : -1);
    }
    if (!throttled)
        call->fresh = 0;
    switch (call->kind) {
    case CALL_ACTION:
        /* Throttling says "slower", not "down": the rate limiter handles it, the circuit breaker
         * never counts it (contract section 8). */
        if (cls == CLW_CLASS_TRANSIENT && !throttled)
            note_transient(w, call, now);
        else if (cls == CLW_CLASS_SUCCESS || cls == CLW_CLASS_PERMANENT)
            note_not_transient(w, now);
        clw_verdict_action(w, call, &ans, cls, why, resp->sent, now);
        break;
    case CALL_LINKS:
        clw_verdict_links(w, call, &ans, cls, now);
        break;
    case CALL_TASK:
        clw_verdict_task(w, call, &ans, cls, now);
        break;
    }
}
