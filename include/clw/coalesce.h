/* Coalescing rules (contract section 8): which requests may share an API call, what a call's
 * answer means for its members, and how a call is split. Pure: no I/O, no allocation. */
#ifndef CLW_COALESCE_H
#define CLW_COALESCE_H

#include <stddef.h>

#include "clw/answer.h"
#include "clw/classify.h"
#include "clw/request.h"

/* One request as coalescing sees it: its instance ids (borrowed). */
struct clw_coalesce_member {
    const char *const *instance_ids;
    size_t n_instances;
};

/* The coalescing key of a request: its action, region and vpcId as written (a legacy id and its
 * vpc- id are different keys). Every request runs with the worker's one set of credentials, so
 * they are not part of it. Writes "action|region|vpcId" into out; returns 0, or -1 when it does
 * not fit (out then holds an empty string). Requests of one key share calls oldest first while
 * the call's instance ids fit api.coalesce.max_instances; the per-instance gate keeps two
 * requests sharing an instance out of one call. */
int clw_coalesce_key(char *out, size_t len, enum clw_action action, const char *region,
                     const char *vpc_id);

/* What one attempt carried, as the verdict reads its answer: every instance id sent and how
 * many requests they belonged to — including requests that left the call while the attempt
 * was in flight, so that a verdict is read against what was sent. */
struct clw_coalesce_sent {
    enum clw_action action;
    const char *vpc_id;
    const char *const *instance_ids;
    size_t n_instances;
    size_t n_members;
};

/* What a call's answer means for its members. */
enum clw_verdict {
    CLW_VERDICT_SUCCESS = 0, /* every member succeeds with the call's answer */
    CLW_VERDICT_FAIL,        /* every member fails with the call's answer (api_error): a lone
                                call's error, or one about the call as a whole */
    CLW_VERDICT_RECONCILE,   /* "already" (attach: linked; detach: not found): read the VPC's
                                links, then decide the members the answer concerns */
    CLW_VERDICT_SPLIT,       /* a business error about some members: split at once (no
                                backoff), the members the message names first, else halves */
    CLW_VERDICT_CONFIRM,     /* a parameter error that names nobody: send one member alone;
                                the same answer fans out to the rest, another halves them */
    CLW_VERDICT_ISOLATE,     /* a transient error that concerns some members (a resource lock,
                                or a message naming them): split at once like SPLIT; alone,
                                each retries on its own clock as its lone call would */
    CLW_VERDICT_RETRY,       /* transient: the same members again after a backoff */
    CLW_VERDICT_RESIGN,      /* the same members again at once, freshly signed */
    CLW_VERDICT_FAULT,       /* a worker fault: hold the members, pause, probe */
};

const char *clw_verdict_name(enum clw_verdict v); /* "success", "fail", ... */

/* The verdict on an Attach/Detach attempt that carried sent (n_members >= 1), answered ans of
 * class cls. Whatever the number of members:
 *   - success, re-sign and worker fault apply to the group as to a lone call;
 *   - an error about the VPC every member shares (v2 InvalidVpc.NotFound; v3 ResourceNotFound
 *     whose message names the VPC and no instance) fails every member, also a lone Detach
 *     (its instances cannot be linked to a VPC that does not exist);
 *   - "already" (attach: InstanceAlreadyLinked; detach: InvalidInstance.NotFound, v3
 *     ResourceNotFound) reconciles: alone, always; shared, when the message names a member
 *     (an answer that names nobody cannot be attributed and splits by halves).
 * A lone call's other permanent errors fail it, its transient ones retry. A shared call:
 *   - a parameter or operation error (InvalidParameter*, MissingParameter, UnknownParameter,
 *     UnsupportedOperation*) that names members splits them off; one that names the VPC and no
 *     member fails every member (every lone call would get it); one that names nothing is
 *     confirmed by one member's lone call (CONFIRM);
 *   - a limit (…Limit…, LimitExceeded) or any other business error splits, named first;
 *   - a transient error that concerns members (v2 ActionLocked, v3 ResourceInUse, or a message
 *     naming members) isolates them at once; throttling and other transient errors (the
 *     service, not a member) retry the group. */
enum clw_verdict clw_coalesce_verdict(enum clw_class cls, const struct clw_answer *ans,
                                      const struct clw_coalesce_sent *sent);

/* 1 when text names one of the member's instance ids as a whole word (bounded by characters
 * that cannot be part of an id). */
int clw_coalesce_names(const char *text, const struct clw_coalesce_member *m);

/* Plans the split of a call of n (>= 2) members whose answer message is msg (may be NULL):
 * members that msg names go first, the rest after, and *named is set to 1; when msg names none
 * or all of them, the first half goes first (the larger half when n is odd) and *named is 0.
 * Fills order with a permutation of 0..n-1 and returns the size k of the first part,
 * 1 <= k < n. */
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

/* 1 when two permanent answers are the same error: the same code, string code and message. A
 * CONFIRM call's lone answer equal to the shared call's says the error does not depend on who
 * was in the call. */
int clw_coalesce_same_error(const struct clw_answer *a, const struct clw_answer *b);

#endif
