/* A second thread that adds records to some of a pipeline's windows.
 *
 * Adding a record to a window is a hash-table lookup in memory that is
 * rarely in cache, plus its aggregates (HyperLogLog registers, top-k
 * summaries): with a dozen windows that is most of the pipeline thread's
 * work, and one core's cache misses can only overlap so far. The windows
 * are independent, so a lane takes a share of them: the pipeline's thread
 * queues each record for the lane and goes on with its own windows, and
 * both add the same records in the same order.
 *
 * The pipeline's thread owns everything but the lane's windows' tables:
 * it decides which windows take a record (filters), whether it is late and
 * which offsets it holds, all from what only changes when windows close.
 * It must drain the lane before it touches a lane window in any other way
 * (closing, flushing, reading statistics, replacing windows). */
#ifndef NTA_LANE_H
#define NTA_LANE_H

#include <stdint.h>

#include "conf.h"
#include "window.h"

typedef struct nta_lane nta_lane;

/* Starts the thread; NULL if it cannot be started (the caller then adds to
 * every window itself). */
nta_lane *nta_lane_create(void);

/* Drains and stops the thread. */
void nta_lane_destroy(nta_lane *l);

/* The lane's windows from now on: win[i] for each i with bit i of mask set
 * (win has NTA_MAX_WINDOWS entries). Only while drained. */
void nta_lane_set_windows(nta_lane *l, nta_window *const *win, uint32_t mask);

/* Queues r, read from input partition `partition`, for the windows of the
 * lane with their bit set in take. Blocks only while the queue is full. */
void nta_lane_push(nta_lane *l, const nta_record *r, int32_t partition, uint32_t take);

/* Returns once every queued record is in the lane's windows. */
void nta_lane_drain(nta_lane *l);

/* Records a window of the lane dropped for want of memory, since the last
 * call; only while drained. */
uint64_t nta_lane_take_nomem(nta_lane *l);

#endif
