/* A simulated fleet for the rate limiter's tests: K workers, each with its own limiter and an
 * endless backlog, share one API quota (N calls admitted in any 1 s window, refused calls not
 * counted, as tools/vpc-sim does) on virtual time; a stranger may spend part of it. */
#ifndef CLW_TEST_FLEET_SIM_H
#define CLW_TEST_FLEET_SIM_H

#include <stdint.h>

#include "clw/ratelimit.h"

#define FLEET_MAX_MEMBERS 8
#define FLEET_MAX_SECONDS 200
#define FLEET_MAX_EVENTS  4

enum fleet_event_kind { FLEET_NONE = 0, FLEET_JOIN, FLEET_LEAVE };

/* A member joins (a new process: its limiter is made when its first assignment arrives) or the
 * most recently started member still running stops calling at at_ms (SIGTERM). */
struct fleet_event {
    enum fleet_event_kind kind;
    int64_t at_ms;
};

struct fleet_params {
    int quota;            /* the API admits this many calls in any 1 s window */
    int stranger;         /* calls per second another client offers, evenly spread, from 2 s
                             before the fleet starts */
    int members;          /* members at the start */
    int64_t latency_ms;   /* an answer arrives 1 ms + this long after its call ... */
    int64_t jitter_ms;    /* ... plus up to this much (deterministic pseudo-random) */
    int max_in_flight;    /* calls in flight per member */
    int wired;            /* 1: each member's share is set to 1/members on every assignment, as a
                             scheduler that knows its partitions would; 0: shares stay unset */
    int64_t rebalance_ms; /* a join or leave changes the assignments this long after */
    struct clw_ratelimit_opts opts;
    struct fleet_event events[FLEET_MAX_EVENTS];
    int64_t end_ms; /* at most FLEET_MAX_SECONDS seconds */
};

/* Per member and per whole second of virtual time. */
struct fleet_result {
    int seconds;                                         /* whole seconds simulated */
    int members;                                         /* members ever started */
    int64_t start_ms[FLEET_MAX_MEMBERS];                 /* its limiter was made */
    int64_t stop_ms[FLEET_MAX_MEMBERS];                  /* it stopped calling; -1 never */
    long admitted[FLEET_MAX_MEMBERS][FLEET_MAX_SECONDS]; /* its calls the quota admitted */
    long throttled[FLEET_MAX_MEMBERS][FLEET_MAX_SECONDS];
    double rate[FLEET_MAX_MEMBERS][FLEET_MAX_SECONDS]; /* its limiter's rate at the second's end */
    long stranger_admitted[FLEET_MAX_SECONDS];
};

/* Runs the fleet from 0 to p->end_ms (1 ms steps); fails the running cmocka test when a
 * limiter cannot be made. */
void fleet_run(const struct fleet_params *p, struct fleet_result *r);

/* Calls of member m (-1: every member) admitted / throttled in the seconds [from_s, to_s). */
long fleet_admitted(const struct fleet_result *r, int m, int from_s, int to_s);
long fleet_throttled(const struct fleet_result *r, int m, int from_s, int to_s);

/* Jain's fairness index of the admitted calls of members that ran through [from_s, to_s):
 * 1 when equal, 1/n when one member got everything. */
double fleet_fairness(const struct fleet_result *r, int from_s, int to_s);

/* One line per second: fleet admitted/throttled, stranger, each member's admitted and rate. */
void fleet_print(const char *name, const struct fleet_result *r);

#endif
