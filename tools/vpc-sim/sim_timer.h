/* vpc-sim: one thread that fires callbacks after a delay (held answers, latency, hangs). */
#ifndef CLW_SIM_TIMER_H
#define CLW_SIM_TIMER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct clw_sim_timer_entry {
    int64_t due_ms; /* CLOCK_MONOTONIC */
    uint64_t seq;   /* ties fire in insertion order */
    void *arg;
};

/* A binary min-heap on (due_ms, seq) behind a mutex; the thread sleeps on a condition
 * variable until the earliest entry is due. O(log n) per entry. */
struct clw_sim_timer {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct clw_sim_timer_entry *heap;
    size_t count;
    size_t cap;
    uint64_t next_seq;
    bool stopping;
    bool started;
    void (*fire)(void *arg);
};

/* Starts the thread; fire(arg) runs on it, without the timer's lock held. Returns 0 or -1. */
int clw_sim_timer_start(struct clw_sim_timer *timer, void (*fire)(void *arg));

/* Calls fire(arg) after delay_ms. Returns 0, or -1 once stopping or on allocation failure
 * (then fire is not called for arg). */
int clw_sim_timer_add(struct clw_sim_timer *timer, uint32_t delay_ms, void *arg);

/* Fires every pending entry at once, refuses new ones, and joins the thread. */
void clw_sim_timer_stop(struct clw_sim_timer *timer);

#endif
