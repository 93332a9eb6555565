/* The guard: worker faults, the circuit breaker and its probes, a stuck publisher, expired
 * credentials, and the paused-time clock (contract section 5). Every pause field is read and
 * written here only; it calls metrics and log, nothing else. The metrics state changes before
 * each log line, so that whoever reads the log and then asks /readyz sees the new state. */
#include "worker_guard.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "clw/log.h"

/* Consecutive transient failures (across at least two instances) that open the circuit. */
#define CIRCUIT_THRESHOLD 20
/* The longest wait between two probes of an open circuit, growing with the outage: 4 s for
 * its first minute (an API back after an outage of up to a minute is seen within about 5 s),
 * then a fifteenth of the time open, up to retry.max_backoff_ms. */
#define PROBE_CAP_MIN_MS  4000
#define PROBE_CAP_DIVISOR 15

void clw_guard_init(struct guard *g, const struct clw_config *cfg, struct clw_metrics *metrics)
{
    memset(g, 0, sizeof(*g));
    g->cfg = cfg;
    g->metrics = metrics;
    g->paused_since = -1;
}

int clw_guard_paused(const struct guard *g)
{
    return g->fault_active || g->circuit_open || g->publish_stuck || g->creds_fault;
}

int clw_guard_creds_blocked(const struct guard *g)
{
    return g->creds_fault;
}

int64_t clw_guard_paused_total(const struct guard *g, int64_t now)
{
    return g->paused_total + (g->paused_since >= 0 ? now - g->paused_since : 0);
}

/* Starts or ends the paused-time clock when any pause reason changed. */
static void pause_changed(struct guard *g, int64_t now)
{
    int paused = clw_guard_paused(g);
    if (paused && g->paused_since < 0) {
        g->paused_since = now;
    } else if (!paused && g->paused_since >= 0) {
        g->paused_total += now - g->paused_since;
        g->paused_since = -1;
    }
    g->generation++;
}

static void set_fault(struct guard *g, int on, const char *reason, int64_t now)
{
    g->fault_active = on;
    if (on) {
        snprintf(g->fault_reason, sizeof(g->fault_reason), "%s", reason);
        g->next_probe_mono = now + g->cfg->retry_max_backoff_ms;
        clw_metrics_set_paused(g->metrics, CLW_PAUSE_WORKER_FAULT, 1, g->fault_reason);
        CLW_ERROR("worker fault: %s; pausing all partitions, probing every %" PRId64 " ms",
                  g->fault_reason, g->cfg->retry_max_backoff_ms);
    } else {
        clw_metrics_set_paused(g->metrics, CLW_PAUSE_WORKER_FAULT, 0, NULL);
        CLW_WARN("worker fault cleared (%s); resuming", g->fault_reason);
        g->fault_reason[0] = '\0';
        g->unhold = 1;
    }
    pause_changed(g, now);
}

static void set_circuit(struct guard *g, int open, int64_t now)
{
    g->circuit_open = open;
    clw_metrics_set_paused(g->metrics, CLW_PAUSE_CIRCUIT_OPEN, open,
                           open ? "consecutive transient API failures" : NULL);
    if (open) {
        g->circuit_since = now;
        g->probe_interval = g->cfg->retry_initial_backoff_ms;
        g->next_probe_mono = now + g->probe_interval;
        CLW_ERROR("circuit open after %d consecutive transient failures; probing after %" PRId64
                  " ms, then less often",
                  g->transient_streak, g->probe_interval);
    } else {
        CLW_WARN("circuit closed");
    }
    pause_changed(g, now);
}

static int64_t probe_cap(const struct guard *g, int64_t now)
{
    int64_t cap = (now - g->circuit_since) / PROBE_CAP_DIVISOR;
    if (cap < PROBE_CAP_MIN_MS)
        cap = PROBE_CAP_MIN_MS;
    if (cap > g->cfg->retry_max_backoff_ms)
        cap = g->cfg->retry_max_backoff_ms;
    return cap;
}

/* A probe of the open circuit failed: the next one waits twice as long, up to the cap. */
static void probe_failed(struct guard *g, int64_t now)
{
    int64_t cap = probe_cap(g, now);
    g->probe_interval = g->probe_interval * 2 < cap ? g->probe_interval * 2 : cap;
    if (g->probe_interval < 1)
        g->probe_interval = 1;
    g->next_probe_mono = now + g->probe_interval;
}

/* A transient failure of the service: the streak spans two instances once a call carries two,
 * or two calls start with different ones. */
static void note_transient(struct guard *g, const struct guard_answer *ga, int64_t now)
{
    const char *key = ga->n_instances > 0 ? ga->instance_ids[0] : "";
    if (g->transient_streak == 0) {
        snprintf(g->streak_key, sizeof(g->streak_key), "%s", key);
        g->streak_distinct = ga->n_instances > 1;
    } else if (ga->n_instances > 1 || strcmp(g->streak_key, key) != 0) {
        g->streak_distinct = 1;
    }
    g->transient_streak++;
    if (!g->circuit_open && g->transient_streak >= CIRCUIT_THRESHOLD && g->streak_distinct)
        set_circuit(g, 1, now);
}

enum guard_start clw_guard_start_mode(const struct guard *g, int64_t now)
{
    if (!g->fault_active && !g->circuit_open)
        return GUARD_START_ALL;
    if (g->probe_in_flight || now < g->next_probe_mono)
        return GUARD_START_NONE;
    return g->fault_active ? GUARD_START_HELD : GUARD_START_PROBE;
}

void clw_guard_probe_started(struct guard *g, int64_t now)
{
    g->probe_in_flight = 1;
    if (g->fault_active)
        g->next_probe_mono = now + g->cfg->retry_max_backoff_ms;
}

void clw_guard_probe_lost(struct guard *g, int64_t now)
{
    g->probe_in_flight = 0;
    if (g->circuit_open && g->next_probe_mono > now)
        g->next_probe_mono = now;
}

void clw_guard_answered(struct guard *g, const struct guard_answer *ga, int64_t now)
{
    if (ga->probe)
        g->probe_in_flight = 0;
    if (!ga->fault && ga->probe && g->fault_active)
        set_fault(g, 0, NULL, now);
    if (ga->outage) {
        if (ga->action)
            note_transient(g, ga, now);
    } else {
        /* The service answered: the streak ends; only a probe's answer closes the circuit (a
         * call sent before the outage may still come back with a success). */
        g->transient_streak = 0;
        if (g->circuit_open && ga->probe)
            set_circuit(g, 0, now);
    }
    if (ga->probe && g->circuit_open)
        probe_failed(g, now);
}

int clw_guard_fault(struct guard *g, const char *reason, int64_t now)
{
    if (g->cfg->api_on_worker_fault == CLW_FAULT_EXIT) {
        CLW_ERROR("worker fault: %s; exiting (api.on_worker_fault = exit)", reason);
        g->exit_requested = 1;
        return 1;
    }
    if (!g->fault_active)
        set_fault(g, 1, reason, now);
    return 0;
}

void clw_guard_publish_stuck(struct guard *g, int on, const char *why, int64_t now)
{
    if (g->publish_stuck == on)
        return;
    g->publish_stuck = on;
    clw_metrics_set_paused(g->metrics, CLW_PAUSE_PUBLISH_ERROR, on, on ? why : NULL);
    if (on)
        CLW_ERROR("cannot publish to Kafka (%s%s%s): %s; pausing all partitions",
                  g->cfg->topic_results, g->cfg->topic_dlq[0] ? " or " : "", g->cfg->topic_dlq,
                  why);
    else
        CLW_WARN("publishing outcomes works again; resuming");
    pause_changed(g, now);
}

void clw_guard_creds_fault(struct guard *g, int on, const char *why, int64_t now)
{
    if (g->creds_fault == on)
        return;
    g->creds_fault = on;
    if (on) {
        char detail[300];
        snprintf(detail, sizeof(detail), "credentials: %s", why);
        clw_metrics_set_paused(g->metrics, CLW_PAUSE_CREDENTIALS, 1, detail);
        if (g->cfg->api_on_worker_fault == CLW_FAULT_EXIT) {
            CLW_ERROR("worker fault: %s; exiting (api.on_worker_fault = exit)", detail);
            g->exit_requested = 1;
        } else {
            CLW_ERROR("worker fault: %s; pausing all partitions until a refresh succeeds", detail);
        }
    } else {
        clw_metrics_set_paused(g->metrics, CLW_PAUSE_CREDENTIALS, 0, NULL);
        CLW_WARN("credentials refreshed; resuming");
    }
    pause_changed(g, now);
}

int64_t clw_guard_wait_ms(const struct guard *g, int64_t now, int64_t max_ms)
{
    int64_t wait = max_ms;
    if ((g->fault_active || g->circuit_open) && !g->probe_in_flight &&
        g->next_probe_mono - now < wait)
        wait = g->next_probe_mono - now;
    return wait < 0 ? 0 : wait;
}

unsigned clw_guard_generation(const struct guard *g)
{
    return g->generation;
}

int clw_guard_take_unhold(struct guard *g)
{
    int u = g->unhold;
    g->unhold = 0;
    return u;
}

int clw_guard_exit_requested(const struct guard *g)
{
    return g->exit_requested;
}
