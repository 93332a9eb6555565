/* vpc-sim: the append-only call log, one JSON object a line. */
#ifndef CLW_SIM_LOG_H
#define CLW_SIM_LOG_H

#include <stddef.h>

#include <cjson/cJSON.h>

struct clw_sim_log {
    int fd; /* -1: no log */
};

/* Opens path for appending (created 0600 if missing). Returns 0, or -1 with errno set. */
int clw_sim_log_open(struct clw_sim_log *log, const char *path);

/* Writes entry as one line with a single write(2), so concurrent writers never interleave.
 * Does not take entry. No-op without a log. */
void clw_sim_log_write(struct clw_sim_log *log, const cJSON *entry);

void clw_sim_log_close(struct clw_sim_log *log);

/* The wall clock as an entry's "ts", e.g. 2026-11-25T21:06:32.001Z (out: at least 32 bytes). */
void clw_sim_log_timestamp(char *out, size_t outsz);

#endif
