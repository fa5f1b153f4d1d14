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
    int64_t next;      /* next offset to read (last seen + 1); -1 unknown */
    int64_t committed; /* last offset committed by this process; -1 none */
    int seen;          /* assigned before in this process (--from applies once) */
} part_state;

typedef struct pending_commit {
    uint64_t epoch;
    rd_kafka_topic_partition_list_t *offsets;
} pending_commit;

typedef struct kafka_run {
    const nta_pipeline_conf *conf;
    const nta_run_opts *o;
    rd_kafka_t *rk;
    nta_producer *prod;
    nta_pipeline *p;
    part_state *parts;
    int nparts;
    pending_commit *pending;
    size_t npending, cappending;
    int64_t resume_wm; /* windows ending at or before this were emitted before a restart */
    int64_t last_commit_us, last_err_us;
    char note[256];
} kafka_run;

static part_state *part(kafka_run *r, int32_t p)
{
    if (p >= r->nparts) {
        part_state *np = realloc(r->parts, sizeof(part_state) * (size_t)(p + 1));
        if (np == NULL)
            abort();
        for (int i = r->nparts; i <= p; i++)
            np[i] = (part_state){.next = -1, .committed = -1};
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
    if (nta_producer_send(r->prod, topic, key, klen, val, vlen, ts_ms, hdr_name, hdr_val, err,
                          sizeof err) != 0) {
        snprintf(r->note, sizeof r->note, "%s", err);
        return -1;
    }
    return 0;
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

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    kafka_run *r = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (r->o->from == NTA_FROM_COMMITTED &&
            rd_kafka_committed(rk, parts, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            for (int i = 0; i < parts->cnt; i++) {
                int64_t wm = parse_wm_meta(&parts->elems[i]);
                if (wm != INT64_MIN && (r->resume_wm == INT64_MIN || wm < r->resume_wm))
                    r->resume_wm = wm;
            }
            nta_pipeline_set_resume_watermark(r->p, r->resume_wm);
        }
        for (int i = 0; i < parts->cnt; i++) {
            part_state *ps = part(r, parts->elems[i].partition);
            if (!ps->seen && r->o->from != NTA_FROM_COMMITTED)
                parts->elems[i].offset = r->o->from == NTA_FROM_BEGINNING
                                             ? RD_KAFKA_OFFSET_BEGINNING
                                             : RD_KAFKA_OFFSET_END;
            else if (r->o->from != NTA_FROM_COMMITTED)
                parts->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
            ps->seen = ps->assigned = 1;
            ps->eof = 0;
        }
        if (r->o->verbose)
            fprintf(stderr, "nta: assigned %d partition(s) of %s\n", parts->cnt,
                    r->conf->input_topic);
        rd_kafka_assign(rk, parts);
    } else {
        for (int i = 0; i < parts->cnt; i++) {
            part_state *ps = part(r, parts->elems[i].partition);
            ps->assigned = ps->eof = 0;
            nta_offsets_forget(nta_pipeline_offsets(r->p), parts->elems[i].partition);
        }
        if (r->o->verbose)
            fprintf(stderr, "nta: revoked %d partition(s)\n", parts->cnt);
        rd_kafka_assign(rk, NULL);
    }
}

/* Closes the producer's epoch with a snapshot of the offsets that its
 * results cover; the snapshot is committed once the epoch is delivered. */
static void snapshot_commit(kafka_run *r)
{
    nta_offsets *off = nta_pipeline_offsets(r->p);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    char meta[40];
    int mlen = snprintf(meta, sizeof meta, WM_META_PREFIX "%" PRId64,
                        nta_pipeline_get_stats(r->p)->watermark_ms);
    for (int32_t i = 0; i < r->nparts; i++) {
        if (!r->parts[i].assigned)
            continue;
        int64_t c = nta_offsets_commit_point(off, i);
        if (c < 0 || c <= r->parts[i].committed)
            continue;
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_add(l, r->conf->input_topic, i);
        tp->offset = c;
        tp->metadata = malloc((size_t)mlen);
        if (tp->metadata == NULL)
            abort();
        memcpy(tp->metadata, meta, (size_t)mlen);
        tp->metadata_size = (size_t)mlen;
        r->parts[i].committed = c;
    }
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

/* Commits every snapshot whose epoch is fully delivered, oldest first. */
static void commit_ready(kafka_run *r, int sync)
{
    size_t k = 0;
    while (k < r->npending && nta_producer_epoch_done(r->prod, r->pending[k].epoch)) {
        rd_kafka_resp_err_t e = rd_kafka_commit(r->rk, r->pending[k].offsets, !sync);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
            snprintf(r->note, sizeof r->note, "commit: %s", rd_kafka_err2str(e));
        rd_kafka_topic_partition_list_destroy(r->pending[k].offsets);
        k++;
    }
    if (k) {
        memmove(r->pending, r->pending + k, (r->npending - k) * sizeof *r->pending);
        r->npending -= k;
    }
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

static void consumer_error(kafka_run *r, const rd_kafka_message_t *m)
{
    snprintf(r->note, sizeof r->note, "consumer: %s", rd_kafka_message_errstr(m));
    int64_t t = nta_wall_us();
    if (t - r->last_err_us >= 10000000) {
        fprintf(stderr, "nta: consumer: %s\n", rd_kafka_message_errstr(m));
        r->last_err_us = t;
    }
}

static rd_kafka_t *consumer_create(kafka_run *r, char *err, size_t errlen)
{
    const char *defaults[] = {
        "group.id", r->o->kafka.group ? r->o->kafka.group : "nta",
        /* Offsets are committed by hand, only once results are delivered. */
        "enable.auto.commit", "false",
        "enable.auto.offset.store", "false",
        "auto.offset.reset", r->o->from == NTA_FROM_LATEST ? "latest" : "earliest",
        "enable.partition.eof", r->o->until_end ? "true" : "false",
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
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_opaque(conf, r);
    char rderr[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof rderr);
    if (rk == NULL) {
        snprintf(err, errlen, "cannot create the Kafka consumer: %s", rderr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, r->conf->input_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "subscribe to %s: %s", r->conf->input_topic, rd_kafka_err2str(e));
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;
}

int nta_run_pipeline_kafka(nta_script *s, nta_pipeline_conf *conf, const nta_run_opts *o)
{
    kafka_run r = {.conf = conf, .o = o, .resume_wm = INT64_MIN};
    char err[512];
    int rc = 0;
    if ((r.prod = nta_producer_create(&o->kafka, err, sizeof err)) == NULL) {
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
    nta_http *http = attach_http(o, r.p, conf, "kafka");
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(r.rk);
    rd_kafka_message_t *msgs[4096];
    nta_status_line sl;
    nta_status_init(&sl, o->verbose, nta_wall_us());
    r.last_commit_us = nta_wall_us();
    int drained = 0;
    while (!nta_run_stop) {
        ssize_t n = rd_kafka_consume_batch_queue(q, 100, msgs, sizeof msgs / sizeof msgs[0]);
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = msgs[i];
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                part(&r, m->partition)->eof = 1;
            } else if (m->err) {
                consumer_error(&r, m);
            } else {
                part_state *ps = part(&r, m->partition);
                ps->eof = 0;
                ps->next = m->offset + 1;
                rd_kafka_timestamp_type_t tstype;
                int64_t ts = rd_kafka_message_timestamp(m, &tstype);
                nta_pipeline_feed(r.p, m->partition, m->offset, m->key, m->key_len, m->payload,
                                  m->len, ts);
            }
            rd_kafka_message_destroy(m);
        }
        int64_t t = nta_wall_us();
        nta_pipeline_tick(r.p, t / 1000);
        maybe_reload(r.p);
        nta_producer_poll(r.prod, 0);
        if (t - r.last_commit_us >= (int64_t)o->commit_interval_ms * 1000) {
            snapshot_commit(&r);
            r.last_commit_us = t;
        }
        commit_ready(&r, 0);
        nta_status_values v;
        status_values(&v, nta_pipeline_get_stats(r.p));
        v.lag = total_lag(&r);
        v.note = r.note[0] ? r.note : nta_producer_last_error(r.prod);
        nta_status_update(&sl, t, &v, 0);
        if (http) {
            nta_producer_stats pst;
            nta_producer_get_stats(r.prod, &pst);
            nta_http_tick(http, v.lag, &pst, v.note, t);
        }
        if (o->until_end && all_at_end(&r)) {
            drained = 1;
            break;
        }
    }
    nta_status_done(&sl);
    if (drained)
        nta_pipeline_flush(r.p);
    /* Deliver what was produced, then commit what that covers. Without
     * --until-end open windows are not flushed: their records stay
     * uncommitted and are read again on restart. */
    snapshot_commit(&r);
    for (int i = 0; i < 600 && r.npending; i++) {
        nta_producer_poll(r.prod, 100);
        commit_ready(&r, 1);
    }
    if (r.npending) {
        fprintf(stderr, "nta: results not acknowledged within 60 s; their offsets stay "
                        "uncommitted and will be read again\n");
        rc = 1;
    }
    for (size_t i = 0; i < r.npending; i++)
        rd_kafka_topic_partition_list_destroy(r.pending[i].offsets);
    free(r.pending);
    print_summary(r.p);
    rd_kafka_queue_destroy(q);
    rd_kafka_consumer_close(r.rk);
    rd_kafka_destroy(r.rk);
    long left = nta_producer_destroy(r.prod, 10000);
    if (left > 0) {
        fprintf(stderr, "nta: %ld output messages undelivered at exit\n", left);
        rc = 1;
    }
    nta_http_detach(http);
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
    if (o->kafka.brokers && (g.prod = nta_producer_create(&o->kafka, err, sizeof err)) == NULL) {
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
