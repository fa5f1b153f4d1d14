/* The dashboard server inside nta-run: civetweb serving web/ (the page), a
 * push channel of server-sent events, a JSON API and Prometheus metrics.
 *
 * Threads: the runner calls everything here on the pipeline thread. The
 * pipeline's tap hands events to the hub (hub.h), which the HTTP threads
 * read; nta_http_tick publishes a status snapshot every second and runs a
 * reload that POST /api/reload asked for. The pipeline never waits for an
 * HTTP thread or a browser.
 *
 * Security: a server bound to a loopback address (127.0.0.0/8, ::1) needs no
 * token, and then accepts only loopback Host headers (a page on another site
 * can not reach it through DNS rebinding). Any other address needs a token,
 * checked on every API, push, metrics and reload request (Authorization:
 * Bearer, or ?token= for EventSource). Requests carrying an Origin other than
 * the server's own are refused, so another site's page can neither read the
 * API nor POST a reload. Only files directly in web/ and uPlot's dist files
 * are served; everything else is 404. */
#ifndef NTA_HTTP_H
#define NTA_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "kafka.h"
#include "pipeline.h"

#define NTA_HTTP_DEFAULT_LISTEN "127.0.0.1:8080"

typedef struct nta_http_opts {
    const char *listen;   /* "ADDR:PORT" or "[V6ADDR]:PORT"; NULL: no server */
    const char *token;    /* NULL: none */
    const char *web_root; /* NULL: the source tree's web/ (NTA_WEB_DIR) */
    int64_t history_ms;   /* history kept for new pages; 0: 15 minutes */
} nta_http_opts;

/* The rules engine's side, both called on the pipeline thread.
 * reload: the all-or-nothing reload; writes its outcome as a JSON object
 *   ({"ok":bool,"error":"...","generation":N}) into result_json and returns
 *   0 when the new rules are active, -1 when the old ones stay.
 * status_json: writes the rules' status as a JSON object into out:
 *   {"generation":N,"rules":[{"name":..,"window":..,"severity":..,
 *   "errors":N,"quarantined":bool,"error":"..."}],...}; returns its length,
 *   or -1 when it does not fit or there is nothing to report.
 * Either may be NULL: the page then shows that no rules are loaded, and
 * POST /api/reload answers 503. */
typedef struct nta_http_rules {
    int (*reload)(void *ctx, char *result_json, size_t len);
    int (*status_json)(void *ctx, char *out, size_t len);
    void *ctx;
} nta_http_rules;

/* Checks the options before anything starts: the address parses, and an
 * address off loopback has a token. Returns 0, or -1 with err. */
int nta_http_opts_check(const nta_http_opts *o, char *err, size_t errlen);

/* Reads a token from the first line of path (surrounding blanks dropped)
 * into token[len]. Returns 0, or -1 with err. */
int nta_http_read_token_file(const char *path, char *token, size_t len, char *err,
                             size_t errlen);

/* Durations as nta_parse_duration reads them ("15m"); -1 if not one. */
int64_t nta_http_parse_history(const char *s);

typedef struct nta_http nta_http;

/* Starts the server for pipeline p and sets p's tap. When it can not listen
 * (port busy) it says so on stderr and returns NULL: the pipeline runs on
 * without a dashboard. o == NULL or o->listen == NULL: returns NULL quietly.
 * On success prints the page's address on stderr. mode: "local" or "kafka". */
nta_http *nta_http_attach(const nta_http_opts *o, nta_pipeline *p,
                          const nta_pipeline_conf *conf, const char *mode);

/* Copies r: from the next tick on, status and reload go through it. */
void nta_http_set_rules(nta_http *s, const nta_http_rules *r);

/* Once per loop iteration of the runner (NULL-safe, cheap between status
 * snapshots). lag: consumer lag, -1 when unknown or none; prod: NULL without
 * a producer; note: the last error the status line shows, or NULL. */
void nta_http_tick(nta_http *s, int64_t lag, const nta_producer_stats *prod, const char *note,
                   int64_t now_us);

/* Removes the tap, closes every connection, stops the server (NULL-safe). */
void nta_http_detach(nta_http *s);

#endif
