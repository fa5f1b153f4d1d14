/* The Lua host. This is the only module that includes lua.h: everything a
 * script declares comes out as the C structs of conf.h, and the hooks a script
 * defines are called through the C-typed functions below.
 *
 * Two kinds of script:
 *  - a pipeline script declares input { }, output { }, window "name" { } and
 *    may define on_window(w), called once per window result;
 *  - a generator script declares generator { } and defines
 *    generate(t0, step, n), which calls emit(...) n times.
 * The kind is told by which declarations the script's top level makes. */
#ifndef NTA_SCRIPT_H
#define NTA_SCRIPT_H

#include <stddef.h>

#include "conf.h"
#include "record.h"
#include "rule.h"
#include "window.h"

typedef enum nta_script_kind {
    NTA_SCRIPT_PIPELINE,
    NTA_SCRIPT_GENERATOR,
} nta_script_kind;

typedef struct nta_script nta_script;

/* Loads and runs the top level of the script at path with the given
 * arguments (exposed as the global table `arg`: arg[1..n] positional,
 * arg.key for each key=value). On success fills *kind and the matching conf
 * (the other is left untouched) and returns the script. On failure returns
 * NULL with "file:line: message" in err. */
nta_script *nta_script_load(const char *path, int argc, char *const *argv, nta_script_kind *kind,
                            nta_pipeline_conf *pconf, nta_gen_conf *gconf, char *err,
                            size_t errlen);
void nta_script_destroy(nta_script *s);

/* Whether the pipeline script defines on_window; probed once at load so a
 * script without it costs nothing per result. */
int nta_script_has_on_window(const nta_script *s);

/* Calls on_window(w) with a table mirroring the JSON result. Returns 0, or
 * -1 with the error and traceback in err (the pipeline counts it and goes on). */
int nta_script_on_window(nta_script *s, const nta_result *r, char *err, size_t errlen);

/* Receives each record a generator emits. */
typedef void (*nta_gen_emit_fn)(void *ctx, const nta_record *r);

/* Calls generate(t0, step, n); each emit() call reaches fn. Returns the
 * number of records emitted, or -1 with the error in err. */
long nta_script_generate(nta_script *s, double t0_ms, double step_ms, long n, nta_gen_emit_fn fn,
                         void *ctx, char *err, size_t errlen);

/* ---- rule files ----
 * A rule set is every rule file of one (re)load, run in one sandboxed Lua
 * state: base, string, table, math and bit only, a memory cap, a time budget
 * per call, the JIT off so that the budget is enforced. */
typedef struct nta_ruleset nta_ruleset;

/* Loads and runs the rule files in order. Returns NULL with "file:line:
 * message" in err on any failure. */
nta_ruleset *nta_ruleset_load(const char *const *files, int nfiles, const nta_rule_limits *lim,
                              char *err, size_t errlen);
void nta_ruleset_destroy(nta_ruleset *rs);
int nta_ruleset_count(const nta_ruleset *rs);
const nta_rule_def *nta_ruleset_rule(const nta_ruleset *rs, int i);

/* Runs d's when(w) on r. Returns 1 (condition met), 0 (not), -1 (error, in
 * err) or -2 (time budget exceeded). *value is set when when() returns a
 * number as its second result. */
int nta_ruleset_eval(nta_ruleset *rs, const nta_rule_def *d, const nta_result *r,
                     const nta_baseline_view *b, int64_t budget_ms, double *value, char *err,
                     size_t errlen);

#endif
