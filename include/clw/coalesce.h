/* Coalescing rules (contract section 8): which requests may share an API call, what a call's
 * answer means for its members, and how a call is split. Pure: no I/O, no allocation. */
#ifndef CLW_COALESCE_H
#define CLW_COALESCE_H

#include <stddef.h>

#include "clw/answer.h"
#include "clw/classify.h"
#include "clw/request.h"

/* One request as coalescing sees it; every pointer borrowed. */
struct clw_coalesce_member {
    const char *key; /* clw_coalesce_key() */
    const char *const *instance_ids;
    size_t n_instances;
};

/* The coalescing key of a request: its action, region and vpcId as written (a legacy id and its
 * vpc- id are different keys). Every request runs with the worker's one set of credentials, so
 * they are not part of it. Writes "action|region|vpcId" into out; returns 0, or -1 when it does
 * not fit (out then holds an empty string). */
int clw_coalesce_key(char *out, size_t len, enum clw_action action, const char *region,
                     const char *vpc_id);

/* 1 when a and b may share a call: the same key and no instance in common. */
int clw_coalesce_compatible(const struct clw_coalesce_member *a,
                            const struct clw_coalesce_member *b);

/* How many of the first of n waiting members (oldest first) make up the next call: the first one
 * always (a request is never split), then each next one while the call's instances stay within
 * max_instances and it is compatible with every member taken; the first that is not ends the
 * call (first come, first served). 0 only when n is 0. */
size_t clw_coalesce_take(const struct clw_coalesce_member *m, size_t n, size_t max_instances);

/* What a call's answer means for its members. */
enum clw_verdict {
    CLW_VERDICT_SUCCESS = 0, /* every member succeeds with the call's answer */
    CLW_VERDICT_FAIL,        /* every member fails with the call's answer (api_error) */
    CLW_VERDICT_RECONCILE,   /* read the VPC's links, then decide each member */
    CLW_VERDICT_SPLIT,       /* split into smaller calls at once (no backoff) */
    CLW_VERDICT_RETRY,       /* transient: the same members again after a backoff */
    CLW_VERDICT_RESIGN,      /* the same members again at once, freshly signed */
    CLW_VERDICT_FAULT,       /* a worker fault: hold the members, pause, probe */
};

const char *clw_verdict_name(enum clw_verdict v); /* "success", "fail", ... */

/* The verdict on an Attach/Detach call of n_members (>= 1) requests for vpc_id, answered ans of
 * class cls. A lone request gets what it always got: "already linked" (attach) and "not found"
 * (detach) are reconciled before they are reported, any other permanent error fails it. A
 * shared call: success and an error about the shared VPC (v2 InvalidVpc.NotFound; v3
 * ResourceNotFound whose message names the VPC and no instance) fan out; "already linked" /
 * "not found" reconcile the whole group once (reconciled 0), and any other permanent error —
 * or those again after a reconciliation (reconciled 1) — splits it, so that every member ends
 * with exactly what its lone call would have given. Transient, re-sign and worker fault
 * classes apply to the group as they would to a lone call. instance_ids/n_instances are the
 * call's ids (for the v3 message check). */
enum clw_verdict clw_coalesce_verdict(enum clw_class cls, const struct clw_answer *ans,
                                      enum clw_action action, const char *vpc_id,
                                      const char *const *instance_ids, size_t n_instances,
                                      size_t n_members, int reconciled);

/* Plans the split of a call of n (>= 2) members whose answer message is msg (may be NULL):
 * members that msg names (one of their instance ids appears in it as a whole word) go first,
 * the rest after, and *named is set to 1; when msg names none or all of them, the first half
 * goes first (the larger half when n is odd) and *named is 0. Fills order with a permutation
 * of 0..n-1 and returns the size k of the first part, 1 <= k < n. */
size_t clw_coalesce_split(const struct clw_coalesce_member *m, size_t n, const char *msg,
                          size_t *order, int *named);

/* A split that peels off the members an error names costs one round trip per bad request when
 * a call holds many: 1 when the rest should be halved as well, because errors are dense in
 * this lineage of calls — `strikes` named splits (counting this one) since a call of `lineage`
 * members, at least two of them and one per CLW_COALESCE_DENSE_EVERY members. Sparse errors
 * (a few bad requests in a full call) keep the cheaper peeling. */
#define CLW_COALESCE_DENSE_EVERY 10
int clw_coalesce_dense(unsigned strikes, size_t lineage);

/* After reading the VPC's links (found[i]: instance i is linked to the VPC; complete: every page
 * was read), 1 when the member's requested state already holds: attach, every instance linked;
 * detach, none linked and the listing complete. */
int clw_coalesce_state_holds(enum clw_action action, const unsigned char *found, size_t n,
                             int complete);

#endif
