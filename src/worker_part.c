/* Partitions: the jobs of each assigned partition, its window, its fetch pause and its commit
 * point (stored for the automatic commit, or carried by exactly-once transactions). */
#include "worker_part.h"

#include <stdlib.h>

#include "clw/alloc.h"
#include "clw/log.h"

void clw_parts_init(struct parts *ps, const struct clw_config *cfg, struct clw_kafka *kafka,
                    struct clw_metrics *metrics, const struct guard *guard, int eos)
{
    *ps = (struct parts){
        .eos = eos,
        .cfg = cfg,
        .kafka = kafka,
        .metrics = metrics,
        .guard = guard,
    };
}

void clw_parts_fini(struct parts *ps)
{
    free(ps->parts);
    ps->parts = NULL;
    ps->n = 0;
}

struct part *clw_parts_get(struct parts *ps, int32_t id, int create)
{
    if (id < 0)
        return NULL;
    if ((size_t)id >= ps->n) {
        if (!create)
            return NULL;
        size_t n = (size_t)id + 1;
        struct part **p = clw_realloc(ps->parts, n * sizeof(*p));
        if (p == NULL)
            return NULL;
        for (size_t i = ps->n; i < n; i++)
            p[i] = NULL;
        ps->parts = p;
        ps->n = n;
    }
    if (ps->parts[id] == NULL && create) {
        struct part *p = clw_calloc(1, sizeof(*p));
        if (p == NULL)
            return NULL;
        p->id = id;
        p->stored = -1;
        p->max_final = -1;
        p->released = -1;
        p->offs = clw_offsets_new();
        if (p->offs == NULL) {
            free(p);
            return NULL;
        }
        ps->parts[id] = p;
    }
    return ps->parts[id];
}

struct part *clw_parts_of(const struct parts *ps, const struct job *job)
{
    if (!job->part.linked || job->rec.partition < 0 || (size_t)job->rec.partition >= ps->n)
        return NULL;
    return ps->parts[job->rec.partition];
}

long clw_parts_list(const struct parts *ps, struct part ***out)
{
    struct part **list = calloc(ps->n ? ps->n : 1, sizeof(*list));
    if (list == NULL)
        return -1;
    long n = 0;
    for (size_t i = 0; i < ps->n; i++)
        if (ps->parts[i] != NULL)
            list[n++] = ps->parts[i];
    *out = list;
    return n;
}

size_t clw_parts_assigned(const struct parts *ps)
{
    size_t n = 0;
    for (size_t i = 0; i < ps->n; i++)
        n += ps->parts[i] != NULL;
    return n;
}

void clw_parts_link(struct parts *ps, struct part *p, struct job *job)
{
    job->part.linked = 1;
    clw_dlist_push(&p->jobs, &job->part.link, 1);
    ps->taken++;
}

struct job *clw_parts_first(const struct part *p)
{
    return CLW_DLIST_ITEM(p->jobs.head, struct job, part.link);
}

struct job *clw_parts_next(const struct job *job)
{
    return CLW_DLIST_ITEM(job->part.link.next, struct job, part.link);
}

void clw_parts_unlink(struct parts *ps, struct job *job)
{
    struct part *p = clw_parts_of(ps, job);
    if (p == NULL)
        return;
    clw_dlist_remove(&p->jobs, &job->part.link);
    job->part.linked = 0;
    ps->taken--;
}

void clw_parts_forget(struct parts *ps, struct part *p)
{
    ps->parts[p->id] = NULL;
    clw_metrics_forget_partition(ps->metrics, p->id);
    clw_offsets_free(p->offs);
    free(p);
}

void clw_parts_sync_pause(struct parts *ps, struct part *p)
{
    int want =
        p->window_paused || clw_guard_paused(ps->guard) || ps->commits_stalled || ps->stopping;
    if (p->revoking || want == p->fetch_paused)
        return;
    clw_kafka_pause(ps->kafka, p->id, want);
    p->fetch_paused = want;
    CLW_DEBUG("partition %d %s", (int)p->id, want ? "paused" : "resumed");
}

void clw_parts_sync_all(struct parts *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        if (ps->parts[i] != NULL)
            clw_parts_sync_pause(ps, ps->parts[i]);
}

void clw_parts_set_stopping(struct parts *ps, int on)
{
    ps->stopping = on;
    clw_parts_sync_all(ps);
}

void clw_parts_set_commits_stalled(struct parts *ps, int on)
{
    ps->commits_stalled = on;
    clw_parts_sync_all(ps);
}

void clw_parts_set_revoking(struct parts *ps, struct part *p, int on)
{
    (void)ps;
    p->revoking = on;
}

void clw_parts_window_check(struct parts *ps, struct part *p)
{
    size_t pending = clw_offsets_pending(p->offs);
    size_t max = (size_t)ps->cfg->worker_max_pending_per_partition;
    if (!p->window_paused && pending >= max) {
        p->window_paused = 1;
        clw_parts_sync_pause(ps, p);
    } else if (p->window_paused && pending <= max / 2) {
        p->window_paused = 0;
        clw_parts_sync_pause(ps, p);
    }
}

void clw_parts_final(struct parts *ps, const struct job *job)
{
    struct part *p = clw_parts_of(ps, job);
    if (p != NULL && job->rec.offset > p->max_final)
        p->max_final = job->rec.offset;
}

void clw_parts_done(struct parts *ps, int32_t partition, int64_t offset)
{
    struct part *p = clw_parts_get(ps, partition, 0);
    if (p == NULL)
        return;
    if (!ps->eos) {
        clw_offsets_done(p->offs, offset);
        int64_t cp = clw_offsets_commit_point(p->offs);
        if (cp >= 0 && cp > p->stored && clw_kafka_store(ps->kafka, p->id, cp) == 0)
            p->stored = cp;
    }
    clw_parts_window_check(ps, p);
}

void clw_parts_hold(struct parts *ps, const struct job *job)
{
    struct part *p = clw_parts_of(ps, job);
    if (p != NULL)
        clw_offsets_done(p->offs, job->rec.offset);
}

void clw_parts_set_released(struct part *p, int64_t offset)
{
    p->released = offset;
}

void clw_parts_set_committed(struct part *p, int64_t offset)
{
    if (offset > p->stored)
        p->stored = offset;
}
