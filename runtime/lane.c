#define _GNU_SOURCE /* SCHED_BATCH (worker.h) */
#include "lane.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "worker.h"

/* Records queued at most (72 bytes each): enough that the pipeline's
 * thread rarely waits for a lane that is off its core for a scheduler
 * slice or two. */
#define RING 16384
#define MASK (RING - 1)
/* A sleeping lane is woken once this many records wait: waking it per
 * record would cost the pipeline's thread a futex call each time the lane
 * catches up, which it does often, being the lighter of the two. */
#define WAKE_BATCH 256

typedef struct item {
    nta_record r;
    int32_t partition;
    uint32_t take;
} item;

struct nta_lane {
    item ring[RING];
    _Atomic uint64_t head; /* records queued (written by the pipeline's thread) */
    _Atomic uint64_t tail; /* records added (written by the lane) */
    _Atomic int sleeping;  /* the lane waits for records */
    _Atomic uint64_t want; /* the pipeline's thread waits for tail >= want; 0: not */

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t lane_cv, caller_cv;
    int stop; /* under mu */

    /* Set while drained, read by the lane after it sees new records. */
    nta_window *win[NTA_MAX_WINDOWS];
    uint32_t mask;

    /* The lane's own. */
    int32_t input_part;
    uint64_t nomem;
};

static void add(nta_lane *l, const item *it)
{
    uint32_t take = it->take & l->mask;
    if (it->partition != l->input_part) {
        l->input_part = it->partition;
        for (uint32_t m = l->mask; m; m &= m - 1)
            nta_window_set_input(l->win[__builtin_ctz(m)], it->partition);
    }
    /* As the pipeline does: every window's place is loaded before any add. */
    for (uint32_t m = take; m; m &= m - 1)
        nta_window_prefetch(l->win[__builtin_ctz(m)], &it->r);
    for (uint32_t m = take; m; m &= m - 1)
        if (nta_window_add(l->win[__builtin_ctz(m)], &it->r) < 0)
            l->nomem++;
}

/* Signals cv after taking and dropping mu: a waiter between its check of
 * the condition and its wait holds mu, so the signal cannot fall in that
 * gap, and the woken thread does not find mu still held by the signaller. */
static void wake(nta_lane *l, pthread_cond_t *cv)
{
    pthread_mutex_lock(&l->mu);
    pthread_mutex_unlock(&l->mu);
    pthread_cond_signal(cv);
}

/* Wakes the pipeline's thread if it waits for the lane to reach t. */
static void tell_caller(nta_lane *l, uint64_t t)
{
    uint64_t w = atomic_load_explicit(&l->want, memory_order_relaxed);
    if (w != 0 && t >= w)
        wake(l, &l->caller_cv);
}

static void *lane_main(void *arg)
{
    nta_lane *l = arg;
    nta_worker_batch_class();
    uint64_t t = 0;
    for (;;) {
        uint64_t h = atomic_load_explicit(&l->head, memory_order_acquire);
        for (; t < h; t++) {
            add(l, &l->ring[t & MASK]);
            atomic_store_explicit(&l->tail, t + 1, memory_order_release);
            tell_caller(l, t + 1);
        }
        pthread_mutex_lock(&l->mu);
        /* Under mu, where wait_for sets want: a want the check after the
         * last add missed (its load passed the store of tail) is seen here,
         * before the lane sleeps. */
        uint64_t w = atomic_load_explicit(&l->want, memory_order_relaxed);
        if (w != 0 && t >= w)
            pthread_cond_signal(&l->caller_cv);
        atomic_store_explicit(&l->sleeping, 1, memory_order_relaxed);
        while (!l->stop && atomic_load_explicit(&l->head, memory_order_acquire) == t)
            pthread_cond_wait(&l->lane_cv, &l->mu);
        atomic_store_explicit(&l->sleeping, 0, memory_order_relaxed);
        int stop = l->stop && atomic_load_explicit(&l->head, memory_order_acquire) == t;
        pthread_mutex_unlock(&l->mu);
        if (stop)
            return NULL;
    }
}

nta_lane *nta_lane_create(void)
{
    nta_lane *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    l->input_part = -1;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->lane_cv, NULL);
    pthread_cond_init(&l->caller_cv, NULL);
    if (pthread_create(&l->thread, NULL, lane_main, l) != 0) {
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->lane_cv);
        pthread_cond_destroy(&l->caller_cv);
        free(l);
        return NULL;
    }
    return l;
}

void nta_lane_destroy(nta_lane *l)
{
    if (l == NULL)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_signal(&l->lane_cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->lane_cv);
    pthread_cond_destroy(&l->caller_cv);
    free(l);
}

void nta_lane_set_windows(nta_lane *l, nta_window *const *win, uint32_t mask)
{
    for (int i = 0; i < NTA_MAX_WINDOWS; i++)
        l->win[i] = mask & (1u << i) ? win[i] : NULL;
    l->mask = mask;
    /* New windows learn the input partition from the next record. */
    l->input_part = -2;
}

/* Waits until the lane has added the records below target, waking it. */
static void wait_for(nta_lane *l, uint64_t target)
{
    if (atomic_load_explicit(&l->tail, memory_order_acquire) >= target)
        return;
    pthread_mutex_lock(&l->mu);
    atomic_store(&l->want, target);
    pthread_cond_signal(&l->lane_cv);
    while (atomic_load_explicit(&l->tail, memory_order_acquire) < target)
        pthread_cond_wait(&l->caller_cv, &l->mu);
    atomic_store(&l->want, 0);
    pthread_mutex_unlock(&l->mu);
}

void nta_lane_push(nta_lane *l, const nta_record *r, int32_t partition, uint32_t take)
{
    uint64_t h = atomic_load_explicit(&l->head, memory_order_relaxed);
    if (h - atomic_load_explicit(&l->tail, memory_order_acquire) >= RING)
        wait_for(l, h - RING / 2);
    item *it = &l->ring[h & MASK];
    it->r = *r;
    it->partition = partition;
    it->take = take;
    atomic_store_explicit(&l->head, h + 1, memory_order_release);
    /* A wake-up missed here (the lane went to sleep as this record came)
     * only delays the lane to the next batch or drain: both wake it too. */
    if (atomic_load_explicit(&l->sleeping, memory_order_relaxed) &&
        h + 1 - atomic_load_explicit(&l->tail, memory_order_relaxed) >= WAKE_BATCH)
        wake(l, &l->lane_cv);
}

void nta_lane_drain(nta_lane *l)
{
    wait_for(l, atomic_load_explicit(&l->head, memory_order_relaxed));
}

uint64_t nta_lane_take_nomem(nta_lane *l)
{
    uint64_t n = l->nomem;
    l->nomem = 0;
    return n;
}
