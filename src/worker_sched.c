/* The scheduler: the per-instance gate, the pool of ready jobs grouped by coalescing key, the
 * queue of formed calls, held and waiting calls, retry timers, the rate limiter and the
 * in-flight cap. It hands out calls in the mode it is told; where a call is formed from waiting
 * requests (coalescing), it is here. */
#include "worker_sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clw/alloc.h"
#include "clw/clock.h"
#include "clw/log.h"

#define GROUPS_MIN_BUCKETS 64
/* Calls or groups passed over per dispatch because their rate-limit key has no token yet: a
 * bound on the work of one dispatch while the API's quota holds everything back. */
#define RATE_SKIP_MAX 32

/* ---- lists --------------------------------------------------------------------------------- */

static void callq_push(struct clw_dlist *q, struct call *call, int front)
{
    clw_dlist_push(q, &call->wait.link, front);
}

static void callq_remove(struct clw_dlist *q, struct call *call)
{
    clw_dlist_remove(q, &call->wait.link);
}

static struct call *callq_head(const struct clw_dlist *q)
{
    return CLW_DLIST_ITEM(q->head, struct call, wait.link);
}

static struct job *group_head(const struct pool_group *g)
{
    return CLW_DLIST_ITEM(g->jobs.head, struct job, sched.link);
}

/* ---- set-up -------------------------------------------------------------------------------- */

int clw_sched_init(struct sched *s, const struct clw_config *cfg, const struct clw_api *api,
                   const struct clw_creds *creds, struct clw_http *http, struct guard *guard,
                   struct job_queue *events, uint64_t seed, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    s->cfg = cfg;
    s->api = api;
    s->creds = creds;
    s->http = http;
    s->guard = guard;
    s->events = events;
    /* Always on: the account's quota (api.quota) shared by the fleet, this worker's share set
     * from its assignment (clw_sched_set_share); with api.quota 0 and api.rate_limit 0 a key is
     * limited only from its first throttling answer, at what the API admitted over the last
     * second. */
    struct clw_ratelimit_opts ro = {
        .rate = (double)cfg->api_rate_limit,
        .quota = (double)cfg->api_quota,
        .min_rate = 1,
        .burst_s = 0.05,
        .seed = seed,
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

void clw_sched_fini(struct sched *s)
{
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
    struct sched *s = arg;
    clw_job_post(s->events, job, JEV_UNGATED);
}

int clw_sched_submit(struct sched *s, struct job *job)
{
    int rc = clw_gate_enter(s->gate, job, (const char *const *)job->rec.req.instance_ids,
                            job->rec.req.n_instances, &job->sched.ticket);
    if (rc < 0)
        return -1;
    if (rc == 1)
        clw_job_post(s->events, job, JEV_UNGATED);
    return 0;
}

int clw_sched_pool_add(struct sched *s, struct job *job)
{
    const char *key = job->rec.group;
    uint64_t hash = clw_strtab_hash(key);
    struct pool_group *g = (struct pool_group *)clw_strtab_find(&s->groups, key, hash);
    if (g == NULL) {
        size_t len = strlen(key);
        g = clw_calloc(1, sizeof(*g) + len + 1);
        if (g == NULL)
            return -1;
        memcpy(g->key, key, len + 1);
        g->node.key = g->key;
        g->node.hash = hash;
        clw_strtab_insert(&s->groups, &g->node);
    }
    if (g->jobs.len == 0) {
        g->since = clw_clock_mono_ms();
        clw_dlist_push(&s->order, &g->link, 0);
    }
    clw_dlist_push(&g->jobs, &job->sched.link, 0);
    g->n_instances += job->rec.req.n_instances;
    job->sched.pool = g;
    s->ready++;
    return 0;
}

static void pool_remove(struct sched *s, struct job *job)
{
    struct pool_group *g = job->sched.pool;
    if (g == NULL)
        return;
    clw_dlist_remove(&g->jobs, &job->sched.link);
    job->sched.pool = NULL;
    g->n_instances -= job->rec.req.n_instances;
    s->ready--;
    if (g->jobs.len == 0) {
        clw_dlist_remove(&s->order, &g->link);
        clw_strtab_remove(&s->groups, &g->node);
        free(g);
    }
}

/* ---- calls --------------------------------------------------------------------------------- */

void clw_sched_rate_key(const struct sched *s, const struct call *call, char *key, size_t len)
{
    snprintf(key, len, "%s|%s|%s", clw_creds_principal(s->creds, s->cfg), call->region,
             clw_api_action(s->api, clw_callobj_op(call)));
}

void clw_sched_set_share(struct sched *s, double share, int64_t now)
{
    clw_ratelimit_set_share(s->rl, NULL, share, now);
}

/* A key is "principal|region|action" (clw_sched_rate_key): its region and action, for labels. */
static void report_key(const char *key, const struct clw_ratelimit_stats *st, void *arg)
{
    const char *a = strchr(key, '|');
    const char *b = a != NULL ? strchr(a + 1, '|') : NULL;
    if (b == NULL)
        return;
    char region[64];
    snprintf(region, sizeof(region), "%.*s", (int)(b - a - 1), a + 1);
    clw_metrics_ratelimit_state(arg, b + 1, region, st->rate, st->share);
}

void clw_sched_report(const struct sched *s, struct clw_metrics *m, int64_t now)
{
    clw_ratelimit_foreach(s->rl, now, report_key, m);
}

void clw_sched_rate_answer(struct sched *s, const struct call *call, int64_t now, int throttled,
                           int64_t retry_after_ms)
{
    char key[512];
    clw_sched_rate_key(s, call, key, sizeof(key));
    clw_ratelimit_answered(s->rl, key, call->att.started_mono, now, throttled, retry_after_ms);
}

/* Releases the gate tickets of members that left while an attempt was in flight: the attempt
 * that carried their instances has ended. */
static void release_held(struct sched *s, struct call *call)
{
    struct call_wait *cw = &call->wait;
    for (size_t i = 0; i < cw->n_held_tickets; i++)
        clw_gate_leave(s->gate, cw->held_tickets[i], gate_ready, s);
    free(cw->held_tickets);
    cw->held_tickets = NULL;
    cw->n_held_tickets = 0;
}

static void set_state(struct call *call, enum call_state state)
{
    clw_callobj_set_state(call, state);
}

/* Takes the call out of whatever list or timer holds it (it is then in no list). */
static void call_unlist(struct sched *s, struct call *call)
{
    switch (call->state) {
    case CALL_QUEUED:
        callq_remove(&s->queued, call);
        break;
    case CALL_HELD:
        callq_remove(&s->held, call);
        break;
    case CALL_BACKOFF:
        if (call->wait.timer.idx != CLW_TIMER_IDLE)
            clw_timers_disarm(&s->timers, &call->wait.timer);
        else
            callq_remove(&s->untimed, call);
        break;
    case CALL_RUNNING:
    case CALL_DECIDING:
    case CALL_WAITING:
        break;
    }
}

static void call_free(struct sched *s, struct call *call)
{
    release_held(s, call);
    struct call *waiting = call->wait.confirms;
    if (waiting != NULL) {
        /* The confirming call ends unanswered: its waiting call goes on as a group. */
        waiting->wait.waits_for = NULL;
        call->wait.confirms = NULL;
        clw_sched_queue(s, waiting, 1);
    }
    if (call->wait.waits_for != NULL)
        call->wait.waits_for->wait.confirms = NULL;
    clw_callobj_free(call);
}

void clw_sched_end_if_empty(struct sched *s, struct call *call)
{
    if (call->n_members > 0 || call->state == CALL_RUNNING)
        return;
    call_unlist(s, call);
    call_free(s, call);
}

void clw_sched_queue(struct sched *s, struct call *call, int front)
{
    set_state(call, CALL_QUEUED);
    callq_push(&s->queued, call, front);
}

void clw_sched_unstart(struct sched *s, struct call *call)
{
    s->running--;
    clw_sched_queue(s, call, 1);
}

void clw_sched_backoff(struct sched *s, struct call *call, int64_t due)
{
    set_state(call, CALL_BACKOFF);
    if (clw_timers_arm(&s->timers, &call->wait.timer, due) != 0)
        callq_push(&s->untimed, call, 0); /* no memory for a timer: next turn */
}

void clw_sched_hold(struct sched *s, struct call *call)
{
    set_state(call, CALL_HELD);
    callq_push(&s->held, call, 0);
}

void clw_sched_unhold_all(struct sched *s)
{
    for (struct call *call; (call = callq_head(&s->held)) != NULL;) {
        callq_remove(&s->held, call);
        clw_sched_queue(s, call, 0);
    }
}

struct call *clw_sched_first_held(const struct sched *s)
{
    return callq_head(&s->held);
}

void clw_sched_answered(struct sched *s, struct call *call, int throttled)
{
    s->running--;
    /* In no list while its verdict is worked out; the verdict queues, holds or ends it. */
    set_state(call, CALL_DECIDING);
    if (!throttled)
        call->wait.fresh = 0;
    release_held(s, call);
}

void clw_sched_wait_confirm(struct sched *s, struct call *waiting, struct call *lone)
{
    (void)s;
    set_state(waiting, CALL_WAITING);
    waiting->wait.waits_for = lone;
    lone->wait.confirms = waiting;
}

struct call *clw_sched_take_waiting(struct sched *s, struct call *lone)
{
    (void)s;
    struct call *waiting = lone->wait.confirms;
    if (waiting == NULL)
        return NULL;
    lone->wait.confirms = NULL;
    waiting->wait.waits_for = NULL;
    return waiting;
}

/* ---- members leaving ----------------------------------------------------------------------- */

/* Keeps the job's gate ticket with the running call: the attempt in flight carries its
 * instances, so no later request for them may start before it ended. Returns 0, or -1 when
 * out of memory (the ticket is then released at once). */
static int hold_ticket(struct call *call, struct job *job)
{
    struct call_wait *cw = &call->wait;
    if (job->sched.ticket == NULL)
        return 0;
    struct clw_gate_ticket **t =
        clw_realloc(cw->held_tickets, (cw->n_held_tickets + 1) * sizeof(*t));
    if (t == NULL)
        return -1;
    cw->held_tickets = t;
    t[cw->n_held_tickets++] = job->sched.ticket;
    job->sched.ticket = NULL;
    return 0;
}

static void leave_call(struct sched *s, struct job *job)
{
    struct call *call = job->member.call;
    if (call == NULL)
        return;
    clw_callobj_remove(job);
    if (call->state == CALL_RUNNING && hold_ticket(call, job) != 0)
        CLW_WARN("out of memory keeping a leaving request's instances gated");
    if (call->n_members > 0 || call->state == CALL_DECIDING)
        return; /* a call being decided is ended by its verdict */
    if (call->state == CALL_RUNNING) {
        /* Nobody waits for its answer any more. */
        if (clw_http_cancel(s->http, call)) {
            s->running--;
            if (call->att.probe)
                clw_guard_probe_lost(s->guard, clw_clock_mono_ms());
            call_free(s, call);
        }
        return;
    }
    call_unlist(s, call);
    call_free(s, call);
}

static void leave_gate(struct sched *s, struct job *job)
{
    if (job->sched.ticket == NULL)
        return;
    struct clw_gate_ticket *t = job->sched.ticket;
    job->sched.ticket = NULL;
    clw_gate_leave(s->gate, t, gate_ready, s);
}

void clw_sched_release(struct sched *s, struct job *job)
{
    leave_call(s, job);
    leave_gate(s, job);
}

void clw_sched_drop(struct sched *s, struct job *job)
{
    if (job->sched.pool != NULL)
        pool_remove(s, job);
    leave_call(s, job);
    leave_gate(s, job);
}

/* ---- handing out calls --------------------------------------------------------------------- */

/* A token for call's key, or the wait for one (noted in *wake). */
static int rate_ok(struct sched *s, const struct call *call, int64_t now, int64_t *wake)
{
    char key[512];
    clw_sched_rate_key(s, call, key, sizeof(key));
    int64_t wait = clw_ratelimit_acquire(s->rl, key, now);
    if (wait <= 0)
        return 1;
    if (*wake == 0 || now + wait < *wake)
        *wake = now + wait;
    return 0;
}

/* The first startable call of the queue; head_only: the head or nothing. */
static struct call *from_queue(struct sched *s, struct clw_dlist *q, int64_t now, int64_t *wake,
                               int head_only)
{
    int skipped = 0;
    for (struct clw_dlink *k = q->head; k != NULL; k = k->next) {
        struct call *call = CLW_DLIST_OF(k, struct call, wait.link);
        if (rate_ok(s, call, now, wake)) {
            callq_remove(q, call);
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
static int take_jobs(struct sched *s, struct pool_group *g, struct call *call)
{
    size_t max = (size_t)s->cfg->api_coalesce_max_instances;
    size_t n = 0;
    size_t instances = call->n_instances;
    for (struct clw_dlink *k = g->jobs.head; k != NULL; k = k->next) {
        const struct job *job = CLW_DLIST_OF(k, struct job, sched.link);
        if (call->n_members + n > 0 && instances + job->rec.req.n_instances > max)
            break;
        instances += job->rec.req.n_instances;
        n++;
    }
    if (n == 0)
        return 0;
    if (clw_callobj_reserve(call, call->n_members + n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        struct job *job = group_head(g);
        pool_remove(s, job); /* may free g with the last job */
        clw_callobj_add(call, job);
        clw_job_post(s->events, job, JEV_PLACED);
    }
    return 0;
}

/* Forms a call from the head of group g: as many of its oldest jobs as fit one call. */
static struct call *form(struct sched *s, struct pool_group *g)
{
    struct call *call = clw_callobj_new(group_head(g));
    if (call == NULL || take_jobs(s, g, call) != 0) {
        if (call != NULL)
            clw_callobj_free(call);
        return NULL;
    }
    call->wait.fresh = 1;
    return call;
}

/* A call that only ever got throttling answers did nothing at the API: requests of its key
 * that became ready meanwhile join it before it is sent again, so that the calls the quota
 * admits are full (contract section 8: requests waiting anyway share a call). */
static void top_up(struct sched *s, struct call *call)
{
    if (call->kind != CALL_ACTION || !call->wait.fresh || call->n_members == 0 ||
        call->n_instances >= (size_t)s->cfg->api_coalesce_max_instances)
        return;
    const char *key = call->members[0]->rec.group;
    struct pool_group *g =
        (struct pool_group *)clw_strtab_find(&s->groups, key, clw_strtab_hash(key));
    if (g != NULL && take_jobs(s, g, call) != 0)
        CLW_WARN("out of memory adding requests to a call; it is sent as it was");
}

/* A call formed from the pool's oldest dispatchable group, or NULL. */
static struct call *from_pool(struct sched *s, int64_t now, int64_t *wake)
{
    int64_t linger = s->cfg->api_coalesce_linger_ms;
    size_t max = (size_t)s->cfg->api_coalesce_max_instances;
    int skipped = 0;
    for (struct clw_dlink *k = s->order.head; k != NULL; k = k->next) {
        struct pool_group *g = CLW_DLIST_OF(k, struct pool_group, link);
        if (linger > 0 && g->n_instances < max && now - g->since < linger) {
            if (*wake == 0 || g->since + linger < *wake)
                *wake = g->since + linger;
            if (++skipped >= RATE_SKIP_MAX)
                break;
            continue;
        }
        const struct job *oldest = group_head(g);
        struct call probe_call = {.kind = CALL_ACTION,
                                  .action = oldest->rec.req.action,
                                  .region = oldest->rec.req.region};
        if (!rate_ok(s, &probe_call, now, wake)) {
            if (++skipped >= RATE_SKIP_MAX)
                break;
            continue;
        }
        struct call *call = form(s, g);
        if (call == NULL) {
            CLW_ERROR("out of memory forming an API call; retrying");
            break;
        }
        return call;
    }
    return NULL;
}

struct call *clw_sched_next(struct sched *s, enum guard_start mode, int64_t now)
{
    struct call *call = NULL;
    int64_t wake = 0;
    s->rate_wait_until = 0;
    if (s->running >= (size_t)s->cfg->worker_max_in_flight)
        return NULL;
    switch (mode) {
    case GUARD_START_NONE:
        return NULL;
    case GUARD_START_HELD:
        call = from_queue(s, &s->held, now, &wake, 1);
        break;
    case GUARD_START_PROBE:
        if ((call = from_queue(s, &s->queued, now, &wake, 1)) == NULL && wake == 0)
            call = from_pool(s, now, &wake);
        break;
    case GUARD_START_ALL:
        call = from_queue(s, &s->queued, now, &wake, 0);
        if (call == NULL)
            call = from_pool(s, now, &wake);
        break;
    }
    if (call == NULL) {
        s->rate_wait_until = wake;
        return NULL;
    }
    top_up(s, call);
    set_state(call, CALL_RUNNING);
    s->running++;
    return call;
}

void clw_sched_tick(struct sched *s, int64_t now)
{
    for (struct call *call; (call = callq_head(&s->untimed)) != NULL;) {
        callq_remove(&s->untimed, call);
        clw_sched_queue(s, call, 0);
    }
    for (;;) {
        struct clw_timer *tm = clw_timers_pop_due(&s->timers, now);
        if (tm == NULL)
            break;
        struct call *call = (struct call *)((char *)tm - offsetof(struct call, wait.timer));
        clw_sched_queue(s, call, 0);
    }
}

int64_t clw_sched_wait_ms(const struct sched *s, int64_t now, int64_t max_ms)
{
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

int clw_sched_startable(const struct sched *s)
{
    return s->rate_wait_until == 0 && s->running < (size_t)s->cfg->worker_max_in_flight &&
           (s->queued.len > 0 || s->ready > 0);
}
