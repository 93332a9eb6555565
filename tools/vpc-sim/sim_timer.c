/* vpc-sim: one thread that fires callbacks after a delay (held answers, latency, hangs). */
#include "sim_timer.h"

#include <stdlib.h>
#include <time.h>

static int64_t monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool earlier(const struct clw_sim_timer_entry *a, const struct clw_sim_timer_entry *b)
{
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static void swap(struct clw_sim_timer_entry *a, struct clw_sim_timer_entry *b)
{
    struct clw_sim_timer_entry t = *a;

    *a = *b;
    *b = t;
}

static void sift_up(struct clw_sim_timer *timer, size_t i)
{
    while (i > 0 && earlier(&timer->heap[i], &timer->heap[(i - 1) / 2])) {
        swap(&timer->heap[i], &timer->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
}

static void sift_down(struct clw_sim_timer *timer, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1;
        size_t r = l + 1;
        size_t m = i;

        if (l < timer->count && earlier(&timer->heap[l], &timer->heap[m]))
            m = l;
        if (r < timer->count && earlier(&timer->heap[r], &timer->heap[m]))
            m = r;
        if (m == i)
            return;
        swap(&timer->heap[i], &timer->heap[m]);
        i = m;
    }
}

static void *pop(struct clw_sim_timer *timer)
{
    void *arg = timer->heap[0].arg;

    timer->heap[0] = timer->heap[--timer->count];
    sift_down(timer, 0);
    return arg;
}

static void *run(void *opaque)
{
    struct clw_sim_timer *timer = opaque;

    pthread_mutex_lock(&timer->lock);
    for (;;) {
        if (timer->count > 0 && (timer->stopping || timer->heap[0].due_ms <= monotonic_ms())) {
            void *arg = pop(timer);

            pthread_mutex_unlock(&timer->lock);
            timer->fire(arg);
            pthread_mutex_lock(&timer->lock);
            continue;
        }
        if (timer->stopping)
            break;
        if (timer->count == 0) {
            pthread_cond_wait(&timer->wake, &timer->lock);
        } else {
            int64_t due = timer->heap[0].due_ms;
            struct timespec ts = {.tv_sec = due / 1000, .tv_nsec = (due % 1000) * 1000000};

            pthread_cond_timedwait(&timer->wake, &timer->lock, &ts);
        }
    }
    pthread_mutex_unlock(&timer->lock);
    return NULL;
}

int clw_sim_timer_start(struct clw_sim_timer *timer, void (*fire)(void *arg))
{
    pthread_condattr_t attr;
    int rc = -1;

    timer->heap = NULL;
    timer->count = 0;
    timer->cap = 0;
    timer->next_seq = 0;
    timer->stopping = false;
    timer->started = false;
    timer->fire = fire;
    pthread_mutex_init(&timer->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&timer->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&timer->thread, NULL, run, timer) != 0)
        goto fail;
    timer->started = true;
    rc = 0;

fail:
    return rc;
}

int clw_sim_timer_add(struct clw_sim_timer *timer, uint32_t delay_ms, void *arg)
{
    int rc = -1;

    pthread_mutex_lock(&timer->lock);
    if (timer->stopping)
        goto fail;
    if (timer->count == timer->cap) {
        size_t cap = timer->cap == 0 ? 256 : timer->cap * 2;
        struct clw_sim_timer_entry *heap = realloc(timer->heap, cap * sizeof(*heap));

        if (heap == NULL)
            goto fail;
        timer->heap = heap;
        timer->cap = cap;
    }
    timer->heap[timer->count].due_ms = monotonic_ms() + delay_ms;
    timer->heap[timer->count].seq = timer->next_seq++;
    timer->heap[timer->count].arg = arg;
    timer->count++;
    sift_up(timer, timer->count - 1);
    /* Only a new earliest entry changes how long the thread should sleep. */
    if (timer->heap[0].arg == arg)
        pthread_cond_signal(&timer->wake);
    rc = 0;

fail:
    pthread_mutex_unlock(&timer->lock);
    return rc;
}

void clw_sim_timer_stop(struct clw_sim_timer *timer)
{
    if (!timer->started)
        return;
    pthread_mutex_lock(&timer->lock);
    timer->stopping = true;
    pthread_cond_signal(&timer->wake);
    pthread_mutex_unlock(&timer->lock);
    pthread_join(timer->thread, NULL);
    free(timer->heap);
    timer->heap = NULL;
    pthread_mutex_destroy(&timer->lock);
    pthread_cond_destroy(&timer->wake);
    timer->started = false;
}
