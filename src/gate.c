/* Per-resource gate: a FIFO per key in a chained hash table, O(keys of the job) per call. */
#include "clw/gate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GATE_MIN_BUCKETS 64

struct gate_queue;

/* One ticket's place in one key's queue. */
struct gate_node {
    struct gate_node *prev;
    struct gate_node *next;
    struct gate_queue *q;
    struct clw_gate_ticket *t;
};

/* The FIFO of one key; exists only while non-empty. Chained in its hash bucket. */
struct gate_queue {
    struct gate_queue *chain;
    uint64_t hash;
    struct gate_node *head;
    struct gate_node *tail;
    char key[]; /* the copied key */
};

struct clw_gate_ticket {
    void *job;
    size_t blocked; /* queues where this ticket is not the head; runnable at 0 */
    size_t n;       /* used entries of nodes (distinct keys) */
    /* While a leave is about to announce this ticket it sits on that leave's list. A leave of
     * the ticket from inside a ready callback then only marks it, and the announcing loop
     * frees it instead of announcing it. */
    struct clw_gate_ticket *ready_next;
    int pending;
    int left;
    struct gate_node nodes[];
};

struct clw_gate {
    struct gate_queue **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;    /* queues (distinct keys) in the table */
};

/* FNV-1a followed by a 64-bit finaliser so the low bits (the bucket index) depend on every
 * byte. Keys are validated instance ids, so no seeding against flooding is attempted. */
static uint64_t gate_hash(const char *s)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);

    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(0x100000001b3);
    }
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    return h;
}

static struct gate_queue *gate_find(const struct clw_gate *g, const char *key, uint64_t hash)
{
    struct gate_queue *q = g->buckets[hash & (g->nbuckets - 1)];

    while (q != NULL && (q->hash != hash || strcmp(q->key, key) != 0))
        q = q->chain;
    return q;
}

/* Rehashes into nbuckets buckets. On allocation failure the table stays as it is (chains only
 * get longer), so callers need not care. */
static void gate_resize(struct clw_gate *g, size_t nbuckets)
{
    struct gate_queue **nb = calloc(nbuckets, sizeof(*nb));
    size_t i;

    if (nb == NULL)
        return;
    for (i = 0; i < g->nbuckets; i++) {
        struct gate_queue *q = g->buckets[i];

        while (q != NULL) {
            struct gate_queue *next = q->chain;
            size_t b = q->hash & (nbuckets - 1);

            q->chain = nb[b];
            nb[b] = q;
            q = next;
        }
    }
    free(g->buckets);
    g->buckets = nb;
    g->nbuckets = nbuckets;
}

static void gate_insert(struct clw_gate *g, struct gate_queue *q)
{
    size_t b;

    if (g->count >= g->nbuckets && g->nbuckets <= SIZE_MAX / 2 / sizeof(*g->buckets))
        gate_resize(g, g->nbuckets * 2);
    b = q->hash & (g->nbuckets - 1);
    q->chain = g->buckets[b];
    g->buckets[b] = q;
    g->count++;
}

/* Unlinks q from the table and frees it (it must be empty). */
static void gate_remove(struct clw_gate *g, struct gate_queue *q)
{
    struct gate_queue **pp = &g->buckets[q->hash & (g->nbuckets - 1)];

    while (*pp != q)
        pp = &(*pp)->chain;
    *pp = q->chain;
    g->count--;
    free(q);
    /* Give memory back after a burst of keys; the hysteresis keeps this amortised O(1). */
    if (g->nbuckets > GATE_MIN_BUCKETS && g->count < g->nbuckets / 8)
        gate_resize(g, g->nbuckets / 2);
}

static struct gate_queue *gate_queue_new(const char *key, uint64_t hash)
{
    size_t len = strlen(key);
    struct gate_queue *q = NULL;

    if (len < SIZE_MAX - sizeof(*q))
        q = malloc(sizeof(*q) + len + 1);
    if (q == NULL)
        return NULL;
    q->chain = NULL;
    q->hash = hash;
    q->head = NULL;
    q->tail = NULL;
    memcpy(q->key, key, len + 1);
    return q;
}

static void gate_append(struct gate_queue *q, struct gate_node *node)
{
    node->next = NULL;
    node->prev = q->tail;
    if (q->tail != NULL)
        q->tail->next = node;
    else
        q->head = node;
    q->tail = node;
}

static void gate_unlink(struct gate_queue *q, struct gate_node *node)
{
    if (node->prev != NULL)
        node->prev->next = node->next;
    else
        q->head = node->next;
    if (node->next != NULL)
        node->next->prev = node->prev;
    else
        q->tail = node->prev;
    node->prev = NULL;
    node->next = NULL;
}

struct clw_gate *clw_gate_new(void)
{
    struct clw_gate *g = calloc(1, sizeof(*g));

    if (g == NULL)
        goto fail;
    g->buckets = calloc(GATE_MIN_BUCKETS, sizeof(*g->buckets));
    if (g->buckets == NULL)
        goto fail;
    g->nbuckets = GATE_MIN_BUCKETS;
    return g;
fail:
    free(g);
    return NULL;
}

void clw_gate_free(struct clw_gate *g)
{
    size_t i;

    if (g == NULL)
        return;
    /* Tickets still inside belong to the caller; only the queues are ours. */
    for (i = 0; i < g->nbuckets; i++) {
        struct gate_queue *q = g->buckets[i];

        while (q != NULL) {
            struct gate_queue *next = q->chain;

            free(q);
            q = next;
        }
    }
    free(g->buckets);
    free(g);
}

/* Takes the first used nodes of t out of their queues again (they are all tails, so nobody
 * else's position changes) and frees queues that became empty. */
static void gate_rollback(struct clw_gate *g, struct clw_gate_ticket *t)
{
    size_t i;

    for (i = t->n; i > 0; i--) {
        struct gate_node *node = &t->nodes[i - 1];
        struct gate_queue *q = node->q;

        gate_unlink(q, node);
        if (q->head == NULL)
            gate_remove(g, q);
    }
    t->n = 0;
}

int clw_gate_enter(struct clw_gate *g, void *job, const char *const *keys, size_t n,
                   struct clw_gate_ticket **ticket)
{
    struct clw_gate_ticket *t = NULL;
    size_t i;
    int ret = -1;

    if (g == NULL || ticket == NULL || (n > 0 && keys == NULL))
        goto fail;
    if (n > (SIZE_MAX - sizeof(*t)) / sizeof(t->nodes[0]))
        goto fail;
    t = calloc(1, sizeof(*t) + n * sizeof(t->nodes[0]));
    if (t == NULL)
        goto fail;
    t->job = job;
    for (i = 0; i < n; i++) {
        struct gate_queue *q;
        struct gate_node *node;
        uint64_t hash;

        if (keys[i] == NULL)
            goto fail;
        hash = gate_hash(keys[i]);
        q = gate_find(g, keys[i], hash);
        if (q == NULL) {
            q = gate_queue_new(keys[i], hash);
            if (q == NULL)
                goto fail;
            gate_insert(g, q);
        } else if (q->tail->t == t) {
            continue; /* a duplicate key of this ticket: we are already its tail */
        }
        node = &t->nodes[t->n++];
        node->q = q;
        node->t = t;
        gate_append(q, node);
        if (q->head != node)
            t->blocked++;
    }
    *ticket = t;
    ret = t->blocked == 0 ? 1 : 0;
    t = NULL; /* the ticket now belongs to the caller and the queues */
fail:
    if (t != NULL) {
        gate_rollback(g, t);
        free(t);
    }
    return ret;
}

void clw_gate_leave(struct clw_gate *g, struct clw_gate_ticket *t, clw_gate_ready_fn *ready,
                    void *arg)
{
    struct clw_gate_ticket *list = NULL;
    struct clw_gate_ticket **tailp = &list;
    size_t i;

    if (g == NULL || t == NULL || t->left)
        return;
    for (i = 0; i < t->n; i++) {
        struct gate_node *node = &t->nodes[i];
        struct gate_queue *q = node->q;
        int was_head = q->head == node;

        gate_unlink(q, node);
        if (q->head == NULL) {
            gate_remove(g, q);
        } else if (was_head) {
            struct clw_gate_ticket *next = q->head->t;

            /* A ticket's blocked count only ever falls, one step per queue it comes to head,
             * so it reaches 0 exactly once: each job is announced exactly once. */
            next->blocked--;
            if (next->blocked == 0) {
                next->pending = 1;
                next->ready_next = NULL;
                *tailp = next;
                tailp = &next->ready_next;
            }
        }
    }
    t->n = 0;
    if (t->pending)
        t->left = 1; /* left from a ready callback before its announcement: freed below */
    else
        free(t);

    /* Announce only now, with the table consistent, so ready() may enter and leave. */
    while (list != NULL) {
        struct clw_gate_ticket *r = list;

        list = r->ready_next;
        r->pending = 0;
        if (r->left)
            free(r);
        else if (ready != NULL)
            ready(r->job, arg);
    }
}

size_t clw_gate_key_count(const struct clw_gate *g)
{
    return g != NULL ? g->count : 0;
}
