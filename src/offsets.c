/* Offset watermark of one partition: a ring of taken offsets with done flags. */
#include "clw/offsets.h"

#include <stdlib.h>

#include "clw/alloc.h"

#define OFFSETS_MIN_CAP 16

struct offsets_entry {
    int64_t offset;
    int done;
};

struct clw_offsets {
    struct offsets_entry *ring; /* cap entries, a power of two */
    size_t cap;
    size_t head;        /* index of the oldest pending entry */
    size_t count;       /* pending entries */
    int64_t last_added; /* -1 before the first add */
    int64_t released;   /* highest released offset + 1; -1 before the first release */
    int ever_done;      /* 1 once any offset was marked done */
};

static struct offsets_entry *offsets_at(const struct clw_offsets *t, size_t i)
{
    return &t->ring[(t->head + i) & (t->cap - 1)];
}

/* Moves the pending entries into a ring of new_cap (>= count) entries, oldest first. Returns
 * 0, or -1 on allocation failure with the tracker unchanged. */
static int offsets_resize(struct clw_offsets *t, size_t new_cap)
{
    struct offsets_entry *ring;
    size_t i;

    if (new_cap > SIZE_MAX / sizeof(*ring))
        return -1;
    ring = clw_malloc(new_cap * sizeof(*ring));
    if (ring == NULL)
        return -1;
    for (i = 0; i < t->count; i++)
        ring[i] = *offsets_at(t, i);
    free(t->ring);
    t->ring = ring;
    t->cap = new_cap;
    t->head = 0;
    return 0;
}

struct clw_offsets *clw_offsets_new(void)
{
    struct clw_offsets *t = clw_calloc(1, sizeof(*t));

    if (t == NULL)
        goto fail;
    t->ring = clw_malloc(OFFSETS_MIN_CAP * sizeof(*t->ring));
    if (t->ring == NULL)
        goto fail;
    t->cap = OFFSETS_MIN_CAP;
    t->last_added = -1;
    t->released = -1;
    return t;
fail:
    free(t);
    return NULL;
}

void clw_offsets_free(struct clw_offsets *t)
{
    if (t == NULL)
        return;
    free(t->ring);
    free(t);
}

int clw_offsets_add(struct clw_offsets *t, int64_t offset)
{
    struct offsets_entry *e;

    /* Kafka offsets are >= 0; INT64_MAX is refused so that offset + 1 never overflows. */
    if (t == NULL || offset < 0 || offset == INT64_MAX || offset <= t->last_added)
        return 1;
    if (t->count == t->cap && offsets_resize(t, t->cap * 2) != 0)
        return -1;
    e = offsets_at(t, t->count);
    e->offset = offset;
    e->done = 0;
    t->count++;
    t->last_added = offset;
    return 0;
}

/* Index of offset among the pending entries (binary search: they are strictly increasing), or
 * count when absent. */
static size_t offsets_find(const struct clw_offsets *t, int64_t offset)
{
    size_t lo = 0;
    size_t hi = t->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t v = offsets_at(t, mid)->offset;

        if (v == offset)
            return mid;
        if (v < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return t->count;
}

int clw_offsets_done(struct clw_offsets *t, int64_t offset)
{
    struct offsets_entry *e;
    size_t i;

    if (t == NULL)
        return -1;
    i = offsets_find(t, offset);
    if (i == t->count)
        return -1; /* never taken, or already released */
    e = offsets_at(t, i);
    if (e->done)
        return -1;
    e->done = 1;
    /* Release the done prefix; every entry is released once, so O(1) amortised. */
    while (t->count > 0 && offsets_at(t, 0)->done) {
        t->released = offsets_at(t, 0)->offset + 1;
        t->head = (t->head + 1) & (t->cap - 1);
        t->count--;
    }
    /* Give memory back after a burst; failure to shrink is harmless. */
    if (t->cap > 1024 && t->count < t->cap / 8)
        (void)offsets_resize(t, t->cap / 2);
    t->ever_done = 1;
    return 0;
}

int64_t clw_offsets_commit_point(const struct clw_offsets *t)
{
    int64_t cp = -1;

    if (t == NULL || !t->ever_done)
        return -1; /* nothing was ever done */
    if (t->count > 0)
        cp = offsets_at(t, 0)->offset; /* the front entry is never done */
    else
        cp = t->released;
    return cp;
}

size_t clw_offsets_pending(const struct clw_offsets *t)
{
    return t != NULL ? t->count : 0;
}
