/* Unit tests for gate: scripted scenarios, re-entrancy, a seeded model run, 100 000 keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clw/gate.h"

#define MAX_OPS  16
#define MAX_JOBS 8
#define MAX_KEYS 16

/* ---- scripted scenarios ------------------------------------------------------------------ */

struct gate_op {
    char kind;                 /* 'E' enter, 'L' leave */
    int job;                   /* 1 .. MAX_JOBS - 1 */
    const char *keys;          /* enter: space-separated keys, "" for none */
    int want;                  /* enter: expected return */
    const char *want_ready;    /* leave: jobs announced, ascending ("" for none) */
    const char *want_runnable; /* after the op: every runnable job, ascending */
    size_t want_keys;          /* clw_gate_key_count() after the op */
};

struct gate_scenario {
    const char *name;
    struct gate_op ops[MAX_OPS];
};

#define E(j, k, w, run, nk)                                                                        \
    {                                                                                              \
        'E', (j), (k), (w), NULL, (run), (nk)                                                      \
    }
#define L(j, rdy, run, nk)                                                                         \
    {                                                                                              \
        'L', (j), NULL, 0, (rdy), (run), (nk)                                                      \
    }

static const struct gate_scenario scenarios[] = {
    {"disjoint keys run concurrently",
     {E(1, "a", 1, "1", 1), E(2, "b", 1, "1 2", 2), E(3, "c d", 1, "1 2 3", 4), L(2, "", "1 3", 3),
      L(1, "", "3", 2), L(3, "", "", 0)}},
    {"shared key serialises in entry order",
     {E(1, "x", 1, "1", 1), E(2, "x", 0, "1", 1), E(3, "x", 0, "1", 1), L(1, "2", "2", 1),
      L(2, "3", "3", 1), L(3, "", "", 0)}},
    {"A{x,y} B{y} C{x}: A's leave releases both",
     {E(1, "x y", 1, "1", 2), E(2, "y", 0, "1", 2), E(3, "x", 0, "1", 2), L(1, "2 3", "2 3", 2),
      L(3, "", "2", 1), L(2, "", "", 0)}},
    {"a waiting job holds later jobs on its other key",
     {E(1, "x", 1, "1", 1), E(2, "x y", 0, "1", 2), E(3, "y", 0, "1", 2), L(1, "2", "2", 2),
      L(2, "3", "3", 1), L(3, "", "", 0)}},
    {"leaving a waiting job from the middle",
     {E(1, "x", 1, "1", 1), E(2, "x", 0, "1", 1), E(3, "x", 0, "1", 1), L(2, "", "1", 1),
      L(1, "3", "3", 1), L(3, "", "", 0)}},
    {"leaving a waiting job releases a later job on another key",
     {E(1, "x", 1, "1", 1), E(2, "x y", 0, "1", 2), E(3, "y", 0, "1", 2), L(2, "3", "1 3", 2),
      L(1, "", "3", 1), L(3, "", "", 0)}},
    {"duplicate keys are ignored",
     {E(1, "x x y x", 1, "1", 2), E(2, "x", 0, "1", 2), E(3, "y y", 0, "1", 2),
      L(1, "2 3", "2 3", 2), L(2, "", "3", 1), L(3, "", "", 0)}},
    {"duplicate keys of a waiting job: announced once",
     {E(1, "x", 1, "1", 1), E(2, "y x y x", 0, "1", 2), L(1, "2", "2", 2), L(2, "", "", 0)}},
    {"3-way chain",
     {E(1, "a", 1, "1", 1), E(2, "a b", 0, "1", 2), E(3, "b c", 0, "1", 3), E(4, "c", 0, "1", 3),
      L(1, "2", "2", 3), L(2, "3", "3", 2), L(3, "4", "4", 1), L(4, "", "", 0)}},
    {"both keys released by one leave: announced once",
     {E(1, "x y", 1, "1", 2), E(2, "y x", 0, "1", 2), L(1, "2", "2", 2), L(2, "", "", 0)}},
    {"released in two steps",
     {E(1, "x", 1, "1", 1), E(2, "y", 1, "1 2", 2), E(3, "x y", 0, "1 2", 2), L(1, "", "2", 2),
      L(2, "3", "3", 2), L(3, "", "", 0)}},
    {"already runnable jobs are not announced again",
     {E(1, "x", 1, "1", 1), E(2, "y", 1, "1 2", 2), E(3, "x", 0, "1 2", 2),
      E(4, "x y", 0, "1 2", 2), L(1, "3", "2 3", 2), L(2, "", "3", 2), L(3, "4", "4", 2),
      L(4, "", "", 0)}},
    {"no keys never waits",
     {E(1, "", 1, "1", 0), E(2, "", 1, "1 2", 0), E(3, "k", 1, "1 2 3", 1), L(1, "", "2 3", 1),
      L(2, "", "3", 1), L(3, "", "", 0)}},
    {"a key is reused after its queue emptied",
     {E(1, "x", 1, "1", 1), L(1, "", "", 0), E(2, "x", 1, "2", 1), E(3, "x", 0, "2", 1),
      L(2, "3", "3", 1), L(3, "", "", 0)}},
    {"leaving the last waiter keeps the holder",
     {E(1, "x y", 1, "1", 2), E(2, "y", 0, "1", 2), L(2, "", "1", 2), L(1, "", "", 0)}},
};

struct recorder {
    int announced[64];
    size_t n;
    int *job_base;
};

static int jobs[MAX_JOBS + 64];

static void record_ready(void *job, void *arg)
{
    struct recorder *rec = arg;

    assert_true(rec->n < sizeof(rec->announced) / sizeof(rec->announced[0]));
    rec->announced[rec->n++] = (int)((int *)job - rec->job_base);
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a;
    int y = *(const int *)b;

    return (x > y) - (x < y);
}

/* Formats ascending ids as "1 2 3". */
static void format_ids(const int *ids, size_t n, char *out, size_t outlen)
{
    size_t i;
    size_t used = 0;

    out[0] = '\0';
    for (i = 0; i < n && used < outlen; i++)
        used += (size_t)snprintf(out + used, outlen - used, i ? " %d" : "%d", ids[i]);
}

/* Splits "a b c" into keys stored in buf. */
static size_t split_keys(const char *s, char buf[MAX_KEYS][16], const char *keys[MAX_KEYS])
{
    size_t n = 0;

    while (*s != '\0') {
        size_t len = strcspn(s, " ");

        if (len > 0) {
            assert_true(n < MAX_KEYS && len < 16);
            memcpy(buf[n], s, len);
            buf[n][len] = '\0';
            keys[n] = buf[n];
            n++;
        }
        s += len;
        s += strspn(s, " ");
    }
    return n;
}

static void run_scenario(const struct gate_scenario *sc)
{
    struct clw_gate *g = clw_gate_new();
    struct clw_gate_ticket *tickets[MAX_JOBS] = {NULL};
    int runnable[MAX_JOBS] = {0};
    size_t i;

    assert_non_null(g);
    for (i = 0; i < MAX_OPS && sc->ops[i].kind != 0; i++) {
        const struct gate_op *op = &sc->ops[i];
        struct recorder rec = {.n = 0, .job_base = jobs};
        int ids[MAX_JOBS];
        size_t nids = 0;
        char got[64];
        size_t k;
        int j;

        if (op->kind == 'E') {
            char buf[MAX_KEYS][16];
            const char *keys[MAX_KEYS];
            size_t nkeys = split_keys(op->keys, buf, keys);
            int ret = clw_gate_enter(g, &jobs[op->job], keys, nkeys, &tickets[op->job]);

            if (ret != op->want)
                fail_msg("%s: op %zu enter %d returned %d want %d", sc->name, i, op->job, ret,
                         op->want);
            runnable[op->job] = ret == 1;
        } else {
            clw_gate_leave(g, tickets[op->job], record_ready, &rec);
            tickets[op->job] = NULL;
            runnable[op->job] = 0;
            for (k = 0; k < rec.n; k++) {
                int id = rec.announced[k];

                if (id <= 0 || id >= MAX_JOBS || tickets[id] == NULL)
                    fail_msg("%s: op %zu announced unknown job %d", sc->name, i, id);
                if (runnable[id])
                    fail_msg("%s: op %zu announced job %d twice or while runnable", sc->name, i,
                             id);
                runnable[id] = 1;
            }
            qsort(rec.announced, rec.n, sizeof(rec.announced[0]), cmp_int);
            format_ids(rec.announced, rec.n, got, sizeof(got));
            if (strcmp(got, op->want_ready) != 0)
                fail_msg("%s: op %zu leave %d announced \"%s\" want \"%s\"", sc->name, i, op->job,
                         got, op->want_ready);
        }
        for (j = 1; j < MAX_JOBS; j++) {
            if (runnable[j])
                ids[nids++] = j;
        }
        format_ids(ids, nids, got, sizeof(got));
        if (strcmp(got, op->want_runnable) != 0)
            fail_msg("%s: op %zu runnable \"%s\" want \"%s\"", sc->name, i, got, op->want_runnable);
        if (clw_gate_key_count(g) != op->want_keys)
            fail_msg("%s: op %zu key count %zu want %zu", sc->name, i, clw_gate_key_count(g),
                     op->want_keys);
    }
    clw_gate_free(g);
}

static void test_gate_scenarios(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
        run_scenario(&scenarios[i]);
}

/* ---- re-entrant callbacks ----------------------------------------------------------------- */

struct reentry {
    struct clw_gate *g;
    struct clw_gate_ticket *t[MAX_JOBS];
    int announced[MAX_JOBS];
};

/* Job 2's announcement leaves job 3 (announced by the same leave, not yet told) and enters
 * job 4 on key x behind job 2. */
static void reentrant_ready(void *job, void *arg)
{
    struct reentry *re = arg;
    int id = (int)((int *)job - jobs);
    static const char *const x[] = {"x"};

    re->announced[id]++;
    if (id == 2) {
        clw_gate_leave(re->g, re->t[3], reentrant_ready, re);
        re->t[3] = NULL;
        assert_int_equal(clw_gate_enter(re->g, &jobs[4], x, 1, &re->t[4]), 0);
    }
}

static void test_gate_reentrant_callback(void **state)
{
    static const char *const xy[] = {"x", "y"};
    static const char *const x[] = {"x"};
    static const char *const y[] = {"y"};
    struct reentry re;

    (void)state;
    memset(&re, 0, sizeof(re));
    re.g = clw_gate_new();
    assert_non_null(re.g);
    assert_int_equal(clw_gate_enter(re.g, &jobs[1], xy, 2, &re.t[1]), 1);
    assert_int_equal(clw_gate_enter(re.g, &jobs[2], x, 1, &re.t[2]), 0);
    assert_int_equal(clw_gate_enter(re.g, &jobs[3], y, 1, &re.t[3]), 0);
    /* Leaving 1 makes 2 (key x) and 3 (key y) runnable, in key order: 2 first. */
    clw_gate_leave(re.g, re.t[1], reentrant_ready, &re);
    assert_int_equal(re.announced[2], 1);
    assert_int_equal(re.announced[3], 0); /* left before its announcement */
    assert_int_equal(re.announced[4], 0);
    assert_int_equal(clw_gate_key_count(re.g), 1); /* y emptied with job 3 */
    clw_gate_leave(re.g, re.t[2], reentrant_ready, &re);
    assert_int_equal(re.announced[4], 1);
    clw_gate_leave(re.g, re.t[4], reentrant_ready, &re);
    assert_int_equal(clw_gate_key_count(re.g), 0);
    clw_gate_free(re.g);
}

/* Leaving an announced job right inside its own announcement (synchronous completion). */
static void complete_at_once(void *job, void *arg)
{
    struct reentry *re = arg;
    int id = (int)((int *)job - jobs);

    re->announced[id]++;
    clw_gate_leave(re->g, re->t[id], complete_at_once, re);
    re->t[id] = NULL;
}

static void test_gate_synchronous_completion(void **state)
{
    static const char *const x[] = {"x"};
    struct reentry re;
    int j;

    (void)state;
    memset(&re, 0, sizeof(re));
    re.g = clw_gate_new();
    assert_non_null(re.g);
    for (j = 1; j < MAX_JOBS; j++)
        assert_int_equal(clw_gate_enter(re.g, &jobs[j], x, 1, &re.t[j]), j == 1);
    clw_gate_leave(re.g, re.t[1], complete_at_once, &re);
    for (j = 2; j < MAX_JOBS; j++)
        assert_int_equal(re.announced[j], 1);
    assert_int_equal(clw_gate_key_count(re.g), 0);
    clw_gate_free(re.g);
}

/* A NULL key in the middle fails the enter and leaves nothing behind. */
static void test_gate_enter_failure_rolls_back(void **state)
{
    const char *bad[] = {"x", "new", NULL, "y"};
    static const char *const x[] = {"x"};
    struct clw_gate *g = clw_gate_new();
    struct clw_gate_ticket *t1 = NULL;
    struct clw_gate_ticket *t2 = NULL;
    struct clw_gate_ticket *t3 = NULL;
    struct recorder rec = {.n = 0, .job_base = jobs};

    (void)state;
    assert_non_null(g);
    assert_int_equal(clw_gate_enter(g, &jobs[1], x, 1, &t1), 1);
    assert_int_equal(clw_gate_enter(g, &jobs[2], bad, 4, &t2), -1);
    assert_null(t2);
    assert_int_equal(clw_gate_key_count(g), 1);
    assert_int_equal(clw_gate_enter(g, &jobs[3], x, 1, &t3), 0);
    clw_gate_leave(g, t1, record_ready, &rec);
    assert_int_equal(rec.n, 1);
    assert_int_equal(rec.announced[0], 3);
    clw_gate_leave(g, t3, record_ready, &rec);
    assert_int_equal(clw_gate_key_count(g), 0);
    assert_int_equal(clw_gate_enter(NULL, &jobs[1], x, 1, &t1), -1);
    assert_int_equal(clw_gate_enter(g, &jobs[1], NULL, 1, &t1), -1);
    clw_gate_free(g);
}

/* ---- seeded random run against a reference model ------------------------------------------ */

#define RND_MAX_ACTIVE 24
#define RND_POOL       10
#define RND_MAX_KEYS   4
#define RND_OPS        6000

struct model_job {
    int id; /* index into jobs_rnd */
    int keys[RND_MAX_KEYS];
    int nkeys;
    struct clw_gate_ticket *t;
    int runnable; /* as told by the gate: enter returned 1, or announced */
};

static int jobs_rnd[RND_OPS + 1];

/* xorshift64: the test's own seeded generator (seed must be non-zero). */
static uint64_t test_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

struct rnd_state {
    struct model_job active[RND_MAX_ACTIVE]; /* in entry order */
    int n;
    int announced[RND_MAX_ACTIVE];
    int nannounced;
};

static int share_key(const struct model_job *a, const struct model_job *b)
{
    int i;
    int j;

    for (i = 0; i < a->nkeys; i++) {
        for (j = 0; j < b->nkeys; j++) {
            if (a->keys[i] == b->keys[j])
                return 1;
        }
    }
    return 0;
}

/* The model: a job may run when no earlier active job shares a key with it (FIFO per key). */
static int model_runnable(const struct rnd_state *st, int i)
{
    int j;

    for (j = 0; j < i; j++) {
        if (share_key(&st->active[j], &st->active[i]))
            return 0;
    }
    return 1;
}

static void rnd_ready(void *job, void *arg)
{
    struct rnd_state *st = arg;

    assert_true(st->nannounced < RND_MAX_ACTIVE);
    st->announced[st->nannounced++] = (int)((int *)job - jobs_rnd);
}

static size_t model_key_count(const struct rnd_state *st)
{
    int seen[RND_POOL] = {0};
    size_t n = 0;
    int i;
    int k;

    for (i = 0; i < st->n; i++) {
        for (k = 0; k < st->active[i].nkeys; k++) {
            if (!seen[st->active[i].keys[k]]) {
                seen[st->active[i].keys[k]] = 1;
                n++;
            }
        }
    }
    return n;
}

static void check_model(const struct rnd_state *st, int op, const struct clw_gate *g)
{
    int i;
    int j;

    for (i = 0; i < st->n; i++) {
        int want = model_runnable(st, i);

        if (st->active[i].runnable != want)
            fail_msg("op %d: job %d runnable %d, model says %d", op, st->active[i].id,
                     st->active[i].runnable, want);
        /* The invariant on its own, independent of the model. */
        for (j = i + 1; j < st->n && st->active[i].runnable; j++) {
            if (st->active[j].runnable && share_key(&st->active[i], &st->active[j]))
                fail_msg("op %d: runnable jobs %d and %d share a key", op, st->active[i].id,
                         st->active[j].id);
        }
    }
    if (clw_gate_key_count(g) != model_key_count(st))
        fail_msg("op %d: key count %zu, model %zu", op, clw_gate_key_count(g), model_key_count(st));
}

static void test_gate_random_against_model(void **state)
{
    static const char *const pool[RND_POOL] = {"ins-0", "ins-1", "ins-2", "ins-3", "ins-4",
                                               "ins-5", "ins-6", "ins-7", "ins-8", "ins-9"};
    struct rnd_state st;
    struct clw_gate *g = clw_gate_new();
    uint64_t seed = 20261125;
    int next_id = 1;
    int announcements = 0;
    int waiting_leaves = 0;
    int op;

    (void)state;
    memset(&st, 0, sizeof(st));
    assert_non_null(g);
    for (op = 0; op < RND_OPS; op++) {
        uint64_t r = test_rand(&seed);
        int enter = st.n == 0 || (st.n < RND_MAX_ACTIVE && r % 100 < 55);

        if (enter) {
            struct model_job *m = &st.active[st.n];
            const char *keys[RND_MAX_KEYS + 1];
            int raw = 1 + (int)(test_rand(&seed) % (RND_MAX_KEYS + 1)); /* may repeat */
            int k;
            int ret;

            memset(m, 0, sizeof(*m));
            m->id = next_id++;
            for (k = 0; k < raw; k++) {
                int key = (int)(test_rand(&seed) % RND_POOL);
                int dup = 0;
                int d;

                keys[k] = pool[key];
                for (d = 0; d < m->nkeys; d++)
                    dup |= m->keys[d] == key;
                if (!dup && m->nkeys < RND_MAX_KEYS)
                    m->keys[m->nkeys++] = key;
                else if (!dup)
                    keys[k] = pool[m->keys[0]]; /* keep the model's key set exact */
            }
            ret = clw_gate_enter(g, &jobs_rnd[m->id], keys, (size_t)raw, &m->t);
            assert_true(ret == 0 || ret == 1);
            m->runnable = ret;
            st.n++;
        } else {
            int victim = (int)(test_rand(&seed) % (uint64_t)st.n);
            int i;
            int a;

            /* Mostly a running job finishes; otherwise any job, waiting ones included, leaves. */
            if (test_rand(&seed) % 10 < 7) {
                for (i = 0; i < st.n; i++) {
                    if (st.active[(victim + i) % st.n].runnable)
                        break;
                }
                victim = (victim + i) % st.n;
            }
            if (!st.active[victim].runnable)
                waiting_leaves++;

            st.nannounced = 0;
            clw_gate_leave(g, st.active[victim].t, rnd_ready, &st);
            memmove(&st.active[victim], &st.active[victim + 1],
                    (size_t)(st.n - victim - 1) * sizeof(st.active[0]));
            st.n--;
            for (a = 0; a < st.nannounced; a++) {
                int found = 0;

                for (i = 0; i < st.n; i++) {
                    if (st.active[i].id == st.announced[a]) {
                        if (st.active[i].runnable)
                            fail_msg("op %d: job %d announced while runnable", op, st.announced[a]);
                        st.active[i].runnable = 1;
                        found = 1;
                    }
                }
                if (!found)
                    fail_msg("op %d: announced job %d is not active", op, st.announced[a]);
            }
            announcements += st.nannounced;
        }
        check_model(&st, op, g);
    }
    while (st.n > 0) {
        st.nannounced = 0;
        clw_gate_leave(g, st.active[st.n - 1].t, rnd_ready, &st);
        st.n--;
    }
    assert_int_equal(clw_gate_key_count(g), 0);
    /* Contention actually happened, and waiting jobs left too. */
    if (announcements < RND_OPS / 10 || waiting_leaves < RND_OPS / 20)
        fail_msg("too little contention: %d announcements, %d waiting leaves", announcements,
                 waiting_leaves);
    clw_gate_free(g);
}

/* ---- scale: 100 000 distinct keys, 1 000 keys per job ------------------------------------- */

#define SCALE_JOBS     100
#define SCALE_PER_JOB  1000
#define SCALE_KEY_SIZE 16

static void test_gate_scale(void **state)
{
    struct clw_gate *g = clw_gate_new();
    char(*names)[SCALE_KEY_SIZE] = malloc((size_t)SCALE_JOBS * SCALE_PER_JOB * SCALE_KEY_SIZE);
    const char **keys = malloc((size_t)SCALE_JOBS * SCALE_PER_JOB * sizeof(*keys));
    struct clw_gate_ticket **first = calloc(SCALE_JOBS, sizeof(*first));
    struct clw_gate_ticket **second = calloc(SCALE_JOBS, sizeof(*second));
    static int scale_jobs[2 * SCALE_JOBS];
    struct recorder rec = {.n = 0, .job_base = scale_jobs};
    int i;

    (void)state;
    assert_non_null(g);
    assert_non_null(names);
    assert_non_null(keys);
    assert_non_null(first);
    assert_non_null(second);
    for (i = 0; i < SCALE_JOBS * SCALE_PER_JOB; i++) {
        snprintf(names[i], SCALE_KEY_SIZE, "ins-%08x", (unsigned)i * 2654435761u);
        keys[i] = names[i];
    }
    /* 100 jobs on disjoint key sets: all run at once. */
    for (i = 0; i < SCALE_JOBS; i++)
        assert_int_equal(
            clw_gate_enter(g, &scale_jobs[i], &keys[i * SCALE_PER_JOB], SCALE_PER_JOB, &first[i]),
            1);
    assert_int_equal(clw_gate_key_count(g), SCALE_JOBS * SCALE_PER_JOB);
    /* A second wave on the same keys, each job's keys in reverse order: all wait. */
    for (i = 0; i < SCALE_JOBS; i++) {
        const char *rev[SCALE_PER_JOB];
        int k;

        for (k = 0; k < SCALE_PER_JOB; k++)
            rev[k] = keys[i * SCALE_PER_JOB + SCALE_PER_JOB - 1 - k];
        assert_int_equal(
            clw_gate_enter(g, &scale_jobs[SCALE_JOBS + i], rev, SCALE_PER_JOB, &second[i]), 0);
    }
    assert_int_equal(clw_gate_key_count(g), SCALE_JOBS * SCALE_PER_JOB);
    /* Each first-wave leave announces exactly its successor. */
    for (i = 0; i < SCALE_JOBS; i++) {
        rec.n = 0;
        clw_gate_leave(g, first[i], record_ready, &rec);
        assert_int_equal(rec.n, 1);
        assert_int_equal(rec.announced[0], SCALE_JOBS + i);
    }
    for (i = 0; i < SCALE_JOBS; i++) {
        rec.n = 0;
        clw_gate_leave(g, second[i], record_ready, &rec);
        assert_int_equal(rec.n, 0);
    }
    assert_int_equal(clw_gate_key_count(g), 0);
    clw_gate_free(g);
    free(second);
    free(first);
    free(keys);
    free(names);
}

/* A long queue on one key, emptied from the middle outwards: O(1) removal per key. */
static void test_gate_long_queue_middle_removal(void **state)
{
    enum { N = 20000 };
    static int qjobs[N];
    static struct clw_gate_ticket *t[N];
    static const char *const x[] = {"x"};
    struct clw_gate *g = clw_gate_new();
    struct recorder rec = {.n = 0, .job_base = qjobs};
    int i;

    (void)state;
    assert_non_null(g);
    for (i = 0; i < N; i++)
        assert_int_equal(clw_gate_enter(g, &qjobs[i], x, 1, &t[i]), i == 0);
    for (i = N - 1; i >= 1; i--)
        clw_gate_leave(g, t[i], record_ready, &rec); /* waiting ones: nothing announced */
    assert_int_equal(rec.n, 0);
    assert_int_equal(clw_gate_key_count(g), 1);
    clw_gate_leave(g, t[0], record_ready, &rec);
    assert_int_equal(rec.n, 0);
    assert_int_equal(clw_gate_key_count(g), 0);
    clw_gate_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gate_scenarios),
        cmocka_unit_test(test_gate_reentrant_callback),
        cmocka_unit_test(test_gate_synchronous_completion),
        cmocka_unit_test(test_gate_enter_failure_rolls_back),
        cmocka_unit_test(test_gate_random_against_model),
        cmocka_unit_test(test_gate_scale),
        cmocka_unit_test(test_gate_long_queue_middle_removal),
    };

    return cmocka_run_group_tests_name("gate", tests, NULL, NULL);
}
