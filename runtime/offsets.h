/* Which input offsets may be committed.
 *
 * A consumed record stays "needed" until every window it fed has been
 * emitted: committing its offset earlier would lose it from open windows if
 * the process died. Per partition this tracks, for each distinct time at which
 * records become released ("done time" = the end of the last window holding
 * them), the smallest offset waiting for it. The commit point of a partition
 * is the smallest offset still needed, or one past the last offset seen.
 *
 * Done times are few (one per open pane of the longest window), so a sorted
 * array per partition is small and mostly appended to at its end. */
#ifndef NTA_OFFSETS_H
#define NTA_OFFSETS_H

#include <stdint.h>

typedef struct nta_offsets nta_offsets;

nta_offsets *nta_offsets_create(void);
void nta_offsets_destroy(nta_offsets *o);

/* Offset of partition p was consumed; it is needed until the watermark
 * reaches done_ms (INT64_MIN: not needed at all, e.g. a bad or late record).
 * Offsets of one partition must be tracked in increasing order. */
void nta_offsets_track(nta_offsets *o, int32_t partition, int64_t offset, int64_t done_ms);

/* The watermark reached wm: records with done time <= wm are no longer needed. */
void nta_offsets_release(nta_offsets *o, int64_t wm);

/* Offset to commit for p (the next record to read after a restart), or -1
 * if nothing of p was tracked. */
int64_t nta_offsets_commit_point(const nta_offsets *o, int32_t partition);

/* Forgets p (its partition was revoked). */
void nta_offsets_forget(nta_offsets *o, int32_t partition);

/* Partitions tracked: 0..nta_offsets_partitions()-1 may be queried. */
int32_t nta_offsets_partitions(const nta_offsets *o);

#endif
