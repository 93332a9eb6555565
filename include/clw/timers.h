/* Timer heap: intrusive min-heap of deadlines (retry due times, re-publish times). O(log n)
 * arm/disarm, O(1) peek. Single-threaded. */
#ifndef CLW_TIMERS_H
#define CLW_TIMERS_H

#include <stddef.h>
#include <stdint.h>

/* Embedded in the owner's struct; the heap only stores pointers to it. */
struct clw_timer {
    int64_t due; /* monotonic ms */
    size_t idx;  /* position in the heap; CLW_TIMER_IDLE when not armed */
};
#define CLW_TIMER_IDLE ((size_t)-1)

struct clw_timers {
    struct clw_timer **heap;
    size_t len;
    size_t cap;
};

void clw_timer_init(struct clw_timer *tm);
/* Arms (or re-arms) tm for due. Returns 0, -1 on allocation failure. */
int clw_timers_arm(struct clw_timers *t, struct clw_timer *tm, int64_t due);
/* Disarms tm if armed. */
void clw_timers_disarm(struct clw_timers *t, struct clw_timer *tm);
/* The earliest timer, or NULL. */
struct clw_timer *clw_timers_peek(const struct clw_timers *t);
/* Removes and returns the earliest timer if it is due at now, else NULL. */
struct clw_timer *clw_timers_pop_due(struct clw_timers *t, int64_t now);
/* Frees the heap storage (timers themselves belong to their owners). */
void clw_timers_free(struct clw_timers *t);

#endif
