#include "topk.h"

#include <stdlib.h>
#include <string.h>

/* Counters a fresh or cleared summary has room for: most (window, key)
 * pairs see only a few distinct items, and a pooled summary should cost
 * little. */
#define INIT_CAP 8u
/* The table holds up to this many times m counters before a purge brings
 * it back to m: a purge costs O(table), so a roomier table purges less often
 * (4m: ~20 ns per record on heavy-tailed traffic, against ~30 ns for 2m). */
#define TABLE_FACTOR 4u

#define NONE UINT32_MAX

/* One counter: the item, its count (a lower bound of its weight) and its
 * hash, kept so that the index can be rebuilt without rehashing keys. */
typedef struct ent {
    nta_topk_key key;
    uint64_t count;
    uint64_t hash;
} ent;

/* The invariants, with f(x) the true weight of x, c(x) its count (0 if not
 * held), N = total and off = the sum of all purge thresholds:
 *   (A) c(x) <= f(x) <= c(x) + off, for every x;
 *   (B) (m + 1) * off <= N - (the sum of all counts).
 * An add of w to x keeps both (c(x) and N grow by w). A purge, when the
 * table is full, takes t = the (m+1)-th largest count, lowers every count by
 * t (dropping those that reach 0, so at most m stay) and adds t to off: (A)
 * holds, and the m+1 largest counts lose t each, which pays for (B). A merge
 * adds src's counts to dst as weights (so A and B hold for dst plus those
 * pseudo-records), then adds src's off and its N minus its counts: (A) and
 * (B) hold for src on its side, so they hold for the sum. Hence
 * off <= N / (m + 1), and reporting c + off with error off gives topk.h's
 * guarantees. m only shrinks (when memory for counters runs out); (B) with a
 * smaller m is weaker but still holds. */
struct nta_topk {
    uint32_t m;         /* counters a purge keeps */
    uint32_t m0;        /* capacity asked for: clear restores it */
    uint32_t cap;       /* counters allocated, at most TABLE_FACTOR * m */
    uint32_t n;         /* counters in use */
    uint32_t mask;      /* index slots - 1; slots are a power of two >= 2 * cap */
    uint64_t total;
    uint64_t off;
    /* One allocation (ents, then scratch, then slots), so that a resize is
     * one malloc: keyed windows resize many small summaries. */
    ent *ents;          /* cap */
    uint64_t *scratch;  /* cap: the counts, for the purge's selection */
    uint32_t *slots;    /* mask + 1: entry number + 1, 0 = empty; linear probing */
};

static uint32_t slots_for(uint32_t cap)
{
    uint32_t s = 16;
    while (s < 2 * cap)
        s *= 2;
    return s;
}

static void index_insert(nta_topk *t, uint32_t i)
{
    uint32_t p = (uint32_t)t->ents[i].hash & t->mask;
    while (t->slots[p] != 0)
        p = (p + 1) & t->mask;
    t->slots[p] = i + 1;
}

static void index_rebuild(nta_topk *t)
{
    memset(t->slots, 0, ((size_t)t->mask + 1) * sizeof *t->slots);
    for (uint32_t i = 0; i < t->n; i++)
        index_insert(t, i);
}

static uint32_t index_find(const nta_topk *t, const nta_topk_key *key, uint64_t hash)
{
    for (uint32_t p = (uint32_t)hash & t->mask, s; (s = t->slots[p]) != 0;
         p = (p + 1) & t->mask) {
        const ent *e = &t->ents[s - 1];
        if (e->hash == hash && memcmp(&e->key, key, sizeof *key) == 0)
            return s - 1;
    }
    return NONE;
}

/* Moves the arrays to room for cap counters, cap >= n. Returns -1, leaving
 * t as it was, when out of memory. */
static int resize(nta_topk *t, uint32_t cap)
{
    uint32_t nslots = slots_for(cap);
    ent *e = malloc((size_t)cap * (sizeof *e + sizeof *t->scratch) +
                    (size_t)nslots * sizeof *t->slots);
    if (e == NULL)
        return -1;
    if (t->n > 0)
        memcpy(e, t->ents, (size_t)t->n * sizeof *e);
    free(t->ents);
    t->ents = e;
    t->scratch = (uint64_t *)(e + cap);
    t->slots = (uint32_t *)(t->scratch + cap);
    t->cap = cap;
    t->mask = nslots - 1;
    index_rebuild(t);
    return 0;
}

nta_topk *nta_topk_create(uint32_t m)
{
    if (m < NTA_TOPK_MIN_CAPACITY)
        m = NTA_TOPK_MIN_CAPACITY;
    if (m > NTA_TOPK_MAX_CAPACITY)
        m = NTA_TOPK_MAX_CAPACITY;
    nta_topk *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->m = t->m0 = m;
    if (resize(t, INIT_CAP) != 0) {
        free(t);
        return NULL;
    }
    return t;
}

void nta_topk_destroy(nta_topk *t)
{
    if (t == NULL)
        return;
    free(t->ents);
    free(t);
}

void nta_topk_clear(nta_topk *t)
{
    t->n = 0;
    t->total = 0;
    t->off = 0;
    t->m = t->m0;
    /* If the small arrays cannot be had, the big ones serve as well. */
    if (t->cap <= INIT_CAP || resize(t, INIT_CAP) != 0)
        memset(t->slots, 0, ((size_t)t->mask + 1) * sizeof *t->slots);
}

/* The k-th smallest (0-based) of v[0..n), reordering v: quickselect with a
 * median-of-three pivot. */
static uint64_t select_kth(uint64_t *v, uint32_t n, uint32_t k)
{
    uint32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint64_t a = v[lo], b = v[mid], c = v[hi];
        uint64_t pivot = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
        uint32_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                uint64_t x = v[i];
                v[i] = v[j];
                v[j] = x;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return v[k];
    }
    return v[k];
}

/* Lowers every count by the (m+1)-th largest, keeping the positive ones (at
 * most m). Requires n > m. */
static void purge(nta_topk *t)
{
    for (uint32_t i = 0; i < t->n; i++)
        t->scratch[i] = t->ents[i].count;
    uint64_t th = select_kth(t->scratch, t->n, t->n - t->m - 1);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        if (t->ents[i].count > th) {
            t->ents[kept] = t->ents[i];
            t->ents[kept].count -= th;
            kept++;
        }
    }
    t->n = kept;
    t->off += th;
    index_rebuild(t);
}

void nta_topk_add(nta_topk *t, const nta_topk_key *key, uint64_t hash, uint64_t weight)
{
    if (weight == 0)
        return;
    t->total += weight;
    uint32_t i = index_find(t, key, hash);
    if (i != NONE) {
        t->ents[i].count += weight;
        return;
    }
    if (t->n == t->cap) {
        uint32_t full = TABLE_FACTOR * t->m;
        uint32_t want = t->cap * 2 < full ? t->cap * 2 : full;
        /* Without memory for more counters, keep as many as the room there
         * is allows: (B) holds with the smaller m. */
        if (want <= t->cap || resize(t, want) != 0) {
            if (t->m >= t->cap)
                t->m = t->cap / 2;
            purge(t);
        }
    }
    i = t->n++;
    t->ents[i] = (ent){.key = *key, .count = weight, .hash = hash};
    index_insert(t, i);
}

void nta_topk_merge(nta_topk *dst, const nta_topk *src)
{
    if (src->m < dst->m)
        dst->m = src->m;
    uint64_t counted = 0;
    for (uint32_t i = 0; i < src->n; i++) {
        const ent *e = &src->ents[i];
        nta_topk_add(dst, &e->key, e->hash, e->count);
        counted += e->count;
    }
    dst->total += src->total - counted;
    dst->off += src->off;
}

/* Largest count first, then smaller key: a total order, so that the output
 * does not depend on the order of arrival. */
static int ent_before(const ent *a, uint64_t count, const nta_topk_key *key)
{
    if (a->count != count)
        return a->count > count;
    return memcmp(&a->key, key, sizeof *key) < 0;
}

size_t nta_topk_items(const nta_topk *t, nta_topk_item *out, size_t max)
{
    /* Insertion into the sorted prefix of out: k is small, and most entries
     * fail the comparison with the last kept one at once. */
    size_t n = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        const ent *e = &t->ents[i];
        size_t p = n;
        while (p > 0 && ent_before(e, out[p - 1].value - t->off, &out[p - 1].key))
            p--;
        if (p >= max)
            continue;
        size_t last = n < max ? n : max - 1;
        memmove(&out[p + 1], &out[p], (last - p) * sizeof *out);
        out[p] = (nta_topk_item){.key = e->key, .value = e->count + t->off, .error = t->off};
        if (n < max)
            n++;
    }
    return n;
}

size_t nta_topk_size(const nta_topk *t) { return t->n; }

uint64_t nta_topk_total(const nta_topk *t) { return t->total; }

uint64_t nta_topk_floor(const nta_topk *t) { return t->off; }

uint32_t nta_topk_capacity(const nta_topk *t) { return t->m; }

size_t nta_topk_bytes(const nta_topk *t)
{
    return sizeof *t + (size_t)t->cap * (sizeof *t->ents + sizeof *t->scratch) +
           ((size_t)t->mask + 1) * sizeof *t->slots;
}
