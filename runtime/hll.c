#include "hll.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#define HLL_P 14
#define HLL_M (1u << HLL_P)
/* Hash bits left after the register index; a register holds 1..HLL_Q + 1. */
#define HLL_Q (64 - HLL_P)

/* Sparse slots kept inside the struct, so the common tiny sets (a host
 * talking to one or two peers) need no allocation of their own. */
#define HLL_INLINE 4
/* The sparse set never grows past this many slots: 512 * 8 B = 4 KiB, a
 * quarter of the dense registers. At the load limit that is 384 hashes, where
 * the dense estimate is already accurate to ~0.1%, so the switch is smooth. */
#define HLL_SPARSE_MAX_CAP 512

/* The dense form: one byte register per bucket, and the histogram of the
 * register values (hist[k] = registers holding k) kept current on every
 * change, so that an estimate reads 52 counters instead of 16384 registers
 * (a full pass costs ~20 us, and each (window, key) result needs one). */
typedef struct dense {
    uint16_t hist[HLL_Q + 2];
    uint8_t regs[HLL_M];
} dense;

/* Sparse form (d == NULL): an open-addressing set of the exact 64-bit
 * hashes, linear probing, 0 marks an empty slot (hash 0 itself is kept in
 * has_zero). Dense form: d; set and n unused. */
struct nta_hll {
    dense *d;
    uint64_t *set; /* inl, or heap once grown */
    uint32_t n;    /* hashes in set, not counting has_zero */
    uint32_t cap;  /* slots in set, a power of two */
    int has_zero;
    uint64_t inl[HLL_INLINE];
};

uint64_t nta_hash64(const void *data, size_t len)
{
    return XXH3_64bits(data, len);
}

static void sparse_reset(nta_hll *h)
{
    if (h->set != h->inl)
        free(h->set);
    h->set = h->inl;
    h->cap = HLL_INLINE;
    h->n = 0;
    h->has_zero = 0;
    memset(h->inl, 0, sizeof h->inl);
}

nta_hll *nta_hll_create(void)
{
    nta_hll *h = malloc(sizeof *h);
    if (h == NULL)
        return NULL;
    h->d = NULL;
    h->set = h->inl;
    sparse_reset(h);
    return h;
}

void nta_hll_destroy(nta_hll *h)
{
    if (h == NULL)
        return;
    free(h->d);
    if (h->set != h->inl)
        free(h->set);
    free(h);
}

/* Back to the empty set, releasing every heap buffer: a cleared counter is
 * parked in pools and must not pin 16 KiB of registers while it waits. */
void nta_hll_clear(nta_hll *h)
{
    free(h->d);
    h->d = NULL;
    sparse_reset(h);
}

static inline void dense_add(dense *d, uint64_t hash)
{
    uint32_t idx = (uint32_t)(hash >> HLL_Q);
    uint64_t w = hash << HLL_P;
    uint8_t rank = w == 0 ? HLL_Q + 1 : (uint8_t)(__builtin_clzll(w) + 1);
    uint8_t old = d->regs[idx];
    if (old < rank) {
        d->regs[idx] = rank;
        d->hist[old]--;
        d->hist[rank]++;
    }
}

/* Adds the sparse hashes of src into d. */
static void dense_add_set(dense *d, const nta_hll *src)
{
    for (uint32_t i = 0; i < src->cap; i++)
        if (src->set[i] != 0)
            dense_add(d, src->set[i]);
    if (src->has_zero)
        dense_add(d, 0);
}

/* Four interleaved histograms, so that runs of equal registers (mostly
 * zeros) do not serialise on one counter. */
static void hist_rebuild(dense *d)
{
    uint16_t c[4][HLL_Q + 2];
    memset(c, 0, sizeof c);
    for (uint32_t i = 0; i < HLL_M; i += 4) {
        c[0][d->regs[i]]++;
        c[1][d->regs[i + 1]]++;
        c[2][d->regs[i + 2]]++;
        c[3][d->regs[i + 3]]++;
    }
    for (int k = 0; k < HLL_Q + 2; k++)
        d->hist[k] = (uint16_t)(c[0][k] + c[1][k] + c[2][k] + c[3][k]);
}

/* Switches to the dense form. On allocation failure the counter stays
 * sparse and the caller drops the value it was adding or merging (the
 * interface has no error path, and an undercount beats a crash). */
static int densify(nta_hll *h)
{
    dense *d = calloc(1, sizeof *d);
    if (d == NULL)
        return -1;
    d->hist[0] = HLL_M;
    dense_add_set(d, h);
    sparse_reset(h);
    h->d = d;
    return 0;
}

/* Inserts a non-zero hash known to be absent, into a set with room. */
static void set_put(uint64_t *set, uint32_t cap, uint64_t hash)
{
    uint32_t mask = cap - 1;
    uint32_t i = (uint32_t)hash & mask;
    while (set[i] != 0)
        i = (i + 1) & mask;
    set[i] = hash;
}

/* Rehashes the sparse set into cap slots (a larger power of two). */
static int sparse_resize(nta_hll *h, uint32_t cap)
{
    uint64_t *set = calloc(cap, sizeof *set);
    if (set == NULL)
        return -1;
    for (uint32_t i = 0; i < h->cap; i++)
        if (h->set[i] != 0)
            set_put(set, cap, h->set[i]);
    if (h->set != h->inl)
        free(h->set);
    h->set = set;
    h->cap = cap;
    return 0;
}

void nta_hll_add(nta_hll *h, uint64_t hash)
{
    if (h->d != NULL) {
        dense_add(h->d, hash);
        return;
    }
    if (hash == 0) {
        h->has_zero = 1;
        return;
    }
    uint32_t mask = h->cap - 1;
    uint32_t i = (uint32_t)hash & mask;
    for (; h->set[i] != 0; i = (i + 1) & mask)
        if (h->set[i] == hash)
            return;
    /* New hash: keep the load at or under 3/4 so probes stay short. */
    if ((h->n + 1) * 4 > h->cap * 3) {
        if (h->cap * 2 > HLL_SPARSE_MAX_CAP) {
            if (densify(h) == 0)
                dense_add(h->d, hash);
            return;
        }
        if (sparse_resize(h, h->cap * 2) != 0)
            return;
        set_put(h->set, h->cap, hash);
    } else {
        h->set[i] = hash;
    }
    h->n++;
}

void nta_hll_merge(nta_hll *dst, const nta_hll *src)
{
    if (dst == src)
        return;
    if (src->d == NULL) {
        /* Size dst once for the worst case (disjoint sets) rather than
         * doubling repeatedly: window emission merges many small sets. */
        if (dst->d == NULL) {
            uint32_t cap = dst->cap;
            while (cap < HLL_SPARSE_MAX_CAP && (dst->n + src->n) * 4 > cap * 3)
                cap *= 2;
            if (cap > dst->cap)
                (void)sparse_resize(dst, cap);
        }
        for (uint32_t i = 0; i < src->cap; i++)
            if (src->set[i] != 0)
                nta_hll_add(dst, src->set[i]);
        if (src->has_zero)
            nta_hll_add(dst, 0);
        return;
    }
    if (dst->d == NULL) {
        /* Start from a copy of src, which already holds more than dst's
         * few exact hashes, and add those: no pass over the registers. */
        dense *d = malloc(sizeof *d);
        if (d == NULL)
            return;
        memcpy(d, src->d, sizeof *d);
        dense_add_set(d, dst);
        sparse_reset(dst);
        dst->d = d;
        return;
    }
    uint8_t *dr = dst->d->regs;
    const uint8_t *sr = src->d->regs;
    for (uint32_t i = 0; i < HLL_M; i++)
        if (dr[i] < sr[i])
            dr[i] = sr[i];
    hist_rebuild(dst->d);
}

/* sigma and tau of Ertl, "New cardinality estimation algorithms for
 * HyperLogLog sketches" (2017): the series that make the raw estimate
 * unbiased at both ends of the range, which replaces the classic linear
 * counting switch and its bias bump near 2.5m without empirical tables. */
static double ertl_sigma(double x)
{
    if (x == 1.0)
        return INFINITY;
    double y = 1.0, z = x, prev;
    do {
        x *= x;
        prev = z;
        z += x * y;
        y += y;
    } while (z != prev);
    return z;
}

static double ertl_tau(double x)
{
    if (x == 0.0 || x == 1.0)
        return 0.0;
    double y = 1.0, z = 1.0 - x, prev;
    do {
        x = sqrt(x);
        prev = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
    } while (z != prev);
    return z / 3.0;
}

static uint64_t dense_estimate(const dense *d)
{
    const uint16_t *c = d->hist;
    const double m = HLL_M;
    double z = m * ertl_tau(1.0 - c[HLL_Q + 1] / m);
    for (int k = HLL_Q; k >= 1; k--)
        z = 0.5 * (z + c[k]);
    z += m * ertl_sigma(c[0] / m);
    const double alpha_inf = 0.5 / log(2.0);
    return (uint64_t)llround(alpha_inf * m * m / z);
}

uint64_t nta_hll_estimate(const nta_hll *h)
{
    if (h->d != NULL)
        return dense_estimate(h->d);
    return (uint64_t)h->n + (h->has_zero ? 1 : 0);
}

size_t nta_hll_bytes(const nta_hll *h)
{
    size_t b = sizeof *h;
    if (h->d != NULL)
        b += sizeof *h->d;
    if (h->set != h->inl)
        b += (size_t)h->cap * sizeof *h->set;
    return b;
}
