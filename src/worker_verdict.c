/* Verdicts: what an answer means for every member of the call it answered. Success and errors
 * about the shared VPC fan out; other business errors split the call at once; "already" answers
 * are reconciled by listing the VPC's links once for the whole group; transient failures retry
 * the group with backoff; a followed task is read once for all its members. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clw/alloc.h"
#include "clw/backoff.h"
#include "clw/classify.h"
#include "clw/coalesce.h"
#include "worker_internal.h"

/* Freshly signed attempts answered 4200/4500 in a row before we call it clock skew. */
#define RESIGN_LIMIT 3
/* Link listing pages read before giving up (CLW_API_LINKS_PAGE links a page). */
#define LINKS_MAX_PAGES 40
/* Failed listing calls tolerated (throttling answers not counted) before giving up. */
#define LINKS_MAX_FAILURES 3

void clw_shared_answer_put(struct shared_answer *sa)
{
    if (sa != NULL && --sa->refs == 0) {
        clw_answer_free(&sa->a);
        free(sa);
    }
}

/* Every member decided alike; the call ends. */
static void decide_all(struct worker *w, struct call *call, int succeeded, const char *error_class)
{
    while (call->n_members > 0)
        clw_job_decide(w, call->members[call->n_members - 1], succeeded, error_class);
    clw_sched_end_if_empty(w, call);
}

/* A call's log context: its first member's, without a request id when it carries several. */
static void call_log_ctx(const struct call *call, struct clw_log_ctx *ctx)
{
    clw_job_log_ctx(call->members[0], ctx);
    if (call->n_members > 1) {
        ctx->request_id = NULL;
        ctx->offset = -1;
        ctx->trace_id = NULL;
    }
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

static void describe_fault(const struct clw_answer *ans, const char *why, char *out, size_t len)
{
    if (ans->has_code)
        snprintf(out, len, "API answered code %ld%s%s", ans->code, ans->code_desc ? " " : "",
                 ans->code_desc ? ans->code_desc : "");
    else if (ans->code_desc != NULL)
        snprintf(out, len, "API answered %s", ans->code_desc);
    else if (ans->transport == CLW_TRANSPORT_TLS)
        snprintf(out, len, "TLS verification of the API endpoint failed");
    else if (ans->http_status > 0)
        snprintf(out, len, "API endpoint answered HTTP %ld", ans->http_status);
    else
        snprintf(out, len, "%s", why);
}

/* ---- reconciliation: list the VPC's links for every member ------------------------------- */

static void begin_links(struct worker *w, struct call *call, enum call_resume resume,
                        const char *pending_error)
{
    for (size_t i = 0; i < call->n_members; i++) {
        struct job *job = call->members[i];
        free(job->found);
        job->found = clw_calloc(job->req.n_instances ? job->req.n_instances : 1, 1);
        if (job->found == NULL) {
            CLW_ERROR("out of memory reconciling; reporting %s", pending_error);
            decide_all(w, call, 0, pending_error);
            return;
        }
    }
    struct clw_log_ctx ctx;
    call_log_ctx(call, &ctx);
    CLW_LOG(CLW_LOG_INFO, &ctx,
            "reconciling %zu request(s) for %s before reporting %s: reading "
            "the VPC's links",
            call->n_members, call->vpc_id, pending_error);
    call->kind = CALL_LINKS;
    call->resume = resume;
    call->pending_error = pending_error;
    call->links_offset = 0;
    call->links_failures = 0;
    call->attempts = 0;
    clw_sched_queue(w, call, 1);
}

/* Marks, for every member, the listed links of its instances to the call's VPC (by either of
 * the VPC's ids). */
static void mark_links(struct call *call, const struct clw_answer *ans)
{
    for (size_t k = 0; k < ans->n_links; k++) {
        const struct clw_link *l = &ans->links[k];
        int same_vpc = (l->vpc_id != NULL && strcmp(l->vpc_id, call->vpc_id) == 0) ||
                       (l->un_vpc_id != NULL && strcmp(l->un_vpc_id, call->vpc_id) == 0);
        if (!same_vpc || l->instance_id == NULL)
            continue;
        for (size_t m = 0; m < call->n_members; m++) {
            struct job *job = call->members[m];
            for (size_t i = 0; i < job->req.n_instances; i++)
                if (strcmp(l->instance_id, job->req.instance_ids[i]) == 0)
                    job->found[i] = 1;
        }
    }
}

/* Decides the members whose requested state holds (complete: every page read; -1: the links
 * could not be read). */
static void decide_held(struct worker *w, struct call *call, int complete)
{
    size_t i = call->n_members;
    while (i-- > 0) {
        struct job *job = call->members[i];
        if (complete >= 0 &&
            clw_coalesce_state_holds(job->req.action, job->found, job->req.n_instances, complete)) {
            struct clw_log_ctx ctx;
            clw_job_log_ctx(job, &ctx);
            CLW_LOG(CLW_LOG_INFO, &ctx, "reconciled: the requested state of %s holds already",
                    call->vpc_id);
            job->reconciled = 1;
            clw_job_decide(w, job, 1, NULL);
        }
    }
}

/* The listing is over: the members whose state holds succeed; the rest fail with the pending
 * error, or (a group reconciled after an "already" answer) are sent again as a group, which
 * will then split until each has its lone answer. */
static void end_links(struct worker *w, struct call *call, int complete)
{
    decide_held(w, call, complete);
    if (call->n_members == 0) {
        clw_sched_end_if_empty(w, call);
    } else if (call->resume == RESUME_ACTION) {
        call->kind = CALL_ACTION;
        call->reconciled = 1;
        call->attempts = 0;
        clw_sched_queue(w, call, 1);
    } else {
        decide_all(w, call, 0, call->pending_error);
    }
}

void clw_verdict_links(struct worker *w, struct call *call, struct clw_answer *ans,
                       enum clw_class cls, int64_t now)
{
    if (cls != CLW_CLASS_SUCCESS) {
        int throttled = clw_classify_throttled(ans);
        int retry = cls == CLW_CLASS_TRANSIENT || cls == CLW_CLASS_RESIGN;
        if (retry && (throttled || ++call->links_failures < LINKS_MAX_FAILURES)) {
            int64_t delay = w->cfg->retry_initial_backoff_ms;
            if (ans->retry_after_ms > delay)
                delay = ans->retry_after_ms;
            clw_worker_retry(w, call, delay, now);
        } else {
            struct clw_log_ctx ctx;
            call_log_ctx(call, &ctx);
            CLW_LOG(CLW_LOG_WARN, &ctx,
                    "cannot read the links of %s for %zu request(s) (%s); "
                    "deciding without them",
                    call->vpc_id, call->n_members, clw_class_name(cls));
            end_links(w, call, -1);
        }
        clw_answer_free(ans);
        return;
    }
    mark_links(call, ans);
    /* Attach members whose instances are all linked need no more pages. */
    if (call->action == CLW_ACTION_ATTACH)
        decide_held(w, call, 0);
    long listed = call->links_offset + (long)ans->n_links;
    int more = ans->n_links > 0 && ans->total_count > listed &&
               listed / CLW_API_LINKS_PAGE < LINKS_MAX_PAGES;
    int complete = ans->total_count < 0 || listed >= ans->total_count;
    clw_answer_free(ans);
    if (more && call->n_members > 0) {
        call->links_offset = listed;
        clw_sched_queue(w, call, 1);
        return;
    }
    end_links(w, call, complete);
}

/* ---- the action ---------------------------------------------------------------------------- */

/* Transient: the same group again after a backoff, unless its budget is spent. A throttling
 * answer does not grow the backoff: the rate limiter paces the key, and a call that waited
 * 30 s after its fifth throttling answer would leave the quota it shares unused. */
static void retry_group(struct worker *w, struct call *call, int throttled, int64_t retry_after,
                        int64_t now)
{
    const struct clw_config *cfg = w->cfg;
    int64_t delay =
        clw_backoff_delay_ms(throttled ? 1 : call->attempts, cfg->retry_initial_backoff_ms,
                             cfg->retry_max_backoff_ms, clw_rand_next(&w->rng), retry_after);
    int64_t elapsed = now - call->first_mono -
                      (clw_worker_paused_total(w, now) - call->paused_base) - call->exempt_ms;
    if (call->first_mono >= 0 && clw_backoff_exhausted(elapsed, delay, cfg->retry_max_elapsed_ms)) {
        if (call->ambiguous)
            begin_links(w, call, RESUME_FAIL, "retries_exhausted");
        else
            decide_all(w, call, 0, "retries_exhausted");
        return;
    }
    clw_worker_retry(w, call, delay, now);
}

/* Puts a part split off a call first in the queue, exempting from its members' retry budget
 * the same time in split calls as the call it came from. */
static void queue_part(struct worker *w, struct call *part, const struct call *from)
{
    part->exempt_ms = from->exempt_ms;
    clw_sched_queue(w, part, 1);
}

/* Halves a call (the rest of a named split in a lineage dense with errors). Returns the second
 * half, or NULL when the call keeps every member (one member, or out of memory). */
static struct call *halve(struct worker *w, struct call *call)
{
    size_t n = call->n_members;
    if (n < 2)
        return NULL;
    size_t *order = clw_calloc(n, sizeof(*order));
    if (order == NULL)
        return NULL; /* the rest goes on as one call: slower, still right */
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    struct call *half = clw_sched_split(w, call, order, (n + 1) / 2);
    free(order);
    return half;
}

/* Splits the call at once: the members the error message names first, else halves. When
 * errors are dense (clw_coalesce_dense), the rest of a named split is halved too. */
static void split(struct worker *w, struct call *call, const char *msg, int64_t now)
{
    size_t n = call->n_members;
    struct clw_coalesce_member *m = clw_calloc(n, sizeof(*m));
    size_t *order = clw_calloc(n, sizeof(*order));
    struct call *part = NULL;
    int named = 0;
    if (m != NULL && order != NULL) {
        for (size_t i = 0; i < n; i++) {
            const struct job *job = call->members[i];
            m[i] = (struct clw_coalesce_member){
                job->group, (const char *const *)job->req.instance_ids, job->req.n_instances};
        }
        size_t k = clw_coalesce_split(m, n, msg, order, &named);
        part = clw_sched_split(w, call, order, k);
    }
    free(m);
    free(order);
    if (part == NULL) {
        CLW_ERROR("out of memory splitting a call; retrying it");
        clw_worker_retry(w, call, w->cfg->retry_initial_backoff_ms, now);
        return;
    }
    struct call *half = NULL;
    if (named) {
        part->lineage = call->lineage > 0 ? call->lineage : n;
        part->strikes = call->strikes + 1;
        if (clw_coalesce_dense(part->strikes, part->lineage))
            half = halve(w, part);
    }
    if (half != NULL)
        CLW_DEBUG("splitting a call of %zu request(s) for %s into %zu + %zu + %zu (dense errors)",
                  n, call->vpc_id, call->n_members, part->n_members, half->n_members);
    else
        CLW_DEBUG("splitting a call of %zu request(s) for %s into %zu + %zu", n, call->vpc_id,
                  call->n_members, part->n_members);
    /* The split calls do not spend the members' retry budget. */
    call->exempt_ms += now - call->started_mono;
    call->attempts = 0;
    call->resign_streak = 0;
    if (half != NULL)
        queue_part(w, half, call);
    queue_part(w, part, call);
    clw_sched_queue(w, call, 1);
}

static void begin_task(struct worker *w, struct call *call, long long task_id, int64_t now)
{
    call->kind = CALL_TASK;
    call->task_id = task_id;
    call->task_polls = 0;
    call->task_deadline = now + w->cfg->task_max_wait_ms;
    call->attempts = 0;
    clw_sched_backoff(w, call, now + w->cfg->retry_initial_backoff_ms);
}

void clw_verdict_action(struct worker *w, struct call *call, struct clw_answer *ans,
                        enum clw_class cls, const char *why, int sent, int64_t now)
{
    const char **ids = clw_malloc((call->n_instances ? call->n_instances : 1) * sizeof(*ids));
    struct shared_answer *sa = clw_calloc(1, sizeof(*sa));
    if (sa == NULL || ids == NULL) {
        free(ids);
        free(sa);
        clw_answer_free(ans);
        CLW_ERROR("out of memory taking an API answer; retrying the call");
        clw_worker_retry(w, call, w->cfg->retry_initial_backoff_ms, now);
        return;
    }
    sa->a = *ans; /* takes ownership */
    sa->members = call->n_members;
    sa->refs = 1;
    size_t k = 0;
    for (size_t i = 0; i < call->n_members; i++) {
        struct job *job = call->members[i];
        clw_shared_answer_put(job->last);
        job->last = sa;
        sa->refs++;
        for (size_t j = 0; j < job->req.n_instances; j++)
            ids[k++] = job->req.instance_ids[j];
    }
    enum clw_verdict v = clw_coalesce_verdict(cls, &sa->a, call->action, call->vpc_id, ids, k,
                                              call->n_members, call->reconciled);
    free(ids);
    if (v != CLW_VERDICT_RESIGN)
        call->resign_streak = 0;
    switch (v) {
    case CLW_VERDICT_SUCCESS:
        if (w->cfg->task_follow && sa->a.has_task_id)
            begin_task(w, call, sa->a.task_id, now);
        else
            decide_all(w, call, 1, NULL);
        break;
    case CLW_VERDICT_FAIL:
        decide_all(w, call, 0, "api_error");
        break;
    case CLW_VERDICT_RECONCILE:
        /* "Already" may be an earlier attempt's doing. A lone request reports it unless its
         * state holds; a group is sent again without the members whose state holds. */
        begin_links(w, call, call->n_members > 1 ? RESUME_ACTION : RESUME_FAIL, "api_error");
        break;
    case CLW_VERDICT_SPLIT:
        split(w, call, sa->a.message, now);
        break;
    case CLW_VERDICT_RETRY:
        if (effect_unknown(&sa->a, sent))
            call->ambiguous = 1;
        {
            struct clw_log_ctx ctx;
            call_log_ctx(call, &ctx);
            CLW_LOG(CLW_LOG_INFO, &ctx,
                    "attempt %d for %zu request(s) failed transiently (%s); "
                    "will retry",
                    call->attempts, call->n_members, why);
        }
        retry_group(w, call, clw_classify_throttled(&sa->a), sa->a.retry_after_ms, now);
        break;
    case CLW_VERDICT_RESIGN:
        if (++call->resign_streak >= RESIGN_LIMIT) {
            char reason[200];
            snprintf(reason, sizeof(reason),
                     "code %ld on %d consecutive freshly signed attempts (clock skew?)", sa->a.code,
                     RESIGN_LIMIT);
            clw_worker_fault(w, call, reason, now);
        } else {
            clw_sched_queue(w, call, 1);
        }
        break;
    case CLW_VERDICT_FAULT: {
        char reason[256];
        describe_fault(&sa->a, why, reason, sizeof(reason));
        clw_worker_fault(w, call, reason, now);
        break;
    }
    }
    clw_shared_answer_put(sa);
}

/* ---- task follow-up ------------------------------------------------------------------------ */

void clw_verdict_task(struct worker *w, struct call *call, struct clw_answer *ans,
                      enum clw_class cls, int64_t now)
{
    const char *status = NULL;
    int succeeded = 1;
    if (cls == CLW_CLASS_SUCCESS && ans->task_status == 0) {
        status = "succeeded";
    } else if (cls == CLW_CLASS_SUCCESS && ans->task_status == 1) {
        status = "failed";
        succeeded = 0;
    } else if (cls == CLW_CLASS_PERMANENT || cls == CLW_CLASS_WORKER_FAULT) {
        status = "unknown"; /* the task cannot be read; the operation itself was accepted */
    } else {
        /* Running, or a transient failure to read it: poll again with backoff. */
        call->task_polls++;
        int64_t delay = clw_backoff_delay_ms(call->task_polls + 1, w->cfg->retry_initial_backoff_ms,
                                             w->cfg->retry_max_backoff_ms, clw_rand_next(&w->rng),
                                             ans->retry_after_ms);
        if (delay < w->cfg->retry_initial_backoff_ms)
            delay = w->cfg->retry_initial_backoff_ms;
        clw_answer_free(ans);
        if (now + delay <= call->task_deadline) {
            clw_sched_backoff(w, call, now + delay);
            return;
        }
        status = "timeout";
    }
    clw_answer_free(ans);
    for (size_t i = 0; i < call->n_members; i++)
        call->members[i]->task_status = status;
    decide_all(w, call, succeeded, succeeded ? NULL : "task_failed");
}
