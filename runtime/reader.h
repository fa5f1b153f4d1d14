/* Readers: traffic files in, nta_record values out, one at a time.
 *
 * A reader turns a packet capture (pcap or pcapng, through libpcap) or a flow
 * log (Zeek conn.log as JSON lines or TSV, CICFlowMeter CSV, goflow2 or nta
 * JSON lines) into the same nta_record the Kafka decoders produce, so a file
 * can be replayed into a pipeline or published to Kafka.
 *
 * Errors: a file that is bad or cut short stops the reader with an error
 * naming the file and the position (line, or packet and byte offset); the
 * records returned before it stand. Packets that are not IP, or whose headers
 * the capture's snap length cut, are not errors: they are counted and skipped.
 *
 * Captures: by default one record per packet (ts = the packet's time, bytes =
 * the IP total length as flow exporters count it). With flows set, packets
 * are aggregated into unidirectional flow records per 5-tuple with active and
 * idle timeouts, as NetFlow/IPFIX exporters build them; a flow's record has
 * ts = the time of its last packet (the flow end, like the goflow2 decoder's
 * event time) and the OR of the TCP flags of its packets. Flow records come
 * out in ts order with memory bounded by the flow table (see reader_pcap.c). */
#ifndef NTA_READER_H
#define NTA_READER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "record.h"

typedef enum nta_reader_format {
    NTA_READ_AUTO = 0, /* by content: pcap magic, Zeek header or keys, CIC header, JSON */
    NTA_READ_PCAP,     /* pcap or pcapng */
    NTA_READ_ZEEK,     /* Zeek conn.log, JSON lines or TSV with #fields */
    NTA_READ_CIC,      /* CICFlowMeter CSV with its header line */
    NTA_READ_GOFLOW2,  /* goflow2 JSON lines */
    NTA_READ_JSON,     /* nta's JSON records (or goflow2), one per line: nta_decode auto */
    NTA_READ__COUNT
} nta_reader_format;

/* "auto", "pcap", "zeek", "cic", "goflow2", "json"; -1 cast if unknown. */
nta_reader_format nta_reader_format_by_name(const char *name);
const char *nta_reader_format_name(nta_reader_format f);

typedef struct nta_reader_opts {
    nta_reader_format format;
    int flows;                 /* captures: flow records instead of one per packet */
    int64_t active_timeout_ms; /* a flow longer than this is exported and restarted (60 s) */
    int64_t idle_timeout_ms;   /* a flow without packets for this long is exported (15 s) */
    size_t max_flows;          /* flow table limit: beyond it the least recently seen
                                  flow is exported early (default 1,000,000) */
    /* With flows set, nta_reader_open* reject max_flows outside 1..INT32_MAX/2
     * and timeouts outside 1 ms..366 days. */
} nta_reader_opts;

void nta_reader_opts_init(nta_reader_opts *o);

typedef struct nta_reader_stats {
    uint64_t units;          /* packets or lines read */
    uint64_t records;        /* records returned */
    uint64_t skipped;        /* packets that are not IPv4/IPv6, and comment/header lines */
    uint64_t truncated;      /* packets whose IP or transport header the snap length cut */
    uint64_t fragments;      /* non-first IP fragments */
    uint64_t fragments_unmatched; /* ... whose first fragment was not seen: ports 0 */
    uint64_t flows_evicted;  /* flows exported early because the table was full */
} nta_reader_stats;

typedef struct nta_reader nta_reader;

/* Opens the file at path. Returns NULL with "path: why" in err. */
nta_reader *nta_reader_open(const char *path, const nta_reader_opts *o, char *err,
                            size_t errlen);

/* Reads from an open stream, which the reader takes ownership of (it is
 * closed by nta_reader_close, also on failure here). name labels errors.
 * The format must be given: a stream cannot be rewound after sniffing it. */
nta_reader *nta_reader_open_stream(FILE *f, const char *name, const nta_reader_opts *o,
                                   char *err, size_t errlen);

/* The next record into *out. Returns 1 for a record, 0 at the end of the
 * input, -1 on an error with "name: position: what" in err (after which the
 * reader returns -1 again with the same message). */
int nta_reader_next(nta_reader *r, nta_record *out, char *err, size_t errlen);

/* The format being read (auto resolved). */
nta_reader_format nta_reader_get_format(const nta_reader *r);
const nta_reader_stats *nta_reader_get_stats(const nta_reader *r);

void nta_reader_close(nta_reader *r);

#endif
