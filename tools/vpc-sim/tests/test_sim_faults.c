/* vpc-sim unit tests: fault spellings, fault documents, scripted and random picks, latency. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sim_faults.h"

struct parse_case {
    const char *text;
    int rc;
    enum clw_sim_fault_kind kind;
    int code;
    const char *code_desc;
};

static const struct parse_case parse_cases[] = {
    {"code:4400", 0, CLW_SIM_FAULT_CODE, 4400, ""},
    {"code:4000:ActionLocked", 0, CLW_SIM_FAULT_CODE, 4000, "ActionLocked"},
    {"http:503", 0, CLW_SIM_FAULT_HTTP, 503, ""},
    {"drop", 0, CLW_SIM_FAULT_DROP, 0, ""},
    {"hang", 0, CLW_SIM_FAULT_HANG, 0, ""},
    {"task_fail", 0, CLW_SIM_FAULT_TASK_FAIL, 0, ""},
    {"business:InvalidInstance.NotFound", 0, CLW_SIM_FAULT_BUSINESS, 0, "InvalidInstance.NotFound"},
    {"business:InstanceLimitExceeded", 0, CLW_SIM_FAULT_BUSINESS, 0, "InstanceLimitExceeded"},
    {"business:ResourceNotFound", -1, CLW_SIM_FAULT_NONE, 0, ""},
    {"business:", -1, CLW_SIM_FAULT_NONE, 0, ""},
    {"http:200", -1, CLW_SIM_FAULT_NONE, 0, ""},
    {"http:5000", -1, CLW_SIM_FAULT_NONE, 0, ""},
    {"code:", -1, CLW_SIM_FAULT_NONE, 0, ""},
    {"code:44x", -1, CLW_SIM_FAULT_NONE, 0, ""},
    {"code:4400:", -1, CLW_SIM_FAULT_NONE, 0, ""},
    {"explode", -1, CLW_SIM_FAULT_NONE, 0, ""},
};

static void test_parse_table(void **unused)
{
    (void)unused;
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        const struct parse_case *c = &parse_cases[i];
        struct clw_sim_fault fault;
        char back[96];
        int rc = clw_sim_fault_parse(c->text, &fault);

        if (rc != c->rc)
            fail_msg("%s: rc=%d", c->text, rc);
        if (rc != 0)
            continue;
        assert_int_equal(fault.kind, c->kind);
        assert_int_equal(fault.code, c->code);
        assert_string_equal(fault.code_desc, c->code_desc);
        clw_sim_fault_format(&fault, back, sizeof(back));
        assert_string_equal(back, c->text);
    }
}

static struct clw_sim_faults faults_from(const char *json)
{
    struct clw_sim_faults faults;
    cJSON *doc = cJSON_Parse(json);
    char err[256] = "";

    clw_sim_faults_init(&faults, 7);
    assert_non_null(doc);
    if (clw_sim_faults_apply_json(&faults, doc, err, sizeof(err)) != 0)
        fail_msg("%s: %s", json, err);
    cJSON_Delete(doc);
    return faults;
}

struct pick_step {
    const char *action;
    const char *id;       /* NULL: the call names no instance */
    const char *expected; /* formatted fault, "none" */
};

static void test_scripted_picks(void **unused)
{
    struct clw_sim_faults faults = faults_from(
        "{\"scripts\": ["
        " {\"instanceId\": \"ins-1\", \"times\": 2, \"fault\": \"http:503\"},"
        " {\"instanceId\": \"ins-2\", \"fault\": \"drop\", \"apply\": true},"
        " {\"action\": \"DescribeVpcEx\", \"fault\": \"code:4100\"},"
        " {\"instanceId\": \"ins-3\", \"action\": \"DetachClassicLinkVpc\", \"fault\": \"hang\"}"
        "]}");
    const struct pick_step steps[] = {
        {"AttachClassicLinkVpc", "ins-1", "http:503"},
        {"AttachClassicLinkVpc", "ins-9", "none"},
        {"AttachClassicLinkVpc", "ins-1", "http:503"},
        {"AttachClassicLinkVpc", "ins-1", "none"},
        {"AttachClassicLinkVpc", "ins-2", "apply+drop"},
        {"AttachClassicLinkVpc", "ins-2", "none"},
        {"DescribeVpcClassicLink", NULL, "none"},
        {"DescribeVpcEx", NULL, "code:4100"},
        {"DescribeVpcEx", NULL, "none"},
        {"AttachClassicLinkVpc", "ins-3", "none"},
        {"DetachClassicLinkVpc", "ins-3", "hang"},
    };

    (void)unused;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct clw_sim_fault fault;
        char got[96];

        clw_sim_faults_pick(&faults, steps[i].action, &steps[i].id, steps[i].id ? 1 : 0, &fault);
        clw_sim_fault_format(&fault, got, sizeof(got));
        if (strcmp(got, steps[i].expected) != 0)
            fail_msg("step %zu: got %s, want %s", i, got, steps[i].expected);
    }
    assert_int_equal(faults.nscripts, 0);
    clw_sim_faults_free(&faults);
}

static void test_one_call_counts_for_every_matching_script(void **unused)
{
    struct clw_sim_faults faults =
        faults_from("{\"scripts\": [{\"instanceId\": \"a\", \"fault\": \"code:5100\"},"
                    "               {\"instanceId\": \"b\", \"fault\": \"code:6000\"}]}");
    const char *both[] = {"a", "b"};
    struct clw_sim_fault fault;

    (void)unused;
    clw_sim_faults_pick(&faults, "AttachClassicLinkVpc", both, 2, &fault);
    assert_int_equal(fault.code, 5100);
    assert_int_equal(faults.nscripts, 0);
    clw_sim_faults_pick(&faults, "AttachClassicLinkVpc", both, 2, &fault);
    assert_int_equal(fault.kind, CLW_SIM_FAULT_NONE);
    clw_sim_faults_free(&faults);
}

static void test_rate_is_seeded_and_roughly_right(void **unused)
{
    const char *doc = "{\"rate\": 0.25, \"kinds\": [\"code:4400\", \"http:502\"], "
                      "\"rngSeed\": 99}";
    struct clw_sim_faults a = faults_from(doc);
    struct clw_sim_faults b = faults_from(doc);
    int hits = 0;

    (void)unused;
    for (int i = 0; i < 4000; i++) {
        struct clw_sim_fault fa;
        struct clw_sim_fault fb;

        clw_sim_faults_pick(&a, "DescribeVpcEx", NULL, 0, &fa);
        clw_sim_faults_pick(&b, "DescribeVpcEx", NULL, 0, &fb);
        assert_int_equal(fa.kind, fb.kind); /* same seed, same sequence */
        assert_int_equal(fa.code, fb.code);
        if (fa.kind != CLW_SIM_FAULT_NONE) {
            assert_true(fa.code == 4400 || fa.code == 502);
            assert_false(fa.apply);
            hits++;
        }
    }
    assert_in_range(hits, 850, 1150);
    clw_sim_faults_free(&a);
    clw_sim_faults_free(&b);
}

static void test_latency(void **unused)
{
    struct clw_sim_faults fixed = faults_from("{\"latencyMs\": 50}");
    struct clw_sim_faults jitter = faults_from("{\"latencyMs\": 10, \"latencyJitterMs\": 20}");
    struct clw_sim_faults expo =
        faults_from("{\"latencyJitterMs\": 10, \"latencyDist\": \"exponential\"}");
    double sum = 0;

    (void)unused;
    for (int i = 0; i < 2000; i++) {
        uint32_t ms = clw_sim_faults_latency(&jitter);

        assert_int_equal(clw_sim_faults_latency(&fixed), 50);
        assert_in_range(ms, 10, 30);
        ms = clw_sim_faults_latency(&expo);
        assert_in_range(ms, 0, 200);
        sum += ms;
    }
    assert_in_range((uint32_t)(sum / 2000), 7, 12); /* mean ~10, floor takes ~0.5 */
    clw_sim_faults_free(&fixed);
    clw_sim_faults_free(&jitter);
    clw_sim_faults_free(&expo);
}

struct bad_doc_case {
    const char *doc;
    const char *error_part;
};

static const struct bad_doc_case bad_docs[] = {
    {"{\"rate\": 2}", "rate"},
    {"{\"kinds\": [\"task_fail\"]}", "kinds"},
    {"{\"latencyDist\": \"normal\"}", "latencyDist"},
    {"{\"scripts\": [{\"instanceId\": \"i\"}]}", "fault"},
    {"{\"scripts\": [{\"fault\": \"drop\", \"times\": 0}]}", "times"},
    {"{\"rte\": 0.1}", "unknown key"},
    {"[]", "object"},
};

static void test_bad_documents_change_nothing(void **unused)
{
    struct clw_sim_faults faults =
        faults_from("{\"rate\": 0.5, \"scripts\": [{\"fault\": \"drop\"}]}");

    (void)unused;
    for (size_t i = 0; i < sizeof(bad_docs) / sizeof(bad_docs[0]); i++) {
        cJSON *doc = cJSON_Parse(bad_docs[i].doc);
        char err[256] = "";

        assert_int_equal(clw_sim_faults_apply_json(&faults, doc, err, sizeof(err)), -1);
        if (strstr(err, bad_docs[i].error_part) == NULL)
            fail_msg("%s: error '%s' does not name %s", bad_docs[i].doc, err,
                     bad_docs[i].error_part);
        cJSON_Delete(doc);
    }
    assert_true(faults.rate == 0.5);
    assert_int_equal(faults.nscripts, 1);
    clw_sim_faults_free(&faults);
}

static void test_clear_removes_scripts(void **unused)
{
    struct clw_sim_faults faults = faults_from("{\"scripts\": [{\"fault\": \"drop\"}]}");
    cJSON *doc = cJSON_Parse("{\"clear\": true, \"scripts\": [{\"fault\": \"hang\"}]}");
    char err[256];

    (void)unused;
    assert_int_equal(clw_sim_faults_apply_json(&faults, doc, err, sizeof(err)), 0);
    assert_int_equal(faults.nscripts, 1);
    assert_int_equal(faults.scripts[0].fault.kind, CLW_SIM_FAULT_HANG);
    cJSON_Delete(doc);
    clw_sim_faults_free(&faults);
}

/* A business script names its instance in the fault it picks; it needs one, and no apply. */
static void test_business_scripts(void **unused)
{
    struct clw_sim_faults faults =
        faults_from("{\"scripts\":[{\"instanceId\":\"ins-7\","
                    "\"fault\":\"business:InvalidInstance.NotFound\"}]}");
    const char *ids[] = {"ins-1", "ins-7", "ins-9"};
    struct clw_sim_fault fault;
    char err[256];

    (void)unused;
    clw_sim_faults_pick(&faults, "AttachClassicLinkVpc", ids, 3, &fault);
    assert_int_equal(fault.kind, CLW_SIM_FAULT_BUSINESS);
    assert_string_equal(fault.code_desc, "InvalidInstance.NotFound");
    assert_string_equal(fault.instance_id, "ins-7");
    assert_int_equal(faults.nscripts, 0);
    for (size_t i = 0; i < 3; i++) {
        static const char *const bad[] = {
            "{\"scripts\":[{\"fault\":\"business:InstanceLimitExceeded\"}]}",
            "{\"scripts\":[{\"instanceId\":\"ins-1\",\"apply\":true,"
            "\"fault\":\"business:InstanceLimitExceeded\"}]}",
            "{\"kinds\":[\"business:InstanceLimitExceeded\"]}",
        };
        cJSON *doc = cJSON_Parse(bad[i]);

        if (clw_sim_faults_apply_json(&faults, doc, err, sizeof(err)) != -1)
            fail_msg("accepted %s", bad[i]);
        cJSON_Delete(doc);
    }
    assert_int_equal(faults.nscripts, 0);
    clw_sim_faults_free(&faults);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_scripted_picks),
        cmocka_unit_test(test_one_call_counts_for_every_matching_script),
        cmocka_unit_test(test_rate_is_seeded_and_roughly_right),
        cmocka_unit_test(test_latency),
        cmocka_unit_test(test_bad_documents_change_nothing),
        cmocka_unit_test(test_clear_removes_scripts),
        cmocka_unit_test(test_business_scripts),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
