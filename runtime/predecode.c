#include "predecode.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

/* 64 JSON messages take the helper about 20 µs: long enough that taking a
 * chunk (one atomic add) costs nothing, short enough that the pipeline's
 * thread rarely waits on the one the helper holds. */
#define CHUNK 64
#define NCHUNKS (NTA_PREDECODE_MAX / CHUNK)

struct nta_predecode {
    nta_decoder helper_dec, own_dec;
    const char *const *payloads;
    const size_t *lens;
    size_t n, nchunks;
    nta_decoded items[NTA_PREDECODE_MAX];
    atomic_size_t cursor;           /* the next chunk nobody has taken */
    _Atomic uint64_t done[NCHUNKS]; /* the batch number that chunk was decoded for */
    size_t next_ready;              /* the pipeline's thread: chunks below are decoded */

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t batch;       /* under mu: the current batch's number */
    uint64_t helper_done; /* under mu: the last batch the helper is through with */
    int stop;             /* under mu */
};

static void decode_chunk(nta_predecode *pd, nta_decoder *dec, size_t c)
{
    size_t end = (c + 1) * CHUNK < pd->n ? (c + 1) * CHUNK : pd->n;
    for (size_t i = c * CHUNK; i < end; i++) {
        const char *p = pd->payloads[i];
        nta_decoded *it = &pd->items[i];
        if (p == NULL || nta_decode_in_order(dec, p, pd->lens[i]))
            it->status = NTA_PREDECODE_IN_ORDER;
        else
            it->status = (int)nta_decode(dec, p, pd->lens[i], &it->rec);
    }
}

static void *helper(void *arg)
{
    nta_predecode *pd = arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&pd->mu);
    for (;;) {
        while (!pd->stop && pd->batch == seen)
            pthread_cond_wait(&pd->cv, &pd->mu);
        if (pd->stop)
            break;
        seen = pd->batch;
        pthread_mutex_unlock(&pd->mu);
        for (;;) {
            size_t c = atomic_fetch_add(&pd->cursor, 1);
            if (c >= pd->nchunks)
                break;
            decode_chunk(pd, &pd->helper_dec, c);
            atomic_store_explicit(&pd->done[c], seen, memory_order_release);
        }
        pthread_mutex_lock(&pd->mu);
        pd->helper_done = seen;
        pthread_cond_broadcast(&pd->cv);
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
                         size_t n)
{
    pd->payloads = payloads;
    pd->lens = lens;
    pd->n = n < NTA_PREDECODE_MAX ? n : NTA_PREDECODE_MAX;
    pd->nchunks = (pd->n + CHUNK - 1) / CHUNK;
    pd->next_ready = 0;
    atomic_store(&pd->cursor, 0);
    pthread_mutex_lock(&pd->mu);
    pd->batch++;
    pthread_cond_signal(&pd->cv);
    pthread_mutex_unlock(&pd->mu);
}

const nta_decoded *nta_predecode_get(nta_predecode *pd, size_t i)
{
    size_t c = i / CHUNK;
    /* Chunks are made ready in order, so that the one this thread takes is
     * always the one at the cursor. */
    while (pd->next_ready <= c) {
        size_t k = pd->next_ready++;
        if (atomic_load_explicit(&pd->done[k], memory_order_acquire) == pd->batch)
            continue;
        size_t expect = k;
        if (atomic_compare_exchange_strong(&pd->cursor, &expect, k + 1)) {
            decode_chunk(pd, &pd->own_dec, k);
            continue;
        }
        while (atomic_load_explicit(&pd->done[k], memory_order_acquire) != pd->batch)
            sched_yield();
    }
    return &pd->items[i];
}

void nta_predecode_end(nta_predecode *pd)
{
    pthread_mutex_lock(&pd->mu);
    while (pd->helper_done != pd->batch)
        pthread_cond_wait(&pd->cv, &pd->mu);
    pthread_mutex_unlock(&pd->mu);
}
