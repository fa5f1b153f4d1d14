/* nta-run: runs a pipeline or generator script. Options are declared once in
 * the table below; parsing and --help both come from it. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "http.h"
#include "replay.h"
#include "run.h"
#include "script.h"

#define NTA_VERSION "0.1.0"

enum {
    OPT_FROM = 256,
    OPT_UNTIL_END,
    OPT_FAST,
    OPT_COMMIT_INTERVAL,
    OPT_DELIVERY,
    OPT_INSTANCE,
    OPT_HTTP,
    OPT_NO_HTTP,
    OPT_HTTP_TOKEN,
    OPT_HTTP_TOKEN_FILE,
    OPT_HTTP_HISTORY,
    OPT_WEB_ROOT,
    OPT_RULES,
    OPT_RULE_BUDGET,
    OPT_RULE_MEMORY,
    OPT_VERSION,
    OPT_REPLAY,
    OPT_REPLAY_FORMAT,
    OPT_PACKETS,
    OPT_FLOWS,
    OPT_FLOW_ACTIVE,
    OPT_FLOW_IDLE,
    OPT_MAX_FLOWS,
    OPT_SPEED,
    OPT_ASAP,
    OPT_SORT,
    OPT_NO_SORT,
    OPT_PUBLISH,
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
     "How often results are committed with the input offsets they cover: one transaction per "
     "interval with exactly-once delivery, an offset commit once delivered with at-least-once "
     "(default 200)."},
    {"delivery", OPT_DELIVERY, "exactly-once|at-least-once",
     "Output guarantee of a Kafka pipeline. exactly-once (default): results, alerts and input "
     "offsets are committed in one Kafka transaction; readers with isolation.level="
     "read_committed see every result once, --commit-interval later. at-least-once: an "
     "idempotent producer; a crash may repeat results. Without this option a cluster that "
     "does not offer transactions falls back to at-least-once, with a warning."},
    {"instance", OPT_INSTANCE, "ID",
     "This process's name within its consumer group, part of its transactional.id (default: the "
     "host name). Several instances of one group on one host need different IDs; a restarted "
     "instance must keep its ID so that it aborts its crashed predecessor's transaction at once."},
    {"replay", OPT_REPLAY, "FILE",
     "Replay a traffic file into the pipeline script (in-process, results printed), or with "
     "--publish into Kafka: pcap/pcapng, Zeek conn.log (JSON or TSV), CICFlowMeter CSV, "
     "goflow2 or nta JSON lines."},
    {"replay-format", OPT_REPLAY_FORMAT, "auto|pcap|zeek|cic|goflow2|json",
     "The replayed file's format (default auto: told by its content)."},
    {"packets", OPT_PACKETS, NULL, "Captures: one record per packet (the default)."},
    {"flows", OPT_FLOWS, NULL,
     "Captures: unidirectional flow records per 5-tuple, as a flow exporter builds them (time "
     "= the flow's last packet, TCP flags ORed)."},
    {"flow-active-timeout", OPT_FLOW_ACTIVE, "DURATION",
     "With --flows: a flow is exported and restarted after this long (default 60s)."},
    {"flow-idle-timeout", OPT_FLOW_IDLE, "DURATION",
     "With --flows: a flow is exported after this long without packets (default 15s)."},
    {"max-flows", OPT_MAX_FLOWS, "N",
     "With --flows: flow table size; when full the least recently seen flow is exported "
     "early (default 1000000)."},
    {"speed", OPT_SPEED, "N",
     "Replay N times faster than the file's own timing (default 1: original timing)."},
    {"as-fast-as-possible", OPT_ASAP, NULL, "Replay without pacing."},
    {"sort", OPT_SORT, NULL,
     "Read the whole file and replay it in time order (the default for flow logs)."},
    {"no-sort", OPT_NO_SORT, NULL,
     "Stream the file in its own order (the default for captures); disorder is then left to "
     "the pipeline's lateness."},
    {"publish", OPT_PUBLISH, "TOPIC",
     "With --replay and -b: publish the records to TOPIC (nta JSON, keyed by source address, "
     "message time = record time) instead of running a script."},
    {"verbose", 'v', NULL, "Log assignments and, off a terminal, a status line every 10 s."},
    {"rules", OPT_RULES, "PATH",
     "A rule file, or a directory of *.lua rule files, to load besides those the script names "
     "(repeatable). kill -HUP reloads the script's rules and these, all or nothing."},
    {"rule-budget", OPT_RULE_BUDGET, "MS",
     "Time one call into rule code may take before it is stopped and the rule quarantined "
     "(default 100)."},
    {"rule-memory", OPT_RULE_MEMORY, "MB", "Memory cap of the rules' Lua heap (default 64)."},
    {"http", OPT_HTTP, "ADDR:PORT",
     "Where pipelines serve the dashboard, its API and /metrics (default " NTA_HTTP_DEFAULT_LISTEN
     ", or $NTA_HTTP; port 0 picks a free one). A busy port is logged and the pipeline runs "
     "without it. An address other than loopback needs --http-token or --http-token-file."},
    {"no-http", OPT_NO_HTTP, NULL, "No dashboard (also NTA_HTTP=off)."},
    {"http-token", OPT_HTTP_TOKEN, "TOKEN",
     "Access token the dashboard's API, push channel, metrics and reload require "
     "(Authorization: Bearer TOKEN, or ?token=TOKEN)."},
    {"http-token-file", OPT_HTTP_TOKEN_FILE, "FILE",
     "Read the access token from the first line of FILE (keeps it out of ps)."},
    {"http-history", OPT_HTTP_HISTORY, "DURATION",
     "How much history the dashboard keeps for pages that open later (default 15m)."},
    {"web-root", OPT_WEB_ROOT, "DIR", "Serve the page from DIR instead of the source tree's web/."},
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
    if (sig == SIGHUP)
        nta_run_reload = 1;
    else
        nta_run_stop = 1;
}

/* A whole number in [lo, hi] from an option argument, or -1. */
static long parse_long(const char *s, long lo, long hi)
{
    char *end;
    long v = strtol(s, &end, 10);
    return (*s && *end == '\0' && v >= lo && v <= hi) ? v : -1;
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

    nta_run_opts o = {.from = NTA_FROM_COMMITTED, .commit_interval_ms = 200};
    /* The dashboard is on by default; NTA_HTTP moves it (tests run many
     * pipelines at once) or turns it off. */
    const char *http_env = getenv("NTA_HTTP");
    o.http.listen = http_env == NULL ? NTA_HTTP_DEFAULT_LISTEN
                    : strcmp(http_env, "off") == 0 || http_env[0] == '\0' ? NULL
                                                                           : http_env;
    static char http_token[1024];
    nta_replay_opts ro;
    nta_replay_opts_init(&ro);
    char err[2048];
    long rule_budget = -1, rule_memory = -1;
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
        case OPT_DELIVERY:
            if (strcmp(optarg, "exactly-once") == 0)
                o.delivery = NTA_DELIVERY_EXACTLY_ONCE;
            else if (strcmp(optarg, "at-least-once") == 0)
                o.delivery = NTA_DELIVERY_AT_LEAST_ONCE;
            else {
                fprintf(stderr,
                        "nta-run: --delivery takes exactly-once or at-least-once, not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case OPT_INSTANCE:
            if (optarg[0] == '\0' || strlen(optarg) > 200) {
                fprintf(stderr, "nta-run: --instance takes a name of 1 to 200 characters\n");
                return 2;
            }
            o.instance = optarg;
            break;
        case OPT_REPLAY: ro.path = optarg; break;
        case OPT_REPLAY_FORMAT:
            ro.reader.format = nta_reader_format_by_name(optarg);
            if ((int)ro.reader.format < 0) {
                fprintf(stderr, "nta-run: --replay-format takes auto, pcap, zeek, cic, goflow2 "
                                "or json, not '%s'\n", optarg);
                return 2;
            }
            break;
        case OPT_PACKETS: ro.reader.flows = 0; break;
        case OPT_FLOWS: ro.reader.flows = 1; break;
        case OPT_FLOW_ACTIVE:
        case OPT_FLOW_IDLE: {
            int64_t ms = nta_parse_duration(optarg);
            if (ms <= 0 || ms > 86400000) {
                fprintf(stderr, "nta-run: --%s takes a duration from 1ms to 1d, not '%s'\n",
                        c == OPT_FLOW_ACTIVE ? "flow-active-timeout" : "flow-idle-timeout",
                        optarg);
                return 2;
            }
            *(c == OPT_FLOW_ACTIVE ? &ro.reader.active_timeout_ms : &ro.reader.idle_timeout_ms) =
                ms;
            break;
        }
        case OPT_MAX_FLOWS: {
            char *end;
            long long v = strtoll(optarg, &end, 10);
            if (*end || v < 1 || v > 100000000) {
                fprintf(stderr, "nta-run: --max-flows takes 1..100000000, not '%s'\n", optarg);
                return 2;
            }
            ro.reader.max_flows = (size_t)v;
            break;
        }
        case OPT_SPEED: {
            char *end;
            double v = strtod(optarg, &end);
            if (*end || !(v >= 0.001 && v <= 1e9)) {
                fprintf(stderr, "nta-run: --speed takes a factor from 0.001 to 1e9, not '%s'\n",
                        optarg);
                return 2;
            }
            ro.speed = v;
            break;
        }
        case OPT_ASAP: ro.speed = 0; break;
        case OPT_SORT: ro.sort = 1; break;
        case OPT_NO_SORT: ro.sort = 0; break;
        case OPT_PUBLISH: ro.publish_topic = optarg; break;
        case OPT_RULES: {
            char **np = realloc(o.rule_paths, sizeof(char *) * (size_t)(o.nrule_paths + 1));
            if (np == NULL)
                return 1;
            o.rule_paths = np;
            o.rule_paths[o.nrule_paths++] = optarg;
            break;
        }
        case OPT_RULE_BUDGET:
            if ((rule_budget = parse_long(optarg, 1, 60000)) < 0) {
                fprintf(stderr, "nta-run: --rule-budget takes 1..60000 ms, not '%s'\n", optarg);
                return 2;
            }
            break;
        case OPT_RULE_MEMORY:
            if ((rule_memory = parse_long(optarg, 1, 65536)) < 0) {
                fprintf(stderr, "nta-run: --rule-memory takes 1..65536 MB, not '%s'\n", optarg);
                return 2;
            }
            break;
        case OPT_HTTP: o.http.listen = optarg; break;
        case OPT_NO_HTTP: o.http.listen = NULL; break;
        case OPT_HTTP_TOKEN: o.http.token = optarg; break;
        case OPT_HTTP_TOKEN_FILE:
            if (nta_http_read_token_file(optarg, http_token, sizeof http_token, err,
                                         sizeof err) != 0) {
                fprintf(stderr, "nta-run: %s\n", err);
                return 2;
            }
            o.http.token = http_token;
            break;
        case OPT_HTTP_HISTORY:
            if ((o.http.history_ms = nta_http_parse_history(optarg)) < 0) {
                fprintf(stderr, "nta-run: --http-history takes a duration such as 15m, not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case OPT_WEB_ROOT: o.http.web_root = optarg; break;
        case OPT_VERSION: printf("nta-run %s\n", NTA_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default:
            fprintf(stderr, "Try 'nta-run --help'.\n");
            return 2;
        }
    }
    if (nta_http_opts_check(&o.http, err, sizeof err) != 0) {
        fprintf(stderr, "nta-run: %s\n", err);
        return 2;
    }
    if (ro.publish_topic && (!ro.path || !o.kafka.brokers || optind < argc)) {
        fprintf(stderr, "nta-run: --publish needs --replay FILE and -b, and takes no script\n");
        return 2;
    }
    if (ro.path && !ro.publish_topic && o.kafka.brokers) {
        fprintf(stderr, "nta-run: --replay feeds the script in-process; -b goes with --publish\n");
        return 2;
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (ro.publish_topic) {
        int prc = nta_run_replay_publish(&o, &ro);
        nta_kafka_opts_free(&o.kafka);
    free(o.rule_paths);
        return prc;
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *path = argv[optind];

    nta_pipeline_conf pconf;
    nta_gen_conf gconf;
    nta_pipeline_conf_init(&pconf);
    nta_gen_conf_init(&gconf);
    nta_script_kind kind;
    o.script_path = path;
    o.script_argc = argc - optind - 1;
    o.script_argv = argv + optind + 1;
    nta_script *s = nta_script_load(path, o.script_argc, o.script_argv, &kind, &pconf, &gconf,
                                    err, sizeof err);
    if (rule_budget > 0)
        pconf.rule_limits.budget_ms = rule_budget;
    if (rule_memory > 0)
        pconf.rule_limits.memory_bytes = (size_t)rule_memory << 20;
    int rc;
    if (s == NULL) {
        fprintf(stderr, "nta-run: %s\n", err);
        rc = 2;
    } else if (ro.path && kind != NTA_SCRIPT_PIPELINE) {
        fprintf(stderr, "nta-run: --replay needs a pipeline script; %s is a generator\n", path);
        rc = 2;
    } else if (ro.path) {
        rc = nta_run_replay(s, &pconf, &o, &ro);
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
    free(o.rule_paths);
    return rc;
}
