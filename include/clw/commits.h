/* Commit tracking: per requests-topic partition, the offset stored for commit and the highest
 * one the group coordinator acknowledged, to tell when commits stall and what a hand-over left
 * uncommitted. Pure bookkeeping (times are passed in, no I/O); the Kafka adapter feeds it. */
#ifndef CLW_COMMITS_H
#define CLW_COMMITS_H

#include <stddef.h>
#include <stdint.h>

struct clw_commits;

/* A partition whose stored offset the coordinator has not acknowledged. Offsets are next
 * offsets to consume; committed is -1 when no commit of this assignment was acknowledged. */
struct clw_commit_gap {
    int32_t partition;
    int64_t stored;
    int64_t committed;
};

/* stall_ms: how long a stored offset may wait for an acknowledgement before commits count as
 * stalled. Returns NULL when out of memory. */
struct clw_commits *clw_commits_new(int64_t stall_ms);
void clw_commits_free(struct clw_commits *c);

/* The partition was assigned: its record starts afresh. Returns 0, -1 when out of memory. */
int clw_commits_assigned(struct clw_commits *c, int32_t partition);
/* The partition was revoked at now_ms. A lost assignment forgets its stored offset (nothing of
 * it may be committed); otherwise the offset stays owed until acknowledged or re-assigned. */
void clw_commits_revoked(struct clw_commits *c, int32_t partition, int lost, int64_t now_ms);
/* An offset was stored for an assigned partition at now_ms. */
void clw_commits_stored(struct clw_commits *c, int32_t partition, int64_t offset, int64_t now_ms);
/* The coordinator acknowledged a commit of offset at now_ms. */
void clw_commits_acked(struct clw_commits *c, int32_t partition, int64_t offset, int64_t now_ms);

/* 1 when an assigned partition's stored offset has waited stall_ms or longer without any
 * acknowledgement advancing its commit, else 0. */
int clw_commits_stalled(const struct clw_commits *c, int64_t now_ms);
/* The partitions whose stored offset is not acknowledged: every assigned one, and the revoked
 * ones revoked at or after since_ms. Writes up to cap of them to out (may be NULL when cap is
 * 0), in partition order; returns how many there are. */
size_t clw_commits_gaps(const struct clw_commits *c, int64_t since_ms, struct clw_commit_gap *out,
                        size_t cap);

#endif
