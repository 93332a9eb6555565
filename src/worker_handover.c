/* The hand-over policy (contract section 5, commit cadence; design section 4, hand-over while
 * the group rebalances): no new records while commits cannot reach the group coordinator, and
 * a stop that waits for the group to settle, commits, leaves, and says so when it could not. */
#include <stdio.h>

#include "clw/clock.h"
#include "worker_internal.h"

/* The least time a stop gives its final commit, even when the drain used up
 * worker.shutdown_timeout_ms: five automatic commit intervals of a stable group. */
#define COMMIT_LEAST_MS 1000
/* Partitions named in one log line. */
#define GAPS_LOGGED 64

void clw_worker_on_commits_stalled(void *arg, int stalled)
{
    struct worker *w = arg;
    w->commits_stalled = stalled;
    if (stalled)
        CLW_WARN("commits are not reaching the group coordinator (a rebalance is pending or the "
                 "coordinator is unreachable): taking no new records until they do, %zu "
                 "request(s) taken",
                 w->taken);
    else
        CLW_INFO("commits reach the group coordinator again: taking records");
    clw_worker_sync_all_pauses(w);
}

/* "p3 committed 200, done to 250; ..." of the gaps, or of the first GAPS_LOGGED. */
static size_t describe_gaps(struct worker *w, char *buf, size_t size)
{
    struct clw_commit_gap gaps[GAPS_LOGGED];
    size_t n = clw_kafka_uncommitted(w->kafka, w->stop_since, gaps, GAPS_LOGGED);
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && i < GAPS_LOGGED && len < size; i++) {
        char committed[24] = "none";
        if (gaps[i].committed >= 0)
            snprintf(committed, sizeof(committed), "%lld", (long long)gaps[i].committed);
        len += (size_t)snprintf(buf + len, size - len, "%spartition %d committed %s, done to %lld",
                                i ? "; " : "", (int)gaps[i].partition, committed,
                                (long long)gaps[i].stored);
    }
    return n;
}

void clw_worker_leave_group(struct worker *w)
{
    /* librdkafka commits stored offsets only while the group is stable: during a pending
     * rebalance this waits for the new generation (the assign callback commits at once). */
    if (w->exit_code != CLW_EXIT_FATAL && w->stop_since > 0) {
        int64_t least = clw_clock_mono_ms() + COMMIT_LEAST_MS;
        int64_t deadline = w->stop_deadline > least ? w->stop_deadline : least;
        while (clw_kafka_uncommitted(w->kafka, w->stop_since, NULL, 0) > 0) {
            int64_t left = deadline - clw_clock_mono_ms();
            if (left <= 0)
                break;
            clw_worker_turn(w, 1, left < 100 ? (int)left : 100);
        }
    }
    char gaps[4096];
    size_t n = w->exit_code != CLW_EXIT_FATAL ? describe_gaps(w, gaps, sizeof(gaps)) : 0;
    if (n > 0) {
        /* Counted now, while the close below may still keep the process (and its metrics)
         * up until the group settles. */
        clw_metrics_commit_failed(w->metrics);
        CLW_WARN("%zu partition(s) not committed within worker.shutdown_timeout_ms (a rebalance "
                 "is pending, the coordinator is unreachable, or "
                 "kafka.consumer.auto.commit.interval.ms is long); leaving the group: %s",
                 n, gaps);
    }
    /* Leaving the group runs the revoke handler, which forgets every partition; librdkafka
     * commits what is stored once more (behind a pending JoinGroup it waits for the group to
     * settle, then fails). */
    clw_kafka_close(w->kafka, 5000);
    if (n == 0)
        return;
    n = describe_gaps(w, gaps, sizeof(gaps));
    if (n == 0) {
        CLW_INFO("the offsets were committed when leaving the group after all");
        return;
    }
    CLW_ERROR("hand-over incomplete: the final commit of %zu partition(s) did not reach the group "
              "coordinator; the next owner redoes these offsets (exit %d): %s",
              n, CLW_EXIT_UNCOMMITTED, gaps);
    if (w->exit_code == CLW_EXIT_OK)
        w->exit_code = CLW_EXIT_UNCOMMITTED;
}
