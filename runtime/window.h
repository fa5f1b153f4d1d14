/* Event-time windows: tumbling and sliding (hopping), aligned to the epoch as
 * Spark's window(ts, size, slide) aligns them: window k covers
 * [k*slide, k*slide + size). Keyed by up to two record fields, or unkeyed.
 *
 * Sliding windows are built from panes of gcd(size, slide) milliseconds: a
 * record updates exactly one pane (O(1) per record whatever size/slide is),
 * and a window is the merge of its size/pane panes, done once per window:
 * the panes it shares with the window emitted before it are final from that
 * emission on and are merged while records arrive, a few entries per record,
 * so its close merges only its newest panes (and streams its results while
 * it does). A pane is freed once no unemitted window needs it.
 *
 * Late data: a record whose time is before the end of the last emitted window
 * of this definition (it would belong to a window already emitted) is dropped
 * for this window and counted as late. Records at or after that are never late.
 *
 * Memory: each pane holds at most spec.max_keys keys; a record for a new key
 * past that limit is counted as overflow and added to the reserved key
 * "(other)" so totals stay right. The sketches of distinct, topk and
 * quantile aggregates (one per pane and key) are bounded by their own
 * limits (hll.h, topk.h, quantile.h). */
#ifndef NTA_WINDOW_H
#define NTA_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#include "quantile.h"
#include "record.h"
#include "topk.h"

#define NTA_WINDOW_NAME_MAX 64
#define NTA_WINDOW_MAX_KEYS 2
#define NTA_WINDOW_MAX_AGGS 16

typedef enum nta_agg_kind {
    NTA_AGG_SUM,
    NTA_AGG_MIN,
    NTA_AGG_MAX,
    NTA_AGG_MEAN,
    NTA_AGG_DISTINCT,
    NTA_AGG_TOPK,     /* heavy hitters of field (runtime/topk.h) */
    NTA_AGG_QUANTILE, /* quantiles of a numeric field (runtime/quantile.h) */
    NTA_AGG__COUNT
} nta_agg_kind;

#define NTA_TOPK_MAX_K 100
#define NTA_AGG_MAX_QUANTILES 8

/* An aggregate. Only kind and field matter for sum, min, max, mean and
 * distinct: a zeroed spec with those two set is complete. */
typedef struct nta_agg_spec {
    nta_agg_kind kind;
    nta_field field; /* topk: the item field (any field) */
    /* topk: the weight of a record, NTA_F_BYTES or NTA_F_PACKETS, or
     * NTA_F_NONE for 1 (by count); the items reported, 1..NTA_TOPK_MAX_K;
     * the counters kept per pane and key, 0 = max(4k, 64) (more counters,
     * smaller error: at most total/(capacity + 1)). */
    nta_field by;
    int k;
    int capacity;
    /* quantile: the quantiles, each in (0, 1) with at most 4 decimals
     * (0.999 is p99_9), no two equal. */
    int nq;
    double q[NTA_AGG_MAX_QUANTILES];
} nta_agg_spec;

/* A record filter: the record's field must equal one of values (numeric
 * fields) or lie in one of nets (address fields); with negate, none. */
#define NTA_FILTER_MAX_VALUES 8
typedef struct nta_filter {
    nta_field field;
    int negate;
    int nvalues;
    uint64_t values[NTA_FILTER_MAX_VALUES];
    nta_prefix nets[NTA_FILTER_MAX_VALUES];
} nta_filter;

#define NTA_WINDOW_MAX_FILTERS 4

typedef struct nta_window_spec {
    char name[NTA_WINDOW_NAME_MAX];
    int64_t size_ms;  /* > 0 */
    int64_t slide_ms; /* > 0, <= size_ms; == size_ms for tumbling */
    nta_field key[NTA_WINDOW_MAX_KEYS];
    int nkeys; /* 0 = unkeyed: one result per window, key "" */
    nta_agg_spec aggs[NTA_WINDOW_MAX_AGGS];
    int naggs; /* the record count is always computed, not listed here */
    size_t max_keys; /* per pane, > 0 */
    /* Only records matching every filter enter this window (checked by the
     * pipeline before nta_window_add; the engine itself does not filter). */
    nta_filter where[NTA_WINDOW_MAX_FILTERS];
    int nwhere;
    /* publish = false: results go to the rules and on_window only, not to
     * the output topic or the dashboard (the pipeline's concern, like
     * where). For detection windows with a result per host pair. */
    int unpublished;
} nta_window_spec;

/* "sum" -> NTA_AGG_SUM ... ("topk", "quantile"); -1 if unknown. */
int nta_agg_kind_by_name(const char *name);
const char *nta_agg_kind_name(nta_agg_kind k);

/* The name of aggregate a in results: "sum_bytes", "topk_bytes_src_ip"
 * (topk_<by>_<field>, by = bytes, packets or count); for a quantile aggregate
 * the name of its i-th quantile, "p50_bytes", "p99_9_bytes" (pNN with the
 * percentage's decimals after '_'). Writes at most len bytes, NUL-terminated;
 * returns the length. i is ignored for other kinds. */
size_t nta_agg_result_name(const nta_agg_spec *a, int i, char *buf, size_t len);

/* One aggregate's value in a result: u for sum/min/max/distinct, d for mean;
 * for topk the window's merged summary (nta_topk_items, nta_topk_total), for
 * quantile its merged sketch (nta_qsketch_quantile): both owned by the
 * window, valid only during the emit callback, and NULL if memory ran out
 * while merging the window's panes (read as empty). */
typedef union nta_agg_value {
    uint64_t u;
    double d;
    const nta_topk *topk;
    const nta_qsketch *qs;
} nta_agg_value;

/* Text of a top-k item of field f ("10.0.0.1", "443"), as the key of a result
 * would be written, into buf (NTA_FIELD_TEXT_MAX bytes). Returns the length. */
size_t nta_agg_item_text(nta_field f, const nta_topk_item *it, char *buf);

/* A finished (window, key) result, valid only during the emit callback. */
typedef struct nta_result {
    const nta_window_spec *spec;
    int64_t start_ms, end_ms;
    /* Key fields as text, one per spec->key (NUL-terminated); for the overflow
     * bucket every entry is "(other)". */
    char key_text[NTA_WINDOW_MAX_KEYS][NTA_FIELD_TEXT_MAX];
    int is_other; /* the overflow bucket */
    /* The input partition all its records came from (nta_window_set_input),
     * -1 for records from no partition, -2 for records of several. */
    int32_t partition;
    uint64_t count;
    nta_agg_value values[NTA_WINDOW_MAX_AGGS]; /* parallel to spec->aggs */
} nta_result;

typedef void (*nta_emit_fn)(void *ctx, const nta_result *res);

typedef struct nta_window_stats {
    uint64_t added;     /* records aggregated */
    uint64_t late;      /* records dropped as late */
    uint64_t overflow;  /* records that went to "(other)" because of max_keys */
    uint64_t results;   /* (window, key) results emitted */
    uint64_t windows;   /* windows emitted (each with >= 1 result) */
    size_t open_panes;
    size_t open_keys;   /* keys summed over open panes */
    size_t bytes;       /* heap held by panes, keys and sketches */
} nta_window_stats;

typedef struct nta_window nta_window;

/* Checks a spec; returns 0, or -1 with a reason in err. */
int nta_window_spec_check(const nta_window_spec *spec, char *err, size_t errlen);

/* Copies spec. Returns NULL on a bad spec or out of memory. */
nta_window *nta_window_create(const nta_window_spec *spec);
void nta_window_destroy(nta_window *w);
const nta_window_spec *nta_window_spec_of(const nta_window *w);

/* Adds one record (r->ts_ms must be set). Returns 0 if aggregated, 1 if late
 * (or beyond +-2^61 ms of the epoch), -1 if memory ran out (dropped, not counted). */
int nta_window_add(nta_window *w, const nta_record *r);

/* Whether nta_window_add returns 1 (late) for a record of time ts, given
 * the window's nta_window_emitted_upto: a caller that lets another thread
 * add can tell without touching the window. */
#define NTA_WINDOW_TS_LIMIT ((int64_t)1 << 61)
static inline int nta_window_late(int64_t emitted_upto, int64_t ts_ms)
{
    return ts_ms < emitted_upto || ts_ms < -NTA_WINDOW_TS_LIMIT || ts_ms > NTA_WINDOW_TS_LIMIT;
}

/* Computes r's key and starts loading its place in the current pane, for
 * the nta_window_add(w, r) that must come next: a caller adding one record
 * to several windows prefetches for all of them first, so that their cache
 * misses overlap instead of following one another. */
void nta_window_prefetch(nta_window *w, const nta_record *r);

/* After an nta_window_add that returned 0: nta_window_last_end of the
 * record's time, without the division (a pane lies within one slide). */
int64_t nta_window_added_last_end(const nta_window *w);

/* Emits, in order of window end, every window with end <= watermark_ms that
 * holds at least one record, one callback per key; then frees panes no longer
 * needed. A window is emitted at most once. Returns the number of results. */
size_t nta_window_advance(nta_window *w, int64_t watermark_ms, nta_emit_fn fn, void *ctx);

/* Emits every window that still holds records (end of input). */
size_t nta_window_flush(nta_window *w, nta_emit_fn fn, void *ctx);

/* End of the last window that contains ts: once the watermark has passed
 * it, no window of this definition needs a record at ts any more. */
int64_t nta_window_last_end(const nta_window_spec *spec, int64_t ts_ms);

/* End of the last emitted window (INT64_MIN before the first). */
int64_t nta_window_emitted_upto(const nta_window *w);

/* The input partition of the records added from now on (< 0: none). Results
 * say which partition their records came from, so that after a restart or a
 * rebalance a partition's results can be told apart from another's. */
void nta_window_set_input(nta_window *w, int32_t partition);

void nta_window_get_stats(const nta_window *w, nta_window_stats *out);

#endif
