/* Retry timing: exponential backoff with full jitter, Retry-After lower bound, elapsed budget. */
#include "clw/backoff.h"

/* The jitter cap before attempt n+1: min(max_ms, initial_ms * 2^(n-1)) without ever computing
 * a product that overflows. initial * 2^s <= max exactly when initial <= max >> s, so the
 * comparison is done on the shifted maximum. O(1) for any n. */
static int64_t backoff_cap(int attempts, int64_t initial_ms, int64_t max_ms)
{
    int shift;
    int64_t cap;

    if (initial_ms < 0)
        initial_ms = 0;
    if (max_ms < 0)
        max_ms = 0;
    shift = attempts > 1 ? attempts - 1 : 0;
    if (initial_ms == 0)
        cap = 0;
    else if (shift >= 63 || initial_ms > (max_ms >> shift))
        cap = max_ms;
    else
        cap = initial_ms << shift;
    return cap;
}

int64_t clw_backoff_delay_ms(int attempts, int64_t initial_ms, int64_t max_ms, uint64_t rnd,
                             int64_t retry_after_ms)
{
    int64_t cap = backoff_cap(attempts, initial_ms, max_ms);
    /* cap + 1 <= 2^63 fits an unsigned 64-bit number; the remainder is <= cap. A modulo of a
     * 64-bit random number has a bias of at most cap / 2^64: negligible for delays. */
    int64_t delay = (int64_t)(rnd % ((uint64_t)cap + 1));

    if (retry_after_ms >= 0 && delay < retry_after_ms)
        delay = retry_after_ms;
    return delay;
}

int clw_backoff_exhausted(int64_t elapsed_ms, int64_t delay_ms, int64_t max_elapsed_ms)
{
    if (max_elapsed_ms == 0)
        return 0;
    if (elapsed_ms < 0)
        elapsed_ms = 0;
    if (delay_ms < 0)
        delay_ms = 0;
    /* elapsed + delay > max, rearranged so nothing overflows (both sides are >= 0). */
    if (elapsed_ms > max_elapsed_ms)
        return 1;
    return delay_ms > max_elapsed_ms - elapsed_ms;
}

uint64_t clw_rand_next(uint64_t *state)
{
    uint64_t z;

    *state += UINT64_C(0x9E3779B97F4A7C15);
    z = *state;
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}
