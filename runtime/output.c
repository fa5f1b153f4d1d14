#include "output.h"

#include <math.h>
#include <string.h>

/* ,"<name>": */
static void put_name(nta_buf *b, const nta_agg_spec *a, int i)
{
    char name[64];
    nta_agg_result_name(a, i, name, sizeof name);
    nta_buf_puts(b, ",\"");
    nta_buf_puts(b, name);
    nta_buf_puts(b, "\":");
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

/* "p50_bytes":..., one member per quantile. */
static void quantiles_json(nta_buf *b, const nta_agg_spec *a, const nta_qsketch *q)
{
    for (int i = 0; i < a->nq; i++) {
        put_name(b, a, i);
        put_double(b, q != NULL ? nta_qsketch_quantile(q, a->q[i]) : 0.0);
    }
}

void nta_output_result_json(nta_buf *b, const nta_result *r)
{
    const nta_window_spec *s = r->spec;
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
    for (int i = 0; i < s->nkeys; i++) {
        if (i)
            nta_buf_putc(b, ',');
        nta_buf_json_str(b, nta_field_name(s->key[i]), strlen(nta_field_name(s->key[i])));
        nta_buf_putc(b, ':');
        nta_buf_json_str(b, r->key_text[i], strlen(r->key_text[i]));
    }
    nta_buf_puts(b, "},\"count\":");
    nta_buf_u64(b, r->count);
    for (int i = 0; i < s->naggs; i++) {
        const nta_agg_spec *a = &s->aggs[i];
        if (a->kind == NTA_AGG_QUANTILE) {
            quantiles_json(b, a, r->values[i].qs);
            continue;
        }
        put_name(b, a, 0);
        switch (a->kind) {
        case NTA_AGG_MEAN:
            /* A mean over a result always has count >= 1, so it is finite. */
            put_double(b, r->values[i].d);
            break;
        case NTA_AGG_TOPK: topk_json(b, a, r->values[i].topk); break;
        default: nta_buf_u64(b, r->values[i].u); break;
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
