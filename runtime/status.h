/* The one-line live status on a terminal: rate in, lag, windows emitted,
 * late and bad records. Off a terminal it prints a line every 10 s only when
 * verbose, so logs stay readable. */
#ifndef NTA_STATUS_H
#define NTA_STATUS_H

#include <stdint.h>

typedef struct nta_status_line {
    int tty, verbose;
    int64_t last_us, last_full_us;
    uint64_t last_in;
    double rate;
    int shown; /* a live line is on screen and needs a newline before other output */
} nta_status_line;

typedef struct nta_status_values {
    uint64_t records_in, results_out, late, bad, script_errors;
    int64_t lag; /* -1 = unknown */
    uint64_t out_pending;
    const char *note; /* e.g. the last delivery error, or NULL */
} nta_status_values;

void nta_status_init(nta_status_line *s, int verbose, int64_t now_us);
/* Redraws at most every 500 ms (force: now). */
void nta_status_update(nta_status_line *s, int64_t now_us, const nta_status_values *v, int force);
/* Ends the live line so other output starts on a fresh line. */
void nta_status_done(nta_status_line *s);

#endif
