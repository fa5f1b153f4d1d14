#include "record.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "buf.h"

static const char *const field_names[NTA_F__COUNT] = {
    [NTA_F_NONE] = "",
    [NTA_F_SRC_IP] = "src_ip",
    [NTA_F_DST_IP] = "dst_ip",
    [NTA_F_SRC_PORT] = "src_port",
    [NTA_F_DST_PORT] = "dst_port",
    [NTA_F_PROTO] = "proto",
    [NTA_F_BYTES] = "bytes",
    [NTA_F_PACKETS] = "packets",
    [NTA_F_TCP_FLAGS] = "tcp_flags",
};

nta_field nta_field_by_name(const char *name)
{
    for (int f = NTA_F_NONE + 1; f < NTA_F__COUNT; f++)
        if (strcmp(name, field_names[f]) == 0)
            return (nta_field)f;
    return NTA_F_NONE;
}

const char *nta_field_name(nta_field f)
{
    return (f > NTA_F_NONE && f < NTA_F__COUNT) ? field_names[f] : "";
}

int nta_field_is_numeric(nta_field f)
{
    return f != NTA_F_SRC_IP && f != NTA_F_DST_IP && f != NTA_F_NONE;
}

uint64_t nta_record_u64(const nta_record *r, nta_field f)
{
    switch (f) {
    case NTA_F_SRC_PORT: return r->src_port;
    case NTA_F_DST_PORT: return r->dst_port;
    case NTA_F_PROTO: return r->proto;
    case NTA_F_BYTES: return r->bytes;
    case NTA_F_PACKETS: return r->packets;
    case NTA_F_TCP_FLAGS: return r->tcp_flags;
    default: return 0;
    }
}

/* v in decimal at p, NUL-terminated; returns the length. Every result's
 * key is written through here, and snprintf took 18% of the window side
 * of a close (bench/README.md, analysis 7). */
static size_t put_dec(char *p, uint64_t v)
{
    size_t n = nta_u64_digits(p, v);
    p[n] = '\0';
    return n;
}

size_t nta_record_field_text(const nta_record *r, nta_field f, char *buf)
{
    switch (f) {
    case NTA_F_SRC_IP: return nta_addr_format(&r->src, buf);
    case NTA_F_DST_IP: return nta_addr_format(&r->dst, buf);
    case NTA_F_NONE: buf[0] = '\0'; return 0;
    default: return put_dec(buf, nta_record_u64(r, f));
    }
}

static const uint8_t v4_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

void nta_addr_from_v4(nta_addr *a, uint32_t host_order)
{
    memcpy(a->b, v4_prefix, sizeof v4_prefix);
    a->b[12] = (uint8_t)(host_order >> 24);
    a->b[13] = (uint8_t)(host_order >> 16);
    a->b[14] = (uint8_t)(host_order >> 8);
    a->b[15] = (uint8_t)host_order;
}

int nta_addr_is_v4(const nta_addr *a)
{
    return memcmp(a->b, v4_prefix, sizeof v4_prefix) == 0;
}

/* Dotted quads are parsed by hand: inet_pton needs a NUL-terminated copy and
 * is several times slower on the per-record path, where nearly every address
 * is IPv4. IPv6 (rare in flow data) goes through inet_pton. */
static int parse_v4(const char *s, size_t len, uint32_t *out)
{
    uint32_t v = 0;
    unsigned part = 0, digits = 0, dots = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            if (digits == 3 || (digits > 0 && part == 0))
                return -1; /* too long, or a leading zero */
            part = part * 10 + (unsigned)(c - '0');
            digits++;
        } else if (c == '.') {
            if (digits == 0 || part > 255 || ++dots > 3)
                return -1;
            v = (v << 8) | part;
            part = 0;
            digits = 0;
        } else {
            return -1;
        }
    }
    if (dots != 3 || digits == 0 || part > 255)
        return -1;
    *out = (v << 8) | part;
    return 0;
}

int nta_addr_parse(nta_addr *a, const char *s, size_t len)
{
    uint32_t v4;
    if (parse_v4(s, len, &v4) == 0) {
        nta_addr_from_v4(a, v4);
        return 0;
    }
    char tmp[INET6_ADDRSTRLEN];
    /* An embedded NUL would end the copy early and "::1\0junk" would parse. */
    if (len == 0 || len >= sizeof tmp || memchr(s, ':', len) == NULL ||
        memchr(s, '\0', len) != NULL)
        return -1;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    return inet_pton(AF_INET6, tmp, a->b) == 1 ? 0 : -1;
}

int nta_prefix_parse(nta_prefix *p, const char *s, size_t len)
{
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;
    nta_addr a;
    if (nta_addr_parse(&a, s, alen) != 0)
        return -1;
    /* Dotted IPv4 is stored behind the 96 bits of the v4-mapped prefix; a
     * prefix written in IPv6 notation (::ffff:0:0/96) counts all 128. */
    int base = memchr(s, ':', alen) == NULL ? 96 : 0;
    int bits = 128 - base;
    if (slash) {
        const char *d = slash + 1, *end = s + len;
        /* One to three digits, no leading zero: as parse_v4 reads an octet. */
        if (d == end || end - d > 3 || (*d == '0' && end - d > 1))
            return -1;
        bits = 0;
        for (; d < end; d++) {
            if (*d < '0' || *d > '9')
                return -1;
            bits = bits * 10 + (*d - '0');
        }
        if (bits > 128 - base)
            return -1;
    }
    uint8_t m[16] = {0};
    for (int i = 0; i < base + bits; i++)
        m[i / 8] |= (uint8_t)(0x80u >> (i % 8));
    memcpy(p->mask, m, sizeof m);
    memcpy(p->net, a.b, sizeof p->net);
    p->net[0] &= p->mask[0];
    p->net[1] &= p->mask[1];
    return 0;
}

size_t nta_addr_format(const nta_addr *a, char *buf)
{
    if (nta_addr_is_v4(a)) {
        size_t n = 0;
        for (int i = 12; i < 16; i++) {
            n += nta_u64_digits(buf + n, a->b[i]);
            buf[n++] = '.';
        }
        buf[--n] = '\0';
        return n;
    }
    if (inet_ntop(AF_INET6, a->b, buf, NTA_FIELD_TEXT_MAX) == NULL) {
        buf[0] = '\0';
        return 0;
    }
    return strlen(buf);
}

static const struct {
    const char *name;
    int number;
} proto_names[] = {
    {"icmp", 1}, {"igmp", 2}, {"tcp", 6}, {"udp", 17}, {"gre", 47},
    {"esp", 50}, {"ah", 51}, {"icmpv6", 58}, {"ipv6-icmp", 58}, {"sctp", 132},
};

int nta_proto_parse(const char *s, size_t len)
{
    if (len == 0)
        return -1;
    if (s[0] >= '0' && s[0] <= '9') {
        int v = 0;
        for (size_t i = 0; i < len; i++) {
            if (s[i] < '0' || s[i] > '9' || i >= 3)
                return -1;
            v = v * 10 + (s[i] - '0');
        }
        return v <= 255 ? v : -1;
    }
    for (size_t i = 0; i < sizeof proto_names / sizeof proto_names[0]; i++)
        if (strlen(proto_names[i].name) == len && strncasecmp(proto_names[i].name, s, len) == 0)
            return proto_names[i].number;
    return -1;
}
