/* drain: the baseline of the throughput benchmark (bench/run.sh).
 *
 * The least a Kafka consumer can do with a topic: join a consumer group,
 * read every partition from the beginning to its end, and touch each message
 * (its length and two of its bytes, the first and the middle one, go into
 * checksums printed at exit, so the compiler cannot drop the reads). nta-run's pipeline is measured against it,
 * so everything librdkafka does for both is the same:
 *
 *   - the consumer properties nta-run sets itself (runtime/run.c,
 *     consumer_create) and nothing else: no fetch tuning on this side only;
 *   - -X key=value overrides, applied after them, as nta-run's -X are;
 *   - the same loop: rd_kafka_poll_set_consumer, then
 *     rd_kafka_consume_batch_queue of up to 4096 messages with a 100 ms wait;
 *   - enable.partition.eof, and exit once every assigned partition has
 *     reported EOF (nta-run --until-end).
 *
 * It does not commit offsets: the group is fresh on every run and
 * auto.offset.reset=earliest starts it at the beginning, which is what
 * nta-run --from beginning does for a fresh group.
 *
 * Usage: drain -b HOST:PORT -g GROUP -t TOPIC [-X key=value ...]
 * Prints one line on stdout:
 *   drain: records=N bytes=B xor=X
 * Exit status: 0 drained, 1 Kafka error, 2 usage. */
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PARTS 1024

static volatile sig_atomic_t stop;
static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* Per partition: assigned by the group, and at its end since its last message. */
static int assigned[MAX_PARTS], at_eof[MAX_PARTS];

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    (void)opaque;
    int on = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
    for (int i = 0; i < parts->cnt; i++) {
        int32_t p = parts->elems[i].partition;
        if (p >= 0 && p < MAX_PARTS) {
            assigned[p] = on;
            at_eof[p] = 0;
        }
    }
    rd_kafka_assign(rk, on ? parts : NULL);
}

static int all_at_end(void)
{
    int any = 0;
    for (int p = 0; p < MAX_PARTS; p++) {
        if (!assigned[p])
            continue;
        any = 1;
        if (!at_eof[p])
            return 0;
    }
    return any;
}

static int set(rd_kafka_conf_t *conf, const char *key, const char *val)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, key, val, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "drain: %s: %s\n", key, errstr);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *brokers = NULL, *group = NULL, *topic = NULL;
    char *props[256];
    int nprops = 0, c;
    while ((c = getopt(argc, argv, "b:g:t:X:")) != -1) {
        switch (c) {
        case 'b': brokers = optarg; break;
        case 'g': group = optarg; break;
        case 't': topic = optarg; break;
        case 'X':
            if (strchr(optarg, '=') == NULL || optarg[0] == '=' || nprops == 256) {
                fprintf(stderr, "drain: -X expects key=value, got '%s'\n", optarg);
                return 2;
            }
            props[nprops++] = optarg;
            break;
        default: brokers = NULL; optind = argc; break;
        }
    }
    if (!brokers || !group || !topic || optind != argc) {
        fprintf(stderr, "usage: drain -b HOST:PORT -g GROUP -t TOPIC [-X key=value ...]\n");
        return 2;
    }
    /* In nta-run's order: bootstrap servers, its own defaults, then -X. */
    const char *const defaults[] = {
        "bootstrap.servers", brokers,
        "group.id", group,
        "enable.auto.commit", "false",
        "enable.auto.offset.store", "false",
        "auto.offset.reset", "earliest",
        "enable.partition.eof", "true",
        NULL,
    };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (const char *const *d = defaults; *d; d += 2)
        if (set(conf, d[0], d[1]) != 0)
            return 2;
    for (int i = 0; i < nprops; i++) {
        char *eq = strchr(props[i], '=');
        *eq = '\0';
        if (set(conf, props[i], eq + 1) != 0)
            return 2;
    }
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);

    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (rk == NULL) {
        fprintf(stderr, "drain: cannot create the consumer: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "drain: subscribe to %s: %s\n", topic, rd_kafka_err2str(e));
        rd_kafka_destroy(rk);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
    static rd_kafka_message_t *msgs[4096];
    uint64_t records = 0, bytes = 0, errors = 0;
    unsigned char x = 0;
    int rc = 1;
    while (!stop) {
        ssize_t n = rd_kafka_consume_batch_queue(q, 100, msgs, sizeof msgs / sizeof msgs[0]);
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = msgs[i];
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (m->partition >= 0 && m->partition < MAX_PARTS)
                    at_eof[m->partition] = 1;
            } else if (m->err) {
                /* Reported, not fatal: nta-run carries on after consumer errors too. */
                if (errors++ < 10)
                    fprintf(stderr, "drain: consumer: %s\n", rd_kafka_message_errstr(m));
            } else {
                if (m->partition >= 0 && m->partition < MAX_PARTS)
                    at_eof[m->partition] = 0;
                records++;
                bytes += m->len;
                if (m->len) {
                    const unsigned char *p = m->payload;
                    x ^= (unsigned char)(p[0] ^ p[m->len / 2]);
                }
            }
            rd_kafka_message_destroy(m);
        }
        if (all_at_end()) {
            rc = 0;
            break;
        }
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    printf("drain: records=%llu bytes=%llu xor=%u\n", (unsigned long long)records,
           (unsigned long long)bytes, (unsigned)x);
    if (errors)
        fprintf(stderr, "drain: %llu consumer errors\n", (unsigned long long)errors);
    return rc;
}
