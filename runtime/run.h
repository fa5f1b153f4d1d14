/* The three ways nta-run runs a script:
 *  - a pipeline fed from Kafka (a broker was given),
 *  - a pipeline fed in-process (no broker: its declared generator, or stdin),
 *  - a generator, publishing to Kafka (or writing to stdout without a broker).
 * Each returns the process exit code. */
#ifndef NTA_RUN_H
#define NTA_RUN_H

#include <signal.h>

#include "conf.h"
#include "http.h"
#include "kafka.h"
#include "script.h"

typedef enum nta_from {
    NTA_FROM_COMMITTED, /* resume from the group's committed offsets (earliest if none) */
    NTA_FROM_BEGINNING,
    NTA_FROM_LATEST,
} nta_from;

typedef enum nta_delivery {
    NTA_DELIVERY_AUTO,          /* exactly-once where the cluster offers transactions */
    NTA_DELIVERY_EXACTLY_ONCE,  /* transactions, or fail */
    NTA_DELIVERY_AT_LEAST_ONCE, /* idempotent producer; offsets committed once delivered */
} nta_delivery;

typedef struct nta_run_opts {
    nta_kafka_opts kafka;
    nta_from from;
    int until_end; /* stop after draining every assigned partition */
    int fast;      /* generators: no pacing */
    int verbose;
    int commit_interval_ms;
    nta_delivery delivery;
    const char *instance; /* NULL: the host name */
    nta_http_opts http; /* the dashboard; http.listen NULL: none */
    /* The pipeline script and its arguments, for reloads. */
    const char *script_path;
    int script_argc;
    char *const *script_argv;
    char **rule_paths; /* --rules, added to the script's own */
    int nrule_paths;
} nta_run_opts;

/* Set from signal handlers; the loops check them between batches. */
extern volatile sig_atomic_t nta_run_stop;
extern volatile sig_atomic_t nta_run_reload;

int nta_run_pipeline_kafka(nta_script *s, nta_pipeline_conf *conf, const nta_run_opts *o);
int nta_run_pipeline_local(nta_script *s, nta_pipeline_conf *conf, const nta_run_opts *o);
int nta_run_generator(nta_script *s, nta_gen_conf *conf, const nta_run_opts *o);

/* The counters a pipeline run prints on stderr at exit (other sources, such
 * as replay.c, end with the same summary). */
struct nta_pipeline;
void nta_run_print_summary(struct nta_pipeline *p);

#endif
