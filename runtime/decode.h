/* Decoders: one message payload in, one nta_record out, no allocation.
 *
 * Every wire format maps onto the same nta_record. A decoder never builds Lua
 * values and never allocates per message; a decoder object holds only its
 * configuration (and, for CSV, the column list learned from a header). */
#ifndef NTA_DECODE_H
#define NTA_DECODE_H

#include "record.h"

typedef enum nta_format {
    NTA_FMT_AUTO = 0,
    NTA_FMT_JSON,
    NTA_FMT_CSV,
    NTA_FMT_GOFLOW2,
} nta_format;

/* Why a message was rejected; the name of each is the counter label and the
 * value of the DLQ header "nta-error". */
typedef enum nta_decode_status {
    NTA_DEC_OK = 0,
    NTA_DEC_EMPTY,         /* zero-length or all-whitespace payload */
    NTA_DEC_SKIP,          /* a CSV header line: consumed, not a record, not an error */
    NTA_DEC_BAD_JSON,      /* not well-formed JSON, or not a flat object */
    NTA_DEC_BAD_CSV,       /* wrong column count or unparsable CSV */
    NTA_DEC_MISSING_FIELD, /* no source or destination address */
    NTA_DEC_BAD_ADDRESS,   /* an address that is not IPv4/IPv6 text */
    NTA_DEC_BAD_NUMBER,    /* a counter or port that is not a non-negative integer in range */
    NTA_DEC_BAD_TIME,      /* a timestamp that cannot be read */
    NTA_DEC_BAD_PROTO,     /* a protocol that is neither a known name nor 0..255 */
    NTA_DEC_UNKNOWN_FORMAT,/* auto could not tell the format */
    NTA_DEC__COUNT
} nta_decode_status;

const char *nta_decode_status_name(nta_decode_status s);

nta_format nta_format_by_name(const char *name); /* -1 cast if unknown */
const char *nta_format_name(nta_format f);

#define NTA_CSV_MAX_COLS 32

typedef struct nta_decoder {
    nta_format format;
    /* CSV column map: cols[i] is the field held by column i (NTA_F_NONE = ignore;
     * the pseudo-field NTA_CSV_TS marks a timestamp column). ncols == 0 means
     * "not configured": the default src_ip,dst_ip,bytes is used unless a header
     * line is seen first. */
    int cols[NTA_CSV_MAX_COLS];
    int ncols;
    int cols_from_header; /* the column map was learned from a header line */
    int cols_configured;  /* set by nta_decoder_set_columns: headers never override it */
    /* JSON objects are read by a single-pass scanner, and by jsmn only when
     * the scanner leaves one to it (text jsmn tolerates but JSON does not,
     * a NUL, unusual escapes, deep nesting, jsmn's token limit), with the
     * same result either way; json_fallbacks counts those. json_reference
     * = 1 sends every object to jsmn: the tests, the fuzz target and
     * bench/decode_bench.c compare the two readings with it. */
    int json_reference;
    uint64_t json_fallbacks;
} nta_decoder;

/* CSV pseudo-field for the event-time column. */
#define NTA_CSV_TS (-2)

void nta_decoder_init(nta_decoder *d, nta_format format);

/* Configures the CSV column list from names, e.g. {"ts","src_ip","dst_ip","bytes"}.
 * Accepts the same names and aliases as JSON keys; "-" or "" skips a column.
 * Returns 0, or -1 with an explanation in err (errlen bytes) for an unknown name. */
int nta_decoder_set_columns(nta_decoder *d, const char *const *names, int n,
                            char *err, size_t errlen);

/* Decodes one payload (not NUL-terminated) into *out, which it overwrites.
 * out->ts_ms is NTA_TS_NONE when the payload carried no time. */
nta_decode_status nta_decode(nta_decoder *d, const char *payload, size_t len,
                             nta_record *out);

/* 1 when decoding payload reads or changes d's state (a CSV line: the column
 * map a header line sets), so that it must be decoded in input order; 0 when
 * any copy of d decodes it the same, on any thread. */
int nta_decode_in_order(const nta_decoder *d, const char *payload, size_t len);

#endif
