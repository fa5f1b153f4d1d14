#include "kafka.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int nta_kafka_opts_add(nta_kafka_opts *o, const char *kv, char *err, size_t errlen)
{
    const char *eq = strchr(kv, '=');
    if (eq == NULL || eq == kv) {
        snprintf(err, errlen, "-X expects key=value, got '%.*s'", (int)strcspn(kv, "="), kv);
        return -1;
    }
    char **np = realloc(o->props, sizeof(char *) * (size_t)(o->nprops + 1));
    if (np == NULL || (np[o->nprops] = strdup(kv)) == NULL) {
        snprintf(err, errlen, "out of memory");
        if (np)
            o->props = np;
        return -1;
    }
    o->props = np;
    o->nprops++;
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int nta_kafka_opts_load_file(nta_kafka_opts *o, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "-F %s: cannot open", path);
        return -1;
    }
    char line[8192];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#' || *s == '!')
            continue;
        size_t klen = strcspn(s, "=:");
        if (s[klen] == '\0') {
            snprintf(err, errlen, "-F %s:%d: expected key=value", path, lineno);
            rc = -1;
            break;
        }
        s[klen] = '\0';
        char *key = trim(s), *val = trim(s + klen + 1);
        char kv[8192 + 2];
        snprintf(kv, sizeof kv, "%s=%s", key, val);
        rc = nta_kafka_opts_add(o, kv, err, errlen);
    }
    fclose(f);
    return rc;
}

void nta_kafka_opts_free(nta_kafka_opts *o)
{
    for (int i = 0; i < o->nprops; i++)
        free(o->props[i]);
    free(o->props);
    o->props = NULL;
    o->nprops = 0;
}

int nta_kafka_prop_is_secret(const char *key)
{
    return strstr(key, "password") || strstr(key, "secret") || strstr(key, "sasl.jaas") ||
           strstr(key, "token") || strstr(key, ".key.pem") || strstr(key, "key.password");
}

static int set_prop(rd_kafka_conf_t *conf, const char *key, const char *val, char *err,
                    size_t errlen)
{
    char rderr[256];
    if (rd_kafka_conf_set(conf, key, val, rderr, sizeof rderr) != RD_KAFKA_CONF_OK) {
        /* librdkafka's message may quote the value; drop it for secrets. */
        if (nta_kafka_prop_is_secret(key))
            snprintf(err, errlen, "Kafka property %s: invalid value (not shown)", key);
        else
            snprintf(err, errlen, "Kafka property %s: %s", key, rderr);
        return -1;
    }
    return 0;
}

rd_kafka_conf_t *nta_kafka_conf_new(const nta_kafka_opts *o, const char *const *defaults,
                                    char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (o->brokers && set_prop(conf, "bootstrap.servers", o->brokers, err, errlen) != 0)
        goto fail;
    for (const char *const *d = defaults; d && *d; d += 2)
        if (set_prop(conf, d[0], d[1], err, errlen) != 0)
            goto fail;
    for (int i = 0; i < o->nprops; i++) {
        char kv[8192];
        snprintf(kv, sizeof kv, "%s", o->props[i]);
        char *eq = strchr(kv, '=');
        *eq = '\0';
        if (set_prop(conf, kv, eq + 1, err, errlen) != 0)
            goto fail;
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* ---- producer ---- */

typedef struct epoch {
    uint64_t id;
    uint64_t outstanding;
} epoch;

/* A message whose delivery failed, kept to be produced again. */
typedef struct retry {
    struct retry *next;
    char *topic;
    void *key, *val;
    size_t klen, vlen;
    int64_t ts_ms;
    rd_kafka_headers_t *hdrs;
    uint64_t epoch;
} retry;

struct nta_producer {
    rd_kafka_t *rk;
    epoch *epochs; /* FIFO of open epochs, oldest first; the last is current */
    size_t nepochs, cap;
    uint64_t next_id;
    retry *retries, **retries_tail;
    nta_producer_stats st;
    char last_error[256];
    int transactional;
    int txn_failed;     /* a send or delivery of the open transaction failed */
    int offsets_sent;   /* the open transaction holds its offsets; committing */
    rd_kafka_topic_t *held[NTA_PRODUCER_HELD_MAX]; /* nta_producer_prepare */
    int nheld;
};

static epoch *find_epoch(nta_producer *p, uint64_t id)
{
    for (size_t i = 0; i < p->nepochs; i++)
        if (p->epochs[i].id == id)
            return &p->epochs[i];
    return NULL;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    nta_producer *p = opaque;
    uint64_t id = (uint64_t)(uintptr_t)m->_private;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        epoch *e = find_epoch(p, id);
        if (e)
            e->outstanding--;
        p->st.delivered++;
        p->st.pending--;
        return;
    }
    /* librdkafka already retried within message.timeout.ms. The message is a
     * result the pipeline accepted, so it is queued again rather than lost;
     * its epoch stays open, which holds back the offset commit. In a
     * transaction it is not: the transaction aborts and the caller computes
     * its results again. */
    if (p->transactional) {
        p->st.pending--;
        /* Purged by our own abort: already accounted for as aborted. */
        if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
            return;
        p->st.failed++;
        p->txn_failed = 1;
        snprintf(p->last_error, sizeof p->last_error, "delivery to %s failed: %s",
                 rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
        return;
    }
    p->st.failed++;
    snprintf(p->last_error, sizeof p->last_error, "delivery to %s failed: %s",
             rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
    retry *r = calloc(1, sizeof *r);
    if (r == NULL)
        abort();
    r->topic = strdup(rd_kafka_topic_name(m->rkt));
    r->klen = m->key_len;
    r->vlen = m->len;
    r->key = malloc(m->key_len ? m->key_len : 1);
    r->val = malloc(m->len ? m->len : 1);
    if (!r->topic || !r->key || !r->val)
        abort();
    if (m->key_len)
        memcpy(r->key, m->key, m->key_len);
    if (m->len)
        memcpy(r->val, m->payload, m->len);
    rd_kafka_timestamp_type_t tstype;
    r->ts_ms = rd_kafka_message_timestamp(m, &tstype);
    rd_kafka_headers_t *h = NULL;
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h)
        r->hdrs = rd_kafka_headers_copy(h);
    r->epoch = id;
    *p->retries_tail = r;
    p->retries_tail = &r->next;
}

static void error_text(rd_kafka_error_t *e, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: %s", what, rd_kafka_error_string(e));
}

/* Calls op (init_transactions or abort_transaction) until it succeeds or
 * fails for good, at most tries times, then begins a transaction. Returns
 * NULL, or the error to report (the caller destroys it). */
static rd_kafka_error_t *retry_then_begin(nta_producer *p,
                                          rd_kafka_error_t *(*op)(rd_kafka_t *, int), int tries,
                                          int timeout_ms)
{
    rd_kafka_error_t *e = op(p->rk, timeout_ms);
    for (int i = 1; i < tries && e != NULL && rd_kafka_error_is_retriable(e); i++) {
        rd_kafka_error_destroy(e);
        e = op(p->rk, timeout_ms);
    }
    return e ? e : rd_kafka_begin_transaction(p->rk);
}

nta_producer *nta_producer_create(const nta_kafka_opts *o, const char *transactional_id,
                                  int *no_txn, char *err, size_t errlen)
{
    if (no_txn)
        *no_txn = 0;
    static const char *const defaults[] = {
        "enable.idempotence", "true",
        "acks", "all",
        /* Results are small and many: batch them, but not so long that the
         * dashboard or a test waits visibly. */
        "linger.ms", "5",
        "compression.type", "lz4",
        "queue.buffering.max.messages", "500000",
        NULL,
    };
    nta_producer *p = calloc(1, sizeof *p);
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->retries_tail = &p->retries;
    p->next_id = 1;
    rd_kafka_conf_t *conf = nta_kafka_conf_new(o, defaults, err, errlen);
    if (conf == NULL) {
        free(p);
        return NULL;
    }
    if (transactional_id &&
        rd_kafka_conf_set(conf, "transactional.id", transactional_id, err, errlen) !=
            RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        free(p);
        return NULL;
    }
    p->transactional = transactional_id != NULL;
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_opaque(conf, p);
    char rderr[256];
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof rderr);
    if (p->rk == NULL) {
        snprintf(err, errlen, "cannot create the Kafka producer: %s", rderr);
        rd_kafka_conf_destroy(conf);
        free(p);
        return NULL;
    }
    p->epochs = calloc(16, sizeof(epoch));
    if (p->epochs == NULL)
        abort();
    p->cap = 16;
    p->epochs[0] = (epoch){p->next_id++, 0};
    p->nepochs = 1;
    if (p->transactional) {
        /* Retried while the coordinator is loading or briefly away: a
         * restart right after a crash meets exactly that. */
        rd_kafka_error_t *e = retry_then_begin(p, rd_kafka_init_transactions, 12, 10000);
        if (e != NULL) {
            rd_kafka_resp_err_t code = rd_kafka_error_code(e);
            if (no_txn)
                *no_txn = code == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE ||
                          code == RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED ||
                          code == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED;
            error_text(e, "cannot start Kafka transactions", err, errlen);
            rd_kafka_error_destroy(e);
            rd_kafka_destroy(p->rk);
            free(p->epochs);
            free(p);
            return NULL;
        }
    }
    return p;
}

static void free_retry(retry *r)
{
    free(r->topic);
    free(r->key);
    free(r->val);
    if (r->hdrs)
        rd_kafka_headers_destroy(r->hdrs);
    free(r);
}

long nta_producer_destroy(nta_producer *p, int timeout_ms)
{
    if (p == NULL)
        return 0;
    rd_kafka_flush(p->rk, timeout_ms);
    for (int i = 0; i < p->nheld; i++)
        rd_kafka_topic_destroy(p->held[i]);
    long left = rd_kafka_outq_len(p->rk);
    for (retry *r = p->retries, *n; r; r = n) {
        n = r->next;
        free_retry(r);
        left++;
    }
    rd_kafka_destroy(p->rk);
    free(p->epochs);
    free(p);
    return left;
}

void nta_producer_prepare(nta_producer *p, const char *topic)
{
    if (topic[0] == '\0' || p->nheld == NTA_PRODUCER_HELD_MAX)
        return;
    for (int i = 0; i < p->nheld; i++)
        if (strcmp(rd_kafka_topic_name(p->held[i]), topic) == 0)
            return;
    rd_kafka_topic_t *t = rd_kafka_topic_new(p->rk, topic, NULL);
    if (t)
        p->held[p->nheld++] = t;
}

/* Queues one message; on a full queue serves callbacks and tries again.
 * Takes ownership of hdrs in every case. */
static int produce(nta_producer *p, const char *topic, const void *key, size_t klen,
                   const void *val, size_t vlen, int64_t ts_ms, rd_kafka_headers_t *hdrs,
                   uint64_t epoch_id, char *err, size_t errlen)
{
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)val, vlen),
            RD_KAFKA_V_TIMESTAMP(ts_ms > 0 ? ts_ms : 0),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE((void *)(uintptr_t)epoch_id),
            RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return 0;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            if (hdrs)
                rd_kafka_headers_destroy(hdrs);
            snprintf(err, errlen, "produce to %s: %s", topic, rd_kafka_err2str(e));
            return -1;
        }
        rd_kafka_poll(p->rk, 100);
    }
}

int nta_producer_send(nta_producer *p, const char *topic, const void *key, size_t klen,
                      const void *val, size_t vlen, int64_t ts_ms, const char *hdr_name,
                      const char *hdr_val, char *err, size_t errlen)
{
    rd_kafka_headers_t *hdrs = NULL;
    if (hdr_name) {
        hdrs = rd_kafka_headers_new(1);
        rd_kafka_header_add(hdrs, hdr_name, -1, hdr_val, -1);
    }
    epoch *cur = &p->epochs[p->nepochs - 1];
    uint64_t id = cur->id;
    if (produce(p, topic, key, klen, val, vlen, ts_ms, hdrs, id, err, errlen) != 0) {
        p->txn_failed = p->transactional;
        return -1;
    }
    /* produce() may have served callbacks, which never reorder the epoch array. */
    p->epochs[p->nepochs - 1].outstanding++;
    p->st.produced++;
    p->st.pending++;
    return 0;
}

void nta_producer_poll(nta_producer *p, int timeout_ms)
{
    rd_kafka_poll(p->rk, timeout_ms);
    retry *r = p->retries;
    p->retries = NULL;
    p->retries_tail = &p->retries;
    while (r) {
        retry *n = r->next;
        char err[256];
        rd_kafka_headers_t *h = r->hdrs;
        r->hdrs = NULL;
        if (produce(p, r->topic, r->key, r->klen, r->val, r->vlen, r->ts_ms, h, r->epoch, err,
                    sizeof err) != 0)
            snprintf(p->last_error, sizeof p->last_error, "%s", err);
        free_retry(r);
        r = n;
    }
}

uint64_t nta_producer_close_epoch(nta_producer *p)
{
    uint64_t closed = p->epochs[p->nepochs - 1].id;
    /* Drop finished epochs from the front so the FIFO stays short. */
    size_t k = 0;
    while (k < p->nepochs - 1 && p->epochs[k].outstanding == 0)
        k++;
    if (k) {
        memmove(p->epochs, p->epochs + k, (p->nepochs - k) * sizeof(epoch));
        p->nepochs -= k;
    }
    if (p->nepochs == p->cap) {
        epoch *ne = realloc(p->epochs, p->cap * 2 * sizeof(epoch));
        if (ne == NULL)
            abort();
        p->epochs = ne;
        p->cap *= 2;
    }
    p->epochs[p->nepochs++] = (epoch){p->next_id++, 0};
    return closed;
}

int nta_producer_epoch_done(nta_producer *p, uint64_t id)
{
    for (size_t i = 0; i < p->nepochs && p->epochs[i].id <= id; i++)
        if (p->epochs[i].outstanding)
            return 0;
    return 1;
}

int nta_producer_txn_failed(const nta_producer *p) { return p->txn_failed; }

/* Aborts the open transaction and begins the next. Returns NTA_TXN_ABORTED,
 * or NTA_TXN_FATAL if even that failed. */
static nta_txn_result abort_and_begin(nta_producer *p, char *err, size_t errlen)
{
    rd_kafka_error_t *e = retry_then_begin(p, rd_kafka_abort_transaction, 30, 2000);
    if (e != NULL) {
        error_text(e, "abort transaction", err, errlen);
        rd_kafka_error_destroy(e);
        return NTA_TXN_FATAL;
    }
    p->txn_failed = p->offsets_sent = p->st.paused = 0;
    p->st.aborted++;
    return NTA_TXN_ABORTED;
}

nta_txn_result nta_producer_commit(nta_producer *p, const rd_kafka_topic_partition_list_t *offsets,
                                   const rd_kafka_consumer_group_metadata_t *group_md,
                                   int timeout_ms, char *err, size_t errlen)
{
    rd_kafka_error_t *e = NULL;
    const char *what = "commit transaction";
    if (p->txn_failed) {
        nta_txn_result r = abort_and_begin(p, err, errlen);
        if (r == NTA_TXN_ABORTED)
            snprintf(err, errlen, "transaction aborted: %s", p->last_error);
        return r;
    }
    if (!p->offsets_sent && offsets && offsets->cnt) {
        what = "send offsets to transaction";
        e = rd_kafka_send_offsets_to_transaction(p->rk, offsets, group_md, timeout_ms);
    }
    if (e == NULL) {
        p->offsets_sent = 1;
        what = "commit transaction";
        e = rd_kafka_commit_transaction(p->rk, timeout_ms);
    }
    if (e == NULL) {
        p->offsets_sent = 0;
        p->st.paused = 0;
        p->st.transactions++;
        if ((e = rd_kafka_begin_transaction(p->rk)) == NULL)
            return NTA_TXN_OK;
        what = "begin transaction";
    }
    error_text(e, what, err, errlen);
    snprintf(p->last_error, sizeof p->last_error, "%s", err);
    nta_txn_result r;
    if (rd_kafka_error_is_fatal(e))
        r = NTA_TXN_FATAL;
    else if (rd_kafka_error_txn_requires_abort(e))
        r = abort_and_begin(p, err, errlen) == NTA_TXN_FATAL ? NTA_TXN_FATAL : NTA_TXN_ABORTED;
    else if (rd_kafka_error_is_retriable(e))
        r = NTA_TXN_RETRY;
    else
        r = NTA_TXN_FATAL;
    rd_kafka_error_destroy(e);
    p->st.paused = r == NTA_TXN_RETRY;
    return r;
}

void nta_producer_get_stats(const nta_producer *p, nta_producer_stats *out) { *out = p->st; }

const char *nta_producer_last_error(const nta_producer *p) { return p->last_error; }
