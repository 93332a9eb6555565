/* vpc-sim: the simulated VPC world (regions, VPCs, classic instances, links, tasks). */
#ifndef CLW_SIM_STATE_H
#define CLW_SIM_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "sim_map.h"

struct clw_sim_region {
    char *name;    /* canonical, e.g. ap-guangzhou */
    int64_t limit; /* most classic links in the region, -1: unlimited */
    uint32_t links;
};

struct clw_sim_vpc {
    char *id;        /* vpc-xxxxxxxx */
    char *legacy_id; /* e.g. gz_vpc_245, or NULL */
    char *name;
    char *cidr;
    uint32_t region;
    uint32_t links; /* classicLinkNum */
    int64_t created;
};

struct clw_sim_instance {
    char *id; /* ins-xxxxxxxx */
    char *name;
    char *lan_ip;
    uint32_t region;
    int32_t vpc;       /* index of the linked VPC, -1: not linked */
    uint64_t link_seq; /* order in which links were made, for listings */
    uint64_t link_id;  /* the number in classicLinkId */
    int64_t link_time; /* unix seconds */
};

enum clw_sim_task_status {
    CLW_SIM_TASK_SUCCESS = 0,
    CLW_SIM_TASK_FAILED = 1,
    CLW_SIM_TASK_RUNNING = 2,
};

struct clw_sim_task {
    int64_t done_at_ms; /* wall clock ms when it stops running */
    bool fail;
    bool detach;
};

/* Behaviour choices the docs leave open; settable at start and at run time. */
struct clw_sim_rules {
    int business_code;       /* numeric code sent with business string codes (4000) */
    bool same_vpc_attach_ok; /* attaching to the VPC it is already linked to succeeds */
    bool detach_unlinked_ok; /* detaching an instance not linked to that VPC succeeds */
    int64_t task_delay_ms;   /* how long a task stays running */
};

struct clw_sim_state {
    struct clw_sim_region *regions;
    size_t nregions;
    struct clw_sim_vpc *vpcs;
    size_t nvpcs;
    struct clw_sim_instance *instances;
    size_t ninstances;
    struct clw_sim_task *tasks; /* tasks[i] has id task_base + i */
    size_t ntasks;
    size_t tasks_cap;
    uint64_t task_base;
    uint64_t next_link_seq;
    int64_t default_limit;
    struct clw_sim_map region_by_name; /* canonical name -> index */
    struct clw_sim_map vpc_by_id;      /* both id spellings -> index */
    struct clw_sim_map instance_by_id; /* id -> index */
};

/* What an action answered. code 0 is success; otherwise code/code_desc/message form the error
 * body. extra holds fields added to a success body (taskId, totalCount, data...). */
struct clw_sim_reply {
    int code;
    char code_desc[64];
    char message[256];
    cJSON *extra;     /* owned by the reply */
    bool applied;     /* the call changed state */
    uint64_t task_id; /* 0: none */
};

/* Builds the state from a seed document (see README.md "Seed file"); first_task_id is the id of
 * the next task (ids keep growing across reloads). On failure writes a reason into err, leaves
 * state empty and returns -1. */
int clw_sim_state_load(struct clw_sim_state *state, const cJSON *seed, uint64_t first_task_id,
                       char *err, size_t errsz);

void clw_sim_state_free(struct clw_sim_state *state);

/* The canonical name of a region: the old short forms (gz, sh, bj, ...) map to ap-*. Returns
 * name itself when it is no known short form. */
const char *clw_sim_region_canonical(const char *name);

/* Actions. region is the request's Region; ids are distinct. Every function fills reply
 * (reply->extra starts NULL) and never fails otherwise. now_ms is wall-clock milliseconds. */
void clw_sim_state_attach(struct clw_sim_state *state, const struct clw_sim_rules *rules,
                          const char *region, const char *vpc_id, const char *const *ids,
                          size_t nids, bool task_fail, int64_t now_ms, struct clw_sim_reply *reply);
void clw_sim_state_detach(struct clw_sim_state *state, const struct clw_sim_rules *rules,
                          const char *region, const char *vpc_id, const char *const *ids,
                          size_t nids, bool task_fail, int64_t now_ms, struct clw_sim_reply *reply);

/* An API 3.0 listing filter: the link's VPC id (either spelling) or instance id is one of
 * values. */
struct clw_sim_link_filter {
    bool instance; /* instance-id; else vpc-id */
    const char *const *values;
    size_t nvalues;
};

struct clw_sim_link_query {
    const char *vpc_id;                        /* NULL: any */
    const char *classic_link_id;               /* NULL: any */
    const char *lan_ip;                        /* NULL: any */
    const struct clw_sim_link_filter *filters; /* every one must match */
    size_t nfilters;
    bool descending;
    bool v3; /* answer {TotalCount, ClassicLinkInstanceSet: [{VpcId, InstanceId}]} */
    size_t offset;
    size_t limit;
};
/* Links of the region ordered by creation (reversed when descending), the page at
 * offset/limit: v2 {totalCount, data: [rows]} or, with v3, {TotalCount, ClassicLinkInstanceSet}. */
void clw_sim_state_describe_links(const struct clw_sim_state *state, const char *region,
                                  const struct clw_sim_link_query *query,
                                  struct clw_sim_reply *reply);

struct clw_sim_vpc_query {
    const char *vpc_id;   /* NULL: any */
    const char *vpc_name; /* NULL: any */
    size_t offset;
    size_t limit;
};
void clw_sim_state_describe_vpcs(const struct clw_sim_state *state, const char *region,
                                 const struct clw_sim_vpc_query *query,
                                 struct clw_sim_reply *reply);

void clw_sim_state_task_result(const struct clw_sim_state *state, const struct clw_sim_rules *rules,
                               uint64_t task_id, int64_t now_ms, struct clw_sim_reply *reply);

/* Id of the next task to be created. */
uint64_t clw_sim_state_next_task_id(const struct clw_sim_state *state);

/* Everything, for GET /_sim/state. NULL on allocation failure. */
cJSON *clw_sim_state_to_json(const struct clw_sim_state *state, int64_t now_ms);

/* Fills reply with an error: code, code_desc and a formatted message. */
void clw_sim_reply_error(struct clw_sim_reply *reply, int code, const char *code_desc,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
