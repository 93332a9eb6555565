/* The scheduler: the per-instance gate, the pool of ready jobs grouped by coalescing key, the
 * queue of formed calls, held calls, retry timers, the rate limiter and the in-flight cap. It
 * hands out calls; where a call is formed from waiting requests (coalescing) and where one is
 * split, it is here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clw/alloc.h"
#include "clw/backoff.h"
#include "clw/clock.h"
#include "clw/coalesce.h"
#include "worker_internal.h"

#define GROUPS_MIN_BUCKETS 64
/* Calls or groups passed over per dispatch because their rate-limit key has no token yet: a
 * bound on the work of one dispatch while the API's quota holds everything back. */
#define RATE_SKIP_MAX 32

/* ---- lists --------------------------------------------------------------------------------- */

void clw_jobq_push(struct jobq *q, struct job *job, int front)
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

void clw_jobq_remove(struct jobq *q, struct job *job)
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

void clw_callq_push(struct callq *q, struct call *call, int front)
{
    call->prev = call->next = NULL;
    if (q->head == NULL) {
        q->head = q->tail = call;
    } else if (front) {
        call->next = q->head;
        q->head->prev = call;
        q->head = call;
    } else {
        call->prev = q->tail;
        q->tail->next = call;
        q->tail = call;
    }
    q->len++;
}

void clw_callq_remove(struct callq *q, struct call *call)
{
    if (call->prev != NULL)
        call->prev->next = call->next;
    else
        q->head = call->next;
    if (call->next != NULL)
        call->next->prev = call->prev;
    else
        q->tail = call->prev;
    call->prev = call->next = NULL;
    q->len--;
}

/* ---- set-up -------------------------------------------------------------------------------- */

int clw_sched_init(struct worker *w, char *err, size_t errlen)
{
    struct sched *s = &w->sched;
    /* Always on: with api.quota 0 and api.rate_limit 0 a key is limited only from its first
     * throttling answer (contract section 8), at what the API admitted over the last second. */
    struct clw_ratelimit_opts ro = {
        .rate = (double)w->cfg->api_rate_limit,
        .quota = (double)w->cfg->api_quota,
        .min_rate = 1,
        .burst_s = 0.05,
        .seed = clw_rand_next(&w->rng),
    };
    s->rl = clw_ratelimit_new(&ro);
    s->gate = clw_gate_new();
    if (s->rl == NULL || s->gate == NULL || clw_strtab_init(&s->groups, GROUPS_MIN_BUCKETS) != 0) {
        snprintf(err, errlen, "cannot create the scheduler (out of memory)");
        return -1;
    }
    return 0;
}

static void group_dispose(struct clw_strtab_node *n)
{
    free(n);
}

void clw_sched_fini(struct worker *w)
{
    struct sched *s = &w->sched;
    if (s->groups.buckets != NULL)
        clw_strtab_fini(&s->groups, group_dispose);
    clw_gate_free(s->gate);
    clw_ratelimit_free(s->rl);
    clw_timers_free(&s->timers);
    memset(s, 0, sizeof(*s));
}

/* ---- the gate and the pool ---------------------------------------------------------------- */

static void gate_ready(void *job, void *arg)
{
    clw_job_fire(arg, job, JEV_UNGATED);
}

int clw_sched_submit(struct worker *w, struct job *job)
{
    int rc = clw_gate_enter(w->sched.gate, job, (const char *const *)job->req.instance_ids,
                            job->req.n_instances, &job->ticket);
    if (rc < 0)
        return -1;
    if (rc == 1)
        clw_job_fire(w, job, JEV_UNGATED);
    return 0;
}

static void group_unorder(struct sched *s, struct pool_group *g)
{
    if (g->prev != NULL)
        g->prev->next = g->next;
    else
        s->first = g->next;
    if (g->next != NULL)
        g->next->prev = g->prev;
    else
        s->last = g->prev;
    g->prev = g->next = NULL;
}

void clw_sched_pool_add(struct worker *w, struct job *job)
{
    struct sched *s = &w->sched;
    uint64_t hash = clw_strtab_hash(job->group);
    struct pool_group *g = (struct pool_group *)clw_strtab_find(&s->groups, job->group, hash);
    if (g == NULL) {
        size_t len = strlen(job->group);
        g = clw_calloc(1, sizeof(*g) + len + 1);
        if (g == NULL) {
            struct clw_log_ctx ctx;
            clw_job_log_ctx(job, &ctx);
            CLW_LOG(CLW_LOG_ERROR, &ctx,
                    "out of memory queueing a request; stopping (exit 2) so "
                    "that nothing is lost");
            w->exit_code = CLW_EXIT_FATAL;
            w->stopping = 1;
            return; /* stays READY outside the pool: never started, redone after the restart */
        }
        memcpy(g->key, job->group, len + 1);
        g->node.key = g->key;
        g->node.hash = hash;
        clw_strtab_insert(&s->groups, &g->node);
    }
    if (g->head == NULL) {
        g->since = clw_clock_mono_ms();
        g->prev = s->last;
        if (s->last != NULL)
            s->last->next = g;
        else
            s->first = g;
        s->last = g;
    }
    job->prev = g->tail;
    job->next = NULL;
    if (g->tail != NULL)
        g->tail->next = job;
    else
        g->head = job;
    g->tail = job;
    g->n_jobs++;
    g->n_instances += job->req.n_instances;
    job->pool = g;
    s->ready++;
}

static void pool_remove(struct sched *s, struct job *job)
{
    struct pool_group *g = job->pool;
    if (g == NULL)
        return;
    if (job->prev != NULL)
        job->prev->next = job->next;
    else
        g->head = job->next;
    if (job->next != NULL)
        job->next->prev = job->prev;
    else
        g->tail = job->prev;
    job->prev = job->next = NULL;
    job->pool = NULL;
    g->n_jobs--;
    g->n_instances -= job->req.n_instances;
    s->ready--;
    if (g->head == NULL) {
        group_unorder(s, g);
        clw_strtab_remove(&s->groups, &g->node);
        free(g);
    }
}

/* ---- calls --------------------------------------------------------------------------------- */

enum clw_api_op clw_call_op(const struct call *call)
{
    switch (call->kind) {
    case CALL_LINKS:
        return CLW_API_LIST_LINKS;
    case CALL_TASK:
        return CLW_API_TASK_RESULT;
    case CALL_ACTION:
        break;
    }
    return call->action == CLW_ACTION_ATTACH ? CLW_API_ATTACH : CLW_API_DETACH;
}

void clw_sched_rate_key(const struct worker *w, const struct call *call, char *key, size_t len)
{
    snprintf(key, len, "%s|%s|%s", clw_creds_principal(w->creds, w->cfg), call->region,
             clw_api_action(w->api, clw_call_op(call)));
}

static struct call *call_new(struct worker *w, const struct call *like, const struct job *first)
{
    struct call *call = clw_calloc(1, sizeof(*call));
    if (call == NULL)
        return NULL;
    call->w = w;
    call->first_mono = -1;
    clw_timer_init(&call->timer);
    if (like != NULL) {
        call->kind = like->kind;
        call->action = like->action;
        call->region = clw_strdup(like->region);
        call->vpc_id = clw_strdup(like->vpc_id);
    } else {
        call->kind = CALL_ACTION;
        call->action = first->req.action;
        call->region = clw_strdup(first->req.region);
        call->vpc_id = clw_strdup(first->req.vpc_id);
    }
    if (call->region == NULL || call->vpc_id == NULL) {
        free(call->region);
        free(call->vpc_id);
        free(call);
        return NULL;
    }
    w->sched.calls++;
    return call;
}

static void call_free(struct worker *w, struct call *call)
{
    free(call->members);
    free(call->region);
    free(call->vpc_id);
    free(call);
    w->sched.calls--;
}

static int call_reserve(struct call *call, size_t n)
{
    if (n <= call->cap)
        return 0;
    size_t cap = call->cap ? call->cap * 2 : 4;
    while (cap < n)
        cap *= 2;
    struct job **m = clw_realloc(call->members, cap * sizeof(*m));
    if (m == NULL)
        return -1;
    call->members = m;
    call->cap = cap;
    return 0;
}

/* Adds job (room reserved) as the call's last member. */
static void call_add(struct call *call, struct job *job)
{
    job->call = call;
    job->call_idx = call->n_members;
    call->members[call->n_members++] = job;
    call->n_instances += job->req.n_instances;
}

static void call_remove(struct call *call, struct job *job)
{
    size_t i = job->call_idx;
    struct job *moved = call->members[--call->n_members];
    call->members[i] = moved;
    moved->call_idx = i;
    call->n_instances -= job->req.n_instances;
    job->call = NULL;
}

/* Takes the call out of whatever list or timer holds it (it is then in no list). */
static void call_unlist(struct worker *w, struct call *call)
{
    struct sched *s = &w->sched;
    switch (call->state) {
    case CALL_QUEUED:
        clw_callq_remove(&s->queued, call);
        break;
    case CALL_HELD:
        clw_callq_remove(&s->held, call);
        break;
    case CALL_BACKOFF:
        if (call->timer.idx != CLW_TIMER_IDLE)
            clw_timers_disarm(&s->timers, &call->timer);
        else
            clw_callq_remove(&s->untimed, call);
        break;
    case CALL_RUNNING:
    case CALL_DECIDING:
        break;
    }
}

void clw_sched_end_if_empty(struct worker *w, struct call *call)
{
    if (call->n_members > 0 || call->state == CALL_RUNNING)
        return;
    call_unlist(w, call);
    call_free(w, call);
}

void clw_sched_queue(struct worker *w, struct call *call, int front)
{
    call->state = CALL_QUEUED;
    clw_callq_push(&w->sched.queued, call, front);
}

void clw_sched_unstart(struct worker *w, struct call *call)
{
    w->sched.running--;
    clw_sched_queue(w, call, 1);
}

void clw_sched_backoff(struct worker *w, struct call *call, int64_t due)
{
    call->state = CALL_BACKOFF;
    if (clw_timers_arm(&w->sched.timers, &call->timer, due) != 0)
        clw_callq_push(&w->sched.untimed, call, 0); /* no memory for a timer: next turn */
}

void clw_sched_hold(struct worker *w, struct call *call)
{
    call->state = CALL_HELD;
    clw_callq_push(&w->sched.held, call, 0);
}

void clw_sched_unhold_all(struct worker *w)
{
    struct sched *s = &w->sched;
    while (s->held.head != NULL) {
        struct call *call = s->held.head;
        clw_callq_remove(&s->held, call);
        clw_sched_queue(w, call, 0);
    }
}

void clw_sched_answered(struct worker *w, struct call *call)
{
    w->sched.running--;
    /* In no list while its verdict is worked out; the verdict queues, holds or ends it. */
    call->state = CALL_DECIDING;
}

struct call *clw_sched_split(struct worker *w, struct call *call, const size_t *order, size_t k)
{
    size_t n = call->n_members;
    struct call *part = call_new(w, call, NULL);
    struct job **kept = clw_malloc(n * sizeof(*kept));
    if (part == NULL || kept == NULL || call_reserve(part, n - k) != 0) {
        free(kept);
        if (part != NULL)
            call_free(w, part);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        kept[i] = call->members[order[i]];
    call->n_members = 0;
    call->n_instances = 0;
    for (size_t i = 0; i < k; i++)
        call_add(call, kept[i]);
    for (size_t i = k; i < n; i++)
        call_add(part, kept[i]);
    free(kept);
    part->first_mono = call->first_mono;
    part->paused_base = call->paused_base;
    part->exempt_ms = call->exempt_ms;
    part->ambiguous = call->ambiguous;
    part->reconciled = call->reconciled;
    part->strikes = call->strikes;
    part->lineage = call->lineage;
    return part;
}

/* ---- members leaving ----------------------------------------------------------------------- */

static void leave_call(struct worker *w, struct job *job)
{
    struct call *call = job->call;
    if (call == NULL)
        return;
    call_remove(call, job);
    if (call->n_members > 0)
        return;
    if (call->state == CALL_DECIDING)
        return; /* its verdict ends it */
    if (call->state == CALL_RUNNING) {
        /* Nobody waits for its answer any more. */
        if (clw_http_cancel(w->http, call)) {
            w->sched.running--;
            if (call->probe)
                w->probe_in_flight = 0;
            call_free(w, call);
        }
        return;
    }
    call_unlist(w, call);
    call_free(w, call);
}

static void leave_gate(struct worker *w, struct job *job)
{
    if (job->ticket == NULL)
        return;
    struct clw_gate_ticket *t = job->ticket;
    job->ticket = NULL;
    clw_gate_leave(w->sched.gate, t, gate_ready, w);
}

void clw_sched_release(struct worker *w, struct job *job)
{
    if (job->call != NULL) {
        struct call *call = job->call;
        call_remove(call, job);
    }
    leave_gate(w, job);
}

void clw_sched_drop(struct worker *w, struct job *job)
{
    if (job->state == JOB_READY)
        pool_remove(&w->sched, job);
    leave_call(w, job);
    leave_gate(w, job);
}

/* ---- handing out calls --------------------------------------------------------------------- */

/* A token for call's key, or the wait for one (noted in *wake). */
static int rate_ok(struct worker *w, const struct call *call, int64_t now, int64_t *wake)
{
    char key[512];
    clw_sched_rate_key(w, call, key, sizeof(key));
    int64_t wait = clw_ratelimit_acquire(w->sched.rl, key, now);
    if (wait <= 0)
        return 1;
    if (*wake == 0 || now + wait < *wake)
        *wake = now + wait;
    return 0;
}

static void mark_running(struct worker *w, struct call *call)
{
    call->state = CALL_RUNNING;
    w->sched.running++;
}

/* The first startable call of the queue; probe: take the head only. */
static struct call *from_queue(struct worker *w, struct callq *q, int64_t now, int64_t *wake,
                               int head_only)
{
    int skipped = 0;
    for (struct call *call = q->head; call != NULL; call = call->next) {
        if (rate_ok(w, call, now, wake)) {
            clw_callq_remove(q, call);
            return call;
        }
        if (head_only || ++skipped >= RATE_SKIP_MAX)
            break;
    }
    return NULL;
}

/* Moves the oldest jobs of g into call while the call's instances stay within
 * api.coalesce.max_instances (an empty call always takes one: a request is never split).
 * Returns 0, or -1 when out of memory (nothing moved). */
static int take_jobs(struct worker *w, struct pool_group *g, struct call *call)
{
    size_t max = (size_t)w->cfg->api_coalesce_max_instances;
    size_t n = 0;
    size_t instances = call->n_instances;
    for (struct job *job = g->head; job != NULL; job = job->next) {
        if (call->n_members + n > 0 && instances + job->req.n_instances > max)
            break;
        instances += job->req.n_instances;
        n++;
    }
    if (n == 0)
        return 0;
    if (call_reserve(call, call->n_members + n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        struct job *job = g->head;
        pool_remove(&w->sched, job); /* may free g with the last job */
        call_add(call, job);
        clw_job_fire(w, job, JEV_PLACED);
    }
    return 0;
}

/* Forms a call from the head of group g: as many of its oldest jobs as fit one call. */
static struct call *form(struct worker *w, struct pool_group *g)
{
    struct call *call = call_new(w, NULL, g->head);
    if (call == NULL || take_jobs(w, g, call) != 0) {
        if (call != NULL)
            call_free(w, call);
        return NULL;
    }
    call->fresh = 1;
    return call;
}

/* A call that only ever got throttling answers did nothing at the API: requests of its key
 * that became ready meanwhile join it before it is sent again, so that the calls the quota
 * admits are full (contract section 8: requests waiting anyway share a call). */
static void top_up(struct worker *w, struct call *call)
{
    if (call->kind != CALL_ACTION || !call->fresh || call->n_members == 0 ||
        call->n_instances >= (size_t)w->cfg->api_coalesce_max_instances)
        return;
    const char *key = call->members[0]->group;
    struct pool_group *g =
        (struct pool_group *)clw_strtab_find(&w->sched.groups, key, clw_strtab_hash(key));
    if (g != NULL && take_jobs(w, g, call) != 0)
        CLW_WARN("out of memory adding requests to a call; it is sent as it was");
}

/* A call formed from the pool's oldest dispatchable group, or NULL. */
static struct call *from_pool(struct worker *w, int64_t now, int64_t *wake)
{
    int64_t linger = w->cfg->api_coalesce_linger_ms;
    size_t max = (size_t)w->cfg->api_coalesce_max_instances;
    int skipped = 0;
    for (struct pool_group *g = w->sched.first; g != NULL; g = g->next) {
        if (linger > 0 && g->n_instances < max && now - g->since < linger) {
            if (*wake == 0 || g->since + linger < *wake)
                *wake = g->since + linger;
            if (++skipped >= RATE_SKIP_MAX)
                break;
            continue;
        }
        struct call probe_call = {
            .kind = CALL_ACTION, .action = g->head->req.action, .region = g->head->req.region};
        if (!rate_ok(w, &probe_call, now, wake)) {
            if (++skipped >= RATE_SKIP_MAX)
                break;
            continue;
        }
        struct call *call = form(w, g);
        if (call == NULL) {
            CLW_ERROR("out of memory forming an API call; retrying");
            break;
        }
        return call;
    }
    return NULL;
}

struct call *clw_sched_next(struct worker *w, int64_t now)
{
    struct sched *s = &w->sched;
    struct call *call = NULL;
    int64_t wake = 0;
    s->rate_wait_until = 0;
    if (s->running >= (size_t)w->cfg->worker_max_in_flight)
        return NULL;
    if (w->fault_active || w->circuit_open) {
        if (w->probe_in_flight || now < w->next_probe_mono)
            return NULL;
        if (w->fault_active)
            call = from_queue(w, &s->held, now, &wake, 1);
        else if ((call = from_queue(w, &s->queued, now, &wake, 1)) == NULL && wake == 0)
            call = from_pool(w, now, &wake);
        if (call != NULL)
            call->probe = 1;
    } else {
        call = from_queue(w, &s->queued, now, &wake, 0);
        if (call == NULL)
            call = from_pool(w, now, &wake);
    }
    if (call == NULL) {
        s->rate_wait_until = wake;
        return NULL;
    }
    top_up(w, call);
    mark_running(w, call);
    return call;
}

void clw_sched_tick(struct worker *w, int64_t now)
{
    struct sched *s = &w->sched;
    while (s->untimed.head != NULL) {
        struct call *call = s->untimed.head;
        clw_callq_remove(&s->untimed, call);
        clw_sched_queue(w, call, 0);
    }
    for (;;) {
        struct clw_timer *tm = clw_timers_pop_due(&s->timers, now);
        if (tm == NULL)
            break;
        struct call *call = (struct call *)((char *)tm - offsetof(struct call, timer));
        clw_sched_queue(w, call, 0);
    }
}

int64_t clw_sched_wait_ms(const struct worker *w, int64_t now, int64_t max_ms)
{
    const struct sched *s = &w->sched;
    int64_t wait = max_ms;
    if (s->untimed.len > 0)
        return 0;
    struct clw_timer *tm = clw_timers_peek(&s->timers);
    if (tm != NULL && tm->due - now < wait)
        wait = tm->due - now;
    if (s->rate_wait_until > 0 && s->rate_wait_until - now < wait)
        wait = s->rate_wait_until - now;
    return wait < 0 ? 0 : wait;
}
