/* Outcome encoding: struct clw_outcome -> the results-topic JSON of the contract, section 4. */
#include "clw/result.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clw/alloc.h"
#include "clw/buf.h"
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
    char *out = clw_malloc(len * 3 + 1); /* worst case: every byte becomes 3 */

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

/* The value is written directly into a growable buffer, byte for byte as cJSON_PrintUnformatted
 * would print the same object (cJSON built a tree of ~40 allocations and printed it, a fifth of
 * the worker's instructions per outcome). */

/* First capacity of the output buffer: a usual outcome is 500-700 bytes. Kept under 1 KiB, the
 * smallest "large" request of glibc malloc, which first consolidates every freed small chunk. */
#define RESULT_INITIAL_CAP 1000

/* A byte that goes out as itself, with no escape and no UTF-8 check. */
static int plain_byte(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* Appends the JSON escape of the ASCII byte c (one that is not plain_byte), as cJSON prints it:
 * \" \\ \b \f \n \r \t, other control characters as \u00xx. */
static void put_escape(struct clw_buf *b, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

    switch (c) {
    case '"':
        clw_buf_append(b, "\\\"", 2);
        return;
    case '\\':
        clw_buf_append(b, "\\\\", 2);
        return;
    case '\b':
        clw_buf_append(b, "\\b", 2);
        return;
    case '\f':
        clw_buf_append(b, "\\f", 2);
        return;
    case '\n':
        clw_buf_append(b, "\\n", 2);
        return;
    case '\r':
        clw_buf_append(b, "\\r", 2);
        return;
    case '\t':
        clw_buf_append(b, "\\t", 2);
        return;
    default:
        clw_buf_append(b, esc, sizeof(esc));
        return;
    }
}

/* Appends s as a JSON string, or null: every byte that does not start a well-formed UTF-8
 * sequence becomes U+FFFD, the text is cut to at most max bytes (counted before escaping, as
 * utf8_clean counts them) on a character boundary, then escaped. */
static void put_string(struct clw_buf *b, const char *s, size_t max)
{
    size_t len, i = 0, o = 0;

    if (s == NULL) {
        clw_buf_append(b, "null", 4);
        return;
    }
    len = strlen(s);
    clw_buf_putc(b, '"');
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        size_t n;

        if (plain_byte(c)) {
            size_t j = i + 1;

            while (j < len && plain_byte((unsigned char)s[j]))
                j++;
            if (j - i > max - o)
                j = i + (max - o);
            if (j == i)
                break;
            clw_buf_append(b, s + i, j - i);
            o += j - i;
            i = j;
            continue;
        }
        if (c < 0x80) {
            if (o + 1 > max)
                break;
            put_escape(b, c);
            o++;
            i++;
            continue;
        }
        n = seq_len(c);
        if (n <= len - i && clw_utf8_valid(s + i, n)) {
            if (o + n > max)
                break;
            clw_buf_append(b, s + i, n);
            o += n;
            i += n;
        } else {
            if (o + 3 > max)
                break;
            clw_buf_append(b, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    clw_buf_putc(b, '"');
}

/* Appends "name": (name is a plain ASCII literal). */
static void put_name(struct clw_buf *b, const char *name)
{
    size_t n = strlen(name);

    clw_buf_putc(b, '"');
    clw_buf_append(b, name, n);
    clw_buf_append(b, "\":", 2);
}

/* Integers go out as exact decimal text: all of int64 (a double would round task ids and
 * offsets above 2^53), independent of the locale. */
static void put_int(struct clw_buf *b, long long v)
{
    char text[24];
    size_t k = sizeof(text);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

    do {
        text[--k] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        text[--k] = '-';
    clw_buf_append(b, text + k, sizeof(text) - k);
}

static void put_int_or_null(struct clw_buf *b, int has, long long v)
{
    if (has)
        put_int(b, v);
    else
        clw_buf_append(b, "null", 4);
}

/* Writes v as exactly `digits` decimal digits (v is in range). */
static void put_digits(char *out, int v, int digits)
{
    while (digits-- > 0) {
        out[digits] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* RFC 3339 UTC with milliseconds ("2026-11-25T21:06:31.990Z"), or null when ms < 0 or past
 * year 9999 (not representable). */
static void put_time(struct clw_buf *b, int64_t ms)
{
    struct tm tm;
    time_t secs;
    char text[27] = "\"0000-00-00T00:00:00.000Z\"";

    if (ms < 0 || ms / 1000 > 253402300799LL) { /* 9999-12-31T23:59:59Z */
        clw_buf_append(b, "null", 4);
        return;
    }
    secs = (time_t)(ms / 1000);
    if (gmtime_r(&secs, &tm) == NULL) {
        clw_buf_append(b, "null", 4);
        return;
    }
    put_digits(text + 1, tm.tm_year + 1900, 4);
    put_digits(text + 6, tm.tm_mon + 1, 2);
    put_digits(text + 9, tm.tm_mday, 2);
    put_digits(text + 12, tm.tm_hour, 2);
    put_digits(text + 15, tm.tm_min, 2);
    put_digits(text + 18, tm.tm_sec, 2);
    put_digits(text + 21, (int)(ms % 1000), 3);
    clw_buf_append(b, text, sizeof(text) - 1);
}

static void put_instances(struct clw_buf *b, const struct clw_outcome *o)
{
    size_t k;

    if (o->instance_ids == NULL) {
        clw_buf_append(b, "null", 4);
        return;
    }
    clw_buf_putc(b, '[');
    for (k = 0; k < o->n_instances; k++) {
        if (k > 0)
            clw_buf_putc(b, ',');
        put_string(b, o->instance_ids[k] != NULL ? o->instance_ids[k] : "", SIZE_MAX);
    }
    clw_buf_putc(b, ']');
}

/* Builds the JSON text with message cut to message_max and codeDesc to code_desc_max bytes;
 * returns it with its length in *len, or NULL when out of memory. */
static char *encode(const struct clw_outcome *o, size_t message_max, size_t code_desc_max,
                    size_t *len)
{
    struct clw_buf b = {0};

    b.data = clw_malloc(RESULT_INITIAL_CAP);
    if (b.data == NULL)
        return NULL;
    b.cap = RESULT_INITIAL_CAP;
    clw_buf_append(&b, "{\"schemaVersion\":1,", 19);
    put_name(&b, "requestId");
    put_string(&b, o->request_id, SIZE_MAX);
    if (o->raw_request_id != NULL) {
        clw_buf_append(&b, ",\"rawRequestId\":", 16);
        put_string(&b, o->raw_request_id, SIZE_MAX);
    }
    clw_buf_append(&b, ",\"action\":", 10);
    put_string(&b, o->action, SIZE_MAX);
    clw_buf_append(&b, ",\"region\":", 10);
    put_string(&b, o->region, SIZE_MAX);
    clw_buf_append(&b, ",\"vpcId\":", 9);
    put_string(&b, o->vpc_id, SIZE_MAX);
    clw_buf_append(&b, ",\"instanceIds\":", 15);
    put_instances(&b, o);
    clw_buf_puts(&b, o->succeeded ? ",\"status\":\"succeeded\",\"code\":"
                                  : ",\"status\":\"failed\",\"code\":");
    put_int_or_null(&b, o->has_code, o->code);
    clw_buf_append(&b, ",\"codeDesc\":", 12);
    put_string(&b, o->code_desc, code_desc_max);
    clw_buf_append(&b, ",\"message\":", 11);
    put_string(&b, o->message != NULL ? o->message : "", message_max);
    clw_buf_append(&b, ",\"taskId\":", 10);
    put_int_or_null(&b, o->has_task_id, o->task_id);
    clw_buf_append(&b, ",\"errorClass\":", 14);
    put_string(&b, o->error_class, SIZE_MAX);
    clw_buf_append(&b, ",\"attempts\":", 12);
    put_int(&b, o->attempts);
    if (o->http_status > 0) {
        clw_buf_append(&b, ",\"httpStatus\":", 14);
        put_int(&b, o->http_status);
    }
    if (o->reconciled)
        clw_buf_puts(&b, ",\"reconciled\":true");
    if (o->task_status != NULL) {
        clw_buf_puts(&b, ",\"taskStatus\":");
        put_string(&b, o->task_status, SIZE_MAX);
    }
    if (o->api_request_id != NULL) {
        clw_buf_puts(&b, ",\"apiRequestId\":");
        put_string(&b, o->api_request_id, 128);
    }
    if (o->coalesced > 0) {
        clw_buf_puts(&b, ",\"coalesced\":");
        put_int(&b, o->coalesced);
    }
    clw_buf_append(&b, ",\"source\":{\"topic\":", 19);
    put_string(&b, o->source_topic, SIZE_MAX);
    clw_buf_append(&b, ",\"partition\":", 13);
    put_int(&b, o->source_partition);
    clw_buf_append(&b, ",\"offset\":", 10);
    put_int(&b, o->source_offset);
    clw_buf_append(&b, "},\"enqueuedAt\":", 15);
    put_time(&b, o->enqueued_at_ms);
    clw_buf_append(&b, ",\"receivedAt\":", 14);
    put_time(&b, o->received_at_ms);
    clw_buf_append(&b, ",\"completedAt\":", 15);
    put_time(&b, o->completed_at_ms);
    clw_buf_putc(&b, '}');
    return clw_buf_take(&b, len);
}

/* Bytes printed for the byte c inside a string (put_escape): \" \\ \b \f \n \r \t take 2,
 * other control characters \u00XX take 6, everything else (UTF-8 included) is copied. */
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

/* The text is malloc'd: the caller frees it with free().
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

        text = encode(o, message_max, code_desc_max, &n);
        if (text == NULL)
            break;
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
