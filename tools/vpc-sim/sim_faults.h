/* vpc-sim: fault injection (latency, random transient errors, scripted faults) and its RNG. */
#ifndef CLW_SIM_FAULTS_H
#define CLW_SIM_FAULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

enum clw_sim_fault_kind {
    CLW_SIM_FAULT_NONE,
    CLW_SIM_FAULT_CODE,      /* an API error body with a numeric code, HTTP 200 */
    CLW_SIM_FAULT_HTTP,      /* a non-200 HTTP status with a non-JSON body */
    CLW_SIM_FAULT_DROP,      /* the connection is closed without an answer */
    CLW_SIM_FAULT_HANG,      /* nothing is answered for hang_ms, then the connection closes */
    CLW_SIM_FAULT_TASK_FAIL, /* success with a taskId, but the task ends failed */
    CLW_SIM_FAULT_BUSINESS,  /* the action's own business error about one instance */
};

#define CLW_SIM_FAULT_ID_MAX 65 /* an instance id a business fault names: 1..64 characters */

struct clw_sim_fault {
    enum clw_sim_fault_kind kind;
    int code;           /* CODE: API code; HTTP: status */
    char code_desc[64]; /* CODE: codeDesc (empty: the usual one); BUSINESS: the v2 code */
    char instance_id[CLW_SIM_FAULT_ID_MAX]; /* BUSINESS: the instance it is about */
    bool apply;        /* run the action first (state changes), then answer with the fault */
    int retry_after_s; /* Retry-After header; -1: the global default */
};

/* A scripted fault: the next `remaining` calls touching instance_id (any call when NULL) and
 * naming action (any when NULL) get `fault`. */
struct clw_sim_script {
    char *instance_id;
    char *action;
    uint32_t remaining;
    struct clw_sim_fault fault;
};

enum clw_sim_latency_dist {
    CLW_SIM_LATENCY_UNIFORM,     /* latency_ms + U[0, jitter_ms] */
    CLW_SIM_LATENCY_EXPONENTIAL, /* latency_ms + Exp(mean jitter_ms), capped at 20 x mean */
};

#define CLW_SIM_MAX_RATE_KINDS 16

struct clw_sim_faults {
    double rate;       /* probability that a call gets a random fault */
    double apply_rate; /* probability that a random fault is "apply then fail" */
    struct clw_sim_fault kinds[CLW_SIM_MAX_RATE_KINDS]; /* random faults pick one uniformly */
    size_t nkinds;
    uint32_t latency_ms;
    uint32_t jitter_ms;
    enum clw_sim_latency_dist dist;
    uint32_t hang_ms;
    int retry_after_s; /* sent with 4400 / HTTP 429 / HTTP 503 faults when > 0 */
    struct clw_sim_script *scripts;
    size_t nscripts;
    uint64_t rng;
};

/* Defaults: no latency, rate 0, the transient kinds (code:4400, code:5100, code:6000,
 * code:6200, http:500, http:502, http:503, drop), hang 60 s, RNG seeded with seed. */
void clw_sim_faults_init(struct clw_sim_faults *faults, uint64_t seed);
void clw_sim_faults_free(struct clw_sim_faults *faults);

/* Parses "code:4400", "code:4400:RequestLimitExceeded", "http:503", "drop", "hang",
 * "task_fail", "business:CODE" (CODE InvalidInstance.NotFound, InstanceAlreadyLinked,
 * InstanceLimitExceeded or InvalidVpc.NotFound; a script sets the instance). Returns 0 or -1. */
int clw_sim_fault_parse(const char *text, struct clw_sim_fault *fault);

/* Writes the same spelling back ("code:4400", "http:503", "drop", ...), "apply+" in front when
 * the fault is "apply then fail". */
void clw_sim_fault_format(const struct clw_sim_fault *fault, char *out, size_t outsz);

/* Applies a fault document (README.md "Faults"): rates, latency, scripts. "clear": true
 * removes earlier scripts first. On error nothing is changed, err says why, returns -1. */
int clw_sim_faults_apply_json(struct clw_sim_faults *faults, const cJSON *doc, char *err,
                              size_t errsz);

/* Chooses the fault for one call (scripted faults first, then the random rate) into *fault;
 * kind NONE for none. ids are the instance ids the call names. Scripts that match are
 * consumed. */
void clw_sim_faults_pick(struct clw_sim_faults *faults, const char *action, const char *const *ids,
                         size_t nids, struct clw_sim_fault *fault);

/* A latency sample in ms for one call. */
uint32_t clw_sim_faults_latency(struct clw_sim_faults *faults);

/* The current configuration and remaining scripts, for GET /_sim/faults. */
cJSON *clw_sim_faults_to_json(const struct clw_sim_faults *faults);

/* Uniform double in [0, 1) from the seeded generator. */
double clw_sim_faults_random(struct clw_sim_faults *faults);

#endif
