/* Quantiles of a stream of non-negative integers: DDSketch (Masson, Rim,
 * Lee 2019) with relative accuracy alpha = 0.01, mergeable.
 *
 * A value x >= 1 goes to bucket i = ceil(log_gamma(x)), gamma =
 * (1 + alpha) / (1 - alpha), which holds (gamma^(i-1), gamma^i]; bucket i
 * answers 2 gamma^i / (gamma + 1), within alpha * x of every x in it. Zeros
 * have a bucket of their own and are answered exactly.
 *
 * The p-quantile is the value of rank floor(p * (n - 1)) (0-based) of the n
 * values in sorted order, DDSketch's definition. The answer q satisfies
 * |q - x| <= alpha * x for that value x; it is clamped to the exact minimum
 * and maximum seen (which only brings it closer), and exact for ranks 0 and
 * n - 1 and for values below 50 (their buckets hold one integer each).
 *
 * Memory: up to 12 buckets are kept inside the struct (~200 bytes, no
 * allocation: the common small (window, key) sketch); beyond that, 8 bytes
 * per bucket between the lowest and the highest occupied one, at most
 * NTA_QSKETCH_MAX_BUCKETS (16 KiB), which covers values from 1
 * to 2^59 (5.7e17) at once (all of uint64 would span 2219 buckets). Beyond that the
 * lowest buckets are collapsed into one: quantiles that fall in them are
 * overestimated (never those above them). Merging adds bucket counts.
 * Adds are O(1) (one log); a quantile is O(buckets). */
#ifndef NTA_QUANTILE_H
#define NTA_QUANTILE_H

#include <stddef.h>
#include <stdint.h>

#define NTA_QSKETCH_ALPHA 0.01
#define NTA_QSKETCH_MAX_BUCKETS 2048

typedef struct nta_qsketch nta_qsketch;

/* NULL when out of memory. */
nta_qsketch *nta_qsketch_create(void);
void nta_qsketch_destroy(nta_qsketch *q);

/* Back to empty, releasing every heap buffer. */
void nta_qsketch_clear(nta_qsketch *q);

/* Adds one value. Never fails: without memory for more buckets, the value is
 * counted in the nearest bucket held (its quantiles lose accuracy, the
 * count, minimum and maximum stay exact). */
void nta_qsketch_add(nta_qsketch *q, uint64_t v);

/* dst += src; src is unchanged. Never fails (see nta_qsketch_add). */
void nta_qsketch_merge(nta_qsketch *dst, const nta_qsketch *src);

/* The p-quantile for 0 <= p <= 1 (see above); 0 for an empty sketch. */
double nta_qsketch_quantile(const nta_qsketch *q, double p);

uint64_t nta_qsketch_count(const nta_qsketch *q);
uint64_t nta_qsketch_min(const nta_qsketch *q); /* 0 when empty */
uint64_t nta_qsketch_max(const nta_qsketch *q);

/* Buckets spanned now (for tests of the memory bound). */
size_t nta_qsketch_buckets(const nta_qsketch *q);

/* Bytes of heap held (for memory accounting). */
size_t nta_qsketch_bytes(const nta_qsketch *q);

#endif
