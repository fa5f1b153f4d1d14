/* Shared between reader.c (opening, format detection, the public calls) and
 * the per-format readers. Not part of the public API: include reader.h. */
#ifndef NTA_READER_IMPL_H
#define NTA_READER_IMPL_H

#include "reader.h"

struct nta_reader {
    char *name; /* owned copy, for error messages */
    nta_reader_format format;
    nta_reader_opts opts;
    nta_reader_stats st;
    int failed;
    char err[512];
    void *impl;
    /* 1 = a record in *out, 0 = end, -1 = error (set with nta_reader_fail). */
    int (*next)(nta_reader *r, nta_record *out);
    void (*close)(nta_reader *r);
};

/* Records the error as "name: <formatted>"; returns -1 for `return`. */
int nta_reader_fail(nta_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Each takes ownership of f (closed now on failure, else by r->close). They
 * set r->next, r->close and r->impl; return 0, or -1 after nta_reader_fail. */
int nta_reader_pcap_init(nta_reader *r, FILE *f);
int nta_reader_text_init(nta_reader *r, FILE *f);

#endif
