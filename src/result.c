/* Outcome encoding: struct clw_outcome -> the results-topic JSON of the contract, section 4. */
#include "clw/result.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "clw/request.h"

#define RESULT_MAX_BYTES  65536 /* the whole value */
#define MESSAGE_MAX_BYTES 1024  /* the message field, before JSON escaping */

/* Length of the UTF-8 sequence that the lead byte c starts (its validity is checked apart). */
static size_t seq_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if (c < 0xE0)
        return 2;
    if (c < 0xF0)
        return 3;
    return 4;
}

/* A copy of s with every byte that does not start a well-formed sequence replaced by U+FFFD,
 * cut to at most max bytes on a character boundary. NULL when out of memory. */
static char *utf8_clean(const char *s, size_t max)
{
    size_t len = strlen(s), i = 0, o = 0;
    char *out = malloc(len * 3 + 1); /* worst case: every byte becomes 3 */

    if (out == NULL)
        return NULL;
    while (i < len) {
        size_t n = seq_len((unsigned char)s[i]);

        if (n <= len - i && clw_utf8_valid(s + i, n)) {
            if (o + n > max)
                break;
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
        } else {
            if (o + 3 > max)
                break;
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    return out;
}

/* Adds name: s as a JSON string (repaired to valid UTF-8, at most max bytes), or null. */
static int add_string(cJSON *obj, const char *name, const char *s, size_t max)
{
    cJSON *item;
    char *clean;

    if (s == NULL)
        return cJSON_AddNullToObject(obj, name) != NULL ? 0 : -1;
    clean = utf8_clean(s, max);
    if (clean == NULL)
        return -1;
    item = cJSON_AddStringToObject(obj, name, clean);
    free(clean);
    return item != NULL ? 0 : -1;
}

/* Integers go out as raw text: exact for all of int64 (a double would round task ids and
 * offsets above 2^53) and independent of the locale. */
static int add_int(cJSON *obj, const char *name, long long v)
{
    char text[24];

    snprintf(text, sizeof(text), "%lld", v);
    return cJSON_AddRawToObject(obj, name, text) != NULL ? 0 : -1;
}

static int add_int_or_null(cJSON *obj, const char *name, int has, long long v)
{
    if (!has)
        return cJSON_AddNullToObject(obj, name) != NULL ? 0 : -1;
    return add_int(obj, name, v);
}

/* RFC 3339 UTC with milliseconds ("2026-11-25T21:06:31.990Z"), or null when ms < 0 or past
 * year 9999 (not representable). */
static int add_time(cJSON *obj, const char *name, int64_t ms)
{
    struct tm tm;
    time_t secs;
    char text[80]; /* room for any int the compiler cannot bound; 24 bytes are used */

    if (ms < 0 || ms / 1000 > 253402300799LL) /* 9999-12-31T23:59:59Z */
        return cJSON_AddNullToObject(obj, name) != NULL ? 0 : -1;
    secs = (time_t)(ms / 1000);
    if (gmtime_r(&secs, &tm) == NULL)
        return cJSON_AddNullToObject(obj, name) != NULL ? 0 : -1;
    snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return cJSON_AddStringToObject(obj, name, text) != NULL ? 0 : -1;
}

static int add_instances(cJSON *obj, const struct clw_outcome *o)
{
    cJSON *arr;
    size_t k;

    if (o->instance_ids == NULL)
        return cJSON_AddNullToObject(obj, "instanceIds") != NULL ? 0 : -1;
    arr = cJSON_AddArrayToObject(obj, "instanceIds");
    if (arr == NULL)
        return -1;
    for (k = 0; k < o->n_instances; k++) {
        cJSON *item;
        char *clean = utf8_clean(o->instance_ids[k] != NULL ? o->instance_ids[k] : "", SIZE_MAX);

        if (clean == NULL)
            return -1;
        item = cJSON_CreateString(clean);
        free(clean);
        if (item == NULL)
            return -1;
        cJSON_AddItemToArray(arr, item);
    }
    return 0;
}

static int add_source(cJSON *obj, const struct clw_outcome *o)
{
    cJSON *src = cJSON_AddObjectToObject(obj, "source");

    if (src == NULL)
        return -1;
    if (add_string(src, "topic", o->source_topic, SIZE_MAX) != 0 ||
        add_int(src, "partition", o->source_partition) != 0 ||
        add_int(src, "offset", o->source_offset) != 0)
        return -1;
    return 0;
}

/* Builds the JSON text with message cut to message_max and codeDesc to code_desc_max bytes. */
static char *encode(const struct clw_outcome *o, size_t message_max, size_t code_desc_max)
{
    cJSON *obj = cJSON_CreateObject();
    char *text = NULL;
    int bad = obj == NULL;

    bad = bad || add_int(obj, "schemaVersion", 1) != 0;
    bad = bad || add_string(obj, "requestId", o->request_id, SIZE_MAX) != 0;
    if (o->raw_request_id != NULL)
        bad = bad || add_string(obj, "rawRequestId", o->raw_request_id, SIZE_MAX) != 0;
    bad = bad || add_string(obj, "action", o->action, SIZE_MAX) != 0;
    bad = bad || add_string(obj, "region", o->region, SIZE_MAX) != 0;
    bad = bad || add_string(obj, "vpcId", o->vpc_id, SIZE_MAX) != 0;
    bad = bad || add_instances(obj, o) != 0;
    bad = bad || add_string(obj, "status", o->succeeded ? "succeeded" : "failed", SIZE_MAX) != 0;
    bad = bad || add_int_or_null(obj, "code", o->has_code, o->code) != 0;
    bad = bad || add_string(obj, "codeDesc", o->code_desc, code_desc_max) != 0;
    bad = bad || add_string(obj, "message", o->message != NULL ? o->message : "", message_max) != 0;
    bad = bad || add_int_or_null(obj, "taskId", o->has_task_id, o->task_id) != 0;
    bad = bad || add_string(obj, "errorClass", o->error_class, SIZE_MAX) != 0;
    bad = bad || add_int(obj, "attempts", o->attempts) != 0;
    if (o->http_status > 0)
        bad = bad || add_int(obj, "httpStatus", o->http_status) != 0;
    bad = bad || add_source(obj, o) != 0;
    bad = bad || add_time(obj, "enqueuedAt", o->enqueued_at_ms) != 0;
    bad = bad || add_time(obj, "receivedAt", o->received_at_ms) != 0;
    bad = bad || add_time(obj, "completedAt", o->completed_at_ms) != 0;
    if (!bad)
        text = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    return text;
}

/* Bytes cJSON prints for the byte c inside a string: \" \\ \b \f \n \r \t take 2, other
 * control characters \u00XX take 6, everything else (UTF-8 included) is copied. */
static size_t printed_cost(unsigned char c)
{
    if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
        return 2;
    return c < 0x20 ? 6 : 1;
}

/* Shortens the field s (now cut to *max) so that it prints *over bytes less, or as far as it
 * can; lowers *over by what it saved. The cut lands on a character boundary, so it may save a
 * few bytes more than asked. Returns -1 when out of memory. */
static int squeeze(const char *s, size_t *max, size_t *over)
{
    size_t total = 0, budget, used = 0, keep = 0, used_at_keep = 0, i;
    char *clean;

    if (s == NULL || *over == 0)
        return 0;
    clean = utf8_clean(s, *max);
    if (clean == NULL)
        return -1;
    for (i = 0; clean[i] != '\0'; i++)
        total += printed_cost((unsigned char)clean[i]);
    budget = total > *over ? total - *over : 0;
    for (i = 0; clean[i] != '\0'; i++) {
        if (((unsigned char)clean[i] & 0xC0) != 0x80) {
            keep = i;
            used_at_keep = used;
        }
        used += printed_cost((unsigned char)clean[i]);
        if (used > budget)
            break;
    }
    if (clean[i] == '\0') {
        keep = i;
        used_at_keep = used;
    }
    free(clean);
    *max = keep;
    *over -= total - used_at_keep < *over ? total - used_at_keep : *over;
    return 0;
}

/* The text is allocated by cJSON's default hooks (malloc): the caller frees it with free().
 * Too big a value is shrunk by cutting message further, then codeDesc (both come from the
 * API), each by exactly what is needed; when the rest alone is still too big (an instance list
 * far beyond any sane worker.max_instances_per_request) the result is NULL. */
char *clw_result_encode(const struct clw_outcome *o, size_t *len)
{
    size_t message_max = MESSAGE_MAX_BYTES, code_desc_max = SIZE_MAX, n = 0;
    char *text = NULL;
    int stage;

    for (stage = 0; stage < 3; stage++) {
        size_t over, before;

        text = encode(o, message_max, code_desc_max);
        if (text == NULL)
            break;
        n = strlen(text);
        if (n <= RESULT_MAX_BYTES)
            break;
        free(text);
        text = NULL;
        over = before = n - RESULT_MAX_BYTES;
        if (squeeze(o->message != NULL ? o->message : "", &message_max, &over) != 0 ||
            squeeze(o->code_desc, &code_desc_max, &over) != 0 || over == before)
            break;
    }
    if (len != NULL)
        *len = text != NULL ? n : 0;
    return text;
}
