/* vpc-sim: call counters for GET /_sim/stats (per action, result, instance; credentials). */
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
    clw_sim_counter_free(&stats->metadata_results);
    clw_sim_counter_free(&stats->sts_results);
    for (size_t i = 0; i < stats->nrates; i++)
        free(stats->rates[i].action);
    free(stats->rates);
    clw_sim_map_free(&stats->rate_index);
    memset(stats, 0, sizeof(*stats));
}

/* The rates of action, added when first seen; NULL on allocation failure. */
static struct clw_sim_action_rate *action_rate(struct clw_sim_stats *stats, const char *action)
{
    struct clw_sim_action_rate *rate;
    uint32_t idx;

    if (clw_sim_map_get(&stats->rate_index, action, &idx))
        return &stats->rates[idx];
    if (stats->nrates == stats->rates_cap) {
        size_t cap = stats->rates_cap == 0 ? 8 : stats->rates_cap * 2;
        struct clw_sim_action_rate *grown = realloc(stats->rates, cap * sizeof(*grown));

        if (grown == NULL)
            return NULL;
        stats->rates = grown;
        stats->rates_cap = cap;
    }
    rate = &stats->rates[stats->nrates];
    memset(rate, 0, sizeof(*rate));
    rate->action = strdup(action);
    /* The map borrows the name copy, which stays put when the array grows. */
    if (rate->action == NULL ||
        clw_sim_map_put(&stats->rate_index, rate->action, (uint32_t)stats->nrates) != 0) {
        free(rate->action);
        return NULL;
    }
    stats->nrates++;
    return rate;
}

void clw_sim_stats_admission(struct clw_sim_stats *stats, const char *action, bool accepted,
                             int64_t sec)
{
    struct clw_sim_action_rate *rate = action_rate(stats, action);

    if (accepted) {
        clw_sim_persec_add(&stats->accepted, sec);
    } else {
        stats->throttled++;
        clw_sim_persec_add(&stats->throttled_per_second, sec);
    }
    if (rate == NULL)
        return;
    if (accepted) {
        rate->accepted++;
        clw_sim_persec_add(&rate->accepted_per_second, sec);
    } else {
        rate->throttled++;
        clw_sim_persec_add(&rate->throttled_per_second, sec);
    }
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

static cJSON *rates_json(const struct clw_sim_stats *stats, int64_t now_sec)
{
    cJSON *obj = cJSON_CreateObject();

    for (size_t i = 0; obj != NULL && i < stats->nrates; i++) {
        const struct clw_sim_action_rate *rate = &stats->rates[i];
        cJSON *row = cJSON_AddObjectToObject(obj, rate->action);

        cJSON_AddNumberToObject(row, "accepted", (double)rate->accepted);
        cJSON_AddNumberToObject(row, "throttled", (double)rate->throttled);
        cJSON_AddItemToObject(row, "acceptedPerSecond",
                              clw_sim_persec_to_json(&rate->accepted_per_second, now_sec));
        cJSON_AddItemToObject(row, "throttledPerSecond",
                              clw_sim_persec_to_json(&rate->throttled_per_second, now_sec));
    }
    return obj;
}

/* tempCredentials, metadata and sts. */
static void credentials_json(const struct clw_sim_stats *stats, cJSON *root)
{
    cJSON *tmp = cJSON_AddObjectToObject(root, "tempCredentials");
    cJSON *issued = cJSON_AddObjectToObject(tmp, "issued");
    cJSON *metadata = cJSON_AddObjectToObject(root, "metadata");
    cJSON *sts = cJSON_AddObjectToObject(root, "sts");

    cJSON_AddNumberToObject(issued, "metadata", (double)stats->issued_metadata);
    cJSON_AddNumberToObject(issued, "sts", (double)stats->issued_sts);
    cJSON_AddNumberToObject(tmp, "rejectedExpired", (double)stats->rejected_expired);
    cJSON_AddNumberToObject(metadata, "requests", (double)stats->metadata_requests);
    cJSON_AddItemToObject(metadata, "byResult", counter_json(&stats->metadata_results));
    cJSON_AddNumberToObject(sts, "calls", (double)stats->sts_calls);
    cJSON_AddItemToObject(sts, "byResult", counter_json(&stats->sts_results));
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
    cJSON_AddItemToObject(root, "perAction", rates_json(stats, now_sec));
    credentials_json(stats, root);
    return root;
}
