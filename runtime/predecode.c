#define _GNU_SOURCE /* SCHED_BATCH (worker.h) */
#include "predecode.h"

#include <assert.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "worker.h"

/* 64 JSON messages take the helper about 20 µs: long enough that taking a
 * chunk (one compare-and-swap) costs nothing, short enough that the pipeline's
 * thread rarely waits on the one the helper holds. */
#define CHUNK 64
#define NCHUNKS (NTA_PREDECODE_MAX / CHUNK)

/* The cursor packs the batch's number (low 32 bits of it), its chunk count
 * and the next chunk nobody has taken, so that one compare-and-swap both
 * takes a chunk and proves the batch is still the current one: a helper
 * that wakes late can never take a chunk of a batch it did not see begin. */
#define CUR(batch, n, next) (((uint64_t)(uint32_t)(batch) << 32) | ((uint64_t)(n) << 16) | (next))
#define CUR_BATCH(c) ((uint32_t)((c) >> 32))
#define CUR_N(c) ((size_t)(((c) >> 16) & 0xffff))
#define CUR_NEXT(c) ((size_t)((c) & 0xffff))

/* The release cursor packs the batch's number, its chunk count, the chunks
 * the pipeline's thread is done with (the limit) and the next chunk nobody
 * has taken to release; chunk counts fit in a byte (NCHUNKS <= 255). */
#define RCUR(batch, n, limit, next)                                                    \
    (((uint64_t)(uint32_t)(batch) << 32) | ((uint64_t)(n) << 16) | ((uint64_t)(limit) << 8) | \
     (uint64_t)(next))
#define RCUR_N(c) ((size_t)(((c) >> 16) & 0xff))
#define RCUR_LIMIT(c) ((size_t)(((c) >> 8) & 0xff))
#define RCUR_NEXT(c) ((size_t)((c) & 0xff))
#define RCUR_ONE_LIMIT ((uint64_t)1 << 8)
_Static_assert(NCHUNKS <= 255, "a batch's chunk count must fit the release cursor's bytes");

/* The helper sleeps until this many more chunks are done with: waking it
 * for every chunk would cost the pipeline's thread a futex call per 64
 * messages. The pipeline's thread releases what is left at the batch's end. */
#define RELEASE_AHEAD 4

struct nta_predecode {
    nta_decoder helper_dec, own_dec;
    const char *const *payloads;
    const size_t *lens;
    size_t n;
    nta_decoded decoded[NTA_PREDECODE_MAX];
    _Atomic uint64_t cursor;
    _Atomic uint32_t done[NCHUNKS]; /* the batch number that chunk was decoded for */
    size_t next_ready;              /* the pipeline's thread: chunks below are decoded */
    uint32_t batch;                 /* the pipeline's thread's copy of the current number */

    /* Releasing: the batch's items and what releases one (NULL: nothing to
     * release), set by nta_predecode_begin under mu. */
    void *const *items;
    void (*release)(void *);
    _Atomic uint64_t rcursor;
    _Atomic uint32_t released[NCHUNKS]; /* the batch number that chunk was released for */
    _Atomic size_t want;                /* the limit the sleeping helper waits for, or 0 */
    size_t fed;                         /* the pipeline's thread: chunks it is done with */

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t posted; /* under mu: the batch the helper is to work on */
    int stop;        /* under mu */
};

static void decode_chunk(nta_predecode *pd, nta_decoder *dec, size_t c)
{
    size_t end = (c + 1) * CHUNK < pd->n ? (c + 1) * CHUNK : pd->n;
    for (size_t i = c * CHUNK; i < end; i++) {
        const char *p = pd->payloads[i];
        nta_decoded *it = &pd->decoded[i];
        if (p == NULL || nta_decode_in_order(dec, p, pd->lens[i]))
            it->status = NTA_PREDECODE_IN_ORDER;
        else
            it->status = (int)nta_decode(dec, p, pd->lens[i], &it->rec);
    }
}

/* Takes the next chunk of batch b; -1 when there is none left. */
static long take(nta_predecode *pd, uint32_t b)
{
    uint64_t cur = atomic_load_explicit(&pd->cursor, memory_order_acquire);
    for (;;) {
        if (CUR_BATCH(cur) != b || CUR_NEXT(cur) >= CUR_N(cur))
            return -1;
        if (atomic_compare_exchange_weak_explicit(&pd->cursor, &cur, cur + 1,
                                                  memory_order_acq_rel, memory_order_acquire))
            return (long)CUR_NEXT(cur);
    }
}

/* Takes the next chunk of batch b the pipeline's thread is done with; -1
 * when there is none. */
static long take_fed(nta_predecode *pd, uint32_t b)
{
    uint64_t cur = atomic_load_explicit(&pd->rcursor, memory_order_acquire);
    for (;;) {
        if (CUR_BATCH(cur) != b || RCUR_NEXT(cur) >= RCUR_LIMIT(cur))
            return -1;
        if (atomic_compare_exchange_weak_explicit(&pd->rcursor, &cur, cur + 1,
                                                  memory_order_acq_rel, memory_order_acquire))
            return (long)RCUR_NEXT(cur);
    }
}

static void release_chunk(nta_predecode *pd, size_t c)
{
    size_t end = (c + 1) * CHUNK < pd->n ? (c + 1) * CHUNK : pd->n;
    for (size_t i = c * CHUNK; i < end; i++)
        pd->release(pd->items[i]);
}

/* The helper, once batch b is decoded: releases its chunks as the pipeline's
 * thread is done with them, until none is left to take or another batch is
 * posted. Called and returns with mu held. */
static void release_fed(nta_predecode *pd, uint32_t b)
{
    for (;;) {
        pthread_mutex_unlock(&pd->mu);
        long c;
        while ((c = take_fed(pd, b)) >= 0) {
            release_chunk(pd, (size_t)c);
            atomic_store_explicit(&pd->released[c], b, memory_order_release);
        }
        pthread_mutex_lock(&pd->mu);
        uint64_t cur = atomic_load(&pd->rcursor);
        if (pd->stop || pd->posted != b || CUR_BATCH(cur) != b || RCUR_NEXT(cur) >= RCUR_N(cur))
            return;
        size_t want = RCUR_NEXT(cur) + RELEASE_AHEAD;
        if (want > RCUR_N(cur))
            want = RCUR_N(cur);
        /* Sequentially consistent with nta_predecode_done_with: either it
         * sees want, or this load sees the limit it raised. */
        atomic_store(&pd->want, want);
        cur = atomic_load(&pd->rcursor);
        if (CUR_BATCH(cur) == b && RCUR_LIMIT(cur) < want)
            pthread_cond_wait(&pd->cv, &pd->mu);
        atomic_store(&pd->want, 0);
    }
}

static void *helper(void *arg)
{
    nta_predecode *pd = arg;
    nta_worker_batch_class();
    uint32_t seen = 0;
    pthread_mutex_lock(&pd->mu);
    for (;;) {
        while (!pd->stop && pd->posted == seen)
            pthread_cond_wait(&pd->cv, &pd->mu);
        if (pd->stop)
            break;
        seen = pd->posted;
        pthread_mutex_unlock(&pd->mu);
        long c;
        while ((c = take(pd, seen)) >= 0) {
            decode_chunk(pd, &pd->helper_dec, (size_t)c);
            atomic_store_explicit(&pd->done[c], seen, memory_order_release);
        }
        pthread_mutex_lock(&pd->mu);
        if (pd->release != NULL)
            release_fed(pd, seen);
    }
    pthread_mutex_unlock(&pd->mu);
    return NULL;
}

nta_predecode *nta_predecode_create(const nta_decoder *proto)
{
    nta_predecode *pd = calloc(1, sizeof *pd);
    if (pd == NULL)
        return NULL;
    pd->helper_dec = *proto;
    pd->own_dec = *proto;
    pthread_mutex_init(&pd->mu, NULL);
    pthread_cond_init(&pd->cv, NULL);
    if (pthread_create(&pd->thread, NULL, helper, pd) != 0) {
        pthread_mutex_destroy(&pd->mu);
        pthread_cond_destroy(&pd->cv);
        free(pd);
        return NULL;
    }
    return pd;
}

void nta_predecode_destroy(nta_predecode *pd)
{
    if (pd == NULL)
        return;
    pthread_mutex_lock(&pd->mu);
    pd->stop = 1;
    pthread_cond_broadcast(&pd->cv);
    pthread_mutex_unlock(&pd->mu);
    pthread_join(pd->thread, NULL);
    pthread_mutex_destroy(&pd->mu);
    pthread_cond_destroy(&pd->cv);
    free(pd);
}

void nta_predecode_begin(nta_predecode *pd, const char *const *payloads, const size_t *lens,
                         size_t n, void *const *items, void (*release)(void *))
{
    pd->payloads = payloads;
    pd->lens = lens;
    assert(n <= NTA_PREDECODE_MAX);
    pd->n = n;
    pd->next_ready = 0;
    pd->fed = 0;
    /* 0 never names a batch: done[] and released[] start zeroed. */
    if (++pd->batch == 0)
        pd->batch = 1;
    size_t nchunks = (pd->n + CHUNK - 1) / CHUNK;
    atomic_store_explicit(&pd->cursor, CUR(pd->batch, nchunks, 0), memory_order_release);
    atomic_store_explicit(&pd->rcursor, RCUR(pd->batch, items != NULL ? nchunks : 0, 0, 0),
                          memory_order_release);
    pthread_mutex_lock(&pd->mu);
    /* Under mu: the helper reads them there after its last batch. */
    pd->items = items;
    pd->release = items != NULL ? release : NULL;
    pd->posted = pd->batch;
    pthread_mutex_unlock(&pd->mu);
    /* After unlocking: the woken helper would otherwise first wait for mu. */
    pthread_cond_signal(&pd->cv);
}

static void wait_for(nta_predecode *pd, _Atomic uint32_t *flag)
{
    while (atomic_load_explicit(flag, memory_order_acquire) != pd->batch)
        sched_yield();
}

const nta_decoded *nta_predecode_get(nta_predecode *pd, size_t i)
{
    size_t c = i / CHUNK;
    /* Chunks are made ready in order, so that a chunk nobody has taken is
     * always the one at the cursor. */
    while (pd->next_ready <= c) {
        size_t k = pd->next_ready++;
        uint64_t cur = CUR(pd->batch, CUR_N(atomic_load(&pd->cursor)), k);
        if (atomic_compare_exchange_strong(&pd->cursor, &cur, cur + 1)) {
            decode_chunk(pd, &pd->own_dec, k);
            atomic_store_explicit(&pd->done[k], pd->batch, memory_order_relaxed);
        } else {
            wait_for(pd, &pd->done[k]);
        }
    }
    return &pd->decoded[i];
}

void nta_predecode_end(nta_predecode *pd)
{
    /* Take what is left, so the helper takes no more, then wait for the
     * chunks it holds: after this it reads nothing of the batch. */
    uint64_t cur = atomic_load_explicit(&pd->cursor, memory_order_acquire);
    while (!atomic_compare_exchange_weak(&pd->cursor, &cur,
                                         CUR(pd->batch, CUR_N(cur), CUR_N(cur))))
        ;
    for (size_t k = pd->next_ready; k < CUR_NEXT(cur); k++)
        wait_for(pd, &pd->done[k]);
    if (pd->release == NULL)
        return;
    /* The same for releasing: the rest is released here, and the chunks the
     * helper holds are waited for. */
    uint64_t rc = atomic_load_explicit(&pd->rcursor, memory_order_acquire);
    size_t n = RCUR_N(rc);
    while (!atomic_compare_exchange_weak(&pd->rcursor, &rc, RCUR(pd->batch, n, n, n)))
        ;
    for (size_t k = RCUR_NEXT(rc); k < n; k++)
        release_chunk(pd, k);
    for (size_t k = 0; k < RCUR_NEXT(rc); k++)
        wait_for(pd, &pd->released[k]);
}

void nta_predecode_done_with(nta_predecode *pd, size_t i)
{
    size_t c = i / CHUNK;
    if (pd->release == NULL || c <= pd->fed)
        return;
    uint64_t cur = atomic_fetch_add(&pd->rcursor, (c - pd->fed) * RCUR_ONE_LIMIT) +
                   (c - pd->fed) * RCUR_ONE_LIMIT;
    pd->fed = c;
    size_t want = atomic_load(&pd->want);
    if (want != 0 && RCUR_LIMIT(cur) >= want) {
        /* Signalled after mu is dropped (see nta_predecode_begin). */
        pthread_mutex_lock(&pd->mu);
        pthread_mutex_unlock(&pd->mu);
        pthread_cond_signal(&pd->cv);
    }
}
