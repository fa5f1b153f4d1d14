#include "replay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "generator.h"
#include "kafka.h"
#include "pipeline.h"
#include "status.h"

/* Records handed over between two ticks when nothing holds them back: the
 * same batch as the in-process generator. */
#define REPLAY_BATCH 10000
/* The longest sleep while waiting for the next record's time, so ticks (idle
 * windows, status line, delivery reports) keep coming during long gaps. */
#define MAX_SLEEP_US 50000
#define MAX_GAP_US (100.0 * 365 * 86400 * 1e6)

void nta_replay_opts_init(nta_replay_opts *ro)
{
    memset(ro, 0, sizeof *ro);
    nta_reader_opts_init(&ro->reader);
    ro->speed = 1;
    ro->sort = -1;
}

/* Pacing measures durations: the monotonic clock, which a wall clock step
 * cannot stretch or cut short. */
static int64_t mono_us(void) { return nta_mono_ns() / 1000; }

/* ---- the source: a reader, streamed or sorted first -------------------------- */

typedef struct sorted_rec {
    nta_record r;
    uint64_t seq; /* file order: qsort is not stable, equal times keep it this way */
} sorted_rec;

typedef struct source {
    nta_reader *rd;
    sorted_rec *recs;
    size_t n, cap, next;
    int sorted;
    int failed; /* the reader's error, reported once the records before it are out */
    char err[640];
} source;

static int cmp_sorted(const void *a, const void *b)
{
    const sorted_rec *x = a, *y = b;
    if (x->r.ts_ms != y->r.ts_ms)
        return x->r.ts_ms < y->r.ts_ms ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int source_open(source *src, const nta_replay_opts *ro)
{
    memset(src, 0, sizeof *src);
    src->rd = nta_reader_open(ro->path, &ro->reader, src->err, sizeof src->err);
    if (src->rd == NULL)
        return -1;
    src->sorted = ro->sort >= 0 ? ro->sort : nta_reader_get_format(src->rd) != NTA_READ_PCAP;
    if (!src->sorted)
        return 0;
    for (;;) {
        if (src->n == src->cap) {
            size_t cap = src->cap ? src->cap * 2 : 4096;
            sorted_rec *nr = realloc(src->recs, cap * sizeof *nr);
            if (nr == NULL) {
                snprintf(src->err, sizeof src->err,
                         "%s: out of memory sorting %zu records (replay it with --no-sort)",
                         ro->path, src->n);
                src->failed = 1;
                break;
            }
            src->recs = nr;
            src->cap = cap;
        }
        int rc = nta_reader_next(src->rd, &src->recs[src->n].r, src->err, sizeof src->err);
        if (rc <= 0) {
            src->failed = rc < 0;
            break;
        }
        src->recs[src->n].seq = src->n;
        src->n++;
    }
    qsort(src->recs, src->n, sizeof *src->recs, cmp_sorted);
    return 0;
}

/* 1 = a record, 0 = the end, -1 = the file's error (in src->err). */
static int source_next(source *src, nta_record *out)
{
    if (!src->sorted) {
        int rc = nta_reader_next(src->rd, out, src->err, sizeof src->err);
        src->failed = rc < 0;
        return rc;
    }
    if (src->next < src->n) {
        *out = src->recs[src->next++].r;
        return 1;
    }
    return src->failed ? -1 : 0;
}

static void source_close(source *src)
{
    nta_reader_close(src->rd);
    free(src->recs);
}

static void print_reader_summary(const source *src, const char *path)
{
    const nta_reader_stats *st = nta_reader_get_stats(src->rd);
    nta_reader_format f = nta_reader_get_format(src->rd);
    fprintf(stderr, "nta: %s (%s%s): %llu %s read, %llu records", path,
            nta_reader_format_name(f), src->sorted ? ", sorted by time" : "",
            (unsigned long long)st->units, f == NTA_READ_PCAP ? "packets" : "lines",
            (unsigned long long)st->records);
    if (f == NTA_READ_PCAP)
        fprintf(stderr, "; %llu not IP, %llu cut by the snap length, %llu later fragments "
                        "(%llu without their first: ports 0), %llu flows exported early "
                        "(table full)",
                (unsigned long long)st->skipped, (unsigned long long)st->truncated,
                (unsigned long long)st->fragments, (unsigned long long)st->fragments_unmatched,
                (unsigned long long)st->flows_evicted);
    fputc('\n', stderr);
}

/* ---- pacing -------------------------------------------------------------------- */

typedef struct replay_target {
    void (*record)(void *ctx, const nta_record *r);
    /* Between batches, with the replay clock (ms of event time). Returns -1
     * to stop (a publish that cannot go on). */
    int (*tick)(void *ctx, int64_t clock_ms);
    void *ctx;
} replay_target;

typedef enum loop_end { LOOP_EOF, LOOP_STOPPED, LOOP_BAD_FILE, LOOP_FAILED } loop_end;

/* Feeds every record of src to t at the pace ro->speed asks for. */
static loop_end replay_loop(source *src, const nta_replay_opts *ro, const replay_target *t)
{
    nta_record rec;
    int have = 0, started = 0;
    int64_t t0_ms = 0, w0_us = 0, max_ms = INT64_MIN, due = 0;
    for (;;) {
        if (nta_run_stop)
            return LOOP_STOPPED;
        int64_t now = mono_us();
        int rc = 1;
        for (long batch = 0; batch < REPLAY_BATCH; batch++) {
            if (!have) {
                rc = source_next(src, &rec);
                if (rc <= 0)
                    break;
                have = 1;
                if (!started) {
                    started = 1;
                    t0_ms = rec.ts_ms;
                    w0_us = now;
                }
                if (ro->speed > 0) {
                    /* In doubles, and within [0, a century]: JSON lines may
                     * hold any time, and a gap must not overflow. A record
                     * older than the first (an unsorted file) is due now. */
                    double gap_us = ((double)rec.ts_ms - (double)t0_ms) * 1000.0 / ro->speed;
                    gap_us = gap_us < 0 ? 0 : gap_us < MAX_GAP_US ? gap_us : MAX_GAP_US;
                    due = w0_us + (int64_t)gap_us;
                }
            }
            if (ro->speed > 0 && due > now)
                break;
            t->record(t->ctx, &rec);
            if (rec.ts_ms > max_ms)
                max_ms = rec.ts_ms;
            have = 0;
        }
        if (started) {
            now = mono_us();
            /* Paced, the clock is the event time the replay has reached; flat
             * out, the latest record's: windows then close on event time only. */
            int64_t clock = ro->speed > 0
                                ? t0_ms + (int64_t)((double)(now - w0_us) * ro->speed / 1000.0)
                                : max_ms;
            if (t->tick(t->ctx, clock) != 0)
                return LOOP_FAILED;
        }
        if (rc == 0)
            return LOOP_EOF;
        if (rc < 0)
            return LOOP_BAD_FILE;
        if (have && ro->speed > 0) {
            int64_t wait = due - mono_us();
            if (wait > 0)
                nta_sleep_us(wait < MAX_SLEEP_US ? wait : MAX_SLEEP_US);
        }
    }
}

/* ---- into a pipeline ----------------------------------------------------------- */

typedef struct pipe_ctx {
    nta_pipeline *p;
    const char *topic;
    int print;
    nta_status_line sl;
} pipe_ctx;

static int print_send(void *ctx, const char *topic, const char *key, size_t klen,
                      const char *val, size_t vlen, int64_t ts_ms, const char *hdr_name,
                      const char *hdr_val)
{
    (void)key, (void)klen, (void)ts_ms, (void)hdr_name, (void)hdr_val;
    pipe_ctx *pc = ctx;
    /* As the in-process pipeline: results only; bad and late records are
     * counted in the summary. */
    if (pc->print && strcmp(topic, pc->topic) == 0) {
        fwrite(val, 1, vlen, stdout);
        fputc('\n', stdout);
    }
    return 0;
}

static void pipe_record(void *ctx, const nta_record *r)
{
    nta_pipeline_feed_record(((pipe_ctx *)ctx)->p, r);
}

static int pipe_tick(void *ctx, int64_t clock_ms)
{
    pipe_ctx *pc = ctx;
    nta_pipeline_tick(pc->p, clock_ms);
    fflush(stdout);
    const nta_pipeline_stats *st = nta_pipeline_get_stats(pc->p);
    nta_status_values v = {.records_in = st->records_in, .results_out = st->results_out,
                           .late = st->late_records, .bad = st->bad_total,
                           .script_errors = st->script_errors, .lag = -1};
    nta_status_update(&pc->sl, nta_wall_us(), &v, 0);
    return 0;
}

int nta_run_replay(nta_script *s, nta_pipeline_conf *conf, const nta_run_opts *o,
                   const nta_replay_opts *ro)
{
    pipe_ctx pc = {.topic = conf->output_topic, .print = conf->print != 0};
    char err[512];
    pc.p = nta_pipeline_create(conf, s, (nta_sink){print_send, &pc}, err, sizeof err);
    if (pc.p == NULL) {
        fprintf(stderr, "nta: %s\n", err);
        return 1;
    }
    source src;
    if (source_open(&src, ro) != 0) {
        fprintf(stderr, "nta: %s\n", src.err);
        source_close(&src);
        nta_pipeline_destroy(pc.p);
        return 1;
    }
    nta_status_init(&pc.sl, o->verbose, nta_wall_us());
    loop_end end = replay_loop(&src, ro, &(replay_target){pipe_record, pipe_tick, &pc});
    nta_status_done(&pc.sl);
    /* A bad file's records read before the bad part are results too. */
    if (end == LOOP_EOF || end == LOOP_BAD_FILE)
        nta_pipeline_flush(pc.p);
    fflush(stdout);
    if (end == LOOP_BAD_FILE)
        fprintf(stderr, "nta: %s\n", src.err);
    print_reader_summary(&src, ro->path);
    nta_run_print_summary(pc.p);
    source_close(&src);
    nta_pipeline_destroy(pc.p);
    return end == LOOP_BAD_FILE ? 1 : 0;
}

/* ---- into Kafka ----------------------------------------------------------------- */

typedef struct pub_ctx {
    nta_producer *prod;
    const char *topic;
    nta_buf val;
    int failed;
    uint64_t sent;
    int64_t last_report_us;
    int verbose;
    char err[256];
} pub_ctx;

static void pub_record(void *ctx, const nta_record *r)
{
    pub_ctx *pc = ctx;
    if (pc->failed)
        return;
    nta_buf_reset(&pc->val);
    nta_gen_encode(&pc->val, r, NTA_GEN_JSON);
    /* Keyed by source address, as the generator keys: one source's records
     * stay in order on one partition. */
    char key[NTA_FIELD_TEXT_MAX];
    size_t klen = nta_addr_format(&r->src, key);
    if (nta_producer_send(pc->prod, pc->topic, key, klen, pc->val.data, pc->val.len, r->ts_ms,
                          NULL, NULL, pc->err, sizeof pc->err) != 0)
        pc->failed = 1;
    else
        pc->sent++;
}

static int pub_tick(void *ctx, int64_t clock_ms)
{
    (void)clock_ms;
    pub_ctx *pc = ctx;
    nta_producer_poll(pc->prod, 0);
    int64_t t = mono_us();
    if (pc->verbose && t - pc->last_report_us >= 5000000) {
        fprintf(stderr, "nta: published %llu records\n", (unsigned long long)pc->sent);
        pc->last_report_us = t;
    }
    return pc->failed ? -1 : 0;
}

int nta_run_replay_publish(const nta_run_opts *o, const nta_replay_opts *ro)
{
    pub_ctx pc = {.topic = ro->publish_topic, .verbose = o->verbose, .last_report_us = mono_us()};
    char err[2048];
    if ((pc.prod = nta_producer_create(&o->kafka, NULL, NULL, err, sizeof err)) == NULL) {
        fprintf(stderr, "nta: %s\n", err);
        return 1;
    }
    source src;
    if (source_open(&src, ro) != 0) {
        fprintf(stderr, "nta: %s\n", src.err);
        source_close(&src);
        nta_producer_destroy(pc.prod, 0);
        return 1;
    }
    int64_t t0 = mono_us();
    loop_end end = replay_loop(&src, ro, &(replay_target){pub_record, pub_tick, &pc});
    int rc = end == LOOP_BAD_FILE || end == LOOP_FAILED;
    if (end == LOOP_BAD_FILE)
        fprintf(stderr, "nta: %s\n", src.err);
    if (pc.failed)
        fprintf(stderr, "nta: publish to %s: %s\n", pc.topic, pc.err);
    long left = nta_producer_destroy(pc.prod, 60000);
    if (left > 0) {
        fprintf(stderr, "nta: %ld records undelivered\n", left);
        rc = 1;
    }
    double secs = (double)(mono_us() - t0) / 1e6;
    print_reader_summary(&src, ro->path);
    fprintf(stderr, "nta: published %llu records to %s in %.2f s (%.0f records/s)\n",
            (unsigned long long)pc.sent, pc.topic, secs, secs > 0 ? (double)pc.sent / secs : 0);
    source_close(&src);
    nta_buf_free(&pc.val);
    return rc;
}
