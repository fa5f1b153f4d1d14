/* Kafka clients: configuration from the command line (-b, -X, -F) and a
 * producer that accounts for deliveries in epochs.
 *
 * Epochs are the commit path: every message produced belongs to the current
 * epoch; the runner closes an epoch together with a snapshot of the input
 * offsets that the epoch's results cover, and commits those offsets only once
 * every message of that epoch and all earlier ones is acknowledged. An epoch
 * is exactly the unit a Kafka transaction would commit atomically. */
#ifndef NTA_KAFKA_H
#define NTA_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

typedef struct nta_kafka_opts {
    const char *brokers; /* NULL: no broker (embedded mode) */
    const char *group;
    char **props; /* "key=value", applied in order after the defaults */
    int nprops;
    int verbose;
} nta_kafka_opts;

/* Adds one -X key=value. Returns 0, or -1 with err. */
int nta_kafka_opts_add(nta_kafka_opts *o, const char *kv, char *err, size_t errlen);

/* Adds every key=value of a Java .properties file (the client.properties
 * file Confluent Cloud hands out): '#' and '!' comments, blank lines, and
 * "key = value" spacing are accepted. Returns 0, or -1 with err naming the
 * file and line (never a value: it may be a secret). */
int nta_kafka_opts_load_file(nta_kafka_opts *o, const char *path, char *err, size_t errlen);

void nta_kafka_opts_free(nta_kafka_opts *o);

/* True for property names whose values must never be printed. */
int nta_kafka_prop_is_secret(const char *key);

/* A new librdkafka conf with bootstrap.servers, the given defaults
 * (NULL-terminated key, value pairs; the user's properties override them)
 * and the user's properties. Returns NULL with err naming the property. */
rd_kafka_conf_t *nta_kafka_conf_new(const nta_kafka_opts *o, const char *const *defaults,
                                    char *err, size_t errlen);

typedef struct nta_producer nta_producer;

typedef struct nta_producer_stats {
    uint64_t produced;  /* messages handed to librdkafka */
    uint64_t delivered; /* acknowledged by the broker */
    uint64_t failed;    /* delivery attempts that failed (each was produced again) */
    uint64_t pending;   /* produced, not yet acknowledged */
    uint64_t transactions, aborted; /* transactions committed and aborted */
    int paused;         /* a commit is waiting for the broker */
} nta_producer_stats;

/* A producer with acks=all and idempotence on: a retried send can not be
 * written twice. With a transactional_id it is a transactional producer
 * (exactly-once delivery): transactions are initialised (fencing any earlier
 * producer with the same id and aborting its open transaction) and the first
 * transaction is begun; messages then belong to the open transaction instead
 * of epochs, and failed deliveries are not produced again (the transaction
 * aborts instead, see nta_producer_commit). Returns NULL with err, and
 * *no_txn (if not NULL) set when the cluster does not offer transactions to
 * this client (too old, or not authorised). */
nta_producer *nta_producer_create(const nta_kafka_opts *o, const char *transactional_id,
                                  int *no_txn, char *err, size_t errlen);

/* Flushes for at most timeout_ms, then destroys. Returns the number of
 * messages still undelivered (lost to this process; their offsets were
 * never committed). */
long nta_producer_destroy(nta_producer *p, int timeout_ms);

/* Makes librdkafka look up topic's partitions and their leaders now, not
 * at its first message: a message to a topic librdkafka does not know yet
 * waits for that metadata. A pipeline whose results all come at the end of
 * its input (a backtest with --until-end) saw its first result leave
 * 0.24-0.96 s after it was produced, and its final commit land on a
 * one-second grid, which points at librdkafka 2.0.2's one-second timers
 * (bench/README.md, analysis 7). Holds at most NTA_PRODUCER_HELD_MAX topics
 * until nta_producer_destroy; "" is ignored. */
#define NTA_PRODUCER_HELD_MAX 8
void nta_producer_prepare(nta_producer *p, const char *topic);

/* Copies and queues one message in the current epoch. When librdkafka's
 * queue is full it serves delivery reports and waits: a stalled broker slows
 * the pipeline down rather than dropping results. hdr_name may be NULL.
 * Returns 0, or -1 for an error that retrying cannot fix (err says which). */
int nta_producer_send(nta_producer *p, const char *topic, const void *key, size_t klen,
                      const void *val, size_t vlen, int64_t ts_ms, const char *hdr_name,
                      const char *hdr_val, char *err, size_t errlen);

/* What committing a transaction came to. */
typedef enum nta_txn_result {
    NTA_TXN_OK,      /* committed; the next transaction is open */
    NTA_TXN_RETRY,   /* not yet (broker or coordinator unavailable): call again */
    NTA_TXN_ABORTED, /* aborted (a delivery failed, the transaction timed out...):
                      * nothing of it is visible; the next transaction is open and
                      * the caller must produce its results again */
    NTA_TXN_FATAL,   /* the producer can not go on (fenced by a newer one with the
                      * same transactional.id, or another fatal error) */
} nta_txn_result;

/* Commits the open transaction together with the consumer's offsets (NULL or
 * empty: none) for the consumer group of group_md, then begins the next one.
 * A NTA_TXN_RETRY leaves the transaction committing: call again, with the
 * same offsets, before producing anything else. Waits at most about
 * timeout_ms per call. err says why for anything but NTA_TXN_OK. */
nta_txn_result nta_producer_commit(nta_producer *p, const rd_kafka_topic_partition_list_t *offsets,
                                   const rd_kafka_consumer_group_metadata_t *group_md,
                                   int timeout_ms, char *err, size_t errlen);

/* True for a transactional producer whose open transaction can no longer
 * commit (a send or a delivery failed): the next commit aborts it. */
int nta_producer_txn_failed(const nta_producer *p);

/* Serves delivery reports and re-sends failed messages. */
void nta_producer_poll(nta_producer *p, int timeout_ms);

/* Ends the current epoch and returns its id (ids increase from 1). */
uint64_t nta_producer_close_epoch(nta_producer *p);

/* True once every message of epoch id and of all earlier epochs is acknowledged. */
int nta_producer_epoch_done(nta_producer *p, uint64_t id);

void nta_producer_get_stats(const nta_producer *p, nta_producer_stats *out);

/* The last error a delivery report gave, or "" (for the status line). */
const char *nta_producer_last_error(const nta_producer *p);

#endif
