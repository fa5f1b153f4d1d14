#include "hll.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#define HLL_P 14
#define HLL_M (1u << HLL_P)
/* Hash bits left after the register index; a register holds 1..HLL_Q + 1. */
#define HLL_Q (64 - HLL_P)

/* The sparse form holds at most this many non-zero hashes; the next one
 * turns the counter dense. 384 fills a 512-slot set (4 KiB, a quarter of the
 * dense registers) to its 3/4 load limit, and there the dense estimate is
 * already accurate to ~0.1%, so the switch is smooth. */
#define HLL_SPARSE_MAX 384
#define HLL_SET_MIN_CAP 16
#define HLL_SET_MAX_CAP 512

/* The dense form: one byte register per bucket, and the histogram of the
 * register values (hist[k] = registers holding k) kept current on every
 * change, so that an estimate reads 52 counters instead of 16384 registers
 * (a full pass costs ~20 us, and each (window, key) result needs one). */
typedef struct dense {
    uint8_t regs[HLL_M];
    uint16_t hist[HLL_Q + 2];
} dense;

/* Sparse form (dense == 0): the exact non-zero hashes, in inl[0 .. n) while
 * cap == 0, then in an open-addressing set of cap slots on the heap (linear
 * probing, 0 marks an empty slot); the hash 0 itself is kept in has_zero.
 * With the hashes on the heap, inl is a cache (recent_slot). */

uint64_t nta_hash64(const void *data, size_t len)
{
    return XXH3_64bits(data, len);
}

void nta_hll_init(nta_hll *h)
{
    memset(h, 0, sizeof *h);
}

void nta_hll_free(nta_hll *h)
{
    free(h->heap);
    nta_hll_init(h);
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

/* The slots of a sparse counter to scan for its non-zero hashes (inline
 * ones are never 0, a set's empty slots are), and their number in *n. */
static const uint64_t *sparse_slots(const nta_hll *h, uint32_t *n)
{
    *n = h->cap == 0 ? h->n : h->cap;
    return h->cap == 0 ? h->inl : h->heap;
}

/* Adds the hashes of the sparse counter src into d. */
static void dense_add_sparse(dense *d, const nta_hll *src)
{
    uint32_t n;
    const uint64_t *v = sparse_slots(src, &n);
    for (uint32_t i = 0; i < n; i++)
        if (v[i] != 0)
            dense_add(d, v[i]);
    if (src->has_zero)
        dense_add(d, 0);
}

typedef uint8_t u8x16 __attribute__((vector_size(16)));

/* dst := max(dst, src) register by register, the histogram updated for the
 * registers that change. Sixteen registers are compared at once, and only
 * the raised ones are visited: the registers of one pane raise a few
 * hundred or thousand of another's 16384, so a full scalar pass (or a
 * histogram rebuild) would cost several times more. */
static void dense_merge(dense *dst, const dense *src)
{
    for (uint32_t i = 0; i < HLL_M; i += 16) {
        u8x16 a, b;
        memcpy(&a, dst->regs + i, sizeof a);
        memcpy(&b, src->regs + i, sizeof b);
        u8x16 raised = (u8x16)(b > a); /* 0xff where src is higher */
        uint64_t half[2];
        memcpy(half, &raised, sizeof half);
        for (int h = 0; h < 2; h++) {
            /* Each raised register is one 0xff byte of m. */
            for (uint64_t m = half[h]; m != 0;) {
                unsigned bit = (unsigned)__builtin_ctzll(m);
                m &= ~(0xffull << bit);
                uint32_t j = i + 8 * (uint32_t)h + bit / 8;
                uint8_t old = dst->regs[j], v = src->regs[j];
                dst->regs[j] = v;
                dst->hist[old]--;
                dst->hist[v]++;
            }
        }
    }
}

/* Switches to the dense form. On allocation failure the counter stays
 * sparse and the caller drops the value it was adding or merging (the
 * interface has no error path, and an undercount beats a crash). */
static int densify(nta_hll *h)
{
    dense *d = malloc(sizeof *d);
    if (d == NULL)
        return -1;
    memset(d, 0, sizeof *d);
    d->hist[0] = HLL_M;
    dense_add_sparse(d, h);
    nta_hll_free(h);
    h->heap = d;
    h->dense = 1;
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

/* Moves the sparse hashes into a heap set of cap slots (a power of two,
 * larger than the current one). */
static int set_resize(nta_hll *h, uint32_t cap)
{
    uint64_t *set = calloc(cap, sizeof *set);
    if (set == NULL)
        return -1;
    uint32_t n;
    const uint64_t *v = sparse_slots(h, &n);
    for (uint32_t i = 0; i < n; i++)
        if (v[i] != 0)
            set_put(set, cap, v[i]);
    free(h->heap);
    h->heap = set;
    h->cap = (uint16_t)cap;
    return 0;
}

/* Adds a non-zero hash to a sparse counter. Returns 1 if h holds it
 * after (0 only when memory ran out). */
static int sparse_add(nta_hll *h, uint64_t hash)
{
    if (h->cap == 0) {
        for (uint32_t i = 0; i < h->n; i++)
            if (h->inl[i] == hash)
                return 1;
        if (h->n < NTA_HLL_INLINE) {
            h->inl[h->n++] = hash;
            return 1;
        }
        if (set_resize(h, HLL_SET_MIN_CAP) != 0)
            return 0;
        set_put(h->heap, h->cap, hash);
        h->n++;
        return 1;
    }
    uint64_t *set = h->heap;
    uint32_t mask = (uint32_t)h->cap - 1;
    uint32_t i = (uint32_t)hash & mask;
    for (; set[i] != 0; i = (i + 1) & mask)
        if (set[i] == hash)
            return 1;
    /* New hash: keep the load at or under 3/4 so probes stay short. */
    if ((h->n + 1) * 4 > (uint32_t)h->cap * 3) {
        if (h->n >= HLL_SPARSE_MAX) {
            if (densify(h) != 0)
                return 0;
            dense_add(h->heap, hash);
            return 1;
        }
        if (set_resize(h, (uint32_t)h->cap * 2) != 0)
            return 0;
        set_put(h->heap, h->cap, hash);
    } else {
        set[i] = hash;
    }
    h->n++;
    return 1;
}

/* Once the hashes live on the heap (a set or dense registers), the inline
 * slots are free, and they remember hashes already added: a value that
 * recurs (most records of a busy key repeat a few values) is then found in
 * the entry that holds the counter, without touching the heap. A slot only
 * ever holds a hash the counter has (sets and registers never lose one), so
 * the count is exactly what it would be without them. */
static inline uint64_t *recent_slot(nta_hll *h, uint64_t hash)
{
    return &h->inl[((hash >> 32) * NTA_HLL_INLINE) >> 32];
}

void nta_hll_add(nta_hll *h, uint64_t hash)
{
    if (hash == 0) {
        if (h->dense)
            dense_add(h->heap, 0);
        else
            h->has_zero = 1;
        return;
    }
    if (h->heap == NULL) {
        sparse_add(h, hash);
        return;
    }
    uint64_t *recent = recent_slot(h, hash);
    if (*recent == hash)
        return;
    if (h->dense)
        dense_add(h->heap, hash);
    else if (!sparse_add(h, hash))
        return;
    *recent = hash;
}

/* Sizes the sparse counter h's set once for want hashes (or the largest
 * set), rather than doubling it repeatedly while merging many small sets. */
static void sparse_reserve(nta_hll *h, uint32_t want)
{
    if (want <= NTA_HLL_INLINE)
        return;
    uint32_t cap = h->cap > HLL_SET_MIN_CAP ? h->cap : HLL_SET_MIN_CAP;
    while (cap < HLL_SET_MAX_CAP && want * 4 > cap * 3)
        cap *= 2;
    if (h->cap == 0 || cap > h->cap)
        (void)set_resize(h, cap);
}

/* dst := a copy of src; dst is empty and holds no heap memory. */
static void clone(nta_hll *dst, const nta_hll *src)
{
    size_t bytes = src->dense ? sizeof(dense) : (size_t)src->cap * sizeof(uint64_t);
    void *heap = NULL;
    if (bytes > 0) {
        heap = malloc(bytes);
        if (heap == NULL)
            return;
        memcpy(heap, src->heap, bytes);
    }
    *dst = *src;
    dst->heap = heap;
}

void nta_hll_merge(nta_hll *dst, const nta_hll *src)
{
    if (dst == src)
        return;
    if (!dst->dense && dst->n == 0 && !dst->has_zero && dst->heap == NULL) {
        /* The first pane merged into a window's fresh counter. */
        clone(dst, src);
        return;
    }
    if (src->dense) {
        if (dst->dense) {
            dense_merge(dst->heap, src->heap);
            return;
        }
        /* Start from a copy of src, which already holds more than dst's
         * few exact hashes, and add those: no pass over the registers. */
        dense *d = malloc(sizeof *d);
        if (d == NULL)
            return;
        memcpy(d, src->heap, sizeof *d);
        dense_add_sparse(d, dst);
        nta_hll_free(dst);
        dst->heap = d;
        dst->dense = 1;
        return;
    }
    if (dst->dense) {
        dense_add_sparse(dst->heap, src);
        return;
    }
    sparse_reserve(dst, dst->n + src->n);
    uint32_t n;
    const uint64_t *v = sparse_slots(src, &n);
    for (uint32_t i = 0; i < n; i++)
        if (v[i] != 0)
            nta_hll_add(dst, v[i]);
    if (src->has_zero)
        nta_hll_add(dst, 0);
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
    if (h->dense)
        return dense_estimate(h->heap);
    return (uint64_t)h->n + (h->has_zero ? 1 : 0);
}

size_t nta_hll_heap_bytes(const nta_hll *h)
{
    if (h->dense)
        return sizeof(dense);
    return (size_t)h->cap * sizeof(uint64_t);
}
