/* The dashboard's store: what the pipeline publishes (window results, alerts,
 * reloads, a status snapshot every second), kept for the HTTP threads.
 *
 * Threads: exactly one writer, the pipeline thread (nta_hub_publish,
 * nta_hub_status, nta_hub_service_reload), and any number of readers, the
 * HTTP threads. The writer never waits for a reader: it appends under a mutex
 * that readers hold only to copy bounded chunks, and it never blocks on a
 * condition variable. Readers wait on one (with a timeout) for new frames and
 * for reload outcomes. Frames reach readers when the writer releases them:
 * at once for most, but a window close's results at its first result, in
 * batches while it is emitted, and the rest when it is complete.
 *
 * Every event becomes a frame with a sequence number in one ring. The ring is
 * the history (frames younger than history_ms, at most history_bytes; the
 * oldest are evicted and counted) and the push backlog at once: each push
 * client holds a cursor into it, so a client's backlog is bounded by the ring
 * and by max_client_lag frames; a client that falls further behind is dropped
 * rather than waited for.
 *
 * A "wide" window (more than 100 results per close, e.g. keyed by host)
 * keeps only its latest close in the history: the results of its earlier
 * closes are freed when the next one begins. Push clients get, instead of
 * every result of a wide window, one "top" frame per close once it is
 * complete: the results that rank in the first 20 by any of its aggregates
 * (what a page shows), so fifty pages cost the pipeline little. A client
 * that asks for it (full) gets every result as well.
 *
 * The hub also keeps the counters of GET /metrics, computed from the events
 * and the pipeline's statistics, so a scrape never touches pipeline state. */
#ifndef NTA_HUB_H
#define NTA_HUB_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "conf.h"
#include "kafka.h"
#include "pipeline.h"

typedef struct nta_hub_conf {
    int64_t history_ms;    /* keep frames this long (wall time); > 0 */
    size_t history_bytes;  /* and at most this much frame text */
    size_t max_client_lag; /* frames a live push client may fall behind */
} nta_hub_conf;

typedef enum nta_frame_kind {
    NTA_FRAME_WINDOW,
    NTA_FRAME_ALERT,
    NTA_FRAME_RELOAD,
    NTA_FRAME_STATUS,
    NTA_FRAME_TOP, /* the leading results of a wide window's close */
    NTA_FRAME__COUNT
} nta_frame_kind;

/* "window", "alert", "reload", "status", "top": the SSE event names. */
const char *nta_frame_kind_name(nta_frame_kind k);

typedef struct nta_hub nta_hub;

/* Returns NULL when out of memory. */
nta_hub *nta_hub_create(const nta_hub_conf *conf);
/* Readers must be gone (nta_hub_stop, then their threads joined). */
void nta_hub_destroy(nta_hub *h);
/* Wakes every waiting reader; nta_hub_next returns -2 from then on. */
void nta_hub_stop(nta_hub *h);

/* ---- pipeline thread ---- */

/* An nta_tap_fn: copies the event (valid only during the call) into the ring.
 * A window result gets "closed_at_us" (wall clock, microseconds) spliced in
 * front of its fields: the moment its window closed, i.e. when the first
 * result of that window and end reached the tap. NTA_EVENT_CLOSED completes
 * the close as nta_hub_flush does, so a wide window's "top" frame goes out
 * as soon as its last result is in. */
void nta_hub_publish(void *hub, nta_event_kind kind, const char *json, size_t len);

/* What the runner knows besides the pipeline's own statistics. */
typedef struct nta_hub_source {
    const nta_pipeline *p;
    const nta_pipeline_conf *conf;
    const char *mode;                /* "local" or "kafka" */
    int64_t lag;                     /* consumer lag; -1 unknown or not applicable */
    const nta_producer_stats *prod;  /* NULL without a producer */
    const char *note;                /* last delivery or consumer error, or NULL */
    const char *rules_json;          /* the rules engine's status, or NULL: none loaded */
} nta_hub_source;

/* Completes the window close being emitted, if any (its "top" frame goes
 * out), and releases every frame published so far. The runner calls it once
 * per loop iteration, after feeding and ticking: for results no
 * NTA_EVENT_CLOSED follows (those of nta_pipeline_flush at the end of input). */
void nta_hub_flush(nta_hub *h);

/* Publishes a status frame and refreshes the metrics counters from src.
 * now_us: wall clock. */
void nta_hub_status(nta_hub *h, const nta_hub_source *src, int64_t now_us);

/* Runs reload (on the calling, pipeline, thread) if an HTTP thread asked for
 * one since the last call, and hands its outcome to every waiting requester.
 * reload writes a JSON object into out and returns 0 on success, -1 when the
 * reload failed and the old rules stay. */
typedef int (*nta_hub_reload_fn)(void *ctx, char *out, size_t len);
void nta_hub_service_reload(nta_hub *h, nta_hub_reload_fn reload, void *ctx);

/* Whether nta_hub_service_reload will be called with a reload function. */
void nta_hub_set_reload_available(nta_hub *h, int available);

/* ---- HTTP threads ---- */

/* A push client's position in the ring. */
typedef struct nta_hub_cursor {
    uint64_t next; /* sequence number of the next frame to send; 0 = the oldest kept */
    int live;      /* has caught up with the newest frame once (history replayed) */
    int full;      /* every result of wide windows too, not only their "top" frames */
} nta_hub_cursor;

/* Push: appends to out, as server-sent events, the frames from c->next on (at
 * most about max_bytes), waiting up to timeout_ms for one to arrive, and
 * advances c. For every window frame that was the first of its window's
 * close, its close time is stored in close_us[] (up to nclose_max); *nclose
 * says how many. Returns the number of frames appended (0 after a timeout),
 * -1 when a live client fell more than max_client_lag behind or off the ring
 * (drop it), -2 once the hub is stopping. */
int nta_hub_next(nta_hub *h, nta_hub_cursor *c, nta_buf *out, size_t max_bytes, int timeout_ms,
                 int64_t *close_us, int nclose_max, int *nclose);

/* Moves c past the newest frame: only frames published from now on. */
void nta_hub_cursor_newest(nta_hub *h, nta_hub_cursor *c);

/* Push clients: counts a client in (returns 0) unless max are connected (-1). */
int nta_hub_client_enter(nta_hub *h, int max);
void nta_hub_client_leave(nta_hub *h, int dropped);
/* Records how long frames took from window close to a push client. */
void nta_hub_observe_push(nta_hub *h, const int64_t *close_us, int n, int64_t now_us);

/* {"window":NAME|null,"results":[...],"truncated":bool}: window results with
 * window end > since_ms (event time), of one window (name non-NULL) or all,
 * the newest limit of them. */
void nta_hub_windows_json(nta_hub *h, const char *name, int64_t since_ms, size_t limit,
                          nta_buf *out);
/* {"alerts":[...]}: alert events with window end > since_ms, oldest first. */
void nta_hub_alerts_json(nta_hub *h, int64_t since_ms, nta_buf *out);
/* The latest status frame (an object with "type":"status"). */
void nta_hub_status_json(nta_hub *h, nta_buf *out);
/* {"engine":bool,"status":...,"last_reload":...}. */
void nta_hub_rules_json(nta_hub *h, nta_buf *out);
/* The Prometheus text exposition format, version 0.0.4. */
void nta_hub_metrics(nta_hub *h, nta_buf *out);

/* Asks the pipeline thread for a reload and waits up to timeout_ms for its
 * outcome, written as JSON into out. Returns 0 reloaded, 1 the reload
 * failed, -1 timed out, -2 no rules engine can reload. */
int nta_hub_reload(nta_hub *h, int timeout_ms, nta_buf *out);

#endif
