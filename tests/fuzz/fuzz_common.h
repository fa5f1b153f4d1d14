/* Shared by the reader fuzz targets: read a whole in-memory file with one
 * reader configuration, as nta-run --replay would. */
#ifndef NTA_FUZZ_COMMON_H
#define NTA_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>

#include "reader.h"

/* Reads every record of data[0..size) in format f until the end or the
 * first error; the checks are the sanitizers' (and the stats must add up). */
static inline void fuzz_read_all(const uint8_t *data, size_t size, const nta_reader_opts *o)
{
    /* fmemopen rejects a zero-length buffer; an empty file is one byte of
     * nothing to these readers anyway. */
    if (size == 0)
        return;
    FILE *f = fmemopen((void *)data, size, "rb");
    if (f == NULL)
        abort();
    char err[512];
    nta_reader *r = nta_reader_open_stream(f, "fuzz", o, err, sizeof err);
    if (r == NULL)
        return;
    nta_record rec;
    uint64_t n = 0;
    while (nta_reader_next(r, &rec, err, sizeof err) == 1)
        n++;
    if (nta_reader_get_stats(r)->records != n)
        abort();
    nta_reader_close(r);
}

#endif
