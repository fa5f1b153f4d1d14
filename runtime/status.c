#include "status.h"

#include <stdio.h>
#include <unistd.h>

void nta_status_init(nta_status_line *s, int verbose, int64_t now_us)
{
    *s = (nta_status_line){.tty = isatty(STDERR_FILENO), .verbose = verbose};
    s->last_us = s->last_full_us = now_us;
}

static void fmt_count(char *buf, size_t n, double v)
{
    if (v >= 1e6)
        snprintf(buf, n, "%.2fM", v / 1e6);
    else if (v >= 1e4)
        snprintf(buf, n, "%.1fk", v / 1e3);
    else
        snprintf(buf, n, "%.0f", v);
}

void nta_status_update(nta_status_line *s, int64_t now_us, const nta_status_values *v, int force)
{
    int64_t dt = now_us - s->last_us;
    if (!force && dt < 500000)
        return;
    if (dt > 0)
        s->rate = (double)(v->records_in - s->last_in) * 1e6 / (double)dt;
    s->last_us = now_us;
    s->last_in = v->records_in;
    if (!s->tty && !(s->verbose && (force || now_us - s->last_full_us >= 10000000)))
        return;
    s->last_full_us = now_us;
    char rate[32], in[32], lag[32] = "?";
    fmt_count(rate, sizeof rate, s->rate);
    fmt_count(in, sizeof in, (double)v->records_in);
    if (v->lag >= 0)
        fmt_count(lag, sizeof lag, (double)v->lag);
    fprintf(stderr,
            "%s%s rec/s | in %s | lag %s | results %llu | late %llu | bad %llu%s%s%s%s",
            s->tty ? "\r" : "", rate, in, lag, (unsigned long long)v->results_out,
            (unsigned long long)v->late, (unsigned long long)v->bad,
            v->script_errors ? " | script errors " : "", v->script_errors ? "yes" : "",
            v->note && v->note[0] ? " | " : "", v->note ? v->note : "");
    fputs(s->tty ? "\033[K" : "\n", stderr);
    s->shown = s->tty;
}

void nta_status_done(nta_status_line *s)
{
    if (s->shown)
        fputc('\n', stderr);
    s->shown = 0;
}
