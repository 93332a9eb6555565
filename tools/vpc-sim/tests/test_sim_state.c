/* vpc-sim unit tests: the simulated world's actions (attach, detach, listings, tasks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sim_state.h"

/* Two VPCs in Guangzhou (one with a legacy id), one in Shanghai; ins-c is linked to vpc-b;
 * Guangzhou allows 3 links. */
static const char seed_text[] =
    "{\"regions\": {\"ap-guangzhou\": {\"linkLimit\": 3}},"
    " \"vpcs\": [{\"vpcId\": \"vpc-a\", \"legacyId\": \"gz_vpc_1\", \"region\": \"gz\"},"
    "            {\"vpcId\": \"vpc-b\", \"region\": \"ap-guangzhou\"},"
    "            {\"vpcId\": \"vpc-s\", \"region\": \"ap-shanghai\"}],"
    " \"instances\": [{\"instanceId\": \"ins-a\"}, {\"instanceId\": \"ins-b\"},"
    "                 {\"instanceId\": \"ins-c\", \"linkedVpc\": \"vpc-b\"},"
    "                 {\"instanceId\": \"ins-d\"}, {\"instanceId\": \"ins-e\"},"
    "                 {\"instanceId\": \"ins-s\", \"region\": \"ap-shanghai\"}]}";

enum op { ATTACH, DETACH };

struct action_case {
    const char *name;
    enum op op;
    bool same_vpc_ok;
    bool detach_unlinked_ok;
    const char *region;
    const char *vpc;
    const char *ids[6];
    int code;
    const char *code_desc;
    bool applied;
    const char *linked_after[6][2]; /* instance -> VPC id ("" none) checked afterwards */
};

/* One case per row reads better than one field per line. */
/* clang-format off */
static const struct action_case cases[] = {
    {"attach two", ATTACH, false, false, "ap-guangzhou", "vpc-a", {"ins-a", "ins-b"}, 0,
     "Success", true, {{"ins-a", "vpc-a"}, {"ins-b", "vpc-a"}}},
    {"legacy id and short region", ATTACH, false, false, "gz", "gz_vpc_1", {"ins-a"}, 0,
     "Success", true, {{"ins-a", "vpc-a"}}},
    {"unknown VPC", ATTACH, false, false, "ap-guangzhou", "vpc-zz", {"ins-a"}, 4000,
     "InvalidVpc.NotFound", false, {{"ins-a", ""}}},
    {"VPC of another region", ATTACH, false, false, "ap-guangzhou", "vpc-s", {"ins-a"}, 4000,
     "InvalidVpc.NotFound", false, {{"ins-a", ""}}},
    {"all or nothing: one unknown instance", ATTACH, false, false, "ap-guangzhou", "vpc-a",
     {"ins-a", "ins-zz"}, 4000, "InvalidInstance.NotFound", false, {{"ins-a", ""}}},
    {"instance of another region", ATTACH, false, false, "ap-guangzhou", "vpc-a", {"ins-s"},
     4000, "InvalidInstance.NotFound", false, {{"ins-s", ""}}},
    {"linked to another VPC", ATTACH, true, false, "ap-guangzhou", "vpc-a", {"ins-a", "ins-c"},
     4000, "InstanceAlreadyLinked", false, {{"ins-a", ""}, {"ins-c", "vpc-b"}}},
    {"same VPC as error", ATTACH, false, false, "ap-guangzhou", "vpc-b", {"ins-c"}, 4000,
     "InstanceAlreadyLinked", false, {{"ins-c", "vpc-b"}}},
    {"same VPC as success", ATTACH, true, false, "ap-guangzhou", "vpc-b", {"ins-c", "ins-a"},
     0, "Success", true, {{"ins-c", "vpc-b"}, {"ins-a", "vpc-b"}}},
    {"region limit (1 used, 3 allowed)", ATTACH, false, false, "ap-guangzhou", "vpc-a",
     {"ins-a", "ins-b", "ins-d"}, 4000, "InstanceLimitExceeded", false, {{"ins-a", ""}}},
    {"region limit exactly reached", ATTACH, false, false, "ap-guangzhou", "vpc-a",
     {"ins-a", "ins-b"}, 0, "Success", true, {{"ins-b", "vpc-a"}}},
    {"detach linked", DETACH, false, false, "ap-guangzhou", "vpc-b", {"ins-c"}, 0, "Success",
     true, {{"ins-c", ""}}},
    {"detach not linked as error", DETACH, false, false, "ap-guangzhou", "vpc-a", {"ins-c"},
     4000, "InvalidInstance.NotFound", false, {{"ins-c", "vpc-b"}}},
    {"detach not linked as success", DETACH, false, true, "ap-guangzhou", "vpc-a",
     {"ins-c", "ins-a"}, 0, "Success", true, {{"ins-c", "vpc-b"}}},
    {"detach unknown VPC", DETACH, false, false, "ap-guangzhou", "vpc-zz", {"ins-c"}, 4000,
     "InvalidVpc.NotFound", false, {{"ins-c", "vpc-b"}}},
};
/* clang-format on */

static void load_seed(struct clw_sim_state *state)
{
    cJSON *seed = cJSON_Parse(seed_text);
    char err[256] = "";

    assert_non_null(seed);
    if (clw_sim_state_load(state, seed, 500, err, sizeof(err)) != 0)
        fail_msg("seed: %s", err);
    cJSON_Delete(seed);
}

static const char *linked_vpc(const struct clw_sim_state *state, const char *id)
{
    for (size_t i = 0; i < state->ninstances; i++) {
        if (strcmp(state->instances[i].id, id) == 0)
            return state->instances[i].vpc >= 0 ? state->vpcs[state->instances[i].vpc].id : "";
    }
    return "(missing)";
}

static void test_action_table(void **unused)
{
    (void)unused;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct action_case *c = &cases[i];
        struct clw_sim_rules rules = {4000, c->same_vpc_ok, c->detach_unlinked_ok, 0};
        struct clw_sim_state state;
        struct clw_sim_reply reply = {0};
        size_t nids = 0;

        load_seed(&state);
        while (nids < 6 && c->ids[nids] != NULL)
            nids++;
        if (c->op == ATTACH)
            clw_sim_state_attach(&state, &rules, c->region, c->vpc, c->ids, nids, false, 1000,
                                 &reply);
        else
            clw_sim_state_detach(&state, &rules, c->region, c->vpc, c->ids, nids, false, 1000,
                                 &reply);
        if (reply.code != c->code || strcmp(reply.code_desc, c->code_desc) != 0 ||
            reply.applied != c->applied)
            fail_msg("%s: got %d %s applied=%d (%s)", c->name, reply.code, reply.code_desc,
                     reply.applied, reply.message);
        assert_int_equal(reply.task_id != 0, c->code == 0);
        for (size_t k = 0; k < 6 && c->linked_after[k][0] != NULL; k++) {
            const char *got = linked_vpc(&state, c->linked_after[k][0]);

            if (strcmp(got, c->linked_after[k][1]) != 0)
                fail_msg("%s: %s linked to '%s', want '%s'", c->name, c->linked_after[k][0], got,
                         c->linked_after[k][1]);
        }
        cJSON_Delete(reply.extra);
        clw_sim_state_free(&state);
    }
}

static void test_business_code_is_configurable(void **unused)
{
    struct clw_sim_rules rules = {4300, false, false, 0};
    struct clw_sim_state state;
    struct clw_sim_reply reply = {0};
    const char *ids[] = {"ins-a"};

    (void)unused;
    load_seed(&state);
    clw_sim_state_attach(&state, &rules, "ap-guangzhou", "vpc-zz", ids, 1, false, 0, &reply);
    assert_int_equal(reply.code, 4300);
    assert_string_equal(reply.code_desc, "InvalidVpc.NotFound");
    clw_sim_state_free(&state);
}

static void test_listing_and_paging(void **unused)
{
    struct clw_sim_rules rules = {4000, false, false, 0};
    struct clw_sim_state state;
    struct clw_sim_reply reply = {0};
    struct clw_sim_link_query q = {.vpc_id = "gz_vpc_1", .offset = 1, .limit = 1};
    const char *ids[] = {"ins-a", "ins-b"};
    const cJSON *data;
    const cJSON *row;

    (void)unused;
    load_seed(&state);
    clw_sim_state_attach(&state, &rules, "ap-guangzhou", "vpc-a", ids, 2, false, 0, &reply);
    cJSON_Delete(reply.extra);
    memset(&reply, 0, sizeof(reply));
    clw_sim_state_describe_links(&state, "ap-guangzhou", &q, &reply);
    assert_int_equal(reply.code, 0);
    assert_int_equal(cJSON_GetObjectItem(reply.extra, "totalCount")->valueint, 2);
    data = cJSON_GetObjectItem(reply.extra, "data");
    assert_int_equal(cJSON_GetArraySize(data), 1);
    row = cJSON_GetArrayItem(data, 0);
    assert_string_equal(cJSON_GetObjectItem(row, "instanceId")->valuestring, "ins-b");
    assert_string_equal(cJSON_GetObjectItem(row, "vpcId")->valuestring, "gz_vpc_1");
    assert_string_equal(cJSON_GetObjectItem(row, "unVpcId")->valuestring, "vpc-a");
    cJSON_Delete(reply.extra);

    memset(&reply, 0, sizeof(reply));
    q.vpc_id = NULL;
    q.offset = 0;
    q.limit = 50;
    clw_sim_state_describe_links(&state, "ap-shanghai", &q, &reply);
    assert_int_equal(cJSON_GetObjectItem(reply.extra, "totalCount")->valueint, 0);
    cJSON_Delete(reply.extra);
    clw_sim_state_free(&state);
}

static void test_task_life(void **unused)
{
    struct clw_sim_rules rules = {4000, false, false, 100};
    struct clw_sim_state state;
    struct clw_sim_reply reply = {0};
    const char *ids[] = {"ins-a"};
    const char *ids2[] = {"ins-b"};
    uint64_t ok_task;
    uint64_t failed_task;
    struct {
        uint64_t *task;
        int64_t now_ms;
        int status;
    } checks[] = {
        {&ok_task, 1050, 2},
        {&ok_task, 1100, 0},
        {&failed_task, 1050, 2},
        {&failed_task, 1200, 1},
    };

    (void)unused;
    load_seed(&state);
    clw_sim_state_attach(&state, &rules, "gz", "vpc-a", ids, 1, false, 1000, &reply);
    ok_task = reply.task_id;
    assert_int_equal(ok_task, 500);
    cJSON_Delete(reply.extra);
    memset(&reply, 0, sizeof(reply));
    clw_sim_state_attach(&state, &rules, "gz", "vpc-a", ids2, 1, true, 1000, &reply);
    failed_task = reply.task_id;
    assert_int_equal(failed_task, 501);
    assert_false(reply.applied); /* a task scripted to fail leaves the links alone */
    assert_string_equal(linked_vpc(&state, "ins-b"), "");
    cJSON_Delete(reply.extra);
    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
        memset(&reply, 0, sizeof(reply));
        clw_sim_state_task_result(&state, &rules, *checks[i].task, checks[i].now_ms, &reply);
        assert_int_equal(reply.code, 0);
        assert_int_equal(
            cJSON_GetObjectItem(cJSON_GetObjectItem(reply.extra, "data"), "status")->valueint,
            checks[i].status);
        cJSON_Delete(reply.extra);
    }
    memset(&reply, 0, sizeof(reply));
    clw_sim_state_task_result(&state, &rules, 999, 0, &reply);
    assert_string_equal(reply.code_desc, "InvalidTask.NotFound");
    clw_sim_state_free(&state);
}

struct seed_case {
    const char *name;
    const char *seed;
    bool ok;
};

static const struct seed_case seed_cases[] = {
    {"empty", "{}", true},
    {"generated", "{\"generate\": {\"vpcs\": 2, \"instances\": 100, \"linked\": 10}}", true},
    {"not an object", "[]", false},
    {"duplicate instance", "{\"instances\": [{\"instanceId\": \"i\"}, {\"instanceId\": \"i\"}]}",
     false},
    {"link to unknown VPC", "{\"instances\": [{\"instanceId\": \"i\", \"linkedVpc\": \"v\"}]}",
     false},
    {"VPC without id", "{\"vpcs\": [{\"region\": \"gz\"}]}", false},
    {"bad limit", "{\"defaultLinkLimit\": -1}", false},
    {"linked without VPC", "{\"generate\": {\"instances\": 3, \"linked\": 1}}", false},
};

static void test_seed_table(void **unused)
{
    (void)unused;
    for (size_t i = 0; i < sizeof(seed_cases) / sizeof(seed_cases[0]); i++) {
        cJSON *seed = cJSON_Parse(seed_cases[i].seed);
        struct clw_sim_state state;
        char err[256] = "";
        int rc = clw_sim_state_load(&state, seed, 1, err, sizeof(err));

        if ((rc == 0) != seed_cases[i].ok)
            fail_msg("%s: rc=%d (%s)", seed_cases[i].name, rc, err);
        if (rc != 0)
            assert_true(err[0] != '\0');
        clw_sim_state_free(&state);
        cJSON_Delete(seed);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_action_table),
        cmocka_unit_test(test_business_code_is_configurable),
        cmocka_unit_test(test_listing_and_paging),
        cmocka_unit_test(test_task_life),
        cmocka_unit_test(test_seed_table),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
