/* vpc-sim: call counters for GET /_sim/stats (per action, result, instance; credentials). */
#ifndef CLW_SIM_STATS_H
#define CLW_SIM_STATS_H

#include <stdbool.h>
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

/* What the quota did with the calls of one action. */
struct clw_sim_action_rate {
    char *action;
    uint64_t accepted;
    uint64_t throttled;
    struct clw_sim_persec accepted_per_second;
    struct clw_sim_persec throttled_per_second;
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
    struct clw_sim_map rate_index;                /* action -> position in rates */
    struct clw_sim_action_rate *rates;            /* the quota's verdicts per action */
    size_t nrates;
    size_t rates_cap;
    uint64_t issued_metadata;                /* temporary credentials the metadata service gave */
    uint64_t issued_sts;                     /* temporary credentials STS gave */
    uint64_t rejected_expired;               /* calls refused: temporary credential expired */
    uint64_t metadata_requests;              /* requests to the metadata service */
    struct clw_sim_counter metadata_results; /* "200", "404", "drop", "http:503", ... */
    uint64_t sts_calls;                      /* AssumeRoleWithWebIdentity calls */
    struct clw_sim_counter sts_results;      /* "0", the error Code, "drop", "http:503", ... */
};

/* Adds n to key's count. Allocation failures lose the count silently. */
void clw_sim_counter_add(struct clw_sim_counter *counter, const char *key, uint64_t n);
uint64_t clw_sim_counter_get(const struct clw_sim_counter *counter, const char *key);
void clw_sim_counter_free(struct clw_sim_counter *counter);

/* Zeroes everything (frees the counters). */
void clw_sim_stats_free(struct clw_sim_stats *stats);

/* One call of action reached the quota at second sec: accepted, or throttled. */
void clw_sim_stats_admission(struct clw_sim_stats *stats, const char *action, bool accepted,
                             int64_t sec);

/* Adds one to the count of second sec. */
void clw_sim_persec_add(struct clw_sim_persec *persec, int64_t sec);

/* The counts of the CLW_SIM_PERSEC_SLOTS seconds ending with now_sec, oldest first. */
cJSON *clw_sim_persec_to_json(const struct clw_sim_persec *persec, int64_t now_sec);

/* {"calls": N, "byVersion": {"2": N, "3": N}, "byAction": {...}, "byResult": {...},
 *  "byFault": {...}, "instances": {"calls": {...}, "attached": {...}, "detached": {...}},
 *  "throttled": N, "acceptedPerSecond": [...], "throttledPerSecond": [...],
 *  "perSecondEnd": now_sec, "perAction": {ACTION: {"accepted": N, "throttled": N,
 *  "acceptedPerSecond": [...], "throttledPerSecond": [...]}},
 *  "tempCredentials": {"issued": {"metadata": N, "sts": N}, "rejectedExpired": N},
 *  "metadata": {"requests": N, "byResult": {...}}, "sts": {"calls": N, "byResult": {...}}} */
cJSON *clw_sim_stats_to_json(const struct clw_sim_stats *stats, int64_t now_sec);

#endif
