/* Time sources: CLOCK_MONOTONIC for deadlines, CLOCK_REALTIME for timestamps, RFC 3339 output. */
#include "clw/clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;

    if (clock_gettime(id, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clw_clock_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

int64_t clw_clock_wall_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

void clw_clock_rfc3339(int64_t wall_ms, char *out)
{
    /* Floor division so that times before 1970 keep a millisecond part in 0..999. */
    int64_t sec = wall_ms / 1000;
    int64_t ms = wall_ms % 1000;
    time_t t;
    struct tm tm;
    char tmp[96];

    if (ms < 0) {
        ms += 1000;
        sec -= 1;
    }
    t = (time_t)sec;
    if ((int64_t)t != sec || !gmtime_r(&t, &tm) || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900) {
        /* Outside years 0000..9999 (RFC 3339's range): a fixed, recognisable value. */
        memcpy(out, "0000-01-01T00:00:00.000Z", sizeof("0000-01-01T00:00:00.000Z"));
        return;
    }
    /* Formatted into a roomy buffer first: the compiler cannot see that the fields are bounded. */
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)ms);
    tmp[CLW_RFC3339_LEN - 1] = '\0';
    memcpy(out, tmp, strlen(tmp) + 1);
}
