/* vpc-sim: replay protection, the set of (SecretId, Nonce) pairs seen within the window. */
#include "sim_nonce.h"

#include <stdlib.h>
#include <string.h>

static size_t bucket_of(const struct clw_sim_nonces *nonces, uint32_t cred, uint64_t nonce)
{
    uint64_t h = nonce ^ ((uint64_t)cred << 56);

    /* splitmix64 finaliser: nonces are often sequential or random; either spreads well. */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return (size_t)h & (nonces->cap - 1);
}

static void link_node(struct clw_sim_nonces *nonces, size_t idx)
{
    struct clw_sim_nonce_node *node = &nonces->ring[idx];
    size_t b = bucket_of(nonces, node->cred, node->nonce);

    node->next = nonces->buckets[b];
    nonces->buckets[b] = (uint32_t)idx;
}

static void drop_oldest(struct clw_sim_nonces *nonces)
{
    struct clw_sim_nonce_node *node = &nonces->ring[nonces->head];
    uint32_t *link = &nonces->buckets[bucket_of(nonces, node->cred, node->nonce)];

    while (*link != (uint32_t)nonces->head)
        link = &nonces->ring[*link].next;
    *link = node->next;
    nonces->head = (nonces->head + 1) & (nonces->cap - 1);
    nonces->count--;
}

/* Doubles the ring, moving the nodes to its start in age order, and rebuilds the buckets. */
static int grow(struct clw_sim_nonces *nonces)
{
    size_t cap = nonces->cap == 0 ? 1024 : nonces->cap * 2;
    struct clw_sim_nonce_node *ring;
    uint32_t *buckets;

    if (cap > CLW_SIM_NONCE_NIL)
        return -1;
    ring = malloc(cap * sizeof(*ring));
    buckets = malloc(cap * sizeof(*buckets));
    if (ring == NULL || buckets == NULL) {
        free(ring);
        free(buckets);
        return -1;
    }
    for (size_t i = 0; i < nonces->count; i++)
        ring[i] = nonces->ring[(nonces->head + i) & (nonces->cap - 1)];
    memset(buckets, 0xff, cap * sizeof(*buckets));
    free(nonces->ring);
    free(nonces->buckets);
    nonces->ring = ring;
    nonces->buckets = buckets;
    nonces->cap = cap;
    nonces->head = 0;
    for (size_t i = 0; i < nonces->count; i++)
        link_node(nonces, i);
    return 0;
}

bool clw_sim_nonces_use(struct clw_sim_nonces *nonces, uint32_t cred, uint64_t nonce, int64_t now,
                        int64_t expires)
{
    size_t idx;

    while (nonces->count > 0 && nonces->ring[nonces->head].expires < now)
        drop_oldest(nonces);
    if (nonces->cap > 0) {
        for (uint32_t i = nonces->buckets[bucket_of(nonces, cred, nonce)]; i != CLW_SIM_NONCE_NIL;
             i = nonces->ring[i].next) {
            const struct clw_sim_nonce_node *node = &nonces->ring[i];

            if (node->nonce == nonce && node->cred == cred && node->expires >= now)
                return false;
        }
    }
    if (nonces->count == nonces->cap && grow(nonces) != 0)
        return true;
    idx = (nonces->head + nonces->count) & (nonces->cap - 1);
    nonces->ring[idx].nonce = nonce;
    nonces->ring[idx].cred = cred;
    nonces->ring[idx].expires = expires;
    link_node(nonces, idx);
    nonces->count++;
    return true;
}

void clw_sim_nonces_clear(struct clw_sim_nonces *nonces)
{
    if (nonces->buckets != NULL)
        memset(nonces->buckets, 0xff, nonces->cap * sizeof(*nonces->buckets));
    nonces->head = 0;
    nonces->count = 0;
}

void clw_sim_nonces_free(struct clw_sim_nonces *nonces)
{
    free(nonces->ring);
    free(nonces->buckets);
    memset(nonces, 0, sizeof(*nonces));
}
