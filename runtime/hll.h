/* HyperLogLog distinct counter: precision 14 (16384 registers, standard
 * error 1.04/sqrt(16384) = 0.81%), mergeable, with a sparse form for small
 * sets so that the many low-cardinality keys of a window cost bytes, not
 * 16 KiB each. In the sparse form the count is exact. */
#ifndef NTA_HLL_H
#define NTA_HLL_H

#include <stddef.h>
#include <stdint.h>

typedef struct nta_hll nta_hll;

/* Returns NULL only when out of memory. */
nta_hll *nta_hll_create(void);
void nta_hll_destroy(nta_hll *h);
void nta_hll_clear(nta_hll *h);

/* Adds a 64-bit hash of the value (see nta_hash64). */
void nta_hll_add(nta_hll *h, uint64_t hash);

/* dst := dst U src. src is unchanged. */
void nta_hll_merge(nta_hll *dst, const nta_hll *src);

uint64_t nta_hll_estimate(const nta_hll *h);

/* Bytes of heap this counter holds (for memory accounting). */
size_t nta_hll_bytes(const nta_hll *h);

/* The hash used for HLL values and window keys (XXH3, 64 bits). */
uint64_t nta_hash64(const void *data, size_t len);

#endif
