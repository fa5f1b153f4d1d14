/* window_bench: the window engine alone, on the five windows of
 * bench/pipeline5.lua, without Kafka, decoding or the dashboard.
 *
 *   nta-run --fast scripts/gen_traffic.lua count=8000000 rate=200000 \
 *       start=1700000000000 format=json > gen.jsonl
 *   cc -O2 -Iruntime bench/window_bench.c build/libnta_core.a \
 *       $(pkg-config --libs luajit rdkafka libxxhash) -lm -lpthread -o window_bench
 *   ./window_bench gen.jsonl [LATENESS_MS] > closes.txt
 *
 * Decodes every record first (not timed), then adds each to the five windows
 * in file order, advancing each window's watermark to (newest time seen -
 * LATENESS_MS, default 1000) whenever the newest time grows, as the pipeline
 * does, and formats every result with output.c. Times are CPU time of the
 * thread. Prints one line per close that emits (window, results, ms of the
 * close, ms until its first result), then ns per record over the whole feed
 * (closes included) and the time of the final flush. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decode.h"
#include "output.h"
#include "window.h"

#define NWIN 5

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef struct sink {
    nta_buf key, val;
    size_t results;
    double first; /* time of the first result of the current close, 0 none */
} sink;

static void emit(void *ctx, const nta_result *r)
{
    sink *s = ctx;
    if (s->first == 0)
        s->first = cpu_s();
    nta_buf_reset(&s->key);
    nta_buf_reset(&s->val);
    nta_output_result_key(&s->key, r);
    nta_output_result_json(&s->val, r);
    s->results++;
}

static nta_window_spec spec(const char *name, int64_t size, int64_t slide, nta_field key)
{
    nta_window_spec sp;
    memset(&sp, 0, sizeof sp);
    snprintf(sp.name, sizeof sp.name, "%s", name);
    sp.size_ms = size;
    sp.slide_ms = slide;
    sp.nkeys = key != NTA_F_NONE;
    sp.key[0] = key;
    sp.max_keys = 100000;
    return sp;
}

static void agg(nta_window_spec *sp, nta_agg_kind kind, nta_field f)
{
    sp->aggs[sp->naggs].kind = kind;
    sp->aggs[sp->naggs].field = f;
    sp->naggs++;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: window_bench RECORDS.jsonl [LATENESS_MS]\n");
        return 2;
    }
    int64_t lateness = argc > 2 ? atoll(argv[2]) : 1000;
    FILE *f = fopen(argv[1], "r");
    if (f == NULL) {
        perror(argv[1]);
        return 1;
    }
    size_t n = 0, cap = 1 << 20;
    nta_record *recs = malloc(cap * sizeof *recs);
    nta_decoder dec;
    nta_decoder_init(&dec, NTA_FMT_JSON);
    char *line = NULL;
    size_t linecap = 0;
    ssize_t len;
    while (recs != NULL && (len = getline(&line, &linecap, f)) > 0) {
        if (n == cap)
            recs = realloc(recs, (cap *= 2) * sizeof *recs);
        if (recs != NULL && nta_decode(&dec, line, (size_t)len - 1, &recs[n]) == NTA_DEC_OK)
            n++;
    }
    free(line);
    fclose(f);
    if (recs == NULL) {
        fprintf(stderr, "window_bench: out of memory\n");
        return 1;
    }

    /* bench/pipeline5.lua */
    nta_window_spec sp[NWIN];
    sp[0] = spec("by_src", 60000, 10000, NTA_F_SRC_IP);
    agg(&sp[0], NTA_AGG_SUM, NTA_F_BYTES);
    agg(&sp[0], NTA_AGG_SUM, NTA_F_PACKETS);
    sp[1] = spec("fanout", 30000, 5000, NTA_F_SRC_IP);
    agg(&sp[1], NTA_AGG_DISTINCT, NTA_F_DST_PORT);
    sp[2] = spec("traffic", 10000, 10000, NTA_F_NONE);
    agg(&sp[2], NTA_AGG_SUM, NTA_F_BYTES);
    sp[3] = spec("by_proto", 10000, 10000, NTA_F_PROTO);
    agg(&sp[3], NTA_AGG_SUM, NTA_F_BYTES);
    agg(&sp[3], NTA_AGG_SUM, NTA_F_PACKETS);
    sp[4] = spec("by_dst", 10000, 10000, NTA_F_DST_IP);
    agg(&sp[4], NTA_AGG_SUM, NTA_F_BYTES);
    agg(&sp[4], NTA_AGG_DISTINCT, NTA_F_SRC_IP);
    nta_window *w[NWIN];
    for (int i = 0; i < NWIN; i++)
        if ((w[i] = nta_window_create(&sp[i])) == NULL) {
            fprintf(stderr, "window_bench: window %s: bad spec or out of memory\n", sp[i].name);
            return 1;
        }

    sink s = {0};
    int64_t newest = INT64_MIN;
    double t0 = cpu_s();
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < NWIN; k++)
            nta_window_add(w[k], &recs[i]);
        if (recs[i].ts_ms <= newest)
            continue;
        newest = recs[i].ts_ms;
        for (int k = 0; k < NWIN; k++) {
            size_t before = s.results;
            s.first = 0;
            double a = cpu_s();
            nta_window_advance(w[k], newest - lateness, emit, &s);
            double b = cpu_s();
            if (s.results > before)
                printf("close %s %zu results %.2f ms first after %.2f ms\n", sp[k].name,
                       s.results - before, (b - a) * 1e3, (s.first - a) * 1e3);
        }
    }
    double t1 = cpu_s();
    for (int k = 0; k < NWIN; k++)
        nta_window_flush(w[k], emit, &s);
    double t2 = cpu_s();
    printf("records %zu results %zu: %.1f ns/record (closes included), flush %.1f ms\n", n,
           s.results, (t1 - t0) * 1e9 / (double)(n ? n : 1), (t2 - t1) * 1e3);
    for (int k = 0; k < NWIN; k++)
        nta_window_destroy(w[k]);
    nta_buf_free(&s.key);
    nta_buf_free(&s.val);
    free(recs);
    return 0;
}
