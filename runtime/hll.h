/* HyperLogLog distinct counter: precision 14 (16384 registers, standard
 * error 1.04/sqrt(16384) = 0.81%), mergeable, with a sparse form for small
 * sets so that the many low-cardinality keys of a window cost bytes, not
 * 16 KiB each. In the sparse form the count is exact.
 *
 * A counter is a value of fixed size meant to be embedded (a window keeps
 * one inside each table entry, so that adding to a small set touches no
 * other memory): nta_hll_init makes it empty, nta_hll_free releases what it
 * holds on the heap. It holds no pointer into itself, so it may be moved
 * with memcpy or realloc. */
#ifndef NTA_HLL_H
#define NTA_HLL_H

#include <stddef.h>
#include <stdint.h>

/* Hashes a sparse counter keeps inside the struct before it needs a heap
 * set (80 bytes in all). In flow data most of a window's records go to keys
 * that see only a few distinct values (a host's flows to a handful of
 * services); past 8, the slots remember recently added hashes instead. */
#define NTA_HLL_INLINE 8

typedef struct nta_hll {
    void *heap;       /* the sparse set (cap slots) or the dense form; NULL while inline */
    uint32_t n;       /* sparse: distinct non-zero hashes held */
    uint16_t cap;     /* sparse: slots of the heap set, 0 while the hashes are in inl */
    uint8_t dense;    /* heap is the dense form */
    uint8_t has_zero; /* sparse: the hash 0 was added */
    uint64_t inl[NTA_HLL_INLINE];
} nta_hll;

/* An empty counter; it holds no heap memory. */
void nta_hll_init(nta_hll *h);

/* Releases h's heap memory; h is then empty. */
void nta_hll_free(nta_hll *h);

/* Adds a 64-bit hash of the value (see nta_hash64). */
void nta_hll_add(nta_hll *h, uint64_t hash);

/* dst := dst U src. src is unchanged. */
void nta_hll_merge(nta_hll *dst, const nta_hll *src);

uint64_t nta_hll_estimate(const nta_hll *h);

/* Bytes of heap this counter holds, beyond the struct (memory accounting). */
size_t nta_hll_heap_bytes(const nta_hll *h);

/* The hash used for HLL values and window keys (XXH3, 64 bits). */
uint64_t nta_hash64(const void *data, size_t len);

#endif
