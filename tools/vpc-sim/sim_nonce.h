/* vpc-sim: replay protection, the set of (SecretId, Nonce) pairs seen within the window. */
#ifndef CLW_SIM_NONCE_H
#define CLW_SIM_NONCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct clw_sim_nonce_node {
    uint64_t nonce;
    int64_t expires; /* remembered while now <= expires */
    uint32_t cred;
    uint32_t next; /* next node in the same bucket, CLW_SIM_NONCE_NIL ends */
};

#define CLW_SIM_NONCE_NIL UINT32_MAX

/* Nodes live in a ring in insertion order, so the oldest are dropped from its head; each node
 * is also on a bucket chain of a hash table. 28 bytes per slot (node and bucket): an entry stays
 * until every older one expired, at most 2 windows, so 20 000 calls/s with a 300 s window keep
 * up to 12 M entries, ~350 MB (the ring grows by doubling). */
struct clw_sim_nonces {
    struct clw_sim_nonce_node *ring;
    uint32_t *buckets;
    size_t cap; /* ring slots and buckets, power of two or 0 */
    size_t head;
    size_t count;
};

/* Records (cred, nonce) as used until expires and returns true, or returns false if the pair is
 * already remembered and not expired at now (a replay). Also forgets expired pairs. Returns
 * true without recording on allocation failure (failing open keeps the simulator serving). */
bool clw_sim_nonces_use(struct clw_sim_nonces *nonces, uint32_t cred, uint64_t nonce, int64_t now,
                        int64_t expires);

void clw_sim_nonces_clear(struct clw_sim_nonces *nonces);
void clw_sim_nonces_free(struct clw_sim_nonces *nonces);

#endif
