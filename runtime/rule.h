/* What a rule is, as plain C data: script.c fills these from `rule "name"
 * { ... }` declarations, rules.c runs them. */
#ifndef NTA_RULE_H
#define NTA_RULE_H

#include <stdint.h>

#include "conf.h"

#define NTA_RULE_NAME_MAX 64
#define NTA_RULE_FIELD_MAX 48
#define NTA_RULE_MESSAGE_MAX 256

typedef enum nta_severity {
    NTA_SEV_INFO,
    NTA_SEV_WARNING,
    NTA_SEV_CRITICAL,
} nta_severity;

const char *nta_severity_name(nta_severity s);

typedef struct nta_rule_def {
    char name[NTA_RULE_NAME_MAX];
    char where[NTA_PATH_MAX + 16]; /* "file:line" of the declaration, for errors */
    char window[NTA_WINDOW_NAME_MAX];
    nta_severity severity;
    /* The result field reported as the alert's value ("count", "sum_bytes",
     * "distinct_dst_port", ...), or a baseline-derived "z" or "ratio". */
    char value[NTA_RULE_FIELD_MAX];
    /* Threshold form: value > above and/or value < below. */
    int has_above, has_below;
    double above, below;
    /* Per item of a top-k aggregate ("topk_bytes_src_ip"): the rule judges
     * each reported item as a key of its own, value "share" or "value". */
    char each[NTA_RULE_FIELD_MAX];
    double min_total; /* each: skip windows whose top-k total weight is below this */
    /* Function form: when(w) in the rule set's sandboxed Lua state; -1 = none. */
    int fn_ref;
    int raise_after; /* consecutive windows meeting the condition before raising (>= 1) */
    int clear_after; /* consecutive windows without it before clearing (>= 1) */
    int64_t cooldown_ms; /* after a clear, no new raise for the same key before this */
    char message[NTA_RULE_MESSAGE_MAX]; /* {field} placeholders, see README */
    char topic[NTA_TOPIC_MAX];          /* "" = the pipeline's output topic */
    /* Baseline: exponentially weighted mean and variance of this result field
     * per key, over past windows ("" = none). */
    char baseline[NTA_RULE_FIELD_MAX];
    double alpha; /* weight of the newest window, 0 < alpha <= 1 */
    int warmup;   /* windows before the baseline is trusted (z and ratio read as 0 before) */
} nta_rule_def;

/* Defaults for a rule before its declaration is read. */
void nta_rule_def_init(nta_rule_def *d);

/* What a rule's condition sees of a key's baseline. */
typedef struct nta_baseline_view {
    int present; /* the rule declares a baseline */
    double mean, std, z, ratio;
    uint64_t n; /* windows seen */
} nta_baseline_view;

#endif
