#include "rules.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "hll.h"

/* Consecutive errors after which a rule is quarantined until the next reload. */
#define QUARANTINE_AFTER 3
/* Latencies kept per rule for percentiles. */
#define LATENCY_RING 1024
/* Bounds on per-key state, so an address sweep cannot grow memory without end. */
#define MAX_ALERT_STATES 200000
#define MAX_BASELINES 1000000
/* Empty windows evaluated at most per watermark step (a long silence is
 * already an outage after a few). */
#define MAX_EMPTY_FILL 64

typedef enum value_kind {
    VAL_NONE, /* function rules without a value field */
    VAL_ITEM, /* a top-k item's share or value (each) */
    VAL_COUNT,
    VAL_AGG,
    VAL_Z,
    VAL_RATIO,
} value_kind;

typedef struct rule {
    nta_rule_def def;
    nta_ruleset *rs; /* NULL for inline threshold rules */
    const nta_window_spec *spec;
    value_kind vk;
    int vagg, vq; /* index into spec->aggs (and quantile) for VAL_AGG */
    int bagg, bq; /* baseline field: -1 = count, else agg index; -2 = no baseline */
    /* each: the top-k aggregate judged item by item (-1 = none), and the
     * spec its items are keyed by: the window's key fields, then the top-k
     * field (a source and each of its top destinations). */
    int each;
    nta_window_spec item_spec;
    double item_value; /* the item being judged: its share or value */
    uint64_t evaluations, hits, raised, cleared, errors;
    int consecutive_errors, quarantined;
    char last_error[1024];
    uint64_t eval_ns;
    double latency[LATENCY_RING];
    uint64_t latency_n;
    double latency_max;
} rule;

/* The last window end seen of an unkeyed window that rules watch, so that
 * windows which closed empty can be evaluated as empty. */
typedef struct win_track {
    char name[NTA_WINDOW_NAME_MAX];
    int64_t last_end;
} win_track;

/* Per (rule, key) alert state. */
typedef struct alert_state {
    char *id;             /* "rule\x1fkey1\x1fkey2": the hash key */
    uint64_t hash;
    char key_text[NTA_WINDOW_MAX_KEYS][NTA_FIELD_TEXT_MAX];
    int hits, misses, active;
    int64_t first_hit_start, first_hit_end; /* first window of the current run of hits */
    int64_t last_seen_end;
    int64_t cleared_end;      /* window end at the last clear (cool-down); INT64_MIN = none */
    int64_t last_ongoing_end; /* last "ongoing" published */
    int64_t raised_wall;
    double value;
} alert_state;

typedef struct baseline {
    char *id; /* "window\x1ffield\x1fkey..." */
    uint64_t hash;
    uint64_t n;
    double mean, var;
} baseline;

/* Open addressing over pointers, keyed by id string. */
typedef struct strmap {
    void **slots;
    size_t cap, n;
} strmap;

struct nta_rules {
    nta_rule_limits lim;
    nta_rules_out out;
    rule *rules;
    int nrules;
    nta_ruleset *rs;
    strmap alerts;   /* alert_state */
    strmap bases;    /* baseline */
    win_track tracks[NTA_MAX_WINDOWS];
    int ntracks;
    uint64_t states_dropped; /* keys not tracked: MAX_ALERT_STATES or MAX_BASELINES reached */
    nta_buf json, key, id;
};

/* ---- strmap ---- */

static uint64_t id_hash(const char *id) { return nta_hash64(id, strlen(id)); }

/* Both alert_state and baseline start with (char *id, uint64_t hash). */
typedef struct entry_head {
    char *id;
    uint64_t hash;
} entry_head;

static void *map_get(const strmap *m, const char *id, uint64_t h)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        entry_head *e = m->slots[i];
        if (e == NULL)
            return NULL;
        if (e->hash == h && strcmp(e->id, id) == 0)
            return e;
    }
}

static void map_put_raw(strmap *m, void *ent)
{
    entry_head *e = ent;
    size_t i = e->hash & (m->cap - 1);
    while (m->slots[i])
        i = (i + 1) & (m->cap - 1);
    m->slots[i] = ent;
}

/* Inserts ent (not present). Returns -1 out of memory. */
static int map_put(strmap *m, void *ent)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        void **ns = calloc(ncap, sizeof *ns);
        if (ns == NULL)
            return -1;
        strmap nm = {ns, ncap, m->n};
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i])
                map_put_raw(&nm, m->slots[i]);
        free(m->slots);
        *m = nm;
    }
    map_put_raw(m, ent);
    m->n++;
    return 0;
}

/* Removes every entry for which keep() is false, rebuilding the table. */
static void map_filter(strmap *m, int (*keep)(void *ent, void *ctx), void *ctx)
{
    void **old = m->slots;
    size_t oldcap = m->cap;
    m->slots = oldcap ? calloc(oldcap, sizeof *m->slots) : NULL;
    if (oldcap && m->slots == NULL)
        abort();
    m->n = 0;
    for (size_t i = 0; i < oldcap; i++) {
        if (old[i] == NULL)
            continue;
        if (keep(old[i], ctx)) {
            map_put_raw(m, old[i]);
            m->n++;
        } else {
            free(((entry_head *)old[i])->id);
            free(old[i]);
        }
    }
    free(old);
}

static int keep_none(void *ent, void *ctx)
{
    (void)ent, (void)ctx;
    return 0;
}

/* ---- engine ---- */

nta_rules *nta_rules_create(const nta_rule_limits *lim, nta_rules_out out)
{
    nta_rules *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->lim = *lim;
    e->out = out;
    return e;
}

void nta_rules_destroy(nta_rules *e)
{
    if (e == NULL)
        return;
    map_filter(&e->alerts, keep_none, NULL);
    map_filter(&e->bases, keep_none, NULL);
    free(e->alerts.slots);
    free(e->bases.slots);
    free(e->rules);
    nta_ruleset_destroy(e->rs);
    nta_buf_free(&e->json);
    nta_buf_free(&e->key);
    nta_buf_free(&e->id);
    free(e);
}

/* Resolves a numeric result field name: "count" (-1), or an aggregate's name
 * as results show it ("sum_bytes", "p99_bytes": agg index, with the quantile
 * in *q). Top-k lists are not numbers. Returns -2 if there is no such field. */
static int field_index(const nta_window_spec *sp, const char *name, int *q)
{
    *q = 0;
    if (strcmp(name, "count") == 0)
        return -1;
    for (int i = 0; i < sp->naggs; i++) {
        const nta_agg_spec *a = &sp->aggs[i];
        int nq = a->kind == NTA_AGG_QUANTILE ? a->nq : 1;
        for (int k = 0; k < nq && a->kind != NTA_AGG_TOPK; k++) {
            char n[64];
            nta_agg_result_name(a, k, n, sizeof n);
            if (strcmp(n, name) == 0) {
                *q = k;
                return i;
            }
        }
    }
    return -2;
}

/* The index of the top-k aggregate named name, or -1. */
static int topk_index(const nta_window_spec *sp, const char *name)
{
    for (int i = 0; i < sp->naggs; i++) {
        char n[64];
        nta_agg_result_name(&sp->aggs[i], 0, n, sizeof n);
        if (sp->aggs[i].kind == NTA_AGG_TOPK && strcmp(n, name) == 0)
            return i;
    }
    return -1;
}

static const nta_window_spec *find_spec(const nta_window_spec *specs, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(specs[i].name, name) == 0)
            return &specs[i];
    return NULL;
}

static void list_fields(const nta_window_spec *sp, char *buf, size_t len)
{
    size_t o = (size_t)snprintf(buf, len, "count");
    for (int i = 0; i < sp->naggs && o < len; i++) {
        const nta_agg_spec *a = &sp->aggs[i];
        for (int k = 0; k < (a->kind == NTA_AGG_QUANTILE ? a->nq : 1) && o < len; k++) {
            char n[64];
            nta_agg_result_name(a, k, n, sizeof n);
            o += (size_t)snprintf(buf + o, len - o, ", %s", n);
        }
    }
}

int nta_rules_check(const nta_rule_def *defs, int ndefs, const nta_window_spec *specs,
                    int nspecs, char *err, size_t errlen)
{
    for (int i = 0; i < ndefs; i++) {
        const nta_rule_def *d = &defs[i];
        for (int j = 0; j < i; j++)
            if (strcmp(defs[j].name, d->name) == 0) {
                snprintf(err, errlen, "%s: rule '%s' is also declared at %s", d->where, d->name,
                         defs[j].where);
                return -1;
            }
        const nta_window_spec *sp = find_spec(specs, nspecs, d->window);
        if (sp == NULL) {
            snprintf(err, errlen, "%s: rule '%s' watches window '%s', which the pipeline does "
                                  "not declare", d->where, d->name, d->window);
            return -1;
        }
        char fields[512];
        list_fields(sp, fields, sizeof fields);
        int q;
        if (d->each[0] && topk_index(sp, d->each) < 0) {
            snprintf(err, errlen, "%s: rule '%s': window '%s' has no top-k list '%s' (it has: "
                                  "%s)", d->where, d->name, d->window, d->each, fields);
            return -1;
        }
        if (d->each[0] && sp->nkeys >= NTA_WINDOW_MAX_KEYS) {
            snprintf(err, errlen, "%s: rule '%s': each needs a window of at most %d key "
                                  "field(s); '%s' has %d", d->where, d->name,
                     NTA_WINDOW_MAX_KEYS - 1, d->window, sp->nkeys);
            return -1;
        }
        for (int k = 0; d->each[0] && k < sp->nkeys; k++)
            if (sp->key[k] == sp->aggs[topk_index(sp, d->each)].field) {
                snprintf(err, errlen, "%s: rule '%s': each: the items of '%s' are values of "
                                      "'%s', a key of window '%s' already", d->where, d->name,
                         d->each, nta_field_name(sp->key[k]), d->window);
                return -1;
            }
        int is_derived = strcmp(d->value, "z") == 0 || strcmp(d->value, "ratio") == 0 ||
                         d->each[0];
        if (d->value[0] && !is_derived && field_index(sp, d->value, &q) == -2) {
            snprintf(err, errlen, "%s: rule '%s': window '%s' has no field '%s' (it has: %s)",
                     d->where, d->name, d->window, d->value, fields);
            return -1;
        }
        if (d->baseline[0] && field_index(sp, d->baseline, &q) == -2) {
            snprintf(err, errlen,
                     "%s: rule '%s': baseline field '%s' is not in window '%s' (it has: %s)",
                     d->where, d->name, d->baseline, d->window, fields);
            return -1;
        }
    }
    return 0;
}

static double result_field(const nta_result *r, int idx, int q)
{
    if (idx == -1)
        return (double)r->count;
    const nta_agg_spec *a = &r->spec->aggs[idx];
    if (a->kind == NTA_AGG_MEAN)
        return r->values[idx].d;
    if (a->kind == NTA_AGG_QUANTILE)
        return r->values[idx].qs ? nta_qsketch_quantile(r->values[idx].qs, a->q[q]) : 0;
    return (double)r->values[idx].u;
}

/* The spec the items of top-k aggregate t are keyed by: spec's key fields,
 * then the top-k's field (nta_rules_check leaves room for it). */
static void item_spec_of(const nta_window_spec *spec, int t, nta_window_spec *out)
{
    *out = *spec;
    out->key[spec->nkeys] = spec->aggs[t].field;
    out->nkeys = spec->nkeys + 1;
}

int nta_rules_dry_run(nta_ruleset *rs, const nta_result *r, const nta_rule_limits *lim,
                      char *err, size_t errlen)
{
    nta_baseline_view b = {0};
    for (int i = 0; i < nta_ruleset_count(rs); i++) {
        const nta_rule_def *d = nta_ruleset_rule(rs, i);
        if (d->fn_ref < 0 || strcmp(d->window, r->spec->name) != 0)
            continue;
        b.present = d->baseline[0] != '\0';
        /* An each rule judges items, keyed by the window's keys and the
         * item; the copy's top-k lists are gone, so a stand-in item (the
         * zero address or number) takes the place of one. */
        nta_window_spec item_spec;
        nta_result item;
        const nta_result *judged = r;
        int t = d->each[0] ? topk_index(r->spec, d->each) : -1;
        if (t >= 0 && r->spec->nkeys < NTA_WINDOW_MAX_KEYS) {
            item_spec_of(r->spec, t, &item_spec);
            item = *r;
            item.spec = &item_spec;
            item.count = 0;
            nta_topk_item zero;
            memset(&zero, 0, sizeof zero);
            nta_agg_item_text(r->spec->aggs[t].field, &zero, item.key_text[r->spec->nkeys]);
            judged = &item;
        }
        double v = 0;
        char e[1024];
        int rc = nta_ruleset_eval(rs, d, judged, &b, lim->budget_ms, &v, e, sizeof e);
        if (rc < 0) {
            snprintf(err, errlen, "dry run: rule '%s' (%s) failed on the latest '%s' result: %s", d->name,
                     d->where, d->window, e);
            return -1;
        }
    }
    return 0;
}

static int keep_if_rule_exists(void *ent, void *ctx)
{
    const nta_rules *e = ctx;
    const alert_state *a = ent;
    size_t n = strcspn(a->id, "\x1f");
    for (int i = 0; i < e->nrules; i++)
        if (strlen(e->rules[i].def.name) == n && strncmp(e->rules[i].def.name, a->id, n) == 0)
            return 1;
    return 0;
}

static void add_rule(rule *r, const nta_rule_def *d, nta_ruleset *rs, const nta_window_spec *specs,
                     int nspecs)
{
    memset(r, 0, sizeof *r);
    r->def = *d;
    r->rs = rs;
    r->spec = find_spec(specs, nspecs, d->window);
    if (strcmp(d->value, "z") == 0)
        r->vk = VAL_Z;
    else if (strcmp(d->value, "ratio") == 0)
        r->vk = VAL_RATIO;
    else if (d->each[0])
        r->vk = VAL_ITEM;
    else if (d->value[0] == '\0')
        r->vk = VAL_NONE;
    else {
        r->vagg = field_index(r->spec, d->value, &r->vq);
        r->vk = r->vagg == -1 ? VAL_COUNT : VAL_AGG;
    }
    r->bagg = d->baseline[0] ? field_index(r->spec, d->baseline, &r->bq) : -2;
    r->each = d->each[0] ? topk_index(r->spec, d->each) : -1;
    if (r->each >= 0) {
        item_spec_of(r->spec, r->each, &r->item_spec);
    }
}

/* The spec whose keys an alert of ru carries. */
static const nta_window_spec *key_spec(const rule *ru)
{
    return ru->each >= 0 ? &ru->item_spec : ru->spec;
}

void nta_rules_install(nta_rules *e, nta_ruleset *rs, const nta_rule_def *inline_defs,
                       int ninline, const nta_window_spec *specs, int nspecs)
{
    int n = ninline + nta_ruleset_count(rs);
    rule *nr = n ? calloc((size_t)n, sizeof *nr) : NULL;
    if (n && nr == NULL)
        abort();
    int k = 0;
    for (int i = 0; i < ninline; i++)
        add_rule(&nr[k++], &inline_defs[i], NULL, specs, nspecs);
    for (int i = 0; i < nta_ruleset_count(rs); i++)
        add_rule(&nr[k++], nta_ruleset_rule(rs, i), rs, specs, nspecs);
    free(e->rules);
    nta_ruleset_destroy(e->rs);
    e->rules = nr;
    e->nrules = n;
    e->rs = rs;
    map_filter(&e->alerts, keep_if_rule_exists, e);
}

/* ---- baselines ---- */

static baseline *get_baseline(nta_rules *e, const nta_result *r, const char *field, int create)
{
    nta_buf_reset(&e->id);
    nta_buf_puts(&e->id, r->spec->name);
    nta_buf_putc(&e->id, '\x1f');
    nta_buf_puts(&e->id, field);
    for (int i = 0; i < r->spec->nkeys; i++) {
        nta_buf_putc(&e->id, '\x1f');
        nta_buf_puts(&e->id, r->key_text[i]);
    }
    const char *id = nta_buf_cstr(&e->id);
    uint64_t h = id_hash(id);
    baseline *b = map_get(&e->bases, id, h);
    if (b || !create)
        return b;
    if (e->bases.n >= MAX_BASELINES) {
        e->states_dropped++;
        return NULL;
    }
    b = calloc(1, sizeof *b);
    if (b)
        b->hash = h;
    if (b == NULL || (b->id = strdup(id)) == NULL || map_put(&e->bases, b) != 0) {
        if (b)
            free(b->id);
        free(b);
        return NULL;
    }
    return b;
}

static void baseline_view(const rule *ru, const baseline *b, double x, nta_baseline_view *v)
{
    memset(v, 0, sizeof *v);
    v->present = ru->bagg != -2;
    if (!v->present || b == NULL)
        return;
    v->n = b->n;
    v->mean = b->mean;
    v->std = sqrt(b->var);
    if (b->n >= (uint64_t)ru->def.warmup && b->n > 0) {
        /* A perfectly flat history has std 0: measure against a floor of 1%
         * of the mean so that the first wobble is not an infinite z. */
        double sd = v->std > fabs(b->mean) * 0.01 ? v->std : fabs(b->mean) * 0.01;
        v->z = sd > 0 ? (x - b->mean) / sd : 0;
        v->ratio = b->mean != 0 ? x / b->mean : 0;
    }
}

/* West's exponentially weighted mean and variance. */
static void baseline_update(baseline *b, double x, double alpha)
{
    if (b->n == 0) {
        b->mean = x;
        b->var = 0;
    } else {
        double diff = x - b->mean, incr = alpha * diff;
        b->mean += incr;
        b->var = (1 - alpha) * (b->var + diff * incr);
    }
    b->n++;
}

/* ---- alerts ---- */

static alert_state *get_alert(nta_rules *e, const rule *ru, const nta_result *r, int create)
{
    nta_buf_reset(&e->id);
    nta_buf_puts(&e->id, ru->def.name);
    for (int i = 0; i < r->spec->nkeys; i++) {
        nta_buf_putc(&e->id, '\x1f');
        nta_buf_puts(&e->id, r->key_text[i]);
    }
    const char *id = nta_buf_cstr(&e->id);
    uint64_t h = id_hash(id);
    alert_state *a = map_get(&e->alerts, id, h);
    if (a || !create)
        return a;
    if (e->alerts.n >= MAX_ALERT_STATES) {
        e->states_dropped++;
        return NULL;
    }
    a = calloc(1, sizeof *a);
    if (a)
        a->hash = h;
    if (a == NULL || (a->id = strdup(id)) == NULL || map_put(&e->alerts, a) != 0) {
        if (a)
            free(a->id);
        free(a);
        return NULL;
    }
    a->cleared_end = INT64_MIN;
    memcpy(a->key_text, r->key_text, sizeof a->key_text);
    return a;
}

/* Expands {name} placeholders: key fields by name, value, threshold, rule,
 * window, severity. Unknown names stay as written. */
static void render_message(nta_buf *b, const rule *ru, const alert_state *a, const char *vtext,
                           const char *ttext)
{
    const char *m = ru->def.message[0] ? ru->def.message : "{rule} on {key}: {value}";
    while (*m) {
        const char *open = strchr(m, '{'), *close = open ? strchr(open, '}') : NULL;
        if (open == NULL || close == NULL) {
            nta_buf_puts(b, m);
            return;
        }
        nta_buf_put(b, m, (size_t)(open - m));
        size_t n = (size_t)(close - open - 1);
        const char *name = open + 1, *val = NULL;
        char keyall[NTA_WINDOW_MAX_KEYS * NTA_FIELD_TEXT_MAX + 4] = "";
        const nta_window_spec *ks = key_spec(ru);
        for (int i = 0; i < ks->nkeys; i++) {
            const char *fn = nta_field_name(ks->key[i]);
            if (strlen(fn) == n && strncmp(fn, name, n) == 0)
                val = a->key_text[i];
            strcat(keyall, i ? " " : "");
            strcat(keyall, a->key_text[i]);
        }
        if (val == NULL) {
            if (n == 5 && strncmp(name, "value", 5) == 0)
                val = vtext;
            else if (n == 9 && strncmp(name, "threshold", 9) == 0)
                val = ttext;
            else if (n == 4 && strncmp(name, "rule", 4) == 0)
                val = ru->def.name;
            else if (n == 6 && strncmp(name, "window", 6) == 0)
                val = ru->def.window;
            else if (n == 8 && strncmp(name, "severity", 8) == 0)
                val = nta_severity_name(ru->def.severity);
            else if (n == 3 && strncmp(name, "key", 3) == 0)
                val = ks->nkeys ? keyall : "total";
        }
        if (val)
            nta_buf_puts(b, val);
        else
            nta_buf_put(b, open, n + 2);
        m = close + 1;
    }
}

static void fmt_number(char *buf, size_t len, double v)
{
    if (v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, len, "%.0f", v);
    else
        snprintf(buf, len, "%.4g", v);
}

static void publish(nta_rules *e, rule *ru, alert_state *a, const char *state, int64_t start,
                    int64_t end, int64_t now_wall_ms)
{
    char vtext[32], ttext[32] = "null";
    fmt_number(vtext, sizeof vtext, a->value);
    int has_t = ru->def.has_above || ru->def.has_below;
    if (has_t)
        fmt_number(ttext, sizeof ttext, ru->def.has_above ? ru->def.above : ru->def.below);

    nta_buf *b = &e->json;
    nta_buf_reset(b);
    nta_buf_puts(b, "{\"type\":\"alert\",\"rule\":");
    nta_buf_json_str(b, ru->def.name, strlen(ru->def.name));
    nta_buf_printf(b, ",\"severity\":\"%s\",\"state\":\"%s\",\"window\":",
                   nta_severity_name(ru->def.severity), state);
    nta_buf_json_str(b, ru->def.window, strlen(ru->def.window));
    nta_buf_puts(b, ",\"key\":{");
    const nta_window_spec *ks = key_spec(ru);
    for (int i = 0; i < ks->nkeys; i++) {
        const char *fn = nta_field_name(ks->key[i]);
        nta_buf_printf(b, "%s\"%s\":", i ? "," : "", fn);
        nta_buf_json_str(b, a->key_text[i], strlen(a->key_text[i]));
    }
    nta_buf_printf(b, "},\"value\":%s,\"threshold\":%s,\"start\":", vtext, ttext);
    nta_buf_i64(b, start);
    nta_buf_puts(b, ",\"end\":");
    nta_buf_i64(b, end);
    nta_buf_puts(b, ",\"start_time\":\"");
    nta_buf_rfc3339(b, start);
    nta_buf_puts(b, "\",\"end_time\":\"");
    nta_buf_rfc3339(b, end);
    nta_buf_puts(b, "\",\"first_seen\":");
    nta_buf_i64(b, a->first_hit_start);
    nta_buf_puts(b, ",\"first_seen_time\":\"");
    nta_buf_rfc3339(b, a->first_hit_start);
    nta_buf_puts(b, "\",\"raised_at\":");
    nta_buf_i64(b, a->raised_wall);
    nta_buf_puts(b, ",\"raised_at_time\":\"");
    nta_buf_rfc3339(b, a->raised_wall);
    nta_buf_puts(b, "\",\"published_at\":");
    nta_buf_i64(b, now_wall_ms);
    nta_buf_printf(b, ",\"detection_latency_ms\":%lld,\"message\":",
                   (long long)(a->raised_wall - a->first_hit_end));
    nta_buf_reset(&e->key);
    render_message(&e->key, ru, a, vtext, ttext);
    nta_buf_json_str(b, e->key.data ? e->key.data : "", e->key.len);
    nta_buf_putc(b, '}');

    nta_buf_reset(&e->key);
    nta_buf_puts(&e->key, ru->def.name);
    for (int i = 0; i < ks->nkeys; i++) {
        nta_buf_putc(&e->key, '|');
        nta_buf_puts(&e->key, a->key_text[i]);
    }
    e->out.alert(e->out.ctx, ru->def.topic, e->key.data, e->key.len, b->data, b->len);
}

static void record_latency(rule *ru, double ms)
{
    ru->latency[ru->latency_n % LATENCY_RING] = ms;
    ru->latency_n++;
    if (ms > ru->latency_max)
        ru->latency_max = ms;
}

/* One window's verdict for a key: the hysteresis and the lifecycle. */
static void step(nta_rules *e, rule *ru, alert_state *a, int hit, double value,
                 const nta_result *r, int64_t now_wall_ms)
{
    a->last_seen_end = r->end_ms;
    if (hit) {
        ru->hits++;
        a->misses = 0;
        if (a->hits++ == 0) {
            a->first_hit_start = r->start_ms;
            a->first_hit_end = r->end_ms;
        }
        a->value = value;
        if (!a->active && a->hits >= ru->def.raise_after &&
            (a->cleared_end == INT64_MIN || r->end_ms - a->cleared_end >= ru->def.cooldown_ms)) {
            a->active = 1;
            a->raised_wall = now_wall_ms;
            a->last_ongoing_end = r->end_ms;
            ru->raised++;
            record_latency(ru, (double)(now_wall_ms - a->first_hit_end));
            publish(e, ru, a, "raised", r->start_ms, r->end_ms, now_wall_ms);
        } else if (a->active && r->end_ms - a->last_ongoing_end >= ru->def.cooldown_ms) {
            a->last_ongoing_end = r->end_ms;
            publish(e, ru, a, "ongoing", r->start_ms, r->end_ms, now_wall_ms);
        }
        return;
    }
    a->hits = 0;
    if (a->active && ++a->misses >= ru->def.clear_after) {
        a->active = 0;
        a->misses = 0;
        a->cleared_end = r->end_ms;
        ru->cleared++;
        publish(e, ru, a, "cleared", r->start_ms, r->end_ms, now_wall_ms);
    }
}

static void rule_error(rule *ru, int rc, const char *msg)
{
    ru->errors++;
    snprintf(ru->last_error, sizeof ru->last_error, "%s", msg);
    if (rc == -2 || ++ru->consecutive_errors >= QUARANTINE_AFTER) {
        ru->quarantined = 1;
        fprintf(stderr, "nta: rule '%s' (%s) quarantined until the next reload: %s\n",
                ru->def.name, ru->def.where, msg);
    }
}

/* Judges r for one rule; returns whether the condition held. The baseline
 * is that of the window result w: r itself, or for each the result whose
 * top-k list holds the item r. */
static int evaluate(nta_rules *e, rule *ru, const nta_result *r, const nta_result *w,
                    int64_t now_wall_ms)
{
    double base_x = ru->bagg != -2 ? result_field(w, ru->bagg, ru->bq) : 0;
    baseline *b = ru->bagg != -2 ? get_baseline(e, w, ru->def.baseline, 1) : NULL;
    nta_baseline_view bv;
    baseline_view(ru, b, base_x, &bv);

    double value = 0;
    switch (ru->vk) {
    case VAL_COUNT: value = (double)r->count; break;
    case VAL_AGG: value = result_field(r, ru->vagg, ru->vq); break;
    case VAL_ITEM: value = ru->item_value; break;
    case VAL_Z: value = bv.z; break;
    case VAL_RATIO: value = bv.ratio; break;
    case VAL_NONE: break;
    }
    int hit;
    int64_t t0 = nta_mono_ns();
    ru->evaluations++;
    /* A baseline still warming up cannot judge z or ratio. */
    int warm = !(ru->vk == VAL_Z || ru->vk == VAL_RATIO) ||
               (b && b->n >= (uint64_t)ru->def.warmup && b->n > 0);
    int has_threshold = ru->def.has_above || ru->def.has_below;
    int past = warm && ((ru->def.has_above && value > ru->def.above) ||
                        (ru->def.has_below && value < ru->def.below));
    if (ru->def.fn_ref >= 0 && ru->rs && has_threshold && !past) {
        /* The threshold of a function rule is a prefilter in C: most keys of
         * a large window never reach Lua. */
        hit = 0;
    } else if (ru->def.fn_ref >= 0 && ru->rs) {
        char err[1024];
        hit = nta_ruleset_eval(ru->rs, &ru->def, r, &bv, e->lim.budget_ms, &value, err,
                               sizeof err);
        if (hit < 0) {
            rule_error(ru, hit, err);
            ru->eval_ns += (uint64_t)(nta_mono_ns() - t0);
            return 0;
        }
        ru->consecutive_errors = 0;
    } else {
        hit = past;
    }
    ru->eval_ns += (uint64_t)(nta_mono_ns() - t0);
    /* Keys that never met the condition need no state. */
    alert_state *a = get_alert(e, ru, r, hit);
    if (a)
        step(e, ru, a, hit, value, r, now_wall_ms);
    return hit;
}

/* Baselines move after every rule has judged the window against them: a
 * window must not be compared with a mean it has already pulled along. A
 * window that met the condition of a rule reading the baseline does not move
 * it either: an anomaly that lasts must not become the new normal while it
 * lasts. hits[i] tells whether rule i's condition held for r. */
static void update_baselines(nta_rules *e, const nta_result *r, const unsigned char *hits)
{
    for (int i = 0; i < e->nrules; i++) {
        rule *ru = &e->rules[i];
        if (ru->bagg == -2 || ru->spec != r->spec)
            continue;
        int first = 1, anomalous = 0;
        for (int j = 0; j < e->nrules; j++) {
            if (e->rules[j].spec != r->spec || strcmp(e->rules[j].def.baseline, ru->def.baseline))
                continue;
            first &= j >= i;
            anomalous |= hits[j];
        }
        if (!first || anomalous)
            continue;
        baseline *b = get_baseline(e, r, ru->def.baseline, 1);
        if (b)
            baseline_update(b, result_field(r, ru->bagg, ru->bq), ru->def.alpha);
    }
}

/* Every rule watching r's window judges r; then the baselines move. */
static void process(nta_rules *e, const nta_result *r, int64_t now_wall_ms)
{
    int any = 0;
    unsigned char hits[NTA_MAX_RULES * 2] = {0};
    for (int i = 0; i < e->nrules; i++) {
        rule *ru = &e->rules[i];
        if (ru->spec == NULL || strcmp(ru->spec->name, r->spec->name) != 0)
            continue;
        /* A restarted window has a new spec object; follow it. */
        ru->spec = r->spec;
        any = 1;
        if (ru->quarantined)
            continue;
        if (ru->each < 0) {
            hits[i] = (unsigned char)evaluate(e, ru, r, r, now_wall_ms);
            continue;
        }
        /* Each reported item is judged as a key of its own. */
        const nta_agg_spec *a = &r->spec->aggs[ru->each];
        const nta_topk *t = r->values[ru->each].topk;
        nta_topk_item items[NTA_TOPK_MAX_K];
        size_t n = t ? nta_topk_items(t, items, (size_t)a->k) : 0;
        double total = t ? (double)nta_topk_total(t) : 0;
        if (total < ru->def.min_total)
            continue; /* too quiet to judge shares; keys count a miss at window end */
        nta_result ir;
        memset(&ir, 0, sizeof ir);
        ir.spec = &ru->item_spec;
        ir.start_ms = r->start_ms;
        ir.end_ms = r->end_ms;
        /* A when() sees the window's aggregates, and count = the item's
         * weight. */
        memcpy(ir.values, r->values, sizeof ir.values);
        int nk = ru->item_spec.nkeys - 1;
        memcpy(ir.key_text, r->key_text, (size_t)nk * sizeof ir.key_text[0]);
        for (size_t k = 0; k < n; k++) {
            nta_agg_item_text(a->field, &items[k], ir.key_text[nk]);
            ir.count = items[k].value;
            ru->item_value = strcmp(ru->def.value, "share") == 0
                                 ? (total > 0 ? (double)items[k].value / total : 0)
                                 : (double)items[k].value;
            /* An item that meets the rule keeps its window's baseline still. */
            hits[i] |= (unsigned char)evaluate(e, ru, &ir, r, now_wall_ms);
        }
    }
    if (any)
        update_baselines(e, r, hits);
}

static int watched(const nta_rules *e, const char *window)
{
    for (int i = 0; i < e->nrules; i++)
        if (strcmp(e->rules[i].def.window, window) == 0)
            return 1;
    return 0;
}

static win_track *track(nta_rules *e, const char *window)
{
    for (int i = 0; i < e->ntracks; i++)
        if (strcmp(e->tracks[i].name, window) == 0)
            return &e->tracks[i];
    if (e->ntracks == NTA_MAX_WINDOWS)
        return NULL;
    win_track *t = &e->tracks[e->ntracks++];
    snprintf(t->name, sizeof t->name, "%s", window);
    t->last_end = INT64_MIN;
    return t;
}

/* Evaluates the windows of spec that closed empty, up to end upto. */
static void fill_empty(nta_rules *e, const nta_window_spec *spec, win_track *t, int64_t upto,
                       int64_t now_wall_ms)
{
    for (int k = 0; k < MAX_EMPTY_FILL && t->last_end != INT64_MIN &&
                    t->last_end + spec->slide_ms <= upto;
         k++) {
        nta_result z;
        memset(&z, 0, sizeof z);
        z.spec = spec;
        z.end_ms = t->last_end + spec->slide_ms;
        z.start_ms = z.end_ms - spec->size_ms;
        t->last_end = z.end_ms;
        process(e, &z, now_wall_ms);
        nta_rules_window_done(e, spec, z.end_ms, now_wall_ms);
    }
}

void nta_rules_on_result(nta_rules *e, const nta_result *r, int64_t now_wall_ms)
{
    if (r->spec->nkeys == 0 && watched(e, r->spec->name)) {
        win_track *t = track(e, r->spec->name);
        if (t) {
            fill_empty(e, r->spec, t, r->end_ms - r->spec->slide_ms, now_wall_ms);
            if (r->end_ms > t->last_end)
                t->last_end = r->end_ms;
        }
    }
    process(e, r, now_wall_ms);
}

typedef struct done_ctx {
    nta_rules *e;
    rule *ru;
    int64_t end;
    int64_t now;
} done_ctx;

static int miss_unseen(void *ent, void *ctx)
{
    done_ctx *c = ctx;
    alert_state *a = ent;
    size_t n = strlen(c->ru->def.name);
    if (strncmp(a->id, c->ru->def.name, n) != 0 || (a->id[n] != '\x1f' && a->id[n] != '\0'))
        return 1;
    if (a->last_seen_end < c->end) {
        nta_result r;
        memset(&r, 0, sizeof r);
        r.spec = key_spec(c->ru);
        r.end_ms = c->end;
        r.start_ms = c->end - c->ru->spec->size_ms;
        step(c->e, c->ru, a, 0, a->value, &r, c->now);
    }
    /* A key that neither alerts nor is building up to it is forgotten. */
    return a->active || a->hits > 0;
}

void nta_rules_window_done(nta_rules *e, const nta_window_spec *spec, int64_t end_ms,
                           int64_t now_wall_ms)
{
    for (int i = 0; i < e->nrules; i++) {
        rule *ru = &e->rules[i];
        if (ru->spec == NULL || strcmp(ru->spec->name, spec->name) != 0)
            continue;
        ru->spec = spec;
        done_ctx c = {e, ru, end_ms, now_wall_ms};
        map_filter(&e->alerts, miss_unseen, &c);
    }
}

void nta_rules_on_watermark(nta_rules *e, int64_t wm, int64_t now_wall_ms)
{
    for (int i = 0; i < e->nrules; i++) {
        const nta_window_spec *sp = e->rules[i].spec;
        if (sp == NULL || sp->nkeys != 0)
            continue;
        win_track *t = track(e, sp->name);
        if (t)
            fill_empty(e, sp, t, wm, now_wall_ms);
    }
}

int nta_rules_count(const nta_rules *e) { return e->nrules; }
uint64_t nta_rules_states_dropped(const nta_rules *e) { return e->states_dropped; }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void nta_rules_get_stats(const nta_rules *e, int i, nta_rule_stats *out)
{
    const rule *ru = &e->rules[i];
    memset(out, 0, sizeof *out);
    out->name = ru->def.name;
    out->window = ru->def.window;
    out->where = ru->def.where;
    out->severity = ru->def.severity;
    out->evaluations = ru->evaluations;
    out->hits = ru->hits;
    out->raised = ru->raised;
    out->cleared = ru->cleared;
    out->errors = ru->errors;
    out->quarantined = ru->quarantined;
    out->last_error = ru->last_error;
    out->eval_ns = ru->eval_ns;
    out->active = ru->raised - ru->cleared;
    out->latency_n = ru->latency_n;
    size_t n = ru->latency_n < LATENCY_RING ? ru->latency_n : LATENCY_RING;
    if (n) {
        double tmp[LATENCY_RING];
        memcpy(tmp, ru->latency, n * sizeof *tmp);
        qsort(tmp, n, sizeof *tmp, cmp_double);
        out->latency_p50_ms = tmp[(n - 1) / 2];
        out->latency_p99_ms = tmp[(size_t)ceil(0.99 * (double)n) - 1];
        out->latency_max_ms = ru->latency_max;
    }
}

void nta_rules_status_json(const nta_rules *e, nta_buf *b)
{
    nta_buf_putc(b, '[');
    for (int i = 0; i < e->nrules; i++) {
        nta_rule_stats s;
        nta_rules_get_stats(e, i, &s);
        nta_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        nta_buf_json_str(b, s.name, strlen(s.name));
        nta_buf_puts(b, ",\"window\":");
        nta_buf_json_str(b, s.window, strlen(s.window));
        nta_buf_puts(b, ",\"where\":");
        nta_buf_json_str(b, s.where, strlen(s.where));
        nta_buf_printf(b,
                       ",\"severity\":\"%s\",\"evaluations\":%llu,\"hits\":%llu,\"raised\":%llu,"
                       "\"cleared\":%llu,\"active\":%llu,\"errors\":%llu,\"quarantined\":%s,"
                       "\"eval_ns\":%llu,\"latency_p50_ms\":%.0f,\"latency_p99_ms\":%.0f,"
                       "\"error\":",
                       nta_severity_name(s.severity), (unsigned long long)s.evaluations,
                       (unsigned long long)s.hits, (unsigned long long)s.raised,
                       (unsigned long long)s.cleared, (unsigned long long)s.active,
                       (unsigned long long)s.errors, s.quarantined ? "true" : "false",
                       (unsigned long long)s.eval_ns, s.latency_p50_ms, s.latency_p99_ms);
        nta_buf_json_str(b, s.last_error, strlen(s.last_error));
        nta_buf_putc(b, '}');
    }
    nta_buf_putc(b, ']');
}
