/* API answer decoding: the v2 JSON body (code, message, codeDesc, taskId) and Retry-After. */
#include "clw/answer.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* From 2^53 on a JSON double no longer tells neighbouring integers apart (2^53 + 1 parses as
 * 2^53), so such numbers count as absent. Digit strings are exact up to the target type. */
#define EXACT_DOUBLE_LIMIT 9007199254740992.0
/* A Retry-After longer than a day is taken as a day: the retry budget ends long before. */
#define RETRY_AFTER_CAP_MS (86400LL * 1000)

/* A JSON number that is an exact integer within [lo, hi]. */
static int number_to_ll(const cJSON *item, long long lo, long long hi, long long *out)
{
    double d = item->valuedouble;

    if (!isfinite(d) || d != floor(d) || fabs(d) >= EXACT_DOUBLE_LIMIT)
        return 0;
    if (d < (double)lo || d > (double)hi)
        return 0;
    *out = (long long)d;
    return 1;
}

/* A string of 1..18 ASCII digits (no sign, no space) within [0, hi]. 18 digits always fit a
 * long long, so no overflow check is needed before the range test. */
static int digits_to_ll(const char *s, long long hi, long long *out)
{
    long long v = 0;
    size_t n = 0;

    while (s[n] >= '0' && s[n] <= '9') {
        if (n == 18)
            return 0;
        v = v * 10 + (s[n] - '0');
        n++;
    }
    if (n == 0 || s[n] != '\0' || v > hi)
        return 0;
    *out = v;
    return 1;
}

/* An integer member: a JSON integer or a string of digits ("0"). */
static int integer_member(const cJSON *obj, const char *name, long long lo, long long hi,
                          long long *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

    if (cJSON_IsNumber(item))
        return number_to_ll(item, lo, hi, out);
    if (cJSON_IsString(item))
        return digits_to_ll(item->valuestring, hi, out);
    return 0;
}

/* A copy of a string member in *out (NULL when absent or not a string); -1 when out of
 * memory. */
static int string_member(const cJSON *obj, const char *name, char **out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

    *out = NULL;
    if (!cJSON_IsString(item))
        return 0;
    *out = strdup(item->valuestring);
    return *out != NULL ? 0 : -1;
}

int clw_answer_parse_body(struct clw_answer *ans, const char *body, size_t len)
{
    cJSON *root = NULL;
    char *copy = NULL;
    long long v;
    int rc = -1;

    ans->body_json = 0;
    ans->has_code = 0;
    ans->code = 0;
    ans->has_task_id = 0;
    ans->task_id = 0;
    ans->code_desc = NULL;
    ans->message = NULL;
    /* A NUL inside the body would end cJSON's view of it early: not JSON. */
    if (body == NULL || len == 0 || memchr(body, '\0', len) != NULL)
        goto done;
    copy = malloc(len + 1);
    if (copy == NULL)
        goto fail;
    memcpy(copy, body, len);
    copy[len] = '\0';
    /* The terminator is inside the length, so require_null_terminated rejects trailing data. */
    root = cJSON_ParseWithLengthOpts(copy, len + 1, NULL, 1);
    if (!cJSON_IsObject(root))
        goto done;
    ans->body_json = 1;
    if (integer_member(root, "code", LONG_MIN, LONG_MAX, &v)) {
        ans->has_code = 1;
        ans->code = (long)v;
    }
    if (integer_member(root, "taskId", LLONG_MIN, LLONG_MAX, &v)) {
        ans->has_task_id = 1;
        ans->task_id = v;
    }
    if (string_member(root, "message", &ans->message) != 0)
        goto fail;
    if (string_member(root, "codeDesc", &ans->code_desc) != 0)
        goto fail;
done:
    rc = 0;
fail:
    if (rc != 0) {
        free(ans->message);
        free(ans->code_desc);
        ans->message = NULL;
        ans->code_desc = NULL;
    }
    cJSON_Delete(root);
    free(copy);
    return rc;
}

void clw_answer_free(struct clw_answer *ans)
{
    if (ans == NULL)
        return;
    free(ans->message);
    free(ans->code_desc);
    memset(ans, 0, sizeof(*ans));
}

/* ---- Retry-After ---- */

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Exactly n ASCII digits at s, as a number; -1 otherwise. */
static int fixed_digits(const char *s, size_t n)
{
    int v = 0;
    size_t k;

    for (k = 0; k < n; k++) {
        if (s[k] < '0' || s[k] > '9')
            return -1;
        v = v * 10 + (s[k] - '0');
    }
    return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1..12). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return days[m - 1] + (m == 2 && leap);
}

/* IMF-fixdate (RFC 9110 5.6.7), the only HTTP date form senders may generate:
 * "Sun, 06 Nov 1994 08:49:37 GMT" (exactly 29 characters). The obsolete RFC 850 and asctime
 * forms are not accepted (they count as unparseable). Returns 0 and the epoch milliseconds. */
static int parse_imf_fixdate(const char *s, size_t n, int64_t *out_ms)
{
    static const char *const wdays[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    static const char *const months[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int k, wday = -1, mon = 0, day, year, hh, mm, ss;

    if (n != 29 || memcmp(s + 3, ", ", 2) != 0 || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
        s[19] != ':' || s[22] != ':' || memcmp(s + 25, " GMT", 4) != 0)
        return -1;
    for (k = 0; k < 7; k++) {
        if (memcmp(s, wdays[k], 3) == 0)
            wday = k;
    }
    for (k = 0; k < 12; k++) {
        if (memcmp(s + 8, months[k], 3) == 0)
            mon = k + 1;
    }
    day = fixed_digits(s + 5, 2);
    year = fixed_digits(s + 12, 4);
    hh = fixed_digits(s + 17, 2);
    mm = fixed_digits(s + 20, 2);
    ss = fixed_digits(s + 23, 2);
    if (wday < 0 || mon == 0 || day < 1 || year < 0 || hh < 0 || hh > 23 || mm < 0 || mm > 59 ||
        ss < 0 || ss > 60 || day > days_in_month(year, mon))
        return -1;
    *out_ms = ((days_from_civil(year, mon, day) * 24 + hh) * 60 + mm) * 60000LL + ss * 1000LL;
    return 0;
}

int64_t clw_answer_parse_retry_after(const char *value, int64_t now_wall_ms)
{
    size_t n, k;
    int64_t ms = 0, at;

    if (value == NULL)
        return -1;
    while (is_space(*value))
        value++;
    n = strlen(value);
    while (n > 0 && is_space(value[n - 1]))
        n--;
    if (n == 0)
        return -1;
    if (value[0] >= '0' && value[0] <= '9') {
        /* delta-seconds: 1*DIGIT; saturate at the cap instead of overflowing. */
        for (k = 0; k < n; k++) {
            if (value[k] < '0' || value[k] > '9')
                return -1;
            if (ms < RETRY_AFTER_CAP_MS)
                ms = ms * 10 + (value[k] - '0') * 1000LL;
        }
        return ms < RETRY_AFTER_CAP_MS ? ms : RETRY_AFTER_CAP_MS;
    }
    if (parse_imf_fixdate(value, n, &at) != 0)
        return -1;
    if (at <= now_wall_ms)
        return 0;
    return at - now_wall_ms < RETRY_AFTER_CAP_MS ? at - now_wall_ms : RETRY_AFTER_CAP_MS;
}
