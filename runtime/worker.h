/* What the pipeline's helper threads (decoding ahead, the window lane) have
 * in common. SCHED_BATCH is Linux's: a file including this defines
 * _GNU_SOURCE before its first include. */
#ifndef NTA_WORKER_H
#define NTA_WORKER_H

#include <pthread.h>

/* Marks the calling thread as batch work (SCHED_BATCH). The pipeline's
 * thread wakes its helpers thousands of times a second; a woken thread of
 * the normal class preempts its waker when the other core is busy, so
 * every wake-up would stop the pipeline's thread for the helper's whole
 * slice. Batch threads run on the tick instead. Best effort: on failure the
 * thread just keeps its class. */
static inline void nta_worker_batch_class(void)
{
    struct sched_param sp = {0};
    (void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
}

#endif
