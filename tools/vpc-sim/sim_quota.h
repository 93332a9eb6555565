/* vpc-sim: the API quota, calls allowed per second per (SecretId, region, action), sliding. */
#ifndef CLW_SIM_QUOTA_H
#define CLW_SIM_QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim_map.h"

/* The accept times of the last `cap` calls admitted under one key, oldest at head. */
struct clw_sim_quota_bucket {
    char *key;
    int64_t *times_us;
    uint32_t cap; /* the limit the ring was made for */
    uint32_t head;
    uint32_t count;
    uint32_t reserve;    /* the reserve the bucket was made for */
    int64_t reserve_seq; /* the reserve's next call is its reserve_seq-th since time 0 */
};

struct clw_sim_quota {
    struct clw_sim_map index; /* key -> bucket */
    struct clw_sim_quota_bucket *buckets;
    size_t count;
    size_t cap;
    uint64_t reserve_admitted; /* calls of the reserve the quota let through, every key */
};

#define CLW_SIM_QUOTA_MAX 1000000u

/* Admits one call under key when fewer than limit calls were admitted under it in the second
 * before now_us, i.e. in (now_us - 1 s, now_us], and records it; returns false (recording
 * nothing) otherwise. limit 0 admits everything and records nothing.
 * reserve > 0: a phantom client (a stranger sharing the quota) offers reserve calls per second
 * under every key, evenly spread (at k x 1 s / reserve), admitted or refused like any call and
 * never retried; its calls up to now_us are played before this one, as if it had been calling
 * for at least a second. reserve should be below limit.
 * A bucket made for another limit or reserve starts over. now_us must not go backwards (a
 * monotonic clock). Fails open (admits) on allocation failure. */
bool clw_sim_quota_admit(struct clw_sim_quota *quota, const char *key, uint32_t limit,
                         uint32_t reserve, int64_t now_us);

/* Forgets every bucket. */
void clw_sim_quota_free(struct clw_sim_quota *quota);

#endif
