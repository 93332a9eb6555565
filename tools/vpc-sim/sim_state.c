/* vpc-sim: the simulated VPC world (regions, VPCs, classic instances, links, tasks). */
#include "sim_state.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_REGION "ap-guangzhou"
#define MAX_GENERATED  10000000

/* Short region names used by older docs and SDKs. */
static const char *const region_aliases[][2] = {
    {"gz", "ap-guangzhou"},      {"sh", "ap-shanghai"},       {"bj", "ap-beijing"},
    {"cd", "ap-chengdu"},        {"cq", "ap-chongqing"},      {"hk", "ap-hongkong"},
    {"sg", "ap-singapore"},      {"kr", "ap-seoul"},          {"jp", "ap-tokyo"},
    {"in", "ap-mumbai"},         {"th", "ap-bangkok"},        {"ca", "na-toronto"},
    {"usw", "na-siliconvalley"}, {"use", "na-ashburn"},       {"de", "eu-frankfurt"},
    {"shjr", "ap-shanghai-fsi"}, {"szjr", "ap-shenzhen-fsi"},
};

const char *clw_sim_region_canonical(const char *name)
{
    for (size_t i = 0; i < sizeof(region_aliases) / sizeof(region_aliases[0]); i++) {
        if (strcmp(region_aliases[i][0], name) == 0)
            return region_aliases[i][1];
    }
    return name;
}

void clw_sim_reply_error(struct clw_sim_reply *reply, int code, const char *code_desc,
                         const char *fmt, ...)
{
    va_list ap;

    reply->code = code;
    snprintf(reply->code_desc, sizeof(reply->code_desc), "%s", code_desc);
    va_start(ap, fmt);
    vsnprintf(reply->message, sizeof(reply->message), fmt, ap);
    va_end(ap);
}

static void reply_success(struct clw_sim_reply *reply)
{
    reply->code = 0;
    snprintf(reply->code_desc, sizeof(reply->code_desc), "Success");
    reply->message[0] = '\0';
}

/* ---- loading ---------------------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static const char *json_string(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* Reads an optional non-negative integer member; returns -1 (and sets *bad) on a wrong type. */
static int64_t json_count(const cJSON *obj, const char *key, int64_t dflt, bool *bad)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

    if (item == NULL || cJSON_IsNull(item))
        return dflt;
    if (!cJSON_IsNumber(item) || item->valuedouble < 0 || item->valuedouble > 9.0e15) {
        *bad = true;
        return -1;
    }
    return (int64_t)item->valuedouble;
}

/* Index of region name (canonicalised), created on first use; -1 on allocation failure. */
static int64_t region_index(struct clw_sim_state *state, const char *name)
{
    const char *canon = clw_sim_region_canonical(name);
    uint32_t idx;
    struct clw_sim_region *regions;

    if (clw_sim_map_get(&state->region_by_name, canon, &idx))
        return idx;
    regions = realloc(state->regions, (state->nregions + 1) * sizeof(*regions));
    if (regions == NULL)
        return -1;
    state->regions = regions;
    regions[state->nregions].name = strdup(canon);
    regions[state->nregions].limit = state->default_limit;
    regions[state->nregions].links = 0;
    if (regions[state->nregions].name == NULL)
        return -1;
    state->nregions++;
    /* The map borrows the name string, which stays put when the array grows. */
    if (clw_sim_map_put(&state->region_by_name, regions[state->nregions - 1].name,
                        (uint32_t)(state->nregions - 1)) != 0)
        return -1;
    return (int64_t)state->nregions - 1;
}

static int add_vpc(struct clw_sim_state *state, const char *id, const char *legacy,
                   const char *name, const char *cidr, uint32_t region, char *err, size_t errsz)
{
    struct clw_sim_vpc *vpc = &state->vpcs[state->nvpcs];

    if (clw_sim_map_get(&state->vpc_by_id, id, NULL) ||
        (legacy != NULL && clw_sim_map_get(&state->vpc_by_id, legacy, NULL))) {
        snprintf(err, errsz, "seed: VPC %s listed twice", id);
        return -1;
    }
    memset(vpc, 0, sizeof(*vpc));
    vpc->id = strdup(id);
    vpc->legacy_id = dup_or_null(legacy);
    vpc->name = strdup(name != NULL ? name : id);
    vpc->cidr = strdup(cidr != NULL ? cidr : "10.0.0.0/16");
    vpc->region = region;
    vpc->created = (int64_t)time(NULL);
    state->nvpcs++;
    if (vpc->id == NULL || (legacy != NULL && vpc->legacy_id == NULL) || vpc->name == NULL ||
        vpc->cidr == NULL ||
        clw_sim_map_put(&state->vpc_by_id, vpc->id, (uint32_t)(state->nvpcs - 1)) != 0 ||
        (legacy != NULL &&
         clw_sim_map_put(&state->vpc_by_id, vpc->legacy_id, (uint32_t)(state->nvpcs - 1)) != 0)) {
        snprintf(err, errsz, "seed: out of memory");
        return -1;
    }
    return 0;
}

static int add_instance(struct clw_sim_state *state, const char *id, const char *name,
                        const char *lan_ip, uint32_t region, char *err, size_t errsz)
{
    size_t n = state->ninstances;
    struct clw_sim_instance *ins = &state->instances[n];
    char ip[32];

    if (clw_sim_map_get(&state->instance_by_id, id, NULL)) {
        snprintf(err, errsz, "seed: instance %s listed twice", id);
        return -1;
    }
    if (lan_ip == NULL) {
        snprintf(ip, sizeof(ip), "10.%u.%u.%u", (unsigned)((n >> 16) & 255),
                 (unsigned)((n >> 8) & 255), (unsigned)(n & 255));
        lan_ip = ip;
    }
    memset(ins, 0, sizeof(*ins));
    ins->id = strdup(id);
    ins->name = strdup(name != NULL ? name : id);
    ins->lan_ip = strdup(lan_ip);
    ins->region = region;
    ins->vpc = -1;
    state->ninstances++;
    if (ins->id == NULL || ins->name == NULL || ins->lan_ip == NULL ||
        clw_sim_map_put(&state->instance_by_id, ins->id, (uint32_t)n) != 0) {
        snprintf(err, errsz, "seed: out of memory");
        return -1;
    }
    return 0;
}

static void link_instance(struct clw_sim_state *state, struct clw_sim_instance *ins, uint32_t vpc,
                          int64_t now_s)
{
    ins->vpc = (int32_t)vpc;
    ins->link_seq = ++state->next_link_seq;
    ins->link_id = ins->link_seq;
    ins->link_time = now_s;
    state->vpcs[vpc].links++;
    state->regions[ins->region].links++;
}

static void unlink_instance(struct clw_sim_state *state, struct clw_sim_instance *ins)
{
    state->vpcs[ins->vpc].links--;
    state->regions[ins->region].links--;
    ins->vpc = -1;
    ins->link_seq = 0;
}

static int load_regions(struct clw_sim_state *state, const cJSON *seed, char *err, size_t errsz)
{
    const cJSON *regions = cJSON_GetObjectItemCaseSensitive(seed, "regions");
    const cJSON *item;
    bool bad = false;

    state->default_limit = json_count(seed, "defaultLinkLimit", -1, &bad);
    if (bad) {
        snprintf(err, errsz, "seed: defaultLinkLimit must be a non-negative number");
        return -1;
    }
    if (regions == NULL)
        return 0;
    if (!cJSON_IsObject(regions)) {
        snprintf(err, errsz, "seed: regions must be an object");
        return -1;
    }
    cJSON_ArrayForEach(item, regions)
    {
        int64_t idx = region_index(state, item->string);

        if (idx < 0) {
            snprintf(err, errsz, "seed: out of memory");
            return -1;
        }
        state->regions[idx].limit = json_count(item, "linkLimit", state->default_limit, &bad);
        if (bad || !cJSON_IsObject(item)) {
            snprintf(err, errsz, "seed: regions.%s: expected {\"linkLimit\": N}", item->string);
            return -1;
        }
    }
    return 0;
}

static int load_vpcs(struct clw_sim_state *state, const cJSON *vpcs, char *err, size_t errsz)
{
    const cJSON *item;
    int i = 0;

    cJSON_ArrayForEach(item, vpcs)
    {
        const char *id = json_string(item, "vpcId");
        const char *region = json_string(item, "region");
        int64_t ridx;

        if (id == NULL || id[0] == '\0') {
            snprintf(err, errsz, "seed: vpcs[%d]: vpcId (string) is required", i);
            return -1;
        }
        ridx = region_index(state, region != NULL ? region : DEFAULT_REGION);
        if (ridx < 0) {
            snprintf(err, errsz, "seed: out of memory");
            return -1;
        }
        if (add_vpc(state, id, json_string(item, "legacyId"), json_string(item, "name"),
                    json_string(item, "cidrBlock"), (uint32_t)ridx, err, errsz) != 0)
            return -1;
        i++;
    }
    return 0;
}

static int load_instances(struct clw_sim_state *state, const cJSON *instances, char *err,
                          size_t errsz)
{
    const cJSON *item;
    int i = 0;
    int64_t now_s = (int64_t)time(NULL);

    cJSON_ArrayForEach(item, instances)
    {
        const char *id = json_string(item, "instanceId");
        const char *region = json_string(item, "region");
        const char *linked = json_string(item, "linkedVpc");
        int64_t ridx;
        uint32_t vpc;
        struct clw_sim_instance *ins;

        if (id == NULL || id[0] == '\0') {
            snprintf(err, errsz, "seed: instances[%d]: instanceId (string) is required", i);
            return -1;
        }
        ridx = region_index(state, region != NULL ? region : DEFAULT_REGION);
        if (ridx < 0) {
            snprintf(err, errsz, "seed: out of memory");
            return -1;
        }
        if (add_instance(state, id, json_string(item, "name"), json_string(item, "lanIp"),
                         (uint32_t)ridx, err, errsz) != 0)
            return -1;
        ins = &state->instances[state->ninstances - 1];
        if (linked != NULL) {
            if (!clw_sim_map_get(&state->vpc_by_id, linked, &vpc) ||
                state->vpcs[vpc].region != ins->region) {
                snprintf(err, errsz, "seed: instances[%d]: linkedVpc %s is no VPC of region %s", i,
                         linked, state->regions[ins->region].name);
                return -1;
            }
            link_instance(state, ins, vpc, now_s);
        }
        i++;
    }
    return 0;
}

/* "generate": {"vpcs": M, "instances": N, "region": R, "linked": K} adds vpc-0..vpc-(M-1) and
 * ins-0..ins-(N-1) in region R, the first K instances linked to vpc-0. */
static int load_generated(struct clw_sim_state *state, const cJSON *gen, int64_t *nvpcs,
                          int64_t *ninstances, int64_t *nlinked, uint32_t *region, char *err,
                          size_t errsz)
{
    const char *name = json_string(gen, "region");
    bool bad = false;
    int64_t ridx;

    *nvpcs = json_count(gen, "vpcs", 0, &bad);
    *ninstances = json_count(gen, "instances", 0, &bad);
    *nlinked = json_count(gen, "linked", 0, &bad);
    if (bad || !cJSON_IsObject(gen) || *nvpcs > MAX_GENERATED || *ninstances > MAX_GENERATED) {
        snprintf(err, errsz,
                 "seed: generate: expected {\"vpcs\": M, \"instances\": N, "
                 "\"region\": R, \"linked\": K} with counts up to %d",
                 MAX_GENERATED);
        return -1;
    }
    if (*nlinked > *ninstances || (*nlinked > 0 && *nvpcs == 0)) {
        snprintf(err, errsz, "seed: generate: linked needs that many instances and a VPC");
        return -1;
    }
    ridx = region_index(state, name != NULL ? name : DEFAULT_REGION);
    if (ridx < 0) {
        snprintf(err, errsz, "seed: out of memory");
        return -1;
    }
    *region = (uint32_t)ridx;
    return 0;
}

static int check_array(const cJSON *seed, const char *key, char *err, size_t errsz)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(seed, key);

    if (item != NULL && !cJSON_IsArray(item)) {
        snprintf(err, errsz, "seed: %s must be an array", key);
        return -1;
    }
    return 0;
}

static int load(struct clw_sim_state *state, const cJSON *seed, char *err, size_t errsz)
{
    const cJSON *vpcs = cJSON_GetObjectItemCaseSensitive(seed, "vpcs");
    const cJSON *instances = cJSON_GetObjectItemCaseSensitive(seed, "instances");
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(seed, "generate");
    int64_t gen_vpcs = 0;
    int64_t gen_instances = 0;
    int64_t gen_linked = 0;
    uint32_t gen_region = 0;
    uint32_t first_gen_vpc;
    size_t nvpcs;
    size_t ninstances;
    char id[32];

    if (!cJSON_IsObject(seed)) {
        snprintf(err, errsz, "seed: must be a JSON object");
        return -1;
    }
    if (check_array(seed, "vpcs", err, errsz) != 0 ||
        check_array(seed, "instances", err, errsz) != 0 ||
        load_regions(state, seed, err, errsz) != 0)
        return -1;
    if (gen != NULL && load_generated(state, gen, &gen_vpcs, &gen_instances, &gen_linked,
                                      &gen_region, err, errsz) != 0)
        return -1;

    nvpcs = (size_t)cJSON_GetArraySize(vpcs) + (size_t)gen_vpcs;
    ninstances = (size_t)cJSON_GetArraySize(instances) + (size_t)gen_instances;
    state->vpcs = calloc(nvpcs + 1, sizeof(*state->vpcs));
    state->instances = calloc(ninstances + 1, sizeof(*state->instances));
    if (state->vpcs == NULL || state->instances == NULL) {
        snprintf(err, errsz, "seed: out of memory");
        return -1;
    }
    if (load_vpcs(state, vpcs, err, errsz) != 0)
        return -1;
    first_gen_vpc = (uint32_t)state->nvpcs;
    for (int64_t i = 0; i < gen_vpcs; i++) {
        snprintf(id, sizeof(id), "vpc-%" PRId64, i);
        if (add_vpc(state, id, NULL, NULL, NULL, gen_region, err, errsz) != 0)
            return -1;
    }
    if (load_instances(state, instances, err, errsz) != 0)
        return -1;
    for (int64_t i = 0; i < gen_instances; i++) {
        snprintf(id, sizeof(id), "ins-%" PRId64, i);
        if (add_instance(state, id, NULL, NULL, gen_region, err, errsz) != 0)
            return -1;
        if (i < gen_linked)
            link_instance(state, &state->instances[state->ninstances - 1], first_gen_vpc,
                          (int64_t)time(NULL));
    }
    return 0;
}

int clw_sim_state_load(struct clw_sim_state *state, const cJSON *seed, uint64_t first_task_id,
                       char *err, size_t errsz)
{
    memset(state, 0, sizeof(*state));
    state->default_limit = -1;
    state->task_base = first_task_id;
    if (load(state, seed, err, errsz) != 0) {
        clw_sim_state_free(state);
        state->task_base = first_task_id;
        return -1;
    }
    return 0;
}

void clw_sim_state_free(struct clw_sim_state *state)
{
    for (size_t i = 0; i < state->nregions; i++)
        free(state->regions[i].name);
    for (size_t i = 0; i < state->nvpcs; i++) {
        free(state->vpcs[i].id);
        free(state->vpcs[i].legacy_id);
        free(state->vpcs[i].name);
        free(state->vpcs[i].cidr);
    }
    for (size_t i = 0; i < state->ninstances; i++) {
        free(state->instances[i].id);
        free(state->instances[i].name);
        free(state->instances[i].lan_ip);
    }
    free(state->regions);
    free(state->vpcs);
    free(state->instances);
    free(state->tasks);
    clw_sim_map_free(&state->region_by_name);
    clw_sim_map_free(&state->vpc_by_id);
    clw_sim_map_free(&state->instance_by_id);
    memset(state, 0, sizeof(*state));
}

/* ---- lookups ---------------------------------------------------------------------------- */

/* Index of the request's region, or -1 when nothing lives there. */
static int64_t find_region(const struct clw_sim_state *state, const char *region)
{
    uint32_t idx;

    if (!clw_sim_map_get(&state->region_by_name, clw_sim_region_canonical(region), &idx))
        return -1;
    return idx;
}

/* Index of a VPC (either id spelling) in the region, or -1. */
static int64_t find_vpc(const struct clw_sim_state *state, int64_t region, const char *id)
{
    uint32_t idx;

    if (region < 0 || !clw_sim_map_get(&state->vpc_by_id, id, &idx) ||
        state->vpcs[idx].region != (uint32_t)region)
        return -1;
    return idx;
}

static struct clw_sim_instance *find_instance(struct clw_sim_state *state, int64_t region,
                                              const char *id)
{
    uint32_t idx;

    if (region < 0 || !clw_sim_map_get(&state->instance_by_id, id, &idx) ||
        state->instances[idx].region != (uint32_t)region)
        return NULL;
    return &state->instances[idx];
}

/* The id listings show as vpcId: the legacy spelling when the VPC has one, as the v2 API did. */
static const char *listed_vpc_id(const struct clw_sim_vpc *vpc)
{
    return vpc->legacy_id != NULL ? vpc->legacy_id : vpc->id;
}

/* ---- tasks ------------------------------------------------------------------------------ */

static uint64_t new_task(struct clw_sim_state *state, const struct clw_sim_rules *rules, bool fail,
                         bool detach, int64_t now_ms)
{
    struct clw_sim_task *task;

    if (state->ntasks == state->tasks_cap) {
        size_t cap = state->tasks_cap == 0 ? 1024 : state->tasks_cap * 2;
        struct clw_sim_task *tasks = realloc(state->tasks, cap * sizeof(*tasks));

        if (tasks == NULL)
            return 0;
        state->tasks = tasks;
        state->tasks_cap = cap;
    }
    task = &state->tasks[state->ntasks++];
    task->done_at_ms = now_ms + rules->task_delay_ms;
    task->fail = fail;
    task->detach = detach;
    return state->task_base + state->ntasks - 1;
}

static enum clw_sim_task_status task_status(const struct clw_sim_task *task, int64_t now_ms)
{
    if (now_ms < task->done_at_ms)
        return CLW_SIM_TASK_RUNNING;
    return task->fail ? CLW_SIM_TASK_FAILED : CLW_SIM_TASK_SUCCESS;
}

uint64_t clw_sim_state_next_task_id(const struct clw_sim_state *state)
{
    return state->task_base + state->ntasks;
}

static void reply_task(struct clw_sim_reply *reply, uint64_t task_id)
{
    if (task_id == 0) {
        clw_sim_reply_error(reply, 6000, "InternalError", "out of memory");
        return;
    }
    reply_success(reply);
    reply->task_id = task_id;
    reply->extra = cJSON_CreateObject();
    if (reply->extra != NULL)
        cJSON_AddNumberToObject(reply->extra, "taskId", (double)task_id);
}

/* ---- actions ---------------------------------------------------------------------------- */

void clw_sim_state_attach(struct clw_sim_state *state, const struct clw_sim_rules *rules,
                          const char *region, const char *vpc_id, const char *const *ids,
                          size_t nids, bool task_fail, int64_t now_ms, struct clw_sim_reply *reply)
{
    int64_t ridx = find_region(state, region);
    int64_t vpc = find_vpc(state, ridx, vpc_id);
    size_t fresh = 0;
    struct clw_sim_region *reg;

    if (vpc < 0) {
        clw_sim_reply_error(reply, rules->business_code, "InvalidVpc.NotFound",
                            "VPC %s not found in region %s", vpc_id, region);
        return;
    }
    /* Check everything first: the call is all-or-nothing. */
    for (size_t i = 0; i < nids; i++) {
        const struct clw_sim_instance *ins = find_instance(state, ridx, ids[i]);

        if (ins == NULL) {
            clw_sim_reply_error(reply, rules->business_code, "InvalidInstance.NotFound",
                                "instance %s not found in region %s", ids[i], region);
            return;
        }
        if (ins->vpc >= 0 && (ins->vpc != vpc || !rules->same_vpc_attach_ok)) {
            clw_sim_reply_error(reply, rules->business_code, "InstanceAlreadyLinked",
                                "instance %s is already linked to %s", ids[i],
                                state->vpcs[ins->vpc].id);
            return;
        }
        if (ins->vpc < 0)
            fresh++;
    }
    reg = &state->regions[ridx];
    if (reg->limit >= 0 && (int64_t)(reg->links + fresh) > reg->limit) {
        clw_sim_reply_error(reply, rules->business_code, "InstanceLimitExceeded",
                            "region %s allows %" PRId64 " classic links, %u in use", reg->name,
                            reg->limit, reg->links);
        return;
    }
    /* A task scripted to fail leaves the links as they were. */
    if (!task_fail) {
        for (size_t i = 0; i < nids; i++) {
            struct clw_sim_instance *ins = find_instance(state, ridx, ids[i]);

            if (ins->vpc < 0)
                link_instance(state, ins, (uint32_t)vpc, now_ms / 1000);
        }
        reply->applied = true;
    }
    reply_task(reply, new_task(state, rules, task_fail, false, now_ms));
}

void clw_sim_state_detach(struct clw_sim_state *state, const struct clw_sim_rules *rules,
                          const char *region, const char *vpc_id, const char *const *ids,
                          size_t nids, bool task_fail, int64_t now_ms, struct clw_sim_reply *reply)
{
    int64_t ridx = find_region(state, region);
    int64_t vpc = find_vpc(state, ridx, vpc_id);

    if (vpc < 0) {
        clw_sim_reply_error(reply, rules->business_code, "InvalidVpc.NotFound",
                            "VPC %s not found in region %s", vpc_id, region);
        return;
    }
    for (size_t i = 0; i < nids; i++) {
        const struct clw_sim_instance *ins = find_instance(state, ridx, ids[i]);

        if (ins == NULL) {
            clw_sim_reply_error(reply, rules->business_code, "InvalidInstance.NotFound",
                                "instance %s not found in region %s", ids[i], region);
            return;
        }
        if (ins->vpc != vpc && !rules->detach_unlinked_ok) {
            clw_sim_reply_error(reply, rules->business_code, "InvalidInstance.NotFound",
                                "instance %s is not linked to %s", ids[i], vpc_id);
            return;
        }
    }
    if (!task_fail) {
        for (size_t i = 0; i < nids; i++) {
            struct clw_sim_instance *ins = find_instance(state, ridx, ids[i]);

            if (ins->vpc == vpc)
                unlink_instance(state, ins);
        }
        reply->applied = true;
    }
    reply_task(reply, new_task(state, rules, task_fail, true, now_ms));
}

static void format_time(int64_t unix_s, char *out, size_t outsz)
{
    time_t t = (time_t)unix_s;
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, outsz, "%Y-%m-%d %H:%M:%S", &tm);
}

static bool link_matches(const struct clw_sim_state *state, const struct clw_sim_instance *ins,
                         uint32_t region, const struct clw_sim_link_query *query)
{
    char link_id[32];

    if (ins->vpc < 0 || ins->region != region)
        return false;
    if (query->vpc_id != NULL) {
        const struct clw_sim_vpc *vpc = &state->vpcs[ins->vpc];

        if (strcmp(vpc->id, query->vpc_id) != 0 &&
            (vpc->legacy_id == NULL || strcmp(vpc->legacy_id, query->vpc_id) != 0))
            return false;
    }
    if (query->lan_ip != NULL && strcmp(ins->lan_ip, query->lan_ip) != 0)
        return false;
    if (query->classic_link_id != NULL) {
        snprintf(link_id, sizeof(link_id), "lnk-%08" PRIx64, ins->link_id);
        if (strcmp(link_id, query->classic_link_id) != 0)
            return false;
    }
    for (size_t f = 0; f < query->nfilters; f++) {
        const struct clw_sim_link_filter *filter = &query->filters[f];
        const struct clw_sim_vpc *vpc = &state->vpcs[ins->vpc];
        bool any = false;

        for (size_t v = 0; !any && v < filter->nvalues; v++) {
            const char *value = filter->values[v];

            any = filter->instance
                      ? strcmp(ins->id, value) == 0
                      : strcmp(vpc->id, value) == 0 ||
                            (vpc->legacy_id != NULL && strcmp(vpc->legacy_id, value) == 0);
        }
        if (!any)
            return false;
    }
    return true;
}

static int by_link_seq(const void *a, const void *b)
{
    const struct clw_sim_instance *const *ia = a;
    const struct clw_sim_instance *const *ib = b;

    return (*ia)->link_seq < (*ib)->link_seq ? -1 : (*ia)->link_seq > (*ib)->link_seq;
}

static cJSON *link_row(const struct clw_sim_state *state, const struct clw_sim_instance *ins)
{
    const struct clw_sim_vpc *vpc = &state->vpcs[ins->vpc];
    cJSON *row = cJSON_CreateObject();
    char buf[32];

    if (row == NULL)
        return NULL;
    cJSON_AddStringToObject(row, "lanIp", ins->lan_ip);
    cJSON_AddStringToObject(row, "unVpcId", vpc->id);
    cJSON_AddStringToObject(row, "vpcId", listed_vpc_id(vpc));
    snprintf(buf, sizeof(buf), "lnk-%08" PRIx64, ins->link_id);
    cJSON_AddStringToObject(row, "classicLinkId", buf);
    format_time(ins->link_time, buf, sizeof(buf));
    cJSON_AddStringToObject(row, "createTime", buf);
    cJSON_AddStringToObject(row, "instanceId", ins->id);
    cJSON_AddStringToObject(row, "instanceName", ins->name);
    return row;
}

/* The API 3.0 row: {"VpcId", "InstanceId"}. */
static cJSON *link_row_v3(const struct clw_sim_state *state, const struct clw_sim_instance *ins)
{
    cJSON *row = cJSON_CreateObject();

    if (row == NULL)
        return NULL;
    cJSON_AddStringToObject(row, "VpcId", state->vpcs[ins->vpc].id);
    cJSON_AddStringToObject(row, "InstanceId", ins->id);
    return row;
}

/* Adds {total_name: total, rows_name: rows} to a success reply; takes rows. */
static void reply_rows(struct clw_sim_reply *reply, const char *total_name, size_t total,
                       const char *rows_name, cJSON *rows)
{
    reply_success(reply);
    reply->extra = cJSON_CreateObject();
    if (reply->extra == NULL || rows == NULL) {
        cJSON_Delete(rows);
        cJSON_Delete(reply->extra);
        reply->extra = NULL;
        clw_sim_reply_error(reply, 6000, "InternalError", "out of memory");
        return;
    }
    cJSON_AddNumberToObject(reply->extra, total_name, (double)total);
    cJSON_AddItemToObject(reply->extra, rows_name, rows);
}

/* Adds {"totalCount": total, "data": rows} to a success reply; takes rows. */
static void reply_listing(struct clw_sim_reply *reply, size_t total, cJSON *rows)
{
    reply_rows(reply, "totalCount", total, "data", rows);
}

void clw_sim_state_describe_links(const struct clw_sim_state *state, const char *region,
                                  const struct clw_sim_link_query *query,
                                  struct clw_sim_reply *reply)
{
    int64_t ridx = find_region(state, region);
    const struct clw_sim_instance **found = NULL;
    size_t total = 0;
    cJSON *rows = cJSON_CreateArray();

    /* A scan of every instance: O(instances) per call, fine for the 10^4 a benchmark seeds. */
    if (ridx >= 0 && state->ninstances > 0) {
        found = malloc(state->ninstances * sizeof(*found));
        if (found == NULL)
            goto done;
        for (size_t i = 0; i < state->ninstances; i++) {
            if (link_matches(state, &state->instances[i], (uint32_t)ridx, query))
                found[total++] = &state->instances[i];
        }
        qsort(found, total, sizeof(*found), by_link_seq);
    }
    for (size_t i = query->offset; rows != NULL && i < total && i < query->offset + query->limit;
         i++) {
        const struct clw_sim_instance *ins = found[query->descending ? total - 1 - i : i];

        cJSON_AddItemToArray(rows, query->v3 ? link_row_v3(state, ins) : link_row(state, ins));
    }

done:
    free(found);
    if (query->v3)
        reply_rows(reply, "TotalCount", total, "ClassicLinkInstanceSet", rows);
    else
        reply_listing(reply, total, rows);
}

static cJSON *vpc_row(const struct clw_sim_state *state, const struct clw_sim_vpc *vpc)
{
    cJSON *row = cJSON_CreateObject();
    char created[32];

    if (row == NULL)
        return NULL;
    format_time(vpc->created, created, sizeof(created));
    cJSON_AddStringToObject(row, "vpcId", vpc->id);
    cJSON_AddStringToObject(row, "unVpcId", vpc->id);
    if (vpc->legacy_id != NULL)
        cJSON_AddStringToObject(row, "legacyVpcId", vpc->legacy_id);
    cJSON_AddStringToObject(row, "vpcName", vpc->name);
    cJSON_AddStringToObject(row, "cidrBlock", vpc->cidr);
    cJSON_AddStringToObject(row, "region", state->regions[vpc->region].name);
    cJSON_AddStringToObject(row, "createTime", created);
    cJSON_AddNumberToObject(row, "classicLinkNum", vpc->links);
    return row;
}

void clw_sim_state_describe_vpcs(const struct clw_sim_state *state, const char *region,
                                 const struct clw_sim_vpc_query *query, struct clw_sim_reply *reply)
{
    int64_t ridx = find_region(state, region);
    size_t total = 0;
    cJSON *rows = cJSON_CreateArray();

    for (size_t i = 0; ridx >= 0 && i < state->nvpcs; i++) {
        const struct clw_sim_vpc *vpc = &state->vpcs[i];

        if (vpc->region != (uint32_t)ridx)
            continue;
        if (query->vpc_id != NULL && strcmp(vpc->id, query->vpc_id) != 0 &&
            (vpc->legacy_id == NULL || strcmp(vpc->legacy_id, query->vpc_id) != 0))
            continue;
        if (query->vpc_name != NULL && strcmp(vpc->name, query->vpc_name) != 0)
            continue;
        if (rows != NULL && total >= query->offset && total < query->offset + query->limit)
            cJSON_AddItemToArray(rows, vpc_row(state, vpc));
        total++;
    }
    reply_listing(reply, total, rows);
}

void clw_sim_state_task_result(const struct clw_sim_state *state, const struct clw_sim_rules *rules,
                               uint64_t task_id, int64_t now_ms, struct clw_sim_reply *reply)
{
    const struct clw_sim_task *task;
    enum clw_sim_task_status status;
    cJSON *data;

    if (task_id < state->task_base || task_id - state->task_base >= state->ntasks) {
        clw_sim_reply_error(reply, rules->business_code, "InvalidTask.NotFound",
                            "task %" PRIu64 " not found", task_id);
        return;
    }
    task = &state->tasks[task_id - state->task_base];
    status = task_status(task, now_ms);
    reply_success(reply);
    reply->extra = cJSON_CreateObject();
    data = cJSON_AddObjectToObject(reply->extra, "data");
    cJSON_AddNumberToObject(data, "status", status);
    if (status == CLW_SIM_TASK_FAILED) {
        cJSON *output = cJSON_AddObjectToObject(data, "output");

        cJSON_AddStringToObject(output, "errorCode", "TaskFailed");
        cJSON_AddStringToObject(output, "errorMsg", "scripted task failure");
    }
}

/* ---- admin view ------------------------------------------------------------------------- */

static cJSON *regions_json(const struct clw_sim_state *state)
{
    cJSON *arr = cJSON_CreateArray();

    for (size_t i = 0; arr != NULL && i < state->nregions; i++) {
        const struct clw_sim_region *reg = &state->regions[i];
        cJSON *row = cJSON_CreateObject();

        cJSON_AddStringToObject(row, "region", reg->name);
        if (reg->limit >= 0)
            cJSON_AddNumberToObject(row, "linkLimit", (double)reg->limit);
        else
            cJSON_AddNullToObject(row, "linkLimit");
        cJSON_AddNumberToObject(row, "links", reg->links);
        cJSON_AddItemToArray(arr, row);
    }
    return arr;
}

static cJSON *instances_json(const struct clw_sim_state *state)
{
    cJSON *arr = cJSON_CreateArray();

    for (size_t i = 0; arr != NULL && i < state->ninstances; i++) {
        const struct clw_sim_instance *ins = &state->instances[i];
        cJSON *row = cJSON_CreateObject();

        cJSON_AddStringToObject(row, "instanceId", ins->id);
        cJSON_AddStringToObject(row, "region", state->regions[ins->region].name);
        cJSON_AddStringToObject(row, "name", ins->name);
        cJSON_AddStringToObject(row, "lanIp", ins->lan_ip);
        if (ins->vpc >= 0)
            cJSON_AddStringToObject(row, "linkedVpc", state->vpcs[ins->vpc].id);
        else
            cJSON_AddNullToObject(row, "linkedVpc");
        cJSON_AddItemToArray(arr, row);
    }
    return arr;
}

static cJSON *links_json(const struct clw_sim_state *state)
{
    cJSON *arr = cJSON_CreateArray();

    for (size_t i = 0; arr != NULL && i < state->ninstances; i++) {
        if (state->instances[i].vpc >= 0)
            cJSON_AddItemToArray(arr, link_row(state, &state->instances[i]));
    }
    return arr;
}

static cJSON *tasks_json(const struct clw_sim_state *state, int64_t now_ms)
{
    cJSON *arr = cJSON_CreateArray();

    for (size_t i = 0; arr != NULL && i < state->ntasks; i++) {
        cJSON *row = cJSON_CreateObject();

        cJSON_AddNumberToObject(row, "taskId", (double)(state->task_base + i));
        cJSON_AddStringToObject(row, "action",
                                state->tasks[i].detach ? "DetachClassicLinkVpc"
                                                       : "AttachClassicLinkVpc");
        cJSON_AddNumberToObject(row, "status", task_status(&state->tasks[i], now_ms));
        cJSON_AddItemToArray(arr, row);
    }
    return arr;
}

cJSON *clw_sim_state_to_json(const struct clw_sim_state *state, int64_t now_ms)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *vpcs = cJSON_CreateArray();

    for (size_t i = 0; vpcs != NULL && i < state->nvpcs; i++) {
        cJSON *row = vpc_row(state, &state->vpcs[i]);

        if (row != NULL && state->vpcs[i].legacy_id != NULL)
            cJSON_AddStringToObject(row, "legacyId", state->vpcs[i].legacy_id);
        cJSON_AddItemToArray(vpcs, row);
    }
    if (root == NULL || vpcs == NULL) {
        cJSON_Delete(root);
        cJSON_Delete(vpcs);
        return NULL;
    }
    cJSON_AddItemToObject(root, "regions", regions_json(state));
    cJSON_AddItemToObject(root, "vpcs", vpcs);
    cJSON_AddItemToObject(root, "instances", instances_json(state));
    cJSON_AddItemToObject(root, "links", links_json(state));
    cJSON_AddItemToObject(root, "tasks", tasks_json(state, now_ms));
    cJSON_AddNumberToObject(root, "nextTaskId", (double)clw_sim_state_next_task_id(state));
    return root;
}
