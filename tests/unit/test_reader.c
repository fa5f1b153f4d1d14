/* Unit tests of the readers (runtime/reader*.c): captures built here byte by
 * byte for every link layer, tag, extension header and fragment case; flow
 * building with its timeouts; Zeek TSV and JSON, CICFlowMeter's header
 * styles, JSON lines; and every error path, each with its position. The
 * expected values are written out by hand from the bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <pcap/pcap.h>

#include "reader.h"

/* ---- building captures ---------------------------------------------------- */

typedef struct cap {
    uint8_t b[8192];
    size_t n;
} cap;

static void put(cap *c, const void *p, size_t n)
{
    assert_true(c->n + n <= sizeof c->b);
    memcpy(c->b + c->n, p, n);
    c->n += n;
}

static void put32le(cap *c, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(c, b, 4);
}

static void put16le(cap *c, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(c, b, 2);
}

static void cap_init(cap *c, uint32_t linktype)
{
    c->n = 0;
    put32le(c, 0xa1b2c3d4);
    put16le(c, 2);
    put16le(c, 4);
    put32le(c, 0);
    put32le(c, 0);
    put32le(c, 65535);
    put32le(c, linktype);
}

static void cap_packet(cap *c, uint32_t sec, uint32_t usec, const uint8_t *p, size_t n)
{
    put32le(c, sec);
    put32le(c, usec);
    put32le(c, (uint32_t)n);
    put32le(c, (uint32_t)n);
    put(c, p, n);
}

/* A packet under construction (network byte order). */
typedef struct pk {
    uint8_t b[2048];
    size_t n;
} pk;

static void p8(pk *p, uint8_t v) { p->b[p->n++] = v; }
static void p16(pk *p, uint16_t v)
{
    p8(p, (uint8_t)(v >> 8));
    p8(p, (uint8_t)v);
}
static void p32(pk *p, uint32_t v)
{
    p16(p, (uint16_t)(v >> 16));
    p16(p, (uint16_t)v);
}
static void pzero(pk *p, size_t n)
{
    memset(p->b + p->n, 0, n);
    p->n += n;
}

static void eth(pk *p, uint16_t type)
{
    pzero(p, 12);
    p16(p, type);
}

/* IPv4 header; total = header + payload bytes that will follow. */
static void ipv4(pk *p, uint32_t src, uint32_t dst, uint8_t proto, uint16_t total, uint16_t id,
                 uint16_t frag)
{
    p8(p, 0x45);
    p8(p, 0);
    p16(p, total);
    p16(p, id);
    p16(p, frag);
    p8(p, 64);
    p8(p, proto);
    p16(p, 0);
    p32(p, src);
    p32(p, dst);
}

static void tcp(pk *p, uint16_t sport, uint16_t dport, uint8_t flags)
{
    p16(p, sport);
    p16(p, dport);
    p32(p, 1);
    p32(p, 0);
    p8(p, 0x50);
    p8(p, flags);
    p16(p, 1024);
    p32(p, 0);
}

static void udp(pk *p, uint16_t sport, uint16_t dport, uint16_t len)
{
    p16(p, sport);
    p16(p, dport);
    p16(p, len);
    p16(p, 0);
}

static void ipv6(pk *p, uint8_t nh, uint16_t plen, uint8_t last_src, uint8_t last_dst)
{
    p32(p, 0x60000000);
    p16(p, plen);
    p8(p, nh);
    p8(p, 64);
    p16(p, 0x2001);
    p16(p, 0x0db8);
    pzero(p, 11);
    p8(p, last_src);
    p16(p, 0x2001);
    p16(p, 0x0db8);
    pzero(p, 11);
    p8(p, last_dst);
}

/* ---- reading them -------------------------------------------------------------- */

static nta_reader *open_mem(const void *data, size_t n, nta_reader_opts *o, char *err,
                            size_t errlen)
{
    FILE *f = fmemopen((void *)data, n, "rb");
    assert_non_null(f);
    return nta_reader_open_stream(f, "mem", o, err, errlen);
}

static nta_reader *open_cap(cap *c, int flows)
{
    nta_reader_opts o;
    nta_reader_opts_init(&o);
    o.format = NTA_READ_PCAP;
    o.flows = flows;
    char err[512];
    nta_reader *r = open_mem(c->b, c->n, &o, err, sizeof err);
    if (r == NULL)
        fail_msg("%s", err);
    return r;
}

static nta_reader *open_text(const char *text, nta_reader_format f)
{
    nta_reader_opts o;
    nta_reader_opts_init(&o);
    o.format = f;
    char err[512];
    nta_reader *r = open_mem(text, strlen(text), &o, err, sizeof err);
    if (r == NULL)
        fail_msg("%s", err);
    return r;
}

static void next_ok(nta_reader *r, nta_record *rec)
{
    char err[512] = "";
    int rc = nta_reader_next(r, rec, err, sizeof err);
    if (rc != 1)
        fail_msg("expected a record, got %d: %s", rc, err);
}

static void at_end(nta_reader *r)
{
    nta_record rec;
    char err[512] = "";
    int rc = nta_reader_next(r, &rec, err, sizeof err);
    if (rc != 0)
        fail_msg("expected the end, got %d: %s", rc, err);
}

static void next_err(nta_reader *r, const char *want)
{
    nta_record rec;
    char err[512] = "";
    assert_int_equal(nta_reader_next(r, &rec, err, sizeof err), -1);
    if (strstr(err, want) == NULL)
        fail_msg("error '%s' does not say '%s'", err, want);
    /* And stays failed. */
    char err2[512] = "";
    assert_int_equal(nta_reader_next(r, &rec, err2, sizeof err2), -1);
    assert_string_equal(err, err2);
}

static void addr_is(const nta_addr *a, const char *text)
{
    char buf[NTA_FIELD_TEXT_MAX];
    nta_addr_format(a, buf);
    assert_string_equal(buf, text);
}

/* ---- captures ----------------------------------------------------------------------- */

static void test_ethernet_qinq_tcp(void **state)
{
    (void)state;
    cap c;
    cap_init(&c, DLT_EN10MB);
    pk p = {0};
    eth(&p, 0x88a8);
    p16(&p, 100);
    p16(&p, 0x8100);
    p16(&p, 943);
    p16(&p, 0x0800);
    ipv4(&p, 0x0a000001, 0x0a000002, 6, 40, 1, 0x4000);
    tcp(&p, 40000, 443, 0x02);
    pzero(&p, 6); /* Ethernet padding to 60 bytes: not IP bytes */
    cap_packet(&c, 1700000000, 123456, p.b, p.n);
    nta_reader *r = open_cap(&c, 0);
    nta_record rec;
    next_ok(r, &rec);
    assert_int_equal(rec.ts_ms, 1700000000123);
    addr_is(&rec.src, "10.0.0.1");
    addr_is(&rec.dst, "10.0.0.2");
    assert_int_equal(rec.src_port, 40000);
    assert_int_equal(rec.dst_port, 443);
    assert_int_equal(rec.proto, 6);
    assert_int_equal(rec.tcp_flags, 2);
    assert_int_equal(rec.bytes, 40);
    assert_int_equal(rec.packets, 1);
    at_end(r);
    assert_int_equal(nta_reader_get_stats(r)->records, 1);
    nta_reader_close(r);
}

static void test_sll_ipv6_extension_headers(void **state)
{
    (void)state;
    cap c;
    cap_init(&c, DLT_LINUX_SLL);
    pk p = {0};
    pzero(&p, 14);
    p16(&p, 0x86dd);
    ipv6(&p, 0, 8 + 16 + 8 + 4, 1, 2); /* hop-by-hop, then destination options, then UDP */
    p8(&p, 60);
    p8(&p, 0);
    pzero(&p, 6);
    p8(&p, 17);
    p8(&p, 1);
    pzero(&p, 14);
    udp(&p, 5353, 53, 12);
    pzero(&p, 4);
    cap_packet(&c, 1700000001, 0, p.b, p.n);
    nta_reader *r = open_cap(&c, 0);
    nta_record rec;
    next_ok(r, &rec);
    addr_is(&rec.src, "2001:db8::1");
    addr_is(&rec.dst, "2001:db8::2");
    assert_int_equal(rec.proto, 17);
    assert_int_equal(rec.src_port, 5353);
    assert_int_equal(rec.dst_port, 53);
    assert_int_equal(rec.bytes, 40 + 36);
    at_end(r);
    nta_reader_close(r);
}

static void test_sll2_and_raw_icmp(void **state)
{
    (void)state;
    cap c;
    cap_init(&c, DLT_LINUX_SLL2);
    pk p = {0};
    p16(&p, 0x0800);
    pzero(&p, 18);
    ipv4(&p, 0xc0000201, 0xc0000202, 1, 28, 7, 0);
    p8(&p, 8); /* echo request */
    p8(&p, 0);
    pzero(&p, 6);
    cap_packet(&c, 1700000002, 0, p.b, p.n);
    nta_reader *r = open_cap(&c, 0);
    nta_record rec;
    next_ok(r, &rec);
    assert_int_equal(rec.proto, 1);
    assert_int_equal(rec.src_port, 8); /* ICMP type, as Zeek */
    assert_int_equal(rec.dst_port, 0); /* ICMP code */
    nta_reader_close(r);

    /* The same IP packet, raw (LINKTYPE_RAW = 101 in files). */
    cap_init(&c, 101);
    cap_packet(&c, 1700000002, 0, p.b + 20, p.n - 20);
    r = open_cap(&c, 0);
    next_ok(r, &rec);
    addr_is(&rec.src, "192.0.2.1");
    assert_int_equal(rec.bytes, 28);
    nta_reader_close(r);
}

static void test_not_ip_and_truncated_are_skipped(void **state)
{
    (void)state;
    cap c;
    cap_init(&c, DLT_EN10MB);
    pk arp = {0};
    eth(&arp, 0x0806);
    pzero(&arp, 28);
    cap_packet(&c, 1700000000, 0, arp.b, arp.n);
    pk cut = {0};
    eth(&cut, 0x0800);
    p8(&cut, 0x45);
    pzero(&cut, 9); /* half an IPv4 header */
    cap_packet(&c, 1700000000, 1, cut.b, cut.n);
    pk cut_tcp = {0};
    eth(&cut_tcp, 0x0800);
    ipv4(&cut_tcp, 1, 2, 6, 60, 0, 0);
    pzero(&cut_tcp, 8); /* a TCP header without its flags byte */
    cap_packet(&c, 1700000000, 2, cut_tcp.b, cut_tcp.n);
    nta_reader *r = open_cap(&c, 0);
    at_end(r);
    const nta_reader_stats *st = nta_reader_get_stats(r);
    assert_int_equal(st->units, 3);
    assert_int_equal(st->skipped, 1);
    assert_int_equal(st->truncated, 2);
    assert_int_equal(st->records, 0);
    nta_reader_close(r);
}

static void frag4(cap *c, uint32_t t, uint16_t id, uint16_t frag, int with_udp)
{
    pk p = {0};
    eth(&p, 0x0800);
    ipv4(&p, 0x0a000001, 0x0a000002, 17, 20 + 16, id, frag);
    if (with_udp)
        udp(&p, 1111, 2222, 1000);
    else
        pzero(&p, 8);
    pzero(&p, 8);
    cap_packet(c, 1700000000, t, p.b, p.n);
}

static void test_ipv4_fragments_take_the_first_ones_ports(void **state)
{
    (void)state;
    cap c;
    cap_init(&c, DLT_EN10MB);
    frag4(&c, 0, 77, 0x2000, 1); /* first: MF, offset 0 */
    frag4(&c, 1, 77, 0x0002, 0); /* last: offset 16 */
    frag4(&c, 2, 78, 0x0002, 0); /* another datagram, first never seen */
    nta_reader *r = open_cap(&c, 0);
    nta_record rec;
    next_ok(r, &rec);
    assert_int_equal(rec.dst_port, 2222);
    next_ok(r, &rec);
    assert_int_equal(rec.src_port, 1111);
    assert_int_equal(rec.dst_port, 2222);
    assert_int_equal(rec.bytes, 36);
    next_ok(r, &rec);
    assert_int_equal(rec.src_port, 0);
    assert_int_equal(rec.dst_port, 0);
    at_end(r);
    assert_int_equal(nta_reader_get_stats(r)->fragments, 2);
    assert_int_equal(nta_reader_get_stats(r)->fragments_unmatched, 1);
    nta_reader_close(r);

    /* In flow mode the matched fragment joins the first one's flow. */
    r = open_cap(&c, 1);
    next_ok(r, &rec);
    assert_int_equal(rec.dst_port, 2222);
    assert_int_equal(rec.packets, 2);
    assert_int_equal(rec.bytes, 72);
    next_ok(r, &rec);
    assert_int_equal(rec.dst_port, 0); /* the unmatched one: its flow ends last */
    assert_int_equal(rec.packets, 1);
    at_end(r);
    nta_reader_close(r);
}

static void test_ipv6_fragments(void **state)
{
    (void)state;
    cap c;
    cap_init(&c, DLT_EN10MB);
    for (int i = 0; i < 2; i++) {
        pk p = {0};
        eth(&p, 0x86dd);
        ipv6(&p, 44, i == 0 ? 8 + 20 : 8 + 8, 1, 2);
        p8(&p, 6);
        p8(&p, 0);
        p16(&p, i == 0 ? 0x0001 : 0x0010); /* first: offset 0, M; then offset 2 */
        p32(&p, 0xdeadbeef);
        if (i == 0)
            tcp(&p, 50000, 22, 0x02);
        else
            pzero(&p, 8);
        cap_packet(&c, 1700000000, (uint32_t)i, p.b, p.n);
    }
    nta_reader *r = open_cap(&c, 0);
    nta_record rec;
    next_ok(r, &rec);
    assert_int_equal(rec.proto, 6);
    assert_int_equal(rec.dst_port, 22);
    assert_int_equal(rec.tcp_flags, 0x02);
    assert_int_equal(rec.bytes, 40 + 28);
    next_ok(r, &rec);
    assert_int_equal(rec.proto, 6);
    assert_int_equal(rec.src_port, 50000);
    assert_int_equal(rec.dst_port, 22);
    nta_reader_close(r);
}

static void tcp_packet(cap *c, uint32_t sec, uint32_t usec, uint16_t sport, uint8_t flags)
{
    pk p = {0};
    eth(&p, 0x0800);
    ipv4(&p, 0x0a000001, 0x0a000002, 6, 40, 0, 0);
    tcp(&p, sport, 80, flags);
    cap_packet(c, sec, usec, p.b, p.n);
}

static void test_flows_timeouts_and_order(void **state)
{
    (void)state;
    cap c;
    cap_init(&c, DLT_EN10MB);
    /* Flow A (port 1): SYN at 0 s, ACK at 1 s, then quiet for 20 s (idle
     * timeout 15 s), then FIN at 21 s: two flows. Flow B (port 2): a packet
     * every 10 s from 2 s to 72 s: the active timeout (60 s) cuts it at 62 s. */
    const uint32_t t0 = 1700000000;
    tcp_packet(&c, t0, 0, 1, 0x02);
    tcp_packet(&c, t0 + 1, 0, 1, 0x10);
    for (uint32_t s = 2; s <= 72; s += 10) {
        if (s == 22)
            tcp_packet(&c, t0 + 21, 500000, 1, 0x01);
        tcp_packet(&c, t0 + s, 0, 2, 0x18);
    }
    nta_reader *r = open_cap(&c, 1);
    nta_record rec;
    /* A's first flow ends at 1 s. */
    next_ok(r, &rec);
    assert_int_equal(rec.src_port, 1);
    assert_int_equal(rec.ts_ms, (int64_t)(t0 + 1) * 1000);
    assert_int_equal(rec.packets, 2);
    assert_int_equal(rec.tcp_flags, 0x12);
    /* A's second flow (21.5 s) ends before B's first (52 s: 2..52). */
    next_ok(r, &rec);
    assert_int_equal(rec.src_port, 1);
    assert_int_equal(rec.ts_ms, (int64_t)(t0 + 21) * 1000 + 500);
    assert_int_equal(rec.tcp_flags, 0x01);
    next_ok(r, &rec);
    assert_int_equal(rec.src_port, 2);
    assert_int_equal(rec.ts_ms, (int64_t)(t0 + 52) * 1000);
    assert_int_equal(rec.packets, 6);
    assert_int_equal(rec.bytes, 240);
    next_ok(r, &rec);
    assert_int_equal(rec.src_port, 2);
    assert_int_equal(rec.ts_ms, (int64_t)(t0 + 72) * 1000);
    assert_int_equal(rec.packets, 2);
    at_end(r);
    nta_reader_close(r);
}

static void test_flow_table_limit_exports_early(void **state)
{
    (void)state;
    cap c;
    cap_init(&c, DLT_EN10MB);
    for (uint16_t i = 0; i < 10; i++)
        tcp_packet(&c, 1700000000, i, (uint16_t)(100 + i % 5), 0x02);
    nta_reader_opts o;
    nta_reader_opts_init(&o);
    o.format = NTA_READ_PCAP;
    o.flows = 1;
    o.max_flows = 2;
    char err[512];
    nta_reader *r = open_mem(c.b, c.n, &o, err, sizeof err);
    assert_non_null(r);
    nta_record rec;
    uint64_t packets = 0, n = 0;
    int64_t last = INT64_MIN;
    char e[512];
    while (nta_reader_next(r, &rec, e, sizeof e) == 1) {
        packets += rec.packets;
        assert_true(rec.ts_ms >= last);
        last = rec.ts_ms;
        n++;
    }
    /* Five ports cycling through a table of two: every packet evicts. */
    assert_int_equal(packets, 10);
    assert_int_equal(n, 10);
    assert_int_equal(nta_reader_get_stats(r)->flows_evicted, 8);
    nta_reader_close(r);
}

static void test_truncated_capture_keeps_what_was_read(void **state)
{
    (void)state;
    cap c;
    cap_init(&c, DLT_EN10MB);
    tcp_packet(&c, 1700000000, 0, 1, 0x02);
    tcp_packet(&c, 1700000000, 1, 2, 0x02);
    tcp_packet(&c, 1700000000, 2, 3, 0x02);
    c.n -= 30; /* the last packet cut short */
    nta_reader *r = open_cap(&c, 0);
    nta_record rec;
    next_ok(r, &rec);
    next_ok(r, &rec);
    next_err(r, "mem: packet 3 (byte offset");
    nta_reader_close(r);

    /* Flow mode: the two flows read before the cut still come out. */
    r = open_cap(&c, 1);
    next_ok(r, &rec);
    next_ok(r, &rec);
    next_err(r, "truncated");
    nta_reader_close(r);
}

static void test_bad_capture_headers(void **state)
{
    (void)state;
    cap c;
    cap_init(&c, 147); /* DLT_USER0 */
    nta_reader_opts o;
    nta_reader_opts_init(&o);
    o.format = NTA_READ_PCAP;
    char err[512];
    assert_null(open_mem(c.b, c.n, &o, err, sizeof err));
    assert_non_null(strstr(err, "mem: link type 147"));
    assert_null(open_mem("not a capture at all", 20, &o, err, sizeof err));
    assert_non_null(strstr(err, "not a readable pcap"));
    o.format = NTA_READ_AUTO;
    assert_null(open_mem("x", 1, &o, err, sizeof err));
    assert_non_null(strstr(err, "needs its format named"));
    /* Flow options the table and clock cannot take. */
    cap_init(&c, DLT_EN10MB);
    o.format = NTA_READ_PCAP;
    o.flows = 1;
    o.max_flows = 0;
    assert_null(open_mem(c.b, c.n, &o, err, sizeof err));
    assert_non_null(strstr(err, "mem: flow options out of range"));
    o.max_flows = 10;
    o.idle_timeout_ms = 0;
    assert_null(open_mem(c.b, c.n, &o, err, sizeof err));
    o.idle_timeout_ms = 1000;
    o.active_timeout_ms = 400LL * 86400 * 1000;
    assert_null(open_mem(c.b, c.n, &o, err, sizeof err));
    assert_non_null(strstr(err, "flow options out of range"));
}

/* A pcapng file: section header, one Ethernet interface (microseconds), one
 * enhanced packet block with the 64-bit time stamp ts_us. */
static void pcapng_one(cap *c, uint64_t ts_us, const pk *p)
{
    size_t pad = (4 - p->n % 4) % 4;
    uint32_t epb_len = (uint32_t)(32 + p->n + pad);
    c->n = 0;
    put32le(c, 0x0a0d0d0a);
    put32le(c, 28);
    put32le(c, 0x1a2b3c4d);
    put16le(c, 1);
    put16le(c, 0);
    put32le(c, 0xffffffff); /* section length: unknown */
    put32le(c, 0xffffffff);
    put32le(c, 28);
    put32le(c, 1); /* interface description */
    put32le(c, 20);
    put16le(c, DLT_EN10MB);
    put16le(c, 0);
    put32le(c, 65535);
    put32le(c, 20);
    put32le(c, 6); /* enhanced packet */
    put32le(c, epb_len);
    put32le(c, 0);
    put32le(c, (uint32_t)(ts_us >> 32));
    put32le(c, (uint32_t)ts_us);
    put32le(c, (uint32_t)p->n);
    put32le(c, (uint32_t)p->n);
    put(c, p->b, p->n);
    static const uint8_t zeros[4] = {0};
    put(c, zeros, pad);
    put32le(c, epb_len);
}

static void test_pcapng(void **state)
{
    (void)state;
    pk p = {0};
    eth(&p, 0x0800);
    ipv4(&p, 0x0a000001, 0x0a000002, 6, 40, 1, 0);
    tcp(&p, 40000, 443, 0x02);
    cap c;
    pcapng_one(&c, 1700000000123456ull, &p);
    nta_reader *r = open_cap(&c, 0);
    nta_record rec;
    next_ok(r, &rec);
    assert_int_equal(rec.ts_ms, 1700000000123);
    assert_int_equal(rec.dst_port, 443);
    at_end(r);
    nta_reader_close(r);
}

/* Found by fuzz_pcap (tests/fuzz/corpus/pcap/crash-pcapng-timestamp-overflow):
 * a 64-bit pcapng time stamp overflowed the microsecond clock. */
static void test_pcapng_time_out_of_range(void **state)
{
    (void)state;
    pk p = {0};
    eth(&p, 0x0800);
    ipv4(&p, 0x0a000001, 0x0a000002, 6, 40, 1, 0);
    tcp(&p, 40000, 443, 0x02);
    cap c;
    pcapng_one(&c, 0xfff9f5f50c0d0ee6ull, &p);
    nta_reader *r = open_cap(&c, 0);
    next_err(r, "mem: packet 1: time stamp");
    nta_reader_close(r);
    r = open_cap(&c, 1);
    next_err(r, "out of range");
    nta_reader_close(r);
}

/* ---- Zeek ------------------------------------------------------------------------------ */

static const char zeek_tsv[] =
    "#separator \\x09\n"
    "#set_separator\t,\n"
    "#empty_field\t(empty)\n"
    "#unset_field\t-\n"
    "#path\tconn\n"
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\t"
    "orig_bytes\tresp_bytes\tconn_state\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\t"
    "resp_ip_bytes\n"
    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tcount\tcount\tstring\t"
    "string\tcount\tcount\tcount\tcount\n"
    "1664462456.755299\tC1\t172.16.1.11\t40042\t8.8.8.8\t53\tudp\tdns\t0\t111\tSHR\tCd\t0\t0"
    "\t1\t139\n"
    "1664462457.5\tC2\t172.16.1.11\t50000\t10.0.0.5\t22\ttcp\t-\t-\t-\tREJ\tShR\t1\t44\t1\t40\n"
    "1664462458\tC3\t172.16.1.11\t50001\t10.0.0.5\t23\ttcp\t-\t-\t-\tS0\t-\t1\t44\t0\t0\n"
    "1664462459.1\tC4\t::1\t8\t::2\t0\ticmp\t(empty)\t-\t-\tOTH\t-\t1\t84\t0\t-\n"
    "#close\t2022-09-29-16-00-00\n";

static void test_zeek_tsv(void **state)
{
    (void)state;
    nta_reader *r = open_text(zeek_tsv, NTA_READ_ZEEK);
    nta_record rec;
    next_ok(r, &rec);
    assert_int_equal(rec.ts_ms, 1664462456755);
    addr_is(&rec.src, "172.16.1.11");
    addr_is(&rec.dst, "8.8.8.8");
    assert_int_equal(rec.proto, 17);
    assert_int_equal(rec.bytes, 139);
    assert_int_equal(rec.packets, 1);
    assert_int_equal(rec.tcp_flags, 0);
    next_ok(r, &rec);
    assert_int_equal(rec.ts_ms, 1664462457500);
    assert_int_equal(rec.dst_port, 22);
    assert_int_equal(rec.tcp_flags, 0x16); /* S, h (SYN+ACK), R */
    assert_int_equal(rec.bytes, 84);
    next_ok(r, &rec);
    assert_int_equal(rec.tcp_flags, 0x02); /* no history: S0 says SYN */
    next_ok(r, &rec);
    addr_is(&rec.src, "::1");
    assert_int_equal(rec.proto, 1);
    assert_int_equal(rec.src_port, 8);
    assert_int_equal(rec.bytes, 84);
    at_end(r);
    assert_int_equal(nta_reader_get_stats(r)->skipped, 8);
    nta_reader_close(r);
}

static void test_zeek_tsv_errors(void **state)
{
    (void)state;
    nta_reader *r = open_text("1664462456.7\tC1\t1.2.3.4\n", NTA_READ_ZEEK);
    next_err(r, "mem: line 1: a data line before the #fields header");
    nta_reader_close(r);
    r = open_text("#fields\tts\tid.orig_h\tid.resp_h\n1.5\t1.2.3.4\n", NTA_READ_ZEEK);
    next_err(r, "line 2: fewer columns");
    nta_reader_close(r);
    r = open_text("#fields\tts\tid.orig_h\tid.resp_h\n1.5\t1.2.3.4\t1.1.1.1\tx\n", NTA_READ_ZEEK);
    next_err(r, "line 2: more columns");
    nta_reader_close(r);
    r = open_text("#fields\tts\tid.orig_h\tid.resp_h\nyesterday\t1.2.3.4\t1.1.1.1\n",
                  NTA_READ_ZEEK);
    next_err(r, "line 2: bad ts");
    nta_reader_close(r);
    r = open_text("#fields\tts\tid.orig_h\tid.resp_h\n1.5\t1.2.3.4\t-\n", NTA_READ_ZEEK);
    next_err(r, "needs ts, id.orig_h and id.resp_h");
    nta_reader_close(r);
    r = open_text("#fields\tts\tid.orig_h\tid.resp_h\tproto\n1.5\t1.2.3.4\t1.1.1.1\tquic\n",
                  NTA_READ_ZEEK);
    next_err(r, "bad proto");
    nta_reader_close(r);
}

static void test_zeek_json(void **state)
{
    (void)state;
    nta_reader *r = open_text(
        "{\"ts\":1664462456.755299,\"uid\":\"C5\",\"id.orig_h\":\"172.16.1.11\","
        "\"id.orig_p\":40042,\"id.resp_h\":\"8.8.8.8\",\"id.resp_p\":53,\"proto\":\"tcp\","
        "\"orig_bytes\":10,\"resp_bytes\":20,\"conn_state\":\"SF\",\"history\":\"ShADadFf\","
        "\"orig_pkts\":5,\"resp_pkts\":4,\"tunnel_parents\":[\"Cx\",\"Cy\"],\"local_orig\":true,"
        "\"orig_ip_bytes\":null}\n"
        "\n"
        "{\"ts\":\"2022-09-29T14:40:56.5Z\",\"id.orig_h\":\"1.2.3.4\",\"id.resp_h\":\"5.6.7.8\"}\n"
        "{\"ts\":1664462456,\"id.orig_h\":\"1.2.3.4\",\"id.resp_h\":\"5.6.7.8\"",
        NTA_READ_ZEEK);
    nta_record rec;
    next_ok(r, &rec);
    assert_int_equal(rec.ts_ms, 1664462456755);
    assert_int_equal(rec.dst_port, 53);
    assert_int_equal(rec.bytes, 30); /* IP byte counts unset: payload bytes */
    assert_int_equal(rec.packets, 9);
    assert_int_equal(rec.tcp_flags, 0x13);
    next_ok(r, &rec);
    assert_int_equal(rec.ts_ms, 1664462456500);
    next_err(r, "mem: line 4: not a JSON object");
    assert_int_equal(nta_reader_get_stats(r)->records, 2);
    nta_reader_close(r);
    r = open_text("{\"ts\":1,\"id.orig_h\":{\"a\":1},\"id.resp_h\":\"5.6.7.8\"}\n", NTA_READ_ZEEK);
    next_err(r, "not a scalar");
    nta_reader_close(r);
    r = open_text("{\"ts\":1,\"id.orig_h\":\"1.2.3\",\"id.resp_h\":\"5.6.7.8\"}\n", NTA_READ_ZEEK);
    next_err(r, "bad address");
    nta_reader_close(r);
    r = open_text("{\"ts\":1,\"id.orig_h\":\"1.2.3.4\",\"id.resp_h\":\"5.6.7.8\",\"id.orig_p\":"
                  "70000}\n",
                  NTA_READ_ZEEK);
    next_err(r, "bad port");
    nta_reader_close(r);
    r = open_text("{\"ts\":1,\"id.orig_h\":\"1.2.3.4\",\"id.resp_h\":\"5.6.7.8\",\"orig_pkts\":"
                  "-1}\n",
                  NTA_READ_ZEEK);
    next_err(r, "bad byte or packet count");
    nta_reader_close(r);
}

/* ---- CICFlowMeter ------------------------------------------------------------------------ */

static void test_cic_header_styles(void **state)
{
    (void)state;
    static const char *const files[] = {
        /* The improved CIC-IDS2017 re-release (the files in shared/data). */
        "id,Flow ID,Src IP,Src Port,Dst IP,Dst Port,Protocol,Timestamp,Flow Duration,"
        "Total Fwd Packet,Total Bwd packets,Total Length of Fwd Packet,Total Length of Bwd "
        "Packet,FIN Flag Count,SYN Flag Count,RST Flag Count,ACK Flag Count,Label\n"
        "1,x,172.16.0.1,41249,192.168.10.50,2042,6,2017-07-07 18:08:57.763666,10,1,1,0,6,0,1,1,"
        "1,Portscan\n",
        /* CIC-IDS2017 as first published: leading spaces, long names. */
        "Flow ID, Source IP, Source Port, Destination IP, Destination Port, Protocol, "
        "Timestamp, Flow Duration, Total Fwd Packets, Total Backward Packets,Total Length of "
        "Fwd Packets, Total Length of Bwd Packets,FIN Flag Count, SYN Flag Count, RST Flag "
        "Count, ACK Flag Count, Label\n"
        "x,172.16.0.1,41249,192.168.10.50,2042,6,7/7/2017 6:08:57 PM,10,1,1,0,6,0,1,1,1,PortScan"
        "\n",
        /* CICFlowMeter-V3/V4 output: abbreviated names, counts as floats. */
        "Flow ID,Src IP,Src Port,Dst IP,Dst Port,Protocol,Timestamp,Flow Duration,Tot Fwd Pkts,"
        "Tot Bwd Pkts,TotLen Fwd Pkts,TotLen Bwd Pkts,FIN Flag Cnt,SYN Flag Cnt,RST Flag Cnt,"
        "ACK Flag Cnt,Label\r\n"
        "x,172.16.0.1,41249,192.168.10.50,2042,6,07/07/2017 18:08:57,10,1.0,1.0,0.0,6.0,0,1,1,1,"
        "No Label\r\n",
    };
    static const int64_t ts[] = {1499450937763, 1499450937000, 1499450937000};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        nta_reader *r = open_text(files[i], NTA_READ_CIC);
        nta_record rec;
        next_ok(r, &rec);
        assert_int_equal(rec.ts_ms, ts[i]);
        addr_is(&rec.src, "172.16.0.1");
        addr_is(&rec.dst, "192.168.10.50");
        assert_int_equal(rec.src_port, 41249);
        assert_int_equal(rec.dst_port, 2042);
        assert_int_equal(rec.proto, 6);
        assert_int_equal(rec.packets, 2);
        assert_int_equal(rec.bytes, 6);
        assert_int_equal(rec.tcp_flags, 0x16);
        at_end(r);
        nta_reader_close(r);
    }
}

static void test_cic_errors(void **state)
{
    (void)state;
    nta_reader *r = open_text("a,b,c\n1,2,3\n", NTA_READ_CIC);
    next_err(r, "mem: line 1: a CICFlowMeter header needs Src IP");
    nta_reader_close(r);
    static const char head[] = "Src IP,Dst IP,Protocol,Timestamp,Tot Fwd Pkts\n";
    static const struct {
        const char *row, *err;
    } cases[] = {
        {"1.2.3.4,5.6.7.8,6\n", "line 2: fewer columns than the header"},
        {"1.2.3.4,5.6.7.8,6,2017-07-07 18:08:57,1,1\n", "line 2: more columns"},
        {"1.2.3.4,5.6.7.8,6,2017-13-07 18:08:57,1\n", "line 2: bad Timestamp"},
        {"1.2.3.4,5.6.7.8,6,7/7/2017 13:08 PM,1\n", "line 2: bad Timestamp"},
        {"1.2.3.4,NaN,6,2017-07-07 18:08:57,1\n", "line 2: bad Src IP or Dst IP"},
        {"1.2.3.4,5.6.7.8,300,2017-07-07 18:08:57,1\n", "line 2: bad Protocol"},
        {"1.2.3.4,5.6.7.8,6,2017-07-07 18:08:57,Infinity\n", "line 2: bad packet"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "%s%s", head, cases[i].row);
        r = open_text(text, NTA_READ_CIC);
        next_err(r, cases[i].err);
        nta_reader_close(r);
    }
}

/* ---- JSON lines ----------------------------------------------------------------------------- */

static void test_json_lines(void **state)
{
    (void)state;
    nta_reader *r = open_text(
        "{\"type\":\"IPFIX\",\"time_received_ns\":1700000000000000000,\"sampling_rate\":2,"
        "\"time_flow_end_ns\":1700000001500000000,\"bytes\":100,\"packets\":1,\"src_addr\":"
        "\"10.0.0.1\",\"dst_addr\":\"10.0.0.2\",\"proto\":6,\"src_port\":1,\"dst_port\":2}\n"
        "\n"
        "{\"ts\":1700000002000,\"src_ip\":\"10.0.0.3\",\"dst_ip\":\"10.0.0.4\",\"bytes\":7}\n"
        "{\"src_ip\":\"10.0.0.3\",\"dst_ip\":\"10.0.0.4\"}\n"
        "{\"ts\":1700000002000,\"src_ip\":\"10.0.0.3\"\n",
        NTA_READ_JSON);
    nta_record rec;
    next_ok(r, &rec);
    assert_int_equal(rec.ts_ms, 1700000001500);
    assert_int_equal(rec.bytes, 200);
    next_ok(r, &rec);
    assert_int_equal(rec.bytes, 7);
    next_err(r, "mem: line 4: a record without a time");
    nta_reader_close(r);
    r = open_text("{\"ts\":1700000002000,\"src_ip\":\"10.0.0.3\"\n", NTA_READ_GOFLOW2);
    next_err(r, "line 1: not a record (bad_json)");
    nta_reader_close(r);
}

/* ---- opening by path: format detection ------------------------------------------------------ */

static char *temp_file(const void *data, size_t n)
{
    char *path = strdup("/tmp/nta-test-reader-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
    return path;
}

static void detects(const void *data, size_t n, nta_reader_format want)
{
    char *path = temp_file(data, n);
    nta_reader_opts o;
    nta_reader_opts_init(&o);
    char err[512];
    nta_reader *r = nta_reader_open(path, &o, err, sizeof err);
    if (r == NULL)
        fail_msg("%s", err);
    assert_int_equal(nta_reader_get_format(r), want);
    nta_reader_close(r);
    unlink(path);
    free(path);
}

static void does_not_open(const void *data, size_t n, const char *want)
{
    char *path = temp_file(data, n);
    nta_reader_opts o;
    nta_reader_opts_init(&o);
    char err[512];
    assert_null(nta_reader_open(path, &o, err, sizeof err));
    assert_non_null(strstr(err, path));
    if (strstr(err, want) == NULL)
        fail_msg("error '%s' does not say '%s'", err, want);
    unlink(path);
    free(path);
}

static void test_format_detection(void **state)
{
    (void)state;
    cap c;
    cap_init(&c, DLT_EN10MB);
    detects(c.b, c.n, NTA_READ_PCAP);
    detects(zeek_tsv, strlen(zeek_tsv), NTA_READ_ZEEK);
    static const char zj[] = "{\"ts\":1.5,\"id.orig_h\":\"1.2.3.4\",\"id.resp_h\":\"1.1.1.1\"}\n";
    detects(zj, strlen(zj), NTA_READ_ZEEK);
    static const char cic[] = "\xEF\xBB\xBF Flow ID, Source IP, Timestamp\n";
    detects(cic, strlen(cic), NTA_READ_CIC);
    static const char js[] = "\n{\"ts\":1,\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"1.1.1.1\"}\n";
    detects(js, strlen(js), NTA_READ_JSON);
    does_not_open("", 0, "the file is empty");
    does_not_open("hello,world\n", 12, "name the format with --replay-format");
    nta_reader_opts o;
    nta_reader_opts_init(&o);
    char err[512];
    assert_null(nta_reader_open("/nonexistent/capture.pcap", &o, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/capture.pcap: No such file"));
    /* A directory opens but cannot be read: an error, not an empty file. */
    assert_null(nta_reader_open("/", &o, err, sizeof err));
    assert_non_null(strstr(err, "/: cannot read the start of the file"));
    o.format = NTA_READ_ZEEK;
    nta_reader *r = nta_reader_open("/", &o, err, sizeof err);
    assert_non_null(r);
    next_err(r, "/: after line 0: Is a directory");
    nta_reader_close(r);
}

static void test_format_names(void **state)
{
    (void)state;
    for (int f = 0; f < NTA_READ__COUNT; f++)
        assert_int_equal(nta_reader_format_by_name(nta_reader_format_name((nta_reader_format)f)),
                         f);
    assert_int_equal((int)nta_reader_format_by_name("pcapng"), -1);
    assert_int_equal((int)nta_reader_format_by_name(NULL), -1);
    assert_string_equal(nta_reader_format_name((nta_reader_format)99), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ethernet_qinq_tcp),
        cmocka_unit_test(test_sll_ipv6_extension_headers),
        cmocka_unit_test(test_sll2_and_raw_icmp),
        cmocka_unit_test(test_not_ip_and_truncated_are_skipped),
        cmocka_unit_test(test_ipv4_fragments_take_the_first_ones_ports),
        cmocka_unit_test(test_ipv6_fragments),
        cmocka_unit_test(test_flows_timeouts_and_order),
        cmocka_unit_test(test_flow_table_limit_exports_early),
        cmocka_unit_test(test_truncated_capture_keeps_what_was_read),
        cmocka_unit_test(test_bad_capture_headers),
        cmocka_unit_test(test_pcapng),
        cmocka_unit_test(test_pcapng_time_out_of_range),
        cmocka_unit_test(test_zeek_tsv),
        cmocka_unit_test(test_zeek_tsv_errors),
        cmocka_unit_test(test_zeek_json),
        cmocka_unit_test(test_cic_header_styles),
        cmocka_unit_test(test_cic_errors),
        cmocka_unit_test(test_json_lines),
        cmocka_unit_test(test_format_detection),
        cmocka_unit_test(test_format_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
