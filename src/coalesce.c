/* Coalescing rules: request keys, forming calls, the verdict on a call's answer, splits. */
#include "clw/coalesce.h"

#include <stdio.h>
#include <string.h>

int clw_coalesce_key(char *out, size_t len, enum clw_action action, const char *region,
                     const char *vpc_id)
{
    int n = snprintf(out, len, "%s|%s|%s", clw_action_name(action), region ? region : "",
                     vpc_id ? vpc_id : "");
    if (n < 0 || (size_t)n >= len) {
        if (len > 0)
            out[0] = '\0';
        return -1;
    }
    return 0;
}

static int shares_instance(const struct clw_coalesce_member *a, const struct clw_coalesce_member *b)
{
    for (size_t i = 0; i < a->n_instances; i++)
        for (size_t k = 0; k < b->n_instances; k++)
            if (strcmp(a->instance_ids[i], b->instance_ids[k]) == 0)
                return 1;
    return 0;
}

int clw_coalesce_compatible(const struct clw_coalesce_member *a,
                            const struct clw_coalesce_member *b)
{
    return strcmp(a->key, b->key) == 0 && !shares_instance(a, b);
}

size_t clw_coalesce_take(const struct clw_coalesce_member *m, size_t n, size_t max_instances)
{
    if (n == 0)
        return 0;
    size_t instances = m[0].n_instances;
    size_t k = 1;
    for (; k < n; k++) {
        if (instances + m[k].n_instances > max_instances)
            break;
        int ok = 1;
        for (size_t j = 0; j < k && ok; j++)
            ok = clw_coalesce_compatible(&m[j], &m[k]);
        if (!ok)
            break;
        instances += m[k].n_instances;
    }
    return k;
}

const char *clw_verdict_name(enum clw_verdict v)
{
    switch (v) {
    case CLW_VERDICT_SUCCESS:
        return "success";
    case CLW_VERDICT_FAIL:
        return "fail";
    case CLW_VERDICT_RECONCILE:
        return "reconcile";
    case CLW_VERDICT_SPLIT:
        return "split";
    case CLW_VERDICT_RETRY:
        return "retry";
    case CLW_VERDICT_RESIGN:
        return "resign";
    case CLW_VERDICT_FAULT:
        break;
    }
    return "fault";
}

static int is_word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* 1 when word occurs in text bounded by non-id characters. */
static int names(const char *text, const char *word)
{
    size_t len = strlen(word);
    if (text == NULL || len == 0)
        return 0;
    for (const char *p = strstr(text, word); p != NULL; p = strstr(p + 1, word)) {
        int before = p == text || !is_word_char(p[-1]);
        int after = !is_word_char(p[len]);
        if (before && after)
            return 1;
    }
    return 0;
}

static int names_any(const char *text, const char *const *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (names(text, ids[i]))
            return 1;
    return 0;
}

/* An error about the VPC every member shares: fanning it out gives each member what its lone
 * call would give, whichever the API checks first (the VPC, or the instances, which then all
 * passed). */
static int about_the_vpc(const struct clw_answer *ans, const char *vpc_id,
                         const char *const *instance_ids, size_t n_instances)
{
    if (ans->code_desc == NULL)
        return 0;
    if (ans->api_version != 3)
        return strcmp(ans->code_desc, "InvalidVpc.NotFound") == 0;
    return strcmp(ans->code_desc, "ResourceNotFound") == 0 && names(ans->message, vpc_id) &&
           !names_any(ans->message, instance_ids, n_instances);
}

enum clw_verdict clw_coalesce_verdict(enum clw_class cls, const struct clw_answer *ans,
                                      enum clw_action action, const char *vpc_id,
                                      const char *const *instance_ids, size_t n_instances,
                                      size_t n_members, int reconciled)
{
    switch (cls) {
    case CLW_CLASS_SUCCESS:
        return CLW_VERDICT_SUCCESS;
    case CLW_CLASS_TRANSIENT:
        return CLW_VERDICT_RETRY;
    case CLW_CLASS_RESIGN:
        return CLW_VERDICT_RESIGN;
    case CLW_CLASS_WORKER_FAULT:
        return CLW_VERDICT_FAULT;
    case CLW_CLASS_PERMANENT:
        break;
    }
    int already = action == CLW_ACTION_ATTACH ? clw_classify_already_linked(ans)
                                              : clw_classify_not_found(ans);
    if (n_members <= 1)
        return already ? CLW_VERDICT_RECONCILE : CLW_VERDICT_FAIL;
    if (about_the_vpc(ans, vpc_id, instance_ids, n_instances))
        return CLW_VERDICT_FAIL;
    if (already && !reconciled)
        return CLW_VERDICT_RECONCILE;
    return CLW_VERDICT_SPLIT;
}

size_t clw_coalesce_split(const struct clw_coalesce_member *m, size_t n, const char *msg,
                          size_t *order, int *named)
{
    size_t k = 0;
    *named = 0;
    for (size_t i = 0; i < n; i++)
        if (names_any(msg, m[i].instance_ids, m[i].n_instances))
            order[k++] = i;
    if (k > 0 && k < n) {
        size_t j = k;
        for (size_t i = 0; i < n; i++)
            if (!names_any(msg, m[i].instance_ids, m[i].n_instances))
                order[j++] = i;
        *named = 1;
        return k;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    return (n + 1) / 2;
}

int clw_coalesce_dense(unsigned strikes, size_t lineage)
{
    return strikes >= 2 && (size_t)strikes * CLW_COALESCE_DENSE_EVERY >= lineage;
}

int clw_coalesce_state_holds(enum clw_action action, const unsigned char *found, size_t n,
                             int complete)
{
    size_t linked = 0;
    for (size_t i = 0; i < n; i++)
        linked += found[i] != 0;
    if (action == CLW_ACTION_ATTACH)
        return n > 0 && linked == n;
    return linked == 0 && complete;
}
