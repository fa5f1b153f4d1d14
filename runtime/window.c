#include "window.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hll.h"

/* Keys and distinct values are hashed per record and window: XXH3 compiled
 * in here rather than called in libxxhash, the same function as nta_hash64
 * (HLL values must hash alike wherever they are added). */
#define XXH_INLINE_ALL
#include <xxhash.h>

static inline uint64_t hash_bytes(const void *data, size_t len)
{
    return XXH3_64bits(data, len);
}

/* Records further than NTA_WINDOW_TS_LIMIT from the epoch (about 73 million
 * years) are refused, and watermarks are clamped to WM_LIMIT, so that no
 * pane or window arithmetic below can overflow int64 (sizes are capped at
 * SIZE_LIMIT). */
#define WM_LIMIT ((int64_t)1 << 62)
#define SIZE_LIMIT ((int64_t)1 << 40)

/* A pane table's positions are 32-bit and it is kept at most half full. */
#define TABLE_KEYS_LIMIT ((uint32_t)1 << 30)
#define TABLE_MIN_CAP 16u

/* Freed panes kept for reuse with their entry and order arrays, so that the
 * steady state (one pane opens as one closes) allocates nothing. */
#define PANE_POOL_MAX 4
/* Cleared sketches kept for reuse: a top-k summary or a quantile sketch is
 * a few hundred bytes once cleared. */
#define SKETCH_POOL_MAX 16384

/* Counters of a top-k summary when the spec leaves it open: 4k, and at
 * least 64 so that the error bound (total / capacity) stays under 2%. */
#define TOPK_MIN_DEFAULT_CAPACITY 64

/* Entries of final panes merged ahead per added record (merge_ahead): one
 * is enough to finish a window of N keys per pane within the first N * z
 * records after the previous close, far less than a slide's worth at any
 * rate where a close is costly. */
#define AHEAD_BUDGET 1

/* One 8-byte word of an entry: a number, or the sketch of a topk or
 * quantile agg. A distinct agg's counter lives in the entry itself
 * (HLL_WORDS words), so that adding to a small set touches no other memory. */
typedef union word {
    uint64_t u;
    int64_t i;
    nta_topk *t;
    nta_qsketch *q;
    void *p; /* either, where the kind does not matter */
} word;

#define HLL_WORDS (sizeof(nta_hll) / sizeof(word))
_Static_assert(sizeof(nta_hll) % sizeof(word) == 0, "an HLL fills whole entry words");

/* Sketches no pane or merge entry holds, for reuse. */
typedef struct pool {
    void **v;
    size_t n, cap, max;
} pool;

/* A hash table of keys with their aggregate state: one per pane, plus the
 * window's merge table. Entries are stored flat, ew words each:
 *   [0] key hash (never 0), [1 .. kw] key bytes, [kw+1] count, [kw+2] the
 *   input partition of its records (TAG_*), then the aggs, agg j at word
 *   aoff[j] (one word, or HLL_WORDS for distinct).
 * The entries are the open-addressing table itself (linear probing from
 * hash & (cap - 1), word 0 == 0 marks a free place), so that finding a key
 * costs one memory access where a separate slot array would cost two;
 * `order` lists their places in insertion order, which is the order of
 * results. Entry number 0 is the overflow bucket "(other)", kept at place
 * cap outside the probed range and used once the table holds max_keys
 * keys; entry number i >= 1 is at place order[i - 1]. Entries with count 0
 * hold no data (the unused overflow bucket, or a key whose sketch could not
 * be allocated). */
typedef struct table {
    int64_t idx;      /* pane number: the pane covers [idx*g, idx*g + g) */
    word *ents;       /* cap + 1 entries */
    uint32_t *order;  /* cap / 2 places */
    uint32_t cap;     /* a power of two, at least twice n */
    uint32_t n;       /* entries in use, the overflow bucket included */
    uint32_t live;    /* entries with count > 0 (open_keys accounting) */
} table;

struct nta_window {
    nta_window_spec spec;
    int64_t g;          /* pane length, gcd(size, slide) */
    int64_t s, z;       /* slide and size, in panes */
    uint32_t kw, ew;    /* key words, words per entry */
    uint32_t aoff[NTA_WINDOW_MAX_AGGS]; /* word of agg j in an entry */
    int has_hll;        /* some agg is distinct */
    uint32_t max_keys;  /* spec.max_keys, clamped to what a table can hold */
    int has_sketch;     /* some agg keeps a topk or quantile sketch per entry */
    uint32_t topk_m;    /* counters of each top-k summary */

    /* The pane the last record went to, and its time range: records mostly
     * arrive in time order, so most adds skip the division and the search. */
    table *cur;
    int64_t cur_lo, cur_hi;
    int64_t cur_last_end; /* the end of the last window holding the pane */

    /* nta_window_prefetch's key and hash, for the nta_window_add after it. */
    int pf_valid;
    uint64_t pf_hash;
    word pf_key[2 * NTA_WINDOW_MAX_KEYS];

    /* Open panes sorted by idx. Invariant: every idx >= next_k * s. */
    table **panes;
    size_t npanes, panes_cap;

    table *pane_pool[PANE_POOL_MAX];
    size_t npane_pool;
    pool topks, qsketches;

    table merge; /* ents == NULL until a window first spans two panes */

    /* The merge of the next sliding window, done ahead. Once a window is
     * emitted, the panes the next one shares with it can no longer change
     * (their records would be late), so they are merged into `merge` a few
     * entries per added record, in the order the close would take them; the
     * close then merges only the panes that were still open, which keeps a
     * wide window's close (and the latency of its results) short. */
    int64_t ahead_k;    /* the window `merge` is for; INT64_MIN: none, merge empty */
    int64_t ahead_pane; /* merged: every pane below this idx, */
    uint32_t ahead_ent; /* and the entries below this one of pane ahead_pane */
    int ahead_more;     /* an unmerged pane of ahead_k may be final already */

    int64_t input_part; /* tag of the records added (nta_window_set_input) */
    int64_t emitted_upto;
    int64_t next_k; /* first window not yet passed; INT64_MIN before any */
    nta_window_stats st;
};

static const char *const agg_names[NTA_AGG__COUNT] = {
    [NTA_AGG_SUM] = "sum",
    [NTA_AGG_MIN] = "min",
    [NTA_AGG_MAX] = "max",
    [NTA_AGG_MEAN] = "mean",
    [NTA_AGG_DISTINCT] = "distinct",
    [NTA_AGG_TOPK] = "topk",
    [NTA_AGG_QUANTILE] = "quantile",
};

int nta_agg_kind_by_name(const char *name)
{
    for (int k = 0; k < NTA_AGG__COUNT; k++)
        if (strcmp(name, agg_names[k]) == 0)
            return k;
    return -1;
}

const char *nta_agg_kind_name(nta_agg_kind k)
{
    return ((unsigned)k < NTA_AGG__COUNT) ? agg_names[k] : "";
}

static long quantile_bp(double q);

size_t nta_agg_result_name(const nta_agg_spec *a, int i, char *buf, size_t len)
{
    const char *f = nta_field_name(a->field);
    int n;
    if (a->kind == NTA_AGG_TOPK) {
        const char *by = a->by == NTA_F_NONE ? "count" : nta_field_name(a->by);
        n = snprintf(buf, len, "topk_%s_%s", by, f);
    } else if (a->kind == NTA_AGG_QUANTILE) {
        /* 0.5 -> p50, 0.999 -> p99_9, 0.9999 -> p99_99 */
        long bp = i >= 0 && i < a->nq ? quantile_bp(a->q[i]) : -1;
        if (bp < 0)
            bp = 0;
        long pct = bp / 100, frac = bp % 100;
        if (frac == 0)
            n = snprintf(buf, len, "p%ld_%s", pct, f);
        else if (frac % 10 == 0)
            n = snprintf(buf, len, "p%ld_%ld_%s", pct, frac / 10, f);
        else
            n = snprintf(buf, len, "p%ld_%02ld_%s", pct, frac, f);
    } else {
        n = snprintf(buf, len, "%s_%s", nta_agg_kind_name(a->kind), f);
    }
    if (n < 0)
        n = 0;
    return len == 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

/* Floor and ceiling division for b > 0 (C division truncates toward zero,
 * which would misplace negative timestamps). */
static inline int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b < 0) ? q - 1 : q;
}

static inline int64_t ceil_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b > 0) ? q + 1 : q;
}

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b != 0) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int is_addr_field(nta_field f)
{
    return f == NTA_F_SRC_IP || f == NTA_F_DST_IP;
}

static int is_field(nta_field f)
{
    return f > NTA_F_NONE && f < NTA_F__COUNT;
}

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int check_topk(const nta_window_spec *spec, const nta_agg_spec *a, char *err,
                      size_t errlen)
{
    const char *nm = spec->name;
    int n = 0;
    for (int i = 0; i < spec->naggs; i++)
        n += spec->aggs[i].kind == NTA_AGG_TOPK;
    if (n > 1)
        return fail(err, errlen, "window %s: %d topk aggregates, at most 1 allowed", nm, n);
    if (a->by != NTA_F_NONE && a->by != NTA_F_BYTES && a->by != NTA_F_PACKETS)
        return fail(err, errlen, "window %s: topk weight must be bytes, packets or count", nm);
    if (a->k < 1 || a->k > NTA_TOPK_MAX_K)
        return fail(err, errlen, "window %s: topk k must be from 1 to %d (got %d)", nm,
                    NTA_TOPK_MAX_K, a->k);
    if (a->capacity != 0 && (a->capacity < a->k || a->capacity < NTA_TOPK_MIN_CAPACITY ||
                             a->capacity > NTA_TOPK_MAX_CAPACITY))
        return fail(err, errlen,
                    "window %s: topk capacity must be 0 (default) or from max(k, %d) to %d "
                    "(got %d)",
                    nm, NTA_TOPK_MIN_CAPACITY, NTA_TOPK_MAX_CAPACITY, a->capacity);
    return 0;
}

/* A quantile in basis points of a percent (0.999 -> 9990), or -1 unless it
 * lies in (0, 1) with at most 4 decimals: its name (p99_9) must say it
 * exactly, and two quantiles must not share a name. */
static long quantile_bp(double q)
{
    if (!(q > 0 && q < 1))
        return -1;
    double bp = q * 10000;
    return fabs(bp - round(bp)) < 1e-6 ? lround(bp) : -1;
}

static int check_quantile(const nta_window_spec *spec, const nta_agg_spec *a, char *err,
                          size_t errlen)
{
    const char *nm = spec->name;
    if (!nta_field_is_numeric(a->field))
        return fail(err, errlen, "window %s: quantiles need a numeric field", nm);
    if (a->nq < 1 || a->nq > NTA_AGG_MAX_QUANTILES)
        return fail(err, errlen, "window %s: %d quantiles, 1 to %d allowed", nm, a->nq,
                    NTA_AGG_MAX_QUANTILES);
    for (int i = 0; i < a->nq; i++) {
        long bp = quantile_bp(a->q[i]);
        if (bp < 0)
            return fail(err, errlen,
                        "window %s: quantile %g must be in (0, 1) with at most 4 decimals", nm,
                        a->q[i]);
        for (int j = 0; j < i; j++)
            if (quantile_bp(a->q[j]) == bp)
                return fail(err, errlen, "window %s: quantile %g listed twice", nm, a->q[i]);
    }
    return 0;
}

/* err may be NULL. */
int nta_window_spec_check(const nta_window_spec *spec, char *err, size_t errlen)
{
    if (memchr(spec->name, '\0', sizeof spec->name) == NULL)
        return fail(err, errlen, "window name longer than %d characters",
                    NTA_WINDOW_NAME_MAX - 1);
    if (spec->name[0] == '\0')
        return fail(err, errlen, "window has no name");
    const char *nm = spec->name;
    if (spec->size_ms <= 0)
        return fail(err, errlen, "window %s: size_ms must be > 0 (got %lld)", nm,
                    (long long)spec->size_ms);
    if (spec->size_ms > SIZE_LIMIT)
        return fail(err, errlen, "window %s: size_ms must be at most %lld (about 34 years)",
                    nm, (long long)SIZE_LIMIT);
    if (spec->slide_ms <= 0)
        return fail(err, errlen, "window %s: slide_ms must be > 0 (got %lld)", nm,
                    (long long)spec->slide_ms);
    if (spec->slide_ms > spec->size_ms)
        return fail(err, errlen, "window %s: slide_ms (%lld) must not exceed size_ms (%lld)",
                    nm, (long long)spec->slide_ms, (long long)spec->size_ms);
    if (spec->nkeys < 0 || spec->nkeys > NTA_WINDOW_MAX_KEYS)
        return fail(err, errlen, "window %s: %d key fields, at most %d allowed", nm,
                    spec->nkeys, NTA_WINDOW_MAX_KEYS);
    for (int i = 0; i < spec->nkeys; i++)
        if (!is_field(spec->key[i]))
            return fail(err, errlen, "window %s: key %d is not a valid field", nm, i + 1);
    if (spec->naggs < 0 || spec->naggs > NTA_WINDOW_MAX_AGGS)
        return fail(err, errlen, "window %s: %d aggregates, at most %d allowed", nm,
                    spec->naggs, NTA_WINDOW_MAX_AGGS);
    for (int i = 0; i < spec->naggs; i++) {
        const nta_agg_spec *a = &spec->aggs[i];
        if ((unsigned)a->kind >= NTA_AGG__COUNT)
            return fail(err, errlen, "window %s: aggregate %d has an unknown kind", nm, i + 1);
        if (!is_field(a->field))
            return fail(err, errlen, "window %s: %s (aggregate %d) has no valid field", nm,
                        agg_names[a->kind], i + 1);
        if (a->kind != NTA_AGG_DISTINCT && a->kind != NTA_AGG_TOPK && is_addr_field(a->field))
            return fail(err, errlen,
                        "window %s: %s(%s): an address field can only be counted with distinct "
                        "or topk",
                        nm, agg_names[a->kind], nta_field_name(a->field));
        if (a->kind == NTA_AGG_TOPK && check_topk(spec, a, err, errlen) != 0)
            return -1;
        if (a->kind == NTA_AGG_QUANTILE && check_quantile(spec, a, err, errlen) != 0)
            return -1;
    }
    if (spec->max_keys == 0)
        return fail(err, errlen, "window %s: max_keys must be > 0", nm);
    /* The engine does not apply filters, but whoever does indexes these
     * arrays by nwhere and nvalues, so a spec that passes must keep them in
     * bounds. */
    if (spec->nwhere < 0 || spec->nwhere > NTA_WINDOW_MAX_FILTERS)
        return fail(err, errlen, "window %s: %d filters, at most %d allowed", nm, spec->nwhere,
                    NTA_WINDOW_MAX_FILTERS);
    for (int i = 0; i < spec->nwhere; i++) {
        const nta_filter *f = &spec->where[i];
        if (!is_field(f->field))
            return fail(err, errlen, "window %s: filter %d is not on a field", nm, i + 1);
        if (f->negate != 0 && f->negate != 1)
            return fail(err, errlen, "window %s: filter %d: negate must be 0 or 1", nm, i + 1);
        if (f->nvalues < 1 || f->nvalues > NTA_FILTER_MAX_VALUES)
            return fail(err, errlen, "window %s: filter on %s lists %d values, 1 to %d allowed",
                        nm, nta_field_name(f->field), f->nvalues, NTA_FILTER_MAX_VALUES);
    }
    return 0;
}

int64_t nta_window_last_end(const nta_window_spec *spec, int64_t ts_ms)
{
    return floor_div(ts_ms, spec->slide_ms) * spec->slide_ms + spec->size_ms;
}

int64_t nta_window_added_last_end(const nta_window *w) { return w->cur_last_end; }

/* ---- sketches: pooled so that panes coming and going reuse them ---- */

static void *pool_take(pool *p)
{
    return p->n > 0 ? p->v[--p->n] : NULL;
}

/* Keeps a cleared sketch. Returns 0, or -1 if the pool is full (or cannot
 * grow): the caller then destroys it. */
static int pool_keep(pool *p, void *x)
{
    if (p->n == p->cap && p->cap < p->max) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        void **v = realloc(p->v, cap * sizeof *v);
        if (v != NULL) {
            p->v = v;
            p->cap = cap;
        }
    }
    if (p->n == p->cap)
        return -1;
    p->v[p->n++] = x;
    return 0;
}

/* The aggs whose entry word points to a sketch of their own. */
static int is_sketch(nta_agg_kind k)
{
    return k == NTA_AGG_TOPK || k == NTA_AGG_QUANTILE;
}

/* A cleared sketch for agg kind k, from the pool or new; NULL when out of memory. */
static void *sketch_get(nta_window *w, nta_agg_kind k)
{
    void *x;
    switch (k) {
    case NTA_AGG_TOPK: return (x = pool_take(&w->topks)) ? x : nta_topk_create(w->topk_m);
    case NTA_AGG_QUANTILE: return (x = pool_take(&w->qsketches)) ? x : nta_qsketch_create();
    default: return NULL;
    }
}

static void sketch_put(nta_window *w, nta_agg_kind k, word x)
{
    switch (k) {
    case NTA_AGG_TOPK:
        nta_topk_clear(x.t);
        if (pool_keep(&w->topks, x.t) != 0)
            nta_topk_destroy(x.t);
        break;
    case NTA_AGG_QUANTILE:
        nta_qsketch_clear(x.q);
        if (pool_keep(&w->qsketches, x.q) != 0)
            nta_qsketch_destroy(x.q);
        break;
    default: break;
    }
}

static size_t sketch_bytes(nta_agg_kind k, word x)
{
    switch (k) {
    case NTA_AGG_TOPK: return nta_topk_bytes(x.t);
    case NTA_AGG_QUANTILE: return nta_qsketch_bytes(x.q);
    default: return 0;
    }
}

/* ---- tables ---- */

static inline word *at(const nta_window *w, const table *t, uint32_t place)
{
    return t->ents + (size_t)place * w->ew;
}

/* Entry number i, in insertion order; 0 is the overflow bucket. */
static inline word *entry(const nta_window *w, const table *t, uint32_t i)
{
    return at(w, t, i == 0 ? t->cap : t->order[i - 1]);
}

static inline word *count_of(const nta_window *w, word *e)
{
    return e + w->kw + 1;
}

/* The input partition an entry's records came from: a partition number,
 * TAG_NONE (not from Kafka) or TAG_MIXED (several partitions). */
#define TAG_NONE (-1)
#define TAG_MIXED (-2)

static inline word *tag_of(const nta_window *w, word *e)
{
    return e + w->kw + 2;
}

/* Tag of an entry that had count records so far and now takes records tagged t. */
static inline void tag_merge(word *tag, uint64_t count, int64_t t)
{
    if (count == 0)
        tag->i = t;
    else if (tag->i != t)
        tag->i = TAG_MIXED;
}

static inline word *agg_of(const nta_window *w, word *e, int j)
{
    return e + w->aoff[j];
}

static inline nta_hll *hll_of(const nta_window *w, word *e, int j)
{
    return (nta_hll *)(void *)agg_of(w, e, j);
}

static void entry_init(const nta_window *w, word *e, uint64_t hash, const word *key)
{
    e[0].u = hash;
    for (uint32_t i = 0; i < w->kw; i++)
        e[1 + i] = key[i];
    count_of(w, e)->u = 0;
    for (int i = 0; i < w->spec.naggs; i++) {
        word *a = agg_of(w, e, i);
        switch (w->spec.aggs[i].kind) {
        case NTA_AGG_MIN: a->u = UINT64_MAX; break;
        case NTA_AGG_DISTINCT: nta_hll_init(hll_of(w, e, i)); break;
        case NTA_AGG_TOPK:
        case NTA_AGG_QUANTILE: a->p = NULL; break;
        default: a->u = 0; break;
        }
    }
}

/* Gives a fresh entry (count 0) its sketches. Returns -1 if one could not be
 * allocated; those already allocated stay with the entry. */
static int ensure_sketches(nta_window *w, word *e)
{
    if (!w->has_sketch)
        return 0;
    for (int i = 0; i < w->spec.naggs; i++) {
        nta_agg_kind k = w->spec.aggs[i].kind;
        word *a = agg_of(w, e, i);
        if (is_sketch(k) && a->p == NULL && (a->p = sketch_get(w, k)) == NULL)
            return -1;
    }
    return 0;
}

/* Returns the sketches of t's entries to the pools and frees their HLL
 * counters' heap memory. */
static void release_sketches(nta_window *w, table *t)
{
    if (!w->has_sketch && !w->has_hll)
        return;
    for (uint32_t i = 0; i < t->n; i++) {
        word *e = entry(w, t, i);
        for (int j = 0; j < w->spec.naggs; j++) {
            nta_agg_kind k = w->spec.aggs[j].kind;
            if (k == NTA_AGG_DISTINCT)
                nta_hll_free(hll_of(w, e, j));
            else if (is_sketch(k) && agg_of(w, e, j)->p != NULL)
                sketch_put(w, k, *agg_of(w, e, j));
        }
    }
}

static const word no_key[2 * NTA_WINDOW_MAX_KEYS];

/* Arrays for a table of cap places, every place free. */
static int table_alloc(const nta_window *w, table *t, uint32_t cap)
{
    word *ents = malloc(((size_t)cap + 1) * w->ew * sizeof *ents);
    uint32_t *order = malloc((size_t)cap / 2 * sizeof *order);
    if (ents == NULL || order == NULL) {
        free(ents);
        free(order);
        return -1;
    }
    for (uint32_t p = 0; p < cap; p++)
        ents[(size_t)p * w->ew].u = 0;
    t->ents = ents;
    t->order = order;
    t->cap = cap;
    return 0;
}

static int table_init(const nta_window *w, table *t)
{
    if (table_alloc(w, t, TABLE_MIN_CAP) != 0)
        return -1;
    t->n = 1;
    t->live = 0;
    entry_init(w, entry(w, t, 0), 0, no_key);
    return 0;
}

/* Empties a table for reuse, keeping its arrays. */
static void table_reset(nta_window *w, table *t)
{
    release_sketches(w, t);
    for (uint32_t i = 1; i < t->n; i++)
        entry(w, t, i)[0].u = 0;
    t->n = 1;
    t->live = 0;
    entry_init(w, entry(w, t, 0), 0, no_key);
}

static void table_free_arrays(nta_window *w, table *t)
{
    release_sketches(w, t);
    free(t->ents);
    free(t->order);
    t->ents = NULL;
    t->order = NULL;
}

/* The first free place from hash's, in a table with one. */
static inline uint32_t free_place(const nta_window *w, const table *t, uint64_t hash)
{
    uint32_t mask = t->cap - 1;
    uint32_t p = (uint32_t)hash & mask;
    while (at(w, t, p)[0].u != 0)
        p = (p + 1) & mask;
    return p;
}

/* Moves the entries into twice the places, keeping their order. Entries
 * are plain words (an HLL holds no pointer into itself), so memcpy moves
 * them. */
static int table_grow(const nta_window *w, table *t)
{
    table g = *t;
    if (table_alloc(w, &g, t->cap * 2) != 0)
        return -1;
    size_t bytes = w->ew * sizeof(word);
    for (uint32_t i = 1; i < t->n; i++) {
        const word *e = entry(w, t, i);
        uint32_t p = free_place(w, &g, e[0].u);
        memcpy(at(w, &g, p), e, bytes);
        g.order[i - 1] = p;
    }
    memcpy(entry(w, &g, 0), entry(w, t, 0), bytes);
    free(t->ents);
    free(t->order);
    *t = g;
    return 0;
}

static inline int key_eq(const word *a, const word *b, uint32_t kw)
{
    for (uint32_t i = 0; i < kw; i++)
        if (a[i].u != b[i].u)
            return 0;
    return 1;
}

/* Keys hash to any value, but word 0 == 0 marks a free place. */
static inline uint64_t stored_hash(uint64_t hash)
{
    return hash != 0 ? hash : 1;
}

/* The entry of key (whose stored_hash is hash), or NULL if t does not hold
 * it; then *end is the free place where it would go. */
static inline word *table_probe(const nta_window *w, const table *t, const word *key,
                                uint64_t hash, uint32_t *end)
{
    uint32_t mask = t->cap - 1;
    uint32_t p = (uint32_t)hash & mask;
    for (;; p = (p + 1) & mask) {
        word *e = at(w, t, p);
        if (e[0].u == hash && key_eq(e + 1, key, w->kw))
            return e;
        if (e[0].u == 0)
            break;
    }
    *end = p;
    return NULL;
}

/* The entry of key (whose stored_hash is hash), inserting a fresh one
 * (count 0) if the key is new. With limited set, a new key in a table
 * already holding max_keys keys gets the overflow bucket. NULL if the table
 * could not grow. */
static word *table_find(nta_window *w, table *t, const word *key, uint64_t hash, int limited)
{
    uint32_t p = 0;
    word *found = table_probe(w, t, key, hash, &p);
    if (found != NULL)
        return found;
    if (t->n - 1 >= (limited ? w->max_keys : TABLE_KEYS_LIMIT))
        return limited ? entry(w, t, 0) : NULL;
    if ((t->n + 1) * 2 > t->cap) {
        if (table_grow(w, t) != 0)
            return NULL;
        p = free_place(w, t, hash);
    }
    t->order[t->n - 1] = p;
    t->n++;
    word *e = at(w, t, p);
    entry_init(w, e, hash, key);
    return e;
}

/* ---- panes ---- */

static table *pane_new(nta_window *w)
{
    if (w->npane_pool > 0)
        return w->pane_pool[--w->npane_pool];
    table *t = malloc(sizeof *t);
    if (t != NULL && table_init(w, t) != 0) {
        free(t);
        t = NULL;
    }
    return t;
}

static void pane_release(nta_window *w, table *t)
{
    w->st.open_panes--;
    w->st.open_keys -= t->live;
    if (w->npane_pool < PANE_POOL_MAX) {
        table_reset(w, t);
        w->pane_pool[w->npane_pool++] = t;
    } else {
        table_free_arrays(w, t);
        free(t);
    }
}

/* The open pane number idx, created if missing. NULL when out of memory. */
static table *pane_at(nta_window *w, int64_t idx)
{
    size_t lo = 0, hi = w->npanes;
    /* In-order input opens each new pane after all the others. */
    if (hi == 0 || w->panes[hi - 1]->idx < idx) {
        lo = hi;
    } else {
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (w->panes[mid]->idx < idx)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < w->npanes && w->panes[lo]->idx == idx)
            return w->panes[lo];
    }
    if (w->npanes == w->panes_cap) {
        size_t cap = w->panes_cap ? w->panes_cap * 2 : 16;
        table **p = realloc(w->panes, cap * sizeof *p);
        if (p == NULL)
            return NULL;
        w->panes = p;
        w->panes_cap = cap;
    }
    table *t = pane_new(w);
    if (t == NULL)
        return NULL;
    t->idx = idx;
    memmove(&w->panes[lo + 1], &w->panes[lo], (w->npanes - lo) * sizeof *w->panes);
    w->panes[lo] = t;
    w->npanes++;
    w->st.open_panes++;
    return t;
}

/* Releases the open panes numbered below idx (a prefix of the sorted list). */
static void drop_panes_before(nta_window *w, int64_t idx)
{
    size_t n = 0;
    while (n < w->npanes && w->panes[n]->idx < idx)
        pane_release(w, w->panes[n++]);
    if (n == 0)
        return;
    memmove(&w->panes[0], &w->panes[n], (w->npanes - n) * sizeof *w->panes);
    w->npanes -= n;
    w->cur = NULL;
}

/* ---- create / destroy ---- */

nta_window *nta_window_create(const nta_window_spec *spec)
{
    if (nta_window_spec_check(spec, NULL, 0) != 0)
        return NULL;
    nta_window *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    w->spec = *spec;
    w->g = gcd64(spec->size_ms, spec->slide_ms);
    w->s = spec->slide_ms / w->g;
    w->z = spec->size_ms / w->g;
    for (int i = 0; i < spec->nkeys; i++)
        w->kw += is_addr_field(spec->key[i]) ? 2 : 1;
    w->ew = 1 + w->kw + 2;
    w->input_part = TAG_NONE;
    w->max_keys = spec->max_keys < TABLE_KEYS_LIMIT ? (uint32_t)spec->max_keys
                                                    : TABLE_KEYS_LIMIT;
    for (int i = 0; i < spec->naggs; i++) {
        const nta_agg_spec *a = &spec->aggs[i];
        w->aoff[i] = w->ew;
        w->ew += a->kind == NTA_AGG_DISTINCT ? HLL_WORDS : 1;
        w->has_hll |= a->kind == NTA_AGG_DISTINCT;
        w->has_sketch |= is_sketch(a->kind);
        if (a->kind == NTA_AGG_TOPK)
            w->topk_m = a->capacity > 0 ? (uint32_t)a->capacity
                        : 4 * a->k > TOPK_MIN_DEFAULT_CAPACITY ? (uint32_t)(4 * a->k)
                                                              : TOPK_MIN_DEFAULT_CAPACITY;
    }
    w->topks.max = w->qsketches.max = SKETCH_POOL_MAX;
    w->emitted_upto = INT64_MIN;
    w->next_k = INT64_MIN;
    w->ahead_k = INT64_MIN;
    return w;
}

static void free_pools(nta_window *w)
{
    while (w->npane_pool > 0) {
        table *t = w->pane_pool[--w->npane_pool];
        table_free_arrays(w, t);
        free(t);
    }
    if (w->merge.ents != NULL)
        table_free_arrays(w, &w->merge);
    w->ahead_k = INT64_MIN;
    w->ahead_more = 0;
    void *x;
    while ((x = pool_take(&w->topks)) != NULL)
        nta_topk_destroy(x);
    while ((x = pool_take(&w->qsketches)) != NULL)
        nta_qsketch_destroy(x);
    pool *pools[] = {&w->topks, &w->qsketches};
    for (size_t i = 0; i < 2; i++) {
        free(pools[i]->v);
        pools[i]->v = NULL;
        pools[i]->cap = 0;
    }
}

void nta_window_destroy(nta_window *w)
{
    if (w == NULL)
        return;
    drop_panes_before(w, INT64_MAX);
    free(w->panes);
    free_pools(w);
    free(w);
}

const nta_window_spec *nta_window_spec_of(const nta_window *w)
{
    return &w->spec;
}

int64_t nta_window_emitted_upto(const nta_window *w)
{
    return w->emitted_upto;
}

/* ---- the per-record path ---- */

static inline uint64_t value_hash(const nta_record *r, nta_field f)
{
    switch (f) {
    case NTA_F_SRC_IP: return hash_bytes(r->src.b, sizeof r->src.b);
    case NTA_F_DST_IP: return hash_bytes(r->dst.b, sizeof r->dst.b);
    default: {
        uint64_t v = nta_record_u64(r, f);
        return hash_bytes(&v, sizeof v);
    }
    }
}

/* The top-k item of a record: an address, or a number in the first 8 bytes. */
static inline void item_key(const nta_record *r, nta_field f, nta_topk_key *k)
{
    switch (f) {
    case NTA_F_SRC_IP: memcpy(k->b, r->src.b, 16); break;
    case NTA_F_DST_IP: memcpy(k->b, r->dst.b, 16); break;
    default: {
        uint64_t v = nta_record_u64(r, f);
        memcpy(k->b, &v, 8);
        memset(k->b + 8, 0, 8);
        break;
    }
    }
}

static inline void make_key(const nta_window *w, const nta_record *r, word *key)
{
    for (int i = 0, o = 0; i < w->spec.nkeys; i++) {
        switch (w->spec.key[i]) {
        case NTA_F_SRC_IP: memcpy(&key[o], r->src.b, 16); o += 2; break;
        case NTA_F_DST_IP: memcpy(&key[o], r->dst.b, 16); o += 2; break;
        default: key[o++].u = nta_record_u64(r, w->spec.key[i]); break;
        }
    }
}

static int merge_ahead(nta_window *w, uint32_t budget, int64_t below);

/* A constant length per case lets the compiler keep only XXH3's short-input
 * path (a key is at most two addresses, 32 bytes). */
static inline uint64_t key_hash(const word *key, uint32_t kw)
{
    switch (kw) {
    case 0: return 0;
    case 1: return hash_bytes(key, 8);
    case 2: return hash_bytes(key, 16);
    case 3: return hash_bytes(key, 24);
    default: return hash_bytes(key, 32);
    }
}

void nta_window_prefetch(nta_window *w, const nta_record *r)
{
    make_key(w, r, w->pf_key);
    w->pf_hash = stored_hash(key_hash(w->pf_key, w->kw));
    w->pf_valid = 1;
    const table *t = w->cur;
    if (t != NULL && r->ts_ms >= w->cur_lo && r->ts_ms < w->cur_hi)
        __builtin_prefetch(at(w, t, (uint32_t)w->pf_hash & (t->cap - 1)));
}

/* Returns 0 if aggregated, 1 if late (or its time is out of the supported
 * range, about +-73 million years), and -1 if memory ran out: the record is
 * then not aggregated and not counted. */
int nta_window_add(nta_window *w, const nta_record *r)
{
    int prefetched = w->pf_valid;
    w->pf_valid = 0;
    int64_t ts = r->ts_ms;
    table *t = w->cur;
    if (t == NULL || ts < w->cur_lo || ts >= w->cur_hi) {
        if (nta_window_late(w->emitted_upto, ts)) {
            w->st.late++;
            return 1;
        }
        t = pane_at(w, floor_div(ts, w->g));
        if (t == NULL)
            return -1;
        w->cur = t;
        w->cur_lo = t->idx * w->g;
        w->cur_hi = w->cur_lo + w->g;
        w->cur_last_end = nta_window_last_end(&w->spec, w->cur_lo);
    }

    word own[2 * NTA_WINDOW_MAX_KEYS];
    const word *key = w->pf_key;
    uint64_t hash = w->pf_hash;
    if (!prefetched) {
        make_key(w, r, own);
        key = own;
        hash = stored_hash(key_hash(own, w->kw));
    }
    word *e = table_find(w, t, key, hash, 1);
    if (e == NULL)
        return -1;
    word *cnt = count_of(w, e);
    if (cnt->u == 0) {
        if (ensure_sketches(w, e) != 0)
            return -1;
        t->live++;
        w->st.open_keys++;
    }
    tag_merge(tag_of(w, e), cnt->u, w->input_part);
    if (e == entry(w, t, 0))
        w->st.overflow++;
    cnt->u++;
    for (int j = 0; j < w->spec.naggs; j++) {
        nta_field f = w->spec.aggs[j].field;
        word *a = agg_of(w, e, j);
        switch (w->spec.aggs[j].kind) {
        case NTA_AGG_SUM:
        case NTA_AGG_MEAN: a->u += nta_record_u64(r, f); break;
        case NTA_AGG_MIN: {
            uint64_t v = nta_record_u64(r, f);
            if (v < a->u)
                a->u = v;
            break;
        }
        case NTA_AGG_MAX: {
            uint64_t v = nta_record_u64(r, f);
            if (v > a->u)
                a->u = v;
            break;
        }
        case NTA_AGG_DISTINCT: nta_hll_add(hll_of(w, e, j), value_hash(r, f)); break;
        case NTA_AGG_TOPK: {
            nta_field by = w->spec.aggs[j].by;
            nta_topk_key k;
            item_key(r, f, &k);
            nta_topk_add(a->t, &k, hash_bytes(k.b, sizeof k.b),
                         by == NTA_F_NONE ? 1 : nta_record_u64(r, by));
            break;
        }
        case NTA_AGG_QUANTILE: nta_qsketch_add(a->q, nta_record_u64(r, f)); break;
        case NTA_AGG__COUNT: break;
        }
    }
    w->st.added++;
    /* Panes below emitted_upto (a multiple of g) no record can reach. */
    if (w->ahead_more && merge_ahead(w, AHEAD_BUDGET, floor_div(w->emitted_upto, w->g)))
        w->ahead_more = 0;
    return 0;
}

/* ---- emission ---- */

/* dst += src. A sketch dst lacks (allocation failed) just loses that part. */
static void combine(nta_window *w, word *dst, word *src)
{
    if (count_of(w, dst)->u == 0)
        (void)ensure_sketches(w, dst);
    tag_merge(tag_of(w, dst), count_of(w, dst)->u, tag_of(w, src)->i);
    count_of(w, dst)->u += count_of(w, src)->u;
    for (int j = 0; j < w->spec.naggs; j++) {
        word *d = agg_of(w, dst, j), *s = agg_of(w, src, j);
        switch (w->spec.aggs[j].kind) {
        case NTA_AGG_SUM:
        case NTA_AGG_MEAN: d->u += s->u; break;
        case NTA_AGG_MIN:
            if (s->u < d->u)
                d->u = s->u;
            break;
        case NTA_AGG_MAX:
            if (s->u > d->u)
                d->u = s->u;
            break;
        case NTA_AGG_DISTINCT: nta_hll_merge(hll_of(w, dst, j), hll_of(w, src, j)); break;
        case NTA_AGG_TOPK:
            if (d->t != NULL && s->t != NULL)
                nta_topk_merge(d->t, s->t);
            break;
        case NTA_AGG_QUANTILE:
            if (d->q != NULL && s->q != NULL)
                nta_qsketch_merge(d->q, s->q);
            break;
        case NTA_AGG__COUNT: break;
        }
    }
}

/* Sets field f of a scratch record from its raw form (16 address bytes, or
 * a uint64 in the first 8), so that formatting stays
 * nta_record_field_text's business. */
static void field_from_raw(nta_record *r, nta_field f, const void *raw)
{
    uint64_t v;
    memcpy(&v, raw, sizeof v);
    switch (f) {
    case NTA_F_SRC_IP: memcpy(r->src.b, raw, 16); break;
    case NTA_F_DST_IP: memcpy(r->dst.b, raw, 16); break;
    case NTA_F_SRC_PORT: r->src_port = (uint16_t)v; break;
    case NTA_F_DST_PORT: r->dst_port = (uint16_t)v; break;
    case NTA_F_PROTO: r->proto = (uint8_t)v; break;
    case NTA_F_BYTES: r->bytes = v; break;
    case NTA_F_PACKETS: r->packets = v; break;
    case NTA_F_TCP_FLAGS: r->tcp_flags = (uint8_t)v; break;
    default: break;
    }
}

static void key_text(const nta_window *w, const word *key, nta_result *res)
{
    nta_record r;
    memset(&r, 0, sizeof r);
    for (int i = 0, o = 0; i < w->spec.nkeys; i++) {
        nta_field f = w->spec.key[i];
        field_from_raw(&r, f, &key[o]);
        o += is_addr_field(f) ? 2 : 1;
        nta_record_field_text(&r, f, res->key_text[i]);
    }
}

size_t nta_agg_item_text(nta_field f, const nta_topk_item *it, char *buf)
{
    nta_record r;
    memset(&r, 0, sizeof r);
    field_from_raw(&r, f, it->key.b);
    return nta_record_field_text(&r, f, buf);
}

static void emit_entry(nta_window *w, word *e, int is_other, nta_result *res,
                       nta_emit_fn fn, void *ctx)
{
    if (is_other) {
        for (int i = 0; i < w->spec.nkeys; i++)
            strcpy(res->key_text[i], "(other)");
    } else {
        key_text(w, e + 1, res);
    }
    res->is_other = is_other;
    res->partition = (int32_t)tag_of(w, e)->i;
    uint64_t n = count_of(w, e)->u;
    res->count = n;
    for (int j = 0; j < w->spec.naggs; j++) {
        const word *a = agg_of(w, e, j);
        switch (w->spec.aggs[j].kind) {
        case NTA_AGG_MEAN: res->values[j].d = (double)a->u / (double)n; break;
        case NTA_AGG_DISTINCT: res->values[j].u = nta_hll_estimate(hll_of(w, e, j)); break;
        case NTA_AGG_TOPK: res->values[j].topk = a->t; break;
        case NTA_AGG_QUANTILE: res->values[j].qs = a->q; break;
        default: res->values[j].u = a->u; break;
        }
    }
    fn(ctx, res);
}

static void result_init(const nta_window *w, nta_result *res, int64_t start, int64_t end)
{
    memset(res, 0, sizeof *res);
    res->spec = &w->spec;
    res->start_ms = start;
    res->end_ms = end;
}

/* One callback per key of t with records, the overflow bucket last. */
static size_t emit_table(nta_window *w, table *t, int64_t start, int64_t end,
                         nta_emit_fn fn, void *ctx)
{
    nta_result res;
    result_init(w, &res, start, end);
    size_t n = 0;
    for (uint32_t i = 1; i < t->n; i++) {
        word *e = entry(w, t, i);
        if (count_of(w, e)->u > 0) {
            emit_entry(w, e, 0, &res, fn, ctx);
            n++;
        }
    }
    word *other = entry(w, t, 0);
    if (count_of(w, other)->u > 0) {
        emit_entry(w, other, 1, &res, fn, ctx);
        n++;
    }
    return n;
}

/* Folds entry i of pane t into the merge table. */
static void merge_entry(nta_window *w, table *t, uint32_t i)
{
    word *e = entry(w, t, i);
    if (count_of(w, e)->u == 0)
        return;
    table *m = &w->merge;
    word *d = i == 0 ? NULL : table_find(w, m, e + 1, e[0].u, 0);
    /* Out of memory: the key's totals still count, in "(other)". */
    combine(w, d != NULL ? d : entry(w, m, 0), e);
}

/* Merges the panes of window ahead_k numbered below `below` into the merge
 * table, pane by pane and entry by entry, from where the last call stopped:
 * at most budget entries. Returns 1 once all of them are merged. */
static int merge_ahead(nta_window *w, uint32_t budget, int64_t below)
{
    int64_t hi = w->ahead_k * w->s + w->z;
    if (below > hi)
        below = hi;
    for (size_t p = 0; p < w->npanes; p++) {
        table *t = w->panes[p];
        if (t->idx < w->ahead_pane)
            continue;
        if (t->idx >= below)
            break;
        if (t->idx != w->ahead_pane) {
            w->ahead_pane = t->idx;
            w->ahead_ent = 0;
        }
        while (w->ahead_ent < t->n) {
            if (budget == 0)
                return 0;
            merge_entry(w, t, w->ahead_ent++);
            budget--;
        }
        w->ahead_pane = t->idx + 1;
        w->ahead_ent = 0;
    }
    return 1;
}

/* Empties the merge table of whatever window it was merging. */
static void cancel_ahead(nta_window *w)
{
    if (w->ahead_k != INT64_MIN && w->merge.ents != NULL)
        table_reset(w, &w->merge);
    w->ahead_k = INT64_MIN;
    w->ahead_more = 0;
}

/* Starts merging window k into the (empty) merge table. */
static int start_ahead(nta_window *w, int64_t k)
{
    if (w->merge.ents == NULL && table_init(w, &w->merge) != 0)
        return -1;
    w->ahead_k = k;
    w->ahead_pane = INT64_MIN;
    w->ahead_ent = 0;
    w->ahead_more = 1;
    return 0;
}

/* Emits the merge table combined with pane `last`, whose entries it holds
 * none of yet, in one pass: each key of the table as soon as its part of
 * `last` is added, then the keys new in `last`, then "(other)". That is the
 * order and the result of merging `last` into the table and emitting it
 * after (the same merges in the same order), but the first results go out
 * at once rather than after a pass over the pane. */
static size_t emit_merged(nta_window *w, table *last, int64_t start, int64_t end,
                          nta_emit_fn fn, void *ctx)
{
    table *m = &w->merge;
    nta_result res;
    result_init(w, &res, start, end);
    size_t n = 0;
    for (uint32_t i = 1; i < m->n; i++) {
        word *d = entry(w, m, i);
        if (count_of(w, d)->u == 0)
            continue;
        uint32_t p;
        word *e = table_probe(w, last, d + 1, d[0].u, &p);
        if (e != NULL && count_of(w, e)->u > 0)
            combine(w, d, e);
        emit_entry(w, d, 0, &res, fn, ctx);
        n++;
    }
    for (uint32_t j = 1; j < last->n; j++) {
        word *e = entry(w, last, j);
        if (count_of(w, e)->u == 0)
            continue;
        uint32_t before = m->n;
        word *d = table_find(w, m, e + 1, e[0].u, 0);
        if (d == NULL) {
            /* Out of memory: the key's totals still count, in "(other)". */
            combine(w, entry(w, m, 0), e);
        } else if (m->n > before) {
            combine(w, d, e);
            emit_entry(w, d, 0, &res, fn, ctx);
            n++;
        }
    }
    word *other = entry(w, m, 0);
    if (count_of(w, entry(w, last, 0))->u > 0)
        combine(w, other, entry(w, last, 0));
    if (count_of(w, other)->u > 0) {
        emit_entry(w, other, 1, &res, fn, ctx);
        n++;
    }
    return n;
}

/* Emits window k from its open panes, which by the invariant on panes are
 * the prefix of the list below (k*s + z). A window of one pane is emitted
 * straight from it; otherwise its panes are merged into the merge table,
 * for a sliding window mostly ahead of time (merge_ahead), and the last
 * pane in the pass that emits (emit_merged). */
static size_t emit_window(nta_window *w, int64_t k, nta_emit_fn fn, void *ctx)
{
    int64_t hi = k * w->s + w->z;
    size_t np = 0;
    while (np < w->npanes && w->panes[np]->idx < hi)
        np++;
    int64_t start = k * w->spec.slide_ms;
    int64_t end = start + w->spec.size_ms;
    size_t n = 0;
    if (np == 1) {
        cancel_ahead(w);
        n = emit_table(w, w->panes[0], start, end, fn, ctx);
    } else {
        if (w->ahead_k != k) {
            cancel_ahead(w);
            if (start_ahead(w, k) != 0)
                return 0;
        }
        table *last = w->panes[np - 1];
        if (w->ahead_pane > last->idx || (w->ahead_pane == last->idx && w->ahead_ent > 0)) {
            /* The last pane was final early (the window's newest panes hold
             * no records) and is merged already, at least in part. */
            merge_ahead(w, UINT32_MAX, hi);
            n = emit_table(w, &w->merge, start, end, fn, ctx);
        } else {
            merge_ahead(w, UINT32_MAX, last->idx);
            n = emit_merged(w, last, start, end, fn, ctx);
        }
        /* The merge table now holds window k whole. If k's first s panes
         * are empty (the first windows of a stream, or records that span
         * less than a window), window k + 1's panes below k's end are k's
         * panes, merged already in the same order: the table is k + 1's
         * merge ahead up to there, and a window that only grows at its end
         * costs a merge of its new panes rather than of all of them. (Only
         * after an allocation failed can "(other)" differ: emit_merged adds
         * a key it could not place before the pane's own "(other)", a merge
         * from scratch after it, and top-k and quantile sketches depend on
         * that order.) */
        if (w->z > w->s && w->panes[0]->idx >= hi - w->z + w->s) {
            w->ahead_k = k + 1;
            w->ahead_pane = hi;
            w->ahead_ent = 0;
            w->ahead_more = 1;
            goto done;
        }
        cancel_ahead(w);
    }
    /* The panes window k + 1 shares with k are final from now on. */
    if (w->z > w->s)
        (void)start_ahead(w, k + 1);
done:
    if (n > 0)
        w->st.windows++;
    w->st.results += n;
    return n;
}

/* Emits, in order, each window k <= kmax that covers an open pane, jumping
 * over empty stretches: from the lowest open pane straight to the first
 * window that covers it. Drops each pane once its last window is out. */
static size_t emit_through(nta_window *w, int64_t kmax, nta_emit_fn fn, void *ctx)
{
    size_t total = 0;
    while (w->npanes > 0) {
        int64_t k = ceil_div(w->panes[0]->idx - w->z + 1, w->s);
        if (k < w->next_k)
            k = w->next_k;
        if (k > kmax)
            break;
        total += emit_window(w, k, fn, ctx);
        w->next_k = k + 1;
        drop_panes_before(w, w->next_k * w->s);
    }
    return total;
}

/* fn must not call back into w: the panes it reads from are being walked. */
size_t nta_window_advance(nta_window *w, int64_t watermark_ms, nta_emit_fn fn, void *ctx)
{
    /* No window that can hold a record ends outside +-WM_LIMIT. */
    if (watermark_ms < -WM_LIMIT)
        return 0;
    if (watermark_ms > WM_LIMIT)
        watermark_ms = WM_LIMIT;
    int64_t kmax = floor_div(watermark_ms - w->spec.size_ms, w->spec.slide_ms);
    int64_t upto = kmax * w->spec.slide_ms + w->spec.size_ms;
    if (upto <= w->emitted_upto)
        return 0;
    size_t n = emit_through(w, kmax, fn, ctx);
    w->emitted_upto = upto;
    if (w->next_k < kmax + 1)
        w->next_k = kmax + 1;
    /* A window merged ahead that the watermark passed held no records. */
    if (w->ahead_k != INT64_MIN && w->ahead_k < w->next_k)
        cancel_ahead(w);
    drop_panes_before(w, w->next_k * w->s);
    /* The cached pane may now lie before emitted_upto, where adds are late. */
    w->cur = NULL;
    return n;
}

size_t nta_window_flush(nta_window *w, nta_emit_fn fn, void *ctx)
{
    size_t n = emit_through(w, INT64_MAX, fn, ctx);
    if (w->next_k != INT64_MIN) {
        int64_t upto = (w->next_k - 1) * w->spec.slide_ms + w->spec.size_ms;
        if (upto > w->emitted_upto)
            w->emitted_upto = upto;
    }
    drop_panes_before(w, INT64_MAX);
    free(w->panes);
    w->panes = NULL;
    w->panes_cap = 0;
    free_pools(w);
    w->cur = NULL;
    return n;
}

/* ---- accounting ---- */

static size_t table_bytes(const nta_window *w, const table *t)
{
    size_t b = ((size_t)t->cap + 1) * w->ew * sizeof(word) + (size_t)t->cap / 2 * sizeof *t->order;
    if (w->has_sketch || w->has_hll) {
        for (uint32_t i = 0; i < t->n; i++) {
            word *e = entry(w, t, i);
            for (int j = 0; j < w->spec.naggs; j++) {
                nta_agg_kind k = w->spec.aggs[j].kind;
                if (k == NTA_AGG_DISTINCT)
                    b += nta_hll_heap_bytes(hll_of(w, e, j));
                else if (is_sketch(k) && agg_of(w, e, j)->p != NULL)
                    b += sketch_bytes(k, *agg_of(w, e, j));
            }
        }
    }
    return b;
}

/* O(open keys) when the spec has a sketch aggregate (each sketch is asked
 * its size), O(open panes) otherwise: meant for periodic reporting. */
void nta_window_set_input(nta_window *w, int32_t partition)
{
    w->input_part = partition >= 0 ? partition : TAG_NONE;
}

void nta_window_get_stats(const nta_window *w, nta_window_stats *out)
{
    *out = w->st;
    size_t b = sizeof *w + w->panes_cap * sizeof *w->panes +
               (w->topks.cap + w->qsketches.cap) * sizeof(void *);
    for (size_t i = 0; i < w->npanes; i++)
        b += sizeof(table) + table_bytes(w, w->panes[i]);
    for (size_t i = 0; i < w->npane_pool; i++)
        b += sizeof(table) + table_bytes(w, w->pane_pool[i]);
    if (w->merge.ents != NULL)
        b += table_bytes(w, &w->merge);
    for (size_t i = 0; i < w->topks.n; i++)
        b += nta_topk_bytes(w->topks.v[i]);
    for (size_t i = 0; i < w->qsketches.n; i++)
        b += nta_qsketch_bytes(w->qsketches.v[i]);
    out->bytes = b;
}
