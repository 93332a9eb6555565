/* Commit tracking: stored versus acknowledged offsets per requests-topic partition. */
#include "clw/commits.h"

#include <stdlib.h>
#include <string.h>

struct entry {
    int used;
    int assigned;
    int64_t stored;        /* -1: nothing stored in this assignment */
    int64_t committed;     /* -1: no acknowledgement seen in this assignment */
    int waiting;           /* stored > committed */
    int64_t waiting_since; /* ... since then, or since the last acknowledged progress */
    int64_t revoked_at;    /* 0 while assigned */
};

struct clw_commits {
    int64_t stall_ms;
    struct entry *e;
    size_t n;
};

struct clw_commits *clw_commits_new(int64_t stall_ms)
{
    struct clw_commits *c = calloc(1, sizeof(*c));
    if (c != NULL)
        c->stall_ms = stall_ms;
    return c;
}

void clw_commits_free(struct clw_commits *c)
{
    if (c == NULL)
        return;
    free(c->e);
    free(c);
}

static struct entry *find(const struct clw_commits *c, int32_t partition)
{
    if (partition < 0 || (size_t)partition >= c->n || !c->e[partition].used)
        return NULL;
    return &c->e[partition];
}

int clw_commits_assigned(struct clw_commits *c, int32_t partition)
{
    if (partition < 0)
        return -1;
    if ((size_t)partition >= c->n) {
        size_t n = (size_t)partition + 1;
        struct entry *e = realloc(c->e, n * sizeof(*e));
        if (e == NULL)
            return -1;
        memset(e + c->n, 0, (n - c->n) * sizeof(*e));
        c->e = e;
        c->n = n;
    }
    c->e[partition] = (struct entry){.used = 1, .assigned = 1, .stored = -1, .committed = -1};
    return 0;
}

void clw_commits_revoked(struct clw_commits *c, int32_t partition, int lost, int64_t now_ms)
{
    struct entry *e = find(c, partition);
    if (e == NULL)
        return;
    e->assigned = 0;
    e->revoked_at = now_ms;
    if (lost) {
        e->stored = -1;
        e->waiting = 0;
    }
}

void clw_commits_stored(struct clw_commits *c, int32_t partition, int64_t offset, int64_t now_ms)
{
    struct entry *e = find(c, partition);
    if (e == NULL || !e->assigned)
        return;
    e->stored = offset;
    if (offset > e->committed && !e->waiting) {
        e->waiting = 1;
        e->waiting_since = now_ms;
    }
}

void clw_commits_acked(struct clw_commits *c, int32_t partition, int64_t offset, int64_t now_ms)
{
    struct entry *e = find(c, partition);
    if (e == NULL || offset <= e->committed)
        return;
    e->committed = offset;
    e->waiting = e->stored > e->committed;
    e->waiting_since = now_ms;
}

int clw_commits_stalled(const struct clw_commits *c, int64_t now_ms)
{
    for (size_t i = 0; i < c->n; i++) {
        const struct entry *e = &c->e[i];
        if (e->used && e->assigned && e->waiting && now_ms - e->waiting_since >= c->stall_ms)
            return 1;
    }
    return 0;
}

size_t clw_commits_gaps(const struct clw_commits *c, int64_t since_ms, struct clw_commit_gap *out,
                        size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n; i++) {
        const struct entry *e = &c->e[i];
        if (!e->used || e->stored <= e->committed || (!e->assigned && e->revoked_at < since_ms))
            continue;
        if (n < cap)
            out[n] = (struct clw_commit_gap){
                .partition = (int32_t)i, .stored = e->stored, .committed = e->committed};
        n++;
    }
    return n;
}
