/* Offset watermark of one partition: offsets taken in increasing order, marked done in any
 * order; the commit point is the first offset not done. Single-threaded. */
#ifndef CLW_OFFSETS_H
#define CLW_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

struct clw_offsets;

struct clw_offsets *clw_offsets_new(void);
void clw_offsets_free(struct clw_offsets *t);

/* Records a taken offset; it must be greater than every offset added before. Returns 0 when
 * taken, 1 when not (not above the last one taken: a re-delivery; or not a valid offset), -1
 * on allocation failure (nothing recorded). */
int clw_offsets_add(struct clw_offsets *t, int64_t offset);

/* Marks a taken offset done. Returns 0, or -1 when it is unknown or already done. */
int clw_offsets_done(struct clw_offsets *t, int64_t offset);

/* The offset to store (the next to consume): the lowest offset not yet done, or the last
 * done offset + 1 when all are done. -1 when nothing was ever done since the tracker was
 * created. Gaps between offsets (transaction markers, compaction) are handled. */
int64_t clw_offsets_commit_point(const struct clw_offsets *t);

/* Offsets taken and not yet released by the watermark (pending, including done ones behind an
 * undone one). */
size_t clw_offsets_pending(const struct clw_offsets *t);

#endif
