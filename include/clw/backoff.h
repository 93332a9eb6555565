/* Retry timing: exponential backoff with full jitter, Retry-After as a lower bound, and the
 * elapsed-time budget. Pure: the caller passes the random number. */
#ifndef CLW_BACKOFF_H
#define CLW_BACKOFF_H

#include <stdint.h>

/* Delay before attempt n+1 after n >= 1 attempts: uniform in [0, min(max_ms, initial_ms *
 * 2^(n-1))] drawn from rnd (a uniformly random 64-bit number), then raised to retry_after_ms
 * when that is >= 0. Never overflows for large n. */
int64_t clw_backoff_delay_ms(int attempts, int64_t initial_ms, int64_t max_ms, uint64_t rnd,
                             int64_t retry_after_ms);

/* 1 when a retry that would start after delay_ms is past the budget: elapsed_ms + delay_ms >
 * max_elapsed_ms, with max_elapsed_ms == 0 meaning never. elapsed_ms excludes paused time. */
int clw_backoff_exhausted(int64_t elapsed_ms, int64_t delay_ms, int64_t max_elapsed_ms);

/* A small, fast PRNG (splitmix64) for jitter and nonces. */
uint64_t clw_rand_next(uint64_t *state);

#endif
