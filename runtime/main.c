/* nta-run: runs a pipeline or generator script. Options are declared once in
 * the table below; parsing and --help both come from it. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "run.h"
#include "script.h"

#define NTA_VERSION "0.1.0"

enum {
    OPT_FROM = 256,
    OPT_UNTIL_END,
    OPT_FAST,
    OPT_COMMIT_INTERVAL,
    OPT_VERSION,
};

static const struct option_spec {
    const char *name;
    int val; /* short option character, or an OPT_ value */
    const char *arg; /* NULL: takes no argument */
    const char *help;
} options[] = {
    {"brokers", 'b', "HOST:PORT,...",
     "Kafka bootstrap servers. Without -b a pipeline runs in-process: its input's generator, or "
     "records read from stdin; a generator writes its records to stdout."},
    {"property", 'X', "KEY=VALUE", "Any librdkafka property, for both consumer and producer "
                                    "(repeatable; after -F, so it overrides the file)."},
    {"config-file", 'F', "FILE",
     "A Java .properties file of librdkafka properties, such as the client.properties Confluent "
     "Cloud hands out (security.protocol=SASL_SSL, sasl.*). Secret values are never printed."},
    {"group", 'g', "ID", "Consumer group id (default: nta)."},
    {"from", OPT_FROM, "beginning|latest|committed",
     "Where a pipeline starts reading: the group's committed offsets (default; a group with none "
     "starts at the beginning), or the beginning or end of each partition."},
    {"until-end", OPT_UNTIL_END, NULL,
     "Stop once every assigned partition is drained, after emitting every open window "
     "(backtests and benchmarks)."},
    {"fast", OPT_FAST, NULL,
     "Generators: produce as fast as possible rather than at the declared rate (event times "
     "are the same either way)."},
    {"commit-interval", OPT_COMMIT_INTERVAL, "MS",
     "How often delivered results' input offsets are committed (default 500)."},
    {"verbose", 'v', NULL, "Log assignments and, off a terminal, a status line every 10 s."},
    {"version", OPT_VERSION, NULL, "Print the version and exit."},
    {"help", 'h', NULL, "Show this help and exit."},
};
#define NOPTIONS (sizeof options / sizeof options[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: nta-run [options] script.lua [script arguments...]\n\n"
               "Runs a pipeline script (input/output/window declarations) or a generator\n"
               "script (generator declaration). Script arguments are passed to the script as\n"
               "arg[1..n], and key=value ones also as arg.key.\n\noptions:\n");
    for (size_t i = 0; i < NOPTIONS; i++) {
        char lhs[64];
        if (options[i].val < 256)
            snprintf(lhs, sizeof lhs, "-%c, --%s%s%s", options[i].val, options[i].name,
                     options[i].arg ? " " : "", options[i].arg ? options[i].arg : "");
        else
            snprintf(lhs, sizeof lhs, "    --%s%s%s", options[i].name, options[i].arg ? " " : "",
                     options[i].arg ? options[i].arg : "");
        fprintf(f, "  %-36s ", lhs);
        /* Wrap the help text at about 80 columns under its column. */
        const char *h = options[i].help;
        int col = 39;
        while (*h) {
            const char *sp = strchr(h, ' ');
            int w = sp ? (int)(sp - h) : (int)strlen(h);
            if (col + w > 100) {
                fprintf(f, "\n%39s", "");
                col = 39;
            }
            fprintf(f, "%.*s ", w, h);
            col += w + 1;
            h += w + (sp ? 1 : 0);
        }
        fputc('\n', f);
    }
    fprintf(f, "\nexit status: 0 on success, 1 on a runtime error, 2 on a usage or script error.\n");
}

static void on_signal(int sig)
{
    (void)sig;
    nta_run_stop = 1;
}

int main(int argc, char **argv)
{
    struct option longopts[NOPTIONS + 1];
    char shortopts[3 * NOPTIONS + 2] = "+"; /* '+': stop at the script name */
    for (size_t i = 0; i < NOPTIONS; i++) {
        longopts[i] = (struct option){options[i].name,
                                      options[i].arg ? required_argument : no_argument, NULL,
                                      options[i].val};
        if (options[i].val < 256) {
            size_t l = strlen(shortopts);
            shortopts[l] = (char)options[i].val;
            shortopts[l + 1] = options[i].arg ? ':' : '\0';
            shortopts[l + 2] = '\0';
        }
    }
    longopts[NOPTIONS] = (struct option){0};

    nta_run_opts o = {.from = NTA_FROM_COMMITTED, .commit_interval_ms = 500};
    char err[2048];
    int c;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        switch (c) {
        case 'b': o.kafka.brokers = optarg; break;
        case 'g': o.kafka.group = optarg; break;
        case 'v': o.verbose = o.kafka.verbose = 1; break;
        case 'X':
            if (nta_kafka_opts_add(&o.kafka, optarg, err, sizeof err) != 0) {
                fprintf(stderr, "nta-run: %s\n", err);
                return 2;
            }
            break;
        case 'F':
            if (nta_kafka_opts_load_file(&o.kafka, optarg, err, sizeof err) != 0) {
                fprintf(stderr, "nta-run: %s\n", err);
                return 2;
            }
            break;
        case OPT_FROM:
            if (strcmp(optarg, "beginning") == 0)
                o.from = NTA_FROM_BEGINNING;
            else if (strcmp(optarg, "latest") == 0)
                o.from = NTA_FROM_LATEST;
            else if (strcmp(optarg, "committed") == 0)
                o.from = NTA_FROM_COMMITTED;
            else {
                fprintf(stderr, "nta-run: --from takes beginning, latest or committed, not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case OPT_UNTIL_END: o.until_end = 1; break;
        case OPT_FAST: o.fast = 1; break;
        case OPT_COMMIT_INTERVAL: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 10 || v > 600000) {
                fprintf(stderr, "nta-run: --commit-interval takes 10..600000 ms, not '%s'\n",
                        optarg);
                return 2;
            }
            o.commit_interval_ms = (int)v;
            break;
        }
        case OPT_VERSION: printf("nta-run %s\n", NTA_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default:
            fprintf(stderr, "Try 'nta-run --help'.\n");
            return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *path = argv[optind];

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    nta_pipeline_conf pconf;
    nta_gen_conf gconf;
    nta_pipeline_conf_init(&pconf);
    nta_gen_conf_init(&gconf);
    nta_script_kind kind;
    nta_script *s = nta_script_load(path, argc - optind - 1, argv + optind + 1, &kind, &pconf,
                                    &gconf, err, sizeof err);
    int rc;
    if (s == NULL) {
        fprintf(stderr, "nta-run: %s\n", err);
        rc = 2;
    } else if (kind == NTA_SCRIPT_GENERATOR) {
        rc = nta_run_generator(s, &gconf, &o);
    } else if (o.kafka.brokers) {
        rc = nta_run_pipeline_kafka(s, &pconf, &o);
    } else {
        rc = nta_run_pipeline_local(s, &pconf, &o);
    }
    nta_script_destroy(s);
    nta_pipeline_conf_free(&pconf);
    nta_kafka_opts_free(&o.kafka);
    return rc;
}
