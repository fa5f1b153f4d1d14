#include "pipeline.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "clock.h"
#include "lane.h"
#include "output.h"
#include "rules.h"

/* The last result of a window, kept for dry-running a reload's rules. */
typedef struct last_result {
    int valid;
    const nta_window_spec *spec_of; /* the window's own spec that spec copies */
    nta_window_spec spec;
    nta_result r;
} last_result;

typedef struct part_time {
    int64_t max_ms; /* newest event time read; INT64_MIN before the first */
    int64_t end_since_ms; /* wall clock when it reached its end */
    uint8_t assigned, at_end;
} part_time;

struct nta_pipeline {
    /* A copy of the script's declarations; its heap members (CSV columns,
     * generator arguments, rule paths) are not kept: they are used at
     * creation only. */
    nta_pipeline_conf conf;
    nta_script *script;       /* on_window; the caller's until a reload */
    nta_script *owned_script; /* loaded by a reload, destroyed with the pipeline */
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
    /* Per input partition, the end of the last window already emitted before
     * a restart (INT64_MIN: none); resume_wm is the smallest of those set. */
    int64_t *resume_part;
    int32_t nresume_part;
    int64_t resume_wm;
    /* Event-time frontier of each assigned input partition (see
     * nta_pipeline_partition); frontier caches the watermark's base. */
    part_time *parts;
    int32_t nparts, nassigned;
    int64_t frontier;
    int32_t input_part; /* the partition the windows were last told of */
    /* The watermark at which the next window of any definition closes:
     * checked per record, so windows close exactly when the watermark passes
     * their end, however records are batched. */
    int64_t next_close;
    nta_tap_fn tap;
    void *tap_ctx;

    nta_rules *rules;
    nta_rule_limits limits;
    /* The script and arguments a reload runs again. */
    char origin[NTA_PATH_MAX];
    int origin_argc;
    char *const *origin_argv;
    char *const *extra_rules; /* --rules paths: not in the script, read again too */
    int nextra_rules;
    uint64_t generation;
    nta_buf reload_json;
    int64_t reload_started_ns;
    last_result last[NTA_MAX_WINDOWS];
    /* The window being emitted, to tell rules when one has been fully seen. */
    int emitting;
    int64_t emitting_end;
    int64_t now_ms; /* wall clock at the last tick or window close */

    /* The windows a lane adds to (bit i: win[i]); NULL lane: none. For each,
     * what the pipeline's thread needs to judge a record without touching
     * the window: its emitted_upto as of the last drain, and the slide
     * interval [lo, hi) of the last record with the end of the last window
     * over it. */
    nta_lane *lane;
    uint32_t lane_mask;
    int64_t lane_upto[NTA_MAX_WINDOWS];
    struct {
        int64_t lo, hi, end;
    } lane_span[NTA_MAX_WINDOWS];
};

static void rules_alert(void *ctx, const char *topic, const char *key, size_t klen,
                        const char *json, size_t len);

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Expands rule paths: a directory stands for its *.lua files in name order.
 * Returns the number of files (strdup'ed into files), or -1 with err. */
static int rule_files(char *const *paths, int npaths, char **files, int max, char *err,
                      size_t errlen)
{
    int n = 0;
    for (int i = 0; i < npaths; i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0) {
            snprintf(err, errlen, "rules: %s: no such file or directory", paths[i]);
            goto fail;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (n == max)
                goto toomany;
            files[n++] = strdup(paths[i]);
            continue;
        }
        DIR *d = opendir(paths[i]);
        if (d == NULL) {
            snprintf(err, errlen, "rules: %s: cannot read the directory", paths[i]);
            goto fail;
        }
        int first = n;
        for (struct dirent *de; (de = readdir(d)) != NULL;) {
            size_t l = strlen(de->d_name);
            if (l < 5 || strcmp(de->d_name + l - 4, ".lua") != 0 || de->d_name[0] == '.')
                continue;
            if (n == max) {
                closedir(d);
                goto toomany;
            }
            char path[NTA_PATH_MAX];
            snprintf(path, sizeof path, "%.2000s/%.2000s", paths[i], de->d_name);
            files[n++] = strdup(path);
        }
        closedir(d);
        qsort(files + first, (size_t)(n - first), sizeof *files, cmp_str);
    }
    return n;
toomany:
    snprintf(err, errlen, "rules: more than %d rule files", max);
fail:
    for (int i = 0; i < n; i++)
        free(files[i]);
    return -1;
}

/* Loads the rules conf declares (files and inline threshold rules) and checks
 * them against conf's windows. Returns the rule set (NULL when there are no
 * files) and 0, or -1 with err. */
static int load_rules(const nta_pipeline_conf *conf, const nta_rule_limits *lim,
                      nta_ruleset **out, char *err, size_t errlen)
{
    char *files[NTA_MAX_RULES];
    int n = rule_files(conf->rule_paths, conf->nrule_paths, files, NTA_MAX_RULES, err, errlen);
    if (n < 0)
        return -1;
    nta_ruleset *rs = NULL;
    if (n > 0)
        rs = nta_ruleset_load((const char *const *)files, n, lim, err, errlen);
    for (int i = 0; i < n; i++)
        free(files[i]);
    if (n > 0 && rs == NULL)
        return -1;
    int total = conf->ninline_rules + nta_ruleset_count(rs);
    nta_rule_def *all = calloc((size_t)(total ? total : 1), sizeof *all);
    if (all == NULL) {
        nta_ruleset_destroy(rs);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (conf->ninline_rules)
        memcpy(all, conf->inline_rules, sizeof *all * (size_t)conf->ninline_rules);
    for (int i = 0; i < nta_ruleset_count(rs); i++)
        all[conf->ninline_rules + i] = *nta_ruleset_rule(rs, i);
    int rc = nta_rules_check(all, total, conf->windows, conf->nwindows, err, errlen);
    free(all);
    if (rc != 0) {
        nta_ruleset_destroy(rs);
        return -1;
    }
    *out = rs;
    return 0;
}

static void keep_scalars(nta_pipeline_conf *dst, const nta_pipeline_conf *src)
{
    *dst = *src;
    memset(dst->csv_columns, 0, sizeof dst->csv_columns);
    memset(dst->generator_args, 0, sizeof dst->generator_args);
    memset(dst->rule_paths, 0, sizeof dst->rule_paths);
    dst->ncsv_columns = dst->ngenerator_args = dst->nrule_paths = 0;
    dst->inline_rules = NULL;
    dst->ninline_rules = 0;
}

/* After a close, what the pipeline's thread reads of the lane's windows. */
static void lane_closed(nta_pipeline *p)
{
    for (int i = 0; i < p->nwin; i++)
        p->lane_upto[i] = nta_window_emitted_upto(p->win[i]);
}

/* A window's share of the work of adding a record, roughly in cache
 * misses: its table, and each sketch aggregate's own memory. */
static int add_cost(const nta_window_spec *sp)
{
    int c = 2;
    for (int j = 0; j < sp->naggs; j++)
        if (sp->aggs[j].kind == NTA_AGG_DISTINCT || sp->aggs[j].kind == NTA_AGG_TOPK ||
            sp->aggs[j].kind == NTA_AGG_QUANTILE)
            c += 2;
    return c;
}

/* Gives the lane its share of the windows, costliest first, each to the side
 * further below its target. The pipeline's thread keeps less than half:
 * it also decodes, reads the input and keeps the offsets. */
#define LANE_SHARE 0.6

static void assign_lane(nta_pipeline *p)
{
    p->lane_mask = 0;
    if (p->lane == NULL)
        return;
    int cost[NTA_MAX_WINDOWS], order[NTA_MAX_WINDOWS];
    for (int i = 0; i < p->nwin; i++) {
        cost[i] = add_cost(&p->conf.windows[i]);
        order[i] = i;
        for (int j = i; j > 0 && cost[order[j]] > cost[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    }
    double lane = 0, own = 0;
    for (int k = 0; k < p->nwin; k++) {
        int i = order[k];
        if (lane / LANE_SHARE <= own / (1 - LANE_SHARE)) {
            p->lane_mask |= 1u << i;
            lane += cost[i];
        } else {
            own += cost[i];
        }
    }
    /* A lane with all the windows, or none, saves nothing. */
    if (own == 0 || lane == 0)
        p->lane_mask = 0;
    lane_closed(p);
    for (int i = 0; i < p->nwin; i++)
        p->lane_span[i].lo = p->lane_span[i].hi = 0;
    nta_lane_set_windows(p->lane, p->win, p->lane_mask);
}

/* Every record queued for the lane is in its windows: the pipeline's
 * thread may touch them. */
static void drain_lane(const nta_pipeline *p)
{
    if (p->lane != NULL)
        nta_lane_drain(p->lane);
}

nta_pipeline *nta_pipeline_create(const nta_pipeline_conf *conf, nta_script *script,
                                  nta_sink sink, char *err, size_t errlen)
{
    nta_pipeline *p = calloc(1, sizeof *p);
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    keep_scalars(&p->conf, conf);
    p->limits = conf->rule_limits;
    p->now_ms = nta_wall_ms();
    p->script = script;
    p->sink = sink;
    p->st.max_event_ms = p->st.watermark_ms = INT64_MIN;
    p->resume_wm = INT64_MIN;
    p->next_close = INT64_MIN;
    p->frontier = INT64_MIN;
    p->input_part = -1;
    p->emitting = -1;
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
    nta_ruleset *rs = NULL;
    if (load_rules(conf, &p->limits, &rs, err, errlen) != 0)
        goto fail;
    p->rules = nta_rules_create(&p->limits, (nta_rules_out){rules_alert, p});
    if (p->rules == NULL) {
        nta_ruleset_destroy(rs);
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    nta_rules_install(p->rules, rs, conf->inline_rules, conf->ninline_rules, p->conf.windows,
                      p->conf.nwindows);
    p->generation = 1;
    /* NTA_LANE=off: every window on the pipeline's thread (benchmarks
     * compare the two). Without a lane thread the pipeline works alone. */
    const char *lane = getenv("NTA_LANE");
    if (p->nwin >= 2 && !(lane && strcmp(lane, "off") == 0))
        p->lane = nta_lane_create();
    assign_lane(p);
    return p;
fail:
    nta_pipeline_destroy(p);
    return NULL;
}

void nta_pipeline_destroy(nta_pipeline *p)
{
    if (p == NULL)
        return;
    nta_lane_destroy(p->lane);
    for (int i = 0; i < p->nwin; i++)
        nta_window_destroy(p->win[i]);
    nta_offsets_destroy(p->offsets);
    free(p->resume_part);
    free(p->parts);
    nta_rules_destroy(p->rules);
    nta_script_destroy(p->owned_script);
    nta_buf_free(&p->key);
    nta_buf_free(&p->val);
    nta_buf_free(&p->reload_json);
    free(p);
}

static void send(nta_pipeline *p, const char *topic, const char *key, size_t klen,
                 const char *val, size_t vlen, int64_t ts, const char *hname, const char *hval)
{
    if (p->sink.send(p->sink.ctx, topic, key, klen, val, vlen, ts, hname, hval) != 0)
        p->st.output_errors++;
}

static void advance(nta_pipeline *p, int64_t wm);

static int filter_hit(const nta_filter *f, const nta_record *r)
{
    int any = 0;
    if (f->field == NTA_F_SRC_IP || f->field == NTA_F_DST_IP) {
        const nta_addr *a = f->field == NTA_F_SRC_IP ? &r->src : &r->dst;
        for (int k = 0; k < f->nvalues; k++)
            any |= nta_prefix_match(&f->nets[k], a);
    } else {
        uint64_t v = nta_record_u64(r, f->field);
        for (int k = 0; k < f->nvalues; k++)
            any |= f->values[k] == v;
    }
    return any != f->negate;
}

static int matches(const nta_window_spec *sp, const nta_record *r)
{
    for (int f = 0; f < sp->nwhere; f++)
        if (!filter_hit(&sp->where[f], r))
            return 0;
    return 1;
}

/* Aggregates r into every window; returns the end time until which its
 * input offset must stay uncommitted, or INT64_MIN if no window took it. */
static int64_t aggregate(nta_pipeline *p, const nta_record *r)
{
    int64_t done = INT64_MIN;
    size_t nlate = 0;
    p->late_windows[0] = '\0';
    unsigned char take[NTA_MAX_WINDOWS];
    uint32_t lane_take = 0;
    for (int i = 0; i < p->nwin; i++) {
        take[i] = !p->conf.windows[i].nwhere || matches(&p->conf.windows[i], r);
        if (!take[i])
            continue;
        if (p->lane_mask & (1u << i))
            lane_take |= 1u << i;
        else
            nta_window_prefetch(p->win[i], r);
    }
    if (lane_take)
        nta_lane_push(p->lane, r, p->input_part, lane_take);
    for (int i = 0; i < p->nwin; i++) {
        if (!take[i])
            continue;
        int rc;
        int64_t e = 0;
        if (lane_take & (1u << i)) {
            /* What the lane's add will do, from what only a drained close
             * changes. A lane's add that runs out of memory is counted at
             * the next drain; its record still counts as taken here, which
             * at worst keeps its offset uncommitted a little longer. */
            rc = nta_window_late(p->lane_upto[i], r->ts_ms);
            if (rc == 0) {
                if (r->ts_ms < p->lane_span[i].lo || r->ts_ms >= p->lane_span[i].hi) {
                    const nta_window_spec *sp = &p->conf.windows[i];
                    int64_t lo = nta_window_last_end(sp, r->ts_ms) - sp->size_ms;
                    p->lane_span[i].lo = lo;
                    p->lane_span[i].hi = lo + sp->slide_ms;
                    p->lane_span[i].end = lo + sp->size_ms;
                }
                e = p->lane_span[i].end;
            }
        } else {
            rc = nta_window_add(p->win[i], r);
            if (rc == 0)
                e = nta_window_added_last_end(p->win[i]);
        }
        if (rc == 0) {
            if (e > done)
                done = e;
        } else if (rc < 0) {
            p->st.dropped_nomem++;
        } else {
            size_t n = strlen(p->conf.windows[i].name);
            if (nlate)
                p->late_windows[nlate++] = ',';
            memcpy(p->late_windows + nlate, p->conf.windows[i].name, n + 1);
            nlate += n;
        }
    }
    if (done != INT64_MIN)
        p->st.records_ok++;
    if (nlate)
        p->st.late_records++;
    p->fed_since_tick = 1;
    if (r->ts_ms > p->st.max_event_ms)
        p->st.max_event_ms = r->ts_ms;
    int64_t f = p->nassigned ? p->frontier : p->st.max_event_ms;
    if (f != INT64_MIN && f - p->conf.lateness_ms >= p->next_close)
        advance(p, f - p->conf.lateness_ms);
    return done;
}

/* The oldest of the newest event times of the assigned partitions, leaving
 * out those idle (at their end for idle_timeout); with all idle, the newest
 * of all. A partition merely at its end still counts: a producer held up
 * (say by a broker restart) may yet write records of the time it was quiet. */
static void update_frontier(nta_pipeline *p)
{
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    int active = 0;
    for (int32_t i = 0; i < p->nparts; i++) {
        const part_time *pt = &p->parts[i];
        if (!pt->assigned)
            continue;
        if (pt->max_ms > hi)
            hi = pt->max_ms;
        if (!pt->at_end || p->now_ms - pt->end_since_ms < p->conf.idle_timeout_ms) {
            active = 1;
            if (pt->max_ms < lo)
                lo = pt->max_ms;
        }
    }
    p->frontier = active ? lo : hi;
}

static part_time *part_time_of(nta_pipeline *p, int32_t partition)
{
    if (partition >= p->nparts) {
        part_time *np = realloc(p->parts, sizeof(part_time) * (size_t)(partition + 1));
        if (np == NULL)
            abort();
        for (int32_t i = p->nparts; i <= partition; i++)
            np[i] = (part_time){.max_ms = INT64_MIN};
        p->parts = np;
        p->nparts = partition + 1;
    }
    return &p->parts[partition];
}

void nta_pipeline_partition(nta_pipeline *p, int32_t partition, int assigned)
{
    part_time *pt = part_time_of(p, partition);
    if (pt->assigned != (assigned != 0))
        p->nassigned += assigned ? 1 : -1;
    *pt = (part_time){.max_ms = INT64_MIN, .assigned = assigned != 0};
    update_frontier(p);
}

void nta_pipeline_partition_at_end(nta_pipeline *p, int32_t partition)
{
    part_time *pt = part_time_of(p, partition);
    if (pt->assigned && !pt->at_end) {
        pt->at_end = 1;
        pt->end_since_ms = p->now_ms;
    }
}

void nta_pipeline_partition_behind(nta_pipeline *p, int32_t partition)
{
    part_time *pt = part_time_of(p, partition);
    if (pt->assigned && pt->at_end) {
        pt->at_end = 0;
        update_frontier(p);
    }
}

void nta_pipeline_feed(nta_pipeline *p, int32_t partition, int64_t offset, const char *key,
                       size_t klen, const char *payload, size_t len, int64_t msg_ts_ms)
{
    nta_record r;
    nta_decode_status s = nta_decode(&p->dec, payload, len, &r);
    nta_pipeline_feed_decoded(p, partition, offset, key, klen, payload, len, msg_ts_ms, s, &r);
}

const nta_decoder *nta_pipeline_decoder(const nta_pipeline *p) { return &p->dec; }

void nta_pipeline_feed_decoded(nta_pipeline *p, int32_t partition, int64_t offset,
                               const char *key, size_t klen, const char *payload, size_t len,
                               int64_t msg_ts_ms, nta_decode_status s, const nta_record *rec)
{
    nta_record r = *rec;
    p->st.records_in++;
    if (s == NTA_DEC_OK && r.ts_ms == NTA_TS_NONE) {
        if (msg_ts_ms > 0)
            r.ts_ms = msg_ts_ms;
        else
            s = NTA_DEC_BAD_TIME;
    }
    int64_t done = INT64_MIN;
    if (partition != p->input_part) {
        p->input_part = partition;
        /* The lane tells its windows itself, in queue order. */
        for (int i = 0; i < p->nwin; i++)
            if (!(p->lane_mask & (1u << i)))
                nta_window_set_input(p->win[i], partition);
    }
    if (partition >= 0 && partition < p->nparts && p->parts[partition].assigned) {
        part_time *pt = &p->parts[partition];
        int64_t was = pt->max_ms;
        int recompute = pt->at_end;
        pt->at_end = 0;
        if (s == NTA_DEC_OK && r.ts_ms > was) {
            pt->max_ms = r.ts_ms;
            /* Only the partition at the frontier can move it. */
            recompute |= was <= p->frontier;
        }
        if (recompute)
            update_frontier(p);
    }
    if (s == NTA_DEC_OK) {
        done = aggregate(p, &r);
        if (p->late_windows[0] && p->conf.late_topic[0])
            send(p, p->conf.late_topic, key, klen, payload, len, msg_ts_ms, "nta-late",
                 p->late_windows);
    } else if (s == NTA_DEC_SKIP) {
        p->st.records_in--; /* a CSV header is not a record */
    } else {
        p->st.bad[s]++;
        p->st.bad_total++;
        if (p->conf.dlq_topic[0])
            send(p, p->conf.dlq_topic, key, klen, payload, len, msg_ts_ms, "nta-error",
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

static void rules_alert(void *ctx, const char *topic, const char *key, size_t klen,
                        const char *json, size_t len)
{
    nta_pipeline *p = ctx;
    send(p, topic[0] ? topic : p->conf.output_topic, key, klen, json, len, p->now_ms, NULL,
         NULL);
    p->st.alerts_out++;
    if (p->tap)
        p->tap(p->tap_ctx, NTA_EVENT_ALERT, json, len);
}

/* Tells the rules that the window being emitted has been seen whole. */
static void window_done(nta_pipeline *p)
{
    if (p->emitting < 0)
        return;
    nta_rules_window_done(p->rules, nta_window_spec_of(p->win[p->emitting]), p->emitting_end,
                          p->now_ms);
    p->emitting_end = INT64_MIN;
}

static void emit_result(void *ctx, const nta_result *res)
{
    nta_pipeline *p = ctx;
    /* Emitted and committed before: the rules saw it then too. A result of
     * one partition's records has that partition's watermark; one mixing
     * partitions the smallest. */
    int64_t resume = p->resume_wm;
    if (res->partition >= 0)
        resume = res->partition < p->nresume_part ? p->resume_part[res->partition] : INT64_MIN;
    if (res->end_ms <= resume) {
        p->st.results_suppressed++;
        return;
    }
    if (res->end_ms != p->emitting_end) {
        window_done(p);
        p->emitting_end = res->end_ms;
    }
    /* Kept for a reload's dry run. The spec is copied once per window, not
     * per result; the sketches of top-k and quantile aggregates live only as
     * long as this callback, so the copy reads them as empty. */
    last_result *lr = &p->last[p->emitting];
    if (!lr->valid || lr->spec_of != res->spec) {
        lr->spec = *res->spec;
        lr->spec_of = res->spec;
    }
    lr->r = *res;
    lr->r.spec = &lr->spec;
    for (int i = 0; i < res->spec->naggs; i++)
        if (res->spec->aggs[i].kind == NTA_AGG_TOPK || res->spec->aggs[i].kind == NTA_AGG_QUANTILE)
            lr->r.values[i].topk = NULL;
    lr->valid = 1;
    nta_rules_on_result(p->rules, res, p->now_ms);
    /* The pipeline's spec, not the window's: a reload that only changes
     * publish keeps the window and its state. */
    if (p->conf.windows[p->emitting].unpublished) {
        p->st.results_unpublished++;
    } else {
        nta_buf_reset(&p->key);
        nta_buf_reset(&p->val);
        nta_output_result_key(&p->key, res);
        nta_output_result_json(&p->val, res);
        send(p, p->conf.output_topic, p->key.data, p->key.len, p->val.data, p->val.len,
             res->end_ms, NULL, NULL);
        p->st.results_out++;
        if (p->tap)
            p->tap(p->tap_ctx, NTA_EVENT_WINDOW, p->val.data, p->val.len);
    }
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

/* Window i has just emitted (advance or flush): its close is complete, and
 * an observer that batches a close's results (the dashboard's top lists)
 * can send them now rather than at its next tick. */
static void close_done(nta_pipeline *p, int i, uint64_t results_before)
{
    if (p->emitting_end != INT64_MIN)
        window_done(p);
    if (p->tap && p->st.results_out != results_before)
        p->tap(p->tap_ctx, NTA_EVENT_CLOSED, p->conf.windows[i].name,
               strlen(p->conf.windows[i].name));
}

/* Drains the lane before a close: the windows to emit must hold every
 * record before the one that moved the watermark. */
static void drain_for_close(nta_pipeline *p)
{
    if (p->lane == NULL)
        return;
    nta_lane_drain(p->lane);
    p->st.dropped_nomem += nta_lane_take_nomem(p->lane);
}

/* Emits every window that ends by wm, and finds the next watermark at
 * which one closes. */
static void close_windows(nta_pipeline *p, int64_t wm)
{
    drain_for_close(p);
    p->next_close = INT64_MAX;
    for (int i = 0; i < p->nwin; i++) {
        p->emitting = i;
        p->emitting_end = INT64_MIN;
        uint64_t before = p->st.results_out;
        nta_window_advance(p->win[i], wm, emit_result, p);
        close_done(p, i, before);
        /* The first aligned end (k * slide + size) after wm. */
        const nta_window_spec *sp = &p->conf.windows[i];
        int64_t k = (wm - sp->size_ms) / sp->slide_ms;
        if ((wm - sp->size_ms) % sp->slide_ms < 0)
            k--;
        int64_t next = (k + 1) * sp->slide_ms + sp->size_ms;
        if (next < p->next_close)
            p->next_close = next;
    }
    p->emitting = -1;
    lane_closed(p);
}

static void advance(nta_pipeline *p, int64_t wm)
{
    if (wm <= p->st.watermark_ms)
        return;
    p->st.watermark_ms = wm;
    p->now_ms = nta_wall_ms();
    /* No window ends before next_close, so none has anything to emit: the
     * windows (and the lane) are left alone. Ticks move the watermark far
     * more often than windows close. */
    if (wm >= p->next_close)
        close_windows(p, wm);
    nta_rules_on_watermark(p->rules, wm, p->now_ms);
    nta_offsets_release(p->offsets, wm);
}

void nta_pipeline_tick(nta_pipeline *p, int64_t now_ms)
{
    /* The clock is read per tick, not per record: idleness is measured in
     * seconds, and a clock read per record would cost more than decoding. */
    p->now_ms = now_ms;
    if (p->nassigned)
        update_frontier(p); /* partitions turn idle with the clock */
    if (p->fed_since_tick) {
        p->last_record_wall_ms = now_ms;
        p->fed_since_tick = 0;
    }
    int64_t f = p->nassigned ? p->frontier : p->st.max_event_ms;
    if (p->st.max_event_ms == INT64_MIN)
        return;
    /* Quiet input closes windows on the wall clock from the newest record. */
    int64_t wm = (f == INT64_MIN ? p->st.max_event_ms : f) - p->conf.lateness_ms;
    int64_t quiet = now_ms - p->last_record_wall_ms;
    if (quiet >= p->conf.idle_timeout_ms)
        wm = p->st.max_event_ms - p->conf.lateness_ms + quiet;
    else if (f == INT64_MIN)
        return;
    advance(p, wm);
}

void nta_pipeline_set_tap(nta_pipeline *p, nta_tap_fn fn, void *ctx)
{
    p->tap = fn;
    p->tap_ctx = ctx;
}

void nta_pipeline_set_resume_watermark(nta_pipeline *p, int32_t partition, int64_t wm)
{
    if (partition >= p->nresume_part) {
        int64_t *np = realloc(p->resume_part, sizeof(int64_t) * (size_t)(partition + 1));
        if (np == NULL)
            abort();
        for (int32_t i = p->nresume_part; i <= partition; i++)
            np[i] = INT64_MIN;
        p->resume_part = np;
        p->nresume_part = partition + 1;
    }
    p->resume_part[partition] = wm;
    p->resume_wm = INT64_MIN;
    for (int32_t i = 0; i < p->nresume_part; i++)
        if (p->resume_part[i] != INT64_MIN &&
            (p->resume_wm == INT64_MIN || p->resume_part[i] < p->resume_wm))
            p->resume_wm = p->resume_part[i];
}

void nta_pipeline_reset(nta_pipeline *p)
{
    drain_for_close(p);
    for (int i = 0; i < p->nwin; i++) {
        nta_window *w = nta_window_create(&p->conf.windows[i]);
        if (w == NULL)
            abort();
        nta_window_destroy(p->win[i]);
        p->win[i] = w;
    }
    nta_offsets *o = nta_offsets_create();
    if (o == NULL)
        abort();
    nta_offsets_destroy(p->offsets);
    p->offsets = o;
    p->st.max_event_ms = p->st.watermark_ms = INT64_MIN;
    p->next_close = INT64_MIN;
    for (int32_t i = 0; i < p->nparts; i++)
        p->parts[i] = (part_time){.max_ms = INT64_MIN, .assigned = p->parts[i].assigned};
    update_frontier(p);
    p->input_part = -1;
    p->nresume_part = 0;
    p->resume_wm = INT64_MIN;
    assign_lane(p);
}

void nta_pipeline_flush(nta_pipeline *p)
{
    drain_for_close(p);
    p->now_ms = nta_wall_ms();
    for (int i = 0; i < p->nwin; i++) {
        p->emitting = i;
        p->emitting_end = INT64_MIN;
        uint64_t before = p->st.results_out;
        nta_window_flush(p->win[i], emit_result, p);
        close_done(p, i, before);
    }
    p->emitting = -1;
    lane_closed(p);
    nta_offsets_release(p->offsets, INT64_MAX);
}

const nta_pipeline_stats *nta_pipeline_get_stats(const nta_pipeline *p) { return &p->st; }
nta_offsets *nta_pipeline_offsets(nta_pipeline *p) { return p->offsets; }
int nta_pipeline_windows(const nta_pipeline *p) { return p->nwin; }
const nta_window *nta_pipeline_window(const nta_pipeline *p, int i)
{
    drain_lane(p);
    return p->win[i];
}

void nta_pipeline_set_origin(nta_pipeline *p, const char *path, int argc, char *const *argv,
                             char *const *extra_rules, int nextra_rules)
{
    snprintf(p->origin, sizeof p->origin, "%s", path);
    p->origin_argc = argc;
    p->origin_argv = argv;
    p->extra_rules = extra_rules;
    p->nextra_rules = nextra_rules;
}

nta_rules *nta_pipeline_rules(nta_pipeline *p) { return p->rules; }
uint64_t nta_pipeline_generation(const nta_pipeline *p) { return p->generation; }

static void json_names(nta_buf *b, const char *key, char names[][NTA_WINDOW_NAME_MAX], int n)
{
    nta_buf_printf(b, ",\"%s\":[", key);
    for (int i = 0; i < n; i++) {
        if (i)
            nta_buf_putc(b, ',');
        nta_buf_json_str(b, names[i], strlen(names[i]));
    }
    nta_buf_putc(b, ']');
}

static int same_spec(const nta_window_spec *a, const nta_window_spec *b)
{
    /* Specs are built zero-filled, so padding compares equal too. Whether
     * results are published does not touch the window's state. */
    nta_window_spec x = *a;
    x.unpublished = b->unpublished;
    return memcmp(&x, b, sizeof x) == 0;
}

/* Publishes the reload record and logs it. */
static void reload_record(nta_pipeline *p, int ok, const char *error,
                          char restarted[][NTA_WINDOW_NAME_MAX], int nrestarted,
                          char added[][NTA_WINDOW_NAME_MAX], int nadded,
                          char removed[][NTA_WINDOW_NAME_MAX], int nremoved)
{
    nta_buf *b = &p->reload_json;
    nta_buf_reset(b);
    nta_buf_printf(b, "{\"type\":\"reload\",\"ok\":%s,\"generation\":%llu,\"time\":",
                   ok ? "true" : "false", (unsigned long long)p->generation);
    nta_buf_i64(b, p->now_ms);
    nta_buf_puts(b, ",\"error\":");
    if (error)
        nta_buf_json_str(b, error, strlen(error));
    else
        nta_buf_puts(b, "null");
    nta_buf_printf(b, ",\"rules\":%d,\"duration_ms\":%.3f", nta_rules_count(p->rules),
                   (double)(nta_mono_ns() - p->reload_started_ns) / 1e6);
    json_names(b, "restarted_windows", restarted, nrestarted);
    json_names(b, "added_windows", added, nadded);
    json_names(b, "removed_windows", removed, nremoved);
    nta_buf_putc(b, '}');
    char key[32];
    int klen = snprintf(key, sizeof key, "reload|%llu", (unsigned long long)p->generation);
    send(p, p->conf.output_topic, key, (size_t)klen, b->data, b->len, p->now_ms, NULL, NULL);
    if (p->tap)
        p->tap(p->tap_ctx, NTA_EVENT_RELOAD, b->data, b->len);
    if (ok)
        fprintf(stderr, "nta: reload %llu ok in %.1f ms: %d rules, %d windows restarted, %d "
                        "added, %d removed\n",
                (unsigned long long)p->generation,
                (double)(nta_mono_ns() - p->reload_started_ns) / 1e6, nta_rules_count(p->rules),
                nrestarted, nadded, nremoved);
    else
        fprintf(stderr, "nta: reload failed, the previous rules keep running: %s\n", error);
}

int nta_pipeline_reload(nta_pipeline *p, const char **result_json, size_t *result_len)
{
    char err[4096];
    char none[1][NTA_WINDOW_NAME_MAX];
    p->reload_started_ns = nta_mono_ns();
    p->now_ms = nta_wall_ms();
    nta_pipeline_conf conf;
    nta_gen_conf gconf;
    nta_pipeline_conf_init(&conf);
    nta_gen_conf_init(&gconf);
    conf.rule_limits = p->limits;
    nta_script_kind kind;
    nta_ruleset *rs = NULL;
    nta_script *s = nta_script_load(p->origin, p->origin_argc, p->origin_argv, &kind, &conf,
                                    &gconf, err, sizeof err);
    if (s && kind != NTA_SCRIPT_PIPELINE)
        snprintf(err, sizeof err, "%.3000s is no longer a pipeline script", p->origin);
    for (int i = 0; i < p->nextra_rules && conf.nrule_paths < NTA_MAX_RULE_PATHS; i++)
        conf.rule_paths[conf.nrule_paths++] = strdup(p->extra_rules[i]);
    int ok = s && kind == NTA_SCRIPT_PIPELINE &&
             load_rules(&conf, &p->limits, &rs, err, sizeof err) == 0;
    /* Dry run: every function rule on the latest result of its window. */
    for (int i = 0; ok && i < p->nwin; i++)
        if (p->last[i].valid && rs &&
            nta_rules_dry_run(rs, &p->last[i].r, &p->limits, err, sizeof err) != 0)
            ok = 0;
    /* Windows must all be creatable before anything is swapped. */
    nta_window *nw[NTA_MAX_WINDOWS] = {0};
    int reuse[NTA_MAX_WINDOWS];
    for (int i = 0; ok && i < conf.nwindows; i++) {
        reuse[i] = -1;
        for (int j = 0; j < p->nwin; j++)
            if (same_spec(&conf.windows[i], nta_window_spec_of(p->win[j])))
                reuse[i] = j;
        if (reuse[i] < 0 && (nw[i] = nta_window_create(&conf.windows[i])) == NULL) {
            snprintf(err, sizeof err, "window '%s': out of memory", conf.windows[i].name);
            ok = 0;
        }
    }
    if (!ok) {
        for (int i = 0; i < conf.nwindows; i++)
            nta_window_destroy(nw[i]);
        nta_ruleset_destroy(rs);
        nta_script_destroy(s);
        nta_pipeline_conf_free(&conf);
        p->st.reloads_failed++;
        reload_record(p, 0, err, none, 0, none, 0, none, 0);
        *result_json = p->reload_json.data;
        *result_len = p->reload_json.len;
        return -1;
    }

    drain_for_close(p);
    char restarted[NTA_MAX_WINDOWS][NTA_WINDOW_NAME_MAX], added[NTA_MAX_WINDOWS][NTA_WINDOW_NAME_MAX],
        removed[NTA_MAX_WINDOWS][NTA_WINDOW_NAME_MAX];
    int nrestarted = 0, nadded = 0, nremoved = 0;
    int kept[NTA_MAX_WINDOWS] = {0};
    last_result last[NTA_MAX_WINDOWS];
    memset(last, 0, sizeof last);
    for (int i = 0; i < conf.nwindows; i++) {
        if (reuse[i] >= 0) {
            nw[i] = p->win[reuse[i]];
            kept[reuse[i]] = 1;
            last[i] = p->last[reuse[i]];
            continue;
        }
        int existed = 0;
        for (int j = 0; j < p->nwin; j++)
            existed |= strcmp(nta_window_spec_of(p->win[j])->name, conf.windows[i].name) == 0;
        snprintf(existed ? restarted[nrestarted++] : added[nadded++], NTA_WINDOW_NAME_MAX, "%s",
                 conf.windows[i].name);
    }
    for (int j = 0; j < p->nwin; j++) {
        if (kept[j])
            continue;
        const char *name = nta_window_spec_of(p->win[j])->name;
        int renewed = 0;
        for (int i = 0; i < conf.nwindows; i++)
            renewed |= strcmp(conf.windows[i].name, name) == 0;
        if (!renewed)
            snprintf(removed[nremoved++], NTA_WINDOW_NAME_MAX, "%s", name);
        nta_window_destroy(p->win[j]);
    }
    memcpy(p->win, nw, sizeof nw);
    p->nwin = conf.nwindows;
    p->input_part = -1; /* new windows learn the input partition at the next record */
    memcpy(p->last, last, sizeof last);
    for (int i = 0; i < NTA_MAX_WINDOWS; i++)
        p->last[i].r.spec = &p->last[i].spec;
    /* Input, output and lateness keep their running values: changing where
     * records come from is a restart, not a reload. */
    nta_pipeline_conf keep = p->conf;
    keep_scalars(&p->conf, &conf);
    memcpy(p->conf.input_topic, keep.input_topic, sizeof keep.input_topic);
    memcpy(p->conf.output_topic, keep.output_topic, sizeof keep.output_topic);
    memcpy(p->conf.dlq_topic, keep.dlq_topic, sizeof keep.dlq_topic);
    memcpy(p->conf.late_topic, keep.late_topic, sizeof keep.late_topic);
    p->conf.format = keep.format;
    p->conf.lateness_ms = keep.lateness_ms;
    p->conf.idle_timeout_ms = keep.idle_timeout_ms;
    p->next_close = INT64_MIN;
    nta_rules_install(p->rules, rs, conf.inline_rules, conf.ninline_rules, p->conf.windows,
                      p->conf.nwindows);
    assign_lane(p);
    nta_script_destroy(p->owned_script);
    p->owned_script = p->script = s;
    nta_pipeline_conf_free(&conf);
    p->generation++;
    p->st.reloads_ok++;
    reload_record(p, 1, NULL, restarted, nrestarted, added, nadded, removed, nremoved);
    *result_json = p->reload_json.data;
    *result_len = p->reload_json.len;
    return 0;
}
