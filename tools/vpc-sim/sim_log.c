/* vpc-sim: the append-only call log, one JSON object a line. */
#include "sim_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int clw_sim_log_open(struct clw_sim_log *log, const char *path)
{
    log->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    return log->fd < 0 ? -1 : 0;
}

void clw_sim_log_write(struct clw_sim_log *log, const cJSON *entry)
{
    char *text;
    size_t len;
    size_t done = 0;

    if (log->fd < 0)
        return;
    text = cJSON_PrintUnformatted(entry);
    if (text == NULL)
        return;
    len = strlen(text);
    text[len] = '\n'; /* replaces the terminator: the buffer is written by length */
    while (done < len + 1) {
        ssize_t n = write(log->fd, text + done, len + 1 - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    free(text);
}

void clw_sim_log_close(struct clw_sim_log *log)
{
    if (log->fd >= 0)
        close(log->fd);
    log->fd = -1;
}

void clw_sim_log_timestamp(char *out, size_t outsz)
{
    struct timespec ts;
    struct tm tm;
    size_t len;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    len = strftime(out, outsz, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + len, outsz - len, ".%03ldZ", ts.tv_nsec / 1000000);
}
