#include "quantile.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Buckets kept inline, as (bucket, count) pairs, before the sketch switches
 * to a dense array: most (window, key) pairs of a keyed window have a few
 * records, and a dense range of their buckets would cost kilobytes each. */
#define SPARSE_MAX 12
/* Room made on each growth of the dense array beyond what is needed (this
 * and a quarter more), so that a spreading range reallocates a few times,
 * not once per new bucket, without holding much more than it needs: a keyed
 * window holds one sketch per key. */
#define MIN_GROW 16

/* Positive values go to buckets; those with values lie within
 * [min_i, max_i] (when npos > 0). Sparse form (bins == NULL): sp_idx/sp_n
 * hold nsp buckets. Dense form: bins[i] counts bucket lo + i. */
struct nta_qsketch {
    uint64_t *bins;
    int32_t lo;
    uint32_t cap;
    int32_t min_i, max_i;
    uint32_t nsp;
    int32_t sp_idx[SPARSE_MAX];
    uint64_t sp_n[SPARSE_MAX];
    uint64_t npos, zeros;
    uint64_t min, max;
};

/* gamma = (1 + alpha) / (1 - alpha) and 1 / ln(gamma) for alpha = 0.01, as
 * constants so that the per-value path is one log and one multiply. */
#define GAMMA (1.01 / 0.99)
#define INV_LN_GAMMA 49.998333288886561

static int32_t bucket_of(uint64_t v)
{
    /* v >= 1, so the log is >= 0 and at most ~44.4: no overflow. */
    return (int32_t)ceil(log((double)v) * INV_LN_GAMMA);
}

nta_qsketch *nta_qsketch_create(void)
{
    return calloc(1, sizeof(nta_qsketch));
}

void nta_qsketch_destroy(nta_qsketch *q)
{
    if (q == NULL)
        return;
    free(q->bins);
    free(q);
}

void nta_qsketch_clear(nta_qsketch *q)
{
    free(q->bins);
    memset(q, 0, sizeof *q);
}

/* Makes the dense bins cover [a, b], with b - a < NTA_QSKETCH_MAX_BUCKETS
 * and b >= max_i when the sketch has positive values, moving a sparse
 * sketch's buckets into them; buckets below a are folded into a (the
 * collapse of the lowest buckets). Returns -1, with q unchanged, when out of
 * memory. */
static int span(nta_qsketch *q, int32_t a, int32_t b)
{
    int covered = a >= q->lo && (int64_t)b < (int64_t)q->lo + q->cap;
    if (covered && q->npos > 0 && q->min_i < a) {
        uint64_t folded = 0;
        for (int32_t i = q->min_i; i < a; i++) {
            folded += q->bins[i - q->lo];
            q->bins[i - q->lo] = 0;
        }
        q->bins[a - q->lo] += folded;
        q->min_i = a;
    }
    if (covered)
        return 0;
    uint32_t need = (uint32_t)(b - a + 1);
    uint32_t cap = need + need / 4 + MIN_GROW;
    if (cap > NTA_QSKETCH_MAX_BUCKETS)
        cap = NTA_QSKETCH_MAX_BUCKETS;
    uint64_t *bins = calloc(cap, sizeof *bins);
    if (bins == NULL)
        return -1;
    int32_t lo = a - (int32_t)((cap - need) / 2);
    if (q->bins == NULL) {
        for (uint32_t k = 0; k < q->nsp; k++)
            bins[(q->sp_idx[k] < a ? a : q->sp_idx[k]) - lo] += q->sp_n[k];
        q->nsp = 0;
    } else if (q->npos > 0) {
        for (int32_t i = q->min_i; i <= q->max_i; i++)
            bins[(i < a ? a : i) - lo] += q->bins[i - q->lo];
    }
    if (q->npos > 0 && q->min_i < a)
        q->min_i = a;
    free(q->bins);
    q->bins = bins;
    q->lo = lo;
    q->cap = cap;
    return 0;
}

/* The bucket range [*a, *b] after adding [lo_i, hi_i] to what q holds, the
 * lowest buckets cut off to keep within the limit. */
static void target_range(const nta_qsketch *q, int32_t lo_i, int32_t hi_i, int32_t *a,
                         int32_t *b)
{
    *a = q->npos > 0 && q->min_i < lo_i ? q->min_i : lo_i;
    *b = q->npos > 0 && q->max_i > hi_i ? q->max_i : hi_i;
    if (*b - *a >= NTA_QSKETCH_MAX_BUCKETS)
        *a = *b - NTA_QSKETCH_MAX_BUCKETS + 1;
}

static void note_minmax(nta_qsketch *q, uint64_t mn, uint64_t mx)
{
    int empty = q->npos == 0 && q->zeros == 0;
    if (empty || mn < q->min)
        q->min = mn;
    if (empty || mx > q->max)
        q->max = mx;
}

static void dense_add(nta_qsketch *q, int32_t i, uint64_t c)
{
    if (q->npos == 0 || i < q->min_i || i > q->max_i) {
        int32_t a, b;
        target_range(q, i, i, &a, &b);
        if (span(q, a, b) != 0) {
            /* No memory for the wider range: the nearest bucket held. */
            a = q->lo;
            b = q->lo + (int32_t)q->cap - 1;
        }
        if (i < a)
            i = a;
        if (i > b)
            i = b;
        if (q->npos == 0 || i < q->min_i)
            q->min_i = i;
        if (q->npos == 0 || i > q->max_i)
            q->max_i = i;
    }
    q->bins[i - q->lo] += c;
}

/* Adds c values to bucket i (positive values only). */
static void bucket_add(nta_qsketch *q, int32_t i, uint64_t c)
{
    if (q->bins == NULL) {
        uint32_t k = 0;
        while (k < q->nsp && q->sp_idx[k] != i)
            k++;
        if (k == q->nsp && k == SPARSE_MAX) {
            int32_t a, b;
            target_range(q, i, i, &a, &b);
            if (span(q, a, b) == 0) {
                dense_add(q, i, c);
                q->npos += c;
                return;
            }
            /* No memory for the dense form: the nearest bucket held. */
            k = 0;
            for (uint32_t j = 1; j < q->nsp; j++)
                if (abs(q->sp_idx[j] - i) < abs(q->sp_idx[k] - i))
                    k = j;
            i = q->sp_idx[k];
        }
        if (k == q->nsp) {
            q->sp_idx[q->nsp] = i;
            q->sp_n[q->nsp++] = 0;
        }
        q->sp_n[k] += c;
        if (q->npos == 0 || i < q->min_i)
            q->min_i = i;
        if (q->npos == 0 || i > q->max_i)
            q->max_i = i;
    } else {
        dense_add(q, i, c);
    }
    q->npos += c;
}

void nta_qsketch_add(nta_qsketch *q, uint64_t v)
{
    note_minmax(q, v, v);
    if (v == 0)
        q->zeros++;
    else
        bucket_add(q, bucket_of(v), 1);
}

void nta_qsketch_merge(nta_qsketch *dst, const nta_qsketch *src)
{
    if (src->npos > 0 || src->zeros > 0)
        note_minmax(dst, src->min, src->max);
    dst->zeros += src->zeros;
    if (src->bins == NULL) {
        for (uint32_t k = 0; k < src->nsp; k++)
            bucket_add(dst, src->sp_idx[k], src->sp_n[k]);
        return;
    }
    if (src->npos == 0)
        return;
    /* One allocation for the whole range; if it fails, bucket_add degrades
     * bucket by bucket. */
    int32_t a, b;
    target_range(dst, src->min_i, src->max_i, &a, &b);
    (void)span(dst, a, b);
    for (int32_t i = src->min_i; i <= src->max_i; i++)
        if (src->bins[i - src->lo] != 0)
            bucket_add(dst, i, src->bins[i - src->lo]);
}

/* The estimate for a value in bucket i. Values are integers: a bucket
 * narrower than 1 (below ~50) holds at most one, and then answers it
 * exactly; others answer 2 gamma^i / (gamma + 1). */
static double bucket_value(int32_t i)
{
    double hi = exp((double)i / INV_LN_GAMMA);
    double only = floor(hi / GAMMA) + 1;
    return only == floor(hi) ? only : 2.0 * hi / (GAMMA + 1.0);
}

double nta_qsketch_quantile(const nta_qsketch *q, double p)
{
    uint64_t n = q->npos + q->zeros;
    if (n == 0)
        return 0;
    if (!(p > 0))
        p = 0;
    if (p > 1)
        p = 1;
    uint64_t rank = (uint64_t)floor(p * (double)(n - 1));
    /* The first and the last value are known exactly. */
    if (rank == 0)
        return (double)q->min;
    if (rank >= n - 1)
        return (double)q->max;
    if (rank < q->zeros)
        return 0;
    rank -= q->zeros;
    uint64_t seen = 0;
    int32_t i = q->max_i;
    if (q->bins == NULL) {
        /* Sparse: the buckets in order of index, by insertion sort of a copy. */
        int32_t idx[SPARSE_MAX];
        uint64_t cnt[SPARSE_MAX];
        for (uint32_t k = 0; k < q->nsp; k++) {
            uint32_t j = k;
            for (; j > 0 && idx[j - 1] > q->sp_idx[k]; j--) {
                idx[j] = idx[j - 1];
                cnt[j] = cnt[j - 1];
            }
            idx[j] = q->sp_idx[k];
            cnt[j] = q->sp_n[k];
        }
        for (uint32_t k = 0; k < q->nsp; k++) {
            seen += cnt[k];
            if (seen > rank) {
                i = idx[k];
                break;
            }
        }
    } else {
        for (int32_t j = q->min_i; j <= q->max_i; j++) {
            seen += q->bins[j - q->lo];
            if (seen > rank) {
                i = j;
                break;
            }
        }
    }
    double v = bucket_value(i);
    if (v < (double)q->min)
        v = (double)q->min;
    if (v > (double)q->max)
        v = (double)q->max;
    return v;
}

uint64_t nta_qsketch_count(const nta_qsketch *q) { return q->npos + q->zeros; }

uint64_t nta_qsketch_min(const nta_qsketch *q) { return q->min; }

uint64_t nta_qsketch_max(const nta_qsketch *q) { return q->max; }

size_t nta_qsketch_buckets(const nta_qsketch *q)
{
    return q->npos > 0 ? (size_t)(q->max_i - q->min_i + 1) : 0;
}

size_t nta_qsketch_bytes(const nta_qsketch *q)
{
    return sizeof *q + (q->bins != NULL ? (size_t)q->cap * sizeof *q->bins : 0);
}
