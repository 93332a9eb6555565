/* Logging: one JSON object (or one text line) per record on stderr, level checked first. */
#ifndef CLW_LOG_H
#define CLW_LOG_H

#include <stddef.h> /* NULL in the macros below */
#include <stdint.h>

enum clw_log_level { CLW_LOG_DEBUG = 0, CLW_LOG_INFO, CLW_LOG_WARN, CLW_LOG_ERROR };

/* Optional context of a record. Any member may be NULL / negative when unknown. The strings
 * are borrowed for the duration of the call only. */
struct clw_log_ctx {
    const char *request_id;
    const char *topic;
    int32_t partition; /* -1 when unknown */
    int64_t offset;    /* -1 when unknown */
    const char *trace_id;
};

/* Parses "debug", "info", "warn", "error". Returns 0 on success, -1 otherwise. */
int clw_log_level_parse(const char *s, enum clw_log_level *out);
const char *clw_log_level_name(enum clw_log_level level);

/* Process-wide settings; safe to call at any time from the main thread. json != 0 selects one
 * JSON object per line, otherwise "TS LEVEL msg key=value" text. */
void clw_log_setup(enum clw_log_level level, int json);
int clw_log_enabled(enum clw_log_level level);

/* Writes one record; ctx may be NULL. Thread-safe (one write(2) per record). */
void clw_log_write(enum clw_log_level level, const struct clw_log_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Checks the level before any argument is evaluated or formatted. */
#define CLW_LOG(level, ctx, ...)                                                                   \
    do {                                                                                           \
        if (clw_log_enabled(level))                                                                \
            clw_log_write((level), (ctx), __VA_ARGS__);                                            \
    } while (0)
#define CLW_DEBUG(...) CLW_LOG(CLW_LOG_DEBUG, NULL, __VA_ARGS__)
#define CLW_INFO(...)  CLW_LOG(CLW_LOG_INFO, NULL, __VA_ARGS__)
#define CLW_WARN(...)  CLW_LOG(CLW_LOG_WARN, NULL, __VA_ARGS__)
#define CLW_ERROR(...) CLW_LOG(CLW_LOG_ERROR, NULL, __VA_ARGS__)

#endif
