/* Worker follow-ups: reconciling an ambiguous or "already" answer with DescribeVpcClassicLink,
 * and following the returned task with DescribeVpcTaskResult. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clw/backoff.h"
#include "clw/classify.h"
#include "clw/clock.h"
#include "worker_internal.h"

/* DescribeVpcClassicLink pages read before giving up (50 links a page). */
#define RECONCILE_MAX_PAGES 40
#define DESCRIBE_PAGE_SIZE  "50"
/* Failed describe calls tolerated before the original outcome stands. */
#define RECONCILE_MAX_FAILURES 3

const char *clw_worker_phase_action(const struct job *job)
{
    switch (job->phase) {
    case PHASE_RECONCILE:
        return "DescribeVpcClassicLink";
    case PHASE_TASK:
        return "DescribeVpcTaskResult";
    case PHASE_ACTION:
        break;
    }
    return clw_action_name(job->req.action);
}

/* Appends the phase's own parameters (after the common ones). scratch holds the formatted
 * names and numbers the params point into. Returns how many were added. */
size_t clw_worker_phase_params(const struct job *job, struct clw_param *params, char *scratch,
                               size_t scratch_len)
{
    const struct clw_request *req = &job->req;
    size_t n = 0;
    size_t used = 0;
    switch (job->phase) {
    case PHASE_ACTION:
        params[n++] = (struct clw_param){"vpcId", req->vpc_id};
        for (size_t i = 0; i < req->n_instances && used + 32 <= scratch_len; i++) {
            char *name = scratch + used;
            used += (size_t)snprintf(name, 32, "instanceIds.%zu", i) + 1;
            params[n++] = (struct clw_param){name, req->instance_ids[i]};
        }
        break;
    case PHASE_RECONCILE: {
        char *offset = scratch;
        snprintf(offset, 24, "%ld", job->describe_offset);
        params[n++] = (struct clw_param){"vpcId", req->vpc_id};
        params[n++] = (struct clw_param){"offset", offset};
        params[n++] = (struct clw_param){"limit", DESCRIBE_PAGE_SIZE};
        break;
    }
    case PHASE_TASK: {
        char *task = scratch;
        snprintf(task, 24, "%lld", job->last.task_id);
        params[n++] = (struct clw_param){"taskId", task};
        break;
    }
    }
    return n;
}

static void retry_later(struct worker *w, struct job *job, int64_t delay, int64_t now)
{
    job->state = JOB_BACKOFF;
    if (clw_timers_arm(&w->timers, &job->timer, now + delay) != 0)
        clw_worker_enqueue_ready(w, job, 0);
}

void clw_worker_begin_reconcile(struct worker *w, struct job *job, const char *pending_error)
{
    struct clw_log_ctx ctx;
    clw_worker_log_ctx(job, &ctx);
    free(job->found);
    job->found = calloc(job->req.n_instances ? job->req.n_instances : 1, 1);
    if (job->found == NULL) {
        clw_worker_finalize(w, job, 0, pending_error);
        return;
    }
    CLW_LOG(CLW_LOG_INFO, &ctx, "reconciling before reporting %s: reading the VPC's links",
            pending_error);
    job->phase = PHASE_RECONCILE;
    job->pending_error = pending_error;
    job->describe_offset = 0;
    job->followups = 0;
    clw_worker_enqueue_ready(w, job, 1);
}

void clw_worker_begin_task(struct worker *w, struct job *job, int64_t now)
{
    job->phase = PHASE_TASK;
    job->followups = 0;
    job->task_deadline = now + w->cfg->task_max_wait_ms;
    retry_later(w, job, w->cfg->retry_initial_backoff_ms, now);
}

/* 1 when a listed link is one of the request's instances with the requested VPC (by either of
 * its ids); marks it found. */
static void mark_links(struct job *job)
{
    const struct clw_request *req = &job->req;
    for (size_t k = 0; k < job->aux.n_links; k++) {
        const struct clw_link *l = &job->aux.links[k];
        int same_vpc = (l->vpc_id != NULL && strcmp(l->vpc_id, req->vpc_id) == 0) ||
                       (l->un_vpc_id != NULL && strcmp(l->un_vpc_id, req->vpc_id) == 0);
        if (!same_vpc || l->instance_id == NULL)
            continue;
        for (size_t i = 0; i < req->n_instances; i++)
            if (strcmp(l->instance_id, req->instance_ids[i]) == 0)
                job->found[i] = 1;
    }
}

static size_t count_found(const struct job *job)
{
    size_t n = 0;
    for (size_t i = 0; i < job->req.n_instances; i++)
        n += job->found[i];
    return n;
}

static void reconcile_answer(struct worker *w, struct job *job, enum clw_class cls, int64_t now)
{
    struct clw_log_ctx ctx;
    clw_worker_log_ctx(job, &ctx);
    int attach = job->req.action == CLW_ACTION_ATTACH;
    if (cls != CLW_CLASS_SUCCESS) {
        if (++job->followups < RECONCILE_MAX_FAILURES &&
            (cls == CLW_CLASS_TRANSIENT || cls == CLW_CLASS_RESIGN)) {
            retry_later(w, job, w->cfg->retry_initial_backoff_ms, now);
            return;
        }
        CLW_LOG(CLW_LOG_WARN, &ctx, "cannot read the VPC's links (%s); reporting %s",
                clw_class_name(cls), job->pending_error);
        clw_worker_finalize(w, job, 0, job->pending_error);
        return;
    }
    mark_links(job);
    size_t found = count_found(job);
    if (attach && found == job->req.n_instances) {
        CLW_LOG(CLW_LOG_INFO, &ctx, "reconciled: every instance is linked to %s already",
                job->req.vpc_id);
        job->reconciled = 1;
        clw_worker_finalize(w, job, 1, NULL);
        return;
    }
    long listed = job->describe_offset + (long)job->aux.n_links;
    int more =
        job->aux.n_links > 0 && job->aux.total_count > listed && listed / 50 < RECONCILE_MAX_PAGES;
    if (more) {
        job->describe_offset = listed;
        clw_worker_enqueue_ready(w, job, 1);
        return;
    }
    int complete = job->aux.total_count < 0 || listed >= job->aux.total_count;
    if (!attach && found == 0 && complete) {
        CLW_LOG(CLW_LOG_INFO, &ctx, "reconciled: no instance is linked to %s", job->req.vpc_id);
        job->reconciled = 1;
        clw_worker_finalize(w, job, 1, NULL);
        return;
    }
    clw_worker_finalize(w, job, 0, job->pending_error);
}

static void task_answer(struct worker *w, struct job *job, enum clw_class cls, int64_t now)
{
    const char *status = NULL;
    int succeeded = 1;
    if (cls == CLW_CLASS_SUCCESS && job->aux.task_status == 0) {
        status = "succeeded";
    } else if (cls == CLW_CLASS_SUCCESS && job->aux.task_status == 1) {
        status = "failed";
        succeeded = 0;
    } else if (cls == CLW_CLASS_PERMANENT || cls == CLW_CLASS_WORKER_FAULT) {
        status = "unknown"; /* the task cannot be read; the operation itself was accepted */
    } else {
        /* Running, or a transient failure to read it: poll again with backoff. */
        job->followups++;
        int64_t delay = clw_backoff_delay_ms(job->followups + 1, w->cfg->retry_initial_backoff_ms,
                                             w->cfg->retry_max_backoff_ms, clw_rand_next(&w->rng),
                                             job->aux.retry_after_ms);
        if (delay < w->cfg->retry_initial_backoff_ms)
            delay = w->cfg->retry_initial_backoff_ms;
        if (now + delay <= job->task_deadline) {
            retry_later(w, job, delay, now);
            return;
        }
        status = "timeout";
    }
    job->task_status = status;
    clw_worker_finalize(w, job, succeeded, succeeded ? NULL : "task_failed");
}

void clw_worker_followup_answer(struct worker *w, struct job *job, int cls, int64_t now)
{
    if (job->phase == PHASE_RECONCILE)
        reconcile_answer(w, job, (enum clw_class)cls, now);
    else
        task_answer(w, job, (enum clw_class)cls, now);
}
