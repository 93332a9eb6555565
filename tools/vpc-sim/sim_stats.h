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

struct clw_sim_stats {
    uint64_t calls;                               /* every request to /v2/index.php */
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

void clw_sim_stats_free(struct clw_sim_stats *stats);

/* {"calls": N, "byAction": {...}, "byResult": {...}, "byFault": {...},
 *  "instances": {"calls": {...}, "attached": {...}, "detached": {...}}} */
cJSON *clw_sim_stats_to_json(const struct clw_sim_stats *stats);

#endif
