/* vpc-sim: call counters for GET /_sim/stats (per action, per result, per instance). */
#include "sim_stats.h"

#include <stdlib.h>
#include <string.h>

static int grow(struct clw_sim_counter *counter)
{
    size_t cap = counter->cap == 0 ? 16 : counter->cap * 2;
    char **keys = realloc(counter->keys, cap * sizeof(*keys));
    uint64_t *counts;

    if (keys == NULL)
        return -1;
    counter->keys = keys;
    counts = realloc(counter->counts, cap * sizeof(*counts));
    if (counts == NULL)
        return -1;
    counter->counts = counts;
    counter->cap = cap;
    return 0;
}

void clw_sim_counter_add(struct clw_sim_counter *counter, const char *key, uint64_t n)
{
    uint32_t idx;
    char *copy;

    if (clw_sim_map_get(&counter->index, key, &idx)) {
        counter->counts[idx] += n;
        return;
    }
    if (counter->count == counter->cap && grow(counter) != 0)
        return;
    copy = strdup(key);
    if (copy == NULL)
        return;
    /* The map borrows the copy, which stays put when the keys array grows. */
    if (clw_sim_map_put(&counter->index, copy, (uint32_t)counter->count) != 0) {
        free(copy);
        return;
    }
    counter->keys[counter->count] = copy;
    counter->counts[counter->count] = n;
    counter->count++;
}

uint64_t clw_sim_counter_get(const struct clw_sim_counter *counter, const char *key)
{
    uint32_t idx;

    return clw_sim_map_get(&counter->index, key, &idx) ? counter->counts[idx] : 0;
}

void clw_sim_counter_free(struct clw_sim_counter *counter)
{
    for (size_t i = 0; i < counter->count; i++)
        free(counter->keys[i]);
    free(counter->keys);
    free(counter->counts);
    clw_sim_map_free(&counter->index);
    memset(counter, 0, sizeof(*counter));
}

void clw_sim_stats_free(struct clw_sim_stats *stats)
{
    clw_sim_counter_free(&stats->by_action);
    clw_sim_counter_free(&stats->by_result);
    clw_sim_counter_free(&stats->by_fault);
    clw_sim_counter_free(&stats->calls_per_instance);
    clw_sim_counter_free(&stats->attached_per_instance);
    clw_sim_counter_free(&stats->detached_per_instance);
    memset(stats, 0, sizeof(*stats));
}

void clw_sim_persec_add(struct clw_sim_persec *persec, int64_t sec)
{
    size_t slot = (size_t)(sec % CLW_SIM_PERSEC_SLOTS);

    if (persec->sec[slot] != sec) {
        persec->sec[slot] = sec;
        persec->count[slot] = 0;
    }
    persec->count[slot]++;
}

cJSON *clw_sim_persec_to_json(const struct clw_sim_persec *persec, int64_t now_sec)
{
    cJSON *arr = cJSON_CreateArray();

    for (int64_t sec = now_sec - CLW_SIM_PERSEC_SLOTS + 1; arr != NULL && sec <= now_sec; sec++) {
        size_t slot = (size_t)(sec % CLW_SIM_PERSEC_SLOTS);

        cJSON_AddItemToArray(
            arr, cJSON_CreateNumber(persec->sec[slot] == sec ? (double)persec->count[slot] : 0));
    }
    return arr;
}

static cJSON *counter_json(const struct clw_sim_counter *counter)
{
    cJSON *obj = cJSON_CreateObject();

    for (size_t i = 0; obj != NULL && i < counter->count; i++)
        cJSON_AddNumberToObject(obj, counter->keys[i], (double)counter->counts[i]);
    return obj;
}

cJSON *clw_sim_stats_to_json(const struct clw_sim_stats *stats, int64_t now_sec)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *instances = cJSON_CreateObject();
    cJSON *versions = cJSON_CreateObject();

    if (root == NULL || instances == NULL || versions == NULL) {
        cJSON_Delete(root);
        cJSON_Delete(instances);
        cJSON_Delete(versions);
        return NULL;
    }
    cJSON_AddNumberToObject(root, "calls", (double)stats->calls);
    cJSON_AddNumberToObject(versions, "2", (double)stats->by_version[2]);
    cJSON_AddNumberToObject(versions, "3", (double)stats->by_version[3]);
    cJSON_AddItemToObject(root, "byVersion", versions);
    cJSON_AddItemToObject(root, "byAction", counter_json(&stats->by_action));
    cJSON_AddItemToObject(root, "byResult", counter_json(&stats->by_result));
    cJSON_AddItemToObject(root, "byFault", counter_json(&stats->by_fault));
    cJSON_AddItemToObject(instances, "calls", counter_json(&stats->calls_per_instance));
    cJSON_AddItemToObject(instances, "attached", counter_json(&stats->attached_per_instance));
    cJSON_AddItemToObject(instances, "detached", counter_json(&stats->detached_per_instance));
    cJSON_AddItemToObject(root, "instances", instances);
    cJSON_AddNumberToObject(root, "throttled", (double)stats->throttled);
    cJSON_AddItemToObject(root, "acceptedPerSecond",
                          clw_sim_persec_to_json(&stats->accepted, now_sec));
    cJSON_AddItemToObject(root, "throttledPerSecond",
                          clw_sim_persec_to_json(&stats->throttled_per_second, now_sec));
    cJSON_AddNumberToObject(root, "perSecondEnd", (double)now_sec);
    return root;
}
