#include "generator.h"

#include <math.h>
#include <stdlib.h>

struct nta_gen {
    nta_script *script;
    const nta_gen_conf *conf;
    int fast;
    int64_t start_us;  /* wall clock at creation */
    int64_t start_ms;  /* event time of record 0 */
    int64_t emitted;
    double step_ms;
};

nta_gen *nta_gen_create(nta_script *script, const nta_gen_conf *conf, int fast, int64_t now_us)
{
    nta_gen *g = calloc(1, sizeof *g);
    if (g == NULL)
        return NULL;
    g->script = script;
    g->conf = conf;
    g->fast = fast;
    g->start_us = now_us;
    g->start_ms = conf->start_ms != NTA_TS_NONE ? conf->start_ms : now_us / 1000;
    g->step_ms = 1000.0 / conf->rate;
    return g;
}

void nta_gen_destroy(nta_gen *g) { free(g); }

static int64_t due_total(const nta_gen *g, int64_t now_us)
{
    if (g->fast)
        return INT64_MAX;
    double due = (double)(now_us - g->start_us) * g->conf->rate / 1e6;
    return due > 9e18 ? INT64_MAX : (int64_t)due;
}

long nta_gen_step(nta_gen *g, int64_t now_us, long max_batch, nta_gen_emit_fn fn, void *ctx,
                  char *err, size_t errlen)
{
    int64_t due = due_total(g, now_us);
    if (g->conf->count >= 0 && due > g->conf->count)
        due = g->conf->count;
    int64_t n = due - g->emitted;
    if (n <= 0)
        return 0;
    if (n > max_batch)
        n = max_batch;
    double t0 = (double)g->start_ms + (double)g->emitted * g->step_ms;
    long got = nta_script_generate(g->script, t0, g->step_ms, (long)n, fn, ctx, err, errlen);
    if (got < 0)
        return -1;
    g->emitted += n;
    return got;
}

int nta_gen_finished(const nta_gen *g)
{
    return g->conf->count >= 0 && g->emitted >= g->conf->count;
}

int64_t nta_gen_emitted(const nta_gen *g) { return g->emitted; }

double nta_gen_achieved_rate(const nta_gen *g, int64_t now_us)
{
    double secs = (double)(now_us - g->start_us) / 1e6;
    return secs > 0 ? (double)g->emitted / secs : 0;
}

int64_t nta_gen_wait_us(const nta_gen *g, int64_t now_us)
{
    if (g->fast)
        return 0;
    double next_at = (double)(g->emitted + 1) * 1e6 / g->conf->rate;
    double wait = next_at - (double)(now_us - g->start_us);
    return wait > 0 ? (int64_t)ceil(wait) : 0;
}

static void put_addr(nta_buf *b, const nta_addr *a)
{
    char t[NTA_FIELD_TEXT_MAX];
    nta_buf_put(b, t, nta_addr_format(a, t));
}

void nta_gen_encode(nta_buf *b, const nta_record *r, nta_gen_format f)
{
    switch (f) {
    case NTA_GEN_CSV:
        put_addr(b, &r->src);
        nta_buf_putc(b, ',');
        put_addr(b, &r->dst);
        nta_buf_putc(b, ',');
        nta_buf_u64(b, r->bytes);
        return;
    case NTA_GEN_GOFLOW2:
        /* goflow2 v2 JSON: times in ns; sampling_rate 1 keeps counters exact. */
        nta_buf_puts(b, "{\"type\":\"IPFIX\",\"time_received_ns\":");
        nta_buf_i64(b, r->ts_ms * 1000000);
        nta_buf_puts(b, ",\"sequence_num\":1,\"sampling_rate\":1,\"sampler_address\":\"192.0.2.1\""
                        ",\"time_flow_start_ns\":");
        nta_buf_i64(b, r->ts_ms * 1000000);
        nta_buf_puts(b, ",\"time_flow_end_ns\":");
        nta_buf_i64(b, r->ts_ms * 1000000);
        nta_buf_puts(b, ",\"bytes\":");
        nta_buf_u64(b, r->bytes);
        nta_buf_puts(b, ",\"packets\":");
        nta_buf_u64(b, r->packets);
        nta_buf_puts(b, ",\"src_addr\":\"");
        put_addr(b, &r->src);
        nta_buf_puts(b, "\",\"dst_addr\":\"");
        put_addr(b, &r->dst);
        nta_buf_puts(b, "\",\"etype\":\"IPv4\",\"proto\":");
        nta_buf_u64(b, r->proto);
        nta_buf_puts(b, ",\"src_port\":");
        nta_buf_u64(b, r->src_port);
        nta_buf_puts(b, ",\"dst_port\":");
        nta_buf_u64(b, r->dst_port);
        nta_buf_puts(b, ",\"tcp_flags\":");
        nta_buf_u64(b, r->tcp_flags);
        nta_buf_putc(b, '}');
        return;
    case NTA_GEN_JSON:
        break;
    }
    nta_buf_puts(b, "{\"ts\":");
    nta_buf_i64(b, r->ts_ms);
    nta_buf_puts(b, ",\"src_ip\":\"");
    put_addr(b, &r->src);
    nta_buf_puts(b, "\",\"dst_ip\":\"");
    put_addr(b, &r->dst);
    nta_buf_puts(b, "\",\"src_port\":");
    nta_buf_u64(b, r->src_port);
    nta_buf_puts(b, ",\"dst_port\":");
    nta_buf_u64(b, r->dst_port);
    nta_buf_puts(b, ",\"proto\":");
    nta_buf_u64(b, r->proto);
    nta_buf_puts(b, ",\"bytes\":");
    nta_buf_u64(b, r->bytes);
    nta_buf_puts(b, ",\"packets\":");
    nta_buf_u64(b, r->packets);
    nta_buf_puts(b, ",\"tcp_flags\":");
    nta_buf_u64(b, r->tcp_flags);
    nta_buf_putc(b, '}');
}
