/* The pipeline: messages in, decoded in C, aggregated into every declared
 * window, results out through a sink. It knows nothing of Kafka: the runner
 * feeds it messages (with their partition and offset, for the commit path)
 * or records (from an in-process generator) and gives it the wall clock.
 *
 * Watermark = highest event time seen - lateness. A window is emitted once,
 * when the watermark passes its end. When no record has arrived for
 * idle_timeout, event time is taken to advance with the wall clock, so the
 * last windows close without waiting for the next record. */
#ifndef NTA_PIPELINE_H
#define NTA_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "decode.h"
#include "offsets.h"
#include "rules.h"
#include "script.h"

/* Where output messages go (Kafka producer, or stdout). hdr_name may be NULL.
 * Returns 0, or -1 if the message could not be queued (counted as an output error). */
typedef struct nta_sink {
    int (*send)(void *ctx, const char *topic, const char *key, size_t klen, const char *val,
                size_t vlen, int64_t ts_ms, const char *hdr_name, const char *hdr_val);
    void *ctx;
} nta_sink;

typedef struct nta_pipeline_stats {
    uint64_t records_in;  /* messages or records offered */
    uint64_t records_ok;  /* decoded and aggregated (into at least one window) */
    uint64_t bad[NTA_DEC__COUNT];
    uint64_t bad_total;
    uint64_t late_records; /* late for at least one window */
    uint64_t results_out;
    uint64_t results_suppressed; /* already emitted before a restart */
    uint64_t results_unpublished; /* of windows declared publish = false */
    uint64_t output_errors;
    uint64_t script_errors; /* on_window failures */
    uint64_t alerts_out;
    uint64_t dropped_nomem; /* records a window could not take: out of memory */
    uint64_t reloads_ok, reloads_failed;
    int64_t max_event_ms;   /* INT64_MIN before the first record */
    int64_t watermark_ms;   /* INT64_MIN before the first record */
} nta_pipeline_stats;

typedef struct nta_pipeline nta_pipeline;

/* What the pipeline publishes, for observers such as the dashboard. */
typedef enum nta_event_kind {
    NTA_EVENT_WINDOW, /* a window result: the JSON of output.h */
    NTA_EVENT_ALERT,  /* an alert raised, ongoing or cleared */
    NTA_EVENT_RELOAD, /* the outcome of a rules reload */
    NTA_EVENT_CLOSED, /* every result of a window close is out; json is the
                       * window's name (not JSON) */
} nta_event_kind;

/* Called on the pipeline's thread for every event, with JSON that is valid
 * only during the call. Must not block: copy and hand over. */
typedef void (*nta_tap_fn)(void *ctx, nta_event_kind kind, const char *json, size_t len);

/* conf must outlive the pipeline; script (may be NULL) receives on_window
 * calls. Returns NULL with err. */
nta_pipeline *nta_pipeline_create(const nta_pipeline_conf *conf, nta_script *script,
                                  nta_sink sink, char *err, size_t errlen);
void nta_pipeline_destroy(nta_pipeline *p);

/* One input message. msg_ts_ms stamps records without a time of their own.
 * key may be NULL. partition < 0 means "not from Kafka" (no offset tracking). */
void nta_pipeline_feed(nta_pipeline *p, int32_t partition, int64_t offset, const char *key,
                       size_t klen, const char *payload, size_t len, int64_t msg_ts_ms);

/* The same for a message decoded elsewhere (predecode.h) with a copy of
 * nta_pipeline_decoder(p): s and rec are what nta_decode returned. */
void nta_pipeline_feed_decoded(nta_pipeline *p, int32_t partition, int64_t offset,
                               const char *key, size_t klen, const char *payload, size_t len,
                               int64_t msg_ts_ms, nta_decode_status s, const nta_record *rec);
const nta_decoder *nta_pipeline_decoder(const nta_pipeline *p);

/* One already-decoded record (in-process source). */
void nta_pipeline_feed_record(nta_pipeline *p, const nta_record *r);

/* Advances the watermark and emits what it closes. now_ms is the wall clock. */
void nta_pipeline_tick(nta_pipeline *p, int64_t now_ms);

/* Sets the one observer (NULL to remove). */
void nta_pipeline_set_tap(nta_pipeline *p, nta_tap_fn fn, void *ctx);

/* After a restart, a rebalance or an aborted transaction: windows of this
 * partition's records ending at or before wm were emitted (and committed)
 * before, so rebuilding them from re-read records must not emit them again
 * (nor show them to the rules). Results mixing records of several partitions
 * use the smallest watermark set. */
void nta_pipeline_set_resume_watermark(nta_pipeline *p, int32_t partition, int64_t wm);

/* Watermarks over Kafka partitions. The watermark follows the oldest of the
 * newest event times of the assigned partitions, so that whether a record is
 * late depends only on the order within its own partition, never on how the
 * consumer interleaves partitions (a restart that re-reads a backlog decides
 * exactly as the first run did). A partition that has been at its end
 * (nta_pipeline_partition_at_end) for idle_timeout stops holding the
 * watermark back until it has records again; with every partition idle the
 * newest event time of all counts. Without assigned partitions (input not
 * from Kafka) the newest event time counts.
 * assigned: 1 on assignment (the partition holds the watermark back until
 * its first record), 0 on revocation. */
void nta_pipeline_partition(nta_pipeline *p, int32_t partition, int assigned);
void nta_pipeline_partition_at_end(nta_pipeline *p, int32_t partition);
/* The partition has records to read again (its end moved past what was read,
 * or the broker went away and nothing is known). */
void nta_pipeline_partition_behind(nta_pipeline *p, int32_t partition);

/* Forgets every open window, the tracked input offsets, the watermark and
 * the resume watermarks (rules, baselines and counters stay): the caller is
 * about to read its input again from committed offsets. */
void nta_pipeline_reset(nta_pipeline *p);

/* End of input: emits every window still holding records. */
void nta_pipeline_flush(nta_pipeline *p);

const nta_pipeline_stats *nta_pipeline_get_stats(const nta_pipeline *p);
nta_offsets *nta_pipeline_offsets(nta_pipeline *p);

/* Where a reload reads the pipeline script again, and the rule paths given
 * on the command line (arguments and paths must outlive the pipeline). */
void nta_pipeline_set_origin(nta_pipeline *p, const char *path, int argc, char *const *argv,
                             char *const *extra_rules, int nextra_rules);

/* Reloads the pipeline script and its rule files, all or nothing: a fresh
 * Lua state, compile, run the top level, check every rule against the
 * windows, dry-run every rule on the latest result of its window; only if all
 * of that succeeds are the new rules and on_window swapped in. Windows whose
 * definition is unchanged keep their state; changed ones restart; input,
 * output and lateness stay as they are. Call between records (at a batch
 * boundary). Publishes a {"type":"reload"} record and returns 0 or -1; the
 * record's JSON stays valid until the next reload. */
int nta_pipeline_reload(nta_pipeline *p, const char **result_json, size_t *result_len);

nta_rules *nta_pipeline_rules(nta_pipeline *p);
uint64_t nta_pipeline_generation(const nta_pipeline *p);

/* Per-window counters, index 0..nwindows-1 in declaration order. */
int nta_pipeline_windows(const nta_pipeline *p);
const nta_window *nta_pipeline_window(const nta_pipeline *p, int i);

#endif
