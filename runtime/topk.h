/* Top-k heavy hitters: a mergeable counter summary with m counters, in the
 * form of Agarwal et al. 2012 ("Mergeable summaries"): Misra-Gries counts,
 * the dual of Space-Saving (Metwally et al. 2005; the paper shows the two are
 * isomorphic), reported the Space-Saving way, as upper bounds with an error.
 *
 * Guarantees, for a summary of total weight N (the sum of the weights added
 * or merged into it) and capacity m:
 *  - every item it holds has a value v and an error e with
 *    true weight <= v <= true weight + e;
 *  - an item it does not hold has true weight <= nta_topk_floor();
 *  - e = floor <= N / (m + 1).
 * So every item with true weight > N/(m+1) is held, and the held items
 * sorted by value give the heavy hitters with their shares to within 1/m.
 *
 * Why this form: updates are weighted (bytes), and Space-Saving with weights
 * needs a heap and a sift per miss (over twice the cost of this, measured on
 * heavy-tailed traffic). Here an update is a hash-table increment; when the
 * table holds 4m counters, one O(m) purge subtracts the (m+1)-th largest
 * count from all (Misra-Gries' decrement, batched), so updates are O(1)
 * amortised. A merge adds the counts of equal items, with the same purges; the
 * guarantees hold for any tree of merges and further adds (proof in
 * topk.c).
 *
 * Memory grows with the items seen, up to 4m counters of 48 bytes with their
 * index; a cleared summary keeps room for 8. */
#ifndef NTA_TOPK_H
#define NTA_TOPK_H

#include <stddef.h>
#include <stdint.h>

/* Capacity limits: nta_topk_create clamps m into this range. */
#define NTA_TOPK_MIN_CAPACITY 8
#define NTA_TOPK_MAX_CAPACITY 65536

/* An item: 16 bytes, compared bytewise (an address, or a number in the
 * first 8 bytes with the rest zero; see nta_agg_item_text in window.h). */
typedef struct nta_topk_key {
    uint8_t b[16];
} nta_topk_key;

typedef struct nta_topk_item {
    nta_topk_key key;
    uint64_t value; /* estimated weight: an upper bound of the true weight */
    uint64_t error; /* true weight >= value - error */
} nta_topk_item;

typedef struct nta_topk nta_topk;

/* A summary of m counters (clamped to the limits above). NULL when out of
 * memory. */
nta_topk *nta_topk_create(uint32_t m);
void nta_topk_destroy(nta_topk *t);

/* Back to empty, releasing the memory of counters beyond the first few. */
void nta_topk_clear(nta_topk *t);

/* Adds weight to key; hash is any good 64-bit hash of the key's 16 bytes.
 * Weight 0 changes nothing. Never fails: when memory for more counters
 * cannot be had, the summary goes on with the counters it has, as one of a
 * smaller capacity (and its bound). */
void nta_topk_add(nta_topk *t, const nta_topk_key *key, uint64_t hash, uint64_t weight);

/* dst := merge(dst, src); src is unchanged. Both should have the same
 * capacity; the result has the smaller one. Never fails (see nta_topk_add). */
void nta_topk_merge(nta_topk *dst, const nta_topk *src);

/* Up to max held items, largest value first (ties: smaller key first).
 * Returns how many were written. */
size_t nta_topk_items(const nta_topk *t, nta_topk_item *out, size_t max);

/* Items held now (at most 4 times the capacity). */
size_t nta_topk_size(const nta_topk *t);

/* Total weight added or merged in (exact). */
uint64_t nta_topk_total(const nta_topk *t);

/* Upper bound of the true weight of any item not held, and the error of
 * every item held (0 until the summary first fills: then it is exact). At
 * most total / (m + 1). */
uint64_t nta_topk_floor(const nta_topk *t);

uint32_t nta_topk_capacity(const nta_topk *t);

/* Bytes of heap held (for memory accounting). */
size_t nta_topk_bytes(const nta_topk *t);

#endif
