/* Logging: one JSON object or text line per record, built on the stack, one write(2) to stderr. */
#include "clw/log.h"

#include "clw/clock.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* A record never exceeds LOG_RECORD_MAX bytes: the message is cut at LOG_MSG_OUT_MAX bytes of
 * output and each context string at LOG_FIELD_OUT_MAX, which together leave room for the rest. */
#define LOG_RECORD_MAX    8192
#define LOG_MSG_IN_MAX    4096
#define LOG_MSG_OUT_MAX   4096
#define LOG_FIELD_OUT_MAX 256
#define LOG_ELLIPSIS      "..."

static atomic_int log_level = CLW_LOG_INFO;
static atomic_int log_json = 1;

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const level_upper[] = {"DEBUG", "INFO", "WARN", "ERROR"};

/* A bounded output area: puts that do not fit are dropped whole, never cut. */
struct log_out {
    char *p;
    size_t len;
    size_t cap;
};

int clw_log_level_parse(const char *s, enum clw_log_level *out)
{
    size_t i;

    if (!s)
        return -1;
    for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum clw_log_level)i;
            return 0;
        }
    }
    return -1;
}

const char *clw_log_level_name(enum clw_log_level level)
{
    if ((int)level < 0 || (size_t)level >= sizeof(level_names) / sizeof(level_names[0]))
        return "unknown";
    return level_names[level];
}

void clw_log_setup(enum clw_log_level level, int json)
{
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
    atomic_store_explicit(&log_json, json ? 1 : 0, memory_order_relaxed);
}

int clw_log_enabled(enum clw_log_level level)
{
    return (int)level >= atomic_load_explicit(&log_level, memory_order_relaxed);
}

static void out_put(struct log_out *o, const char *s, size_t n)
{
    if (n > o->cap - o->len)
        return;
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void out_puts(struct log_out *o, const char *s)
{
    out_put(o, s, strlen(s));
}

/* Length of the well-formed UTF-8 sequence at s (1..4), or 0 when the byte at s does not start
 * one (overlong forms, surrogates and code points above U+10FFFF are not well-formed). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80;
    unsigned char hi = 0xbf;
    size_t len;
    size_t i;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4;
    else
        return 0;
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (n < len)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    }
    return len;
}

/* Escaping styles: a JSON string body, a bare text value, a quoted text value. */
enum esc_mode { ESC_JSON, ESC_TEXT, ESC_TEXT_QUOTED };

/* Copies the escape text s (at most 7 bytes) into piece; returns its length. */
static size_t set_piece(char piece[8], const char *s)
{
    size_t n = strlen(s);

    memcpy(piece, s, n + 1);
    return n;
}

/* Appends s[0..n) escaped, using at most limit bytes of output; "..." marks a cut. Control
 * characters become \n, \r, \t, or \u00XX (JSON) / \xHH (text); the quote and the backslash are
 * escaped except in bare text; invalid UTF-8 bytes become U+FFFD. cut_in says the input was
 * already truncated. */
static void out_escaped(struct log_out *o, const char *s, size_t n, size_t limit,
                        enum esc_mode mode, int cut_in)
{
    int json = mode == ESC_JSON;
    int quoting = mode != ESC_TEXT;
    const unsigned char *u = (const unsigned char *)s;
    size_t used = 0;
    size_t i = 0;
    char piece[8];
    size_t plen;
    size_t seq;

    if (limit > o->cap - o->len)
        limit = o->cap - o->len;
    while (i < n) {
        seq = 1;
        if (u[i] == '"' && quoting) {
            plen = set_piece(piece, "\\\"");
        } else if (u[i] == '\\' && quoting) {
            plen = set_piece(piece, "\\\\");
        } else if (u[i] == '\n') {
            plen = set_piece(piece, "\\n");
        } else if (u[i] == '\r') {
            plen = set_piece(piece, "\\r");
        } else if (u[i] == '\t') {
            plen = set_piece(piece, "\\t");
        } else if (u[i] < 0x20 || u[i] == 0x7f) {
            snprintf(piece, sizeof(piece), json ? "\\u%04x" : "\\x%02x", (unsigned)u[i]);
            plen = strlen(piece);
        } else {
            seq = utf8_len(u + i, n - i);
            if (seq == 0) {
                seq = 1;
                if (json) {
                    plen = set_piece(piece, "\\ufffd");
                } else {
                    plen = set_piece(piece, "\xef\xbf\xbd");
                }
            } else {
                memcpy(piece, u + i, seq);
                plen = seq;
            }
        }
        if (used + plen + sizeof(LOG_ELLIPSIS) - 1 > limit) {
            cut_in = 1;
            break;
        }
        out_put(o, piece, plen);
        used += plen;
        i += seq;
    }
    if (cut_in && used + sizeof(LOG_ELLIPSIS) - 1 <= limit)
        out_puts(o, LOG_ELLIPSIS);
}

/* In text format a value is written bare unless it is empty or holds a space, a quote or '='. */
static void out_text_value(struct log_out *o, const char *s)
{
    if (s[0] != '\0' && strpbrk(s, " \"=") == NULL) {
        out_escaped(o, s, strlen(s), LOG_FIELD_OUT_MAX, ESC_TEXT, 0);
        return;
    }
    out_puts(o, "\"");
    out_escaped(o, s, strlen(s), LOG_FIELD_OUT_MAX, ESC_TEXT_QUOTED, 0);
    out_puts(o, "\"");
}

static void out_field_str(struct log_out *o, int json, const char *key, const char *val)
{
    if (!val)
        return;
    if (json) {
        out_puts(o, ",\"");
        out_puts(o, key);
        out_puts(o, "\":\"");
        out_escaped(o, val, strlen(val), LOG_FIELD_OUT_MAX, ESC_JSON, 0);
        out_puts(o, "\"");
    } else {
        out_puts(o, " ");
        out_puts(o, key);
        out_puts(o, "=");
        out_text_value(o, val);
    }
}

static void out_field_int(struct log_out *o, int json, const char *key, int64_t val)
{
    char num[32];

    if (val < 0)
        return;
    snprintf(num, sizeof(num), "%" PRId64, val);
    out_puts(o, json ? ",\"" : " ");
    out_puts(o, key);
    out_puts(o, json ? "\":" : "=");
    out_puts(o, num);
}

static void write_all(const char *p, size_t n)
{
    ssize_t r;

    while (n > 0) {
        r = write(STDERR_FILENO, p, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        p += r;
        n -= (size_t)r;
    }
}

void clw_log_write(enum clw_log_level level, const struct clw_log_ctx *ctx, const char *fmt, ...)
{
    char record[LOG_RECORD_MAX];
    char msg[LOG_MSG_IN_MAX];
    char ts[CLW_RFC3339_LEN];
    struct log_out o = {record, 0, sizeof(record) - 1}; /* one byte kept for the newline */
    int saved_errno = errno;
    int json = atomic_load_explicit(&log_json, memory_order_relaxed);
    size_t msg_len;
    int cut = 0;
    int n;
    va_list ap;

    if (!clw_log_enabled(level))
        goto out;
    if ((int)level < 0 || (size_t)level >= sizeof(level_names) / sizeof(level_names[0]))
        level = CLW_LOG_ERROR;

    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) {
        msg[0] = '\0';
        msg_len = 0;
        cut = 1;
    } else if ((size_t)n >= sizeof(msg)) {
        msg_len = sizeof(msg) - 1;
        cut = 1;
    } else {
        msg_len = (size_t)n;
    }

    clw_clock_rfc3339(clw_clock_wall_ms(), ts);
    if (json) {
        out_puts(&o, "{\"ts\":\"");
        out_puts(&o, ts);
        out_puts(&o, "\",\"level\":\"");
        out_puts(&o, level_names[level]);
        out_puts(&o, "\",\"msg\":\"");
        out_escaped(&o, msg, msg_len, LOG_MSG_OUT_MAX, ESC_JSON, cut);
        out_puts(&o, "\"");
    } else {
        out_puts(&o, ts);
        out_puts(&o, " ");
        out_puts(&o, level_upper[level]);
        out_puts(&o, " ");
        out_escaped(&o, msg, msg_len, LOG_MSG_OUT_MAX, ESC_TEXT, cut);
    }
    if (ctx) {
        out_field_str(&o, json, "requestId", ctx->request_id);
        out_field_str(&o, json, "topic", ctx->topic);
        out_field_int(&o, json, "partition", ctx->partition);
        out_field_int(&o, json, "offset", ctx->offset);
        out_field_str(&o, json, "traceId", ctx->trace_id);
    }
    if (json)
        out_puts(&o, "}");
    record[o.len++] = '\n';
    write_all(record, o.len);

out:
    errno = saved_errno;
}
