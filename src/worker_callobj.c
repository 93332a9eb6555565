/* The call core: members, kind, state and wire parameters, the copy of what an attempt carried,
 * and splitting a call in two. The only writer of those fields. */
#include "worker_callobj.h"

#include <stdlib.h>
#include <string.h>

#include "clw/alloc.h"

static struct call *call_alloc(enum call_kind kind, enum clw_action action, const char *region,
                               const char *vpc_id)
{
    struct call *call = clw_calloc(1, sizeof(*call));
    if (call == NULL)
        return NULL;
    call->kind = kind;
    call->action = action;
    call->region = clw_strdup(region);
    call->vpc_id = clw_strdup(vpc_id);
    if (call->region == NULL || call->vpc_id == NULL) {
        free(call->region);
        free(call->vpc_id);
        free(call);
        return NULL;
    }
    clw_timer_init(&call->wait.timer);
    return call;
}

struct call *clw_callobj_new(const struct job *first)
{
    const struct clw_request *req = &first->rec.req;
    return call_alloc(CALL_ACTION, req->action, req->region, req->vpc_id);
}

struct call *clw_callobj_like(const struct call *like)
{
    return call_alloc(like->kind, like->action, like->region, like->vpc_id);
}

static void forget_sent(struct call *call)
{
    free(call->sent_buf);
    free(call->sent_ids);
    call->sent_buf = NULL;
    call->sent_ids = NULL;
    call->n_sent_ids = 0;
    call->n_sent_members = 0;
}

void clw_callobj_free(struct call *call)
{
    forget_sent(call);
    clw_shared_answer_put(call->cause);
    free(call->members);
    free(call->region);
    free(call->vpc_id);
    free(call);
}

int clw_callobj_reserve(struct call *call, size_t n)
{
    if (n <= call->cap)
        return 0;
    size_t cap = call->cap ? call->cap * 2 : 4;
    while (cap < n)
        cap *= 2;
    struct job **m = clw_realloc(call->members, cap * sizeof(*m));
    if (m == NULL)
        return -1;
    call->members = m;
    call->cap = cap;
    return 0;
}

void clw_callobj_add(struct call *call, struct job *job)
{
    job->member.call = call;
    job->member.idx = call->n_members;
    call->members[call->n_members++] = job;
    call->n_instances += job->rec.req.n_instances;
}

void clw_callobj_remove(struct job *job)
{
    struct call *call = job->member.call;
    if (call == NULL)
        return;
    size_t i = job->member.idx;
    struct job *moved = call->members[--call->n_members];
    call->members[i] = moved;
    moved->member.idx = i;
    call->n_instances -= job->rec.req.n_instances;
    job->member.call = NULL;
}

struct call *clw_callobj_split(struct call *call, const size_t *order, size_t k)
{
    size_t n = call->n_members;
    struct call *part = clw_callobj_like(call);
    struct job **kept = clw_malloc((n ? n : 1) * sizeof(*kept));
    if (part == NULL || kept == NULL || clw_callobj_reserve(part, n - k) != 0) {
        free(kept);
        if (part != NULL)
            clw_callobj_free(part);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        kept[i] = call->members[order[i]];
    call->n_members = 0;
    call->n_instances = 0;
    for (size_t i = 0; i < k; i++)
        clw_callobj_add(call, kept[i]);
    for (size_t i = k; i < n; i++)
        clw_callobj_add(part, kept[i]);
    free(kept);
    return part;
}

void clw_callobj_set_state(struct call *call, enum call_state state)
{
    call->state = state;
}

void clw_callobj_set_kind(struct call *call, enum call_kind kind)
{
    call->kind = kind;
    call->attempts = 0;
}

void clw_callobj_attempted(struct call *call)
{
    call->attempts++;
}

void clw_callobj_restart(struct call *call)
{
    call->attempts = 0;
}

void clw_callobj_set_cause(struct call *call, struct shared_answer *sa)
{
    if (sa != NULL)
        sa->refs++;
    clw_shared_answer_put(call->cause);
    call->cause = sa;
}

int clw_callobj_snapshot(struct call *call)
{
    size_t bytes = 0;
    for (size_t i = 0; i < call->n_members; i++) {
        const struct clw_request *req = &call->members[i]->rec.req;
        for (size_t j = 0; j < req->n_instances; j++)
            bytes += strlen(req->instance_ids[j]) + 1;
    }
    forget_sent(call);
    call->sent_buf = clw_malloc(bytes ? bytes : 1);
    call->sent_ids = clw_malloc((call->n_instances ? call->n_instances : 1) * sizeof(char *));
    if (call->sent_buf == NULL || call->sent_ids == NULL) {
        forget_sent(call);
        return -1;
    }
    char *p = call->sent_buf;
    size_t k = 0;
    for (size_t i = 0; i < call->n_members; i++) {
        const struct clw_request *req = &call->members[i]->rec.req;
        for (size_t j = 0; j < req->n_instances; j++) {
            size_t len = strlen(req->instance_ids[j]) + 1;
            memcpy(p, req->instance_ids[j], len);
            call->sent_ids[k++] = p;
            p += len;
        }
    }
    call->n_sent_ids = k;
    call->n_sent_members = call->n_members;
    return 0;
}

enum clw_api_op clw_callobj_op(const struct call *call)
{
    switch (call->kind) {
    case CALL_LINKS:
        return CLW_API_LIST_LINKS;
    case CALL_TASK:
        return CLW_API_TASK_RESULT;
    case CALL_ACTION:
        break;
    }
    return call->action == CLW_ACTION_ATTACH ? CLW_API_ATTACH : CLW_API_DETACH;
}
