#include "output.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The text of a result that does not depend on its key or values: the head
 * ({"type":"window",...,"key":{), the key field names and the aggregate
 * names. A window close emits thousands of results in a row that share all
 * of it, so it is built once per close (two date conversions and a name
 * format per aggregate would otherwise cost more than the rest of a
 * result). It is a function of the spec's name, keys and aggregates and of
 * the window's bounds only, and all of them are compared before reuse. */
typedef struct fixed_text {
    int valid;
    char name[NTA_WINDOW_NAME_MAX];
    int nkeys, naggs;
    nta_field key[NTA_WINDOW_MAX_KEYS];
    nta_agg_spec aggs[NTA_WINDOW_MAX_AGGS];
    int64_t start, end;
    nta_buf text;
    size_t head_end;
    size_t key_at[NTA_WINDOW_MAX_KEYS + 1]; /* key name i is [key_at[i], key_at[i + 1]) */
    /* Name q of aggregate j (quantile q, or 0) is [name_at[j][q], name_end[j][q]). */
    size_t name_at[NTA_WINDOW_MAX_AGGS][NTA_AGG_MAX_QUANTILES];
    size_t name_end[NTA_WINDOW_MAX_AGGS][NTA_AGG_MAX_QUANTILES];
} fixed_text;

/* One per thread, as results of different pipelines could be formatted on
 * different threads. */
static _Thread_local fixed_text fixed;

static int fixed_matches(const fixed_text *f, const nta_result *r)
{
    const nta_window_spec *s = r->spec;
    return f->valid && f->start == r->start_ms && f->end == r->end_ms &&
           f->nkeys == s->nkeys && f->naggs == s->naggs && strcmp(f->name, s->name) == 0 &&
           memcmp(f->key, s->key, sizeof s->key[0] * (size_t)s->nkeys) == 0 &&
           memcmp(f->aggs, s->aggs, sizeof s->aggs[0] * (size_t)s->naggs) == 0;
}

static void fixed_build(fixed_text *f, const nta_result *r)
{
    const nta_window_spec *s = r->spec;
    nta_buf *b = &f->text;
    nta_buf_reset(b);
    nta_buf_puts(b, "{\"type\":\"window\",\"window\":");
    nta_buf_json_str(b, s->name, strlen(s->name));
    nta_buf_puts(b, ",\"start\":");
    nta_buf_i64(b, r->start_ms);
    nta_buf_puts(b, ",\"end\":");
    nta_buf_i64(b, r->end_ms);
    nta_buf_puts(b, ",\"start_time\":\"");
    nta_buf_rfc3339(b, r->start_ms);
    nta_buf_puts(b, "\",\"end_time\":\"");
    nta_buf_rfc3339(b, r->end_ms);
    nta_buf_puts(b, "\",\"key\":{");
    f->head_end = b->len;
    for (int i = 0; i < s->nkeys; i++) {
        const char *fname = nta_field_name(s->key[i]);
        f->key_at[i] = b->len;
        if (i)
            nta_buf_putc(b, ',');
        nta_buf_json_str(b, fname, strlen(fname));
        nta_buf_putc(b, ':');
    }
    f->key_at[s->nkeys] = b->len;
    for (int j = 0; j < s->naggs; j++) {
        const nta_agg_spec *a = &s->aggs[j];
        int nnames = a->kind == NTA_AGG_QUANTILE ? a->nq : 1;
        for (int q = 0; q < nnames; q++) {
            char name[64];
            nta_agg_result_name(a, q, name, sizeof name);
            f->name_at[j][q] = b->len;
            nta_buf_puts(b, ",\"");
            nta_buf_puts(b, name);
            nta_buf_puts(b, "\":");
            f->name_end[j][q] = b->len;
        }
    }
    snprintf(f->name, sizeof f->name, "%s", s->name);
    f->nkeys = s->nkeys;
    f->naggs = s->naggs;
    memcpy(f->key, s->key, sizeof s->key[0] * (size_t)s->nkeys);
    memcpy(f->aggs, s->aggs, sizeof s->aggs[0] * (size_t)s->naggs);
    f->start = r->start_ms;
    f->end = r->end_ms;
    f->valid = 1;
}

/* ,"<name>": of quantile q (or 0) of aggregate j */
static void put_name(nta_buf *b, const fixed_text *f, int j, int q)
{
    nta_buf_put(b, f->text.data + f->name_at[j][q], f->name_end[j][q] - f->name_at[j][q]);
}

/* %.17g round-trips a double; JSON has no NaN or infinity. */
static void put_double(nta_buf *b, double d)
{
    nta_buf_printf(b, "%.17g", isfinite(d) ? d : 0.0);
}

/* [{"key":"10.0.0.1","value":123,"share":0.12,"error":5},...], largest
 * first: share is value / the window's total weight. */
static void topk_json(nta_buf *b, const nta_agg_spec *a, const nta_topk *t)
{
    nta_topk_item items[NTA_TOPK_MAX_K];
    size_t n = t != NULL ? nta_topk_items(t, items, (size_t)a->k) : 0;
    double total = t != NULL ? (double)nta_topk_total(t) : 0;
    nta_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        char text[NTA_FIELD_TEXT_MAX];
        size_t len = nta_agg_item_text(a->field, &items[i], text);
        nta_buf_puts(b, i ? ",{\"key\":" : "{\"key\":");
        nta_buf_json_str(b, text, len);
        nta_buf_puts(b, ",\"value\":");
        nta_buf_u64(b, items[i].value);
        nta_buf_puts(b, ",\"share\":");
        put_double(b, total > 0 ? (double)items[i].value / total : 0.0);
        nta_buf_puts(b, ",\"error\":");
        nta_buf_u64(b, items[i].error);
        nta_buf_putc(b, '}');
    }
    nta_buf_putc(b, ']');
}

void nta_output_result_json(nta_buf *b, const nta_result *r)
{
    const nta_window_spec *s = r->spec;
    fixed_text *f = &fixed;
    if (!fixed_matches(f, r))
        fixed_build(f, r);
    nta_buf_put(b, f->text.data, f->head_end);
    for (int i = 0; i < s->nkeys; i++) {
        nta_buf_put(b, f->text.data + f->key_at[i], f->key_at[i + 1] - f->key_at[i]);
        nta_buf_json_str(b, r->key_text[i], strlen(r->key_text[i]));
    }
    nta_buf_puts(b, "},\"count\":");
    nta_buf_u64(b, r->count);
    for (int j = 0; j < s->naggs; j++) {
        const nta_agg_spec *a = &s->aggs[j];
        if (a->kind == NTA_AGG_QUANTILE) {
            /* "p50_bytes":..., one member per quantile. */
            const nta_qsketch *q = r->values[j].qs;
            for (int i = 0; i < a->nq; i++) {
                put_name(b, f, j, i);
                put_double(b, q != NULL ? nta_qsketch_quantile(q, a->q[i]) : 0.0);
            }
            continue;
        }
        put_name(b, f, j, 0);
        switch (a->kind) {
        case NTA_AGG_MEAN:
            /* A mean over a result always has count >= 1, so it is finite. */
            put_double(b, r->values[j].d);
            break;
        case NTA_AGG_TOPK: topk_json(b, a, r->values[j].topk); break;
        default: nta_buf_u64(b, r->values[j].u); break;
        }
    }
    nta_buf_putc(b, '}');
}

void nta_output_result_key(nta_buf *b, const nta_result *r)
{
    nta_buf_puts(b, r->spec->name);
    for (int i = 0; i < r->spec->nkeys; i++) {
        nta_buf_putc(b, '|');
        nta_buf_puts(b, r->key_text[i]);
    }
}
