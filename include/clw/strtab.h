/* String-keyed hash table, intrusive and chained: the owner embeds a node in each entry and
 * keeps ownership of the entries. Single-threaded; O(1) expected per operation. */
#ifndef CLW_STRTAB_H
#define CLW_STRTAB_H

#include <stddef.h>
#include <stdint.h>

/* Embedded in an entry. key points into the entry and must not change while it is in a table. */
struct clw_strtab_node {
    struct clw_strtab_node *chain;
    uint64_t hash;
    const char *key;
};

struct clw_strtab {
    struct clw_strtab_node **buckets;
    size_t nbuckets; /* a power of two, never below min_buckets */
    size_t min_buckets;
    size_t count;
};

/* FNV-1a followed by a 64-bit finaliser, so the bucket index (low bits) depends on every byte.
 * Not seeded: keys here are validated ids and configuration values. */
uint64_t clw_strtab_hash(const char *s);

/* min_buckets must be a power of two. Returns 0, or -1 on allocation failure. */
int clw_strtab_init(struct clw_strtab *t, size_t min_buckets);
/* Frees the table; dispose (may be NULL) is called for every entry still in it. */
void clw_strtab_fini(struct clw_strtab *t, void (*dispose)(struct clw_strtab_node *n));

struct clw_strtab_node *clw_strtab_find(const struct clw_strtab *t, const char *key, uint64_t hash);
/* Adds n (hash and key set by the caller; the key must not be in the table yet). Grows the
 * table when it is as full as it has buckets; a failed growth only makes chains longer. */
void clw_strtab_insert(struct clw_strtab *t, struct clw_strtab_node *n);
/* Unlinks n (which must be in the table). Shrinks after a burst of keys has gone. */
void clw_strtab_remove(struct clw_strtab *t, struct clw_strtab_node *n);
/* Unlinks every entry for which drop(n, arg) returns 1, then calls dispose(n) on it. */
void clw_strtab_remove_if(struct clw_strtab *t, int (*drop)(struct clw_strtab_node *n, void *arg),
                          void *arg, void (*dispose)(struct clw_strtab_node *n));

#endif
