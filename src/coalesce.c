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
    case CLW_VERDICT_CONFIRM:
        return "confirm";
    case CLW_VERDICT_ISOLATE:
        return "isolate";
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

int clw_coalesce_names(const char *text, const struct clw_coalesce_member *m)
{
    for (size_t i = 0; i < m->n_instances; i++)
        if (names(text, m->instance_ids[i]))
            return 1;
    return 0;
}

/* 1 when text names any instance the attempt carried. */
static int names_sent(const char *text, const struct clw_coalesce_sent *sent)
{
    struct clw_coalesce_member all = {sent->instance_ids, sent->n_instances};
    return clw_coalesce_names(text, &all);
}

/* An error about the VPC every member shares: fanning it out gives each member what its lone
 * call would give, whichever the API checks first (the VPC, or the instances, which then all
 * passed). A lone Detach too: its instances cannot be linked to a VPC that does not exist, and
 * the answer says so (v3 ResourceNotFound is also the "instance not found" of a Detach). */
static int about_the_vpc(const struct clw_answer *ans, const struct clw_coalesce_sent *sent)
{
    if (ans->code_desc == NULL)
        return 0;
    if (ans->api_version != 3)
        return strcmp(ans->code_desc, "InvalidVpc.NotFound") == 0;
    return strcmp(ans->code_desc, "ResourceNotFound") == 0 && names(ans->message, sent->vpc_id) &&
           !names_sent(ans->message, sent);
}

/* Errors about the request's parameters or the operation as a whole (not a limit, not a
 * resource): v2 4000 and the common API 3.0 families. Whether one concerns a member, the VPC
 * or the call depends on what its message names. */
static int parameter_error(const struct clw_answer *ans)
{
    static const char *const prefixes[] = {"InvalidParameter", "MissingParameter",
                                           "UnknownParameter", "UnsupportedOperation"};
    const char *desc = ans->code_desc;
    if (desc == NULL)
        return ans->api_version != 3 && ans->has_code && ans->code == 4000;
    if (strstr(desc, "Limit") != NULL)
        return 0; /* a limit: some members may fit where all of them do not */
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(desc, prefixes[i], strlen(prefixes[i])) == 0)
            return 1;
    return 0;
}

static enum clw_verdict transient_verdict(const struct clw_answer *ans,
                                          const struct clw_coalesce_sent *sent)
{
    if (sent->n_members > 1 && !clw_classify_throttled(ans) &&
        (clw_classify_resource_busy(ans) || names_sent(ans->message, sent)))
        return CLW_VERDICT_ISOLATE;
    return CLW_VERDICT_RETRY;
}

enum clw_verdict clw_coalesce_verdict(enum clw_class cls, const struct clw_answer *ans,
                                      const struct clw_coalesce_sent *sent)
{
    switch (cls) {
    case CLW_CLASS_SUCCESS:
        return CLW_VERDICT_SUCCESS;
    case CLW_CLASS_TRANSIENT:
        return transient_verdict(ans, sent);
    case CLW_CLASS_RESIGN:
        return CLW_VERDICT_RESIGN;
    case CLW_CLASS_WORKER_FAULT:
        return CLW_VERDICT_FAULT;
    case CLW_CLASS_PERMANENT:
        break;
    }
    if (about_the_vpc(ans, sent))
        return CLW_VERDICT_FAIL;
    int already = sent->action == CLW_ACTION_ATTACH ? clw_classify_already_linked(ans)
                                                    : clw_classify_not_found(ans);
    if (sent->n_members <= 1)
        return already ? CLW_VERDICT_RECONCILE : CLW_VERDICT_FAIL;
    int named = names_sent(ans->message, sent);
    if (already)
        return named ? CLW_VERDICT_RECONCILE : CLW_VERDICT_SPLIT;
    if (parameter_error(ans) && !named)
        return names(ans->message, sent->vpc_id) ? CLW_VERDICT_FAIL : CLW_VERDICT_CONFIRM;
    return CLW_VERDICT_SPLIT;
}

size_t clw_coalesce_split(const struct clw_coalesce_member *m, size_t n, const char *msg,
                          size_t *order, int *named)
{
    size_t k = 0;
    *named = 0;
    for (size_t i = 0; i < n; i++)
        if (clw_coalesce_names(msg, &m[i]))
            order[k++] = i;
    if (k > 0 && k < n) {
        size_t j = k;
        for (size_t i = 0; i < n; i++)
            if (!clw_coalesce_names(msg, &m[i]))
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

static int same_text(const char *a, const char *b)
{
    return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

int clw_coalesce_same_error(const struct clw_answer *a, const struct clw_answer *b)
{
    return a->api_version == b->api_version && a->has_code == b->has_code &&
           (!a->has_code || a->code == b->code) && same_text(a->code_desc, b->code_desc) &&
           same_text(a->message, b->message);
}
