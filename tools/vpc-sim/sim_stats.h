/* vpc-sim: call counters for GET /_sim/stats (per action, per result, per instance). */
#ifndef CLW_SIM_STATS_H
#define CLW_SIM_STATS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "sim_map.h"

/* Counts per string key; keys are copied. */
struct clw_sim_counter {
    struct clw_sim_map index; /* key -> position in keys/counts */
    char **keys;
    uint64_t *counts;
    size_t count;
    size_t cap;
};

/* Counts per wall-clock second over the last CLW_SIM_PERSEC_SLOTS seconds (a ring indexed by
 * second modulo its size; a slot holding another second counts as zero). */
#define CLW_SIM_PERSEC_SLOTS 60
struct clw_sim_persec {
    int64_t sec[CLW_SIM_PERSEC_SLOTS];
    uint64_t count[CLW_SIM_PERSEC_SLOTS];
};

struct clw_sim_stats {
    uint64_t calls;                               /* every API request, v2 and v3 */
    uint64_t by_version[4];                       /* [2]: /v2/index.php, [3]: API 3.0 */
    uint64_t throttled;                           /* calls refused by the quota */
    struct clw_sim_persec accepted;               /* authenticated calls the quota let through */
    struct clw_sim_persec throttled_per_second;   /* calls refused by the quota */
    struct clw_sim_counter by_action;             /* Action as sent (unknown ones as "(other)") */
    struct clw_sim_counter by_result;             /* "0", "4100", "http:503", "drop", "hang" */
    struct clw_sim_counter by_fault;              /* injected faults, e.g. "apply+http:503" */
    struct clw_sim_counter calls_per_instance;    /* authenticated calls naming the instance */
    struct clw_sim_counter attached_per_instance; /* attach calls applied to the state */
    struct clw_sim_counter detached_per_instance; /* detach calls applied to the state */
};

/* Adds n to key's count. Allocation failures lose the count silently. */
void clw_sim_counter_add(struct clw_sim_counter *counter, const char *key, uint64_t n);
uint64_t clw_sim_counter_get(const struct clw_sim_counter *counter, const char *key);
void clw_sim_counter_free(struct clw_sim_counter *counter);

/* Zeroes everything (frees the counters). */
void clw_sim_stats_free(struct clw_sim_stats *stats);

/* Adds one to the count of second sec. */
void clw_sim_persec_add(struct clw_sim_persec *persec, int64_t sec);

/* The counts of the CLW_SIM_PERSEC_SLOTS seconds ending with now_sec, oldest first. */
cJSON *clw_sim_persec_to_json(const struct clw_sim_persec *persec, int64_t now_sec);

/* {"calls": N, "byVersion": {"2": N, "3": N}, "byAction": {...}, "byResult": {...},
 *  "byFault": {...}, "instances": {"calls": {...}, "attached": {...}, "detached": {...}},
 *  "throttled": N, "acceptedPerSecond": [...], "throttledPerSecond": [...],
 *  "perSecondEnd": now_sec} */
cJSON *clw_sim_stats_to_json(const struct clw_sim_stats *stats, int64_t now_sec);

#endif
