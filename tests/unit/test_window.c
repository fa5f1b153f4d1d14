/* Unit tests of the window engine. Every result the engine emits is checked
 * against a brute-force batch computation over the same records: for each
 * candidate window, scan all records, test membership with start <= ts <
 * start + size, group by the key's text and aggregate. Top-k and quantile
 * results are checked against the exact weights and values of the same
 * groups, within the bounds topk.h and quantile.h state. */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hll.h"
#include "output.h"
#include "window.h"

/* Distinct counts up to this many values are exact (sparse HLL). */
#define EXACT_DISTINCT 384
#define LABEL_MAX (NTA_WINDOW_MAX_KEYS * NTA_FIELD_TEXT_MAX + 2)

/* ---- helpers independent of the code under test ---- */

static int64_t t_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

static int64_t t_gcd(int64_t a, int64_t b)
{
    return b == 0 ? a : t_gcd(b, a % b);
}

/* The largest aligned window end (k*slide + size) at or before wm. */
static int64_t aligned_end_upto(const nta_window_spec *sp, int64_t wm)
{
    return t_floor_div(wm - sp->size_ms, sp->slide_ms) * sp->slide_ms + sp->size_ms;
}

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int64_t rnd_range(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

static void make_addr(nta_addr *a, unsigned i)
{
    if (i % 7 == 3) {
        /* Some IPv6, to cover the 16-byte text form. */
        memset(a->b, 0, sizeof a->b);
        a->b[0] = 0x20;
        a->b[1] = 0x01;
        a->b[2] = 0x0d;
        a->b[3] = 0xb8;
        a->b[14] = (uint8_t)(i >> 8);
        a->b[15] = (uint8_t)i;
    } else {
        nta_addr_from_v4(a, 0x0a000000u + i);
    }
}

typedef struct gen {
    size_t n;
    int64_t t0, t1;   /* times spread evenly over [t0, t1] ... */
    int64_t jitter;   /* ... each moved by up to +-jitter */
    unsigned nsrc, ndst, nport;
} gen;

static nta_record *gen_records(const gen *g, uint64_t seed)
{
    rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
    nta_record *r = calloc(g->n, sizeof *r);
    assert_non_null(r);
    for (size_t i = 0; i < g->n; i++) {
        int64_t base = g->t0 + (int64_t)((double)(g->t1 - g->t0) * (double)i / (double)g->n);
        r[i].ts_ms = base + (g->jitter ? rnd_range(-g->jitter, g->jitter) : 0);
        make_addr(&r[i].src, (unsigned)(rnd() % g->nsrc));
        make_addr(&r[i].dst, 1000 + (unsigned)(rnd() % g->ndst));
        r[i].src_port = (uint16_t)(1024 + rnd() % 50000);
        r[i].dst_port = (uint16_t)(rnd() % g->nport * 1000 + 22);
        r[i].proto = (rnd() & 1) ? 6 : 17;
        r[i].bytes = 40 + rnd() % 100000;
        r[i].packets = 1 + rnd() % 100;
        r[i].tcp_flags = (uint8_t)(rnd() & 63);
        r[i].present = 0xffff;
    }
    return r;
}

static void label_of(const nta_window_spec *sp, const nta_record *r, char *out)
{
    out[0] = '\0';
    for (int i = 0; i < sp->nkeys; i++) {
        char t[NTA_FIELD_TEXT_MAX];
        nta_record_field_text(r, sp->key[i], t);
        if (i > 0)
            strcat(out, "|");
        strcat(out, t);
    }
}

static void other_label(const nta_window_spec *sp, char *out)
{
    out[0] = '\0';
    for (int i = 0; i < sp->nkeys; i++)
        strcat(out, i > 0 ? "|(other)" : "(other)");
}

/* ---- rows: one (window, key) result, from the engine or the reference ---- */

/* What an emitted result's sketches said, copied out during the callback. */
typedef struct topk_out {
    char text[NTA_FIELD_TEXT_MAX];
    uint64_t value, error;
} topk_out;

typedef struct sketch_out {
    topk_out *items;   /* every item held, largest first */
    size_t nitems;
    uint64_t total, floor;
    uint32_t capacity;
    double qv[NTA_WINDOW_MAX_AGGS][NTA_AGG_MAX_QUANTILES];
} sketch_out;

typedef struct row {
    int64_t start, end;
    char label[LABEL_MAX];
    int is_other;
    uint64_t count;
    nta_agg_value v[NTA_WINDOW_MAX_AGGS];
    sketch_out *sk; /* emitted rows of specs with topk or quantile aggs */
} row;

typedef struct rows {
    row *r;
    size_t n, cap;
} rows;

static row *rows_push(rows *rs)
{
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 64;
        rs->r = realloc(rs->r, rs->cap * sizeof *rs->r);
        assert_non_null(rs->r);
    }
    row *r = &rs->r[rs->n++];
    memset(r, 0, sizeof *r);
    return r;
}

static void rows_free(rows *rs)
{
    for (size_t i = 0; i < rs->n; i++) {
        if (rs->r[i].sk != NULL)
            free(rs->r[i].sk->items);
        free(rs->r[i].sk);
    }
    free(rs->r);
}

static int is_sketch_kind(nta_agg_kind k)
{
    return k == NTA_AGG_TOPK || k == NTA_AGG_QUANTILE;
}

static int has_sketches(const nta_window_spec *sp)
{
    for (int j = 0; j < sp->naggs; j++)
        if (is_sketch_kind(sp->aggs[j].kind))
            return 1;
    return 0;
}

static int row_cmp(const void *a, const void *b)
{
    const row *x = a, *y = b;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->label, y->label);
}

/* ---- the collector behind the emit callback ---- */

typedef struct collector {
    rows got;
    const nta_window_spec *spec;
    int64_t last_end;  /* ends must never decrease */
    int64_t max_end;   /* ends must be <= the watermark of this call */
    int64_t min_end;   /* ends must be > emitted_upto before this call */
} collector;

static void collect(void *ctx, const nta_result *res)
{
    collector *c = ctx;
    const nta_window_spec *sp = c->spec;
    assert_string_equal(res->spec->name, sp->name);
    assert_true(res->end_ms >= c->last_end);
    assert_true(res->end_ms <= c->max_end);
    assert_true(res->end_ms > c->min_end);
    assert_int_equal(res->end_ms - res->start_ms, sp->size_ms);
    assert_int_equal(res->start_ms - t_floor_div(res->start_ms, sp->slide_ms) * sp->slide_ms,
                     0);
    assert_true(res->count > 0);
    for (int i = sp->nkeys; i < NTA_WINDOW_MAX_KEYS; i++)
        assert_string_equal(res->key_text[i], "");
    c->last_end = res->end_ms;
    row *r = rows_push(&c->got);
    r->start = res->start_ms;
    r->end = res->end_ms;
    for (int i = 0; i < sp->nkeys; i++) {
        if (i > 0)
            strcat(r->label, "|");
        strcat(r->label, res->key_text[i]);
    }
    r->is_other = res->is_other;
    r->count = res->count;
    memcpy(r->v, res->values, sizeof r->v);
    if (!has_sketches(sp))
        return;
    r->sk = calloc(1, sizeof *r->sk);
    assert_non_null(r->sk);
    for (int j = 0; j < sp->naggs; j++) {
        const nta_agg_spec *a = &sp->aggs[j];
        if (a->kind == NTA_AGG_TOPK) {
            const nta_topk *t = res->values[j].topk;
            assert_non_null(t);
            size_t n = nta_topk_size(t);
            nta_topk_item *items = calloc(n + 1, sizeof *items);
            r->sk->items = calloc(n + 1, sizeof *r->sk->items);
            assert_non_null(items);
            assert_non_null(r->sk->items);
            r->sk->nitems = nta_topk_items(t, items, n);
            assert_int_equal(r->sk->nitems, n);
            for (size_t i = 0; i < n; i++) {
                nta_agg_item_text(a->field, &items[i], r->sk->items[i].text);
                r->sk->items[i].value = items[i].value;
                r->sk->items[i].error = items[i].error;
            }
            free(items);
            r->sk->total = nta_topk_total(t);
            r->sk->floor = nta_topk_floor(t);
            r->sk->capacity = nta_topk_capacity(t);
        } else if (a->kind == NTA_AGG_QUANTILE) {
            const nta_qsketch *q = res->values[j].qs;
            assert_non_null(q);
            assert_int_equal(nta_qsketch_count(q), res->count);
            for (int i = 0; i < a->nq; i++)
                r->sk->qv[j][i] = nta_qsketch_quantile(q, a->q[i]);
        }
    }
}

/* ---- the brute-force reference ---- */

typedef struct valbuf {
    uint8_t b[16];
} valbuf;

static int valbuf_cmp(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(valbuf));
}

static void field_value(const nta_record *r, nta_field f, valbuf *out)
{
    memset(out, 0, sizeof *out);
    if (f == NTA_F_SRC_IP)
        memcpy(out->b, r->src.b, 16);
    else if (f == NTA_F_DST_IP)
        memcpy(out->b, r->dst.b, 16);
    else {
        uint64_t v = nta_record_u64(r, f);
        memcpy(out->b, &v, sizeof v);
    }
}

static int i64_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Expected rows over the records with use[i] set; labels[i] is the key each
 * record must be reported under (its key text, or the overflow label). */
static rows reference(const nta_window_spec *sp, const nta_record *recs, const int *use,
                      char (*labels)[LABEL_MAX], const int *is_other, size_t n)
{
    rows out = {0};
    /* Candidate windows: a generous neighbourhood of each record's time, each
     * candidate then tested by plain membership. */
    size_t ncand = 0, capc = 1024;
    int64_t *cand = malloc(capc * sizeof *cand);
    assert_non_null(cand);
    for (size_t i = 0; i < n; i++) {
        if (!use[i])
            continue;
        int64_t ts = recs[i].ts_ms;
        for (int64_t k = (ts - sp->size_ms) / sp->slide_ms - 2; k <= ts / sp->slide_ms + 2; k++) {
            if (k * sp->slide_ms <= ts && ts < k * sp->slide_ms + sp->size_ms) {
                if (ncand == capc) {
                    capc *= 2;
                    cand = realloc(cand, capc * sizeof *cand);
                    assert_non_null(cand);
                }
                cand[ncand++] = k;
            }
        }
    }
    qsort(cand, ncand, sizeof *cand, i64_cmp);
    size_t *members = malloc((n + 1) * sizeof *members);
    valbuf *vals = malloc((n + 1) * sizeof *vals);
    assert_non_null(members);
    assert_non_null(vals);
    for (size_t c = 0; c < ncand; c++) {
        if (c > 0 && cand[c] == cand[c - 1])
            continue;
        int64_t start = cand[c] * sp->slide_ms, end = start + sp->size_ms;
        size_t nm = 0;
        for (size_t i = 0; i < n; i++)
            if (use[i] && recs[i].ts_ms >= start && recs[i].ts_ms < end)
                members[nm++] = i;
        for (size_t a = 0; a < nm; a++) {
            const char *lab = labels[members[a]];
            int seen = 0;
            for (size_t b = 0; b < a && !seen; b++)
                seen = strcmp(labels[members[b]], lab) == 0;
            if (seen)
                continue;
            row *r = rows_push(&out);
            r->start = start;
            r->end = end;
            strcpy(r->label, lab);
            r->is_other = is_other[members[a]];
            for (int j = 0; j < sp->naggs; j++) {
                nta_field f = sp->aggs[j].field;
                uint64_t sum = 0, mn = UINT64_MAX, mx = 0, cnt = 0;
                size_t nv = 0;
                for (size_t b = a; b < nm; b++) {
                    const nta_record *rec = &recs[members[b]];
                    if (strcmp(labels[members[b]], lab) != 0)
                        continue;
                    cnt++;
                    uint64_t v = nta_record_u64(rec, f);
                    sum += v;
                    mn = v < mn ? v : mn;
                    mx = v > mx ? v : mx;
                    field_value(rec, f, &vals[nv++]);
                }
                r->count = cnt;
                switch (sp->aggs[j].kind) {
                case NTA_AGG_SUM: r->v[j].u = sum; break;
                case NTA_AGG_MIN: r->v[j].u = mn; break;
                case NTA_AGG_MAX: r->v[j].u = mx; break;
                case NTA_AGG_MEAN: r->v[j].d = (double)sum / (double)cnt; break;
                case NTA_AGG_DISTINCT: {
                    qsort(vals, nv, sizeof *vals, valbuf_cmp);
                    uint64_t d = nv > 0;
                    for (size_t x = 1; x < nv; x++)
                        d += valbuf_cmp(&vals[x], &vals[x - 1]) != 0;
                    r->v[j].u = d;
                    break;
                }
                case NTA_AGG_TOPK:
                case NTA_AGG_QUANTILE: break; /* check_sketches */
                default: fail_msg("bad agg kind");
                }
            }
            if (sp->naggs == 0)
                for (size_t b = a; b < nm; b++)
                    r->count += strcmp(labels[members[b]], lab) == 0;
        }
    }
    free(members);
    free(vals);
    free(cand);
    return out;
}

static void compare_rows(const nta_window_spec *sp, rows *got, rows *exp)
{
    qsort(got->r, got->n, sizeof *got->r, row_cmp);
    qsort(exp->r, exp->n, sizeof *exp->r, row_cmp);
    for (size_t i = 0; i < got->n && i < exp->n; i++) {
        const row *g = &got->r[i], *e = &exp->r[i];
        if (g->end != e->end || strcmp(g->label, e->label) != 0)
            fail_msg("row %zu: got window end %lld key '%s', expected end %lld key '%s'", i,
                     (long long)g->end, g->label, (long long)e->end, e->label);
        assert_int_equal(g->start, e->start);
        assert_int_equal(g->is_other, e->is_other);
        if (g->count != e->count)
            fail_msg("window end %lld key '%s': count %llu, expected %llu", (long long)e->end,
                     e->label, (unsigned long long)g->count, (unsigned long long)e->count);
        for (int j = 0; j < sp->naggs; j++) {
            const char *what = nta_agg_kind_name(sp->aggs[j].kind);
            switch (sp->aggs[j].kind) {
            case NTA_AGG_MEAN:
                if (fabs(g->v[j].d - e->v[j].d) > 1e-9 * fmax(1.0, fabs(e->v[j].d)))
                    fail_msg("window end %lld key '%s': mean %.17g, expected %.17g",
                             (long long)e->end, e->label, g->v[j].d, e->v[j].d);
                break;
            case NTA_AGG_DISTINCT:
                if (e->v[j].u <= EXACT_DISTINCT ? g->v[j].u != e->v[j].u
                                                : fabs((double)g->v[j].u - (double)e->v[j].u) >
                                                      0.03 * (double)e->v[j].u)
                    fail_msg("window end %lld key '%s': distinct %llu, expected %llu",
                             (long long)e->end, e->label, (unsigned long long)g->v[j].u,
                             (unsigned long long)e->v[j].u);
                break;
            case NTA_AGG_TOPK:
            case NTA_AGG_QUANTILE: break; /* check_sketches */
            default:
                if (g->v[j].u != e->v[j].u)
                    fail_msg("window end %lld key '%s': %s %llu, expected %llu",
                             (long long)e->end, e->label, what, (unsigned long long)g->v[j].u,
                             (unsigned long long)e->v[j].u);
                break;
            }
        }
    }
    if (got->n != exp->n)
        fail_msg("%zu results, expected %zu", got->n, exp->n);
}

/* ---- top-k and quantile results against exact per-group computation ---- */

typedef struct weighed {
    char text[NTA_FIELD_TEXT_MAX];
    uint64_t w;
} weighed;

static int weighed_by_text(const void *a, const void *b)
{
    return strcmp(((const weighed *)a)->text, ((const weighed *)b)->text);
}

static int weighed_by_weight_desc(const void *a, const void *b)
{
    uint64_t x = ((const weighed *)a)->w, y = ((const weighed *)b)->w;
    return (x < y) - (x > y);
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static uint32_t expected_capacity(const nta_agg_spec *a)
{
    if (a->capacity > 0)
        return (uint32_t)a->capacity;
    return 4 * a->k > 64 ? (uint32_t)(4 * a->k) : 64;
}

static void check_topk_row(const row *g, const nta_agg_spec *a, const nta_record *recs,
                           const size_t *members, size_t nm)
{
    /* Exact weight per item: sort the members' (text, weight), then sum runs. */
    weighed *ex = calloc(nm + 1, sizeof *ex);
    assert_non_null(ex);
    uint64_t total = 0;
    for (size_t i = 0; i < nm; i++) {
        const nta_record *r = &recs[members[i]];
        nta_record_field_text(r, a->field, ex[i].text);
        ex[i].w = a->by == NTA_F_NONE ? 1 : nta_record_u64(r, a->by);
        total += ex[i].w;
    }
    qsort(ex, nm, sizeof *ex, weighed_by_text);
    size_t nd = 0;
    for (size_t i = 0; i < nm; i++) {
        if (nd > 0 && strcmp(ex[nd - 1].text, ex[i].text) == 0)
            ex[nd - 1].w += ex[i].w;
        else
            ex[nd++] = ex[i];
    }
    /* Items of weight 0 are never added. */
    size_t nz = 0;
    for (size_t i = 0; i < nd; i++)
        if (ex[i].w > 0)
            ex[nz++] = ex[i];
    nd = nz;
    const sketch_out *sk = g->sk;
    assert_int_equal(sk->total, total);
    assert_int_equal(sk->capacity, expected_capacity(a));
    assert_true(sk->nitems <= 4 * sk->capacity);
    if (sk->floor * ((uint64_t)sk->capacity + 1) > total)
        fail_msg("window end %lld key '%s': floor %llu above total/(m+1) %llu/%u",
                 (long long)g->end, g->label, (unsigned long long)sk->floor,
                 (unsigned long long)total, sk->capacity + 1);
    char *held = calloc(nd + 1, 1);
    assert_non_null(held);
    for (size_t i = 0; i < sk->nitems; i++) {
        const topk_out *it = &sk->items[i];
        if (i > 0)
            assert_true(sk->items[i - 1].value >= it->value);
        weighed probe;
        memcpy(probe.text, it->text, sizeof probe.text);
        weighed *e = bsearch(&probe, ex, nd, sizeof *ex, weighed_by_text);
        if (e == NULL)
            fail_msg("window end %lld key '%s': item %s was never seen", (long long)g->end,
                     g->label, it->text);
        held[e - ex] = 1;
        if (!(e->w <= it->value && it->value <= e->w + it->error && it->error <= sk->floor))
            fail_msg("window end %lld key '%s': item %s true %llu, value %llu, error %llu, "
                     "floor %llu",
                     (long long)g->end, g->label, it->text, (unsigned long long)e->w,
                     (unsigned long long)it->value, (unsigned long long)it->error,
                     (unsigned long long)sk->floor);
    }
    for (size_t i = 0; i < nd; i++)
        if (!held[i] && ex[i].w > sk->floor)
            fail_msg("window end %lld key '%s': item %s of weight %llu > floor %llu not held",
                     (long long)g->end, g->label, ex[i].text, (unsigned long long)ex[i].w,
                     (unsigned long long)sk->floor);
    /* The k reported: every true top-k item that beats the (k+1)-th by more
     * than the floor is among the first k. */
    qsort(ex, nd, sizeof *ex, weighed_by_weight_desc);
    size_t k = (size_t)a->k;
    uint64_t next = k < nd ? ex[k].w : 0;
    for (size_t i = 0; i < nd && i < k; i++) {
        if (ex[i].w <= next + sk->floor)
            continue;
        int found = 0;
        for (size_t j = 0; j < k && j < sk->nitems && !found; j++)
            found = strcmp(sk->items[j].text, ex[i].text) == 0;
        if (!found)
            fail_msg("window end %lld key '%s': top item %s (weight %llu) not in the first %zu",
                     (long long)g->end, g->label, ex[i].text, (unsigned long long)ex[i].w, k);
    }
    free(held);
    free(ex);
}

static void check_quantile_row(const row *g, int j, const nta_agg_spec *a,
                               const nta_record *recs, const size_t *members, size_t nm)
{
    uint64_t *v = malloc((nm + 1) * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < nm; i++)
        v[i] = nta_record_u64(&recs[members[i]], a->field);
    qsort(v, nm, sizeof *v, u64_cmp);
    for (int i = 0; i < a->nq; i++) {
        /* DDSketch's rank: floor(q * (n - 1)), 0-based. */
        double x = (double)v[(size_t)floor(a->q[i] * (double)(nm - 1))];
        double est = g->sk->qv[j][i];
        if (fabs(est - x) > 0.01 * x * (1 + 1e-12))
            fail_msg("window end %lld key '%s': q %g of %s: %.4f, exact %.0f", (long long)g->end,
                     g->label, a->q[i], nta_field_name(a->field), est, x);
    }
    free(v);
}

/* Each emitted row's sketches against the exact weights and values of its
 * group: the records used, in the window, reported under the row's label. */
static void check_sketches(const nta_window_spec *sp, const nta_record *recs, const int *use,
                           char (*labels)[LABEL_MAX], size_t n, const rows *got)
{
    if (!has_sketches(sp))
        return;
    size_t *members = malloc((n + 1) * sizeof *members);
    assert_non_null(members);
    for (size_t r = 0; r < got->n; r++) {
        const row *g = &got->r[r];
        assert_non_null(g->sk);
        size_t nm = 0;
        for (size_t i = 0; i < n; i++)
            if (use[i] && recs[i].ts_ms >= g->start && recs[i].ts_ms < g->end &&
                strcmp(labels[i], g->label) == 0)
                members[nm++] = i;
        assert_int_equal(nm, g->count);
        for (int j = 0; j < sp->naggs; j++) {
            if (sp->aggs[j].kind == NTA_AGG_TOPK)
                check_topk_row(g, &sp->aggs[j], recs, members, nm);
            else if (sp->aggs[j].kind == NTA_AGG_QUANTILE)
                check_quantile_row(g, j, &sp->aggs[j], recs, members, nm);
        }
    }
    free(members);
}

/* ---- the streaming driver ---- */

typedef struct run {
    rows got;
    int *use;              /* records the engine must have aggregated */
    char (*labels)[LABEL_MAX];
    int *is_other;
    nta_window_stats st;   /* after the last advance, before flush */
    nta_window_stats end;  /* after flush */
} run;

/* Feeds recs in order, advancing the watermark to (max time seen - lateness)
 * every `every` records, then flushes. Checks each add's verdict against the
 * lateness rule, and each emission against ordering and watermark bounds. */
static run run_stream(const nta_window_spec *sp, const nta_record *recs, size_t n,
                      int64_t lateness, size_t every)
{
    run out = {0};
    out.use = calloc(n, sizeof *out.use);
    out.labels = calloc(n, sizeof *out.labels);
    out.is_other = calloc(n, sizeof *out.is_other);
    assert_non_null(out.use);
    assert_non_null(out.labels);
    assert_non_null(out.is_other);
    nta_window *w = nta_window_create(sp);
    assert_non_null(w);
    collector c = {.spec = nta_window_spec_of(w), .last_end = INT64_MIN};
    int64_t upto = INT64_MIN, maxts = INT64_MIN;
    assert_int_equal(nta_window_emitted_upto(w), INT64_MIN);
    for (size_t i = 0; i < n; i++) {
        int late = recs[i].ts_ms < upto;
        assert_int_equal(nta_window_add(w, &recs[i]), late);
        out.use[i] = !late;
        label_of(sp, &recs[i], out.labels[i]);
        if (recs[i].ts_ms > maxts)
            maxts = recs[i].ts_ms;
        if ((i + 1) % every == 0) {
            int64_t wm = maxts - lateness;
            c.max_end = wm;
            c.min_end = upto;
            size_t before = c.got.n;
            size_t emitted = nta_window_advance(w, wm, collect, &c);
            assert_int_equal(emitted, c.got.n - before);
            int64_t e = aligned_end_upto(sp, wm);
            if (e > upto)
                upto = e;
            assert_int_equal(nta_window_emitted_upto(w), upto);
        }
    }
    nta_window_get_stats(w, &out.st);
    c.max_end = INT64_MAX;
    c.min_end = upto;
    size_t before = c.got.n;
    size_t emitted = nta_window_flush(w, collect, &c);
    assert_int_equal(emitted, c.got.n - before);
    if (c.got.n > before)
        assert_int_equal(nta_window_emitted_upto(w), c.got.r[c.got.n - 1].end);
    assert_int_equal(nta_window_flush(w, collect, &c), 0);
    nta_window_get_stats(w, &out.end);
    nta_window_destroy(w);
    out.got = c.got;
    return out;
}

static void run_free(run *r)
{
    rows_free(&r->got);
    free(r->use);
    free(r->labels);
    free(r->is_other);
}

/* The full check of one stream: results equal the reference, stats agree. */
static void check_stream(const nta_window_spec *sp, const nta_record *recs, size_t n,
                         int64_t lateness, size_t every)
{
    run r = run_stream(sp, recs, n, lateness, every);
    rows exp = reference(sp, recs, r.use, r.labels, r.is_other, n);
    compare_rows(sp, &r.got, &exp);
    check_sketches(sp, recs, r.use, r.labels, n, &r.got);
    uint64_t used = 0;
    for (size_t i = 0; i < n; i++)
        used += (uint64_t)r.use[i];
    assert_int_equal(r.end.added, used);
    assert_int_equal(r.end.late, n - used);
    assert_int_equal(r.end.overflow, 0);
    assert_int_equal(r.end.results, r.got.n);
    uint64_t windows = 0;
    for (size_t i = 0; i < r.got.n; i++)
        windows += i == 0 || r.got.r[i].end != r.got.r[i - 1].end;
    assert_int_equal(r.end.windows, windows);
    assert_int_equal(r.end.open_panes, 0);
    assert_int_equal(r.end.open_keys, 0);
    free(exp.r);
    run_free(&r);
}

static nta_window_spec make_spec(const char *name, int64_t size, int64_t slide)
{
    nta_window_spec sp;
    memset(&sp, 0, sizeof sp);
    snprintf(sp.name, sizeof sp.name, "%s", name);
    sp.size_ms = size;
    sp.slide_ms = slide;
    sp.max_keys = 100000;
    return sp;
}

static void add_agg(nta_window_spec *sp, nta_agg_kind k, nta_field f)
{
    sp->aggs[sp->naggs].kind = k;
    sp->aggs[sp->naggs].field = f;
    sp->naggs++;
}

static void all_aggs(nta_window_spec *sp)
{
    add_agg(sp, NTA_AGG_SUM, NTA_F_BYTES);
    add_agg(sp, NTA_AGG_SUM, NTA_F_PACKETS);
    add_agg(sp, NTA_AGG_MIN, NTA_F_BYTES);
    add_agg(sp, NTA_AGG_MAX, NTA_F_PACKETS);
    add_agg(sp, NTA_AGG_MEAN, NTA_F_BYTES);
    add_agg(sp, NTA_AGG_DISTINCT, NTA_F_DST_IP);
    add_agg(sp, NTA_AGG_DISTINCT, NTA_F_DST_PORT);
}

static void add_topk(nta_window_spec *sp, nta_field f, nta_field by, int k, int capacity)
{
    nta_agg_spec *a = &sp->aggs[sp->naggs++];
    memset(a, 0, sizeof *a);
    a->kind = NTA_AGG_TOPK;
    a->field = f;
    a->by = by;
    a->k = k;
    a->capacity = capacity;
}

static void add_quantiles(nta_window_spec *sp, nta_field f, int nq, const double *q)
{
    nta_agg_spec *a = &sp->aggs[sp->naggs++];
    memset(a, 0, sizeof *a);
    a->kind = NTA_AGG_QUANTILE;
    a->field = f;
    a->nq = nq;
    memcpy(a->q, q, (size_t)nq * sizeof *q);
}

static const double some_q[] = {0.5, 0.9, 0.95, 0.99, 0.999};

/* A top-k with few counters (evictions in every pane, merges that
 * truncate) and quantiles of two fields. */
static void sketch_aggs(nta_window_spec *sp)
{
    add_topk(sp, NTA_F_DST_IP, NTA_F_BYTES, 5, 8);
    add_quantiles(sp, NTA_F_BYTES, 5, some_q);
    add_quantiles(sp, NTA_F_PACKETS, 2, some_q + 2);
}

/* Skews destinations (a few heavy, a long tail), as real traffic is. */
static void skew_dst(nta_record *r, size_t n, unsigned ndst)
{
    for (size_t i = 0; i < n; i++) {
        double u = (double)(rnd() % 1000000) / 1e6;
        make_addr(&r[i].dst, 1000 + (unsigned)(ndst * u * u * u));
    }
}

/* ---- tests ---- */

static void test_agg_names(void **state)
{
    (void)state;
    static const char *const names[] = {"sum", "min", "max", "mean", "distinct", "topk",
                                        "quantile"};
    for (int k = 0; k < NTA_AGG__COUNT; k++) {
        assert_string_equal(nta_agg_kind_name((nta_agg_kind)k), names[k]);
        assert_int_equal(nta_agg_kind_by_name(names[k]), k);
    }
    assert_int_equal(nta_agg_kind_by_name("avg"), -1);
    assert_int_equal(nta_agg_kind_by_name(""), -1);
    assert_int_equal(nta_agg_kind_by_name("SUM"), -1);
}

static void expect_bad(const nta_window_spec *sp, const char *needle)
{
    char err[256] = "";
    assert_int_equal(nta_window_spec_check(sp, err, sizeof err), -1);
    if (strstr(err, needle) == NULL)
        fail_msg("error '%s' does not mention '%s'", err, needle);
    assert_null(nta_window_create(sp));
}

static void test_spec_check(void **state)
{
    (void)state;
    nta_window_spec ok = make_spec("w", 10000, 4000);
    ok.nkeys = 2;
    ok.key[0] = NTA_F_SRC_IP;
    ok.key[1] = NTA_F_DST_PORT;
    all_aggs(&ok);
    add_agg(&ok, NTA_AGG_DISTINCT, NTA_F_SRC_IP);
    char err[256] = "";
    assert_int_equal(nta_window_spec_check(&ok, err, sizeof err), 0);
    nta_window *w = nta_window_create(&ok);
    assert_non_null(w);
    assert_string_equal(nta_window_spec_of(w)->name, "w");
    nta_window_destroy(w);
    nta_window_destroy(NULL);

    nta_window_spec b = ok;
    b.name[0] = '\0';
    expect_bad(&b, "name");
    b = ok;
    memset(b.name, 'x', sizeof b.name);
    expect_bad(&b, "name");
    b = ok;
    b.size_ms = 0;
    expect_bad(&b, "size_ms");
    b = ok;
    b.size_ms = (int64_t)1 << 50;
    expect_bad(&b, "size_ms");
    b = ok;
    b.slide_ms = -5;
    expect_bad(&b, "slide_ms");
    b = ok;
    b.slide_ms = ok.size_ms + 1;
    expect_bad(&b, "must not exceed");
    b.slide_ms = ok.size_ms;
    assert_int_equal(nta_window_spec_check(&b, err, sizeof err), 0);
    b = ok;
    b.nkeys = 3;
    expect_bad(&b, "key");
    b = ok;
    b.nkeys = -1;
    expect_bad(&b, "key");
    b = ok;
    b.key[1] = NTA_F_NONE;
    expect_bad(&b, "key 2");
    b = ok;
    b.key[0] = NTA_F__COUNT;
    expect_bad(&b, "key 1");
    b = ok;
    b.naggs = NTA_WINDOW_MAX_AGGS + 1;
    expect_bad(&b, "aggregates");
    b = ok;
    b.aggs[0].field = NTA_F_NONE;
    expect_bad(&b, "sum");
    b = ok;
    b.aggs[1].kind = NTA_AGG__COUNT;
    expect_bad(&b, "unknown kind");
    b = ok;
    b.max_keys = 0;
    expect_bad(&b, "max_keys");
    static const nta_agg_kind numeric_only[] = {NTA_AGG_SUM, NTA_AGG_MIN, NTA_AGG_MAX,
                                                NTA_AGG_MEAN};
    for (size_t i = 0; i < 4; i++) {
        b = ok;
        b.aggs[0].kind = numeric_only[i];
        b.aggs[0].field = NTA_F_DST_IP;
        expect_bad(&b, "address");
    }
    b = ok;
    b.nwhere = 1;
    b.where[0].field = NTA_F_PROTO;
    b.where[0].nvalues = 2;
    assert_int_equal(nta_window_spec_check(&b, err, sizeof err), 0);
    b.where[0].nvalues = 0;
    expect_bad(&b, "values");
    b.where[0].nvalues = NTA_FILTER_MAX_VALUES + 1;
    expect_bad(&b, "values");
    b.where[0].nvalues = 1;
    b.where[0].field = NTA_F_SRC_IP;
    assert_int_equal(nta_window_spec_check(&b, err, sizeof err), 0);
    b.where[0].negate = 2;
    expect_bad(&b, "negate");
    b.where[0].negate = 0;
    b.where[0].field = NTA_F_NONE;
    expect_bad(&b, "field");
    b.where[0].field = NTA_F_PROTO;
    b.nwhere = NTA_WINDOW_MAX_FILTERS + 1;
    expect_bad(&b, "filters");
    b.nwhere = -1;
    expect_bad(&b, "filters");
    /* A NULL error buffer is allowed. */
    b = ok;
    b.max_keys = 0;
    assert_int_equal(nta_window_spec_check(&b, NULL, 0), -1);

    /* topk and quantiles. */
    nta_window_spec sk = make_spec("sk", 10000, 5000);
    add_topk(&sk, NTA_F_SRC_IP, NTA_F_BYTES, 10, 0);
    add_quantiles(&sk, NTA_F_BYTES, 5, some_q);
    assert_int_equal(nta_window_spec_check(&sk, err, sizeof err), 0);
    b = sk;
    b.aggs[0].by = NTA_F_PACKETS;
    b.aggs[0].field = NTA_F_DST_PORT;
    b.aggs[0].k = NTA_TOPK_MAX_K;
    b.aggs[0].capacity = NTA_TOPK_MAX_K;
    assert_int_equal(nta_window_spec_check(&b, err, sizeof err), 0);
    b.aggs[0].by = NTA_F_NONE;
    assert_int_equal(nta_window_spec_check(&b, err, sizeof err), 0);
    b.aggs[0].by = NTA_F_DST_PORT;
    expect_bad(&b, "weight");
    b = sk;
    b.aggs[0].k = 0;
    expect_bad(&b, "k must");
    b.aggs[0].k = NTA_TOPK_MAX_K + 1;
    expect_bad(&b, "k must");
    b = sk;
    b.aggs[0].capacity = 9; /* below k */
    expect_bad(&b, "capacity");
    b.aggs[0].capacity = NTA_TOPK_MAX_CAPACITY + 1;
    expect_bad(&b, "capacity");
    b = sk;
    add_topk(&b, NTA_F_DST_IP, NTA_F_BYTES, 10, 0);
    expect_bad(&b, "at most 1");
    b = sk;
    b.aggs[1].field = NTA_F_SRC_IP;
    expect_bad(&b, "address");
    b = sk;
    b.aggs[1].nq = 0;
    expect_bad(&b, "quantiles");
    b.aggs[1].nq = NTA_AGG_MAX_QUANTILES + 1;
    expect_bad(&b, "quantiles");
    static const double bad_q[] = {0, 1, -0.5, 1.5, 0.12345, NAN};
    for (size_t i = 0; i < sizeof bad_q / sizeof bad_q[0]; i++) {
        b = sk;
        b.aggs[1].q[2] = bad_q[i];
        expect_bad(&b, "quantile");
    }
    b = sk;
    b.aggs[1].q[3] = 0.5;
    expect_bad(&b, "twice");
}

static void test_result_names(void **state)
{
    (void)state;
    nta_window_spec sp = make_spec("n", 1000, 1000);
    add_agg(&sp, NTA_AGG_SUM, NTA_F_BYTES);
    add_topk(&sp, NTA_F_SRC_IP, NTA_F_BYTES, 10, 0);
    add_topk(&sp, NTA_F_DST_PORT, NTA_F_NONE, 10, 0);
    add_topk(&sp, NTA_F_DST_IP, NTA_F_PACKETS, 10, 0);
    static const double q[] = {0.5, 0.999, 0.9999, 0.05, 0.001, 0.125};
    add_quantiles(&sp, NTA_F_BYTES, 6, q);
    char buf[64];
    assert_int_equal(nta_agg_result_name(&sp.aggs[0], 0, buf, sizeof buf), 9);
    assert_string_equal(buf, "sum_bytes");
    nta_agg_result_name(&sp.aggs[1], 0, buf, sizeof buf);
    assert_string_equal(buf, "topk_bytes_src_ip");
    nta_agg_result_name(&sp.aggs[2], 0, buf, sizeof buf);
    assert_string_equal(buf, "topk_count_dst_port");
    nta_agg_result_name(&sp.aggs[3], 0, buf, sizeof buf);
    assert_string_equal(buf, "topk_packets_dst_ip");
    static const char *const qn[] = {"p50_bytes", "p99_9_bytes", "p99_99_bytes",
                                     "p5_bytes", "p0_1_bytes", "p12_5_bytes"};
    for (int i = 0; i < 6; i++) {
        nta_agg_result_name(&sp.aggs[4], i, buf, sizeof buf);
        assert_string_equal(buf, qn[i]);
    }
    /* Truncated, still terminated. */
    assert_int_equal(nta_agg_result_name(&sp.aggs[1], 0, buf, 5), 4);
    assert_string_equal(buf, "topk");
}

/* Top-k and quantiles in tumbling, sliding, keyed and unkeyed windows,
 * against the exact per-group computation. */
static void test_sketch_windows(void **state)
{
    (void)state;
    gen g = {.n = 4000, .t0 = 0, .t1 = 120000, .jitter = 3000, .nsrc = 12, .ndst = 60,
             .nport = 9};
    nta_record *r = gen_records(&g, 21);
    skew_dst(r, g.n, 60);

    nta_window_spec sp = make_spec("talkers", 10000, 10000);
    sketch_aggs(&sp);
    check_stream(&sp, r, g.n, 2000, 50);

    sp = make_spec("talkers_sliding", 30000, 4000);
    sketch_aggs(&sp);
    add_agg(&sp, NTA_AGG_SUM, NTA_F_BYTES);
    check_stream(&sp, r, g.n, 3000, 7);

    sp = make_spec("per_src", 20000, 5000);
    sp.nkeys = 1;
    sp.key[0] = NTA_F_SRC_IP;
    add_topk(&sp, NTA_F_DST_PORT, NTA_F_NONE, 3, 0); /* default capacity: 64, exact here */
    add_quantiles(&sp, NTA_F_BYTES, 3, some_q + 1);
    check_stream(&sp, r, g.n, 1000, 13);

    sp = make_spec("pairs", 12000, 3000);
    sp.nkeys = 2;
    sp.key[0] = NTA_F_PROTO;
    sp.key[1] = NTA_F_DST_PORT;
    add_topk(&sp, NTA_F_SRC_IP, NTA_F_PACKETS, 2, 8);
    add_quantiles(&sp, NTA_F_PACKETS, 1, some_q);
    all_aggs(&sp);
    check_stream(&sp, r, g.n, 500, 3);
    free(r);

    /* Many records per window, a default-sized summary over a long tail. */
    g = (gen){.n = 30000, .t0 = 0, .t1 = 60000, .jitter = 100, .nsrc = 3000, .ndst = 2000,
              .nport = 5};
    r = gen_records(&g, 22);
    skew_dst(r, g.n, 2000);
    sp = make_spec("big", 20000, 10000);
    add_topk(&sp, NTA_F_DST_IP, NTA_F_BYTES, 10, 0);
    add_quantiles(&sp, NTA_F_BYTES, 5, some_q);
    check_stream(&sp, r, g.n, 0, 100);
    free(r);
}

/* Hand-made records: literal top-k values, shares and quantiles. */
static void test_sketch_literal(void **state)
{
    (void)state;
    nta_window_spec sp = make_spec("lit", 1000, 1000);
    add_topk(&sp, NTA_F_DST_PORT, NTA_F_BYTES, 2, 0);
    static const double q[] = {0.5, 0.99};
    add_quantiles(&sp, NTA_F_BYTES, 2, q);
    nta_window *w = nta_window_create(&sp);
    assert_non_null(w);
    static const uint16_t port[] = {443, 53, 443, 80, 0};
    static const uint64_t bytes[] = {1000, 60, 3000, 500, 0};
    for (int i = 0; i < 5; i++) {
        nta_record rec = {.ts_ms = 10 + i, .dst_port = port[i], .bytes = bytes[i]};
        assert_int_equal(nta_window_add(w, &rec), 0);
    }
    collector c = {.spec = &sp, .last_end = INT64_MIN, .max_end = INT64_MAX,
                   .min_end = INT64_MIN};
    assert_int_equal(nta_window_flush(w, collect, &c), 1);
    const sketch_out *sk = c.got.r[0].sk;
    assert_int_equal(sk->total, 4560);
    assert_int_equal(sk->nitems, 3); /* port 0 carried no bytes */
    assert_string_equal(sk->items[0].text, "443");
    assert_int_equal(sk->items[0].value, 4000);
    assert_int_equal(sk->items[0].error, 0);
    assert_string_equal(sk->items[1].text, "80");
    assert_int_equal(sk->items[1].value, 500);
    assert_string_equal(sk->items[2].text, "53");
    /* Sorted bytes 0 60 500 1000 3000: rank floor(0.5 * 4) = 2 -> 500, within
     * 1%; rank floor(0.99 * 4) = 3 -> 1000. */
    assert_true(fabs(sk->qv[1][0] - 500) <= 5);
    assert_true(fabs(sk->qv[1][1] - 1000) <= 10);
    rows_free(&c.got);
    nta_window_destroy(w);
}

/* Sketch memory goes back to the pools and is freed by flush. */
static void test_sketch_memory(void **state)
{
    (void)state;
    nta_window_spec sp = make_spec("mem", 30000, 10000);
    sp.nkeys = 1;
    sp.key[0] = NTA_F_SRC_IP;
    sketch_aggs(&sp);
    nta_window *w = nta_window_create(&sp);
    assert_non_null(w);
    nta_window_stats st;
    nta_window_get_stats(w, &st);
    size_t empty_bytes = st.bytes;
    gen g = {.n = 30000, .t0 = 0, .t1 = 300000, .jitter = 0, .nsrc = 50, .ndst = 500,
             .nport = 5};
    nta_record *r = gen_records(&g, 23);
    collector c = {.spec = &sp, .last_end = INT64_MIN, .min_end = INT64_MIN};
    size_t peak = 0;
    for (size_t i = 0; i < g.n; i++) {
        assert_int_equal(nta_window_add(w, &r[i]), 0);
        if (i % 100 == 99) {
            c.max_end = r[i].ts_ms;
            nta_window_advance(w, r[i].ts_ms, collect, &c);
            nta_window_get_stats(w, &st);
            peak = st.bytes > peak ? st.bytes : peak;
        }
    }
    /* 3 panes + the merge table of 50 keys, each key with a top-k of 8
     * counters and two sketches of at most 2048 buckets: well under 5 MB. */
    assert_true(peak > empty_bytes);
    assert_true(peak < 5u << 20);
    c.max_end = INT64_MAX;
    nta_window_flush(w, collect, &c);
    nta_window_get_stats(w, &st);
    assert_int_equal(st.bytes, empty_bytes);
    rows_free(&c.got);
    free(r);
    nta_window_destroy(w);
}

static void test_last_end(void **state)
{
    (void)state;
    nta_window_spec sp = make_spec("w", 10000, 4000);
    assert_int_equal(nta_window_last_end(&sp, 0), 10000);
    assert_int_equal(nta_window_last_end(&sp, 3999), 10000);
    assert_int_equal(nta_window_last_end(&sp, 4000), 14000);
    assert_int_equal(nta_window_last_end(&sp, -1), 6000);
    assert_int_equal(nta_window_last_end(&sp, -4000), 6000);
    assert_int_equal(nta_window_last_end(&sp, -4001), 2000);
    /* By brute force: the largest end among windows containing ts. */
    for (int64_t ts = -30000; ts <= 30000; ts += 777) {
        int64_t best = INT64_MIN;
        for (int64_t k = -20; k <= 20; k++)
            if (k * 4000 <= ts && ts < k * 4000 + 10000 && k * 4000 + 10000 > best)
                best = k * 4000 + 10000;
        assert_int_equal(nta_window_last_end(&sp, ts), best);
    }
}

/* Each result says which input partition its records came from: one
 * partition's number, -2 when several fed it (checked per key, through the
 * merge of a sliding window's panes), -1 when none was set. */
typedef struct part_seen {
    int32_t by_src[4]; /* last partition tag per source 10.0.0.1 .. 10.0.0.3 */
    int n;
} part_seen;

static void note_partition(void *ctx, const nta_result *res)
{
    part_seen *ps = ctx;
    int host = res->key_text[0][strlen(res->key_text[0]) - 1] - '0';
    assert_in_range(host, 1, 3);
    ps->by_src[host] = res->partition;
    ps->n++;
}

static void test_partition_tags(void **state)
{
    (void)state;
    nta_window_spec sp = make_spec("tags", 4000, 2000);
    sp.nkeys = 1;
    sp.key[0] = NTA_F_SRC_IP;
    nta_window *w = nta_window_create(&sp);
    assert_non_null(w);
    /* 10.0.0.1 only from partition 0, 10.0.0.2 only from 1, 10.0.0.3 from
     * both, in different panes of the same window. */
    const struct { int64_t ts; int host; int32_t part; } in[] = {
        {100, 1, 0}, {2100, 1, 0}, {200, 2, 1}, {2200, 2, 1}, {300, 3, 0}, {2300, 3, 1},
    };
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        nta_record r = {.ts_ms = in[i].ts};
        nta_addr_from_v4(&r.src, 0x0a000000u + (uint32_t)in[i].host);
        nta_window_set_input(w, in[i].part);
        assert_int_equal(nta_window_add(w, &r), 0);
    }
    part_seen ps = {0};
    nta_window_advance(w, 4000, note_partition, &ps); /* windows [-2000, 2000) and [0, 4000) */
    assert_int_equal(ps.n, 6);
    assert_int_equal(ps.by_src[1], 0);
    assert_int_equal(ps.by_src[2], 1);
    assert_int_equal(ps.by_src[3], -2);
    nta_window_destroy(w);

    w = nta_window_create(&sp);
    nta_record r = {.ts_ms = 500};
    nta_addr_from_v4(&r.src, 0x0a000001u);
    assert_int_equal(nta_window_add(w, &r), 0);
    ps = (part_seen){0};
    nta_window_flush(w, note_partition, &ps);
    assert_int_equal(ps.by_src[1], -1);
    nta_window_destroy(w);
}

static void test_tumbling(void **state)
{
    (void)state;
    nta_window_spec sp = make_spec("tumble", 10000, 10000);
    sp.nkeys = 1;
    sp.key[0] = NTA_F_SRC_IP;
    all_aggs(&sp);
    gen g = {.n = 3000, .t0 = 0, .t1 = 120000, .jitter = 3000, .nsrc = 20, .ndst = 30, .nport = 5};
    nta_record *r = gen_records(&g, 1);
    check_stream(&sp, r, g.n, 2000, 50);  /* some late records */
    check_stream(&sp, r, g.n, 10000, 1);  /* none late, advance per record */
    free(r);
}

static void test_sliding_divisible(void **state)
{
    (void)state;
    nta_window_spec sp = make_spec("slide60", 60000, 10000);
    sp.nkeys = 1;
    sp.key[0] = NTA_F_DST_IP;
    all_aggs(&sp);
    gen g = {.n = 3000, .t0 = 0, .t1 = 300000, .jitter = 5000, .nsrc = 50, .ndst = 15, .nport = 4};
    nta_record *r = gen_records(&g, 2);
    check_stream(&sp, r, g.n, 3000, 20);
    free(r);
}

static void test_sliding_not_divisible(void **state)
{
    (void)state;
    nta_window_spec sp = make_spec("slide10by4", 10000, 4000);
    sp.nkeys = 1;
    sp.key[0] = NTA_F_SRC_IP;
    all_aggs(&sp);
    gen g = {.n = 3000, .t0 = 0, .t1 = 100000, .jitter = 4000, .nsrc = 10, .ndst = 40, .nport = 6};
    nta_record *r = gen_records(&g, 3);
    check_stream(&sp, r, g.n, 1000, 10);
    /* Coprime size and slide: 1 ms panes. */
    sp.size_ms = 7;
    sp.slide_ms = 3;
    g = (gen){.n = 1500, .t0 = 0, .t1 = 500, .jitter = 4, .nsrc = 4, .ndst = 5, .nport = 3};
    free(r);
    r = gen_records(&g, 4);
    check_stream(&sp, r, g.n, 2, 7);
    free(r);
}

static void test_negative_timestamps(void **state)
{
    (void)state;
    nta_window_spec sp = make_spec("neg", 10000, 4000);
    sp.nkeys = 1;
    sp.key[0] = NTA_F_DST_PORT;
    all_aggs(&sp);
    gen g = {.n = 2000, .t0 = -50000, .t1 = 50000, .jitter = 3000, .nsrc = 10, .ndst = 10,
             .nport = 6};
    nta_record *r = gen_records(&g, 5);
    check_stream(&sp, r, g.n, 2500, 15);
    free(r);
    /* Entirely negative, tumbling, small panes around -1. */
    sp = make_spec("neg2", 5, 5);
    add_agg(&sp, NTA_AGG_SUM, NTA_F_BYTES);
    g = (gen){.n = 400, .t0 = -200, .t1 = -1, .jitter = 3, .nsrc = 3, .ndst = 3, .nport = 2};
    r = gen_records(&g, 6);
    check_stream(&sp, r, g.n, 4, 3);
    free(r);
}

static void test_two_field_keys(void **state)
{
    (void)state;
    nta_window_spec sp = make_spec("pair", 20000, 5000);
    sp.nkeys = 2;
    sp.key[0] = NTA_F_SRC_IP;
    sp.key[1] = NTA_F_DST_PORT;
    all_aggs(&sp);
    gen g = {.n = 3000, .t0 = 1700000000000, .t1 = 1700000100000, .jitter = 2000, .nsrc = 15,
             .ndst = 20, .nport = 4};
    nta_record *r = gen_records(&g, 7);
    check_stream(&sp, r, g.n, 3000, 25);
    /* Two numeric fields, and a pair of addresses. */
    sp.key[0] = NTA_F_PROTO;
    sp.key[1] = NTA_F_DST_PORT;
    check_stream(&sp, r, g.n, 3000, 25);
    sp.key[0] = NTA_F_DST_IP;
    sp.key[1] = NTA_F_SRC_IP;
    check_stream(&sp, r, g.n, 3000, 25);
    free(r);
}

static void test_unkeyed(void **state)
{
    (void)state;
    nta_window_spec sp = make_spec("total", 30000, 10000);
    all_aggs(&sp);
    gen g = {.n = 2000, .t0 = 0, .t1 = 200000, .jitter = 1000, .nsrc = 30, .ndst = 30, .nport = 5};
    nta_record *r = gen_records(&g, 8);
    check_stream(&sp, r, g.n, 500, 10);
    /* No aggregates at all: the count alone. */
    sp.naggs = 0;
    check_stream(&sp, r, g.n, 500, 10);
    free(r);
}

/* Every kind on every numeric field, and distinct on both addresses, with
 * hand-made records whose results are also checked literally. */
static void test_every_aggregate(void **state)
{
    (void)state;
    nta_window_spec sp = make_spec("aggs", 1000, 1000);
    sp.nkeys = 1;
    sp.key[0] = NTA_F_PROTO;
    static const nta_field numeric[] = {NTA_F_SRC_PORT, NTA_F_DST_PORT, NTA_F_PROTO,
                                        NTA_F_BYTES, NTA_F_PACKETS, NTA_F_TCP_FLAGS};
    for (size_t i = 0; i < 3; i++) {
        add_agg(&sp, NTA_AGG_SUM, numeric[i]);
        add_agg(&sp, NTA_AGG_MIN, numeric[i + 3]);
        add_agg(&sp, NTA_AGG_MAX, numeric[i]);
        add_agg(&sp, NTA_AGG_MEAN, numeric[i + 3]);
    }
    add_agg(&sp, NTA_AGG_DISTINCT, NTA_F_SRC_IP);
    add_agg(&sp, NTA_AGG_DISTINCT, NTA_F_DST_IP);
    add_agg(&sp, NTA_AGG_DISTINCT, NTA_F_TCP_FLAGS);
    assert_int_equal(sp.naggs, 15);
    gen g = {.n = 2000, .t0 = 0, .t1 = 20000, .jitter = 0, .nsrc = 200, .ndst = 300, .nport = 9};
    nta_record *r = gen_records(&g, 9);
    check_stream(&sp, r, g.n, 0, 1);
    free(r);

    /* Literal values, so that reference and engine cannot share a mistake. */
    nta_window_spec lit = make_spec("lit", 1000, 1000);
    add_agg(&lit, NTA_AGG_SUM, NTA_F_BYTES);
    add_agg(&lit, NTA_AGG_MIN, NTA_F_BYTES);
    add_agg(&lit, NTA_AGG_MAX, NTA_F_BYTES);
    add_agg(&lit, NTA_AGG_MEAN, NTA_F_BYTES);
    add_agg(&lit, NTA_AGG_DISTINCT, NTA_F_SRC_IP);
    nta_window *w = nta_window_create(&lit);
    assert_non_null(w);
    static const uint64_t bytes[] = {100, 7, 300, 7};
    static const unsigned src[] = {1, 2, 1, 3};
    for (int i = 0; i < 4; i++) {
        nta_record rec = {.ts_ms = 10 + i, .bytes = bytes[i]};
        nta_addr_from_v4(&rec.src, src[i]);
        assert_int_equal(nta_window_add(w, &rec), 0);
    }
    collector c = {.spec = &lit, .last_end = INT64_MIN, .max_end = INT64_MAX,
                   .min_end = INT64_MIN};
    assert_int_equal(nta_window_flush(w, collect, &c), 1);
    row *x = &c.got.r[0];
    assert_int_equal(x->start, 0);
    assert_int_equal(x->end, 1000);
    assert_string_equal(x->label, "");
    assert_int_equal(x->count, 4);
    assert_int_equal(x->v[0].u, 414);
    assert_int_equal(x->v[1].u, 7);
    assert_int_equal(x->v[2].u, 300);
    assert_true(fabs(x->v[3].d - 103.5) < 1e-12);
    assert_int_equal(x->v[4].u, 3);
    free(c.got.r);
    nta_window_destroy(w);
}

/* Key text: IPv4, IPv6 and numbers are rendered as nta_record_field_text
 * renders them, in key order. */
static void test_key_text(void **state)
{
    (void)state;
    nta_window_spec sp = make_spec("text", 1000, 1000);
    sp.nkeys = 2;
    sp.key[0] = NTA_F_DST_IP;
    sp.key[1] = NTA_F_TCP_FLAGS;
    nta_window *w = nta_window_create(&sp);
    assert_non_null(w);
    nta_record a = {.ts_ms = 5, .tcp_flags = 18};
    nta_addr_from_v4(&a.dst, 0xc0a80001u);
    nta_record b = {.ts_ms = 6, .tcp_flags = 2};
    assert_int_equal(nta_addr_parse(&b.dst, "2001:db8::1", 11), 0);
    assert_int_equal(nta_window_add(w, &a), 0);
    assert_int_equal(nta_window_add(w, &b), 0);
    collector c = {.spec = &sp, .last_end = INT64_MIN, .max_end = INT64_MAX,
                   .min_end = INT64_MIN};
    assert_int_equal(nta_window_flush(w, collect, &c), 2);
    qsort(c.got.r, c.got.n, sizeof *c.got.r, row_cmp);
    assert_string_equal(c.got.r[0].label, "192.168.0.1|18");
    assert_string_equal(c.got.r[1].label, "2001:db8::1|2");
    free(c.got.r);
    nta_window_destroy(w);
}

static void test_late_records(void **state)
{
    (void)state;
    nta_window_spec sp = make_spec("late", 10000, 5000);
    add_agg(&sp, NTA_AGG_SUM, NTA_F_BYTES);
    nta_window *w = nta_window_create(&sp);
    assert_non_null(w);
    collector c = {.spec = &sp, .last_end = INT64_MIN, .max_end = INT64_MAX,
                   .min_end = INT64_MIN};
    nta_record r = {.bytes = 1};
    static const int64_t first[] = {1000, 6000, 12000};
    for (int i = 0; i < 3; i++) {
        r.ts_ms = first[i];
        assert_int_equal(nta_window_add(w, &r), 0);
    }
    /* Windows ending at 5 s, 10 s and 15 s are <= 17 s: [-5,5) [0,10) [5,15). */
    c.max_end = 17000;
    assert_int_equal(nta_window_advance(w, 17000, collect, &c), 3);
    assert_int_equal(nta_window_emitted_upto(w), 15000);
    /* A watermark that passes no new window end changes nothing. */
    assert_int_equal(nta_window_advance(w, 19999, collect, &c), 0);
    assert_int_equal(nta_window_advance(w, 3000, collect, &c), 0);
    assert_int_equal(nta_window_emitted_upto(w), 15000);
    r.ts_ms = 14999;
    r.bytes = 1000;
    assert_int_equal(nta_window_add(w, &r), 1);
    r.ts_ms = -99999;
    assert_int_equal(nta_window_add(w, &r), 1);
    r.ts_ms = 15000;
    r.bytes = 10;
    assert_int_equal(nta_window_add(w, &r), 0);
    nta_window_stats st;
    nta_window_get_stats(w, &st);
    assert_int_equal(st.late, 2);
    assert_int_equal(st.added, 4);
    c.max_end = INT64_MAX;
    assert_int_equal(nta_window_flush(w, collect, &c), 2);
    /* [10,20) holds 12 s and 15 s; [15,25) holds 15 s; 14.999 s is nowhere. */
    assert_int_equal(c.got.n, 5);
    static const int64_t ends[] = {5000, 10000, 15000, 20000, 25000};
    static const uint64_t counts[] = {1, 2, 2, 2, 1};
    static const uint64_t sums[] = {1, 2, 2, 11, 10};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(c.got.r[i].end, ends[i]);
        assert_int_equal(c.got.r[i].count, counts[i]);
        assert_int_equal(c.got.r[i].v[0].u, sums[i]);
    }
    assert_int_equal(nta_window_emitted_upto(w), 25000);
    r.ts_ms = 24999;
    assert_int_equal(nta_window_add(w, &r), 1);
    free(c.got.r);
    nta_window_destroy(w);
}

/* Heavy disorder against a small allowed lateness: many records are late,
 * and the streaming result still equals the batch one over the rest. */
static void test_late_random(void **state)
{
    (void)state;
    nta_window_spec sp = make_spec("late2", 6000, 2000);
    sp.nkeys = 1;
    sp.key[0] = NTA_F_SRC_IP;
    all_aggs(&sp);
    gen g = {.n = 3000, .t0 = 0, .t1 = 60000, .jitter = 8000, .nsrc = 8, .ndst = 8, .nport = 3};
    nta_record *r = gen_records(&g, 10);
    run x = run_stream(&sp, r, g.n, 500, 3);
    size_t late = 0;
    for (size_t i = 0; i < g.n; i++)
        late += !x.use[i];
    assert_true(late > 300);
    run_free(&x);
    check_stream(&sp, r, g.n, 500, 3);
    free(r);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* 1 ms slide, records years apart: advance and flush must jump the empty
 * stretch instead of stepping through ~10^11 empty windows. */
static void test_huge_gap(void **state)
{
    (void)state;
    nta_window_spec sp = make_spec("gap", 10, 1);
    sp.nkeys = 1;
    sp.key[0] = NTA_F_SRC_IP;
    add_agg(&sp, NTA_AGG_SUM, NTA_F_BYTES);
    const int64_t year = 365LL * 24 * 3600 * 1000;
    nta_record r[6];
    memset(r, 0, sizeof r);
    static const int64_t at[] = {0, 5, 3, 0, 5, 7};
    for (int i = 0; i < 6; i++) {
        r[i].ts_ms = at[i] + (i >= 3 ? 10 * year : 0);
        r[i].bytes = (uint64_t)(i + 1);
        nta_addr_from_v4(&r[i].src, (uint32_t)(i % 2));
    }
    double t0 = now_s();
    /* Advancing a day at a time over ten years, then jumping 20 years. */
    nta_window *w = nta_window_create(&sp);
    assert_non_null(w);
    collector c = {.spec = &sp, .last_end = INT64_MIN, .min_end = INT64_MIN};
    for (int i = 0; i < 3; i++)
        assert_int_equal(nta_window_add(w, &r[i]), 0);
    for (int64_t wm = 0; wm < 10 * year; wm += 24LL * 3600 * 1000) {
        c.max_end = wm;
        nta_window_advance(w, wm, collect, &c);
    }
    for (int i = 3; i < 6; i++)
        assert_int_equal(nta_window_add(w, &r[i]), 0);
    c.max_end = 30 * year;
    nta_window_advance(w, 30 * year, collect, &c);
    nta_window_stats st;
    nta_window_get_stats(w, &st);
    assert_int_equal(st.open_panes, 0);
    nta_window_destroy(w);
    /* Stepping through the empty windows would take hours; the bound is loose
     * only so that a loaded machine or valgrind does not fail it. */
    double dt = now_s() - t0;
    if (dt > 5.0)
        fail_msg("advancing over the gap took %.3f s", dt);

    int use[6] = {1, 1, 1, 1, 1, 1}, other[6] = {0};
    char labels[6][LABEL_MAX];
    for (int i = 0; i < 6; i++)
        label_of(&sp, &r[i], labels[i]);
    rows exp = reference(&sp, r, use, labels, other, 6);
    compare_rows(&sp, &c.got, &exp);
    free(exp.r);
    free(c.got.r);

    /* The same through flush alone. */
    t0 = now_s();
    check_stream(&sp, r, 6, 0, 1000);
    assert_true(now_s() - t0 < 5.0);
}

static void test_flush(void **state)
{
    (void)state;
    nta_window_spec sp = make_spec("flush", 60000, 10000);
    sp.nkeys = 1;
    sp.key[0] = NTA_F_SRC_IP;
    all_aggs(&sp);
    gen g = {.n = 2000, .t0 = 0, .t1 = 100000, .jitter = 0, .nsrc = 40, .ndst = 40, .nport = 5};
    nta_record *r = gen_records(&g, 11);
    /* No advance at all: everything comes out of flush. */
    check_stream(&sp, r, g.n, 0, g.n + 1);
    free(r);
}

/* The overflow model, computed independently: per pane (gcd-long slice of
 * time), the first max_keys distinct keys to arrive are kept and every later
 * new key's records go to "(other)". */
static void overflow_labels(const nta_window_spec *sp, const nta_record *recs, run *x,
                            size_t n)
{
    int64_t g = t_gcd(sp->size_ms, sp->slide_ms);
    size_t *kept = calloc(n, sizeof *kept); /* indices of first records of kept keys */
    assert_non_null(kept);
    size_t nkept = 0;
    for (size_t i = 0; i < n; i++) {
        if (!x->use[i])
            continue;
        int64_t pane = t_floor_div(recs[i].ts_ms, g);
        size_t in_pane = 0;
        int found = 0;
        for (size_t j = 0; j < nkept && !found; j++) {
            if (t_floor_div(recs[kept[j]].ts_ms, g) != pane)
                continue;
            in_pane++;
            found = strcmp(x->labels[kept[j]], x->labels[i]) == 0;
        }
        if (found)
            continue;
        if (in_pane < sp->max_keys) {
            kept[nkept++] = i;
        } else {
            other_label(sp, x->labels[i]);
            x->is_other[i] = 1;
        }
    }
    free(kept);
}

static void check_overflow(const nta_window_spec *sp, const nta_record *r, size_t n)
{
    run x = run_stream(sp, r, n, 1000, 10);
    overflow_labels(sp, r, &x, n);
    uint64_t overflowed = 0;
    for (size_t i = 0; i < n; i++)
        overflowed += (uint64_t)x.is_other[i];
    assert_true(overflowed > n / 4);
    assert_int_equal(x.end.overflow, overflowed);
    rows exp = reference(sp, r, x.use, x.labels, x.is_other, n);
    compare_rows(sp, &x.got, &exp);
    check_sketches(sp, r, x.use, x.labels, n, &x.got);
    assert_int_equal(x.end.open_panes, 0);
    free(exp.r);
    run_free(&x);
}

static void test_overflow(void **state)
{
    (void)state;
    nta_window_spec sp = make_spec("over", 10000, 10000);
    sp.nkeys = 1;
    sp.key[0] = NTA_F_SRC_IP;
    sp.max_keys = 4;
    all_aggs(&sp);
    gen g = {.n = 2000, .t0 = 0, .t1 = 60000, .jitter = 500, .nsrc = 30, .ndst = 10, .nport = 3};
    nta_record *r = gen_records(&g, 12);
    check_overflow(&sp, r, g.n);
    /* Sliding: "(other)" merges across the panes of a window like any key,
     * and a key kept in one pane may overflow in another. */
    sp.size_ms = 10000;
    sp.slide_ms = 4000;
    sp.max_keys = 3;
    sp.nkeys = 2;
    sp.key[1] = NTA_F_DST_PORT;
    check_overflow(&sp, r, g.n);
    /* Sketches of "(other)" merge like any key's. */
    sp.naggs = 0;
    sketch_aggs(&sp);
    check_overflow(&sp, r, g.n);
    free(r);

    /* Totals survive: the sum over all results of a window equals the
     * unkeyed total, whatever went to "(other)". */
    nta_window_spec tot = make_spec("tot", 10000, 10000);
    add_agg(&tot, NTA_AGG_SUM, NTA_F_BYTES);
    nta_window_spec one = tot;
    one.nkeys = 1;
    one.key[0] = NTA_F_SRC_IP;
    one.max_keys = 1;
    nta_window *wt = nta_window_create(&tot), *wo = nta_window_create(&one);
    assert_non_null(wt);
    assert_non_null(wo);
    g = (gen){.n = 500, .t0 = 0, .t1 = 9999, .jitter = 0, .nsrc = 50, .ndst = 5, .nport = 2};
    r = gen_records(&g, 13);
    for (size_t i = 0; i < g.n; i++) {
        assert_int_equal(nta_window_add(wt, &r[i]), 0);
        assert_int_equal(nta_window_add(wo, &r[i]), 0);
    }
    collector ct = {.spec = &tot, .last_end = INT64_MIN, .max_end = INT64_MAX,
                    .min_end = INT64_MIN};
    collector co = {.spec = &one, .last_end = INT64_MIN, .max_end = INT64_MAX,
                    .min_end = INT64_MIN};
    assert_int_equal(nta_window_flush(wt, collect, &ct), 1);
    assert_int_equal(nta_window_flush(wo, collect, &co), 2);
    uint64_t cnt = 0, sum = 0;
    for (size_t i = 0; i < co.got.n; i++) {
        cnt += co.got.r[i].count;
        sum += co.got.r[i].v[0].u;
    }
    assert_int_equal(cnt, ct.got.r[0].count);
    assert_int_equal(sum, ct.got.r[0].v[0].u);
    qsort(co.got.r, co.got.n, sizeof *co.got.r, row_cmp);
    assert_string_equal(co.got.r[0].label, "(other)");
    assert_int_equal(co.got.r[0].is_other, 1);
    free(ct.got.r);
    free(co.got.r);
    free(r);
    nta_window_destroy(wt);
    nta_window_destroy(wo);

    /* A single overflowing record still makes its "(other)" result. */
    one.nkeys = 2;
    one.key[1] = NTA_F_PROTO;
    wo = nta_window_create(&one);
    assert_non_null(wo);
    nta_record a = {.ts_ms = 1, .bytes = 5, .proto = 6}, b = {.ts_ms = 2, .bytes = 7, .proto = 17};
    nta_addr_from_v4(&a.src, 0x0a000001u);
    b.src = a.src;
    assert_int_equal(nta_window_add(wo, &a), 0);
    assert_int_equal(nta_window_add(wo, &a), 0);
    assert_int_equal(nta_window_add(wo, &b), 0);
    co = (collector){.spec = &one, .last_end = INT64_MIN, .max_end = INT64_MAX,
                     .min_end = INT64_MIN};
    assert_int_equal(nta_window_flush(wo, collect, &co), 2);
    qsort(co.got.r, co.got.n, sizeof *co.got.r, row_cmp);
    assert_string_equal(co.got.r[0].label, "(other)|(other)");
    assert_int_equal(co.got.r[0].is_other, 1);
    assert_int_equal(co.got.r[0].count, 1);
    assert_int_equal(co.got.r[0].v[0].u, 7);
    assert_string_equal(co.got.r[1].label, "10.0.0.1|6");
    assert_int_equal(co.got.r[1].is_other, 0);
    assert_int_equal(co.got.r[1].count, 2);
    assert_int_equal(co.got.r[1].v[0].u, 10);
    nta_window_stats st;
    nta_window_get_stats(wo, &st);
    assert_int_equal(st.overflow, 1);
    free(co.got.r);
    nta_window_destroy(wo);
}

/* Distinct counts large enough for dense sketches, merged across panes. */
static void test_distinct_dense(void **state)
{
    (void)state;
    nta_window_spec sp = make_spec("dense", 30000, 10000);
    sp.nkeys = 1;
    sp.key[0] = NTA_F_PROTO;
    add_agg(&sp, NTA_AGG_DISTINCT, NTA_F_DST_IP);
    add_agg(&sp, NTA_AGG_DISTINCT, NTA_F_SRC_PORT);
    gen g = {.n = 20000, .t0 = 0, .t1 = 60000, .jitter = 0, .nsrc = 10, .ndst = 50000,
             .nport = 2};
    nta_record *r = gen_records(&g, 14);
    for (size_t i = 0; i < g.n; i++)
        nta_addr_from_v4(&r[i].dst, (uint32_t)(rnd() % 6000 + (uint32_t)(r[i].ts_ms / 100) * 7));
    check_stream(&sp, r, g.n, 0, 100);
    free(r);
}

/* Panes go as soon as no window needs them; nothing stays after flush. */
static void test_pane_freeing(void **state)
{
    (void)state;
    nta_window_spec sp = make_spec("free", 60000, 10000);
    sp.nkeys = 1;
    sp.key[0] = NTA_F_SRC_IP;
    add_agg(&sp, NTA_AGG_SUM, NTA_F_BYTES);
    add_agg(&sp, NTA_AGG_DISTINCT, NTA_F_DST_PORT);
    nta_window *w = nta_window_create(&sp);
    assert_non_null(w);
    nta_window_stats st;
    nta_window_get_stats(w, &st);
    size_t empty_bytes = st.bytes;
    assert_true(empty_bytes > 0);
    collector c = {.spec = &sp, .last_end = INT64_MIN, .min_end = INT64_MIN};
    gen g = {.n = 60000, .t0 = 0, .t1 = 600000, .jitter = 0, .nsrc = 100, .ndst = 10,
             .nport = 20};
    nta_record *r = gen_records(&g, 15);
    size_t max_panes = 0, max_keys = 0;
    for (size_t i = 0; i < g.n; i++) {
        assert_int_equal(nta_window_add(w, &r[i]), 0);
        c.max_end = r[i].ts_ms;
        nta_window_advance(w, r[i].ts_ms, collect, &c);
        nta_window_get_stats(w, &st);
        max_panes = st.open_panes > max_panes ? st.open_panes : max_panes;
        max_keys = st.open_keys > max_keys ? st.open_keys : max_keys;
    }
    /* A 60 s window of 10 s panes needs the 6 panes it spans, no more. */
    assert_int_equal(max_panes, 6);
    assert_true(max_keys <= 6 * 100);
    assert_true(st.bytes > empty_bytes);
    assert_int_equal(st.open_panes, 6);
    c.max_end = INT64_MAX;
    nta_window_flush(w, collect, &c);
    nta_window_get_stats(w, &st);
    assert_int_equal(st.open_panes, 0);
    assert_int_equal(st.open_keys, 0);
    assert_int_equal(st.bytes, empty_bytes);
    assert_int_equal(st.added, g.n);
    assert_int_equal(st.results, c.got.n);
    /* A window still works after flush. */
    nta_record late = r[0];
    assert_int_equal(nta_window_add(w, &late), 1);
    late.ts_ms = 10 * 600000;
    assert_int_equal(nta_window_add(w, &late), 0);
    nta_window_get_stats(w, &st);
    assert_int_equal(st.open_panes, 1);
    assert_int_equal(st.open_keys, 1);
    free(c.got.r);
    free(r);
    nta_window_destroy(w);
}

/* Every result of a window as output.c writes it, in emission order. */
typedef struct texts {
    char **v;
    size_t n, cap;
    nta_buf b;
} texts;

static void collect_text(void *ctx, const nta_result *res)
{
    texts *t = ctx;
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 256;
        t->v = realloc(t->v, t->cap * sizeof *t->v);
        assert_non_null(t->v);
    }
    nta_buf_reset(&t->b);
    nta_output_result_json(&t->b, res);
    t->v[t->n] = strdup(nta_buf_cstr(&t->b));
    assert_non_null(t->v[t->n]);
    t->n++;
}

static void texts_free(texts *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i]);
    free(t->v);
    nta_buf_free(&t->b);
}

/* A sliding window closed as records arrive merges most of its panes ahead,
 * a few entries per added record, and its newest pane in the pass that
 * emits; the same records all added first and flushed at the end merge
 * every pane at the close. Both must give the same results in the same
 * order, bit for bit: dense distinct counters, top-k lists and quantiles
 * included. A gap in the input leaves windows whose newest panes are empty
 * (their last pane was final, and merged, early) and makes the watermark
 * jump past windows without records. */
static void test_merge_ahead_exact(void **state)
{
    (void)state;
    nta_window_spec sp = make_spec("ahead", 30000, 5000);
    sp.nkeys = 1;
    sp.key[0] = NTA_F_SRC_IP;
    add_agg(&sp, NTA_AGG_SUM, NTA_F_BYTES);
    add_agg(&sp, NTA_AGG_DISTINCT, NTA_F_DST_PORT);
    add_agg(&sp, NTA_AGG_DISTINCT, NTA_F_DST_IP);
    add_topk(&sp, NTA_F_DST_IP, NTA_F_BYTES, 5, 16);
    add_quantiles(&sp, NTA_F_BYTES, 3, some_q);
    gen g = {.n = 60000, .t0 = 0, .t1 = 300000, .jitter = 0, .nsrc = 60, .ndst = 5000,
             .nport = 3000};
    nta_record *r = gen_records(&g, 21);
    skew_dst(r, g.n, 5000);
    for (size_t i = 0; i < g.n; i++)
        if (r[i].ts_ms >= 100000)
            r[i].ts_ms += 40000;
    texts live = {0}, flushed = {0};
    nta_window *a = nta_window_create(&sp), *b = nta_window_create(&sp);
    assert_non_null(a);
    assert_non_null(b);
    for (size_t i = 0; i < g.n; i++) {
        assert_int_equal(nta_window_add(a, &r[i]), 0);
        assert_int_equal(nta_window_add(b, &r[i]), 0);
        nta_window_advance(a, r[i].ts_ms, collect_text, &live);
    }
    nta_window_flush(a, collect_text, &live);
    nta_window_flush(b, collect_text, &flushed);
    assert_true(live.n > 1000);
    assert_int_equal(live.n, flushed.n);
    for (size_t i = 0; i < live.n; i++)
        assert_string_equal(live.v[i], flushed.v[i]);
    texts_free(&live);
    texts_free(&flushed);
    nta_window_destroy(a);
    nta_window_destroy(b);
    free(r);
}

/* Random specs against random streams. */
static void test_random_specs(void **state)
{
    (void)state;
    static const nta_field keys[] = {NTA_F_SRC_IP, NTA_F_DST_IP, NTA_F_DST_PORT, NTA_F_PROTO};
    for (uint64_t seed = 100; seed < 140; seed++) {
        rng_state = seed;
        int64_t slide = rnd_range(1, 50);
        int64_t size = slide * rnd_range(1, 4) + (rnd() & 1 ? rnd_range(0, slide - 1) : 0);
        nta_window_spec sp = make_spec("rand", size, slide);
        sp.nkeys = (int)rnd_range(0, 2);
        for (int i = 0; i < sp.nkeys; i++)
            sp.key[i] = keys[rnd() % 4];
        all_aggs(&sp);
        if (seed % 2)
            sketch_aggs(&sp);
        int64_t t0 = rnd_range(-3000, 1000);
        int64_t lateness = rnd_range(0, 20);
        size_t every = (size_t)rnd_range(1, 30);
        gen g = {.n = 800, .t0 = t0, .t1 = t0 + rnd_range(100, 2000), .jitter = rnd_range(0, 30),
                 .nsrc = 6, .ndst = 6, .nport = 3};
        nta_record *r = gen_records(&g, seed);
        check_stream(&sp, r, g.n, lateness, every);
        free(r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agg_names),
        cmocka_unit_test(test_spec_check),
        cmocka_unit_test(test_last_end),
        cmocka_unit_test(test_tumbling),
        cmocka_unit_test(test_partition_tags),
        cmocka_unit_test(test_sliding_divisible),
        cmocka_unit_test(test_sliding_not_divisible),
        cmocka_unit_test(test_negative_timestamps),
        cmocka_unit_test(test_two_field_keys),
        cmocka_unit_test(test_unkeyed),
        cmocka_unit_test(test_every_aggregate),
        cmocka_unit_test(test_key_text),
        cmocka_unit_test(test_late_records),
        cmocka_unit_test(test_late_random),
        cmocka_unit_test(test_huge_gap),
        cmocka_unit_test(test_flush),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_distinct_dense),
        cmocka_unit_test(test_pane_freeing),
        cmocka_unit_test(test_merge_ahead_exact),
        cmocka_unit_test(test_random_specs),
        cmocka_unit_test(test_result_names),
        cmocka_unit_test(test_sketch_windows),
        cmocka_unit_test(test_sketch_literal),
        cmocka_unit_test(test_sketch_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
