/* What a script declares, as plain C data. script.c fills these from the Lua
 * declarations; nothing else reads Lua. */
#ifndef NTA_CONF_H
#define NTA_CONF_H

#include <stdint.h>

#include "decode.h"
#include "window.h"

/* Resource limits for rule code. */
typedef struct nta_rule_limits {
    int64_t budget_ms;   /* one call into a rule (or one file's top level) */
    size_t memory_bytes; /* the rule set's Lua heap */
} nta_rule_limits;

#define NTA_TOPIC_MAX 250 /* Kafka's own limit on topic name length is 249 */
#define NTA_MAX_WINDOWS 32
#define NTA_MAX_GEN_ARGS 64
#define NTA_PATH_MAX 4096
#define NTA_MAX_RULE_PATHS 16
#define NTA_MAX_RULES 256

struct nta_rule_def;

typedef struct nta_pipeline_conf {
    /* input { ... } */
    char input_topic[NTA_TOPIC_MAX];
    nta_format format;
    char *csv_columns[NTA_CSV_MAX_COLS]; /* owned; NULL-terminated when fewer */
    int ncsv_columns;
    char dlq_topic[NTA_TOPIC_MAX];  /* "" = bad records are only counted */
    char late_topic[NTA_TOPIC_MAX]; /* "" = late records are only counted */
    int64_t lateness_ms;
    int64_t idle_timeout_ms;
    /* The in-process source used when no broker is given. */
    char generator_path[NTA_PATH_MAX];
    char *generator_args[NTA_MAX_GEN_ARGS]; /* owned */
    int ngenerator_args;

    /* output { ... } */
    char output_topic[NTA_TOPIC_MAX];
    int print; /* -1 = default: print when there is no broker */

    /* window "name" { ... } */
    nta_window_spec windows[NTA_MAX_WINDOWS];
    int nwindows;

    /* rules "dir" or rules { "file.lua", "dir", ... }: rule files to load
     * (a directory means its *.lua files, in name order). Owned. */
    char *rule_paths[NTA_MAX_RULE_PATHS];
    int nrule_paths;
    /* rule "name" { ... } declared in the pipeline script itself (threshold
     * form only: function conditions belong in sandboxed rule files). Owned. */
    struct nta_rule_def *inline_rules;
    int ninline_rules;
    /* From the command line, not the script. */
    nta_rule_limits rule_limits;
} nta_pipeline_conf;

typedef enum nta_gen_format {
    NTA_GEN_JSON,
    NTA_GEN_CSV,
    NTA_GEN_GOFLOW2,
} nta_gen_format;

typedef struct nta_gen_conf {
    double rate;       /* records per second of event time */
    int64_t count;     /* total records; -1 = unbounded */
    int64_t start_ms;  /* event time of the first record; NTA_TS_NONE = now */
    nta_gen_format format;
    char topic[NTA_TOPIC_MAX];
} nta_gen_conf;

void nta_pipeline_conf_init(nta_pipeline_conf *c);
void nta_pipeline_conf_free(nta_pipeline_conf *c);
void nta_gen_conf_init(nta_gen_conf *c);

/* "250ms", "10s", "5m", "1h", "1d", or a bare number of seconds. Returns
 * milliseconds, or -1 if the text is not a duration. */
int64_t nta_parse_duration(const char *s);

#endif
