#include "output.h"

#include <math.h>
#include <string.h>

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
        nta_buf_puts(b, ",\"");
        nta_buf_puts(b, nta_agg_kind_name(s->aggs[i].kind));
        nta_buf_putc(b, '_');
        nta_buf_puts(b, nta_field_name(s->aggs[i].field));
        nta_buf_puts(b, "\":");
        if (s->aggs[i].kind == NTA_AGG_MEAN) {
            double d = r->values[i].d;
            /* %.17g round-trips a double; JSON has no NaN, and a mean over a
             * result always has count >= 1, so d is finite. */
            nta_buf_printf(b, "%.17g", isfinite(d) ? d : 0.0);
        } else {
            nta_buf_u64(b, r->values[i].u);
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
