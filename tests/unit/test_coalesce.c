/* Unit tests for coalesce: which requests may share a call, how a call is formed, what each
 * member gets for each answer class, how a call is split, and when a reconciled state holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "clw/coalesce.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- keys ---------------------------------------------------------------------------------- */

static void test_keys(void **state)
{
    char a[128], b[128], tiny[8];
    (void)state;
    assert_int_equal(clw_coalesce_key(a, sizeof(a), CLW_ACTION_ATTACH, "ap-guangzhou", "vpc-1"), 0);
    assert_string_equal(a, "AttachClassicLinkVpc|ap-guangzhou|vpc-1");
    /* the action, the region and the vpcId as written all tell keys apart */
    assert_int_equal(clw_coalesce_key(b, sizeof(b), CLW_ACTION_DETACH, "ap-guangzhou", "vpc-1"), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(clw_coalesce_key(b, sizeof(b), CLW_ACTION_ATTACH, "ap-shanghai", "vpc-1"), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(clw_coalesce_key(b, sizeof(b), CLW_ACTION_ATTACH, "ap-guangzhou", "gz_vpc_1"),
                     0);
    assert_string_not_equal(a, b);
    assert_int_equal(clw_coalesce_key(tiny, sizeof(tiny), CLW_ACTION_ATTACH, "r", "vpc-1"), -1);
    assert_string_equal(tiny, "");
}

/* ---- who may share a call ------------------------------------------------------------------ */

static const char *const ins_a[] = {"ins-a"};
static const char *const ins_b[] = {"ins-b"};
static const char *const ins_ab[] = {"ins-a", "ins-b"};
static const char *const ins_cd[] = {"ins-c", "ins-d"};
static const char *const ins_10[] = {"ins-10"};
static const char *const ins_1[] = {"ins-1"};

#define KEY_1 "AttachClassicLinkVpc|ap-guangzhou|vpc-1"
#define KEY_2 "AttachClassicLinkVpc|ap-guangzhou|vpc-2"
#define M(key, ids)                                                                                \
    {                                                                                              \
        (key), (ids), N_OF(ids)                                                                    \
    }

struct compat_case {
    const char *name;
    struct clw_coalesce_member a, b;
    int want;
};

static const struct compat_case compat_cases[] = {
    {"same key, other instances", M(KEY_1, ins_a), M(KEY_1, ins_b), 1},
    {"same key, several instances each", M(KEY_1, ins_ab), M(KEY_1, ins_cd), 1},
    {"same key, a shared instance", M(KEY_1, ins_ab), M(KEY_1, ins_b), 0},
    {"same key, the same instance", M(KEY_1, ins_a), M(KEY_1, ins_a), 0},
    {"another VPC", M(KEY_1, ins_a), M(KEY_2, ins_b), 0},
    {"ids that are prefixes of each other are different", M(KEY_1, ins_1), M(KEY_1, ins_10), 1},
};

static void test_compatible(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_OF(compat_cases); i++) {
        const struct compat_case *c = &compat_cases[i];
        if (clw_coalesce_compatible(&c->a, &c->b) != c->want ||
            clw_coalesce_compatible(&c->b, &c->a) != c->want)
            fail_msg("%s: want %d", c->name, c->want);
    }
}

/* ---- forming a call ------------------------------------------------------------------------- */

static const char *const ids60[60] = {
    "ins-0",  "ins-1",  "ins-2",  "ins-3",  "ins-4",  "ins-5",  "ins-6",  "ins-7",  "ins-8",
    "ins-9",  "ins-10", "ins-11", "ins-12", "ins-13", "ins-14", "ins-15", "ins-16", "ins-17",
    "ins-18", "ins-19", "ins-20", "ins-21", "ins-22", "ins-23", "ins-24", "ins-25", "ins-26",
    "ins-27", "ins-28", "ins-29", "ins-30", "ins-31", "ins-32", "ins-33", "ins-34", "ins-35",
    "ins-36", "ins-37", "ins-38", "ins-39", "ins-40", "ins-41", "ins-42", "ins-43", "ins-44",
    "ins-45", "ins-46", "ins-47", "ins-48", "ins-49", "ins-50", "ins-51", "ins-52", "ins-53",
    "ins-54", "ins-55", "ins-56", "ins-57", "ins-58", "ins-59"};
static const char *const ids50[50] = {
    "ins-60",  "ins-61",  "ins-62",  "ins-63",  "ins-64",  "ins-65",  "ins-66",  "ins-67",
    "ins-68",  "ins-69",  "ins-70",  "ins-71",  "ins-72",  "ins-73",  "ins-74",  "ins-75",
    "ins-76",  "ins-77",  "ins-78",  "ins-79",  "ins-80",  "ins-81",  "ins-82",  "ins-83",
    "ins-84",  "ins-85",  "ins-86",  "ins-87",  "ins-88",  "ins-89",  "ins-90",  "ins-91",
    "ins-92",  "ins-93",  "ins-94",  "ins-95",  "ins-96",  "ins-97",  "ins-98",  "ins-99",
    "ins-100", "ins-101", "ins-102", "ins-103", "ins-104", "ins-105", "ins-106", "ins-107",
    "ins-108", "ins-109"};

struct take_case {
    const char *name;
    struct clw_coalesce_member m[4];
    size_t n;
    size_t max;
    size_t want;
};

static const struct take_case take_cases[] = {
    {"nothing waits", {{0}}, 0, 100, 0},
    {"one request", {M(KEY_1, ins_a)}, 1, 100, 1},
    {"three small requests share", {M(KEY_1, ins_a), M(KEY_1, ins_b), M(KEY_1, ins_cd)}, 3, 100, 3},
    {"the instances fill the call exactly",
     {M(KEY_1, ins_a), M(KEY_1, ins_b), M(KEY_1, ins_cd)},
     3,
     4,
     3},
    {"one instance too many ends the call",
     {M(KEY_1, ins_a), M(KEY_1, ins_b), M(KEY_1, ins_cd)},
     3,
     3,
     2},
    {"coalescing off: one each", {M(KEY_1, ins_a), M(KEY_1, ins_b)}, 2, 1, 1},
    {"a request larger than the limit still runs, alone",
     {M(KEY_1, ins_ab), M(KEY_1, ins_cd)},
     2,
     1,
     1},
    {"60 + 50 instances do not fit 100",
     {M(KEY_1, ids60), M(KEY_1, ids50), M(KEY_1, ins_a)},
     3,
     100,
     1},
    {"first come, first served: a later small one does not jump ahead",
     {M(KEY_1, ids50), M(KEY_1, ids60), M(KEY_1, ins_a)},
     3,
     100,
     1},
    {"a shared instance ends the call",
     {M(KEY_1, ins_a), M(KEY_1, ins_b), M(KEY_1, ins_ab)},
     3,
     100,
     2},
    {"another key ends the call", {M(KEY_1, ins_a), M(KEY_2, ins_b)}, 2, 100, 1},
};

static void test_take(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_OF(take_cases); i++) {
        const struct take_case *c = &take_cases[i];
        size_t got = clw_coalesce_take(c->m, c->n, c->max);
        if (got != c->want)
            fail_msg("%s: took %zu, want %zu", c->name, got, c->want);
    }
}

/* ---- verdicts: what every member gets -------------------------------------------------------- */

struct verdict_case {
    const char *name;
    enum clw_class cls;
    int version;           /* 2 or 3 */
    const char *code_desc; /* the API's string code */
    const char *message;
    enum clw_action action;
    size_t n_members;
    int reconciled;
    enum clw_verdict want;
};

#define V2        2
#define V3        3
#define ATT       CLW_ACTION_ATTACH
#define DET       CLW_ACTION_DETACH
#define V3_LINKED "UnsupportedOperation.ClassicInstanceIdAlreadyExists"

static const struct verdict_case verdict_cases[] = {
    /* the same for one request and for many */
    {"success fans out", CLW_CLASS_SUCCESS, V2, "Success", "", ATT, 50, 0, CLW_VERDICT_SUCCESS},
    {"success alone", CLW_CLASS_SUCCESS, V2, NULL, "", ATT, 1, 0, CLW_VERDICT_SUCCESS},
    {"transient retries the group", CLW_CLASS_TRANSIENT, V2, NULL, NULL, ATT, 50, 0,
     CLW_VERDICT_RETRY},
    {"throttling retries the group", CLW_CLASS_TRANSIENT, V2, "RequestLimitExceeded", "", ATT, 7, 0,
     CLW_VERDICT_RETRY},
    {"re-sign the group at once", CLW_CLASS_RESIGN, V2, "InvalidNonce", "", DET, 9, 0,
     CLW_VERDICT_RESIGN},
    {"a worker fault holds the group", CLW_CLASS_WORKER_FAULT, V2, "AuthFailure", "", ATT, 9, 0,
     CLW_VERDICT_FAULT},
    {"an unknown VPC fails every member", CLW_CLASS_PERMANENT, V2, "InvalidVpc.NotFound",
     "VPC vpc-1 not found", ATT, 50, 0, CLW_VERDICT_FAIL},
    {"an unknown VPC fails a detach group", CLW_CLASS_PERMANENT, V2, "InvalidVpc.NotFound",
     "VPC vpc-1 not found", DET, 3, 0, CLW_VERDICT_FAIL},
    {"an unknown VPC alone", CLW_CLASS_PERMANENT, V2, "InvalidVpc.NotFound", "", ATT, 1, 0,
     CLW_VERDICT_FAIL},
    /* business errors about one instance: alone as always, shared splits */
    {"an unknown instance alone fails", CLW_CLASS_PERMANENT, V2, "InvalidInstance.NotFound",
     "instance ins-a not found", ATT, 1, 0, CLW_VERDICT_FAIL},
    {"an unknown instance splits a group", CLW_CLASS_PERMANENT, V2, "InvalidInstance.NotFound",
     "instance ins-a not found", ATT, 50, 0, CLW_VERDICT_SPLIT},
    {"the region's link limit splits a group", CLW_CLASS_PERMANENT, V2, "InstanceLimitExceeded",
     "region allows 5", ATT, 2, 0, CLW_VERDICT_SPLIT},
    {"the region's link limit alone fails", CLW_CLASS_PERMANENT, V2, "InstanceLimitExceeded", "",
     ATT, 1, 0, CLW_VERDICT_FAIL},
    {"an unknown code splits a group", CLW_CLASS_PERMANENT, V2, "Something.New", "", ATT, 2, 0,
     CLW_VERDICT_SPLIT},
    {"an invalid parameter splits a group", CLW_CLASS_PERMANENT, V2, "InvalidParameter", "", DET, 2,
     0, CLW_VERDICT_SPLIT},
    /* "already": reconciled first, alone or shared; shared again after that splits */
    {"already linked alone reconciles", CLW_CLASS_PERMANENT, V2, "InstanceAlreadyLinked", "", ATT,
     1, 0, CLW_VERDICT_RECONCILE},
    {"already linked alone reconciles, even again", CLW_CLASS_PERMANENT, V2,
     "InstanceAlreadyLinked", "", ATT, 1, 1, CLW_VERDICT_RECONCILE},
    {"already linked reconciles a group once", CLW_CLASS_PERMANENT, V2, "InstanceAlreadyLinked",
     "instance ins-a is already linked to vpc-9", ATT, 50, 0, CLW_VERDICT_RECONCILE},
    {"already linked after a reconciliation splits", CLW_CLASS_PERMANENT, V2,
     "InstanceAlreadyLinked", "", ATT, 50, 1, CLW_VERDICT_SPLIT},
    {"a detach's unknown instance reconciles", CLW_CLASS_PERMANENT, V2, "InvalidInstance.NotFound",
     "", DET, 1, 0, CLW_VERDICT_RECONCILE},
    {"a detach group's unknown instance reconciles", CLW_CLASS_PERMANENT, V2,
     "InvalidInstance.NotFound", "", DET, 8, 0, CLW_VERDICT_RECONCILE},
    {"a detach group after a reconciliation splits", CLW_CLASS_PERMANENT, V2,
     "InvalidInstance.NotFound", "", DET, 8, 1, CLW_VERDICT_SPLIT},
    {"already linked is no signal for a detach", CLW_CLASS_PERMANENT, V2, "InstanceAlreadyLinked",
     "", DET, 1, 0, CLW_VERDICT_FAIL},
    /* API 3.0 */
    {"v3: a not-found naming only the VPC fails every member", CLW_CLASS_PERMANENT, V3,
     "ResourceNotFound", "VPC vpc-1 not found in region ap-guangzhou", ATT, 5, 0, CLW_VERDICT_FAIL},
    {"v3: a not-found naming an instance splits", CLW_CLASS_PERMANENT, V3, "ResourceNotFound",
     "instance ins-a not found in region ap-guangzhou", ATT, 5, 0, CLW_VERDICT_SPLIT},
    {"v3: a not-found naming nothing splits", CLW_CLASS_PERMANENT, V3, "ResourceNotFound",
     "resource not found", ATT, 5, 0, CLW_VERDICT_SPLIT},
    {"v3: a VPC id that only starts the same is not named", CLW_CLASS_PERMANENT, V3,
     "ResourceNotFound", "VPC vpc-10 not found", ATT, 5, 0, CLW_VERDICT_SPLIT},
    {"v3: a detach group's unknown VPC fails every member", CLW_CLASS_PERMANENT, V3,
     "ResourceNotFound", "VPC vpc-1 not found", DET, 5, 0, CLW_VERDICT_FAIL},
    {"v3: a detach group's unknown instance reconciles", CLW_CLASS_PERMANENT, V3,
     "ResourceNotFound", "instance ins-a not found", DET, 5, 0, CLW_VERDICT_RECONCILE},
    {"v3: already linked reconciles a group", CLW_CLASS_PERMANENT, V3, V3_LINKED, "", ATT, 5, 0,
     CLW_VERDICT_RECONCILE},
    {"v3: the link limit splits a group", CLW_CLASS_PERMANENT, V3, "LimitExceeded", "", ATT, 5, 0,
     CLW_VERDICT_SPLIT},
    {"v3: a v2 code string means nothing special", CLW_CLASS_PERMANENT, V3, "InvalidVpc.NotFound",
     "VPC vpc-1", ATT, 5, 0, CLW_VERDICT_SPLIT},
};

static void test_verdicts(void **state)
{
    static const char *const call_ids[] = {"ins-a", "ins-b", "ins-c"};
    (void)state;
    for (size_t i = 0; i < N_OF(verdict_cases); i++) {
        const struct verdict_case *c = &verdict_cases[i];
        struct clw_answer ans;
        memset(&ans, 0, sizeof(ans));
        ans.api_version = c->version;
        ans.transport = CLW_TRANSPORT_OK;
        ans.http_status = 200;
        ans.body_json = 1;
        ans.has_code = c->version == 2 || c->cls == CLW_CLASS_SUCCESS;
        ans.code = c->cls == CLW_CLASS_SUCCESS ? 0 : 4000;
        ans.code_desc = (char *)c->code_desc;
        ans.message = (char *)c->message;
        enum clw_verdict got = clw_coalesce_verdict(c->cls, &ans, c->action, "vpc-1", call_ids,
                                                    N_OF(call_ids), c->n_members, c->reconciled);
        if (got != c->want)
            fail_msg("%s: %s, want %s", c->name, clw_verdict_name(got), clw_verdict_name(c->want));
    }
}

/* ---- splitting ----------------------------------------------------------------------------- */

static const char *const s0[] = {"ins-1"};
static const char *const s1[] = {"ins-10", "ins-11"};
static const char *const s2[] = {"ins-2"};
static const char *const s3[] = {"ins-3"};
static const char *const s4[] = {"ins-4"};

struct split_case {
    const char *name;
    const char *msg;
    size_t n;
    size_t want_k;
    int want_named;
    size_t want_order[5];
};

static const struct split_case split_cases[] = {
    {"the named member goes first, alone",
     "instance ins-2 not found in region ap-guangzhou",
     5,
     1,
     1,
     {2, 0, 1, 3, 4}},
    {"a whole word only: ins-1 is not ins-10",
     "instance ins-10 is already linked to vpc-9",
     5,
     1,
     1,
     {1, 0, 2, 3, 4}},
    {"two named members go first together", "ins-1 and ins-4 are broken", 5, 2, 1, {0, 4, 1, 2, 3}},
    {"nothing named: halves, the larger first",
     "region allows 5 classic links",
     5,
     3,
     0,
     {0, 1, 2, 3, 4}},
    {"no message: halves", NULL, 4, 2, 0, {0, 1, 2, 3}},
    {"every member named: halves", "ins-1 ins-11 ins-2", 3, 2, 0, {0, 1, 2}},
    {"two members: one each", "", 2, 1, 0, {0, 1}},
};

static void test_split(void **state)
{
    const struct clw_coalesce_member m[] = {M(KEY_1, s0), M(KEY_1, s1), M(KEY_1, s2), M(KEY_1, s3),
                                            M(KEY_1, s4)};
    (void)state;
    for (size_t i = 0; i < N_OF(split_cases); i++) {
        const struct split_case *c = &split_cases[i];
        size_t order[5];
        int named = -1;
        size_t k = clw_coalesce_split(m, c->n, c->msg, order, &named);
        if (k != c->want_k)
            fail_msg("%s: first part %zu, want %zu", c->name, k, c->want_k);
        if (named != c->want_named)
            fail_msg("%s: named %d, want %d", c->name, named, c->want_named);
        for (size_t j = 0; j < c->n; j++)
            if (order[j] != c->want_order[j])
                fail_msg("%s: order[%zu] = %zu, want %zu", c->name, j, order[j], c->want_order[j]);
    }
}

/* When is a lineage of named splits dense enough that the rest is halved too? */
struct dense_case {
    unsigned strikes;
    size_t lineage;
    int want;
};

static const struct dense_case dense_cases[] = {
    {1, 2, 0},    /* the first named split only peels: one bad request is the common case */
    {1, 100, 0},  /*   whatever the call's size */
    {2, 9, 1},    /* a call of 9 whose second member fails too: halve the rest */
    {2, 20, 1},   /* one strike per 10 members: exactly dense */
    {2, 21, 0},   /* just under */
    {5, 100, 0},  /* 5 % bad in a call of 100: peeling stays cheaper in calls */
    {10, 100, 1}, /* 10 % bad: halve */
    {3, 0, 1},    /* no lineage recorded: dense */
};

static void test_dense(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_OF(dense_cases); i++) {
        const struct dense_case *c = &dense_cases[i];
        int got = clw_coalesce_dense(c->strikes, c->lineage);
        if (got != c->want)
            fail_msg("strikes %u of %zu: %d, want %d", c->strikes, c->lineage, got, c->want);
    }
}

/* ---- reconciliation: does a member's requested state hold? --------------------------------- */

struct holds_case {
    const char *name;
    enum clw_action action;
    unsigned char found[3];
    size_t n;
    int complete;
    int want;
};

static const struct holds_case holds_cases[] = {
    {"attach, every instance linked", ATT, {1, 1, 1}, 3, 1, 1},
    {"attach, every instance linked, more pages unread", ATT, {1, 1}, 2, 0, 1},
    {"attach, one instance missing", ATT, {1, 0, 1}, 3, 1, 0},
    {"attach, none linked", ATT, {0}, 1, 1, 0},
    {"attach without instances never holds", ATT, {0}, 0, 1, 0},
    {"detach, none linked, complete listing", DET, {0, 0}, 2, 1, 1},
    {"detach, none linked, incomplete listing", DET, {0, 0}, 2, 0, 0},
    {"detach, one still linked", DET, {0, 1}, 2, 1, 0},
};

static void test_state_holds(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_OF(holds_cases); i++) {
        const struct holds_case *c = &holds_cases[i];
        if (clw_coalesce_state_holds(c->action, c->found, c->n, c->complete) != c->want)
            fail_msg("%s: want %d", c->name, c->want);
    }
}

static void test_names(void **state)
{
    (void)state;
    for (int v = CLW_VERDICT_SUCCESS; v <= CLW_VERDICT_FAULT; v++)
        assert_non_null(clw_verdict_name((enum clw_verdict)v));
    assert_string_equal(clw_verdict_name(CLW_VERDICT_SPLIT), "split");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),        cmocka_unit_test(test_compatible),
        cmocka_unit_test(test_take),        cmocka_unit_test(test_verdicts),
        cmocka_unit_test(test_split),       cmocka_unit_test(test_dense),
        cmocka_unit_test(test_state_holds), cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests_name("coalesce", tests, NULL, NULL);
}
