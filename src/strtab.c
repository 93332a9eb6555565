/* String-keyed intrusive hash table: chained buckets, doubling and halving with hysteresis. */
#include "clw/strtab.h"

#include <stdlib.h>
#include <string.h>

#include "clw/alloc.h"

uint64_t clw_strtab_hash(const char *s)
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

int clw_strtab_init(struct clw_strtab *t, size_t min_buckets)
{
    t->buckets = clw_calloc(min_buckets, sizeof(*t->buckets));
    t->nbuckets = t->buckets != NULL ? min_buckets : 0;
    t->min_buckets = min_buckets;
    t->count = 0;
    return t->buckets != NULL ? 0 : -1;
}

void clw_strtab_fini(struct clw_strtab *t, void (*dispose)(struct clw_strtab_node *n))
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct clw_strtab_node *n = t->buckets[i];
        while (n != NULL) {
            struct clw_strtab_node *next = n->chain;
            if (dispose != NULL)
                dispose(n);
            n = next;
        }
    }
    free(t->buckets);
    t->buckets = NULL;
    t->nbuckets = t->count = 0;
}

struct clw_strtab_node *clw_strtab_find(const struct clw_strtab *t, const char *key, uint64_t hash)
{
    struct clw_strtab_node *n = t->buckets[hash & (t->nbuckets - 1)];
    while (n != NULL && (n->hash != hash || strcmp(n->key, key) != 0))
        n = n->chain;
    return n;
}

/* Rehashes into nbuckets buckets; on allocation failure the table stays as it is. */
static void resize(struct clw_strtab *t, size_t nbuckets)
{
    struct clw_strtab_node **nb = clw_calloc(nbuckets, sizeof(*nb));
    if (nb == NULL)
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct clw_strtab_node *n = t->buckets[i];
        while (n != NULL) {
            struct clw_strtab_node *next = n->chain;
            size_t b = n->hash & (nbuckets - 1);
            n->chain = nb[b];
            nb[b] = n;
            n = next;
        }
    }
    free(t->buckets);
    t->buckets = nb;
    t->nbuckets = nbuckets;
}

void clw_strtab_insert(struct clw_strtab *t, struct clw_strtab_node *n)
{
    if (t->count >= t->nbuckets && t->nbuckets <= SIZE_MAX / 2 / sizeof(*t->buckets))
        resize(t, t->nbuckets * 2);
    size_t b = n->hash & (t->nbuckets - 1);
    n->chain = t->buckets[b];
    t->buckets[b] = n;
    t->count++;
}

/* Gives memory back after a burst of keys; the hysteresis keeps this amortised O(1). */
static void maybe_shrink(struct clw_strtab *t)
{
    size_t nbuckets = t->nbuckets;
    while (nbuckets > t->min_buckets && t->count < nbuckets / 8)
        nbuckets /= 2;
    if (nbuckets != t->nbuckets)
        resize(t, nbuckets);
}

void clw_strtab_remove(struct clw_strtab *t, struct clw_strtab_node *n)
{
    struct clw_strtab_node **pp = &t->buckets[n->hash & (t->nbuckets - 1)];
    while (*pp != n)
        pp = &(*pp)->chain;
    *pp = n->chain;
    n->chain = NULL;
    t->count--;
    maybe_shrink(t);
}

void clw_strtab_remove_if(struct clw_strtab *t, int (*drop)(struct clw_strtab_node *n, void *arg),
                          void *arg, void (*dispose)(struct clw_strtab_node *n))
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct clw_strtab_node **pp = &t->buckets[i];
        while (*pp != NULL) {
            struct clw_strtab_node *n = *pp;
            if (drop(n, arg)) {
                *pp = n->chain;
                t->count--;
                dispose(n);
            } else {
                pp = &n->chain;
            }
        }
    }
    maybe_shrink(t);
}
