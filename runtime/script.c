#include "script.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
}

void nta_pipeline_conf_free(nta_pipeline_conf *c)
{
    for (int i = 0; i < c->ncsv_columns; i++)
        free(c->csv_columns[i]);
    for (int i = 0; i < c->ngenerator_args; i++)
        free(c->generator_args[i]);
    c->ncsv_columns = c->ngenerator_args = 0;
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

static uint64_t filter_value(lua_State *L, const char *what, const char *field)
{
    if (lua_type(L, -1) != LUA_TNUMBER)
        luaL_error(L, "%s: where.%s must be a number or a list of numbers", what, field);
    double d = lua_tonumber(L, -1);
    if (d < 0 || d != floor(d) || d > 1e18)
        luaL_error(L, "%s: where.%s must be whole numbers >= 0", what, field);
    return (uint64_t)d;
}

/* where = { proto = 6, tcp_flags = 2, src_port = { 53, 123 } }: equality on
 * numeric fields, a list meaning any of its values. */
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
        if (!nta_field_is_numeric(f))
            luaL_error(L, "%s: where.%s: only numeric fields can be filtered", what, name);
        if (w->nwhere == NTA_WINDOW_MAX_FILTERS)
            luaL_error(L, "%s: where has more than %d fields", what, NTA_WINDOW_MAX_FILTERS);
        nta_filter *flt = &w->where[w->nwhere++];
        flt->field = f;
        if (lua_istable(L, -1)) {
            int n = (int)lua_objlen(L, -1);
            if (n < 1 || n > NTA_FILTER_MAX_VALUES)
                luaL_error(L, "%s: where.%s lists 1 to %d values", what, name,
                           NTA_FILTER_MAX_VALUES);
            for (int i = 1; i <= n; i++) {
                lua_rawgeti(L, -1, i);
                flt->values[flt->nvalues++] = filter_value(L, what, name);
                lua_pop(L, 1);
            }
        } else {
            flt->values[flt->nvalues++] = filter_value(L, what, name);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
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
                                          "quantiles", NULL};
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

int nta_script_on_window(nta_script *s, const nta_result *r, char *err, size_t errlen)
{
    lua_State *L = s->L;
    const nta_window_spec *sp = r->spec;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->on_window_ref);
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
        char name[48];
        snprintf(name, sizeof name, "%s_%s", nta_agg_kind_name(sp->aggs[i].kind),
                 nta_field_name(sp->aggs[i].field));
        set_num(L, name,
                sp->aggs[i].kind == NTA_AGG_MEAN ? r->values[i].d : (double)r->values[i].u);
    }
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
