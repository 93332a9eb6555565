/* Verdicts: what an answer means for every member of the call it answered, read against what
 * the attempt carried. Success and errors about the whole call fan out; errors about some
 * members split the call at once until each has its lone answer; "already" answers are
 * reconciled by listing the VPC's links once for the whole group; transient failures of the
 * service retry the group with backoff, each member on its own budget; a followed task is read
 * once for all its members, and a failed one is run again in smaller calls. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker_verdict.h"

#include "clw/alloc.h"
#include "clw/backoff.h"
#include "clw/classify.h"
#include "clw/coalesce.h"
#include "clw/log.h"

/* Freshly signed attempts answered 4200/4500 in a row before we call it clock skew. */
#define RESIGN_LIMIT 3
/* Link listing pages read before giving up (CLW_API_LINKS_PAGE links a page). */
#define LINKS_MAX_PAGES 40
/* Failed listing calls tolerated (throttling answers not counted) before giving up. */
#define LINKS_MAX_FAILURES 3

void clw_verdict_init(struct verdict *v, uint64_t seed, const struct clw_config *cfg,
                      struct job_queue *events, struct sched *sched, struct guard *guard,
                      struct clw_metrics *metrics)
{
    *v = (struct verdict){
        .rng = seed,
        .cfg = cfg,
        .events = events,
        .sched = sched,
        .guard = guard,
        .metrics = metrics,
    };
}

/* A member's outcome is final: it leaves the call, and the flow takes it on. */
static void decide(struct verdict *v, struct job *job, int succeeded, const char *error_class)
{
    clw_callobj_remove(job);
    clw_job_decide(v->events, job, succeeded, error_class);
}

/* Every member decided alike; the call ends. */
static void decide_all(struct verdict *v, struct call *call, int succeeded, const char *error_class)
{
    while (call->n_members > 0)
        decide(v, call->members[call->n_members - 1], succeeded, error_class);
    clw_sched_end_if_empty(v->sched, call);
}

/* Transient: the call again after delay ms. */
static void retry(struct verdict *v, struct call *call, int64_t delay, int64_t now)
{
    clw_metrics_retry(v->metrics);
    clw_sched_backoff(v->sched, call, now + delay);
}

/* A worker fault: the call is held (a probe tries it again); with api.on_worker_fault = exit
 * the worker stops and abandons the held calls' requests. */
static void fault(struct verdict *v, struct call *call, const char *reason, int64_t now)
{
    clw_sched_hold(v->sched, call);
    clw_guard_fault(v->guard, reason, now);
}

/* Splits the members order[k..n) off call into a new call of the same lineage. */
static struct call *split_off(struct call *call, const size_t *order, size_t k)
{
    struct call *part = clw_callobj_split(call, order, k);
    if (part != NULL) {
        part->plan.ambiguous = call->plan.ambiguous;
        part->plan.strikes = call->plan.strikes;
        part->plan.lineage = call->plan.lineage;
    }
    return part;
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

static void begin_links(struct verdict *v, struct call *call, enum call_resume resume,
                        const char *pending_error, struct shared_answer *cause)
{
    for (size_t i = 0; i < call->n_members; i++) {
        struct job *job = call->members[i];
        free(job->verdict.found);
        job->verdict.found = clw_calloc(job->rec.req.n_instances ? job->rec.req.n_instances : 1, 1);
        if (job->verdict.found == NULL) {
            CLW_ERROR("out of memory reconciling; reporting %s", pending_error);
            decide_all(v, call, 0, pending_error);
            return;
        }
    }
    struct clw_log_ctx ctx;
    call_log_ctx(call, &ctx);
    CLW_LOG(CLW_LOG_INFO, &ctx,
            "reconciling %zu request(s) for %s before reporting %s: reading "
            "the VPC's links",
            call->n_members, call->vpc_id, pending_error);
    clw_callobj_set_kind(call, CALL_LINKS);
    call->plan.resume = resume;
    call->plan.pending_error = pending_error;
    call->plan.links_offset = 0;
    call->plan.links_failures = 0;
    clw_callobj_set_cause(call, cause);
    clw_sched_queue(v->sched, call, 1);
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
            for (size_t i = 0; i < job->rec.req.n_instances; i++)
                if (strcmp(l->instance_id, job->rec.req.instance_ids[i]) == 0)
                    job->verdict.found[i] = 1;
        }
    }
}

static int holds(const struct job *job, int complete)
{
    return complete >= 0 && clw_coalesce_state_holds(job->rec.req.action, job->verdict.found,
                                                     job->rec.req.n_instances, complete);
}

static void decide_reconciled(struct verdict *v, struct call *call, struct job *job)
{
    struct clw_log_ctx ctx;
    clw_job_log_ctx(job, &ctx);
    CLW_LOG(CLW_LOG_INFO, &ctx, "reconciled: the requested state of %s holds already",
            call->vpc_id);
    job->verdict.reconciled = 1;
    decide(v, job, 1, NULL);
}

/* Decides the members whose requested state holds (complete: every page read; -1: the links
 * could not be read). */
static void decide_held(struct verdict *v, struct call *call, int complete)
{
    size_t i = call->n_members;
    while (i-- > 0)
        if (holds(call->members[i], complete))
            decide_reconciled(v, call, call->members[i]);
}

static int named_by(const struct shared_answer *cause, const struct job *job)
{
    struct clw_coalesce_member m = {(const char *const *)job->rec.req.instance_ids,
                                    job->rec.req.n_instances};
    return cause != NULL && clw_coalesce_names(cause->a.message, &m);
}

/* A shared "already" answer, reconciled. A member it names gets its lone call's outcome: its
 * state holds, reconciled; else the answer, failed. Another member whose state holds is decided
 * by it only where its own lone call would also have heard "already":
 *   - the call was ambiguous: an attempt of this very call may have made the states hold, and
 *     each member's lone call would have shared that attempt;
 *   - an Attach whose answer names a member linked to this VPC: the API answers an attach of a
 *     linked instance "already", for every such instance.
 * (A Detach's "not found" about a member not linked here says nothing about the others: that
 * member may not exist at all, while an existing unlinked instance's detach may succeed.) The
 * rest are sent again and get their own answer. */
static void end_named(struct verdict *v, struct call *call, int complete)
{
    int holders = call->plan.ambiguous;
    for (size_t i = 0; i < call->n_members && !holders; i++)
        holders = call->action == CLW_ACTION_ATTACH && named_by(call->cause, call->members[i]) &&
                  holds(call->members[i], complete);
    size_t i = call->n_members;
    while (i-- > 0) {
        struct job *job = call->members[i];
        int named = named_by(call->cause, job);
        if ((named || holders) && holds(job, complete))
            decide_reconciled(v, call, job);
        else if (named)
            decide(v, job, 0, call->plan.pending_error); /* its lone call's outcome */
    }
    if (call->n_members == 0) {
        clw_sched_end_if_empty(v->sched, call);
        return;
    }
    clw_callobj_set_kind(call, CALL_ACTION);
    clw_sched_queue(v->sched, call, 1);
}

/* The listing is over: the members whose state holds succeed; the rest fail with the pending
 * error, or (a shared "already" answer) are decided by what it named. */
static void end_links(struct verdict *v, struct call *call, int complete)
{
    if (call->plan.resume == RESUME_NAMED) {
        end_named(v, call, complete);
        return;
    }
    decide_held(v, call, complete);
    if (call->n_members == 0)
        clw_sched_end_if_empty(v->sched, call);
    else
        decide_all(v, call, 0, call->plan.pending_error);
}

void clw_verdict_links(struct verdict *v, struct call *call, struct clw_answer *ans,
                       enum clw_class cls, int64_t now)
{
    if (cls != CLW_CLASS_SUCCESS) {
        int throttled = clw_classify_throttled(ans);
        int again = cls == CLW_CLASS_TRANSIENT || cls == CLW_CLASS_RESIGN;
        if (again && (throttled || ++call->plan.links_failures < LINKS_MAX_FAILURES)) {
            int64_t delay = v->cfg->retry_initial_backoff_ms;
            if (ans->retry_after_ms > delay)
                delay = ans->retry_after_ms;
            retry(v, call, delay, now);
        } else {
            struct clw_log_ctx ctx;
            call_log_ctx(call, &ctx);
            CLW_LOG(CLW_LOG_WARN, &ctx,
                    "cannot read the links of %s for %zu request(s) (%s); "
                    "deciding without them",
                    call->vpc_id, call->n_members, clw_class_name(cls));
            end_links(v, call, -1);
        }
        clw_answer_free(ans);
        return;
    }
    mark_links(call, ans);
    /* Attach members whose instances are all linked need no more pages (a lone or exhausted
     * call: a shared answer decides them only once its named members are known). */
    if (call->action == CLW_ACTION_ATTACH && call->plan.resume == RESUME_FAIL)
        decide_held(v, call, 0);
    long listed = call->plan.links_offset + (long)ans->n_links;
    int more = ans->n_links > 0 && ans->total_count > listed &&
               listed / CLW_API_LINKS_PAGE < LINKS_MAX_PAGES;
    int complete = ans->total_count < 0 || listed >= ans->total_count;
    clw_answer_free(ans);
    if (more && call->n_members > 0) {
        call->plan.links_offset = listed;
        clw_sched_queue(v->sched, call, 1);
        return;
    }
    end_links(v, call, complete);
}

/* ---- the action ---------------------------------------------------------------------------- */

/* The time a member spent in a call that ended in a split or a re-run is not spent from its
 * retry budget: its lone call would not have made it. */
static void exempt_since(struct call *call, int64_t since, int64_t now)
{
    for (size_t i = 0; i < call->n_members; i++)
        call->members[i]->verdict.exempt_ms += now - since;
}

static int exhausted(const struct verdict *v, const struct job *job, int64_t delay, int64_t now)
{
    if (!job->att.started)
        return 0;
    int64_t elapsed = now - job->att.first_mono -
                      (clw_guard_paused_total(v->guard, now) - job->att.paused_base) -
                      job->verdict.exempt_ms;
    return clw_backoff_exhausted(elapsed, delay, v->cfg->retry_max_elapsed_ms);
}

/* Members out of retries end (reconciled first when an attempt may have taken effect). */
static void end_exhausted(struct verdict *v, struct call *call)
{
    if (call->plan.ambiguous)
        begin_links(v, call, RESUME_FAIL, "retries_exhausted", NULL);
    else
        decide_all(v, call, 0, "retries_exhausted");
}

/* Transient: the same group again after a backoff; a member whose own budget is spent leaves
 * it and ends as its lone call would have. A throttling answer does not grow the backoff: the
 * rate limiter paces the key, and a call that waited 30 s after its fifth throttling answer
 * would leave the quota it shares unused. */
static void retry_group(struct verdict *v, struct call *call, int throttled, int64_t retry_after,
                        int64_t now)
{
    const struct clw_config *cfg = v->cfg;
    int64_t delay =
        clw_backoff_delay_ms(throttled ? 1 : call->attempts, cfg->retry_initial_backoff_ms,
                             cfg->retry_max_backoff_ms, clw_rand_next(&v->rng), retry_after);
    size_t n = call->n_members;
    size_t *order = clw_calloc(n ? n : 1, sizeof(*order));
    if (order == NULL) {
        retry(v, call, delay, now); /* every member retries: slower, still right */
        return;
    }
    size_t k = 0; /* members going on first, exhausted ones after */
    for (size_t i = 0; i < n; i++)
        if (!exhausted(v, call->members[i], delay, now))
            order[k++] = i;
    size_t going = k;
    for (size_t i = 0; i < n; i++)
        if (exhausted(v, call->members[i], delay, now))
            order[k++] = i;
    struct call *done = NULL;
    if (going > 0 && going < n)
        done = split_off(call, order, going);
    free(order);
    if (going == 0) {
        end_exhausted(v, call);
        return;
    }
    if (done != NULL)
        end_exhausted(v, done);
    retry(v, call, delay, now);
}

/* Halves a call. Returns the second half, or NULL when the call keeps every member (one
 * member, or out of memory). */
static struct call *halve(struct call *call)
{
    size_t n = call->n_members;
    if (n < 2)
        return NULL;
    size_t *order = clw_calloc(n, sizeof(*order));
    if (order == NULL)
        return NULL; /* the rest goes on as one call: slower, still right */
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    struct call *half = split_off(call, order, (n + 1) / 2);
    free(order);
    return half;
}

/* 1 when msg names an instance the attempt carried that no current member has: a member that
 * left while the attempt was in flight. */
static int names_departed(const struct call *call, const char *msg)
{
    for (size_t i = 0; i < call->n_sent_ids; i++) {
        const char *id = call->sent_ids[i];
        struct clw_coalesce_member one = {&id, 1};
        if (!clw_coalesce_names(msg, &one))
            continue;
        int current = 0;
        for (size_t m = 0; m < call->n_members && !current; m++)
            for (size_t j = 0; j < call->members[m]->rec.req.n_instances && !current; j++)
                current = strcmp(call->members[m]->rec.req.instance_ids[j], id) == 0;
        if (!current)
            return 1;
    }
    return 0;
}

/* Splits the call at once: the members the error message names first, else halves. When
 * errors are dense (clw_coalesce_dense), the rest of a named split is halved too. A call left
 * with one member, or whose error named only members that left it, is sent again as it is:
 * the answer was not about them. */
static void split(struct verdict *v, struct call *call, const char *msg, int64_t now)
{
    size_t n = call->n_members;
    exempt_since(call, call->att.started_mono, now);
    clw_callobj_restart(call);
    call->plan.resign_streak = 0;
    struct clw_coalesce_member *m = clw_calloc(n ? n : 1, sizeof(*m));
    size_t *order = clw_calloc(n ? n : 1, sizeof(*order));
    struct call *part = NULL;
    int named = 0;
    if (m != NULL && order != NULL && n >= 2) {
        for (size_t i = 0; i < n; i++)
            m[i] = (struct clw_coalesce_member){
                (const char *const *)call->members[i]->rec.req.instance_ids,
                call->members[i]->rec.req.n_instances};
        size_t k = clw_coalesce_split(m, n, msg, order, &named);
        if (named || !names_departed(call, msg))
            part = split_off(call, order, k);
    }
    int oom = n >= 2 && (m == NULL || order == NULL);
    free(m);
    free(order);
    if (oom)
        CLW_ERROR("out of memory splitting a call; sending it again as it is");
    if (part == NULL) {
        clw_sched_queue(v->sched, call, 1);
        return;
    }
    struct call *half = NULL;
    if (named) {
        part->plan.lineage = call->plan.lineage > 0 ? call->plan.lineage : n;
        part->plan.strikes = call->plan.strikes + 1;
        if (clw_coalesce_dense(part->plan.strikes, part->plan.lineage))
            half = halve(part);
    }
    if (half != NULL)
        CLW_DEBUG("splitting a call of %zu request(s) for %s into %zu + %zu + %zu (dense errors)",
                  n, call->vpc_id, call->n_members, part->n_members, half->n_members);
    else
        CLW_DEBUG("splitting a call of %zu request(s) for %s into %zu + %zu", n, call->vpc_id,
                  call->n_members, part->n_members);
    if (half != NULL)
        clw_sched_queue(v->sched, half, 1);
    clw_sched_queue(v->sched, part, 1);
    clw_sched_queue(v->sched, call, 1);
}

/* A parameter error that names nobody may concern the call (every member's lone call gets it)
 * or its make-up (its length, say): the first member is sent alone, the rest wait for its
 * answer (confirmed). */
static void confirm(struct verdict *v, struct call *call, struct shared_answer *sa, int64_t now)
{
    size_t n = call->n_members;
    size_t *order = n >= 2 ? clw_calloc(n, sizeof(*order)) : NULL;
    if (order == NULL) {
        split(v, call, NULL, now); /* alone already (sent again), or out of memory: halves */
        return;
    }
    for (size_t i = 1; i < n; i++)
        order[i - 1] = i;
    order[n - 1] = 0;
    struct call *lone = split_off(call, order, n - 1);
    free(order);
    if (lone == NULL) {
        split(v, call, NULL, now);
        return;
    }
    exempt_since(call, call->att.started_mono, now);
    exempt_since(lone, call->att.started_mono, now);
    clw_callobj_restart(call);
    CLW_DEBUG("%s answered a call of %zu request(s) for %s naming none: asking for one alone",
              sa->a.code_desc ? sa->a.code_desc : "an error", n, call->vpc_id);
    clw_callobj_set_cause(call, sa);
    clw_sched_wait_confirm(v->sched, call, lone);
    clw_sched_queue(v->sched, lone, 1);
}

/* The lone call confirming a shared error was answered: the same error fans out to the calls
 * waiting for it; anything else says it depended on the call's make-up, so they are halved. */
static void confirmed(struct verdict *v, struct call *lone, enum clw_class cls,
                      const struct clw_answer *ans, int64_t now)
{
    struct call *waiting = clw_sched_take_waiting(v->sched, lone);
    if (waiting == NULL)
        return;
    exempt_since(waiting, lone->att.started_mono, now);
    if (cls == CLW_CLASS_PERMANENT && clw_coalesce_same_error(ans, &waiting->cause->a)) {
        decide_all(v, waiting, 0, "api_error");
        return;
    }
    struct call *half = halve(waiting);
    if (half != NULL)
        clw_sched_queue(v->sched, half, 1);
    clw_sched_queue(v->sched, waiting, 1);
}

static void begin_task(struct verdict *v, struct call *call, long long task_id, int64_t now)
{
    clw_callobj_set_kind(call, CALL_TASK);
    call->plan.task_id = task_id;
    call->plan.task_polls = 0;
    call->plan.task_begun = now;
    call->plan.task_deadline = now + v->cfg->task_max_wait_ms;
    clw_sched_backoff(v->sched, call, now + v->cfg->retry_initial_backoff_ms);
}

void clw_verdict_action(struct verdict *v, struct call *call, struct clw_answer *ans,
                        enum clw_class cls, const char *why, int sent, int64_t now)
{
    struct shared_answer *sa = clw_calloc(1, sizeof(*sa));
    if (sa == NULL) {
        clw_answer_free(ans);
        CLW_ERROR("out of memory taking an API answer; retrying the call");
        retry(v, call, v->cfg->retry_initial_backoff_ms, now);
        return;
    }
    sa->a = *ans; /* takes ownership */
    sa->members = call->n_sent_members;
    sa->refs = 1;
    for (size_t i = 0; i < call->n_members; i++) {
        struct job *job = call->members[i];
        clw_shared_answer_put(job->verdict.last);
        job->verdict.last = sa;
        sa->refs++;
    }
    struct clw_coalesce_sent what = {call->action, call->vpc_id, call->sent_ids, call->n_sent_ids,
                                     call->n_sent_members};
    enum clw_verdict verdict = clw_coalesce_verdict(cls, &sa->a, &what);
    if (call->wait.confirms != NULL)
        confirmed(v, call, cls, &sa->a, now);
    if (verdict != CLW_VERDICT_RESIGN)
        call->plan.resign_streak = 0;
    switch (verdict) {
    case CLW_VERDICT_SUCCESS:
        if (v->cfg->task_follow && sa->a.has_task_id)
            begin_task(v, call, sa->a.task_id, now);
        else
            decide_all(v, call, 1, NULL);
        break;
    case CLW_VERDICT_FAIL:
        decide_all(v, call, 0, "api_error");
        break;
    case CLW_VERDICT_RECONCILE:
        /* "Already" may be an earlier attempt's doing. A lone request reports it unless its
         * state holds; a shared answer decides what it names (and, when it names a member
         * whose state holds, every such member), and the rest are sent again. */
        if (what.n_members <= 1)
            begin_links(v, call, RESUME_FAIL, "api_error", NULL);
        else
            begin_links(v, call, RESUME_NAMED, "api_error", sa);
        break;
    case CLW_VERDICT_SPLIT:
    case CLW_VERDICT_ISOLATE:
        split(v, call, sa->a.message, now);
        break;
    case CLW_VERDICT_CONFIRM:
        confirm(v, call, sa, now);
        break;
    case CLW_VERDICT_RETRY:
        if (effect_unknown(&sa->a, sent))
            call->plan.ambiguous = 1;
        {
            struct clw_log_ctx ctx;
            call_log_ctx(call, &ctx);
            CLW_LOG(CLW_LOG_INFO, &ctx,
                    "attempt %d for %zu request(s) failed transiently (%s); "
                    "will retry",
                    call->attempts, call->n_members, why);
        }
        retry_group(v, call, clw_classify_throttled(&sa->a), sa->a.retry_after_ms, now);
        break;
    case CLW_VERDICT_RESIGN:
        if (++call->plan.resign_streak >= RESIGN_LIMIT) {
            char reason[200];
            snprintf(reason, sizeof(reason),
                     "code %ld on %d consecutive freshly signed attempts (clock skew?)", sa->a.code,
                     RESIGN_LIMIT);
            fault(v, call, reason, now);
        } else {
            clw_sched_queue(v->sched, call, 1);
        }
        break;
    case CLW_VERDICT_FAULT: {
        char reason[256];
        describe_fault(&sa->a, why, reason, sizeof(reason));
        fault(v, call, reason, now);
        break;
    }
    }
    clw_shared_answer_put(sa);
}

/* ---- task follow-up ------------------------------------------------------------------------ */

/* A failed task changed nothing: a shared one is run again in halves, until the member whose
 * lone task fails stands alone. */
static void rerun_halves(struct verdict *v, struct call *call, int64_t now)
{
    exempt_since(call, call->plan.task_begun, now);
    clw_callobj_set_kind(call, CALL_ACTION);
    call->plan.task_id = 0;
    struct call *half = halve(call);
    CLW_DEBUG("the task of a call of %zu request(s) for %s failed: running it again in halves",
              call->n_members + (half != NULL ? half->n_members : 0), call->vpc_id);
    if (half != NULL)
        clw_sched_queue(v->sched, half, 1);
    clw_sched_queue(v->sched, call, 1);
}

void clw_verdict_task(struct verdict *v, struct call *call, struct clw_answer *ans,
                      enum clw_class cls, int64_t now)
{
    const char *status = NULL;
    int succeeded = 1;
    if (cls == CLW_CLASS_SUCCESS && ans->task_status == 0) {
        status = "succeeded";
    } else if (cls == CLW_CLASS_SUCCESS && ans->task_status == 1) {
        if (call->n_members > 1) {
            clw_answer_free(ans);
            rerun_halves(v, call, now);
            return;
        }
        status = "failed";
        succeeded = 0;
    } else if (cls == CLW_CLASS_PERMANENT || cls == CLW_CLASS_WORKER_FAULT) {
        status = "unknown"; /* the task cannot be read; the operation itself was accepted */
    } else {
        /* Running, or a transient failure to read it: poll again with backoff. */
        call->plan.task_polls++;
        int64_t delay = clw_backoff_delay_ms(
            call->plan.task_polls + 1, v->cfg->retry_initial_backoff_ms,
            v->cfg->retry_max_backoff_ms, clw_rand_next(&v->rng), ans->retry_after_ms);
        if (delay < v->cfg->retry_initial_backoff_ms)
            delay = v->cfg->retry_initial_backoff_ms;
        clw_answer_free(ans);
        if (now + delay <= call->plan.task_deadline) {
            clw_sched_backoff(v->sched, call, now + delay);
            return;
        }
        status = "timeout";
    }
    clw_answer_free(ans);
    for (size_t i = 0; i < call->n_members; i++)
        call->members[i]->verdict.task_status = status;
    decide_all(v, call, succeeded, succeeded ? NULL : "task_failed");
}
