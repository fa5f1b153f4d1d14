#include "pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "output.h"

struct nta_pipeline {
    const nta_pipeline_conf *conf;
    nta_script *script;
    nta_sink sink;
    nta_decoder dec;
    nta_window *win[NTA_MAX_WINDOWS];
    int nwin;
    nta_offsets *offsets;
    nta_pipeline_stats st;
    int64_t last_record_wall_ms; /* wall clock at the last tick that saw records */
    int fed_since_tick;
    nta_buf key, val;            /* reused for every output message */
    char late_windows[NTA_MAX_WINDOWS * NTA_WINDOW_NAME_MAX];
    unsigned script_errors_logged;
    int64_t resume_wm;
    /* The watermark at which the next window of any definition closes:
     * checked per record, so windows close exactly when the watermark passes
     * their end, however records are batched. */
    int64_t next_close;
    nta_tap_fn tap;
    void *tap_ctx;
};

nta_pipeline *nta_pipeline_create(const nta_pipeline_conf *conf, nta_script *script,
                                  nta_sink sink, char *err, size_t errlen)
{
    nta_pipeline *p = calloc(1, sizeof *p);
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->conf = conf;
    p->script = script;
    p->sink = sink;
    p->st.max_event_ms = p->st.watermark_ms = INT64_MIN;
    p->resume_wm = INT64_MIN;
    p->next_close = INT64_MIN;
    nta_decoder_init(&p->dec, conf->format);
    if (conf->ncsv_columns &&
        nta_decoder_set_columns(&p->dec, (const char *const *)conf->csv_columns,
                                conf->ncsv_columns, err, errlen) != 0)
        goto fail;
    for (int i = 0; i < conf->nwindows; i++) {
        if (nta_window_spec_check(&conf->windows[i], err, errlen) != 0)
            goto fail;
        if ((p->win[i] = nta_window_create(&conf->windows[i])) == NULL) {
            snprintf(err, errlen, "window '%s': out of memory", conf->windows[i].name);
            goto fail;
        }
        p->nwin++;
    }
    if ((p->offsets = nta_offsets_create()) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return p;
fail:
    nta_pipeline_destroy(p);
    return NULL;
}

void nta_pipeline_destroy(nta_pipeline *p)
{
    if (p == NULL)
        return;
    for (int i = 0; i < p->nwin; i++)
        nta_window_destroy(p->win[i]);
    nta_offsets_destroy(p->offsets);
    nta_buf_free(&p->key);
    nta_buf_free(&p->val);
    free(p);
}

static void send(nta_pipeline *p, const char *topic, const char *key, size_t klen,
                 const char *val, size_t vlen, int64_t ts, const char *hname, const char *hval)
{
    if (p->sink.send(p->sink.ctx, topic, key, klen, val, vlen, ts, hname, hval) != 0)
        p->st.output_errors++;
}

static void advance(nta_pipeline *p, int64_t wm);

static int matches(const nta_window_spec *sp, const nta_record *r)
{
    for (int f = 0; f < sp->nwhere; f++) {
        uint64_t v = nta_record_u64(r, sp->where[f].field);
        int any = 0;
        for (int k = 0; k < sp->where[f].nvalues; k++)
            any |= sp->where[f].values[k] == v;
        if (!any)
            return 0;
    }
    return 1;
}

/* Aggregates r into every window; returns the end time until which its
 * input offset must stay uncommitted, or INT64_MIN if no window took it. */
static int64_t aggregate(nta_pipeline *p, const nta_record *r)
{
    int64_t done = INT64_MIN;
    size_t nlate = 0;
    p->late_windows[0] = '\0';
    for (int i = 0; i < p->nwin; i++) {
        if (p->conf->windows[i].nwhere && !matches(&p->conf->windows[i], r))
            continue;
        if (nta_window_add(p->win[i], r) == 0) {
            int64_t e = nta_window_last_end(&p->conf->windows[i], r->ts_ms);
            if (e > done)
                done = e;
        } else {
            size_t n = strlen(p->conf->windows[i].name);
            if (nlate)
                p->late_windows[nlate++] = ',';
            memcpy(p->late_windows + nlate, p->conf->windows[i].name, n + 1);
            nlate += n;
        }
    }
    if (done != INT64_MIN)
        p->st.records_ok++;
    if (nlate)
        p->st.late_records++;
    p->fed_since_tick = 1;
    if (r->ts_ms > p->st.max_event_ms) {
        p->st.max_event_ms = r->ts_ms;
        if (r->ts_ms - p->conf->lateness_ms >= p->next_close)
            advance(p, r->ts_ms - p->conf->lateness_ms);
    }
    return done;
}

void nta_pipeline_feed(nta_pipeline *p, int32_t partition, int64_t offset, const char *key,
                       size_t klen, const char *payload, size_t len, int64_t msg_ts_ms)
{
    nta_record r;
    p->st.records_in++;
    nta_decode_status s = nta_decode(&p->dec, payload, len, &r);
    if (s == NTA_DEC_OK && r.ts_ms == NTA_TS_NONE) {
        if (msg_ts_ms > 0)
            r.ts_ms = msg_ts_ms;
        else
            s = NTA_DEC_BAD_TIME;
    }
    int64_t done = INT64_MIN;
    if (s == NTA_DEC_OK) {
        done = aggregate(p, &r);
        if (p->late_windows[0] && p->conf->late_topic[0])
            send(p, p->conf->late_topic, key, klen, payload, len, msg_ts_ms, "nta-late",
                 p->late_windows);
    } else if (s == NTA_DEC_SKIP) {
        p->st.records_in--; /* a CSV header is not a record */
    } else {
        p->st.bad[s]++;
        p->st.bad_total++;
        if (p->conf->dlq_topic[0])
            send(p, p->conf->dlq_topic, key, klen, payload, len, msg_ts_ms, "nta-error",
                 nta_decode_status_name(s));
    }
    if (partition >= 0)
        nta_offsets_track(p->offsets, partition, offset, done);
}

void nta_pipeline_feed_record(nta_pipeline *p, const nta_record *r)
{
    p->st.records_in++;
    aggregate(p, r);
}

static void emit_result(void *ctx, const nta_result *res)
{
    nta_pipeline *p = ctx;
    if (res->end_ms <= p->resume_wm) {
        p->st.results_suppressed++;
        return;
    }
    nta_buf_reset(&p->key);
    nta_buf_reset(&p->val);
    nta_output_result_key(&p->key, res);
    nta_output_result_json(&p->val, res);
    send(p, p->conf->output_topic, p->key.data, p->key.len, p->val.data, p->val.len,
         res->end_ms, NULL, NULL);
    p->st.results_out++;
    if (p->tap)
        p->tap(p->tap_ctx, NTA_EVENT_WINDOW, p->val.data, p->val.len);
    if (p->script && nta_script_has_on_window(p->script)) {
        char err[2048];
        if (nta_script_on_window(p->script, res, err, sizeof err) != 0) {
            p->st.script_errors++;
            /* One bad result should not flood the log: show the first few. */
            if (p->script_errors_logged++ < 5)
                fprintf(stderr, "nta: on_window failed (%llu so far): %s\n",
                        (unsigned long long)p->st.script_errors, err);
        }
    }
}

static void advance(nta_pipeline *p, int64_t wm)
{
    if (wm <= p->st.watermark_ms)
        return;
    p->st.watermark_ms = wm;
    p->next_close = INT64_MAX;
    for (int i = 0; i < p->nwin; i++) {
        nta_window_advance(p->win[i], wm, emit_result, p);
        /* The first aligned end (k * slide + size) after wm. */
        const nta_window_spec *sp = &p->conf->windows[i];
        int64_t k = (wm - sp->size_ms) / sp->slide_ms;
        if ((wm - sp->size_ms) % sp->slide_ms < 0)
            k--;
        int64_t next = (k + 1) * sp->slide_ms + sp->size_ms;
        if (next < p->next_close)
            p->next_close = next;
    }
    nta_offsets_release(p->offsets, wm);
}

void nta_pipeline_tick(nta_pipeline *p, int64_t now_ms)
{
    /* The clock is read per tick, not per record: idleness is measured in
     * seconds, and a clock read per record would cost more than decoding. */
    if (p->fed_since_tick) {
        p->last_record_wall_ms = now_ms;
        p->fed_since_tick = 0;
    }
    if (p->st.max_event_ms == INT64_MIN)
        return;
    int64_t wm = p->st.max_event_ms - p->conf->lateness_ms;
    int64_t quiet = now_ms - p->last_record_wall_ms;
    if (quiet >= p->conf->idle_timeout_ms)
        wm += quiet;
    advance(p, wm);
}

void nta_pipeline_set_tap(nta_pipeline *p, nta_tap_fn fn, void *ctx)
{
    p->tap = fn;
    p->tap_ctx = ctx;
}

void nta_pipeline_set_resume_watermark(nta_pipeline *p, int64_t wm) { p->resume_wm = wm; }

void nta_pipeline_flush(nta_pipeline *p)
{
    for (int i = 0; i < p->nwin; i++)
        nta_window_flush(p->win[i], emit_result, p);
    nta_offsets_release(p->offsets, INT64_MAX);
}

const nta_pipeline_stats *nta_pipeline_get_stats(const nta_pipeline *p) { return &p->st; }
nta_offsets *nta_pipeline_offsets(nta_pipeline *p) { return p->offsets; }
int nta_pipeline_windows(const nta_pipeline *p) { return p->nwin; }
const nta_window *nta_pipeline_window(const nta_pipeline *p, int i) { return p->win[i]; }
