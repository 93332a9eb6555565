/* Timer heap: a binary min-heap of embedded timers keyed by due time. */
#include "clw/timers.h"

#include <stdlib.h>

#include "clw/alloc.h"

void clw_timer_init(struct clw_timer *tm)
{
    tm->due = 0;
    tm->idx = CLW_TIMER_IDLE;
}

static void place(struct clw_timers *t, size_t i, struct clw_timer *tm)
{
    t->heap[i] = tm;
    tm->idx = i;
}

static void sift_up(struct clw_timers *t, size_t i)
{
    struct clw_timer *tm = t->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (t->heap[parent]->due <= tm->due)
            break;
        place(t, i, t->heap[parent]);
        i = parent;
    }
    place(t, i, tm);
}

static void sift_down(struct clw_timers *t, size_t i)
{
    struct clw_timer *tm = t->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= t->len)
            break;
        if (child + 1 < t->len && t->heap[child + 1]->due < t->heap[child]->due)
            child++;
        if (tm->due <= t->heap[child]->due)
            break;
        place(t, i, t->heap[child]);
        i = child;
    }
    place(t, i, tm);
}

void clw_timers_disarm(struct clw_timers *t, struct clw_timer *tm)
{
    if (tm->idx == CLW_TIMER_IDLE)
        return;
    size_t i = tm->idx;
    tm->idx = CLW_TIMER_IDLE;
    t->len--;
    if (i == t->len)
        return;
    struct clw_timer *moved = t->heap[t->len];
    place(t, i, moved);
    sift_down(t, i);
    if (moved->idx == i)
        sift_up(t, i);
}

int clw_timers_arm(struct clw_timers *t, struct clw_timer *tm, int64_t due)
{
    clw_timers_disarm(t, tm);
    if (t->len == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        struct clw_timer **p = clw_realloc(t->heap, cap * sizeof(*p));
        if (p == NULL)
            return -1;
        t->heap = p;
        t->cap = cap;
    }
    tm->due = due;
    place(t, t->len++, tm);
    sift_up(t, tm->idx);
    return 0;
}

struct clw_timer *clw_timers_peek(const struct clw_timers *t)
{
    return t->len > 0 ? t->heap[0] : NULL;
}

struct clw_timer *clw_timers_pop_due(struct clw_timers *t, int64_t now)
{
    struct clw_timer *tm = clw_timers_peek(t);
    if (tm == NULL || tm->due > now)
        return NULL;
    clw_timers_disarm(t, tm);
    return tm;
}

void clw_timers_free(struct clw_timers *t)
{
    free(t->heap);
    t->heap = NULL;
    t->len = t->cap = 0;
}
