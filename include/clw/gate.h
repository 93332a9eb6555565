/* Per-resource gate: requests sharing a key (instance id) run one at a time, in the order they
 * entered; requests with no shared key never wait for each other. Single-threaded. */
#ifndef CLW_GATE_H
#define CLW_GATE_H

#include <stddef.h>

struct clw_gate;
struct clw_gate_ticket;

/* Called for each job that became runnable (at the head of every one of its keys' queues). */
typedef void(clw_gate_ready_fn)(void *job, void *arg);

struct clw_gate *clw_gate_new(void);
/* Frees the gate; every ticket must have left first. */
void clw_gate_free(struct clw_gate *g);

/* Enqueues job behind every earlier holder or waiter of any of keys (copied; duplicates among
 * keys are ignored). *ticket receives the handle to leave with. Returns 1 when the job may run
 * now, 0 when it waits (it will be announced through the ready callback of a later
 * clw_gate_leave), -1 on allocation failure (nothing enqueued). */
int clw_gate_enter(struct clw_gate *g, void *job, const char *const *keys, size_t n,
                   struct clw_gate_ticket **ticket);

/* Removes the ticket, whether it held its keys or was still waiting, frees it, and calls
 * ready(job, arg) for each job that became runnable because of it. */
void clw_gate_leave(struct clw_gate *g, struct clw_gate_ticket *ticket, clw_gate_ready_fn *ready,
                    void *arg);

/* Number of distinct keys currently held or waited for (for tests and metrics). */
size_t clw_gate_key_count(const struct clw_gate *g);

#endif
