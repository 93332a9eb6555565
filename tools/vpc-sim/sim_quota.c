/* vpc-sim: the API quota, calls allowed per second per (SecretId, region, action), sliding. */
#include "sim_quota.h"

#include <stdlib.h>
#include <string.h>

#define WINDOW_US 1000000

static struct clw_sim_quota_bucket *find_or_add(struct clw_sim_quota *quota, const char *key)
{
    struct clw_sim_quota_bucket *bucket;
    uint32_t idx;

    if (clw_sim_map_get(&quota->index, key, &idx))
        return &quota->buckets[idx];
    if (quota->count == quota->cap) {
        size_t cap = quota->cap == 0 ? 8 : quota->cap * 2;
        struct clw_sim_quota_bucket *grown = realloc(quota->buckets, cap * sizeof(*grown));

        if (grown == NULL)
            return NULL;
        quota->buckets = grown;
        quota->cap = cap;
    }
    bucket = &quota->buckets[quota->count];
    memset(bucket, 0, sizeof(*bucket));
    bucket->key = strdup(key);
    /* The map borrows the key copy, which stays put when the bucket array grows. */
    if (bucket->key == NULL ||
        clw_sim_map_put(&quota->index, bucket->key, (uint32_t)quota->count) != 0) {
        free(bucket->key);
        return NULL;
    }
    quota->count++;
    return bucket;
}

/* Records an admission at now_us when the window has room. */
static bool take(struct clw_sim_quota_bucket *bucket, int64_t now_us)
{
    if (bucket->count < bucket->cap) {
        bucket->times_us[(bucket->head + bucket->count) % bucket->cap] = now_us;
        bucket->count++;
        return true;
    }
    /* Full: the oldest of the last `limit` admitted calls must have left the window. */
    if (bucket->times_us[bucket->head] > now_us - WINDOW_US)
        return false;
    bucket->times_us[bucket->head] = now_us;
    bucket->head = (bucket->head + 1) % bucket->cap;
    return true;
}

/* The time of the reserve's seq-th call. */
static int64_t reserve_at(const struct clw_sim_quota_bucket *bucket, int64_t seq)
{
    return seq * WINDOW_US / bucket->reserve;
}

/* Plays the reserve's calls due by now_us, in time order (every call recorded so far is older):
 * those of the last second only, the ones before could not change anything any more. */
static void play_reserve(struct clw_sim_quota *quota, struct clw_sim_quota_bucket *bucket,
                         int64_t now_us)
{
    int64_t first = (now_us - WINDOW_US) * bucket->reserve / WINDOW_US + 1;

    if (bucket->reserve == 0)
        return;
    if (bucket->reserve_seq < first)
        bucket->reserve_seq = first;
    for (; reserve_at(bucket, bucket->reserve_seq) <= now_us; bucket->reserve_seq++)
        if (take(bucket, reserve_at(bucket, bucket->reserve_seq)))
            quota->reserve_admitted++;
}

bool clw_sim_quota_admit(struct clw_sim_quota *quota, const char *key, uint32_t limit,
                         uint32_t reserve, int64_t now_us)
{
    struct clw_sim_quota_bucket *bucket;

    if (limit == 0)
        return true;
    bucket = find_or_add(quota, key);
    if (bucket == NULL)
        return true;
    if (bucket->cap != limit || bucket->reserve != reserve) {
        int64_t *times = malloc((size_t)limit * sizeof(*times));

        if (times == NULL)
            return true;
        free(bucket->times_us);
        bucket->times_us = times;
        bucket->cap = limit;
        bucket->head = 0;
        bucket->count = 0;
        bucket->reserve = reserve;
        bucket->reserve_seq = 0;
    }
    play_reserve(quota, bucket, now_us);
    return take(bucket, now_us);
}

void clw_sim_quota_free(struct clw_sim_quota *quota)
{
    for (size_t i = 0; i < quota->count; i++) {
        free(quota->buckets[i].key);
        free(quota->buckets[i].times_us);
    }
    free(quota->buckets);
    clw_sim_map_free(&quota->index);
    memset(quota, 0, sizeof(*quota));
}
