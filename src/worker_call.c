/* Calls: starting an attempt (signed through the API client, sent by the HTTP adapter) and
 * taking its answer to the verdict. What the answer says about the service goes to the guard
 * (circuit breaker, probes, worker faults) and to the rate limiter (throttling). */
#include "worker_call.h"

#include <stdio.h>
#include <string.h>

#include "clw/backoff.h"
#include "clw/classify.h"
#include "clw/clock.h"
#include "clw/log.h"

void clw_calls_init(struct calls *c, uint64_t seed, const struct clw_config *cfg,
                    struct clw_api *api, struct clw_http *http, struct clw_metrics *metrics,
                    struct sched *sched, struct guard *guard, struct credstage *creds,
                    struct verdict *verdict)
{
    *c = (struct calls){
        .rng = seed,
        .cfg = cfg,
        .api = api,
        .http = http,
        .metrics = metrics,
        .sched = sched,
        .guard = guard,
        .creds = creds,
        .verdict = verdict,
    };
}

/* Signs and sends the call's next attempt (fresh Timestamp and Nonce). Returns 0 or -1. */
static int start(struct calls *c, struct call *call, int64_t now)
{
    struct clw_api_call ac = {
        .op = clw_callobj_op(call),
        .region = call->region,
        .vpc_id = call->vpc_id,
        .offset = call->plan.links_offset,
        .task_id = call->plan.task_id,
    };
    if (call->kind == CALL_ACTION) {
        if (clw_callobj_snapshot(call) != 0)
            return -1;
        ac.instance_ids = call->sent_ids;
        ac.n_instances = call->n_sent_ids;
    }
    struct clw_api_creds creds;
    struct clw_api_request req;
    uint64_t nonce = (clw_rand_next(&c->rng) >> 2) + 1;
    int64_t wall = clw_clock_wall_ms();
    int rc = clw_creds_get(c->creds->creds, c->cfg, wall, &creds, &call->att.creds_gen);
    if (rc == 0)
        rc = clw_api_build(c->api, &ac, &creds, wall / 1000, nonce, &req);
    if (rc != 0)
        return -1;
    rc = clw_http_submit(c->http, req.url, req.body, (const char *const *)req.headers, call);
    clw_api_request_free(&req);
    if (rc != 0)
        return -1;
    clw_callobj_attempted(call);
    call->att.started_mono = now;
    if (call->kind == CALL_ACTION) {
        int64_t paused = clw_guard_paused_total(c->guard, now);
        for (size_t i = 0; i < call->n_members; i++) {
            struct job *job = call->members[i];
            job->att.attempts++;
            if (!job->att.started) {
                /* The request's retry budget starts with its own first attempt. */
                job->att.started = 1;
                job->att.first_mono = now;
                job->att.paused_base = paused;
            }
        }
        clw_metrics_call_requests(c->metrics, call->n_members);
    }
    return 0;
}

void clw_calls_dispatch(struct calls *c, int64_t now)
{
    if (!clw_creds_stage_ready(c->creds, clw_clock_wall_ms()))
        return; /* nothing to sign with (yet, or a refresh is due at once) */
    for (;;) {
        enum guard_start mode = clw_guard_start_mode(c->guard, now);
        struct call *call = clw_sched_next(c->sched, mode, now);
        if (call == NULL)
            break;
        call->att.probe = mode == GUARD_START_PROBE || mode == GUARD_START_HELD;
        if (start(c, call, now) != 0) {
            CLW_WARN("cannot start an API call (out of memory); retrying");
            call->att.probe = 0;
            clw_sched_unstart(c->sched, call);
            break;
        }
        if (call->att.probe)
            clw_guard_probe_started(c->guard, now);
    }
    clw_metrics_set_inflight(c->metrics, (long)c->sched->running);
}

void clw_calls_answered(struct calls *c, struct call *call, const struct clw_http_response *resp)
{
    int64_t now = clw_clock_mono_ms();
    struct clw_answer ans;
    memset(&ans, 0, sizeof(ans));
    if (clw_api_parse(c->api, resp->transport, resp->status, resp->body, resp->body_len,
                      resp->retry_after_ms, &ans) != 0)
        CLW_WARN("out of memory reading an API answer; treating it as undecodable");
    const char *why = "";
    enum clw_class cls = clw_classify(&ans, &why);
    int throttled = clw_classify_throttled(&ans);
    clw_sched_answered(c->sched, call, throttled);
    const char *action = clw_api_action(c->api, clw_callobj_op(call));
    clw_metrics_api_call(c->metrics, action, clw_class_name(cls), ans.has_code ? ans.code : -1,
                         ans.http_status, (double)(now - call->att.started_mono) / 1000.0);
    int was_probe = call->att.probe;
    call->att.probe = 0;
    CLW_DEBUG("%s for %zu request(s), attempt %d: %s (%s)", action, call->n_members, call->attempts,
              clw_class_name(cls), why);
    if (clw_creds_stage_refused(c->creds, call->att.creds_gen, &ans)) {
        /* Signed with credentials that were replaced, or are being: sign it again. */
        if (was_probe)
            clw_guard_probe_lost(c->guard, now);
        clw_answer_free(&ans);
        clw_sched_queue(c->sched, call, 1);
        return;
    }
    if (throttled || ans.body_json) { /* an answer from the API itself: it counts for the quota */
        clw_sched_rate_answer(c->sched, call, now, throttled, throttled ? ans.retry_after_ms : -1);
        clw_metrics_ratelimit_answer(c->metrics, action, call->region, throttled);
    }
    /* The circuit breaker counts what says the service is down: not throttling ("slower",
     * contract section 8) and not a resource lock (about one resource, not the service). */
    struct guard_answer ga = {
        .action = call->kind == CALL_ACTION,
        .probe = was_probe,
        .fault = cls == CLW_CLASS_WORKER_FAULT,
        .outage = cls == CLW_CLASS_TRANSIENT && !throttled && !clw_classify_resource_busy(&ans),
        .instance_ids = call->sent_ids,
        .n_instances = call->n_sent_ids,
    };
    clw_guard_answered(c->guard, &ga, now);
    switch (call->kind) {
    case CALL_ACTION:
        clw_verdict_action(c->verdict, call, &ans, cls, why, resp->sent, now);
        break;
    case CALL_LINKS:
        clw_verdict_links(c->verdict, call, &ans, cls, now);
        break;
    case CALL_TASK:
        clw_verdict_task(c->verdict, call, &ans, cls, now);
        break;
    }
}
