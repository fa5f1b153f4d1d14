/* Decoding ahead: while the pipeline's thread aggregates the messages of a
 * batch, a second thread decodes the ones after them.
 *
 * Decoding is a third of the pipeline thread's work on JSON input and needs
 * nothing but the payload, so it is the part that can run beside the
 * pipeline without changing what the pipeline sees: records still enter
 * in input order, on one thread. The batch is cut into chunks; the helper
 * takes them from the front, and the pipeline's thread, when it reaches a
 * chunk nobody has taken yet, decodes that one itself, so a busy second
 * core never makes the pipeline wait longer than one chunk's decoding.
 * Payloads that must be decoded in order (CSV, whose header line changes
 * the decoder) are left to the pipeline's thread. */
#ifndef NTA_PREDECODE_H
#define NTA_PREDECODE_H

#include <stddef.h>

#include "decode.h"

#define NTA_PREDECODE_MAX 4096

typedef struct nta_predecode nta_predecode;

/* One item of a batch: status is an nta_decode_status, or
 * NTA_PREDECODE_IN_ORDER when the caller must decode it itself, in order. */
#define NTA_PREDECODE_IN_ORDER (-1)
typedef struct nta_decoded {
    nta_record rec;
    int status;
} nta_decoded;

/* A helper thread decoding with a copy of proto (its configuration only).
 * NULL if the thread cannot be started: the caller then decodes alone. */
nta_predecode *nta_predecode_create(const nta_decoder *proto);
void nta_predecode_destroy(nta_predecode *pd);

/* Starts on payloads[0..n) (n <= NTA_PREDECODE_MAX); they must stay valid
 * until nta_predecode_end. With items (NULL: none), the helper also calls
 * release on items[0..n) (librdkafka messages to destroy) as the caller is
 * done with them, and nta_predecode_end releases the rest: a free takes the
 * lock of the malloc arena the allocating thread (librdkafka's fetcher)
 * works in, and the pipeline's thread should not be the one that waits for
 * it. Every item is released before nta_predecode_end returns: the caller
 * reuses its arrays for the next batch, and no message outlives the batch
 * it came in. */
void nta_predecode_begin(nta_predecode *pd, const char *const *payloads, const size_t *lens,
                         size_t n, void *const *items, void (*release)(void *));

/* Item i of the batch, decoded; items are asked for in increasing order. */
const nta_decoded *nta_predecode_get(nta_predecode *pd, size_t i);

/* The caller no longer needs items[0..i) nor their payloads; i does not
 * decrease within a batch. */
void nta_predecode_done_with(nta_predecode *pd, size_t i);

/* Returns once the helper no longer reads the batch's payloads and every
 * item is released. */
void nta_predecode_end(nta_predecode *pd);

#endif
