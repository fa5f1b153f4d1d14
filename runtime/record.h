/* The one traffic record every decoder produces and every window consumes.
 *
 * A record is a flat value type: no pointers, no allocation, so decoders can
 * fill one on the stack per message and the window engine can read fields by
 * enum without knowing which wire format the record came from. */
#ifndef NTA_RECORD_H
#define NTA_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Timestamp value meaning "the record carried no time of its own"; the
 * source then stamps it with the Kafka message time. */
#define NTA_TS_NONE INT64_MIN

/* An IPv4 or IPv6 address. IPv4 is stored v4-mapped (::ffff:a.b.c.d) so that
 * keys compare and hash as 16 bytes regardless of family. */
typedef struct nta_addr {
    uint8_t b[16];
} nta_addr;

typedef enum nta_field {
    NTA_F_NONE = 0,
    NTA_F_SRC_IP,
    NTA_F_DST_IP,
    NTA_F_SRC_PORT,
    NTA_F_DST_PORT,
    NTA_F_PROTO,
    NTA_F_BYTES,
    NTA_F_PACKETS,
    NTA_F_TCP_FLAGS,
    NTA_F__COUNT
} nta_field;

/* Bit (1u << field) set in nta_record.present when the input carried it. */
#define NTA_HAS(f) (1u << (f))

typedef struct nta_record {
    int64_t ts_ms; /* event time, epoch milliseconds, or NTA_TS_NONE */
    nta_addr src, dst;
    uint64_t bytes, packets;
    uint16_t src_port, dst_port;
    uint8_t proto;     /* IANA protocol number */
    uint8_t tcp_flags; /* OR of TCP flag bits seen (FIN=1 SYN=2 RST=4 PSH=8 ACK=16 URG=32) */
    uint16_t present;  /* NTA_HAS() bits */
} nta_record;

/* Longest text form of any single field value (an IPv6 address). */
#define NTA_FIELD_TEXT_MAX 48

/* Field name <-> enum. Accepts the canonical names only ("src_ip", ...);
 * returns NTA_F_NONE for an unknown name. */
nta_field nta_field_by_name(const char *name);
const char *nta_field_name(nta_field f);

/* True for fields that hold a number (ports, proto, counters, flags). */
int nta_field_is_numeric(nta_field f);

/* Numeric value of a field; addresses return 0. */
uint64_t nta_record_u64(const nta_record *r, nta_field f);

/* Writes the field's text form ("10.0.0.1", "443", "6") into buf (at least
 * NTA_FIELD_TEXT_MAX bytes) and returns its length. */
size_t nta_record_field_text(const nta_record *r, nta_field f, char *buf);

void nta_addr_from_v4(nta_addr *a, uint32_t host_order);
int nta_addr_is_v4(const nta_addr *a);
/* Parses dotted IPv4 or IPv6 text of length len (not NUL-terminated).
 * Returns 0 on success, -1 if the text is not an address. */
int nta_addr_parse(nta_addr *a, const char *s, size_t len);
size_t nta_addr_format(const nta_addr *a, char *buf);

/* An address prefix such as 10.0.0.0/8 or 2001:db8::/32, as the 16-byte
 * mask and the masked network, so that a test is two ANDs per half. */
typedef struct nta_prefix {
    uint64_t net[2], mask[2];
} nta_prefix;

/* Parses "ADDR/BITS" or a bare address (all its bits) of length len (not
 * NUL-terminated). An IPv4 prefix matches IPv4 addresses only. Bits past
 * the prefix length are ignored, as routers do. Returns 0, or -1 if the text
 * is not a prefix. */
int nta_prefix_parse(nta_prefix *p, const char *s, size_t len);

static inline int nta_prefix_match(const nta_prefix *p, const nta_addr *a)
{
    uint64_t w[2];
    memcpy(w, a->b, sizeof w);
    return ((w[0] & p->mask[0]) == p->net[0]) & ((w[1] & p->mask[1]) == p->net[1]);
}

/* Protocol name ("tcp", "UDP", "icmp", ...) or decimal text to number.
 * Returns -1 if neither. */
int nta_proto_parse(const char *s, size_t len);

#endif
