/* Time sources: monotonic milliseconds for deadlines, wall-clock milliseconds for messages. */
#ifndef CLW_CLOCK_H
#define CLW_CLOCK_H

#include <stddef.h>
#include <stdint.h>

int64_t clw_clock_mono_ms(void);
int64_t clw_clock_wall_ms(void);

/* Formats wall-clock milliseconds as RFC 3339 UTC with milliseconds, e.g.
 * "2026-11-25T21:06:31.990Z". out must hold at least CLW_RFC3339_LEN bytes. */
#define CLW_RFC3339_LEN 32
void clw_clock_rfc3339(int64_t wall_ms, char *out);

#endif
