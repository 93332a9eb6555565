/* vpc-sim: fault injection (latency, random transient errors, scripted faults) and its RNG. */
#include "sim_faults.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DELAY_MS 3600000u

static const char *const default_kinds[] = {
    "code:4400", "code:5100", "code:6000", "code:6200", "http:500", "http:502", "http:503", "drop",
};

/* The business errors a script may inject (the v2 spellings; v3 calls get them translated). */
static const char *const business_codes[] = {
    "InvalidInstance.NotFound",
    "InstanceAlreadyLinked",
    "InstanceLimitExceeded",
    "InvalidVpc.NotFound",
};

/* splitmix64: small, fast and good enough for test traffic. */
static uint64_t next_random(struct clw_sim_faults *faults)
{
    uint64_t z;

    faults->rng += 0x9e3779b97f4a7c15ull;
    z = faults->rng;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double clw_sim_faults_random(struct clw_sim_faults *faults)
{
    return (double)(next_random(faults) >> 11) * (1.0 / 9007199254740992.0);
}

void clw_sim_faults_init(struct clw_sim_faults *faults, uint64_t seed)
{
    memset(faults, 0, sizeof(*faults));
    for (size_t i = 0; i < sizeof(default_kinds) / sizeof(default_kinds[0]); i++)
        clw_sim_fault_parse(default_kinds[i], &faults->kinds[faults->nkinds++]);
    faults->hang_ms = 60000;
    faults->rng = seed;
}

static void free_scripts(struct clw_sim_script *scripts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(scripts[i].instance_id);
        free(scripts[i].action);
    }
    free(scripts);
}

void clw_sim_faults_free(struct clw_sim_faults *faults)
{
    free_scripts(faults->scripts, faults->nscripts);
    faults->scripts = NULL;
    faults->nscripts = 0;
}

int clw_sim_fault_parse(const char *text, struct clw_sim_fault *fault)
{
    char *end = NULL;
    long num;

    memset(fault, 0, sizeof(*fault));
    fault->retry_after_s = -1;
    if (strcmp(text, "drop") == 0) {
        fault->kind = CLW_SIM_FAULT_DROP;
        return 0;
    }
    if (strcmp(text, "hang") == 0) {
        fault->kind = CLW_SIM_FAULT_HANG;
        return 0;
    }
    if (strcmp(text, "task_fail") == 0) {
        fault->kind = CLW_SIM_FAULT_TASK_FAIL;
        return 0;
    }
    if (strncmp(text, "code:", 5) == 0) {
        num = strtol(text + 5, &end, 10);
        if (end == text + 5 || num < 1 || num > 999999 || (*end != '\0' && *end != ':'))
            return -1;
        if (*end == ':' && (end[1] == '\0' || strlen(end + 1) >= sizeof(fault->code_desc)))
            return -1;
        fault->kind = CLW_SIM_FAULT_CODE;
        fault->code = (int)num;
        if (*end == ':')
            snprintf(fault->code_desc, sizeof(fault->code_desc), "%s", end + 1);
        return 0;
    }
    if (strncmp(text, "business:", 9) == 0) {
        for (size_t i = 0; i < sizeof(business_codes) / sizeof(business_codes[0]); i++) {
            if (strcmp(text + 9, business_codes[i]) == 0) {
                fault->kind = CLW_SIM_FAULT_BUSINESS;
                snprintf(fault->code_desc, sizeof(fault->code_desc), "%s", business_codes[i]);
                return 0;
            }
        }
        return -1;
    }
    if (strncmp(text, "http:", 5) == 0) {
        num = strtol(text + 5, &end, 10);
        if (end == text + 5 || *end != '\0' || num < 100 || num > 599 || num == 200)
            return -1;
        fault->kind = CLW_SIM_FAULT_HTTP;
        fault->code = (int)num;
        return 0;
    }
    return -1;
}

void clw_sim_fault_format(const struct clw_sim_fault *fault, char *out, size_t outsz)
{
    const char *apply = fault->apply ? "apply+" : "";

    switch (fault->kind) {
    case CLW_SIM_FAULT_NONE:
        snprintf(out, outsz, "none");
        break;
    case CLW_SIM_FAULT_CODE:
        snprintf(out, outsz, "%scode:%d%s%s", apply, fault->code, fault->code_desc[0] ? ":" : "",
                 fault->code_desc);
        break;
    case CLW_SIM_FAULT_HTTP:
        snprintf(out, outsz, "%shttp:%d", apply, fault->code);
        break;
    case CLW_SIM_FAULT_DROP:
        snprintf(out, outsz, "%sdrop", apply);
        break;
    case CLW_SIM_FAULT_HANG:
        snprintf(out, outsz, "%shang", apply);
        break;
    case CLW_SIM_FAULT_TASK_FAIL:
        snprintf(out, outsz, "task_fail");
        break;
    case CLW_SIM_FAULT_BUSINESS:
        snprintf(out, outsz, "business:%s", fault->code_desc);
        break;
    }
}

/* ---- the fault document ----------------------------------------------------------------- */

static int read_probability(const cJSON *item, double *out, const char *key, char *err,
                            size_t errsz)
{
    if (!cJSON_IsNumber(item) || item->valuedouble < 0 || item->valuedouble > 1) {
        snprintf(err, errsz, "faults: %s must be a number in [0, 1]", key);
        return -1;
    }
    *out = item->valuedouble;
    return 0;
}

static int read_uint(const cJSON *item, uint32_t max, uint32_t *out, const char *key, char *err,
                     size_t errsz)
{
    if (!cJSON_IsNumber(item) || item->valuedouble < 0 || item->valuedouble > max) {
        snprintf(err, errsz, "faults: %s must be a number in [0, %u]", key, max);
        return -1;
    }
    *out = (uint32_t)item->valuedouble;
    return 0;
}

static int read_kinds(const cJSON *arr, struct clw_sim_faults *out, char *err, size_t errsz)
{
    const cJSON *item;

    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > CLW_SIM_MAX_RATE_KINDS) {
        snprintf(err, errsz, "faults: kinds must be an array of at most %d fault strings",
                 CLW_SIM_MAX_RATE_KINDS);
        return -1;
    }
    out->nkinds = 0;
    cJSON_ArrayForEach(item, arr)
    {
        struct clw_sim_fault *fault = &out->kinds[out->nkinds];

        if (!cJSON_IsString(item) || clw_sim_fault_parse(item->valuestring, fault) != 0 ||
            fault->kind == CLW_SIM_FAULT_TASK_FAIL || fault->kind == CLW_SIM_FAULT_BUSINESS) {
            snprintf(err, errsz, "faults: kinds: bad fault (code:N, http:N, drop or hang)");
            return -1;
        }
        out->nkinds++;
    }
    return 0;
}

static int read_script(const cJSON *obj, struct clw_sim_script *script, char *err, size_t errsz)
{
    const cJSON *fault = cJSON_GetObjectItemCaseSensitive(obj, "fault");
    const cJSON *instance = cJSON_GetObjectItemCaseSensitive(obj, "instanceId");
    const cJSON *action = cJSON_GetObjectItemCaseSensitive(obj, "action");
    const cJSON *times = cJSON_GetObjectItemCaseSensitive(obj, "times");
    const cJSON *apply = cJSON_GetObjectItemCaseSensitive(obj, "apply");
    const cJSON *retry = cJSON_GetObjectItemCaseSensitive(obj, "retryAfter");
    uint32_t value = 1;

    memset(script, 0, sizeof(*script));
    if (!cJSON_IsObject(obj) || !cJSON_IsString(fault) ||
        clw_sim_fault_parse(fault->valuestring, &script->fault) != 0) {
        snprintf(err, errsz,
                 "faults: scripts: each needs \"fault\": code:N[:Desc], http:N, "
                 "drop, hang, task_fail or business:CODE");
        return -1;
    }
    if ((instance != NULL && !cJSON_IsString(instance)) ||
        (action != NULL && !cJSON_IsString(action)) || (apply != NULL && !cJSON_IsBool(apply))) {
        snprintf(err, errsz, "faults: scripts: instanceId and action are strings, apply a bool");
        return -1;
    }
    if (script->fault.kind == CLW_SIM_FAULT_BUSINESS) {
        if (instance == NULL || instance->valuestring[0] == '\0' ||
            strlen(instance->valuestring) >= sizeof(script->fault.instance_id) ||
            cJSON_IsTrue(apply)) {
            snprintf(err, errsz,
                     "faults: scripts: a business fault needs an instanceId of 1..%d "
                     "characters and cannot be applied",
                     CLW_SIM_FAULT_ID_MAX - 1);
            return -1;
        }
        snprintf(script->fault.instance_id, sizeof(script->fault.instance_id), "%s",
                 instance->valuestring);
    }
    if (times != NULL &&
        (read_uint(times, UINT32_MAX, &value, "scripts.times", err, errsz) != 0 || value == 0)) {
        snprintf(err, errsz, "faults: scripts: times must be a positive number");
        return -1;
    }
    script->remaining = value;
    if (retry != NULL) {
        if (read_uint(retry, 86400, &value, "scripts.retryAfter", err, errsz) != 0)
            return -1;
        script->fault.retry_after_s = (int)value;
    }
    script->fault.apply = cJSON_IsTrue(apply) && script->fault.kind != CLW_SIM_FAULT_TASK_FAIL;
    script->instance_id = instance != NULL ? strdup(instance->valuestring) : NULL;
    script->action = action != NULL ? strdup(action->valuestring) : NULL;
    if ((instance != NULL && script->instance_id == NULL) ||
        (action != NULL && script->action == NULL)) {
        snprintf(err, errsz, "faults: out of memory");
        return -1;
    }
    return 0;
}

/* Builds the new script list (old ones kept unless clear) into *out / *nout. */
static int read_scripts(const cJSON *arr, const struct clw_sim_faults *faults, bool clear,
                        struct clw_sim_script **out, size_t *nout, char *err, size_t errsz)
{
    size_t keep = clear ? 0 : faults->nscripts;
    size_t add = cJSON_IsArray(arr) ? (size_t)cJSON_GetArraySize(arr) : 0;
    struct clw_sim_script *scripts = calloc(keep + add + 1, sizeof(*scripts));
    const cJSON *item;
    size_t n = 0;

    if (arr != NULL && !cJSON_IsArray(arr)) {
        snprintf(err, errsz, "faults: scripts must be an array");
        goto fail;
    }
    if (scripts == NULL) {
        snprintf(err, errsz, "faults: out of memory");
        goto fail;
    }
    for (; n < keep; n++) {
        const struct clw_sim_script *old = &faults->scripts[n];

        scripts[n] = *old;
        scripts[n].instance_id = old->instance_id ? strdup(old->instance_id) : NULL;
        scripts[n].action = old->action ? strdup(old->action) : NULL;
        if ((old->instance_id != NULL && scripts[n].instance_id == NULL) ||
            (old->action != NULL && scripts[n].action == NULL)) {
            n++;
            snprintf(err, errsz, "faults: out of memory");
            goto fail;
        }
    }
    cJSON_ArrayForEach(item, arr)
    {
        if (read_script(item, &scripts[n++], err, errsz) != 0)
            goto fail;
    }
    *out = scripts;
    *nout = n;
    return 0;

fail:
    free_scripts(scripts, n);
    return -1;
}

static const char *const known_keys[] = {
    "clear",       "rate",   "kinds",      "applyRate", "latencyMs", "latencyJitterMs",
    "latencyDist", "hangMs", "retryAfter", "rngSeed",   "scripts",
};

static int check_keys(const cJSON *doc, char *err, size_t errsz)
{
    const cJSON *item;

    cJSON_ArrayForEach(item, doc)
    {
        bool known = false;

        for (size_t i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]); i++)
            known = known || strcmp(item->string, known_keys[i]) == 0;
        if (!known) {
            snprintf(err, errsz, "faults: unknown key \"%s\"", item->string);
            return -1;
        }
    }
    return 0;
}

static int read_scalars(const cJSON *doc, struct clw_sim_faults *next, char *err, size_t errsz)
{
    const cJSON *item;
    uint32_t value;

    item = cJSON_GetObjectItemCaseSensitive(doc, "rate");
    if (item != NULL && read_probability(item, &next->rate, "rate", err, errsz) != 0)
        return -1;
    item = cJSON_GetObjectItemCaseSensitive(doc, "applyRate");
    if (item != NULL && read_probability(item, &next->apply_rate, "applyRate", err, errsz) != 0)
        return -1;
    item = cJSON_GetObjectItemCaseSensitive(doc, "kinds");
    if (item != NULL && read_kinds(item, next, err, errsz) != 0)
        return -1;
    item = cJSON_GetObjectItemCaseSensitive(doc, "latencyMs");
    if (item != NULL && read_uint(item, MAX_DELAY_MS, &next->latency_ms, "latencyMs", err, errsz))
        return -1;
    item = cJSON_GetObjectItemCaseSensitive(doc, "latencyJitterMs");
    if (item != NULL &&
        read_uint(item, MAX_DELAY_MS, &next->jitter_ms, "latencyJitterMs", err, errsz) != 0)
        return -1;
    item = cJSON_GetObjectItemCaseSensitive(doc, "hangMs");
    if (item != NULL && read_uint(item, MAX_DELAY_MS, &next->hang_ms, "hangMs", err, errsz))
        return -1;
    item = cJSON_GetObjectItemCaseSensitive(doc, "retryAfter");
    if (item != NULL && read_uint(item, 86400, &value, "retryAfter", err, errsz) != 0)
        return -1;
    if (item != NULL)
        next->retry_after_s = (int)value;
    item = cJSON_GetObjectItemCaseSensitive(doc, "latencyDist");
    if (item != NULL) {
        if (cJSON_IsString(item) && strcmp(item->valuestring, "uniform") == 0) {
            next->dist = CLW_SIM_LATENCY_UNIFORM;
        } else if (cJSON_IsString(item) && strcmp(item->valuestring, "exponential") == 0) {
            next->dist = CLW_SIM_LATENCY_EXPONENTIAL;
        } else {
            snprintf(err, errsz, "faults: latencyDist must be \"uniform\" or \"exponential\"");
            return -1;
        }
    }
    item = cJSON_GetObjectItemCaseSensitive(doc, "rngSeed");
    if (item != NULL) {
        if (!cJSON_IsNumber(item) || item->valuedouble < 0) {
            snprintf(err, errsz, "faults: rngSeed must be a non-negative number");
            return -1;
        }
        next->rng = (uint64_t)item->valuedouble;
    }
    return 0;
}

int clw_sim_faults_apply_json(struct clw_sim_faults *faults, const cJSON *doc, char *err,
                              size_t errsz)
{
    struct clw_sim_faults next = *faults;
    struct clw_sim_script *scripts = NULL;
    size_t nscripts = 0;
    const cJSON *clear = cJSON_GetObjectItemCaseSensitive(doc, "clear");

    if (!cJSON_IsObject(doc)) {
        snprintf(err, errsz, "faults: expected a JSON object");
        return -1;
    }
    if (check_keys(doc, err, errsz) != 0 || read_scalars(doc, &next, err, errsz) != 0)
        return -1;
    if (clear != NULL && !cJSON_IsBool(clear)) {
        snprintf(err, errsz, "faults: clear must be a bool");
        return -1;
    }
    if (read_scripts(cJSON_GetObjectItemCaseSensitive(doc, "scripts"), faults, cJSON_IsTrue(clear),
                     &scripts, &nscripts, err, errsz) != 0)
        return -1;
    free_scripts(faults->scripts, faults->nscripts);
    next.scripts = scripts;
    next.nscripts = nscripts;
    *faults = next;
    return 0;
}

/* ---- choosing --------------------------------------------------------------------------- */

static bool script_matches(const struct clw_sim_script *script, const char *action,
                           const char *const *ids, size_t nids)
{
    if (script->action != NULL && strcmp(script->action, action) != 0)
        return false;
    if (script->instance_id == NULL)
        return true;
    for (size_t i = 0; i < nids; i++) {
        if (strcmp(ids[i], script->instance_id) == 0)
            return true;
    }
    return false;
}

void clw_sim_faults_pick(struct clw_sim_faults *faults, const char *action, const char *const *ids,
                         size_t nids, struct clw_sim_fault *fault)
{
    size_t kept = 0;
    bool found = false;

    memset(fault, 0, sizeof(*fault));
    fault->retry_after_s = -1;
    /* Every matching script counts this call; the first one decides the answer. Spent
     * scripts are removed in the same pass, keeping the order of the rest. */
    for (size_t i = 0; i < faults->nscripts; i++) {
        struct clw_sim_script *script = &faults->scripts[i];

        if (script_matches(script, action, ids, nids)) {
            if (!found)
                *fault = script->fault;
            found = true;
            script->remaining--;
        }
        if (script->remaining == 0) {
            free(script->instance_id);
            free(script->action);
            continue;
        }
        faults->scripts[kept++] = *script;
    }
    faults->nscripts = kept;
    if (found || faults->rate <= 0 || faults->nkinds == 0)
        return;
    if (clw_sim_faults_random(faults) >= faults->rate)
        return;
    *fault = faults->kinds[next_random(faults) % faults->nkinds];
    fault->apply = faults->apply_rate > 0 && clw_sim_faults_random(faults) < faults->apply_rate;
}

uint32_t clw_sim_faults_latency(struct clw_sim_faults *faults)
{
    double extra = 0;

    if (faults->jitter_ms > 0) {
        if (faults->dist == CLW_SIM_LATENCY_EXPONENTIAL) {
            extra = -log(1.0 - clw_sim_faults_random(faults)) * faults->jitter_ms;
            if (extra > 20.0 * faults->jitter_ms)
                extra = 20.0 * faults->jitter_ms;
        } else {
            extra = clw_sim_faults_random(faults) * (faults->jitter_ms + 1);
        }
    }
    return faults->latency_ms + (uint32_t)extra;
}

cJSON *clw_sim_faults_to_json(const struct clw_sim_faults *faults)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *kinds = cJSON_AddArrayToObject(root, "kinds");
    cJSON *scripts;
    char text[96];

    cJSON_AddNumberToObject(root, "rate", faults->rate);
    cJSON_AddNumberToObject(root, "applyRate", faults->apply_rate);
    for (size_t i = 0; i < faults->nkinds; i++) {
        clw_sim_fault_format(&faults->kinds[i], text, sizeof(text));
        cJSON_AddItemToArray(kinds, cJSON_CreateString(text));
    }
    cJSON_AddNumberToObject(root, "latencyMs", faults->latency_ms);
    cJSON_AddNumberToObject(root, "latencyJitterMs", faults->jitter_ms);
    cJSON_AddStringToObject(root, "latencyDist",
                            faults->dist == CLW_SIM_LATENCY_EXPONENTIAL ? "exponential"
                                                                        : "uniform");
    cJSON_AddNumberToObject(root, "hangMs", faults->hang_ms);
    cJSON_AddNumberToObject(root, "retryAfter", faults->retry_after_s);
    scripts = cJSON_AddArrayToObject(root, "scripts");
    for (size_t i = 0; i < faults->nscripts; i++) {
        const struct clw_sim_script *script = &faults->scripts[i];
        cJSON *row = cJSON_CreateObject();
        struct clw_sim_fault plain = script->fault;

        plain.apply = false;
        clw_sim_fault_format(&plain, text, sizeof(text));
        if (script->instance_id != NULL)
            cJSON_AddStringToObject(row, "instanceId", script->instance_id);
        if (script->action != NULL)
            cJSON_AddStringToObject(row, "action", script->action);
        cJSON_AddNumberToObject(row, "times", script->remaining);
        cJSON_AddStringToObject(row, "fault", text);
        cJSON_AddBoolToObject(row, "apply", script->fault.apply);
        if (script->fault.retry_after_s >= 0)
            cJSON_AddNumberToObject(row, "retryAfter", script->fault.retry_after_s);
        cJSON_AddItemToArray(scripts, row);
    }
    return root;
}
