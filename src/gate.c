/* Per-resource gate: a FIFO per key in a chained hash table, O(keys of the job) per call. */
#include "clw/gate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clw/alloc.h"
#include "clw/strtab.h"

#define GATE_MIN_BUCKETS 64

struct gate_queue;

/* One ticket's place in one key's queue. */
struct gate_node {
    struct gate_node *prev;
    struct gate_node *next;
    struct gate_queue *q;
    struct clw_gate_ticket *t;
};

/* The FIFO of one key; exists only while non-empty. In the table by its node. */
struct gate_queue {
    struct clw_strtab_node node; /* first: a node is its queue */
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
    struct clw_strtab queues; /* key -> struct gate_queue */
};

static struct gate_queue *gate_find(const struct clw_gate *g, const char *key, uint64_t hash)
{
    return (struct gate_queue *)clw_strtab_find(&g->queues, key, hash);
}

/* Unlinks q from the table and frees it (it must be empty). */
static void gate_remove(struct clw_gate *g, struct gate_queue *q)
{
    clw_strtab_remove(&g->queues, &q->node);
    free(q);
}

static struct gate_queue *gate_queue_new(const char *key, uint64_t hash)
{
    size_t len = strlen(key);
    struct gate_queue *q = NULL;

    if (len < SIZE_MAX - sizeof(*q))
        q = clw_malloc(sizeof(*q) + len + 1);
    if (q == NULL)
        return NULL;
    q->node.chain = NULL;
    q->node.hash = hash;
    q->head = NULL;
    q->tail = NULL;
    memcpy(q->key, key, len + 1);
    q->node.key = q->key;
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
    struct clw_gate *g = clw_calloc(1, sizeof(*g));

    if (g == NULL || clw_strtab_init(&g->queues, GATE_MIN_BUCKETS) != 0) {
        free(g);
        return NULL;
    }
    return g;
}

static void gate_queue_dispose(struct clw_strtab_node *n)
{
    free(n);
}

void clw_gate_free(struct clw_gate *g)
{
    if (g == NULL)
        return;
    /* Tickets still inside belong to the caller; only the queues are ours. */
    clw_strtab_fini(&g->queues, gate_queue_dispose);
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
    t = clw_calloc(1, sizeof(*t) + n * sizeof(t->nodes[0]));
    if (t == NULL)
        goto fail;
    t->job = job;
    for (i = 0; i < n; i++) {
        struct gate_queue *q;
        struct gate_node *node;
        uint64_t hash;

        if (keys[i] == NULL)
            goto fail;
        hash = clw_strtab_hash(keys[i]);
        q = gate_find(g, keys[i], hash);
        if (q == NULL) {
            q = gate_queue_new(keys[i], hash);
            if (q == NULL)
                goto fail;
            clw_strtab_insert(&g->queues, &q->node);
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
    return g != NULL ? g->queues.count : 0;
}
