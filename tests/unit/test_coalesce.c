/* Unit tests for coalesce: the coalescing key, what each member gets for each answer class
 * (alone and shared), how a call is split, when a reconciled state holds, and when two answers
 * are the same error. */
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

/* ---- verdicts: what every member gets -------------------------------------------------------- */

struct verdict_case {
    const char *name;
    enum clw_class cls;
    int version;           /* 2 or 3 */
    const char *code_desc; /* the API's string code */
    const char *message;
    enum clw_action action;
    size_t n_members; /* requests the attempt carried */
    enum clw_verdict want;
};

#define V2        2
#define V3        3
#define ATT       CLW_ACTION_ATTACH
#define DET       CLW_ACTION_DETACH
#define V3_LINKED "UnsupportedOperation.ClassicInstanceIdAlreadyExists"

static const struct verdict_case verdict_cases[] = {
    /* the same for one request and for many */
    {"success fans out", CLW_CLASS_SUCCESS, V2, "Success", "", ATT, 50, CLW_VERDICT_SUCCESS},
    {"success alone", CLW_CLASS_SUCCESS, V2, NULL, "", ATT, 1, CLW_VERDICT_SUCCESS},
    {"a transient failure of the service retries the group", CLW_CLASS_TRANSIENT, V2, NULL, NULL,
     ATT, 50, CLW_VERDICT_RETRY},
    {"throttling retries the group", CLW_CLASS_TRANSIENT, V2, "RequestLimitExceeded", "", ATT, 7,
     CLW_VERDICT_RETRY},
    {"throttling naming an instance still retries the group", CLW_CLASS_TRANSIENT, V2,
     "RequestLimitExceeded", "ins-a", ATT, 7, CLW_VERDICT_RETRY},
    {"re-sign the group at once", CLW_CLASS_RESIGN, V2, "InvalidNonce", "", DET, 9,
     CLW_VERDICT_RESIGN},
    {"a worker fault holds the group", CLW_CLASS_WORKER_FAULT, V2, "AuthFailure", "", ATT, 9,
     CLW_VERDICT_FAULT},
    /* a lock concerns a resource: alone it retries, shared it isolates */
    {"a lock alone retries", CLW_CLASS_TRANSIENT, V2, "ActionLocked", "", ATT, 1,
     CLW_VERDICT_RETRY},
    {"a lock in a group isolates", CLW_CLASS_TRANSIENT, V2, "ActionLocked", "", ATT, 10,
     CLW_VERDICT_ISOLATE},
    {"v3: a resource in use in a group isolates", CLW_CLASS_TRANSIENT, V3, "ResourceInUse", "", ATT,
     10, CLW_VERDICT_ISOLATE},
    {"a transient error naming an instance isolates", CLW_CLASS_TRANSIENT, V2, "InternalError",
     "ins-b busy", ATT, 3, CLW_VERDICT_ISOLATE},
    {"a transient error naming only the VPC retries the group", CLW_CLASS_TRANSIENT, V2,
     "InternalError", "vpc-1 busy", ATT, 3, CLW_VERDICT_RETRY},
    /* errors about the VPC: every member, alone or shared, attach or detach */
    {"an unknown VPC fails every member", CLW_CLASS_PERMANENT, V2, "InvalidVpc.NotFound",
     "VPC vpc-1 not found", ATT, 50, CLW_VERDICT_FAIL},
    {"an unknown VPC fails a detach group", CLW_CLASS_PERMANENT, V2, "InvalidVpc.NotFound",
     "VPC vpc-1 not found", DET, 3, CLW_VERDICT_FAIL},
    {"an unknown VPC alone", CLW_CLASS_PERMANENT, V2, "InvalidVpc.NotFound", "", ATT, 1,
     CLW_VERDICT_FAIL},
    {"v3: a lone detach from an unknown VPC fails (not reconciled)", CLW_CLASS_PERMANENT, V3,
     "ResourceNotFound", "VPC vpc-1 not found in region ap-guangzhou", DET, 1, CLW_VERDICT_FAIL},
    {"v3: a detach group's unknown VPC fails every member", CLW_CLASS_PERMANENT, V3,
     "ResourceNotFound", "VPC vpc-1 not found", DET, 5, CLW_VERDICT_FAIL},
    /* business errors about some members: alone as always, shared splits */
    {"an unknown instance alone fails", CLW_CLASS_PERMANENT, V2, "InvalidInstance.NotFound",
     "instance ins-a not found", ATT, 1, CLW_VERDICT_FAIL},
    {"an unknown instance splits a group", CLW_CLASS_PERMANENT, V2, "InvalidInstance.NotFound",
     "instance ins-a not found", ATT, 50, CLW_VERDICT_SPLIT},
    {"the region's link limit splits a group", CLW_CLASS_PERMANENT, V2, "InstanceLimitExceeded",
     "region allows 5", ATT, 2, CLW_VERDICT_SPLIT},
    {"the region's link limit alone fails", CLW_CLASS_PERMANENT, V2, "InstanceLimitExceeded", "",
     ATT, 1, CLW_VERDICT_FAIL},
    {"an unknown code splits a group", CLW_CLASS_PERMANENT, V2, "Something.New", "", ATT, 2,
     CLW_VERDICT_SPLIT},
    /* parameter and operation errors: by what they name */
    {"an invalid parameter naming nobody is confirmed alone", CLW_CLASS_PERMANENT, V2,
     "InvalidParameter", "", DET, 2, CLW_VERDICT_CONFIRM},
    {"v2 code 4000 without a string code naming nobody is confirmed", CLW_CLASS_PERMANENT, V2, NULL,
     "at most 100 instanceIds per call", ATT, 8, CLW_VERDICT_CONFIRM},
    {"an invalid parameter naming an instance splits", CLW_CLASS_PERMANENT, V2, "InvalidParameter",
     "instance ins-c listed twice", ATT, 3, CLW_VERDICT_SPLIT},
    {"v3: a malformed VPC id fails every member", CLW_CLASS_PERMANENT, V3,
     "InvalidParameterValue.Malformed", "VpcId vpc-1 is not a VPC id", ATT, 8, CLW_VERDICT_FAIL},
    {"v3: a VPC-wide unsupported operation naming nobody is confirmed", CLW_CLASS_PERMANENT, V3,
     "UnsupportedOperation.CIDRUnSupportedClassicLink", "", ATT, 8, CLW_VERDICT_CONFIRM},
    {"v3: a call too long splits (a limit, not a parameter)", CLW_CLASS_PERMANENT, V3,
     "InvalidParameterValue.Limit", "at most 10 InstanceIds per call", ATT, 8, CLW_VERDICT_SPLIT},
    {"v3: missing parameter alone fails", CLW_CLASS_PERMANENT, V3, "MissingParameter", "", ATT, 1,
     CLW_VERDICT_FAIL},
    /* "already": reconciled alone; shared when it names a member, else split */
    {"already linked alone reconciles", CLW_CLASS_PERMANENT, V2, "InstanceAlreadyLinked", "", ATT,
     1, CLW_VERDICT_RECONCILE},
    {"already linked naming a member reconciles a group", CLW_CLASS_PERMANENT, V2,
     "InstanceAlreadyLinked", "instance ins-a is already linked to vpc-9", ATT, 50,
     CLW_VERDICT_RECONCILE},
    {"already linked naming nobody splits a group", CLW_CLASS_PERMANENT, V2,
     "InstanceAlreadyLinked", "", ATT, 50, CLW_VERDICT_SPLIT},
    {"a detach's unknown instance reconciles", CLW_CLASS_PERMANENT, V2, "InvalidInstance.NotFound",
     "", DET, 1, CLW_VERDICT_RECONCILE},
    {"a detach group's not-linked instance reconciles", CLW_CLASS_PERMANENT, V2,
     "InvalidInstance.NotFound", "instance ins-b is not linked to vpc-1", DET, 8,
     CLW_VERDICT_RECONCILE},
    {"already linked is no signal for a detach", CLW_CLASS_PERMANENT, V2, "InstanceAlreadyLinked",
     "", DET, 1, CLW_VERDICT_FAIL},
    /* API 3.0 */
    {"v3: a not-found naming only the VPC fails every member", CLW_CLASS_PERMANENT, V3,
     "ResourceNotFound", "VPC vpc-1 not found in region ap-guangzhou", ATT, 5, CLW_VERDICT_FAIL},
    {"v3: a not-found naming an instance splits", CLW_CLASS_PERMANENT, V3, "ResourceNotFound",
     "instance ins-a not found in region ap-guangzhou", ATT, 5, CLW_VERDICT_SPLIT},
    {"v3: a not-found naming nothing splits", CLW_CLASS_PERMANENT, V3, "ResourceNotFound",
     "resource not found", ATT, 5, CLW_VERDICT_SPLIT},
    {"v3: a VPC id that only starts the same is not named", CLW_CLASS_PERMANENT, V3,
     "ResourceNotFound", "VPC vpc-10 not found", ATT, 5, CLW_VERDICT_SPLIT},
    {"v3: a detach group's unknown instance reconciles", CLW_CLASS_PERMANENT, V3,
     "ResourceNotFound", "instance ins-a not found", DET, 5, CLW_VERDICT_RECONCILE},
    {"v3: already linked naming a member reconciles a group", CLW_CLASS_PERMANENT, V3, V3_LINKED,
     "instance ins-c is already linked", ATT, 5, CLW_VERDICT_RECONCILE},
    {"v3: already linked naming nobody splits a group", CLW_CLASS_PERMANENT, V3, V3_LINKED, "", ATT,
     5, CLW_VERDICT_SPLIT},
    {"v3: the link limit splits a group", CLW_CLASS_PERMANENT, V3, "LimitExceeded", "", ATT, 5,
     CLW_VERDICT_SPLIT},
    {"v3: a v2 code string means nothing special", CLW_CLASS_PERMANENT, V3, "InvalidVpc.NotFound",
     "VPC vpc-1", ATT, 5, CLW_VERDICT_SPLIT},
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
        /* v2: a throttling answer is code 4400, another transient one 6000 */
        int throttling = c->code_desc != NULL && strcmp(c->code_desc, "RequestLimitExceeded") == 0;
        ans.code = c->cls == CLW_CLASS_SUCCESS     ? 0
                   : throttling                    ? 4400
                   : c->cls == CLW_CLASS_TRANSIENT ? 6000
                                                   : 4000;
        ans.code_desc = (char *)c->code_desc;
        ans.message = (char *)c->message;
        struct clw_coalesce_sent sent = {c->action, "vpc-1", call_ids, N_OF(call_ids),
                                         c->n_members};
        enum clw_verdict got = clw_coalesce_verdict(c->cls, &ans, &sent);
        if (got != c->want)
            fail_msg("%s: %s, want %s", c->name, clw_verdict_name(got), clw_verdict_name(c->want));
    }
}

/* ---- splitting ----------------------------------------------------------------------------- */

#define M(ids)                                                                                     \
    {                                                                                              \
        (ids), N_OF(ids)                                                                           \
    }

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
    const struct clw_coalesce_member m[] = {M(s0), M(s1), M(s2), M(s3), M(s4)};
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

/* ---- the same error? --------------------------------------------------------------------- */

struct same_case {
    const char *name;
    long code_a, code_b;
    const char *desc_a, *desc_b;
    const char *msg_a, *msg_b;
    int want;
};

static const struct same_case same_cases[] = {
    {"identical", 4000, 4000, "InvalidParameter", "InvalidParameter", "bad", "bad", 1},
    {"another message (the call's make-up mattered)", 4000, 4000, "InvalidParameter",
     "InvalidParameter", "at most 10", "at most 1", 0},
    {"another string code", 4000, 4000, "InvalidParameter", "MissingParameter", "", "", 0},
    {"another numeric code", 4000, 5000, "X", "X", "", "", 0},
    {"absent and empty messages are the same", 4000, 4000, "X", "X", NULL, "", 1},
};

static void test_same_error(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_OF(same_cases); i++) {
        const struct same_case *c = &same_cases[i];
        struct clw_answer a, b;
        memset(&a, 0, sizeof(a));
        memset(&b, 0, sizeof(b));
        a.api_version = b.api_version = 2;
        a.has_code = b.has_code = 1;
        a.code = c->code_a;
        b.code = c->code_b;
        a.code_desc = (char *)c->desc_a;
        b.code_desc = (char *)c->desc_b;
        a.message = (char *)c->msg_a;
        b.message = (char *)c->msg_b;
        if (clw_coalesce_same_error(&a, &b) != c->want)
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
        cmocka_unit_test(test_keys),        cmocka_unit_test(test_verdicts),
        cmocka_unit_test(test_split),       cmocka_unit_test(test_dense),
        cmocka_unit_test(test_state_holds), cmocka_unit_test(test_same_error),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests_name("coalesce", tests, NULL, NULL);
}
