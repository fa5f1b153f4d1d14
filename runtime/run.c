#include "run.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "generator.h"
#include "http.h"
#include "pipeline.h"
#include "predecode.h"
#include "status.h"

volatile sig_atomic_t nta_run_stop;
volatile sig_atomic_t nta_run_reload;

/* Serves a pending SIGHUP: the loops call this between batches. */
static void maybe_reload(nta_pipeline *p)
{
    if (!nta_run_reload)
        return;
    nta_run_reload = 0;
    const char *json;
    size_t len;
    nta_pipeline_reload(p, &json, &len);
}

/* The dashboard's way to the rules: both run on the pipeline thread. */
static int http_reload(void *ctx, char *out, size_t len)
{
    const char *json;
    size_t jlen;
    int rc = nta_pipeline_reload(ctx, &json, &jlen);
    snprintf(out, len, "%.*s", (int)jlen, json);
    return jlen < len ? rc : -1;
}

static int http_rules_status(void *ctx, char *out, size_t len)
{
    nta_pipeline *p = ctx;
    nta_buf b = {0};
    nta_buf_printf(&b, "{\"generation\":%llu,\"rules\":",
                   (unsigned long long)nta_pipeline_generation(p));
    nta_rules_status_json(nta_pipeline_rules(p), &b);
    nta_buf_putc(&b, '}');
    int n = b.len < len ? (int)b.len : -1;
    if (n >= 0) {
        memcpy(out, b.data, b.len);
        out[b.len] = '\0';
    }
    nta_buf_free(&b);
    return n;
}

static nta_http *attach_http(const nta_run_opts *o, nta_pipeline *p,
                             const nta_pipeline_conf *conf, const char *mode)
{
    nta_http *http = nta_http_attach(&o->http, p, conf, mode);
    if (http)
        nta_http_set_rules(http, &(nta_http_rules){http_reload, http_rules_status, p});
    return http;
}

static nta_pipeline *create_pipeline(nta_pipeline_conf *conf, nta_script *s, nta_sink sink,
                                     const nta_run_opts *o, char *err, size_t errlen)
{
    for (int i = 0; i < o->nrule_paths && conf->nrule_paths < NTA_MAX_RULE_PATHS; i++)
        conf->rule_paths[conf->nrule_paths++] = strdup(o->rule_paths[i]);
    nta_pipeline *p = nta_pipeline_create(conf, s, sink, err, errlen);
    if (p)
        nta_pipeline_set_origin(p, o->script_path, o->script_argc, o->script_argv, o->rule_paths,
                                o->nrule_paths);
    return p;
}

static void status_values(nta_status_values *v, const nta_pipeline_stats *st)
{
    memset(v, 0, sizeof *v);
    v->records_in = st->records_in;
    v->results_out = st->results_out;
    v->late = st->late_records;
    v->bad = st->bad_total;
    v->script_errors = st->script_errors;
    v->lag = -1;
}

/* A summary on stderr at exit: the counters an operator checks first. */
static void print_summary(nta_pipeline *p)
{
    const nta_pipeline_stats *st = nta_pipeline_get_stats(p);
    fprintf(stderr, "nta: %llu records in, %llu aggregated, %llu bad, %llu late, %llu results out",
            (unsigned long long)st->records_in, (unsigned long long)st->records_ok,
            (unsigned long long)st->bad_total, (unsigned long long)st->late_records,
            (unsigned long long)st->results_out);
    if (st->results_unpublished)
        fprintf(stderr, " (+%llu unpublished)", (unsigned long long)st->results_unpublished);
    if (st->script_errors)
        fprintf(stderr, ", %llu on_window errors", (unsigned long long)st->script_errors);
    if (st->alerts_out)
        fprintf(stderr, ", %llu alerts", (unsigned long long)st->alerts_out);
    if (st->reloads_ok || st->reloads_failed)
        fprintf(stderr, ", reloads %llu ok %llu failed", (unsigned long long)st->reloads_ok,
                (unsigned long long)st->reloads_failed);
    fputc('\n', stderr);
    for (int s = 1; s < NTA_DEC__COUNT; s++)
        if (st->bad[s] && s != NTA_DEC_SKIP)
            fprintf(stderr, "nta:   bad %s: %llu\n", nta_decode_status_name((nta_decode_status)s),
                    (unsigned long long)st->bad[s]);
    for (int i = 0; i < nta_pipeline_windows(p); i++) {
        nta_window_stats ws;
        nta_window_get_stats(nta_pipeline_window(p, i), &ws);
        fprintf(stderr, "nta:   window %s: %llu windows, %llu results, %llu late, %llu overflow\n",
                nta_window_spec_of(nta_pipeline_window(p, i))->name,
                (unsigned long long)ws.windows, (unsigned long long)ws.results,
                (unsigned long long)ws.late, (unsigned long long)ws.overflow);
    }
    nta_rules *rules = nta_pipeline_rules(p);
    if (nta_rules_states_dropped(rules))
        fprintf(stderr, "nta:   rules: %llu keys not tracked (alert state or baseline limit)\n",
                (unsigned long long)nta_rules_states_dropped(rules));
    for (int i = 0; i < nta_rules_count(rules); i++) {
        nta_rule_stats rs;
        nta_rules_get_stats(rules, i, &rs);
        fprintf(stderr,
                "nta:   rule %s: %llu evaluations, %llu raised, %llu cleared, %llu errors%s, "
                "%.0f ns/evaluation, detection latency p50 %.0f ms p99 %.0f ms\n",
                rs.name, (unsigned long long)rs.evaluations, (unsigned long long)rs.raised,
                (unsigned long long)rs.cleared, (unsigned long long)rs.errors,
                rs.quarantined ? " (quarantined)" : "",
                rs.evaluations ? (double)rs.eval_ns / (double)rs.evaluations : 0.0,
                rs.latency_p50_ms, rs.latency_p99_ms);
    }
}

/* ---- in-process pipeline ---- */

typedef struct print_sink {
    const char *topic;
    int print;
} print_sink;

static int print_send(void *ctx, const char *topic, const char *key, size_t klen,
                      const char *val, size_t vlen, int64_t ts_ms, const char *hdr_name,
                      const char *hdr_val)
{
    (void)key, (void)klen, (void)ts_ms, (void)hdr_name, (void)hdr_val;
    print_sink *ps = ctx;
    /* Without a broker only results are shown; bad and late records are
     * counted in the summary. */
    if (!ps->print || strcmp(topic, ps->topic) != 0)
        return 0;
    fwrite(val, 1, vlen, stdout);
    fputc('\n', stdout);
    return 0;
}

static void feed_record(void *ctx, const nta_record *r) { nta_pipeline_feed_record(ctx, r); }

static int run_local_generator(nta_pipeline *p, const nta_pipeline_conf *conf,
                               const nta_run_opts *o, nta_http *http)
{
    nta_gen_conf gconf;
    nta_gen_conf_init(&gconf);
    nta_pipeline_conf unused;
    nta_pipeline_conf_init(&unused);
    nta_script_kind kind;
    char err[2048];
    nta_script *gs = nta_script_load(conf->generator_path, conf->ngenerator_args,
                                     conf->generator_args, &kind, &unused, &gconf, err, sizeof err);
    nta_pipeline_conf_free(&unused);
    if (gs == NULL) {
        fprintf(stderr, "nta: input generator: %s\n", err);
        return 1;
    }
    if (kind != NTA_SCRIPT_GENERATOR) {
        fprintf(stderr, "nta: input generator %s is a pipeline script, not a generator\n",
                conf->generator_path);
        nta_script_destroy(gs);
        return 1;
    }
    int64_t t = nta_wall_us();
    nta_gen *g = nta_gen_create(gs, &gconf, o->fast, t);
    nta_status_line sl;
    nta_status_init(&sl, o->verbose, t);
    int rc = 0;
    while (!nta_run_stop && !nta_gen_finished(g)) {
        t = nta_wall_us();
        if (nta_gen_step(g, t, 10000, feed_record, p, err, sizeof err) < 0) {
            nta_status_done(&sl);
            fprintf(stderr, "nta: generator %s: %s\n", conf->generator_path, err);
            rc = 1;
            break;
        }
        nta_pipeline_tick(p, t / 1000);
        maybe_reload(p);
        nta_status_values v;
        status_values(&v, nta_pipeline_get_stats(p));
        v.lag = 0;
        nta_status_update(&sl, t, &v, 0);
        nta_http_tick(http, 0, NULL, NULL, t);
        fflush(stdout);
        int64_t wait = nta_gen_wait_us(g, nta_wall_us());
        if (wait > 0)
            nta_sleep_us(wait < 50000 ? wait : 50000);
    }
    nta_status_done(&sl);
    if (rc == 0 && nta_gen_finished(g))
        nta_pipeline_flush(p);
    nta_gen_destroy(g);
    nta_script_destroy(gs);
    return rc;
}

/* Lines from stdin, one record each, in the input's format. poll() keeps the
 * clock ticking while the pipe is quiet, so idle windows still close. */
static int run_local_stdin(nta_pipeline *p, const nta_run_opts *o, nta_http *http)
{
    nta_status_line sl;
    nta_status_init(&sl, o->verbose, nta_wall_us());
    nta_buf line = {0};
    char chunk[65536];
    int eof = 0;
    while (!nta_run_stop && !eof) {
        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
        int pr = poll(&pfd, 1, 100);
        if (pr > 0) {
            ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
            if (n < 0 && errno != EINTR && errno != EAGAIN) {
                perror("nta: stdin");
                break;
            }
            if (n == 0)
                eof = 1;
            for (ssize_t i = 0; i < n; i++) {
                if (chunk[i] != '\n') {
                    nta_buf_putc(&line, chunk[i]);
                    continue;
                }
                nta_pipeline_feed(p, -1, 0, NULL, 0, line.data, line.len, 0);
                nta_buf_reset(&line);
            }
        }
        if (eof && line.len)
            nta_pipeline_feed(p, -1, 0, NULL, 0, line.data, line.len, 0);
        int64_t t = nta_wall_us();
        nta_pipeline_tick(p, t / 1000);
        maybe_reload(p);
        /* Results are for people or pipes waiting on them: never hold them
         * in stdio's buffer past a tick. */
        fflush(stdout);
        nta_status_values v;
        status_values(&v, nta_pipeline_get_stats(p));
        nta_status_update(&sl, t, &v, 0);
        nta_http_tick(http, -1, NULL, NULL, t);
    }
    nta_status_done(&sl);
    nta_buf_free(&line);
    if (eof)
        nta_pipeline_flush(p);
    return 0;
}

int nta_run_pipeline_local(nta_script *s, nta_pipeline_conf *conf, const nta_run_opts *o)
{
    print_sink ps = {conf->output_topic, conf->print != 0};
    char err[512];
    nta_pipeline *p = create_pipeline(conf, s, (nta_sink){print_send, &ps}, o, err, sizeof err);
    if (p == NULL) {
        fprintf(stderr, "nta: %s\n", err);
        return 2;
    }
    nta_http *http = attach_http(o, p, conf, "local");
    int rc = conf->generator_path[0] ? run_local_generator(p, conf, o, http)
                                     : run_local_stdin(p, o, http);
    fflush(stdout);
    print_summary(p);
    nta_http_detach(http);
    nta_pipeline_destroy(p);
    return rc;
}

/* ---- Kafka pipeline ---- */

typedef struct part_state {
    int assigned, eof;
    int64_t next;         /* next offset to read (last seen + 1); -1 unknown */
    int64_t committed;    /* the group's committed offset as last known; -1 none */
    int64_t committed_wm; /* the watermark committed with it; INT64_MIN none */
    int64_t first;        /* first offset read since the assignment or rewind; -1 none */
    int64_t start;        /* where the assignment started reading (may be logical) */
    int64_t woken_at;     /* next when wake_fetcher last sought it; -1 none */
    int seen;             /* assigned before in this process (--from applies once) */
} part_state;

typedef struct pending_commit {
    uint64_t epoch;
    rd_kafka_topic_partition_list_t *offsets;
} pending_commit;

typedef struct kafka_run {
    const nta_pipeline_conf *conf;
    const nta_run_opts *o;
    rd_kafka_t *rk;
    rd_kafka_topic_t *input_rkt; /* consumer_create says why */
    nta_producer *prod;
    nta_pipeline *p;
    int exactly_once;
    part_state *parts;
    int nparts;
    /* At-least-once: offset snapshots waiting for their epoch's delivery. */
    pending_commit *pending;
    size_t npending, cappending;
    int dirty;        /* results or alerts produced since the last commit */
    int broker_down;  /* the consumer lost its brokers and has not read since */
    int rebalanced;   /* the assignment changed during the last consume call */
    int fatal;        /* the transactional producer can not go on */
    int revoking;     /* in the revoke callback: an abort does not rewind */
    int closing;      /* consumer closing: revocation commits nothing */
    uint64_t commits, aborts, rewinds;
    int64_t last_commit_us, last_err_us;
    uint64_t fetch_wakes; /* wake_fetcher */
    int64_t last_wake_us;
    size_t queue_full_at; /* half of queued.min.messages */
    int queue_was_full;   /* the queue reached queue_full_at since the last wake */
    nta_status_line *sl;
    nta_http *http;
    char note[256];
} kafka_run;

static part_state *part(kafka_run *r, int32_t p)
{
    if (p >= r->nparts) {
        part_state *np = realloc(r->parts, sizeof(part_state) * (size_t)(p + 1));
        if (np == NULL)
            abort();
        for (int i = r->nparts; i <= p; i++)
            np[i] = (part_state){.next = -1, .committed = -1, .committed_wm = INT64_MIN,
                                 .first = -1, .woken_at = -1};
        r->parts = np;
        r->nparts = p + 1;
    }
    return &r->parts[p];
}

static int kafka_send(void *ctx, const char *topic, const char *key, size_t klen,
                      const char *val, size_t vlen, int64_t ts_ms, const char *hdr_name,
                      const char *hdr_val)
{
    kafka_run *r = ctx;
    char err[256];
    r->dirty = 1;
    if (nta_producer_send(r->prod, topic, key, klen, val, vlen, ts_ms, hdr_name, hdr_val, err,
                          sizeof err) != 0) {
        snprintf(r->note, sizeof r->note, "%s", err);
        return -1;
    }
    return 0;
}

static int64_t total_lag(kafka_run *r)
{
    int64_t lag = 0;
    for (int32_t i = 0; i < r->nparts; i++) {
        if (!r->parts[i].assigned)
            continue;
        int64_t lo, hi;
        if (rd_kafka_get_watermark_offsets(r->rk, r->conf->input_topic, i, &lo, &hi) != 0 ||
            hi < 0)
            return -1;
        int64_t pos = r->parts[i].next >= 0 ? r->parts[i].next : lo;
        lag += hi > pos ? hi - pos : 0;
    }
    return lag;
}

/* librdkafka 2.0.2 stops fetching once the consumer queue holds
 * queued.min.messages and looks again only on its broker thread's
 * one-second idle tick (bench/README.md, analysis 1): a pipeline that
 * drains the queue within that second then waits out the rest of it.
 * Newer releases wake the fetcher (fetch.queue.backoff.ms). Here the
 * fetcher counts as idle when the queue, filled to half that limit since
 * the last wake, is down to less than a batch, or when a batch came back
 * short (the queue stayed empty until the consume call's deadline). A seek
 * of a partition to the next offset to read is an operation on the broker
 * thread that wakes it, and it fetches from there at once. Nothing is lost
 * or read twice: the seek resumes at the next unread offset, and the few
 * queued messages of the partition it drops are fetched again.
 *
 * Which partitions: those known to be behind their end (their high
 * watermark as the last fetch saw it). Once the queue holds all that the
 * partitions have left, none: a seek would only drop it to fetch it again,
 * and the end-of-partition events that remain come without one, while a
 * seek of a partition read to its end cancels the fetch that brings its
 * event (bench/README.md, analysis 7).
 *
 * At most every 250 ms (a seek also restarts a fetch in flight), not while
 * the brokers are away (the fetcher is then not idle but cut off), and once
 * per position of a partition: the high watermark can stay past the last
 * record for good (a transaction's commit marker, or records of an open or
 * aborted transaction that read_committed skips), and seeking again and
 * again would cancel the very fetch that reports the partition's end. */
#define WAKE_EVERY_US 250000

static void wake_fetcher(kafka_run *r, int64_t now_us)
{
    if (r->broker_down || now_us - r->last_wake_us < WAKE_EVERY_US)
        return;
    rd_kafka_topic_partition_list_t *l = NULL;
    for (int32_t i = 0; i < r->nparts; i++) {
        part_state *ps = &r->parts[i];
        int64_t lo, hi;
        if (!ps->assigned || ps->eof || ps->next < 0 || ps->next == ps->woken_at ||
            rd_kafka_get_watermark_offsets(r->rk, r->conf->input_topic, i, &lo, &hi) != 0 ||
            hi <= ps->next)
            continue;
        if (l == NULL)
            l = rd_kafka_topic_partition_list_new(r->nparts);
        rd_kafka_topic_partition_list_add(l, r->conf->input_topic, i)->offset = ps->next;
        ps->woken_at = ps->next;
    }
    if (l == NULL)
        return;
    /* Timeout 0: started, not waited for (nor reported). */
    rd_kafka_error_t *e = rd_kafka_seek_partitions(r->rk, l, 0);
    if (e)
        rd_kafka_error_destroy(e);
    rd_kafka_topic_partition_list_destroy(l);
    r->fetch_wakes++;
    r->last_wake_us = now_us;
    r->queue_was_full = 0;
}

/* Before a consume call: wakes the fetcher (above) once the queue it
 * filled runs low. */
static void before_consume(kafka_run *r, rd_kafka_queue_t *q, int64_t now_us)
{
    size_t queued = rd_kafka_queue_length(q);
    if (queued >= r->queue_full_at) {
        r->queue_was_full = 1;
    } else if (r->queue_was_full && queued < NTA_PREDECODE_MAX) {
        int64_t left = total_lag(r);
        if (left < 0 || (uint64_t)left > queued)
            wake_fetcher(r, now_us);
    }
}

static int all_at_end(const kafka_run *r)
{
    int any = 0;
    for (int32_t i = 0; i < r->nparts; i++) {
        if (!r->parts[i].assigned)
            continue;
        any = 1;
        if (!r->parts[i].eof)
            return 0;
    }
    return any;
}

/* Records written while the brokers are away will come as a backlog: no
 * partition counts as caught up until it says so again. */
static void brokers_lost(kafka_run *r)
{
    r->broker_down = 1;
    for (int32_t i = 0; i < r->nparts; i++)
        if (r->parts[i].assigned) {
            r->parts[i].eof = 0;
            nta_pipeline_partition_behind(r->p, i);
        }
}

/* A consumer error, from a message or from the client: shown in the status
 * and, at most every 10 s, in the log. */
static void consumer_error(kafka_run *r, rd_kafka_resp_err_t err, const char *text)
{
    snprintf(r->note, sizeof r->note, "consumer: %.200s", text);
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT)
        brokers_lost(r);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        /* e.g. fenced by a consumer with the same group.instance.id: this
         * consumer can not go on; a restart can. */
        char why[256];
        rd_kafka_fatal_error(r->rk, why, sizeof why);
        fprintf(stderr, "nta: consumer: fatal error: %s; stopping\n", why);
        r->fatal = 1;
    }
    int64_t t = nta_wall_us();
    if (t - r->last_err_us >= 10000000) {
        fprintf(stderr, "nta: consumer: %s\n", text);
        r->last_err_us = t;
    }
}

/* Client-level errors arrive here, on the thread that polls the consumer. */
static void consumer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    consumer_error(opaque, (rd_kafka_resp_err_t)err, reason);
}

/* Status line and dashboard: also served while a commit waits for the broker. */
static void report(kafka_run *r, int64_t t)
{
    nta_status_values v;
    status_values(&v, nta_pipeline_get_stats(r->p));
    v.lag = r->broker_down ? -1 : total_lag(r);
    v.note = r->note[0] ? r->note : nta_producer_last_error(r->prod);
    nta_status_update(r->sl, t, &v, 0);
    if (r->http) {
        nta_producer_stats pst;
        nta_producer_get_stats(r->prod, &pst);
        nta_http_tick(r->http, v.lag, &pst, v.note, t);
    }
}

/* The commit metadata carries the watermark whose windows are all emitted, so
 * that after a restart the windows rebuilt from re-read records are not
 * emitted a second time. */
#define WM_META_PREFIX "nta-wm="

static int64_t parse_wm_meta(const rd_kafka_topic_partition_t *tp)
{
    size_t plen = sizeof WM_META_PREFIX - 1;
    if (tp->metadata == NULL || tp->metadata_size <= plen || tp->metadata_size > 40 ||
        memcmp(tp->metadata, WM_META_PREFIX, plen) != 0)
        return INT64_MIN;
    char tmp[48];
    memcpy(tmp, tp->metadata, tp->metadata_size);
    tmp[tp->metadata_size] = '\0';
    return strtoll(tmp + plen, NULL, 10);
}

/* Offsets to commit: for every assigned partition its commit point, or with
 * nothing read since, the offset committed before; each with the watermark
 * emitted so far (never lower than the one committed before: while windows
 * are being rebuilt the pipeline's own watermark is behind it). Every
 * assigned partition is listed so that each carries the newest watermark. */
static rd_kafka_topic_partition_list_t *commit_list(kafka_run *r)
{
    nta_offsets *off = nta_pipeline_offsets(r->p);
    int64_t wm = nta_pipeline_get_stats(r->p)->watermark_ms;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(r->nparts + 1);
    for (int32_t i = 0; i < r->nparts; i++) {
        part_state *ps = &r->parts[i];
        if (!ps->assigned)
            continue;
        int64_t c = nta_offsets_commit_point(off, i);
        if (c < 0)
            c = ps->committed;
        if (c < 0)
            continue;
        int64_t pwm = wm > ps->committed_wm ? wm : ps->committed_wm;
        char meta[40];
        int mlen = snprintf(meta, sizeof meta, WM_META_PREFIX "%" PRId64, pwm);
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_add(l, r->conf->input_topic, i);
        tp->offset = c;
        tp->metadata = malloc((size_t)mlen);
        if (tp->metadata == NULL)
            abort();
        memcpy(tp->metadata, meta, (size_t)mlen);
        tp->metadata_size = (size_t)mlen;
    }
    return l;
}

/* Whether a commit would move some partition's committed offset. A
 * transaction with no results and no new offset is skipped: it would only
 * move the committed watermark, and a restart from the older one reads the
 * same records and, having produced nothing since, owes nothing more. Under
 * a long lateness the offsets stand still for minutes while records stream
 * in, and each such empty commit held the pipeline's thread for ~5 ms
 * (bench/README.md, analysis 7). */
static int offsets_moved(kafka_run *r)
{
    nta_offsets *off = nta_pipeline_offsets(r->p);
    for (int32_t i = 0; i < r->nparts; i++) {
        if (!r->parts[i].assigned)
            continue;
        int64_t c = nta_offsets_commit_point(off, i);
        if (c >= 0 && c != r->parts[i].committed)
            return 1;
    }
    return 0;
}

/* The list was committed: it is what a rewind goes back to. */
static void note_committed(kafka_run *r, const rd_kafka_topic_partition_list_t *l)
{
    for (int i = 0; i < l->cnt; i++) {
        part_state *ps = part(r, l->elems[i].partition);
        ps->committed = l->elems[i].offset;
        ps->committed_wm = parse_wm_meta(&l->elems[i]);
    }
}

/* At-least-once: closes the producer's epoch with a snapshot of the offsets
 * that its results cover; the snapshot is committed once the epoch is
 * delivered. */
static void snapshot_commit(kafka_run *r)
{
    rd_kafka_topic_partition_list_t *l = commit_list(r);
    uint64_t epoch = nta_producer_close_epoch(r->prod);
    if (l->cnt == 0) {
        rd_kafka_topic_partition_list_destroy(l);
        return;
    }
    if (r->npending == r->cappending) {
        size_t cap = r->cappending ? r->cappending * 2 : 8;
        pending_commit *np = realloc(r->pending, cap * sizeof *np);
        if (np == NULL)
            abort();
        r->pending = np;
        r->cappending = cap;
    }
    r->pending[r->npending++] = (pending_commit){epoch, l};
}

/* At-least-once: commits every snapshot whose epoch is fully delivered,
 * oldest first. */
static void commit_ready(kafka_run *r, int sync)
{
    size_t k = 0;
    while (k < r->npending && nta_producer_epoch_done(r->prod, r->pending[k].epoch)) {
        rd_kafka_resp_err_t e = rd_kafka_commit(r->rk, r->pending[k].offsets, !sync);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
            snprintf(r->note, sizeof r->note, "commit: %s", rd_kafka_err2str(e));
        else
            note_committed(r, r->pending[k].offsets);
        rd_kafka_topic_partition_list_destroy(r->pending[k].offsets);
        k++;
    }
    if (k) {
        memmove(r->pending, r->pending + k, (r->npending - k) * sizeof *r->pending);
        r->npending -= k;
    }
}

/* At-least-once: delivers what was produced and commits what that covers,
 * waiting at most 60 s. Returns 0, or -1 if results stayed unacknowledged. */
static int drain_commits(kafka_run *r)
{
    snapshot_commit(r);
    for (int i = 0; i < 600 && r->npending; i++) {
        nta_producer_poll(r->prod, 100);
        commit_ready(r, 1);
    }
    return r->npending ? -1 : 0;
}

/* Seeks the partitions of l (then destroyed) to its offsets. A partition
 * that could not seek would skip records: stop rather than lose them; a
 * restart reads from the commit. */
static void seek_parts(kafka_run *r, rd_kafka_topic_partition_list_t *l, const char *what)
{
    /* librdkafka 2.0.2 (Debian 12) waits its timeout in microseconds, not
     * milliseconds (fixed in 2.1.0, librdkafka pull request 4230): a seek
     * not done within 10 ms, as happens on a busy machine right after an
     * assignment, reports a time-out while it goes on. Seeking again to the
     * same offsets is harmless, so retry for up to 10 s. */
    rd_kafka_error_t *e = NULL;
    int64_t deadline = nta_mono_ns() + (int64_t)10 * 1000000000;
    while (l->cnt) {
        e = rd_kafka_seek_partitions(r->rk, l, 10000);
        if (e == NULL || rd_kafka_error_code(e) != RD_KAFKA_RESP_ERR__TIMED_OUT ||
            nta_mono_ns() >= deadline)
            break;
        rd_kafka_error_destroy(e);
        e = NULL;
    }
    if (e) {
        fprintf(stderr, "nta: %s: %s; stopping\n", what, rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        r->fatal = 1;
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* Drops the messages of a batch read across a rebalance and seeks each
 * assigned partition they came from back to where its assignment started.
 * Partitions with no message in the batch need no seek (the assignment
 * starts them there), and are not sought: a seek right after an assignment
 * is the one most likely to run into librdkafka 2.0.2's short time-out
 * (seek_parts), and a new member's first batch is most often empty. */
static void restart_assignment(kafka_run *r, rd_kafka_message_t **msgs, ssize_t n)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(r->nparts + 1);
    for (ssize_t i = 0; i < n; i++) {
        int32_t pt = msgs[i]->partition;
        if (pt >= 0 && pt < r->nparts && r->parts[pt].assigned &&
            rd_kafka_topic_partition_list_find(l, r->conf->input_topic, pt) == NULL) {
            part_state *ps = &r->parts[pt];
            rd_kafka_topic_partition_list_add(l, r->conf->input_topic, pt)->offset = ps->start;
            ps->first = ps->next = -1;
            ps->eof = 0;
        }
        rd_kafka_message_destroy(msgs[i]);
    }
    seek_parts(r, l, "reading the new assignment from its start");
}

/* Reads every assigned partition again from its committed offset (or, with
 * none, from the first offset read), rebuilding the windows from scratch:
 * the results of an aborted transaction are produced again, and those
 * committed before are suppressed by the committed watermarks. */
static void rewind_input(kafka_run *r)
{
    nta_pipeline_reset(r->p);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(r->nparts + 1);
    for (int32_t i = 0; i < r->nparts; i++) {
        part_state *ps = &r->parts[i];
        if (!ps->assigned)
            continue;
        if (ps->committed_wm != INT64_MIN)
            nta_pipeline_set_resume_watermark(r->p, i, ps->committed_wm);
        int64_t to = ps->committed >= 0 ? ps->committed : ps->first;
        if (to < 0)
            continue;
        rd_kafka_topic_partition_list_add(l, r->conf->input_topic, i)->offset = to;
        ps->next = to;
        ps->first = -1;
        ps->eof = 0;
    }
    seek_parts(r, l, "rewind after an aborted transaction");
    r->rewinds++;
}

/* Exactly-once: commits the open transaction with the offsets its results
 * cover. While the broker is away the pipeline pauses here (status and
 * dashboard say so) and retries; an aborted transaction rewinds the input.
 * Returns 0, or -1 if the producer can not go on or a stop was asked for
 * while waiting (the transaction then stays open and is aborted by the next
 * start). */
static int txn_commit(kafka_run *r)
{
    rd_kafka_topic_partition_list_t *l = commit_list(r);
    rd_kafka_consumer_group_metadata_t *md = rd_kafka_consumer_group_metadata(r->rk);
    int rc = 0, waited = 0;
    for (;;) {
        char err[512];
        nta_txn_result tr = nta_producer_commit(r->prod, l, md, 2000, err, sizeof err);
        if (tr == NTA_TXN_OK) {
            note_committed(r, l);
            r->commits++;
            r->dirty = 0;
            break;
        }
        if (tr == NTA_TXN_ABORTED) {
            fprintf(stderr, "nta: %s; reading the input again from the last commit\n", err);
            snprintf(r->note, sizeof r->note, "%.200s", err);
            r->aborts++;
            if (!r->revoking)
                rewind_input(r);
            break;
        }
        if (tr == NTA_TXN_FATAL) {
            fprintf(stderr, "nta: %s\n", err);
            if (strstr(err, "fenced"))
                fprintf(stderr, "nta: another nta-run with transactional.id of this one "
                                "(--instance) took over; stopping\n");
            r->fatal = 1;
            rc = -1;
            break;
        }
        snprintf(r->note, sizeof r->note, "paused, commit waits for the broker: %.180s", err);
        if (!waited++)
            fprintf(stderr, "nta: %s\n", r->note);
        report(r, nta_wall_us());
        if (nta_run_stop) {
            rc = -1;
            break;
        }
    }
    if (waited && rc == 0) {
        fprintf(stderr, "nta: broker back, commit done; resuming\n");
        r->note[0] = '\0';
    }
    rd_kafka_consumer_group_metadata_destroy(md);
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}

/* Commits everything produced so far, in either delivery mode. */
static int commit_now(kafka_run *r)
{
    if (r->exactly_once)
        return txn_commit(r);
    return drain_commits(r);
}

/* The committed offsets of parts, waiting while they are unstable (a
 * transaction that commits them is still open, e.g. of an instance that
 * crashed, until the broker aborts it after transaction.timeout.ms). */
static rd_kafka_resp_err_t fetch_committed(kafka_run *r, rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; i < 30; i++) {
        e = rd_kafka_committed(r->rk, parts, 10000);
        if (e != RD_KAFKA_RESP_ERR__TIMED_OUT && e != RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT)
            break;
        fprintf(stderr, "nta: committed offsets not available yet (%s); waiting\n",
                rd_kafka_err2str(e));
    }
    return e;
}

/* Partitions move between instances of a group: before giving them up all
 * results are committed with their offsets, and all window state is dropped;
 * on assignment every partition is read from its committed offset and the
 * windows are rebuilt, suppressing what the previous owner emitted. Dropping
 * the state of the partitions kept too is what makes the handover exact:
 * windows mix partitions, and the state of one can not be taken out of them. */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    kafka_run *r = opaque;
    r->rebalanced = 1;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rd_kafka_resp_err_t e = fetch_committed(r, parts);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "nta: cannot read the committed offsets: %s; stopping\n",
                    rd_kafka_err2str(e));
            r->fatal = 1;
        }
        for (int i = 0; i < parts->cnt; i++) {
            rd_kafka_topic_partition_t *tp = &parts->elems[i];
            part_state *ps = part(r, tp->partition);
            ps->committed = e == RD_KAFKA_RESP_ERR_NO_ERROR && tp->offset >= 0 ? tp->offset : -1;
            ps->committed_wm = e == RD_KAFKA_RESP_ERR_NO_ERROR ? parse_wm_meta(tp) : INT64_MIN;
            if (!ps->seen && r->o->from != NTA_FROM_COMMITTED) {
                tp->offset = r->o->from == NTA_FROM_BEGINNING ? RD_KAFKA_OFFSET_BEGINNING
                                                              : RD_KAFKA_OFFSET_END;
                ps->committed = -1;
                ps->committed_wm = INT64_MIN;
            } else if (ps->committed < 0) {
                tp->offset = RD_KAFKA_OFFSET_INVALID; /* auto.offset.reset */
            }
            if (ps->committed_wm != INT64_MIN)
                nta_pipeline_set_resume_watermark(r->p, tp->partition, ps->committed_wm);
            ps->start = tp->offset;
            if (ps->start == RD_KAFKA_OFFSET_INVALID)
                ps->start = r->o->from == NTA_FROM_LATEST ? RD_KAFKA_OFFSET_END
                                                          : RD_KAFKA_OFFSET_BEGINNING;
            ps->seen = ps->assigned = 1;
            ps->eof = 0;
            ps->first = ps->next = ps->woken_at = -1;
            nta_pipeline_partition(r->p, tp->partition, 1);
        }
        if (r->o->verbose)
            fprintf(stderr, "nta: assigned %d partition(s) of %s\n", parts->cnt,
                    r->conf->input_topic);
        rd_kafka_assign(rk, parts);
    } else {
        r->revoking = 1;
        if (!r->fatal && !r->closing && commit_now(r) != 0)
            fprintf(stderr, "nta: results of revoked partitions not committed: the next "
                            "owner reads them again\n");
        r->revoking = 0;
        for (int i = 0; i < parts->cnt; i++) {
            part_state *ps = part(r, parts->elems[i].partition);
            ps->assigned = ps->eof = 0;
            nta_pipeline_partition(r->p, parts->elems[i].partition, 0);
        }
        nta_pipeline_reset(r->p);
        if (r->o->verbose)
            fprintf(stderr, "nta: revoked %d partition(s)\n", parts->cnt);
        rd_kafka_assign(rk, NULL);
    }
}

/* This process's name in its group: --instance, or the host name. */
static void instance_name(const nta_run_opts *o, char *out, size_t len)
{
    if (o->instance) {
        snprintf(out, len, "%s", o->instance);
    } else if (gethostname(out, len) != 0) {
        snprintf(out, len, "localhost");
    }
    out[len - 1] = '\0';
}

static void destroy_message(void *m) { rd_kafka_message_destroy(m); }

static void consumer_destroy(kafka_run *r, rd_kafka_t *rk)
{
    if (r->input_rkt)
        rd_kafka_topic_destroy(r->input_rkt);
    r->input_rkt = NULL;
    rd_kafka_destroy(rk);
}

static rd_kafka_t *consumer_create(kafka_run *r, char *err, size_t errlen)
{
    const char *defaults[] = {
        "group.id", r->o->kafka.group ? r->o->kafka.group : "nta",
        /* Offsets are committed by hand, only once results are delivered. */
        "enable.auto.commit", "false",
        "enable.auto.offset.store", "false",
        "auto.offset.reset", r->o->from == NTA_FROM_LATEST ? "latest" : "earliest",
        /* The watermark needs to know which partitions are caught up. */
        "enable.partition.eof", "true",
        /* librdkafka 2.0 (Debian 12) stops fetching a partition once its
         * queue holds queued.min.messages and looks again only about a
         * second later; at the default 100k a pipeline that drains 1M
         * records/s then idles most of each second (bench/README.md). A
         * queue of a second's worth keeps the fetcher ahead, at the cost of
         * up to ~0.5 GiB of queued messages. Newer librdkafka wakes the
         * fetcher instead (fetch.queue.backoff.ms). */
        "queued.min.messages", "1000000",
        "queued.max.messages.kbytes", "262144",
        NULL,
    };
    rd_kafka_conf_t *conf = nta_kafka_conf_new(&r->o->kafka, defaults, err, errlen);
    if (conf == NULL)
        return NULL;
    char qmin[32];
    size_t qlen = sizeof qmin;
    long long qm = rd_kafka_conf_get(conf, "queued.min.messages", qmin, &qlen) == RD_KAFKA_CONF_OK
                       ? atoll(qmin)
                       : 0;
    r->queue_full_at = qm > 1 ? (size_t)qm / 2 : 1;
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, consumer_error_cb);
    rd_kafka_conf_set_opaque(conf, r);
    char rderr[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof rderr);
    if (rk == NULL) {
        snprintf(err, errlen, "cannot create the Kafka consumer: %s", rderr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    /* Held from the start so that librdkafka learns the input's partitions
     * and their leaders from the subscription's metadata, before the group
     * assigns them. Created only at the assignment, a partition told to
     * start at a logical offset (--from beginning or latest) before it has
     * joined its broker's thread finds "no current leader" and waits for
     * librdkafka 2.0.2's 500 ms offset-query retry: half a second lost at
     * the start of about every other run (bench/README.md, analysis 7). */
    r->input_rkt = rd_kafka_topic_new(rk, r->conf->input_topic, NULL);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, r->conf->input_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "subscribe to %s: %s", r->conf->input_topic, rd_kafka_err2str(e));
        consumer_destroy(r, rk);
        return NULL;
    }
    return rk;
}

/* transactional.id: one per instance of a group, stable across restarts, so
 * that a restarted instance fences its crashed predecessor and aborts its
 * open transaction at once. */
static void transactional_id(const kafka_run *r, char *out, size_t len)
{
    char inst[256];
    instance_name(r->o, inst, sizeof inst);
    snprintf(out, len, "nta-%.200s-%.200s-%.200s", r->o->kafka.group ? r->o->kafka.group : "nta",
             r->conf->input_topic, inst);
}

static int create_producer(kafka_run *r, char *err, size_t errlen)
{
    if (r->o->delivery == NTA_DELIVERY_AT_LEAST_ONCE) {
        r->prod = nta_producer_create(&r->o->kafka, NULL, NULL, err, errlen);
        return r->prod ? 0 : -1;
    }
    char id[640];
    transactional_id(r, id, sizeof id);
    int no_txn = 0;
    r->prod = nta_producer_create(&r->o->kafka, id, &no_txn, err, errlen);
    if (r->prod) {
        r->exactly_once = 1;
        if (r->o->verbose)
            fprintf(stderr, "nta: exactly-once delivery, transactional.id %s\n", id);
        return 0;
    }
    if (!no_txn || r->o->delivery == NTA_DELIVERY_EXACTLY_ONCE)
        return -1;
    fprintf(stderr, "nta: %s; falling back to at-least-once delivery\n", err);
    r->prod = nta_producer_create(&r->o->kafka, NULL, NULL, err, errlen);
    return r->prod ? 0 : -1;
}

int nta_run_pipeline_kafka(nta_script *s, nta_pipeline_conf *conf, const nta_run_opts *o)
{
    kafka_run r = {.conf = conf, .o = o};
    char err[512];
    int rc = 0;
    if (create_producer(&r, err, sizeof err) != 0) {
        fprintf(stderr, "nta: %s\n", err);
        return 1;
    }
    r.p = create_pipeline(conf, s, (nta_sink){kafka_send, &r}, o, err, sizeof err);
    if (r.p == NULL || (r.rk = consumer_create(&r, err, sizeof err)) == NULL) {
        fprintf(stderr, "nta: %s\n", err);
        nta_pipeline_destroy(r.p);
        nta_producer_destroy(r.prod, 0);
        return 1;
    }
    nta_producer_prepare(r.prod, conf->output_topic);
    nta_producer_prepare(r.prod, conf->dlq_topic);
    nta_producer_prepare(r.prod, conf->late_topic);
    r.http = attach_http(o, r.p, conf, "kafka");
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(r.rk);
    rd_kafka_message_t *msgs[NTA_PREDECODE_MAX];
    const char *payloads[NTA_PREDECODE_MAX];
    size_t lens[NTA_PREDECODE_MAX];
    /* CSV lines depend on the header before them: decoded in order only. */
    nta_predecode *pd = conf->format == NTA_FMT_CSV
                            ? NULL
                            : nta_predecode_create(nta_pipeline_decoder(r.p));
    nta_status_line sl;
    nta_status_init(&sl, o->verbose, nta_wall_us());
    r.sl = &sl;
    r.last_commit_us = nta_wall_us();
    int drained = 0;
    while (!nta_run_stop && !r.fatal) {
        r.rebalanced = 0;
        before_consume(&r, q, nta_wall_us());
        ssize_t n = rd_kafka_consume_batch_queue(q, 100, msgs, sizeof msgs / sizeof msgs[0]);
        if (r.rebalanced) {
            /* The rebalance callback ran inside this call: the batch may hold
             * messages of the old assignment, read before the state they
             * belong to was dropped. Drop the batch and read the new
             * assignment from its start again. */
            restart_assignment(&r, msgs, n);
            n = 0;
        }
        /* Before this batch moves the watermark: a partition caught up
         * earlier whose end has moved since (as the last fetch saw it) is
         * behind again and must hold the watermark back. */
        for (int32_t i = 0; i < r.nparts; i++) {
            part_state *ps = &r.parts[i];
            int64_t lo, hi;
            if (ps->assigned && ps->eof && ps->next >= 0 &&
                rd_kafka_get_watermark_offsets(r.rk, conf->input_topic, i, &lo, &hi) == 0 &&
                hi > ps->next) {
                ps->eof = 0;
                nta_pipeline_partition_behind(r.p, i);
            }
        }
        if (pd && n > 0) {
            for (ssize_t i = 0; i < n; i++) {
                payloads[i] = msgs[i]->err ? NULL : msgs[i]->payload;
                lens[i] = msgs[i]->len;
            }
            nta_predecode_begin(pd, payloads, lens, (size_t)n, (void *const *)msgs,
                                destroy_message);
        }
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = msgs[i];
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                part_state *ps = part(&r, m->partition);
                ps->next = m->offset; /* the end, where reading goes on */
                ps->eof = 1;
                nta_pipeline_partition_at_end(r.p, m->partition);
            } else if (m->err) {
                consumer_error(&r, m->err, rd_kafka_message_errstr(m));
            } else {
                part_state *ps = part(&r, m->partition);
                ps->eof = 0;
                ps->next = m->offset + 1;
                if (ps->first < 0)
                    ps->first = m->offset;
                if (r.broker_down) {
                    r.broker_down = 0;
                    r.note[0] = '\0';
                }
                rd_kafka_timestamp_type_t tstype;
                int64_t ts = rd_kafka_message_timestamp(m, &tstype);
                const nta_decoded *d = pd ? nta_predecode_get(pd, (size_t)i) : NULL;
                if (d && d->status != NTA_PREDECODE_IN_ORDER)
                    nta_pipeline_feed_decoded(r.p, m->partition, m->offset, m->key, m->key_len,
                                              m->payload, m->len, ts,
                                              (nta_decode_status)d->status, &d->rec);
                else
                    nta_pipeline_feed(r.p, m->partition, m->offset, m->key, m->key_len,
                                      m->payload, m->len, ts);
            }
            if (pd)
                nta_predecode_done_with(pd, (size_t)i + 1);
            else
                rd_kafka_message_destroy(m);
        }
        if (pd && n > 0)
            nta_predecode_end(pd);
        int64_t t = nta_wall_us();
        /* Without brokers the input is not idle, it is unreachable: closing
         * windows on the wall clock would make the records that follow late. */
        if (!r.broker_down)
            nta_pipeline_tick(r.p, t / 1000);
        maybe_reload(r.p);
        if (n < NTA_PREDECODE_MAX)
            wake_fetcher(&r, t);
        nta_producer_poll(r.prod, 0);
        if (t - r.last_commit_us >= (int64_t)o->commit_interval_ms * 1000) {
            if (r.exactly_once) {
                if (r.dirty || nta_producer_txn_failed(r.prod) || offsets_moved(&r))
                    txn_commit(&r);
            } else {
                snapshot_commit(&r);
            }
            r.last_commit_us = nta_wall_us();
        }
        if (!r.exactly_once)
            commit_ready(&r, 0);
        report(&r, t);
        if (o->until_end && all_at_end(&r)) {
            drained = 1;
            break;
        }
    }
    nta_status_done(&sl);
    if (drained)
        nta_pipeline_flush(r.p);
    /* Commit what was produced. Without --until-end open windows are not
     * flushed: their records stay uncommitted and are read again on restart. */
    if (!r.fatal && commit_now(&r) != 0) {
        fprintf(stderr, r.exactly_once
                            ? "nta: the last transaction was not committed; its results are "
                              "produced again on restart\n"
                            : "nta: results not acknowledged within 60 s; their offsets stay "
                              "uncommitted and will be read again\n");
        rc = 1;
    }
    if (r.fatal)
        rc = 1;
    for (size_t i = 0; i < r.npending; i++)
        rd_kafka_topic_partition_list_destroy(r.pending[i].offsets);
    free(r.pending);
    print_summary(r.p);
    if (r.exactly_once)
        fprintf(stderr, "nta:   transactions: %llu committed, %llu aborted, %llu rewinds\n",
                (unsigned long long)r.commits, (unsigned long long)r.aborts,
                (unsigned long long)r.rewinds);
    if (r.fetch_wakes)
        fprintf(stderr, "nta:   idle fetcher woken %llu times (wake_fetcher in run.c)\n",
                (unsigned long long)r.fetch_wakes);
    nta_predecode_destroy(pd);
    rd_kafka_queue_destroy(q);
    r.closing = 1; /* closing the consumer revokes: committed just above */
    rd_kafka_consumer_close(r.rk);
    consumer_destroy(&r, r.rk);
    long left = nta_producer_destroy(r.prod, r.exactly_once ? 0 : 10000);
    if (left > 0 && !r.exactly_once) {
        fprintf(stderr, "nta: %ld output messages undelivered at exit\n", left);
        rc = 1;
    }
    nta_http_detach(r.http);
    nta_pipeline_destroy(r.p);
    free(r.parts);
    return rc;
}

/* ---- generator ---- */

typedef struct gen_run {
    const nta_gen_conf *conf;
    nta_producer *prod; /* NULL: write to stdout */
    nta_buf val;
    int failed;
    char err[256];
} gen_run;

static void gen_emit(void *ctx, const nta_record *rec)
{
    gen_run *g = ctx;
    nta_buf_reset(&g->val);
    nta_gen_encode(&g->val, rec, g->conf->format);
    if (g->prod == NULL) {
        nta_buf_putc(&g->val, '\n');
        fwrite(g->val.data, 1, g->val.len, stdout);
        return;
    }
    /* Keyed by source address, so one source's records stay in order on one partition. */
    char key[NTA_FIELD_TEXT_MAX];
    size_t klen = nta_addr_format(&rec->src, key);
    if (nta_producer_send(g->prod, g->conf->topic, key, klen, g->val.data, g->val.len,
                          rec->ts_ms, NULL, NULL, g->err, sizeof g->err) != 0)
        g->failed = 1;
}

int nta_run_generator(nta_script *s, nta_gen_conf *conf, const nta_run_opts *o)
{
    gen_run g = {.conf = conf};
    char err[2048];
    if (o->kafka.brokers && (g.prod = nta_producer_create(&o->kafka, NULL, NULL, err, sizeof err)) == NULL) {
        fprintf(stderr, "nta: %s\n", err);
        return 1;
    }
    int64_t t = nta_wall_us();
    nta_gen *gen = nta_gen_create(s, conf, o->fast, t);
    int rc = 0;
    int64_t last_report = t;
    while (!nta_run_stop && !nta_gen_finished(gen) && !g.failed) {
        t = nta_wall_us();
        if (nta_gen_step(gen, t, 10000, gen_emit, &g, err, sizeof err) < 0) {
            fprintf(stderr, "nta: generator: %s\n", err);
            rc = 1;
            break;
        }
        if (g.prod)
            nta_producer_poll(g.prod, 0);
        if (o->verbose && t - last_report >= 5000000) {
            fprintf(stderr, "nta: generated %lld records, %.0f records/s (target %.0f)\n",
                    (long long)nta_gen_emitted(gen), nta_gen_achieved_rate(gen, t), conf->rate);
            last_report = t;
        }
        int64_t wait = nta_gen_wait_us(gen, nta_wall_us());
        if (wait > 0)
            nta_sleep_us(wait < 50000 ? wait : 50000);
    }
    if (g.failed) {
        fprintf(stderr, "nta: generator: %s\n", g.err);
        rc = 1;
    }
    t = nta_wall_us();
    fprintf(stderr, "nta: generated %lld records, achieved %.0f records/s (target %.0f%s)\n",
            (long long)nta_gen_emitted(gen), nta_gen_achieved_rate(gen, t), conf->rate,
            o->fast ? ", unpaced" : "");
    if (g.prod) {
        long left = nta_producer_destroy(g.prod, 60000);
        if (left > 0) {
            fprintf(stderr, "nta: %ld records undelivered\n", left);
            rc = 1;
        }
    } else {
        fflush(stdout);
    }
    nta_buf_free(&g.val);
    nta_gen_destroy(gen);
    return rc;
}

void nta_run_print_summary(nta_pipeline *p) { print_summary(p); }
