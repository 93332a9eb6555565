/* A simulated fleet of workers sharing one API quota on virtual time, for the rate limiter. */
#include "fleet_sim.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define KEY "AKID|ap-guangzhou|AttachClassicLinkVpc"
/* Answers are filed by the millisecond they arrive, modulo this (more than latency + jitter). */
#define WHEEL_MS 2048
/* The stranger has been calling this long when the fleet starts. */
#define STRANGER_AHEAD_MS 2000

struct answer {
    int member;
    int throttled;
    int64_t sent_ms;
};

struct wheel_slot {
    struct answer *v;
    size_t n, cap;
};

struct member {
    struct clw_ratelimit *rl;
    int running;
    int in_flight;
    int64_t next_try_ms; /* the limiter's last wait ends here */
    int woken;           /* an answer arrived this millisecond */
};

struct sim {
    const struct fleet_params *p;
    struct fleet_result *r;
    int64_t *admits; /* the quota: the times of the last `quota` admitted calls, a ring */
    int head, count;
    struct wheel_slot wheel[WHEEL_MS];
    struct member m[FLEET_MAX_MEMBERS];
    uint64_t prng;
};

/* The quota's verdict on a call at now_ms: admitted (and recorded) or refused. */
static int quota_admits(struct sim *s, int64_t now_ms)
{
    int q = s->p->quota;

    if (s->count < q) {
        s->admits[(s->head + s->count++) % q] = now_ms;
        return 1;
    }
    if (s->admits[s->head] > now_ms - 1000)
        return 0;
    s->admits[s->head] = now_ms;
    s->head = (s->head + 1) % q;
    return 1;
}

static int64_t jitter(struct sim *s)
{
    if (s->p->jitter_ms <= 0)
        return 0;
    s->prng ^= s->prng << 13;
    s->prng ^= s->prng >> 7;
    s->prng ^= s->prng << 17;
    return (int64_t)(s->prng % (uint64_t)(s->p->jitter_ms + 1));
}

static void file_answer(struct sim *s, int64_t at_ms, const struct answer *a)
{
    struct wheel_slot *slot = &s->wheel[at_ms % WHEEL_MS];

    if (slot->n == slot->cap) {
        slot->cap = slot->cap ? slot->cap * 2 : 64;
        slot->v = realloc(slot->v, slot->cap * sizeof(*slot->v));
        assert_non_null(slot->v);
    }
    slot->v[slot->n++] = *a;
}

static int running_members(const struct sim *s)
{
    int n = 0;

    for (int i = 0; i < s->r->members; i++)
        n += s->m[i].running;
    return n;
}

/* A scheduler told of its new assignment: share = 1 / running members. */
static void assign(struct sim *s, int64_t now_ms)
{
    int n = running_members(s);

    if (!s->p->wired || n == 0)
        return;
    for (int i = 0; i < s->r->members; i++)
        if (s->m[i].running)
            clw_ratelimit_set_share(s->m[i].rl, NULL, 1.0 / n, now_ms);
}

static void start_member(struct sim *s, int64_t now_ms)
{
    int i = s->r->members;

    struct clw_ratelimit_opts o = s->p->opts;

    assert_true(i < FLEET_MAX_MEMBERS);
    o.seed += (uint64_t)(i + 1) * UINT64_C(0x2545f4914f6cdd1d); /* each process its own */
    s->m[i].rl = clw_ratelimit_new(&o);
    if (s->m[i].rl == NULL)
        fail_msg("clw_ratelimit_new failed");
    s->m[i].running = 1;
    s->r->start_ms[i] = now_ms;
    s->r->stop_ms[i] = -1;
    s->r->members++;
}

static void stop_member(struct sim *s, int64_t now_ms)
{
    for (int i = s->r->members - 1; i >= 0; i--) {
        if (s->m[i].running) {
            s->m[i].running = 0;
            s->r->stop_ms[i] = now_ms;
            return;
        }
    }
}

/* Membership changes due at now_ms: a leave stops a member at once, a join starts one when the
 * rebalance hands it partitions; either way the shares change then. */
static void events(struct sim *s, int64_t now_ms)
{
    const struct fleet_params *p = s->p;

    for (int k = 0; k < FLEET_MAX_EVENTS; k++) {
        const struct fleet_event *e = &p->events[k];

        if (e->kind == FLEET_LEAVE && e->at_ms == now_ms)
            stop_member(s, now_ms);
        if (e->kind != FLEET_NONE && e->at_ms + p->rebalance_ms == now_ms) {
            if (e->kind == FLEET_JOIN)
                start_member(s, now_ms);
            assign(s, now_ms);
        }
    }
}

static void stranger(struct sim *s, int64_t now_ms, double *next_ms)
{
    while (s->p->stranger > 0 && *next_ms <= (double)now_ms) {
        if (quota_admits(s, now_ms) && now_ms >= 0)
            s->r->stranger_admitted[now_ms / 1000]++;
        *next_ms += 1000.0 / s->p->stranger;
    }
}

static void deliver(struct sim *s, int64_t now_ms)
{
    struct wheel_slot *slot = &s->wheel[now_ms % WHEEL_MS];

    for (size_t k = 0; k < slot->n; k++) {
        struct answer *a = &slot->v[k];
        struct member *m = &s->m[a->member];

        clw_ratelimit_answered(m->rl, KEY, a->sent_ms, now_ms, a->throttled, -1);
        m->in_flight--;
        m->woken = 1;
    }
    slot->n = 0;
}

/* Member i starts every call its limiter and its in-flight slots allow at now_ms. */
static void dispatch(struct sim *s, int i, int64_t now_ms)
{
    struct member *m = &s->m[i];
    int sec = (int)(now_ms / 1000);

    if (!m->running || (!m->woken && now_ms < m->next_try_ms))
        return;
    m->woken = 0;
    while (m->in_flight < s->p->max_in_flight) {
        int64_t wait = clw_ratelimit_acquire(m->rl, KEY, now_ms);
        struct answer a = {i, 0, now_ms};

        if (wait > 0) {
            m->next_try_ms = now_ms + wait;
            return;
        }
        a.throttled = !quota_admits(s, now_ms);
        if (a.throttled)
            s->r->throttled[i][sec]++;
        else
            s->r->admitted[i][sec]++;
        /* at the earliest the next millisecond: this one's answers are delivered */
        file_answer(s, now_ms + 1 + s->p->latency_ms + jitter(s), &a);
        m->in_flight++;
    }
    m->next_try_ms = INT64_MAX; /* every slot busy: the next answer wakes it */
}

void fleet_run(const struct fleet_params *p, struct fleet_result *r)
{
    struct sim *s = calloc(1, sizeof(*s));
    double next_stranger = -STRANGER_AHEAD_MS;
    int first = 0;

    assert_non_null(s);
    assert_true(p->end_ms <= (int64_t)FLEET_MAX_SECONDS * 1000);
    assert_true(p->latency_ms + p->jitter_ms + 1 < WHEEL_MS);
    memset(r, 0, sizeof(*r));
    s->p = p;
    s->r = r;
    s->prng = 0x9e3779b97f4a7c15ULL;
    s->admits = calloc((size_t)p->quota, sizeof(*s->admits));
    assert_non_null(s->admits);
    for (int64_t t = -STRANGER_AHEAD_MS; t < 0; t++)
        stranger(s, t, &next_stranger);
    for (int i = 0; i < p->members; i++)
        start_member(s, 0);
    assign(s, 0);
    for (int64_t t = 0; t < p->end_ms; t++) {
        events(s, t);
        stranger(s, t, &next_stranger);
        deliver(s, t);
        /* Members take turns at being first within a millisecond. */
        for (int k = 0; k < r->members; k++)
            dispatch(s, (first + k) % r->members, t);
        first = r->members > 0 ? (first + 1) % r->members : 0;
        if (t % 1000 == 999) {
            for (int i = 0; i < r->members; i++)
                r->rate[i][t / 1000] = s->m[i].running ? clw_ratelimit_rate(s->m[i].rl, KEY, t) : 0;
            r->seconds = (int)(t / 1000) + 1;
        }
    }
    for (int i = 0; i < r->members; i++)
        clw_ratelimit_free(s->m[i].rl);
    for (int k = 0; k < WHEEL_MS; k++)
        free(s->wheel[k].v);
    free(s->admits);
    free(s);
}

static long sum(const long (*v)[FLEET_MAX_SECONDS], const struct fleet_result *r, int m, int from_s,
                int to_s)
{
    long n = 0;

    for (int i = 0; i < r->members; i++)
        if (m < 0 || m == i)
            for (int t = from_s; t < to_s && t < r->seconds; t++)
                n += v[i][t];
    return n;
}

long fleet_admitted(const struct fleet_result *r, int m, int from_s, int to_s)
{
    return sum(r->admitted, r, m, from_s, to_s);
}

long fleet_throttled(const struct fleet_result *r, int m, int from_s, int to_s)
{
    return sum(r->throttled, r, m, from_s, to_s);
}

double fleet_fairness(const struct fleet_result *r, int from_s, int to_s)
{
    double total = 0, squares = 0;
    int n = 0;

    for (int i = 0; i < r->members; i++) {
        if (r->start_ms[i] > (int64_t)from_s * 1000 ||
            (r->stop_ms[i] >= 0 && r->stop_ms[i] < (int64_t)to_s * 1000))
            continue;
        double x = (double)fleet_admitted(r, i, from_s, to_s);
        total += x;
        squares += x * x;
        n++;
    }
    return n == 0 || squares == 0 ? 1.0 : total * total / (n * squares);
}

void fleet_print(const char *name, const struct fleet_result *r)
{
    char line[512];

    print_message("%s: second, fleet admitted/throttled, stranger, per member admitted@rate\n",
                  name);
    for (int t = 0; t < r->seconds; t++) {
        int o = snprintf(line, sizeof(line), "  %3d %4ld/%-3ld %3ld |", t,
                         fleet_admitted(r, -1, t, t + 1), fleet_throttled(r, -1, t, t + 1),
                         r->stranger_admitted[t]);

        for (int i = 0; i < r->members && o > 0 && (size_t)o < sizeof(line); i++)
            o += snprintf(line + o, sizeof(line) - (size_t)o, " %3ld@%-5.1f", r->admitted[i][t],
                          r->rate[i][t]);
        print_message("%s\n", line);
    }
}
