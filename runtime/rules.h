/* The rule engine: evaluates rules on window results, keeps per-key alert
 * state (raise after N windows, clear after M without, cool-down) and
 * per-key baselines, and publishes alerts.
 *
 * Alert state and baselines live here, in C, keyed by rule name and by
 * (window, field, key): a reload that swaps the rule set keeps both. Rules
 * come from a sandboxed rule set (script.h) or are threshold rules declared
 * in the pipeline script; threshold rules are evaluated in C, without Lua. */
#ifndef NTA_RULES_H
#define NTA_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "rule.h"
#include "script.h"
#include "window.h"

/* Where alerts go. topic "" means the pipeline's output topic. */
typedef struct nta_rules_out {
    void (*alert)(void *ctx, const char *topic, const char *key, size_t klen, const char *json,
                  size_t len);
    void *ctx;
} nta_rules_out;

typedef struct nta_rule_stats {
    const char *name, *window, *where;
    nta_severity severity;
    uint64_t evaluations, hits, raised, cleared, errors;
    int quarantined;
    const char *last_error;  /* "" if none */
    uint64_t eval_ns;        /* time spent evaluating, all calls */
    uint64_t active;         /* keys currently alerting */
    /* Detection latency: first window meeting the condition (its end, event
     * time) to the alert's publication (wall clock), in ms. */
    uint64_t latency_n;
    double latency_p50_ms, latency_p99_ms, latency_max_ms;
} nta_rule_stats;

typedef struct nta_rules nta_rules;

nta_rules *nta_rules_create(const nta_rule_limits *lim, nta_rules_out out);
void nta_rules_destroy(nta_rules *e);

/* Checks rules against the windows they would watch: the window exists, the
 * value and baseline fields are in its results. Returns 0, or -1 with err
 * naming the rule and its file:line. */
int nta_rules_check(const nta_rule_def *defs, int ndefs, const nta_window_spec *specs,
                    int nspecs, char *err, size_t errlen);

/* Evaluates each function rule of rs once on r (for rules watching r's
 * window), without touching any state: a rule that fails here is refused
 * before it is installed. Returns 0, or -1 with err. */
int nta_rules_dry_run(nta_ruleset *rs, const nta_result *r, const nta_rule_limits *lim,
                      char *err, size_t errlen);

/* Makes rs (owned from now on; may be NULL) plus the inline threshold rules
 * the active rule set, for windows specs. Alert state of rules whose name
 * stays is kept; that of rules gone is dropped. Baselines are kept. */
void nta_rules_install(nta_rules *e, nta_ruleset *rs, const nta_rule_def *inline_defs,
                       int ninline, const nta_window_spec *specs, int nspecs);

/* A window result (the pipeline's emit path). */
void nta_rules_on_result(nta_rules *e, const nta_result *r, int64_t now_wall_ms);

/* Every result of the window of spec ending at end_ms has been seen: keys
 * that had none count a window without the condition. */
void nta_rules_window_done(nta_rules *e, const nta_window_spec *spec, int64_t end_ms,
                           int64_t now_wall_ms);

/* The watermark reached wm. Unkeyed windows that a rule watches and that
 * closed without any record are evaluated as empty (count 0): silence is
 * what an outage looks like. */
void nta_rules_on_watermark(nta_rules *e, int64_t wm, int64_t now_wall_ms);

int nta_rules_count(const nta_rules *e);
void nta_rules_get_stats(const nta_rules *e, int i, nta_rule_stats *out);
/* Keys whose alert state or baseline was not kept because the engine's
 * bounds (200,000 alert states, 1,000,000 baselines) were reached. */
uint64_t nta_rules_states_dropped(const nta_rules *e);

/* JSON array of the rules' status (for the dashboard and the reload record). */
void nta_rules_status_json(const nta_rules *e, nta_buf *b);

#endif
