#include "hub.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Events are small flat-ish objects; a result or alert with more tokens than
 * this is still stored, only its fields are not read for metrics. */
#define JSMN_STATIC
#include <jsmn.h>
#define MAX_TOKENS 256

#define ALERTS_KEPT 1000   /* GET /api/alerts answers from these, whatever the ring evicted */
#define MAX_LABELLED 512   /* distinct (rule, severity, state) and rule series in /metrics */
#define FRAME_NAME_MAX NTA_WINDOW_NAME_MAX
/* A window whose close has more results than this is "wide" (keyed by
 * hosts, say): history keeps only its latest close, or 15 minutes of a few
 * such windows would need gigabytes. */
#define WIDE_RESULTS 100
/* A wide close's "top" frame: the first TOP_N results by each of at most
 * TOP_AGGS aggregates (count, sum_bytes, distinct_src_ip, ...). */
#define TOP_N 20
#define TOP_AGGS 8
#define AGG_NAME_MAX 40
/* While a close is being emitted, its results are released to readers at
 * its first result, then once per this many, and the rest when it is
 * complete. Released one by one, they would cost the pipeline thread a
 * futex call per result and have a reader contending for its lock all
 * through the close (a full client, on this machine's two cores, also
 * takes the CPU the close needs). */
#define WAKE_EVERY 256

/* Room in front of a frame's JSON for its server-sent event head
 * ("id: N\nevent: KIND\ndata: "), written once when the frame gets its
 * sequence number, so push clients copy one contiguous text. */
#define HEADROOM 64

/* A frame is immutable once in the ring. The ring holds one reference; a
 * push client takes one for each frame it sends, so it can copy the text
 * without holding the hub's lock. */
typedef struct frame {
    atomic_int refs;
    int64_t pub_us;   /* wall clock at publish */
    int64_t close_us; /* window frames: when the window closed; else 0 */
    int64_t end_ms;   /* window end (event time); INT64_MIN when the event has none */
    nta_frame_kind kind;
    int first_of_close; /* the first result of its window close */
    int wide;           /* a result of a wide window: pushed only to full clients */
    char name[FRAME_NAME_MAX]; /* window name of a window frame, else "" */
    size_t len;     /* of json */
    char *json;     /* NUL-terminated, inside data */
    char *sse;      /* event head + json, sse_len bytes, inside data */
    size_t sse_len;
    char data[];
} frame;

static void frame_unref(frame *f)
{
    if (atomic_fetch_sub(&f->refs, 1) == 1)
        free(f);
}

/* Stands in the ring for a frame of a wide window's superseded close: the
 * sequence numbers stay contiguous, the memory is freed. */
static frame tombstone;

/* Latency histograms, in seconds, cumulative at render time. */
#define NLAT 14
static const double lat_bounds[NLAT] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,  0.5,    1,     2.5,  5,     10,   30};
#define NDET 11
static const double det_bounds[NDET] = {1, 2.5, 5, 10, 15, 30, 60, 120, 300, 600, 1800};

typedef struct hist {
    uint64_t bucket[NLAT + 1]; /* sized for the larger bound set; last = +Inf */
    uint64_t count;
    double sum;
} hist;

static void hist_observe(hist *hs, const double *bounds, int nb, double v)
{
    int i = 0;
    while (i < nb && v > bounds[i])
        i++;
    hs->bucket[i]++;
    hs->count++;
    hs->sum += v;
}

typedef struct alert_series {
    char rule[FRAME_NAME_MAX], severity[32], state[16];
    uint64_t n;
} alert_series;

typedef struct rule_series {
    char rule[FRAME_NAME_MAX];
    hist detection;
    uint64_t errors; /* from the rules engine's status */
    int quarantined, in_status;
} rule_series;

typedef struct window_counters {
    char name[FRAME_NAME_MAX];
    nta_window_stats st;
} window_counters;

struct nta_hub {
    nta_hub_conf conf;
    pthread_mutex_t mu;
    /* Page clients and reload requesters wait on cv, full clients on cv_full:
     * a wide window's results concern only the latter. */
    pthread_cond_t cv, cv_full;
    int stopping;
    int waiting, waiting_full; /* readers blocked on each: the writer signals only when there are some */
    int unwoken, unwoken_full; /* frames for each published since its last wake */
    uint64_t released;         /* readers get the frames before this sequence number */

    /* The ring: frame seq first_seq + i is ring[(head + i) % cap]. */
    frame **ring;
    size_t cap, head, n, bytes;
    uint64_t first_seq, evicted;

    /* The sequence numbers of the frames page clients get (all but wide
     * windows' results), ascending: pages skip the many wide results without
     * visiting them under the lock. vis[(vhead + i) % vcap], i < vn. */
    uint64_t *vis;
    size_t vcap, vhead, vn;

    frame *alerts[ALERTS_KEPT];
    size_t alert_head, nalerts;

    char *status; /* latest status frame's JSON */
    size_t status_len;
    char *rules_status; /* the engine's JSON, NULL when none */
    char *last_reload;  /* the latest reload event, NULL before one */

    /* Reload requests from HTTP threads, served on the pipeline thread. */
    int reload_available, reload_rc;
    uint64_t reload_req, reload_done;
    char reload_out[4096];

    int clients;
    uint64_t clients_total, clients_dropped;

    /* Metrics counters, written under mu. */
    nta_pipeline_stats st;
    int have_stats;
    window_counters windows[NTA_MAX_WINDOWS];
    int nwindows;
    int64_t lag;
    nta_producer_stats prod;
    int have_prod;
    char input_topic[NTA_TOPIC_MAX], output_topic[NTA_TOPIC_MAX];
    alert_series alert_counts[MAX_LABELLED];
    int nalert_counts;
    uint64_t alert_counts_overflow;
    rule_series rules[MAX_LABELLED];
    int nrules;
    uint64_t reloads_ok, reloads_failed;
    hist processing, push;

    /* Each window's latest close (under mu): its results are frames first..last. */
    struct close_state {
        char name[FRAME_NAME_MAX];
        int64_t end_ms, close_us;
        uint64_t first, last, nresults;
        int wide;
        uint64_t top_seq; /* its latest "top" frame, 0 none */
        struct top_list {
            char agg[AGG_NAME_MAX];
            frame *f[TOP_N]; /* each holds a reference */
            double v[TOP_N];
            int n;
            int min; /* once n == TOP_N: the slot of the smallest value, the one to replace */
        } tops[TOP_AGGS];
        int ntops;
    } closes[NTA_MAX_WINDOWS];
    int ncloses;
    int open_close; /* the close whose results are arriving, -1 none */

    /* Pipeline thread only, no lock. */
    nta_buf scratch;
    int64_t start_us, prev_status_us;
    uint64_t prev_in, prev_out;
};

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

const char *nta_frame_kind_name(nta_frame_kind k)
{
    static const char *const names[NTA_FRAME__COUNT] = {"window", "alert", "reload", "status",
                                                        "top"};
    return k < NTA_FRAME__COUNT ? names[k] : "?";
}

nta_hub *nta_hub_create(const nta_hub_conf *conf)
{
    nta_hub *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    h->conf = *conf;
    h->cap = 1024;
    h->ring = malloc(h->cap * sizeof *h->ring);
    if (h->ring == NULL) {
        free(h);
        return NULL;
    }
    h->first_seq = h->released = 1;
    h->lag = -1;
    h->open_close = -1;
    pthread_mutex_init(&h->mu, NULL);
    /* Readers wait with timeouts: a monotonic clock keeps them right when
     * the wall clock is set. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cv, &ca);
    pthread_cond_init(&h->cv_full, &ca);
    pthread_condattr_destroy(&ca);
    h->start_us = h->prev_status_us = wall_us();
    return h;
}

void nta_hub_destroy(nta_hub *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->n; i++)
        if (h->ring[(h->head + i) % h->cap] != &tombstone)
            frame_unref(h->ring[(h->head + i) % h->cap]);
    for (size_t i = 0; i < h->nalerts; i++)
        free(h->alerts[(h->alert_head + i) % ALERTS_KEPT]);
    for (int c = 0; c < h->ncloses; c++)
        for (int t = 0; t < h->closes[c].ntops; t++)
            for (int k = 0; k < h->closes[c].tops[t].n; k++)
                frame_unref(h->closes[c].tops[t].f[k]);
    free(h->ring);
    free(h->vis);
    free(h->status);
    free(h->rules_status);
    free(h->last_reload);
    nta_buf_free(&h->scratch);
    pthread_cond_destroy(&h->cv);
    pthread_cond_destroy(&h->cv_full);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

void nta_hub_stop(nta_hub *h)
{
    pthread_mutex_lock(&h->mu);
    h->stopping = 1;
    pthread_cond_broadcast(&h->cv);
    pthread_cond_broadcast(&h->cv_full);
    pthread_mutex_unlock(&h->mu);
}

/* ---- reading the events' fields ---- */

typedef struct jdoc {
    const char *js;
    jsmntok_t tok[MAX_TOKENS];
    int n;
} jdoc;

static int jparse(jdoc *d, const char *js, size_t len)
{
    jsmn_parser ps;
    jsmn_init(&ps);
    d->js = js;
    d->n = jsmn_parse(&ps, js, len, d->tok, MAX_TOKENS);
    return d->n > 0 && d->tok[0].type == JSMN_OBJECT ? 0 : -1;
}

/* The token after the value at i and everything inside it. */
static int jnext(const jdoc *d, int i)
{
    int j = i + 1;
    while (j < d->n && d->tok[j].start < d->tok[i].end)
        j++;
    return j;
}

/* The value of key in the object at obj, or -1. */
static int jget(const jdoc *d, int obj, const char *key)
{
    if (obj < 0 || obj >= d->n || d->tok[obj].type != JSMN_OBJECT)
        return -1;
    size_t kl = strlen(key);
    int i = obj + 1;
    for (int k = 0; k < d->tok[obj].size && i + 1 < d->n; k++) {
        const jsmntok_t *t = &d->tok[i];
        if (t->type == JSMN_STRING && (size_t)(t->end - t->start) == kl &&
            memcmp(d->js + t->start, key, kl) == 0)
            return i + 1;
        i = jnext(d, i + 1);
    }
    return -1;
}

/* Copies a string (or primitive) value's raw text; "" when absent. JSON
 * escapes are kept as they are: names here are plain identifiers. */
static void jstr(const jdoc *d, int i, char *out, size_t outlen)
{
    out[0] = '\0';
    if (i < 0 || d->tok[i].type == JSMN_OBJECT || d->tok[i].type == JSMN_ARRAY)
        return;
    size_t l = (size_t)(d->tok[i].end - d->tok[i].start);
    if (l >= outlen)
        l = outlen - 1;
    memcpy(out, d->js + d->tok[i].start, l);
    out[l] = '\0';
}

/* A numeric value, or def when absent or not a number. */
static double jnum(const jdoc *d, int i, double def)
{
    if (i < 0 || d->tok[i].type != JSMN_PRIMITIVE)
        return def;
    char tmp[40];
    jstr(d, i, tmp, sizeof tmp);
    char *end;
    double v = strtod(tmp, &end);
    return end != tmp && *end == '\0' ? v : def;
}

static int jtrue(const jdoc *d, int i)
{
    return i >= 0 && d->tok[i].type == JSMN_PRIMITIVE && d->js[d->tok[i].start] == 't';
}

/* ---- the ring ---- */

/* Notes a new frame for the readers' next wake: one a page client wants
 * (for_pages), or a wide window's result, which only full clients get. Under mu. */
static void pending(nta_hub *h, int for_pages)
{
    h->unwoken_full = 1;
    h->unwoken |= for_pages;
}

/* Releases the frames published so far and wakes the waiting readers that
 * have new ones. Under mu. Readers busy sending need no wake: they look for
 * released frames before waiting. Page clients are not woken for a wide
 * window's results, which they skip: fifty of them woken for nothing would
 * crowd the pipeline thread off its lock. */
static void wake(nta_hub *h)
{
    h->released = h->first_seq + h->n;
    if (h->unwoken && h->waiting)
        pthread_cond_broadcast(&h->cv);
    if (h->unwoken_full && h->waiting_full)
        pthread_cond_broadcast(&h->cv_full);
    h->unwoken = h->unwoken_full = 0;
}

static void ring_evict_one(nta_hub *h)
{
    frame *f = h->ring[h->head];
    h->head = (h->head + 1) % h->cap;
    h->n--;
    h->first_seq++;
    if (f != &tombstone) {
        h->bytes -= f->len;
        frame_unref(f);
    }
}

/* Drops frames older than the history or past its size. Called under mu. */
static void ring_trim(nta_hub *h, int64_t now_us)
{
    int64_t oldest = now_us - h->conf.history_ms * 1000;
    while (h->n > 0 && (h->bytes > h->conf.history_bytes || h->ring[h->head] == &tombstone ||
                        h->ring[h->head]->pub_us < oldest)) {
        if (h->bytes > h->conf.history_bytes && h->ring[h->head] != &tombstone)
            h->evicted++;
        ring_evict_one(h);
    }
}

/* Appends f (owned from now on). Called under mu. */
static void ring_push(nta_hub *h, frame *f)
{
    if (h->n == h->cap) {
        size_t cap = h->cap * 2;
        frame **nr = malloc(cap * sizeof *nr);
        if (nr == NULL) {
            /* Keeping the pipeline going matters more than history. */
            h->evicted++;
            ring_evict_one(h);
        } else {
            for (size_t i = 0; i < h->n; i++)
                nr[i] = h->ring[(h->head + i) % h->cap];
            free(h->ring);
            h->ring = nr;
            h->cap = cap;
            h->head = 0;
        }
    }
    /* "id: N\nevent: KIND\ndata: ", by hand: this runs for every result on
     * the pipeline thread, where an snprintf costs as much as the rest. */
    char head[HEADROOM];
    const char *kind = nta_frame_kind_name(f->kind);
    size_t kl = strlen(kind);
    memcpy(head, "id: ", 4);
    size_t hl = 4 + nta_u64_digits(head + 4, h->first_seq + h->n);
    memcpy(head + hl, "\nevent: ", 8);
    memcpy(head + hl + 8, kind, kl);
    hl += 8 + kl;
    memcpy(head + hl, "\ndata: ", 7);
    hl += 7;
    f->sse = f->json - hl;
    memcpy(f->sse, head, hl);
    f->sse_len = hl + f->len;
    h->ring[(h->head + h->n) % h->cap] = f;
    h->n++;
    h->bytes += f->len;
    ring_trim(h, f->pub_us);
    while (h->vn && h->vis[h->vhead] < h->first_seq) {
        h->vhead = (h->vhead + 1) % h->vcap;
        h->vn--;
    }
    if (f->wide)
        return;
    if (h->vn == h->vcap) {
        size_t cap = h->vcap ? h->vcap * 2 : 1024;
        uint64_t *nv = malloc(cap * sizeof *nv);
        if (nv == NULL)
            return; /* this frame reaches full clients only */
        for (size_t i = 0; i < h->vn; i++)
            nv[i] = h->vis[(h->vhead + i) % h->vcap];
        free(h->vis);
        h->vis = nv;
        h->vcap = cap;
        h->vhead = 0;
    }
    h->vis[(h->vhead + h->vn++) % h->vcap] = h->first_seq + h->n - 1;
}

/* Replaces every c in s[0, n) with a blank. */
static void blank_out(char *s, size_t n, char c)
{
    for (char *p = memchr(s, c, n); p; p = memchr(p, c, n - (size_t)(p - s)))
        *p = ' ';
}

static frame *frame_new(nta_frame_kind kind, const char *prefix, size_t plen, const char *json,
                        size_t len)
{
    frame *f = malloc(sizeof *f + HEADROOM + plen + len + 1);
    if (f == NULL)
        return NULL;
    memset(f, 0, sizeof *f);
    atomic_init(&f->refs, 1);
    f->json = f->data + HEADROOM;
    f->kind = kind;
    f->end_ms = INT64_MIN;
    memcpy(f->json, prefix, plen);
    memcpy(f->json + plen, json, len);
    f->len = plen + len;
    f->json[f->len] = '\0';
    /* A server-sent event's data ends at a newline; JSON may hold one only as
     * whitespace between tokens (inside strings it is escaped), so a blank is
     * equivalent. */
    blank_out(f->json + plen, len, '\n');
    blank_out(f->json + plen, len, '\r');
    return f;
}

static alert_series *alert_series_for(nta_hub *h, const char *rule, const char *sev,
                                      const char *state)
{
    for (int i = 0; i < h->nalert_counts; i++) {
        alert_series *a = &h->alert_counts[i];
        if (!strcmp(a->rule, rule) && !strcmp(a->severity, sev) && !strcmp(a->state, state))
            return a;
    }
    if (h->nalert_counts == MAX_LABELLED)
        return NULL;
    alert_series *a = &h->alert_counts[h->nalert_counts++];
    snprintf(a->rule, sizeof a->rule, "%s", rule);
    snprintf(a->severity, sizeof a->severity, "%s", sev);
    snprintf(a->state, sizeof a->state, "%s", state);
    return a;
}

static rule_series *rule_series_for(nta_hub *h, const char *rule)
{
    for (int i = 0; i < h->nrules; i++)
        if (!strcmp(h->rules[i].rule, rule))
            return &h->rules[i];
    if (h->nrules == MAX_LABELLED)
        return NULL;
    rule_series *r = &h->rules[h->nrules++];
    memset(r, 0, sizeof *r);
    snprintf(r->rule, sizeof r->rule, "%s", rule);
    return r;
}

static frame *frame_at(const nta_hub *h, uint64_t seq)
{
    return h->ring[(h->head + (size_t)(seq - h->first_seq)) % h->cap];
}

/* Frees the results of a wide window's previous close (frames first..last,
 * where results of other windows and alerts may sit in between). Under mu. */
static void supersede(nta_hub *h, const char *name, int64_t end_ms, uint64_t first,
                      uint64_t last)
{
    if (first < h->first_seq)
        first = h->first_seq;
    for (uint64_t q = first; q <= last && q < h->first_seq + h->n; q++) {
        size_t i = (h->head + (size_t)(q - h->first_seq)) % h->cap;
        frame *f = h->ring[i];
        if (f == &tombstone || f->kind != NTA_FRAME_WINDOW || f->end_ms != end_ms ||
            strcmp(f->name, name) != 0)
            continue;
        h->bytes -= f->len;
        frame_unref(f);
        h->ring[i] = &tombstone;
    }
}

/* Sets f's close time and keeps each window's latest close. Results of one
 * window close arrive one after the other, so the first result of a (window,
 * end) marks the moment the window closed. Under mu. */
static void track_close(nta_hub *h, frame *f, int64_t now)
{
    int i = 0;
    while (i < h->ncloses && strcmp(h->closes[i].name, f->name) != 0)
        i++;
    uint64_t seq = h->first_seq + h->n;
    if (i == h->ncloses) {
        if (h->ncloses == NTA_MAX_WINDOWS) {
            f->first_of_close = 1;
            f->close_us = now;
            return;
        }
        h->ncloses++;
        memset(&h->closes[i], 0, sizeof h->closes[i]);
        snprintf(h->closes[i].name, sizeof h->closes[i].name, "%s", f->name);
        h->closes[i].end_ms = INT64_MIN;
    }
    if (h->closes[i].end_ms != f->end_ms || h->closes[i].nresults == 0) {
        if (h->closes[i].wide && h->closes[i].nresults)
            supersede(h, f->name, h->closes[i].end_ms, h->closes[i].first, h->closes[i].last);
        h->closes[i].end_ms = f->end_ms;
        h->closes[i].close_us = now;
        h->closes[i].first = seq;
        h->closes[i].nresults = 0;
        f->first_of_close = 1;
    }
    h->closes[i].last = seq;
    if (++h->closes[i].nresults > WIDE_RESULTS)
        h->closes[i].wide = 1;
    f->wide = h->closes[i].wide;
    f->close_us = h->closes[i].close_us;
    h->open_close = i;
}

static int num_char(char c)
{
    return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-';
}

/* The number at v (text up to lim) and, in *nl, its length; *nl = 0 when
 * there is none or nothing follows it. Integers, which counts and sums are,
 * are read without strtod: this runs for every result. */
static double num_at(const char *v, const char *lim, size_t *nl)
{
    const char *d = v + (v < lim && *v == '-');
    const char *digits = d;
    uint64_t i = 0;
    while (d < lim && *d >= '0' && *d <= '9' && d - digits < 19)
        i = i * 10 + (uint64_t)(*d++ - '0');
    if (d > digits && d < lim && (*d == ',' || *d == '}')) {
        *nl = (size_t)(d - v);
        return *v == '-' ? -(double)i : (double)i;
    }
    char num[40];
    size_t n = 0;
    while (v + n < lim && n < sizeof num - 1 && num_char(v[n]))
        n++;
    *nl = v + n < lim ? n : 0;
    if (*nl == 0)
        return 0;
    memcpy(num, v, n);
    num[n] = '\0';
    return strtod(num, NULL);
}

typedef struct agg_value {
    const char *name; /* inside the result's text, not terminated */
    size_t len;
    double v;
} agg_value;

/* The numeric fields after "key":{...} of a result ("count":N,"sum_bytes":N,
 * ...), up to max; stops at the first value that is not a number. */
static int agg_values(const char *js, size_t len, agg_value *out, int max)
{
    static const char keyobj[] = "\"key\":{";
    const char *lim = js + len, *p = memchr(js, '"', len);
    while (p && (size_t)(lim - p) > sizeof keyobj - 1 && memcmp(p, keyobj, sizeof keyobj - 1) != 0)
        p = memchr(p + 1, '"', (size_t)(lim - p - 1));
    if (p == NULL || (size_t)(lim - p) <= sizeof keyobj - 1)
        return 0;
    p += sizeof keyobj - 1;
    for (int in_str = 0; p < lim && (in_str || *p != '}'); p++) {
        if (in_str && *p == '\\')
            p++;
        else if (*p == '"')
            in_str = !in_str;
    }
    int n = 0;
    while (n < max && p + 2 < lim && p[1] == ',' && p[2] == '"') {
        const char *name = p + 3;
        const char *q = memchr(name, '"', (size_t)(lim - name));
        if (q == NULL || q + 2 >= lim || q[1] != ':' || (size_t)(q - name) >= AGG_NAME_MAX)
            break;
        size_t nl;
        double v = num_at(q + 2, lim, &nl);
        if (nl == 0)
            break;
        out[n++] = (agg_value){.name = name, .len = (size_t)(q - name), .v = v};
        p = q + 2 + nl - 1;
    }
    return n;
}

/* Offers a result to its close's top lists. Under mu. */
static void top_offer(nta_hub *h, frame *f)
{
    if (h->open_close < 0)
        return;
    struct top_list *tops = h->closes[h->open_close].tops;
    int *ntops = &h->closes[h->open_close].ntops;
    agg_value vals[TOP_AGGS];
    int n = agg_values(f->json, f->len, vals, TOP_AGGS);
    for (int a = 0; a < n; a++) {
        int t = 0;
        while (t < *ntops && (strlen(tops[t].agg) != vals[a].len ||
                              memcmp(tops[t].agg, vals[a].name, vals[a].len) != 0))
            t++;
        if (t == *ntops) {
            if (*ntops == TOP_AGGS)
                continue;
            memset(&tops[t], 0, sizeof tops[t]);
            memcpy(tops[t].agg, vals[a].name, vals[a].len);
            (*ntops)++;
        }
        struct top_list *l = &tops[t];
        int slot = l->n;
        if (l->n == TOP_N) {
            if (vals[a].v <= l->v[l->min])
                continue;
            slot = l->min;
            frame_unref(l->f[slot]);
        } else {
            l->n++;
        }
        atomic_fetch_add(&f->refs, 1);
        l->f[slot] = f;
        l->v[slot] = vals[a].v;
        if (l->n == TOP_N) {
            l->min = 0;
            for (int k = 1; k < TOP_N; k++)
                if (l->v[k] < l->v[l->min])
                    l->min = k;
        }
    }
}

static void ring_push(nta_hub *h, frame *f);

/* The close being emitted is complete: a wide one gets its "top" frame,
 * which replaces the window's previous one in the history. Under mu. */
static void complete_close(nta_hub *h, int64_t now)
{
    int i = h->open_close;
    h->open_close = -1;
    if (i < 0)
        return;
    struct close_state *c = &h->closes[i];
    if (c->nresults > WIDE_RESULTS) {
        nta_buf b = {0};
        nta_buf_printf(&b, "{\"type\":\"top\",\"window\":");
        nta_buf_json_str(&b, c->name, strlen(c->name));
        nta_buf_printf(&b, ",\"end\":%" PRId64 ",\"closed_at_us\":%" PRId64
                       ",\"results_total\":%" PRIu64 ",\"results\":[",
                       c->end_ms, c->close_us, c->nresults);
        /* The union of the lists, each result once. */
        const frame *seen[TOP_AGGS * TOP_N];
        int nseen = 0;
        for (int t = 0; t < c->ntops; t++)
            for (int k = 0; k < c->tops[t].n; k++) {
                const frame *f = c->tops[t].f[k];
                int dup = 0;
                for (int j = 0; j < nseen && !dup; j++)
                    dup = seen[j] == f;
                if (dup)
                    continue;
                if (nseen)
                    nta_buf_putc(&b, ',');
                seen[nseen++] = f;
                nta_buf_put(&b, f->json, f->len);
            }
        nta_buf_puts(&b, "]}");
        frame *top = frame_new(NTA_FRAME_TOP, "", 0, b.data, b.len);
        nta_buf_free(&b);
        if (top) {
            top->pub_us = now;
            top->close_us = c->close_us;
            top->end_ms = c->end_ms;
            snprintf(top->name, sizeof top->name, "%s", c->name);
            if (c->top_seq >= h->first_seq && c->top_seq < h->first_seq + h->n) {
                size_t at = (h->head + (size_t)(c->top_seq - h->first_seq)) % h->cap;
                h->bytes -= h->ring[at]->len;
                frame_unref(h->ring[at]);
                h->ring[at] = &tombstone;
            }
            c->top_seq = h->first_seq + h->n;
            ring_push(h, top);
            pending(h, 1);
        }
    }
    for (int t = 0; t < c->ntops; t++)
        for (int k = 0; k < c->tops[t].n; k++)
            frame_unref(c->tops[t].f[k]);
    c->ntops = 0;
}

void nta_hub_flush(nta_hub *h)
{
    pthread_mutex_lock(&h->mu);
    if (h->open_close >= 0)
        complete_close(h, wall_us());
    wake(h);
    pthread_mutex_unlock(&h->mu);
}

/* The window name and end of a result as output.c writes it
 * ({"type":"window","window":"NAME","start":N,"end":N,...}), without a full
 * parse: this runs for every result on the pipeline thread. Returns -1 for
 * any other shape. */
static int window_fields(const char *json, size_t len, char *name, size_t namelen,
                         int64_t *end)
{
    static const char head[] = "{\"type\":\"window\",\"window\":\"";
    size_t hl = sizeof head - 1;
    if (len <= hl || memcmp(json, head, hl) != 0)
        return -1;
    const char *n = json + hl, *lim = json + len;
    const char *q = memchr(n, '"', (size_t)(lim - n));
    if (q == NULL || (size_t)(q - n) >= namelen)
        return -1;
    static const char endkey[] = "\"end\":";
    const char *e = q;
    while (e + sizeof endkey - 1 < lim && memcmp(e, endkey, sizeof endkey - 1) != 0)
        e++;
    if (e + sizeof endkey - 1 >= lim || e - q > 40)
        return -1;
    /* The text is not NUL-terminated: digits are read up to lim only. */
    const char *d = e + sizeof endkey - 1;
    int neg = d < lim && *d == '-';
    d += neg;
    const char *digits = d;
    int64_t v = 0;
    while (d < lim && *d >= '0' && *d <= '9' && d - digits < 18)
        v = v * 10 + (*d++ - '0');
    if (d == digits || d >= lim || (*d != ',' && *d != '}'))
        return -1;
    v = neg ? -v : v;
    memcpy(name, n, (size_t)(q - n));
    name[q - n] = '\0';
    *end = v;
    return 0;
}

static void publish_window(nta_hub *h, const char *json, size_t len, int64_t now)
{
    jdoc d;
    char name[FRAME_NAME_MAX] = "";
    int64_t end = INT64_MIN;
    if (window_fields(json, len, name, sizeof name, &end) != 0 && jparse(&d, json, len) == 0) {
        jstr(&d, jget(&d, 0, "window"), name, sizeof name);
        end = (int64_t)jnum(&d, jget(&d, 0, "end"), (double)INT64_MIN);
    }
    /* The close time is spliced in as the first field; it is not known
     * before the lock is held, so a fixed-width number leaves room for it:
     * 16 digits hold microseconds until 2286. */
    static const char prefix[] = "{\"closed_at_us\":0000000000000000,";
    size_t plen = len > 1 && json[0] == '{' ? sizeof prefix - 1 : 0;
    frame *f = frame_new(NTA_FRAME_WINDOW, prefix, plen, plen ? json + 1 : json,
                         plen ? len - 1 : len);
    if (f == NULL)
        return;
    f->pub_us = now;
    f->end_ms = end;
    memcpy(f->name, name, strlen(name) + 1);
    pthread_mutex_lock(&h->mu);
    if (h->open_close >= 0 && (strcmp(h->closes[h->open_close].name, f->name) != 0 ||
                               h->closes[h->open_close].end_ms != f->end_ms))
        complete_close(h, now);
    track_close(h, f, now);
    top_offer(h, f);
    if (plen) {
        char *digit = f->json + plen - 2; /* the last of the zeros */
        int64_t v = f->close_us;
        for (int k = 0; k < 16; k++, v /= 10)
            *digit-- = (char)('0' + v % 10);
    }
    hist_observe(&h->processing, lat_bounds, NLAT, (double)(now - f->close_us) / 1e6);
    ring_push(h, f);
    pending(h, !f->wide);
    if (f->first_of_close ||
        (h->open_close >= 0 && h->closes[h->open_close].nresults % WAKE_EVERY == 0))
        wake(h);
    pthread_mutex_unlock(&h->mu);
}

static void publish_alert(nta_hub *h, const char *json, size_t len, int64_t now)
{
    jdoc d;
    char rule[FRAME_NAME_MAX] = "", sev[32] = "", state[16] = "";
    double det_ms = -1;
    int64_t end = INT64_MIN;
    if (jparse(&d, json, len) == 0) {
        jstr(&d, jget(&d, 0, "rule"), rule, sizeof rule);
        jstr(&d, jget(&d, 0, "severity"), sev, sizeof sev);
        jstr(&d, jget(&d, 0, "state"), state, sizeof state);
        det_ms = jnum(&d, jget(&d, 0, "detection_latency_ms"), -1);
        end = (int64_t)jnum(&d, jget(&d, 0, "end"), (double)INT64_MIN);
    }
    frame *f = frame_new(NTA_FRAME_ALERT, "", 0, json, len);
    frame *kept = frame_new(NTA_FRAME_ALERT, "", 0, json, len);
    if (f == NULL || kept == NULL) {
        free(f);
        free(kept);
        return;
    }
    f->pub_us = kept->pub_us = now;
    f->end_ms = kept->end_ms = end;
    pthread_mutex_lock(&h->mu);
    alert_series *a = alert_series_for(h, rule, sev, state);
    if (a)
        a->n++;
    else
        h->alert_counts_overflow++;
    rule_series *r = rule_series_for(h, rule);
    if (r && det_ms >= 0)
        hist_observe(&r->detection, det_bounds, NDET, det_ms / 1000);
    if (h->nalerts == ALERTS_KEPT) {
        free(h->alerts[h->alert_head]);
        h->alert_head = (h->alert_head + 1) % ALERTS_KEPT;
        h->nalerts--;
    }
    h->alerts[(h->alert_head + h->nalerts++) % ALERTS_KEPT] = kept;
    ring_push(h, f);
    pending(h, 1);
    wake(h);
    pthread_mutex_unlock(&h->mu);
}

static void publish_reload(nta_hub *h, const char *json, size_t len, int64_t now)
{
    jdoc d;
    int ok = jparse(&d, json, len) == 0 && jtrue(&d, jget(&d, 0, "ok"));
    frame *f = frame_new(NTA_FRAME_RELOAD, "", 0, json, len);
    char *copy = malloc(len + 1);
    if (f == NULL || copy == NULL) {
        free(f);
        free(copy);
        return;
    }
    memcpy(copy, f->json, f->len + 1);
    f->pub_us = now;
    pthread_mutex_lock(&h->mu);
    if (ok)
        h->reloads_ok++;
    else
        h->reloads_failed++;
    free(h->last_reload);
    h->last_reload = copy;
    ring_push(h, f);
    pending(h, 1);
    wake(h);
    pthread_mutex_unlock(&h->mu);
}

void nta_hub_publish(void *hub, nta_event_kind kind, const char *json, size_t len)
{
    nta_hub *h = hub;
    int64_t now = wall_us();
    switch (kind) {
    case NTA_EVENT_WINDOW: publish_window(h, json, len, now); break;
    case NTA_EVENT_ALERT: publish_alert(h, json, len, now); break;
    case NTA_EVENT_RELOAD: publish_reload(h, json, len, now); break;
    case NTA_EVENT_CLOSED: nta_hub_flush(h); break;
    }
}

/* ---- status ---- */

static void put_i64_or_null(nta_buf *b, int64_t v, int64_t none)
{
    if (v == none)
        nta_buf_puts(b, "null");
    else
        nta_buf_i64(b, v);
}

static void build_status(nta_hub *h, const nta_hub_source *src, int64_t now, double rate_in,
                         double rate_out, int clients, uint64_t dropped)
{
    const nta_pipeline_stats *st = nta_pipeline_get_stats(src->p);
    nta_buf *b = &h->scratch;
    nta_buf_reset(b);
    nta_buf_printf(b, "{\"type\":\"status\",\"time\":%" PRId64 ",\"uptime_s\":%.1f,\"mode\":",
                   now / 1000, (double)(now - h->start_us) / 1e6);
    nta_buf_json_str(b, src->mode, strlen(src->mode));
    nta_buf_puts(b, ",\"input_topic\":");
    nta_buf_json_str(b, src->conf->input_topic, strlen(src->conf->input_topic));
    nta_buf_puts(b, ",\"output_topic\":");
    nta_buf_json_str(b, src->conf->output_topic, strlen(src->conf->output_topic));
    nta_buf_printf(b,
                   ",\"records_in\":%" PRIu64 ",\"records_ok\":%" PRIu64
                   ",\"rate_in\":%.1f,\"results_out\":%" PRIu64 ",\"rate_out\":%.1f"
                   ",\"results_unpublished\":%" PRIu64 ",\"bad\":%" PRIu64 ",\"late\":%" PRIu64 ",\"output_errors\":%" PRIu64
                   ",\"script_errors\":%" PRIu64 ",\"bad_by_reason\":{",
                   st->records_in, st->records_ok, rate_in, st->results_out, rate_out,
                   st->results_unpublished, st->bad_total, st->late_records, st->output_errors, st->script_errors);
    int firstr = 1;
    for (int s = 1; s < NTA_DEC__COUNT; s++) {
        if (s == NTA_DEC_SKIP)
            continue;
        nta_buf_printf(b, "%s\"%s\":%" PRIu64, firstr ? "" : ",",
                       nta_decode_status_name((nta_decode_status)s), st->bad[s]);
        firstr = 0;
    }
    nta_buf_puts(b, "},\"watermark\":");
    put_i64_or_null(b, st->watermark_ms, INT64_MIN);
    nta_buf_puts(b, ",\"max_event\":");
    put_i64_or_null(b, st->max_event_ms, INT64_MIN);
    nta_buf_puts(b, ",\"lag\":");
    put_i64_or_null(b, src->lag, -1);
    nta_buf_puts(b, ",\"producer\":");
    if (src->prod)
        nta_buf_printf(b,
                       "{\"produced\":%" PRIu64 ",\"delivered\":%" PRIu64 ",\"failed\":%" PRIu64
                       ",\"pending\":%" PRIu64 ",\"transactions\":%" PRIu64
                       ",\"aborted\":%" PRIu64 ",\"paused\":%s}",
                       src->prod->produced, src->prod->delivered, src->prod->failed,
                       src->prod->pending, src->prod->transactions, src->prod->aborted,
                       src->prod->paused ? "true" : "false");
    else
        nta_buf_puts(b, "null");
    nta_buf_puts(b, ",\"note\":");
    if (src->note && src->note[0])
        nta_buf_json_str(b, src->note, strlen(src->note));
    else
        nta_buf_puts(b, "null");
    nta_buf_puts(b, ",\"windows\":[");
    for (int i = 0; i < nta_pipeline_windows(src->p); i++) {
        const nta_window *w = nta_pipeline_window(src->p, i);
        const nta_window_spec *sp = nta_window_spec_of(w);
        nta_window_stats ws;
        nta_window_get_stats(w, &ws);
        nta_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        nta_buf_json_str(b, sp->name, strlen(sp->name));
        nta_buf_printf(b, ",\"size_ms\":%" PRId64 ",\"slide_ms\":%" PRId64 ",\"key\":[",
                       sp->size_ms, sp->slide_ms);
        for (int k = 0; k < sp->nkeys; k++)
            nta_buf_printf(b, "%s\"%s\"", k ? "," : "", nta_field_name(sp->key[k]));
        nta_buf_puts(b, "],\"aggs\":[\"count\"");
        for (int a = 0; a < sp->naggs; a++)
            nta_buf_printf(b, ",\"%s_%s\"", nta_agg_kind_name(sp->aggs[a].kind),
                           nta_field_name(sp->aggs[a].field));
        nta_buf_printf(b,
                       "],\"windows\":%" PRIu64 ",\"results\":%" PRIu64 ",\"late\":%" PRIu64
                       ",\"overflow\":%" PRIu64 ",\"open_keys\":%zu,\"bytes\":%zu}",
                       ws.windows, ws.results, ws.late, ws.overflow, ws.open_keys, ws.bytes);
    }
    nta_buf_printf(b, "],\"http\":{\"clients\":%d,\"dropped_clients\":%" PRIu64 "}", clients,
                   dropped);
    nta_buf_puts(b, ",\"rules\":");
    nta_buf_puts(b, src->rules_json ? src->rules_json : "null");
    nta_buf_putc(b, '}');
}

/* Per-rule error counts and quarantine from the engine's status
 * ({"rules":[{"name":..,"errors":N,"quarantined":bool},...]}). Under mu. */
static void read_rules_status(nta_hub *h, const char *json)
{
    for (int i = 0; i < h->nrules; i++)
        h->rules[i].in_status = 0;
    if (json == NULL)
        return;
    jdoc *d = malloc(sizeof *d);
    if (d == NULL)
        return;
    if (jparse(d, json, strlen(json)) == 0) {
        int arr = jget(d, 0, "rules");
        if (arr >= 0 && d->tok[arr].type == JSMN_ARRAY) {
            int i = arr + 1;
            for (int k = 0; k < d->tok[arr].size && i < d->n; k++) {
                char name[FRAME_NAME_MAX];
                jstr(d, jget(d, i, "name"), name, sizeof name);
                rule_series *r = name[0] ? rule_series_for(h, name) : NULL;
                if (r) {
                    r->errors = (uint64_t)jnum(d, jget(d, i, "errors"), 0);
                    r->quarantined = jtrue(d, jget(d, i, "quarantined"));
                    r->in_status = 1;
                }
                i = jnext(d, i);
            }
        }
    }
    free(d);
}

void nta_hub_status(nta_hub *h, const nta_hub_source *src, int64_t now)
{
    const nta_pipeline_stats *st = nta_pipeline_get_stats(src->p);
    double dt = (double)(now - h->prev_status_us) / 1e6;
    double rate_in = dt > 0 ? (double)(st->records_in - h->prev_in) / dt : 0;
    double rate_out = dt > 0 ? (double)(st->results_out - h->prev_out) / dt : 0;
    h->prev_status_us = now;
    h->prev_in = st->records_in;
    h->prev_out = st->results_out;

    pthread_mutex_lock(&h->mu);
    int clients = h->clients;
    uint64_t dropped = h->clients_dropped;
    pthread_mutex_unlock(&h->mu);
    build_status(h, src, now, rate_in, rate_out, clients, dropped);

    frame *f = frame_new(NTA_FRAME_STATUS, "", 0, h->scratch.data, h->scratch.len);
    char *copy = f ? malloc(f->len + 1) : NULL;
    char *rules = src->rules_json ? strdup(src->rules_json) : NULL;
    if (f == NULL || copy == NULL || (src->rules_json && rules == NULL)) {
        free(f);
        free(copy);
        free(rules);
        return;
    }
    memcpy(copy, f->json, f->len + 1);
    f->pub_us = now;

    pthread_mutex_lock(&h->mu);
    h->st = *st;
    h->have_stats = 1;
    h->nwindows = 0;
    for (int i = 0; i < nta_pipeline_windows(src->p) && i < NTA_MAX_WINDOWS; i++) {
        const nta_window *w = nta_pipeline_window(src->p, i);
        snprintf(h->windows[i].name, sizeof h->windows[i].name, "%s", nta_window_spec_of(w)->name);
        nta_window_get_stats(w, &h->windows[i].st);
        h->nwindows++;
    }
    h->lag = src->lag;
    h->have_prod = src->prod != NULL;
    if (src->prod)
        h->prod = *src->prod;
    snprintf(h->input_topic, sizeof h->input_topic, "%s", src->conf->input_topic);
    snprintf(h->output_topic, sizeof h->output_topic, "%s", src->conf->output_topic);
    free(h->rules_status);
    h->rules_status = rules;
    read_rules_status(h, rules);
    free(h->status);
    h->status = copy;
    h->status_len = f->len;
    ring_push(h, f);
    pending(h, 1);
    wake(h);
    pthread_mutex_unlock(&h->mu);
}

/* ---- reload ---- */

void nta_hub_set_reload_available(nta_hub *h, int available)
{
    pthread_mutex_lock(&h->mu);
    h->reload_available = available;
    pthread_mutex_unlock(&h->mu);
}

void nta_hub_service_reload(nta_hub *h, nta_hub_reload_fn reload, void *ctx)
{
    pthread_mutex_lock(&h->mu);
    uint64_t req = h->reload_req, done = h->reload_done;
    pthread_mutex_unlock(&h->mu);
    if (req == done)
        return;
    /* The reload runs without the lock: readers keep being served, and every
     * request made before this point is answered by this one reload. */
    char out[sizeof h->reload_out];
    int rc = -1;
    if (reload)
        rc = reload(ctx, out, sizeof out);
    else
        snprintf(out, sizeof out, "{\"ok\":false,\"error\":\"no rules engine\"}");
    pthread_mutex_lock(&h->mu);
    memcpy(h->reload_out, out, sizeof out);
    h->reload_out[sizeof h->reload_out - 1] = '\0';
    h->reload_rc = rc;
    h->reload_done = req;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

static void deadline_in(struct timespec *ts, int timeout_ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int nta_hub_reload(nta_hub *h, int timeout_ms, nta_buf *out)
{
    struct timespec dl;
    deadline_in(&dl, timeout_ms);
    pthread_mutex_lock(&h->mu);
    if (!h->reload_available) {
        pthread_mutex_unlock(&h->mu);
        return -2;
    }
    uint64_t mine = ++h->reload_req;
    int rc = 0;
    while (h->reload_done < mine && !h->stopping && rc != ETIMEDOUT) {
        h->waiting++;
        rc = pthread_cond_timedwait(&h->cv, &h->mu, &dl);
        h->waiting--;
    }
    int result = -1;
    if (h->reload_done >= mine) {
        nta_buf_puts(out, h->reload_out);
        result = h->reload_rc == 0 ? 0 : 1;
    }
    pthread_mutex_unlock(&h->mu);
    return result;
}

/* ---- push ---- */

int nta_hub_client_enter(nta_hub *h, int max)
{
    pthread_mutex_lock(&h->mu);
    int ok = h->clients < max;
    if (ok) {
        h->clients++;
        h->clients_total++;
    }
    pthread_mutex_unlock(&h->mu);
    return ok ? 0 : -1;
}

void nta_hub_client_leave(nta_hub *h, int dropped)
{
    pthread_mutex_lock(&h->mu);
    h->clients--;
    if (dropped)
        h->clients_dropped++;
    pthread_mutex_unlock(&h->mu);
}

void nta_hub_observe_push(nta_hub *h, const int64_t *close_us, int n, int64_t now_us)
{
    if (n == 0)
        return;
    pthread_mutex_lock(&h->mu);
    for (int i = 0; i < n; i++)
        hist_observe(&h->push, lat_bounds, NLAT, (double)(now_us - close_us[i]) / 1e6);
    pthread_mutex_unlock(&h->mu);
}

void nta_hub_cursor_newest(nta_hub *h, nta_hub_cursor *c)
{
    pthread_mutex_lock(&h->mu);
    c->next = h->released;
    c->live = 1;
    pthread_mutex_unlock(&h->mu);
}

/* The position in vis of the first frame for pages at or after seq. Under mu. */
static size_t vis_from(const nta_hub *h, uint64_t seq)
{
    size_t lo = 0, hi = h->vn;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->vis[(h->vhead + mid) % h->vcap] < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int nta_hub_next(nta_hub *h, nta_hub_cursor *c, nta_buf *out, size_t max_bytes, int timeout_ms,
                 int64_t *close_us, int nclose_max, int *nclose)
{
    struct timespec dl;
    deadline_in(&dl, timeout_ms);
    *nclose = 0;
    pthread_mutex_lock(&h->mu);
    if (c->next == 0)
        c->next = h->first_seq;
    if (c->next < h->first_seq) {
        if (c->live) {
            pthread_mutex_unlock(&h->mu);
            return -1;
        }
        /* A reconnecting page asked for more history than is kept. */
        c->next = h->first_seq;
    }
    for (int rc = 0; !h->stopping && rc != ETIMEDOUT;) {
        uint64_t end = h->released;
        /* Frames since a page's cursor that are all wide results: skipped
         * here, so the page waits instead of answering with nothing. */
        if (!c->full && c->next < end && vis_from(h, c->next) == vis_from(h, end)) {
            c->next = end;
            c->live = 1;
        }
        if (c->next < end)
            break;
        if (c->full) {
            h->waiting_full++;
            rc = pthread_cond_timedwait(&h->cv_full, &h->mu, &dl);
            h->waiting_full--;
        } else {
            h->waiting++;
            rc = pthread_cond_timedwait(&h->cv, &h->mu, &dl);
            h->waiting--;
        }
    }
    if (h->stopping) {
        pthread_mutex_unlock(&h->mu);
        return -2;
    }
    uint64_t end = h->released;
    if (c->next < h->first_seq) {
        /* Evicted while this client was waiting for the lock. */
        pthread_mutex_unlock(&h->mu);
        return c->live ? -1 : 0;
    }
    /* A page's backlog is what it would be sent: the frames for pages.
     * Visible frames lo..vend-1 are the released ones from c->next on. */
    size_t lo = c->full ? 0 : vis_from(h, c->next), vend = c->full ? 0 : vis_from(h, end);
    uint64_t backlog = c->full ? (c->next < end ? end - c->next : 0) : (lo < vend ? vend - lo : 0);
    if (c->live && backlog > h->conf.max_client_lag) {
        pthread_mutex_unlock(&h->mu);
        return -1;
    }
    /* Under the lock only references are taken; the copying is done after,
     * so fifty clients do not hold up the pipeline thread's publishing. */
    frame *got[512];
    int n = 0;
    size_t bytes = 0;
    if (c->full) {
        /* Skipped tombstones count too, so one call holds the lock for a bounded time. */
        for (size_t visited = 0; c->next < end && n < 512 && bytes < max_bytes && visited < 65536;
             visited++) {
            frame *f = frame_at(h, c->next++);
            if (f == &tombstone)
                continue;
            atomic_fetch_add(&f->refs, 1);
            got[n++] = f;
            bytes += f->sse_len + 2;
        }
    } else {
        for (; lo < vend && n < 512 && bytes < max_bytes; lo++) {
            uint64_t seq = h->vis[(h->vhead + lo) % h->vcap];
            frame *f = frame_at(h, seq);
            c->next = seq + 1;
            if (f == &tombstone)
                continue;
            atomic_fetch_add(&f->refs, 1);
            got[n++] = f;
            bytes += f->sse_len + 2;
        }
        if (lo == vend && c->next < end)
            c->next = end;
    }
    if (c->next == end)
        c->live = 1;
    pthread_mutex_unlock(&h->mu);
    for (int i = 0; i < n; i++) {
        nta_buf_put(out, got[i]->sse, got[i]->sse_len);
        nta_buf_put(out, "\n\n", 2);
        if (got[i]->first_of_close && *nclose < nclose_max)
            close_us[(*nclose)++] = got[i]->close_us;
        frame_unref(got[i]);
    }
    return n;
}

/* ---- API answers ---- */

static int window_match(const frame *f, const char *name, int64_t since_ms)
{
    return f != &tombstone && f->kind == NTA_FRAME_WINDOW && f->end_ms > since_ms &&
           (name == NULL || strcmp(f->name, name) == 0);
}

void nta_hub_windows_json(nta_hub *h, const char *name, int64_t since_ms, size_t limit,
                          nta_buf *out)
{
    nta_buf_puts(out, "{\"window\":");
    if (name)
        nta_buf_json_str(out, name, strlen(name));
    else
        nta_buf_puts(out, "null");
    nta_buf_puts(out, ",\"results\":[");
    /* References are taken under the lock, newest first up to the limit; the
     * text is copied after, so a large answer does not hold up the pipeline. */
    frame **got = malloc((limit ? limit : 1) * sizeof *got);
    size_t n = 0;
    int truncated = 0;
    pthread_mutex_lock(&h->mu);
    for (size_t i = h->n; got && i > 0; i--) {
        frame *f = h->ring[(h->head + i - 1) % h->cap];
        if (!window_match(f, name, since_ms))
            continue;
        if (n == limit) {
            truncated = 1;
            break;
        }
        atomic_fetch_add(&f->refs, 1);
        got[n++] = f;
    }
    pthread_mutex_unlock(&h->mu);
    for (size_t k = n; k > 0; k--) {
        if (k < n)
            nta_buf_putc(out, ',');
        nta_buf_put(out, got[k - 1]->json, got[k - 1]->len);
        frame_unref(got[k - 1]);
    }
    free(got);
    nta_buf_printf(out, "],\"truncated\":%s}", truncated ? "true" : "false");
}

void nta_hub_alerts_json(nta_hub *h, int64_t since_ms, nta_buf *out)
{
    nta_buf_puts(out, "{\"alerts\":[");
    pthread_mutex_lock(&h->mu);
    int first = 1;
    for (size_t i = 0; i < h->nalerts; i++) {
        const frame *f = h->alerts[(h->alert_head + i) % ALERTS_KEPT];
        if (f->end_ms != INT64_MIN && f->end_ms <= since_ms)
            continue;
        if (!first)
            nta_buf_putc(out, ',');
        nta_buf_put(out, f->json, f->len);
        first = 0;
    }
    pthread_mutex_unlock(&h->mu);
    nta_buf_puts(out, "]}");
}

void nta_hub_status_json(nta_hub *h, nta_buf *out)
{
    pthread_mutex_lock(&h->mu);
    if (h->status)
        nta_buf_put(out, h->status, h->status_len);
    else
        nta_buf_puts(out, "{\"type\":\"status\",\"starting\":true}");
    pthread_mutex_unlock(&h->mu);
}

void nta_hub_rules_json(nta_hub *h, nta_buf *out)
{
    pthread_mutex_lock(&h->mu);
    nta_buf_printf(out, "{\"engine\":%s,\"status\":%s,\"last_reload\":%s}",
                   h->reload_available || h->rules_status ? "true" : "false",
                   h->rules_status ? h->rules_status : "null",
                   h->last_reload ? h->last_reload : "null");
    pthread_mutex_unlock(&h->mu);
}

/* ---- /metrics ---- */

/* A label value as the exposition format wants it: \, " and newline escaped. */
static void label(nta_buf *b, const char *name, const char *v)
{
    nta_buf_printf(b, "%s=\"", name);
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            nta_buf_putc(b, '\\');
        if (*v == '\n') {
            nta_buf_puts(b, "\\n");
            continue;
        }
        nta_buf_putc(b, *v);
    }
    nta_buf_putc(b, '"');
}

static void family(nta_buf *b, const char *name, const char *type, const char *help)
{
    nta_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void hist_render(nta_buf *b, const char *name, const char *lname, const char *lval,
                        const hist *hs, const double *bounds, int nb)
{
    uint64_t cum = 0;
    for (int i = 0; i <= nb; i++) {
        cum += hs->bucket[i];
        nta_buf_printf(b, "%s_bucket{", name);
        if (lname) {
            label(b, lname, lval);
            nta_buf_putc(b, ',');
        }
        if (i < nb)
            nta_buf_printf(b, "le=\"%g\"} %" PRIu64 "\n", bounds[i], cum);
        else
            nta_buf_printf(b, "le=\"+Inf\"} %" PRIu64 "\n", cum);
    }
    const char *sfx[2] = {"_sum", "_count"};
    for (int k = 0; k < 2; k++) {
        nta_buf_printf(b, "%s%s", name, sfx[k]);
        if (lname) {
            nta_buf_putc(b, '{');
            label(b, lname, lval);
            nta_buf_putc(b, '}');
        }
        if (k == 0)
            nta_buf_printf(b, " %.6f\n", hs->sum);
        else
            nta_buf_printf(b, " %" PRIu64 "\n", hs->count);
    }
}

static void counter_topic(nta_buf *b, const char *name, const char *help, const char *topic,
                          uint64_t v)
{
    family(b, name, "counter", help);
    nta_buf_printf(b, "%s{", name);
    label(b, "topic", topic);
    nta_buf_printf(b, "} %" PRIu64 "\n", v);
}

/* One counter family with a series per window. */
static void per_window(nta_buf *b, const nta_hub *h, const char *name, const char *type,
                       const char *help, size_t field)
{
    family(b, name, type, help);
    for (int i = 0; i < h->nwindows; i++) {
        nta_buf_printf(b, "%s{", name);
        label(b, "window", h->windows[i].name);
        uint64_t v;
        const char *p = (const char *)&h->windows[i].st + field;
        if (field == offsetof(nta_window_stats, open_keys) ||
            field == offsetof(nta_window_stats, bytes))
            v = *(const size_t *)(const void *)p;
        else
            v = *(const uint64_t *)(const void *)p;
        nta_buf_printf(b, "} %" PRIu64 "\n", v);
    }
}

void nta_hub_metrics(nta_hub *h, nta_buf *b)
{
    pthread_mutex_lock(&h->mu);
    const nta_pipeline_stats *st = &h->st;
    counter_topic(b, "nta_records_in_total", "Records (messages) read from the input.",
                  h->input_topic, st->records_in);
    counter_topic(b, "nta_records_aggregated_total",
                  "Input records decoded and aggregated into at least one window.",
                  h->input_topic, st->records_ok);
    counter_topic(b, "nta_records_out_total", "Window results published to the output.",
                  h->output_topic, st->results_out);
    family(b, "nta_bad_records_total", "counter", "Input records that could not be decoded.");
    for (int s = 1; s < NTA_DEC__COUNT; s++) {
        if (s == NTA_DEC_SKIP)
            continue;
        nta_buf_puts(b, "nta_bad_records_total{");
        label(b, "reason", nta_decode_status_name((nta_decode_status)s));
        nta_buf_printf(b, "} %" PRIu64 "\n", st->bad[s]);
    }
    per_window(b, h, "nta_late_records_total", "counter",
               "Records dropped for a window because it had already closed.",
               offsetof(nta_window_stats, late));
    per_window(b, h, "nta_window_results_total", "counter", "(window, key) results emitted.",
               offsetof(nta_window_stats, results));
    per_window(b, h, "nta_windows_emitted_total", "counter", "Windows closed with results.",
               offsetof(nta_window_stats, windows));
    per_window(b, h, "nta_window_overflow_total", "counter",
               "Records that went to the (other) key because of max_keys.",
               offsetof(nta_window_stats, overflow));
    per_window(b, h, "nta_window_open_keys", "gauge", "Keys held by open panes.",
               offsetof(nta_window_stats, open_keys));
    family(b, "nta_output_errors_total", "counter", "Output messages that could not be queued.");
    nta_buf_printf(b, "nta_output_errors_total %" PRIu64 "\n", st->output_errors);
    family(b, "nta_script_errors_total", "counter", "on_window calls that failed.");
    nta_buf_printf(b, "nta_script_errors_total %" PRIu64 "\n", st->script_errors);
    if (h->have_stats && st->watermark_ms != INT64_MIN) {
        family(b, "nta_watermark_seconds", "gauge", "Event-time watermark (Unix time).");
        nta_buf_printf(b, "nta_watermark_seconds %.3f\n", (double)st->watermark_ms / 1000);
    }
    if (h->lag >= 0) {
        family(b, "nta_consumer_lag", "gauge",
               "Messages in the assigned input partitions not yet read.");
        nta_buf_printf(b, "nta_consumer_lag %" PRId64 "\n", h->lag);
    }
    if (h->have_prod) {
        family(b, "nta_output_delivered_total", "counter",
               "Output messages acknowledged by the broker.");
        nta_buf_printf(b, "nta_output_delivered_total %" PRIu64 "\n", h->prod.delivered);
        family(b, "nta_output_delivery_failures_total", "counter",
               "Failed delivery attempts (each was produced again).");
        nta_buf_printf(b, "nta_output_delivery_failures_total %" PRIu64 "\n", h->prod.failed);
        family(b, "nta_output_pending", "gauge", "Output messages not yet acknowledged.");
        nta_buf_printf(b, "nta_output_pending %" PRIu64 "\n", h->prod.pending);
        family(b, "nta_output_transactions_total", "counter",
               "Output transactions by outcome (exactly-once delivery).");
        nta_buf_printf(b, "nta_output_transactions_total{outcome=\"committed\"} %" PRIu64 "\n",
                       h->prod.transactions);
        nta_buf_printf(b, "nta_output_transactions_total{outcome=\"aborted\"} %" PRIu64 "\n",
                       h->prod.aborted);
        family(b, "nta_paused", "gauge",
               "1 while the pipeline waits for the broker to commit its results.");
        nta_buf_printf(b, "nta_paused %d\n", h->prod.paused ? 1 : 0);
    }
    family(b, "nta_alerts_total", "counter", "Alert events by rule, severity and state.");
    for (int i = 0; i < h->nalert_counts; i++) {
        const alert_series *a = &h->alert_counts[i];
        nta_buf_puts(b, "nta_alerts_total{");
        label(b, "rule", a->rule);
        nta_buf_putc(b, ',');
        label(b, "severity", a->severity);
        nta_buf_putc(b, ',');
        label(b, "state", a->state);
        nta_buf_printf(b, "} %" PRIu64 "\n", a->n);
    }
    family(b, "nta_reloads_total", "counter", "Rule reloads by outcome.");
    nta_buf_printf(b, "nta_reloads_total{outcome=\"ok\"} %" PRIu64 "\n", h->reloads_ok);
    nta_buf_printf(b, "nta_reloads_total{outcome=\"error\"} %" PRIu64 "\n", h->reloads_failed);
    family(b, "nta_rule_errors_total", "counter", "Errors raised by each rule, as the rules engine reports them.");
    for (int i = 0; i < h->nrules; i++) {
        if (!h->rules[i].in_status)
            continue;
        nta_buf_puts(b, "nta_rule_errors_total{");
        label(b, "rule", h->rules[i].rule);
        nta_buf_printf(b, "} %" PRIu64 "\n", h->rules[i].errors);
    }
    family(b, "nta_rule_quarantined", "gauge", "1 while a rule is quarantined.");
    for (int i = 0; i < h->nrules; i++) {
        if (!h->rules[i].in_status)
            continue;
        nta_buf_puts(b, "nta_rule_quarantined{");
        label(b, "rule", h->rules[i].rule);
        nta_buf_printf(b, "} %d\n", h->rules[i].quarantined);
    }
    family(b, "nta_processing_latency_seconds", "histogram",
           "Window close (watermark past its end) to each of its results published to the dashboard.");
    hist_render(b, "nta_processing_latency_seconds", NULL, NULL, &h->processing, lat_bounds,
                NLAT);
    family(b, "nta_push_latency_seconds", "histogram",
           "Window close to the first result of that window written to a push client.");
    hist_render(b, "nta_push_latency_seconds", NULL, NULL, &h->push, lat_bounds, NLAT);
    family(b, "nta_detection_latency_seconds", "histogram",
           "Per rule: event time of the first window meeting the condition to the alert.");
    for (int i = 0; i < h->nrules; i++)
        if (h->rules[i].detection.count)
            hist_render(b, "nta_detection_latency_seconds", "rule", h->rules[i].rule,
                        &h->rules[i].detection, det_bounds, NDET);
    family(b, "nta_http_push_clients", "gauge", "Connected push (server-sent events) clients.");
    nta_buf_printf(b, "nta_http_push_clients %d\n", h->clients);
    family(b, "nta_http_push_clients_dropped_total", "counter",
           "Push clients dropped for falling behind.");
    nta_buf_printf(b, "nta_http_push_clients_dropped_total %" PRIu64 "\n", h->clients_dropped);
    family(b, "nta_http_history_frames", "gauge", "Events kept for pages that open later.");
    nta_buf_printf(b, "nta_http_history_frames %zu\n", h->n);
    family(b, "nta_http_history_bytes", "gauge", "Bytes of events kept.");
    nta_buf_printf(b, "nta_http_history_bytes %zu\n", h->bytes);
    family(b, "nta_http_history_evicted_total", "counter",
           "Events dropped from the history before their time because it was full.");
    nta_buf_printf(b, "nta_http_history_evicted_total %" PRIu64 "\n", h->evicted);
    pthread_mutex_unlock(&h->mu);
}
