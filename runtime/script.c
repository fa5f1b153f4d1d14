#include "script.h"

#include <lauxlib.h>
#include <lua.h>
#include <luajit.h>
#include <lualib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "rule.h"

/* From Debian's liblua5.1-cjson.a, linked into the binary: scripts get cjson
 * through require without depending on a Lua module path. */
int luaopen_cjson(lua_State *L);

struct nta_script {
    lua_State *L;
    nta_script_kind kind;
    int declared_pipeline, declared_generator;
    nta_pipeline_conf *pconf;
    nta_gen_conf *gconf;
    int has_on_window;
    int on_window_ref, generate_ref, traceback_ref;
    /* Where emit() sends records during nta_script_generate. */
    nta_gen_emit_fn emit_fn;
    void *emit_ctx;
    long emitted;
    char dir[NTA_PATH_MAX]; /* the script's directory: relative paths in it start here */
};

/* Rule declarations, defined with the rule set below. */
static int l_pipeline_rule(lua_State *L);
static int l_rules(lua_State *L);

void nta_pipeline_conf_init(nta_pipeline_conf *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->input_topic, sizeof c->input_topic, "network-traffic");
    snprintf(c->dlq_topic, sizeof c->dlq_topic, "network-traffic-dlq");
    snprintf(c->output_topic, sizeof c->output_topic, "processed-data");
    c->format = NTA_FMT_AUTO;
    c->lateness_ms = 5000;
    c->idle_timeout_ms = 5000;
    c->print = -1;
    c->rule_limits.budget_ms = 100;
    c->rule_limits.memory_bytes = 64u << 20;
}

void nta_pipeline_conf_free(nta_pipeline_conf *c)
{
    for (int i = 0; i < c->ncsv_columns; i++)
        free(c->csv_columns[i]);
    for (int i = 0; i < c->ngenerator_args; i++)
        free(c->generator_args[i]);
    for (int i = 0; i < c->nrule_paths; i++)
        free(c->rule_paths[i]);
    free(c->inline_rules);
    c->inline_rules = NULL;
    c->ncsv_columns = c->ngenerator_args = c->nrule_paths = c->ninline_rules = 0;
}

void nta_gen_conf_init(nta_gen_conf *c)
{
    memset(c, 0, sizeof *c);
    c->rate = 10000;
    c->count = -1;
    c->start_ms = NTA_TS_NONE;
    c->format = NTA_GEN_JSON;
    snprintf(c->topic, sizeof c->topic, "network-traffic");
}

int64_t nta_parse_duration(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || !isfinite(v) || v < 0)
        return -1;
    double mult;
    if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0 || *end == '\0')
        mult = 1000;
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
        mult = 60e3;
    else if (strcmp(end, "h") == 0)
        mult = 3600e3;
    else if (strcmp(end, "d") == 0)
        mult = 86400e3;
    else
        return -1;
    double ms = v * mult;
    if (ms > 1e15 || ms != floor(ms))
        return -1;
    return (int64_t)ms;
}

/* ---- helpers for declarations: every error names the script's file:line ---- */

static nta_script *self(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }

/* Rejects keys of the table at idx that are not in allowed (NULL-terminated):
 * a misspelt option must fail loudly, not be ignored. */
static void check_keys(lua_State *L, int idx, const char *what, const char *const *allowed)
{
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s: option names must be strings", what);
        const char *k = lua_tostring(L, -1);
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            ok |= strcmp(*a, k) == 0;
        if (!ok) {
            char list[512] = "";
            for (const char *const *a = allowed; *a; a++) {
                strncat(list, a == allowed ? "" : ", ", sizeof list - strlen(list) - 1);
                strncat(list, *a, sizeof list - strlen(list) - 1);
            }
            luaL_error(L, "%s: unknown option '%s' (known: %s)", what, k, list);
        }
    }
}

/* Copies string option k of table idx into dst; absent leaves dst alone. */
static void opt_string(lua_State *L, int idx, const char *what, const char *k, char *dst,
                       size_t dstlen)
{
    lua_getfield(L, idx, k);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s: option '%s' must be a string", what, k);
        size_t len;
        const char *v = lua_tolstring(L, -1, &len);
        if (len >= dstlen)
            luaL_error(L, "%s: option '%s' is too long (max %d)", what, k, (int)dstlen - 1);
        memcpy(dst, v, len + 1);
    }
    lua_pop(L, 1);
}

static int64_t opt_duration(lua_State *L, int idx, const char *what, const char *k, int64_t dflt)
{
    lua_getfield(L, idx, k);
    int64_t v = dflt;
    if (lua_type(L, -1) == LUA_TNUMBER) {
        double d = lua_tonumber(L, -1) * 1000;
        v = (d >= 0 && d < 1e15 && d == floor(d)) ? (int64_t)d : -1;
    } else if (lua_type(L, -1) == LUA_TSTRING) {
        v = nta_parse_duration(lua_tostring(L, -1));
    } else if (!lua_isnil(L, -1)) {
        v = -1;
    }
    if (v < 0)
        luaL_error(L, "%s: option '%s' is not a duration (like \"500ms\", \"10s\", \"5m\", \"1h\")",
                   what, k);
    lua_pop(L, 1);
    return v;
}

static double opt_number(lua_State *L, int idx, const char *what, const char *k, double dflt)
{
    lua_getfield(L, idx, k);
    double v = dflt;
    if (lua_type(L, -1) == LUA_TNUMBER)
        v = lua_tonumber(L, -1);
    else if (lua_type(L, -1) == LUA_TSTRING && lua_isnumber(L, -1))
        v = lua_tonumber(L, -1);
    else if (!lua_isnil(L, -1))
        luaL_error(L, "%s: option '%s' must be a number", what, k);
    lua_pop(L, 1);
    return v;
}

/* Pushes option k as a list of strings: a string becomes a one-element list.
 * Returns the count (0 if absent), with the strings in out (borrowed from
 * the Lua stack: valid until the table is released). */
static int opt_string_list(lua_State *L, int idx, const char *what, const char *k,
                           const char **out, int max)
{
    lua_getfield(L, idx, k);
    int n = 0;
    if (lua_type(L, -1) == LUA_TSTRING) {
        out[n++] = lua_tostring(L, -1);
    } else if (lua_istable(L, -1)) {
        int len = (int)lua_objlen(L, -1);
        if (len > max)
            luaL_error(L, "%s: option '%s' has more than %d entries", what, k, max);
        for (int i = 1; i <= len; i++) {
            lua_rawgeti(L, -1, i);
            if (lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "%s: option '%s' must list strings", what, k);
            out[n++] = lua_tostring(L, -1);
            lua_pop(L, 1); /* the string stays alive: the table holds it */
        }
    } else if (!lua_isnil(L, -1)) {
        luaL_error(L, "%s: option '%s' must be a string or a list of strings", what, k);
    }
    lua_pop(L, 1); /* the table is still referenced by the declaration table */
    return n;
}

static nta_field field_or_error(lua_State *L, const char *what, const char *k, const char *name)
{
    nta_field f = nta_field_by_name(name);
    if (f == NTA_F_NONE)
        luaL_error(L, "%s: '%s' names unknown field '%s' (fields: src_ip, dst_ip, src_port, "
                      "dst_port, proto, bytes, packets, tcp_flags)",
                   what, k, name);
    return f;
}

static void mark_pipeline(lua_State *L, const char *what)
{
    nta_script *s = self(L);
    if (s->declared_generator)
        luaL_error(L, "%s: a script is either a pipeline or a generator, not both", what);
    s->declared_pipeline = 1;
}

/* ---- pipeline declarations ---- */

static void set_path(lua_State *L, char *dst, const char *rel)
{
    int n = rel[0] == '/' ? snprintf(dst, NTA_PATH_MAX, "%s", rel)
                          : snprintf(dst, NTA_PATH_MAX, "%s/%s", self(L)->dir, rel);
    if (n >= NTA_PATH_MAX)
        luaL_error(L, "input: generator path too long");
}

static int l_input(lua_State *L)
{
    static const char *const allowed[] = {"topic", "format", "columns", "dlq", "late_topic",
                                          "lateness", "idle_timeout", "generator", NULL};
    const char *what = "input";
    luaL_checktype(L, 1, LUA_TTABLE);
    mark_pipeline(L, what);
    check_keys(L, 1, what, allowed);
    nta_pipeline_conf *c = self(L)->pconf;
    opt_string(L, 1, what, "topic", c->input_topic, sizeof c->input_topic);
    opt_string(L, 1, what, "dlq", c->dlq_topic, sizeof c->dlq_topic);
    opt_string(L, 1, what, "late_topic", c->late_topic, sizeof c->late_topic);
    char fmt[32] = "auto";
    opt_string(L, 1, what, "format", fmt, sizeof fmt);
    c->format = nta_format_by_name(fmt);
    if ((int)c->format < 0)
        luaL_error(L, "input: unknown format '%s' (auto, json, csv, goflow2)", fmt);
    c->lateness_ms = opt_duration(L, 1, what, "lateness", c->lateness_ms);
    c->idle_timeout_ms = opt_duration(L, 1, what, "idle_timeout", c->idle_timeout_ms);
    if (c->idle_timeout_ms == 0)
        luaL_error(L, "input: idle_timeout must be greater than 0");

    const char *cols[NTA_CSV_MAX_COLS];
    int n = opt_string_list(L, 1, what, "columns", cols, NTA_CSV_MAX_COLS);
    nta_decoder probe;
    nta_decoder_init(&probe, NTA_FMT_CSV);
    char err[256];
    if (n && nta_decoder_set_columns(&probe, cols, n, err, sizeof err) != 0)
        luaL_error(L, "input: columns: %s", err);
    for (int i = 0; i < n; i++)
        c->csv_columns[c->ncsv_columns++] = strdup(cols[i]);

    /* generator = "path" or { "path", "key=value", ... }; a relative path
     * is relative to this script, so a pipeline runs from any directory. */
    lua_getfield(L, 1, "generator");
    if (lua_type(L, -1) == LUA_TSTRING) {
        set_path(L, c->generator_path, lua_tostring(L, -1));
    } else if (lua_istable(L, -1)) {
        int len = (int)lua_objlen(L, -1);
        if (len < 1 || len > NTA_MAX_GEN_ARGS)
            luaL_error(L, "input: generator = { \"script.lua\", \"key=value\", ... }");
        for (int i = 1; i <= len; i++) {
            lua_rawgeti(L, -1, i);
            if (!lua_isstring(L, -1))
                luaL_error(L, "input: generator entries must be strings");
            if (i == 1)
                set_path(L, c->generator_path, lua_tostring(L, -1));
            else
                c->generator_args[c->ngenerator_args++] = strdup(lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    } else if (!lua_isnil(L, -1)) {
        luaL_error(L, "input: generator must be a script path or a list");
    }
    lua_pop(L, 1);
    return 0;
}

static int l_output(lua_State *L)
{
    static const char *const allowed[] = {"topic", "print", NULL};
    luaL_checktype(L, 1, LUA_TTABLE);
    mark_pipeline(L, "output");
    check_keys(L, 1, "output", allowed);
    nta_pipeline_conf *c = self(L)->pconf;
    opt_string(L, 1, "output", "topic", c->output_topic, sizeof c->output_topic);
    lua_getfield(L, 1, "print");
    if (!lua_isnil(L, -1)) {
        if (!lua_isboolean(L, -1))
            luaL_error(L, "output: option 'print' must be true or false");
        c->print = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    return 0;
}

static void add_aggs(lua_State *L, nta_window_spec *w, const char *what, nta_agg_kind kind)
{
    const char *k = nta_agg_kind_name(kind);
    const char *names[NTA_WINDOW_MAX_AGGS];
    int n = opt_string_list(L, 1, what, k, names, NTA_WINDOW_MAX_AGGS);
    for (int i = 0; i < n; i++) {
        if (w->naggs == NTA_WINDOW_MAX_AGGS)
            luaL_error(L, "%s: more than %d aggregates", what, NTA_WINDOW_MAX_AGGS);
        w->aggs[w->naggs].kind = kind;
        w->aggs[w->naggs].field = field_or_error(L, what, k, names[i]);
        w->naggs++;
    }
}

/* One value of where.<field>, at the top of the stack: a whole number for a
 * numeric field, a prefix ("10.0.0.0/8") or address for an address field. */
static void filter_value(lua_State *L, const char *what, const char *name, nta_filter *flt)
{
    if (flt->nvalues == NTA_FILTER_MAX_VALUES)
        luaL_error(L, "%s: where.%s lists more than %d values", what, name,
                   NTA_FILTER_MAX_VALUES);
    if (!nta_field_is_numeric(flt->field)) {
        size_t len;
        const char *t = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
        if (t == NULL || nta_prefix_parse(&flt->nets[flt->nvalues], t, len) != 0)
            luaL_error(L, "%s: where.%s takes address prefixes like \"10.0.0.0/8\" or "
                          "\"2001:db8::/32\", or addresses", what, name);
        flt->nvalues++;
        return;
    }
    if (lua_type(L, -1) != LUA_TNUMBER)
        luaL_error(L, "%s: where.%s must be a number or a list of numbers", what, name);
    double d = lua_tonumber(L, -1);
    if (d < 0 || d != floor(d) || d > 1e18)
        luaL_error(L, "%s: where.%s must be whole numbers >= 0", what, name);
    flt->values[flt->nvalues++] = (uint64_t)d;
}

/* The value or list of values at the top of the stack. */
static void filter_values(lua_State *L, const char *what, const char *name, nta_filter *flt)
{
    if (!lua_istable(L, -1)) {
        filter_value(L, what, name, flt);
        return;
    }
    int n = (int)lua_objlen(L, -1);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        filter_value(L, what, name, flt);
        lua_pop(L, 1);
    }
    if (flt->nvalues == 0)
        luaL_error(L, "%s: where.%s lists no value", what, name);
}

/* where = { proto = 6, tcp_flags = 2, src_port = { 53, 123 },
 *           src_ip = { "10.0.0.0/8", "192.168.0.0/16" },
 *           dst_ip = { not_in = { "10.0.0.0/8", "192.168.0.0/16" } } }:
 * a record enters when every listed field has one of its values (numbers,
 * or for addresses prefixes), or with not_in none of them. */
static void add_filters(lua_State *L, nta_window_spec *w, const char *what)
{
    lua_getfield(L, 1, "where");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "%s: where must be a table like { proto = 6, tcp_flags = 2 }", what);
    int t = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "%s: where takes field = value pairs", what);
        const char *name = lua_tostring(L, -2);
        nta_field f = field_or_error(L, what, "where", name);
        if (w->nwhere == NTA_WINDOW_MAX_FILTERS)
            luaL_error(L, "%s: where has more than %d fields", what, NTA_WINDOW_MAX_FILTERS);
        nta_filter *flt = &w->where[w->nwhere++];
        flt->field = f;
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "not_in");
            if (!lua_isnil(L, -1)) {
                flt->negate = 1;
                filter_values(L, what, name, flt);
            }
            lua_pop(L, 1);
            /* Anything beside not_in (or beside the list) is a mistake. */
            int count = 0;
            lua_pushnil(L);
            while (lua_next(L, -2) != 0) {
                count++;
                lua_pop(L, 1);
            }
            if (count != (flt->negate ? 1 : (int)lua_objlen(L, -1)))
                luaL_error(L, "%s: where.%s must be a value, a list of values or "
                              "{ not_in = value or list }", what, name);
        }
        if (!flt->negate)
            filter_values(L, what, name, flt);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    /* Table order is not defined: sort by field, so that the same
     * declaration always gives the same spec and a reload keeps the window. */
    for (int i = 1; i < w->nwhere; i++)
        for (int j = i; j > 0 && w->where[j].field < w->where[j - 1].field; j--) {
            nta_filter swap = w->where[j];
            w->where[j] = w->where[j - 1];
            w->where[j - 1] = swap;
        }
}

/* Pushes option k of the window table if it is a table (returns its stack
 * index), or returns 0 for nil; anything else is an error showing example. */
static int sub_table(lua_State *L, const char *what, const char *k, const char *example)
{
    lua_getfield(L, 1, k);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "%s: %s must be a table like %s", what, k, example);
    return lua_gettop(L);
}

static int whole_number(lua_State *L, int idx, const char *what, const char *k, double dflt,
                        double lo, double hi)
{
    double v = opt_number(L, idx, what, k, dflt);
    if (!(v >= lo && v <= hi) || v != floor(v))
        luaL_error(L, "%s: '%s' must be a whole number from %g to %g", what, k, lo, hi);
    return (int)v;
}

static nta_agg_spec *new_agg(lua_State *L, nta_window_spec *w, const char *what)
{
    if (w->naggs == NTA_WINDOW_MAX_AGGS)
        luaL_error(L, "%s: more than %d aggregates", what, NTA_WINDOW_MAX_AGGS);
    nta_agg_spec *a = &w->aggs[w->naggs++];
    memset(a, 0, sizeof *a);
    return a;
}

/* topk = { field = "src_ip", by = "bytes", k = 10, capacity = 256 }: the k
 * heaviest values of field by bytes (default), packets or count. */
static void add_topk(lua_State *L, nta_window_spec *w, const char *what)
{
    static const char *const allowed[] = {"field", "by", "k", "capacity", NULL};
    int t = sub_table(L, what, "topk", "{ field = \"src_ip\", by = \"bytes\", k = 10 }");
    if (t == 0)
        return;
    char sub[NTA_WINDOW_NAME_MAX + 32];
    snprintf(sub, sizeof sub, "%s: topk", what);
    check_keys(L, t, sub, allowed);
    char field[32] = "", by[32] = "bytes";
    opt_string(L, t, sub, "field", field, sizeof field);
    if (field[0] == '\0')
        luaL_error(L, "%s: 'field' is required", sub);
    opt_string(L, t, sub, "by", by, sizeof by);
    nta_agg_spec *a = new_agg(L, w, what);
    a->kind = NTA_AGG_TOPK;
    a->field = field_or_error(L, sub, "field", field);
    if (strcmp(by, "count") == 0)
        a->by = NTA_F_NONE;
    else if (strcmp(by, "bytes") == 0 || strcmp(by, "packets") == 0)
        a->by = nta_field_by_name(by);
    else
        luaL_error(L, "%s: 'by' must be \"bytes\", \"packets\" or \"count\"", sub);
    a->k = whole_number(L, t, sub, "k", 10, 1, NTA_TOPK_MAX_K);
    a->capacity = whole_number(L, t, sub, "capacity", 0, 0, NTA_TOPK_MAX_CAPACITY);
    lua_pop(L, 1);
}

/* quantiles = { field = "bytes", q = { 0.5, 0.95, 0.99 } } (q defaults to
 * those three). */
static void add_quantiles(lua_State *L, nta_window_spec *w, const char *what)
{
    static const char *const allowed[] = {"field", "q", NULL};
    int t = sub_table(L, what, "quantiles", "{ field = \"bytes\", q = { 0.5, 0.95, 0.99 } }");
    if (t == 0)
        return;
    char sub[NTA_WINDOW_NAME_MAX + 32];
    snprintf(sub, sizeof sub, "%s: quantiles", what);
    check_keys(L, t, sub, allowed);
    char field[32] = "";
    opt_string(L, t, sub, "field", field, sizeof field);
    if (field[0] == '\0')
        luaL_error(L, "%s: 'field' is required", sub);
    nta_agg_spec *a = new_agg(L, w, what);
    a->kind = NTA_AGG_QUANTILE;
    a->field = field_or_error(L, sub, "field", field);
    lua_getfield(L, t, "q");
    if (lua_isnil(L, -1)) {
        static const double dflt[] = {0.5, 0.95, 0.99};
        a->nq = 3;
        memcpy(a->q, dflt, sizeof dflt);
    } else if (lua_type(L, -1) == LUA_TNUMBER) {
        a->nq = 1;
        a->q[0] = lua_tonumber(L, -1);
    } else if (lua_istable(L, -1)) {
        int n = (int)lua_objlen(L, -1);
        if (n < 1 || n > NTA_AGG_MAX_QUANTILES)
            luaL_error(L, "%s: q lists 1 to %d quantiles", sub, NTA_AGG_MAX_QUANTILES);
        for (int i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, i);
            if (lua_type(L, -1) != LUA_TNUMBER)
                luaL_error(L, "%s: q must list numbers like 0.99", sub);
            a->q[a->nq++] = lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
    } else {
        luaL_error(L, "%s: q must be a number or a list like { 0.5, 0.99 }", sub);
    }
    lua_pop(L, 2);
}

/* window "name" { ... }: window(name) returns the function that takes the table. */
static int l_window_body(lua_State *L)
{
    static const char *const allowed[] = {"key", "size", "slide", "count", "sum", "min", "max",
                                          "mean", "distinct", "max_keys", "where", "topk",
                                          "quantiles", "publish", NULL};
    nta_script *s = self(L);
    const char *name = lua_tostring(L, lua_upvalueindex(2));
    char what[NTA_WINDOW_NAME_MAX + 16];
    snprintf(what, sizeof what, "window '%s'", name);
    luaL_checktype(L, 1, LUA_TTABLE);
    check_keys(L, 1, what, allowed);
    nta_pipeline_conf *c = s->pconf;
    for (int i = 0; i < c->nwindows; i++)
        if (strcmp(c->windows[i].name, name) == 0)
            luaL_error(L, "%s: declared twice", what);
    if (c->nwindows == NTA_MAX_WINDOWS)
        luaL_error(L, "%s: more than %d windows", what, NTA_MAX_WINDOWS);

    nta_window_spec w;
    memset(&w, 0, sizeof w);
    snprintf(w.name, sizeof w.name, "%s", name);
    w.size_ms = opt_duration(L, 1, what, "size", -1);
    if (w.size_ms <= 0)
        luaL_error(L, "%s: 'size' is required (like size = \"60s\")", what);
    w.slide_ms = opt_duration(L, 1, what, "slide", w.size_ms);
    double mk = opt_number(L, 1, what, "max_keys", 100000);
    if (mk < 1 || mk > 1e9 || mk != floor(mk))
        luaL_error(L, "%s: max_keys must be a whole number from 1 to 1e9", what);
    w.max_keys = (size_t)mk;

    const char *keys[NTA_WINDOW_MAX_KEYS + 1];
    w.nkeys = opt_string_list(L, 1, what, "key", keys, NTA_WINDOW_MAX_KEYS);
    for (int i = 0; i < w.nkeys; i++)
        w.key[i] = field_or_error(L, what, "key", keys[i]);

    /* count is always computed; "count = true" is accepted for readability. */
    lua_getfield(L, 1, "count");
    if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
        luaL_error(L, "%s: option 'count' must be true or false", what);
    lua_pop(L, 1);
    /* The kinds that take a field name or a list of them. */
    for (int k = NTA_AGG_SUM; k <= NTA_AGG_DISTINCT; k++)
        add_aggs(L, &w, what, (nta_agg_kind)k);
    add_topk(L, &w, what);
    add_quantiles(L, &w, what);

    add_filters(L, &w, what);
    lua_getfield(L, 1, "publish");
    if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
        luaL_error(L, "%s: option 'publish' must be true or false", what);
    w.unpublished = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
    lua_pop(L, 1);

    char err[256];
    if (nta_window_spec_check(&w, err, sizeof err) != 0)
        luaL_error(L, "%s: %s", what, err);
    c->windows[c->nwindows++] = w;
    return 0;
}

static int l_window(lua_State *L)
{
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    if (len == 0 || len >= NTA_WINDOW_NAME_MAX || strchr(name, '|'))
        luaL_error(L, "window: a name of 1 to %d characters without '|' is required",
                   NTA_WINDOW_NAME_MAX - 1);
    mark_pipeline(L, "window");
    lua_pushlightuserdata(L, self(L));
    lua_pushvalue(L, 1);
    lua_pushcclosure(L, l_window_body, 2);
    return 1;
}

/* ---- generator declarations ---- */

static int l_generator(lua_State *L)
{
    static const char *const allowed[] = {"rate", "count", "start", "format", "topic", NULL};
    const char *what = "generator";
    nta_script *s = self(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    if (s->declared_pipeline)
        luaL_error(L, "generator: a script is either a pipeline or a generator, not both");
    if (s->declared_generator)
        luaL_error(L, "generator: declared twice");
    s->declared_generator = 1;
    check_keys(L, 1, what, allowed);
    nta_gen_conf *g = s->gconf;
    g->rate = opt_number(L, 1, what, "rate", g->rate);
    if (!(g->rate > 0 && g->rate <= 1e8))
        luaL_error(L, "generator: rate must be > 0 and <= 1e8 records/s");
    double count = opt_number(L, 1, what, "count", -1);
    if (count != -1 && (count < 0 || count != floor(count)))
        luaL_error(L, "generator: count must be a whole number >= 0");
    g->count = (int64_t)count;
    double start = opt_number(L, 1, what, "start", NAN);
    if (!isnan(start))
        g->start_ms = (int64_t)start;
    opt_string(L, 1, what, "topic", g->topic, sizeof g->topic);
    char fmt[16] = "json";
    opt_string(L, 1, what, "format", fmt, sizeof fmt);
    if (strcmp(fmt, "json") == 0)
        g->format = NTA_GEN_JSON;
    else if (strcmp(fmt, "csv") == 0)
        g->format = NTA_GEN_CSV;
    else if (strcmp(fmt, "goflow2") == 0)
        g->format = NTA_GEN_GOFLOW2;
    else
        luaL_error(L, "generator: unknown format '%s' (json, csv, goflow2)", fmt);
    return 0;
}

/* emit(ts, src, dst, src_port, dst_port, proto, bytes, packets, tcp_flags):
 * addresses as IPv4 host-order integers. Called per record, so it takes
 * plain numbers rather than a table. */
static int l_emit(lua_State *L)
{
    nta_script *s = self(L);
    if (s->emit_fn == NULL)
        return luaL_error(L, "emit: only valid inside generate()");
    nta_record r;
    memset(&r, 0, sizeof r);
    r.ts_ms = (int64_t)luaL_checknumber(L, 1);
    nta_addr_from_v4(&r.src, (uint32_t)luaL_checknumber(L, 2));
    nta_addr_from_v4(&r.dst, (uint32_t)luaL_checknumber(L, 3));
    r.src_port = (uint16_t)luaL_checknumber(L, 4);
    r.dst_port = (uint16_t)luaL_checknumber(L, 5);
    r.proto = (uint8_t)luaL_checknumber(L, 6);
    r.bytes = (uint64_t)luaL_checknumber(L, 7);
    r.packets = (uint64_t)luaL_checknumber(L, 8);
    r.tcp_flags = (uint8_t)luaL_optnumber(L, 9, 0);
    r.present = 0xffff;
    s->emit_fn(s->emit_ctx, &r);
    s->emitted++;
    return 0;
}

/* ---- state and protected calls ---- */

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

/* Calls the function below nargs arguments on the stack under the traceback
 * handler. Returns 0, or -1 with the message in err. Stack: pops function and
 * arguments. */
static int pcall(nta_script *s, int nargs, char *err, size_t errlen)
{
    lua_State *L = s->L;
    int fn = lua_gettop(L) - nargs;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->traceback_ref);
    lua_insert(L, fn);
    int rc = lua_pcall(L, nargs, 0, fn);
    if (rc != 0) {
        const char *m = lua_tostring(L, -1);
        snprintf(err, errlen, "%s", m ? m : (rc == LUA_ERRMEM ? "out of memory" : "error"));
        lua_pop(L, 1);
    }
    lua_remove(L, fn);
    return rc == 0 ? 0 : -1;
}

static void register_fn(nta_script *s, const char *name, lua_CFunction f)
{
    lua_pushlightuserdata(s->L, s);
    lua_pushcclosure(s->L, f, 1);
    lua_setglobal(s->L, name);
}

/* arg[1..n] = argv, and arg.key = value for each key=value. */
static void push_args(lua_State *L, int argc, char *const *argv)
{
    lua_createtable(L, argc, 4);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i + 1);
        const char *eq = strchr(argv[i], '=');
        if (eq && eq != argv[i]) {
            lua_pushlstring(L, argv[i], (size_t)(eq - argv[i]));
            lua_pushstring(L, eq + 1);
            lua_rawset(L, -3);
        }
    }
    lua_setglobal(L, "arg");
}

/* Lets `require` find modules next to the script. */
static void set_module_path(lua_State *L, const char *dir)
{
    lua_getglobal(L, "package");
    lua_pushstring(L, dir);
    lua_pushliteral(L, "/?.lua;");
    lua_getfield(L, -3, "path");
    lua_concat(L, 3);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
}

static int ref_global_fn(lua_State *L, const char *name)
{
    lua_getglobal(L, name);
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 1);
        return LUA_NOREF;
    }
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

nta_script *nta_script_load(const char *path, int argc, char *const *argv, nta_script_kind *kind,
                            nta_pipeline_conf *pconf, nta_gen_conf *gconf, char *err,
                            size_t errlen)
{
    nta_script *s = calloc(1, sizeof *s);
    if (s == NULL || (s->L = luaL_newstate()) == NULL) {
        snprintf(err, errlen, "%s: cannot create a Lua state (out of memory)", path);
        free(s);
        return NULL;
    }
    lua_State *L = s->L;
    s->pconf = pconf;
    s->gconf = gconf;
    s->on_window_ref = s->generate_ref = LUA_NOREF;
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_cjson);
    lua_setfield(L, -2, "cjson");
    lua_pop(L, 2);
    const char *slash = strrchr(path, '/');
    snprintf(s->dir, sizeof s->dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    set_module_path(L, s->dir);
    lua_pushcfunction(L, traceback);
    s->traceback_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    register_fn(s, "input", l_input);
    register_fn(s, "output", l_output);
    register_fn(s, "window", l_window);
    register_fn(s, "generator", l_generator);
    register_fn(s, "rule", l_pipeline_rule);
    register_fn(s, "rules", l_rules);
    register_fn(s, "emit", l_emit);
    push_args(L, argc, argv);

    if (luaL_loadfile(L, path) != 0) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1));
        goto fail;
    }
    if (pcall(s, 0, err, errlen) != 0)
        goto fail;

    if (s->declared_generator) {
        s->kind = NTA_SCRIPT_GENERATOR;
        s->generate_ref = ref_global_fn(L, "generate");
        if (s->generate_ref == LUA_NOREF) {
            snprintf(err, errlen, "%s: a generator script must define generate(t0, step, n)", path);
            goto fail;
        }
    } else if (s->declared_pipeline) {
        s->kind = NTA_SCRIPT_PIPELINE;
        if (pconf->nwindows == 0) {
            snprintf(err, errlen, "%s: the pipeline declares no window", path);
            goto fail;
        }
        s->on_window_ref = ref_global_fn(L, "on_window");
        s->has_on_window = s->on_window_ref != LUA_NOREF;
    } else {
        snprintf(err, errlen,
                 "%s: declares neither a pipeline (input/output/window) nor a generator", path);
        goto fail;
    }
    *kind = s->kind;
    return s;
fail:
    nta_script_destroy(s);
    return NULL;
}

void nta_script_destroy(nta_script *s)
{
    if (s == NULL)
        return;
    lua_close(s->L);
    free(s);
}

int nta_script_has_on_window(const nta_script *s) { return s->has_on_window; }

static void set_str(lua_State *L, const char *k, const char *v)
{
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

static void set_num(lua_State *L, const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void push_result(lua_State *L, const nta_result *r);

int nta_script_on_window(nta_script *s, const nta_result *r, char *err, size_t errlen)
{
    lua_rawgeti(s->L, LUA_REGISTRYINDEX, s->on_window_ref);
    push_result(s->L, r);
    return pcall(s, 1, err, errlen);
}

long nta_script_generate(nta_script *s, double t0_ms, double step_ms, long n, nta_gen_emit_fn fn,
                         void *ctx, char *err, size_t errlen)
{
    lua_State *L = s->L;
    s->emit_fn = fn;
    s->emit_ctx = ctx;
    s->emitted = 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->generate_ref);
    lua_pushnumber(L, t0_ms);
    lua_pushnumber(L, step_ms);
    lua_pushnumber(L, (double)n);
    int rc = pcall(s, 3, err, errlen);
    s->emit_fn = NULL;
    return rc == 0 ? s->emitted : -1;
}

/* ---- rules: declarations shared by pipeline scripts and rule files ---- */

static const char *const severity_names[] = {"info", "warning", "critical"};

const char *nta_severity_name(nta_severity s)
{
    return (unsigned)s <= NTA_SEV_CRITICAL ? severity_names[s] : "";
}

void nta_rule_def_init(nta_rule_def *d)
{
    memset(d, 0, sizeof *d);
    d->severity = NTA_SEV_WARNING;
    d->fn_ref = LUA_NOREF;
    d->raise_after = 1;
    d->clear_after = 2;
    d->cooldown_ms = 60000;
    d->alpha = 0.1;
    d->warmup = 10;
}

static int opt_count(lua_State *L, const char *what, const char *k, int dflt)
{
    double v = opt_number(L, 1, what, k, dflt);
    if (v < 1 || v > 1000 || v != floor(v))
        luaL_error(L, "%s: %s must be a whole number from 1 to 1000", what, k);
    return (int)v;
}

/* Reads the rule table at index 1 into d. allow_fn: whether `when` may be a
 * function (only in sandboxed rule files); its reference is taken in L. */
static void parse_rule(lua_State *L, const char *name, nta_rule_def *d, int allow_fn)
{
    static const char *const allowed[] = {"window", "severity", "value", "above", "below", "when",
                                          "raise_after", "clear_after", "cooldown", "message",
                                          "topic", "baseline", "each", "min_total", NULL};
    char what[NTA_RULE_NAME_MAX + 16];
    snprintf(what, sizeof what, "rule '%s'", name);
    luaL_checktype(L, 1, LUA_TTABLE);
    check_keys(L, 1, what, allowed);
    nta_rule_def_init(d);
    snprintf(d->name, sizeof d->name, "%s", name);
    lua_Debug ar;
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar))
        snprintf(d->where, sizeof d->where, "%s:%d", ar.short_src, ar.currentline);

    opt_string(L, 1, what, "window", d->window, sizeof d->window);
    if (d->window[0] == '\0')
        luaL_error(L, "%s: 'window' is required (the name of the window it watches)", what);
    char sev[16] = "warning";
    opt_string(L, 1, what, "severity", sev, sizeof sev);
    int found = 0;
    for (int i = 0; i <= NTA_SEV_CRITICAL; i++)
        if (strcmp(sev, severity_names[i]) == 0) {
            d->severity = (nta_severity)i;
            found = 1;
        }
    if (!found)
        luaL_error(L, "%s: severity must be info, warning or critical, not '%s'", what, sev);
    opt_string(L, 1, what, "value", d->value, sizeof d->value);
    opt_string(L, 1, what, "message", d->message, sizeof d->message);
    opt_string(L, 1, what, "topic", d->topic, sizeof d->topic);
    opt_string(L, 1, what, "each", d->each, sizeof d->each);
    d->min_total = opt_number(L, 1, what, "min_total", 0);
    d->raise_after = opt_count(L, what, "raise_after", d->raise_after);
    d->clear_after = opt_count(L, what, "clear_after", d->clear_after);
    d->cooldown_ms = opt_duration(L, 1, what, "cooldown", d->cooldown_ms);

    lua_getfield(L, 1, "above");
    d->has_above = !lua_isnil(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, 1, "below");
    d->has_below = !lua_isnil(L, -1);
    lua_pop(L, 1);
    d->above = opt_number(L, 1, what, "above", 0);
    d->below = opt_number(L, 1, what, "below", 0);

    lua_getfield(L, 1, "when");
    if (lua_isfunction(L, -1)) {
        if (!allow_fn)
            luaL_error(L, "%s: a function condition belongs in a rule file, where it runs "
                          "sandboxed; here use value = \"field\" with above/below", what);
        d->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    } else {
        if (!lua_isnil(L, -1))
            luaL_error(L, "%s: 'when' must be a function", what);
        lua_pop(L, 1);
    }
    if (d->fn_ref == LUA_NOREF && !d->has_above && !d->has_below)
        luaL_error(L, "%s: give a condition: when = function(w) ... end, or value with "
                      "above and/or below", what);
    if (d->fn_ref == LUA_NOREF && d->value[0] == '\0')
        luaL_error(L, "%s: a threshold needs value = \"<result field>\"", what);
    if (d->each[0] && strcmp(d->value, "share") != 0 && strcmp(d->value, "value") != 0)
        luaL_error(L, "%s: each = \"topk_...\" takes a threshold on value = \"share\" or "
                      "\"value\"", what);

    lua_getfield(L, 1, "baseline");
    if (!lua_isnil(L, -1)) {
        static const char *const ballowed[] = {"field", "alpha", "warmup", NULL};
        if (!lua_istable(L, -1))
            luaL_error(L, "%s: baseline = { field = \"sum_bytes\", alpha = 0.1, warmup = 10 }",
                       what);
        int t = lua_gettop(L);
        char bwhat[NTA_RULE_NAME_MAX + 32];
        snprintf(bwhat, sizeof bwhat, "%s baseline", what);
        check_keys(L, t, bwhat, ballowed);
        opt_string(L, t, bwhat, "field", d->baseline, sizeof d->baseline);
        if (d->baseline[0] == '\0')
            luaL_error(L, "%s: baseline needs a field", what);
        d->alpha = opt_number(L, t, bwhat, "alpha", d->alpha);
        if (!(d->alpha > 0 && d->alpha <= 1))
            luaL_error(L, "%s: baseline alpha must be in (0, 1]", what);
        double w = opt_number(L, t, bwhat, "warmup", d->warmup);
        if (w < 0 || w > 1e6 || w != floor(w))
            luaL_error(L, "%s: baseline warmup must be a whole number >= 0", what);
        d->warmup = (int)w;
    }
    lua_pop(L, 1);
    if ((strcmp(d->value, "z") == 0 || strcmp(d->value, "ratio") == 0) && !d->baseline[0])
        luaL_error(L, "%s: value '%s' needs a baseline", what, d->value);
}

/* rule "name" { ... } in a pipeline script: threshold rules only. */
static int l_pipeline_rule_body(lua_State *L)
{
    nta_script *s = self(L);
    nta_pipeline_conf *c = s->pconf;
    const char *name = lua_tostring(L, lua_upvalueindex(2));
    if (c->ninline_rules == NTA_MAX_RULES)
        luaL_error(L, "rule '%s': more than %d rules", name, NTA_MAX_RULES);
    for (int i = 0; i < c->ninline_rules; i++)
        if (strcmp(c->inline_rules[i].name, name) == 0)
            luaL_error(L, "rule '%s': declared twice", name);
    nta_rule_def d;
    parse_rule(L, name, &d, 0);
    nta_rule_def *nr = realloc(c->inline_rules, sizeof d * (size_t)(c->ninline_rules + 1));
    if (nr == NULL)
        luaL_error(L, "out of memory");
    c->inline_rules = nr;
    c->inline_rules[c->ninline_rules++] = d;
    return 0;
}

static int check_rule_name(lua_State *L)
{
    size_t len;
    luaL_checklstring(L, 1, &len);
    if (len == 0 || len >= NTA_RULE_NAME_MAX)
        luaL_error(L, "rule: a name of 1 to %d characters is required", NTA_RULE_NAME_MAX - 1);
    return 1;
}

static int l_pipeline_rule(lua_State *L)
{
    check_rule_name(L);
    mark_pipeline(L, "rule");
    lua_pushlightuserdata(L, self(L));
    lua_pushvalue(L, 1);
    lua_pushcclosure(L, l_pipeline_rule_body, 2);
    return 1;
}

/* rules "dir" or rules { "a.lua", "dir", ... }: paths relative to the script. */
static int l_rules(lua_State *L)
{
    nta_script *s = self(L);
    nta_pipeline_conf *c = s->pconf;
    mark_pipeline(L, "rules");
    int n = lua_istable(L, 1) ? (int)lua_objlen(L, 1) : 1;
    for (int i = 1; i <= n; i++) {
        if (lua_istable(L, 1))
            lua_rawgeti(L, 1, i);
        else
            lua_pushvalue(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "rules: expects a path or a list of paths");
        if (c->nrule_paths == NTA_MAX_RULE_PATHS)
            luaL_error(L, "rules: more than %d paths", NTA_MAX_RULE_PATHS);
        char path[NTA_PATH_MAX];
        const char *rel = lua_tostring(L, -1);
        int len = rel[0] == '/' ? snprintf(path, sizeof path, "%s", rel)
                                : snprintf(path, sizeof path, "%s/%s", s->dir, rel);
        if (len >= (int)sizeof path)
            luaL_error(L, "rules: path too long");
        c->rule_paths[c->nrule_paths++] = strdup(path);
        lua_pop(L, 1);
    }
    return 0;
}

/* ---- the rule set: rule files in a sandboxed Lua state ----
 *
 * Rule code is untrusted in the sense that a typo must not take the pipeline
 * down: it runs with base, string, table, math and bit only (no io, os,
 * package, debug, ffi, load*), under a memory cap (the allocator refuses past
 * it), and with a time budget per call. LuaJIT does not run count hooks inside
 * compiled traces, so the JIT is off for this state: the interpreter checks
 * the budget every 1000 instructions. Conditions are short; the cost of
 * interpreting them is measured in bench/. */

struct nta_ruleset {
    lua_State *L;
    size_t mem_used, mem_limit;
    int64_t deadline_ns; /* monotonic; 0 = no call in progress */
    int timed_out;
    nta_rule_def *defs;
    int ndefs;
    int traceback_ref;
};

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    nta_ruleset *rs = ud;
    if (nsize == 0) {
        free(ptr);
        rs->mem_used -= osize;
        return NULL;
    }
    /* osize is the old block's size only when ptr is set. */
    size_t old = ptr ? osize : 0;
    if (nsize > old && rs->mem_used + (nsize - old) > rs->mem_limit)
        return NULL;
    void *np = realloc(ptr, nsize);
    if (np)
        rs->mem_used = rs->mem_used - old + nsize;
    return np;
}

static nta_ruleset *ruleset_of(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "nta.ruleset");
    nta_ruleset *rs = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return rs;
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    nta_ruleset *rs = ruleset_of(L);
    if (rs->deadline_ns && nta_mono_ns() > rs->deadline_ns) {
        rs->timed_out = 1;
        luaL_error(L, "time budget exceeded");
    }
}

static int l_ruleset_rule_body(lua_State *L)
{
    nta_ruleset *rs = lua_touserdata(L, lua_upvalueindex(1));
    const char *name = lua_tostring(L, lua_upvalueindex(2));
    if (rs->ndefs == NTA_MAX_RULES)
        luaL_error(L, "rule '%s': more than %d rules", name, NTA_MAX_RULES);
    for (int i = 0; i < rs->ndefs; i++)
        if (strcmp(rs->defs[i].name, name) == 0)
            luaL_error(L, "rule '%s': declared twice (first at %s)", name, rs->defs[i].where);
    nta_rule_def d;
    parse_rule(L, name, &d, 1);
    nta_rule_def *nd = realloc(rs->defs, sizeof d * (size_t)(rs->ndefs + 1));
    if (nd == NULL)
        luaL_error(L, "out of memory");
    rs->defs = nd;
    rs->defs[rs->ndefs++] = d;
    return 0;
}

static int l_ruleset_rule(lua_State *L)
{
    check_rule_name(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_pushcclosure(L, l_ruleset_rule_body, 2);
    return 1;
}

/* print() in a rule goes to stderr with a prefix: stdout carries results. */
static int l_rule_print(lua_State *L)
{
    int n = lua_gettop(L);
    fputs("nta: rule: ", stderr);
    for (int i = 1; i <= n; i++) {
        const char *v = lua_tostring(L, i);
        fputs(v ? v : luaL_typename(L, i), stderr);
        if (i < n)
            fputc('\t', stderr);
    }
    fputc('\n', stderr);
    return 0;
}

static void open_sandbox(lua_State *L)
{
    static const lua_CFunction libs[] = {luaopen_base, luaopen_string, luaopen_table,
                                         luaopen_math, luaopen_bit};
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
        lua_pushcfunction(L, libs[i]);
        lua_call(L, 0, 0);
    }
    /* Loading code, reaching the environment of other functions, and
     * collectgarbage's tuning knobs would each be a way out of the sandbox. */
    static const char *const removed[] = {"dofile", "loadfile", "load", "loadstring", "require",
                                          "module", "getfenv", "setfenv", "newproxy",
                                          "collectgarbage", "gcinfo", NULL};
    for (const char *const *r = removed; *r; r++) {
        lua_pushnil(L);
        lua_setglobal(L, *r);
    }
    lua_getglobal(L, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_rule_print);
    lua_setglobal(L, "print");
}

/* pcall with the traceback handler and the time budget. */
static int ruleset_pcall(nta_ruleset *rs, int nargs, int nres, int64_t budget_ms, char *err,
                         size_t errlen)
{
    lua_State *L = rs->L;
    int fn = lua_gettop(L) - nargs;
    lua_rawgeti(L, LUA_REGISTRYINDEX, rs->traceback_ref);
    lua_insert(L, fn);
    rs->timed_out = 0;
    rs->deadline_ns = nta_mono_ns() + budget_ms * 1000000;
    int rc = lua_pcall(L, nargs, nres, fn);
    rs->deadline_ns = 0;
    if (rc != 0) {
        const char *m = lua_tostring(L, -1);
        if (rc == LUA_ERRMEM)
            snprintf(err, errlen, "memory limit of %zu bytes reached", rs->mem_limit);
        else
            snprintf(err, errlen, "%s", m ? m : "error");
        lua_pop(L, 1);
    }
    lua_remove(L, fn);
    if (rc != 0)
        return rs->timed_out ? -2 : -1;
    return 0;
}

void nta_ruleset_destroy(nta_ruleset *rs)
{
    if (rs == NULL)
        return;
    if (rs->L)
        lua_close(rs->L);
    free(rs->defs);
    free(rs);
}

nta_ruleset *nta_ruleset_load(const char *const *files, int nfiles, const nta_rule_limits *lim,
                              char *err, size_t errlen)
{
    nta_ruleset *rs = calloc(1, sizeof *rs);
    if (rs == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    rs->mem_limit = lim->memory_bytes;
    rs->L = lua_newstate(capped_alloc, rs);
    if (rs->L == NULL) {
        snprintf(err, errlen, "cannot create the rules' Lua state");
        free(rs);
        return NULL;
    }
    lua_State *L = rs->L;
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    lua_pushlightuserdata(L, rs);
    lua_setfield(L, LUA_REGISTRYINDEX, "nta.ruleset");
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1000);
    open_sandbox(L);
    lua_pushcfunction(L, traceback);
    rs->traceback_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushlightuserdata(L, rs);
    lua_pushcclosure(L, l_ruleset_rule, 1);
    lua_setglobal(L, "rule");

    for (int i = 0; i < nfiles; i++) {
        /* Text only: precompiled bytecode can break the VM's safety. */
        if (luaL_loadfilex(L, files[i], "t") != 0) {
            snprintf(err, errlen, "%s", lua_tostring(L, -1));
            nta_ruleset_destroy(rs);
            return NULL;
        }
        char e[2048];
        int rc = ruleset_pcall(rs, 0, 0, lim->budget_ms, e, sizeof e);
        if (rc != 0) {
            snprintf(err, errlen, "%s%s", rc == -2 ? "top level of a rule file: " : "", e);
            nta_ruleset_destroy(rs);
            return NULL;
        }
    }
    return rs;
}

int nta_ruleset_count(const nta_ruleset *rs) { return rs ? rs->ndefs : 0; }
const nta_rule_def *nta_ruleset_rule(const nta_ruleset *rs, int i) { return &rs->defs[i]; }

/* Pushes the table on_window and rule conditions receive for a result. */
static void push_result(lua_State *L, const nta_result *r)
{
    const nta_window_spec *sp = r->spec;
    lua_createtable(L, 0, 6 + sp->naggs);
    set_str(L, "window", sp->name);
    set_num(L, "start", (double)r->start_ms);
    set_num(L, "end", (double)r->end_ms);
    set_num(L, "count", (double)r->count);
    lua_createtable(L, 0, sp->nkeys);
    for (int i = 0; i < sp->nkeys; i++)
        set_str(L, nta_field_name(sp->key[i]), r->key_text[i]);
    lua_setfield(L, -2, "key");
    for (int i = 0; i < sp->naggs; i++) {
        const nta_agg_spec *a = &sp->aggs[i];
        char name[64];
        nta_agg_result_name(a, 0, name, sizeof name);
        if (a->kind == NTA_AGG_QUANTILE) {
            for (int q = 0; q < a->nq; q++) {
                nta_agg_result_name(a, q, name, sizeof name);
                set_num(L, name, r->values[i].qs ? nta_qsketch_quantile(r->values[i].qs, a->q[q])
                                                 : 0.0);
            }
        } else if (a->kind == NTA_AGG_TOPK) {
            /* { {key = "10.0.0.1", value = 123, share = 0.12, error = 5}, ... } */
            nta_topk_item items[NTA_TOPK_MAX_K];
            const nta_topk *t = r->values[i].topk;
            size_t n = t ? nta_topk_items(t, items, (size_t)a->k) : 0;
            double total = t ? (double)nta_topk_total(t) : 0;
            lua_createtable(L, (int)n, 0);
            for (size_t k = 0; k < n; k++) {
                char text[NTA_FIELD_TEXT_MAX];
                nta_agg_item_text(a->field, &items[k], text);
                lua_createtable(L, 0, 4);
                set_str(L, "key", text);
                set_num(L, "value", (double)items[k].value);
                set_num(L, "share", total > 0 ? (double)items[k].value / total : 0);
                set_num(L, "error", (double)items[k].error);
                lua_rawseti(L, -2, (int)k + 1);
            }
            lua_setfield(L, -2, name);
        } else {
            set_num(L, name, a->kind == NTA_AGG_MEAN ? r->values[i].d : (double)r->values[i].u);
        }
    }
}

int nta_ruleset_eval(nta_ruleset *rs, const nta_rule_def *d, const nta_result *r,
                     const nta_baseline_view *b, int64_t budget_ms, double *value, char *err,
                     size_t errlen)
{
    lua_State *L = rs->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, d->fn_ref);
    push_result(L, r);
    if (b->present) {
        lua_createtable(L, 0, 5);
        set_num(L, "mean", b->mean);
        set_num(L, "std", b->std);
        set_num(L, "z", b->z);
        set_num(L, "ratio", b->ratio);
        set_num(L, "n", (double)b->n);
        lua_setfield(L, -2, "baseline");
    }
    int rc = ruleset_pcall(rs, 1, 2, budget_ms, err, errlen);
    if (rc != 0)
        return rc;
    /* when(w) returns a truth value and, optionally, the value to report. */
    int hit = lua_toboolean(L, -2);
    if (lua_type(L, -1) == LUA_TNUMBER)
        *value = lua_tonumber(L, -1);
    lua_pop(L, 2);
    return hit;
}
