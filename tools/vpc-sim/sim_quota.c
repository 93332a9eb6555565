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

bool clw_sim_quota_admit(struct clw_sim_quota *quota, const char *key, uint32_t limit,
                         int64_t now_us)
{
    struct clw_sim_quota_bucket *bucket;

    if (limit == 0)
        return true;
    bucket = find_or_add(quota, key);
    if (bucket == NULL)
        return true;
    if (bucket->cap != limit) {
        int64_t *times = malloc((size_t)limit * sizeof(*times));

        if (times == NULL)
            return true;
        free(bucket->times_us);
        bucket->times_us = times;
        bucket->cap = limit;
        bucket->head = 0;
        bucket->count = 0;
    }
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
