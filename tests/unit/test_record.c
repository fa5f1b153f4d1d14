/* Unit tests of runtime/record.c: addresses, protocol names, field names and
 * field text. Inputs go through exact-length heap copies (no NUL after
 * them) so ASan catches a read past len. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "record.h"

static int parse_n(nta_addr *a, const char *s, size_t n)
{
    char *buf = malloc(n > 0 ? n : 1);
    assert_non_null(buf);
    memcpy(buf, s, n);
    int rc = nta_addr_parse(a, buf, n);
    free(buf);
    return rc;
}

static int parse(nta_addr *a, const char *s)
{
    return parse_n(a, s, strlen(s));
}

static int proto_n(const char *s, size_t n)
{
    char *buf = malloc(n > 0 ? n : 1);
    assert_non_null(buf);
    memcpy(buf, s, n);
    int p = nta_proto_parse(buf, n);
    free(buf);
    return p;
}

static int proto(const char *s)
{
    return proto_n(s, strlen(s));
}

static void test_ipv4_valid(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint8_t b[4];
    } cases[] = {
        {"0.0.0.0", {0, 0, 0, 0}},
        {"255.255.255.255", {255, 255, 255, 255}},
        {"10.1.2.3", {10, 1, 2, 3}},
        {"192.168.100.200", {192, 168, 100, 200}},
        {"1.0.10.100", {1, 0, 10, 100}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nta_addr a;
        memset(&a, 0x55, sizeof a);
        assert_int_equal(parse(&a, cases[i].text), 0);
        const uint8_t want[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
                                  cases[i].b[0], cases[i].b[1], cases[i].b[2], cases[i].b[3]};
        assert_memory_equal(a.b, want, 16);
        assert_true(nta_addr_is_v4(&a));
    }
}

/* Leading zeros are rejected: inet_aton reads "010" as octal 8, other
 * tools as decimal 10, so such text has no single meaning. */
static void test_ipv4_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "1.2.3", "1.2.3.4.5", "256.0.0.1", "1.2.3.256", "1234.1.1.1", "01.2.3.4",
        "1.2.3.04", "1.2.3.00", "1..2.3", ".1.2.3", "1.2.3.", "1.2.3.4 ", " 1.2.3.4",
        "1.2.3.-4", "1.2.3.+4", "a.b.c.d", "1.2.3.4/24", "1.2.3.4:80", "0x1.2.3.4", "...",
        "999.999.999.999",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nta_addr a;
        if (parse(&a, bad[i]) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    nta_addr a;
    assert_int_equal(parse_n(&a, "1.2.3.4\0", 8), -1);
}

static void test_parse_respects_len(void **state)
{
    (void)state;
    nta_addr a;
    assert_int_equal(parse_n(&a, "10.0.0.15", 8), 0);
    const uint8_t want[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1};
    assert_memory_equal(a.b, want, 16);
    assert_int_equal(parse_n(&a, "2001:db8::12", 11), 0);
    const uint8_t want6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    assert_memory_equal(a.b, want6, 16);
}

static void test_ipv6_valid(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint8_t b[16];
    } cases[] = {
        {"::", {0}},
        {"::1", {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
        {"2001:db8::1", {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
        {"FE80::A:b:C:d", {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x0a, 0, 0x0b, 0, 0x0c, 0, 0x0d}},
        {"2001:0db8:0000:0000:0000:ff00:0042:8329",
         {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0x42, 0x83, 0x29}},
        {"::ffff:10.0.0.1", {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1}},
        {"64:ff9b::192.0.2.33", {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 33}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nta_addr a;
        if (parse(&a, cases[i].text) != 0)
            fail_msg("rejected \"%s\"", cases[i].text);
        assert_memory_equal(a.b, cases[i].b, 16);
    }
    nta_addr a;
    assert_int_equal(parse(&a, "::ffff:10.0.0.1"), 0);
    assert_true(nta_addr_is_v4(&a)); /* same key as "10.0.0.1" */
    assert_int_equal(parse(&a, "::1"), 0);
    assert_false(nta_addr_is_v4(&a));
}

static void test_ipv6_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        ":::", "2001:db8::1::2", "12345::", "2001:db8::g", "fe80::1%eth0", "1:2:3:4:5:6:7:8:9",
        "[::1]", "::1/128", ":", "1:2:3:4:5:6:7", " ::1",
        /* Longer than any address text (45 at most): rejected before the
         * copy into inet_pton's buffer, which ASan would see overflow. */
        "0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nta_addr a;
        if (parse(&a, bad[i]) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    nta_addr a;
    /* inet_pton would stop at the NUL and read "::1". */
    assert_int_equal(parse_n(&a, "::1\0:2", 6), -1);
}

static void test_format_round_trip(void **state)
{
    (void)state;
    static const char *const canonical[] = {
        "0.0.0.0", "10.1.2.3", "255.255.255.255", "::", "::1", "2001:db8::1",
        "fe80::a:b:c:d", "2001:db8:0:1:1:1:1:1", "64:ff9b::c000:221",
    };
    for (size_t i = 0; i < sizeof canonical / sizeof canonical[0]; i++) {
        nta_addr a;
        char buf[NTA_FIELD_TEXT_MAX];
        assert_int_equal(parse(&a, canonical[i]), 0);
        size_t n = nta_addr_format(&a, buf);
        assert_string_equal(buf, canonical[i]);
        assert_int_equal(n, strlen(canonical[i]));
    }
    /* Non-canonical text comes back canonical. */
    static const struct {
        const char *in, *out;
    } norm[] = {
        {"::ffff:10.0.0.1", "10.0.0.1"},
        {"2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"},
        {"64:ff9b::192.0.2.33", "64:ff9b::c000:221"},
    };
    for (size_t i = 0; i < sizeof norm / sizeof norm[0]; i++) {
        nta_addr a;
        char buf[NTA_FIELD_TEXT_MAX];
        assert_int_equal(parse(&a, norm[i].in), 0);
        nta_addr_format(&a, buf);
        assert_string_equal(buf, norm[i].out);
    }
    nta_addr a;
    char buf[NTA_FIELD_TEXT_MAX];
    assert_int_equal(parse(&a, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 0);
    assert_int_equal(nta_addr_format(&a, buf), 39);
    assert_string_equal(buf, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
}

static void test_addr_from_v4(void **state)
{
    (void)state;
    nta_addr a;
    char buf[NTA_FIELD_TEXT_MAX];
    nta_addr_from_v4(&a, 0x0A000001u);
    assert_true(nta_addr_is_v4(&a));
    assert_int_equal(nta_addr_format(&a, buf), 8);
    assert_string_equal(buf, "10.0.0.1");
    nta_addr_from_v4(&a, 0xC0A80114u);
    nta_addr_format(&a, buf);
    assert_string_equal(buf, "192.168.1.20");
}

static void test_proto_parse(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int want;
    } cases[] = {
        {"tcp", 6},   {"TCP", 6},     {"Udp", 17},        {"icmp", 1},    {"ICMP", 1},
        {"igmp", 2},  {"gre", 47},    {"esp", 50},        {"ah", 51},     {"icmpv6", 58},
        {"ICMPv6", 58}, {"ipv6-icmp", 58}, {"sctp", 132}, {"0", 0},       {"6", 6},
        {"255", 255}, {"007", 7},     {"256", -1},        {"1000", -1},   {"0006", -1},
        {"-1", -1},   {"", -1},       {"tc", -1},         {"tcpx", -1},   {"6a", -1},
        {" tcp", -1}, {"tcp ", -1},   {"6.0", -1},        {"+6", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = proto(cases[i].text);
        if (got != cases[i].want)
            fail_msg("proto \"%s\": got %d, want %d", cases[i].text, got, cases[i].want);
    }
    assert_int_equal(proto_n("tcpudp", 3), 6);
    assert_int_equal(proto_n("17x", 2), 17);
    assert_int_equal(proto_n("tcp\0", 4), -1);
}

static void test_field_names(void **state)
{
    (void)state;
    static const struct {
        nta_field f;
        const char *name;
        int numeric;
    } fields[] = {
        {NTA_F_SRC_IP, "src_ip", 0},       {NTA_F_DST_IP, "dst_ip", 0},
        {NTA_F_SRC_PORT, "src_port", 1},   {NTA_F_DST_PORT, "dst_port", 1},
        {NTA_F_PROTO, "proto", 1},         {NTA_F_BYTES, "bytes", 1},
        {NTA_F_PACKETS, "packets", 1},     {NTA_F_TCP_FLAGS, "tcp_flags", 1},
    };
    assert_int_equal(sizeof fields / sizeof fields[0], NTA_F__COUNT - 1);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        assert_int_equal(nta_field_by_name(fields[i].name), fields[i].f);
        assert_string_equal(nta_field_name(fields[i].f), fields[i].name);
        assert_int_equal(nta_field_is_numeric(fields[i].f), fields[i].numeric);
    }
    /* Canonical names only: aliases are the decoders' business. */
    assert_int_equal(nta_field_by_name("source_ip"), NTA_F_NONE);
    assert_int_equal(nta_field_by_name("SRC_IP"), NTA_F_NONE);
    assert_int_equal(nta_field_by_name(""), NTA_F_NONE);
    assert_string_equal(nta_field_name(NTA_F_NONE), "");
    assert_string_equal(nta_field_name(NTA_F__COUNT), "");
    assert_int_equal(nta_field_is_numeric(NTA_F_NONE), 0);
}

/* Whether text prefix holds address addr (both parsed with this code; the
 * answers below were worked out by hand from the bits). */
static int in_prefix(const char *prefix, const char *addr)
{
    nta_prefix p;
    nta_addr a;
    assert_int_equal(nta_prefix_parse(&p, prefix, strlen(prefix)), 0);
    assert_int_equal(nta_addr_parse(&a, addr, strlen(addr)), 0);
    return nta_prefix_match(&p, &a);
}

static void test_prefixes(void **state)
{
    (void)state;
    assert_true(in_prefix("10.0.0.0/8", "10.255.1.2"));
    assert_false(in_prefix("10.0.0.0/8", "11.0.0.1"));
    assert_true(in_prefix("172.16.0.0/12", "172.31.255.255"));
    assert_false(in_prefix("172.16.0.0/12", "172.32.0.0"));
    assert_false(in_prefix("172.16.0.0/12", "172.15.255.255"));
    assert_true(in_prefix("192.168.1.7", "192.168.1.7")); /* a bare address: /32 */
    assert_false(in_prefix("192.168.1.7", "192.168.1.6"));
    assert_true(in_prefix("10.1.2.3/8", "10.9.9.9")); /* host bits ignored */
    assert_true(in_prefix("0.0.0.0/0", "203.0.113.9"));
    assert_false(in_prefix("0.0.0.0/0", "2001:db8::1")); /* IPv4 prefixes: IPv4 only */
    assert_true(in_prefix("::/0", "2001:db8::1"));
    assert_true(in_prefix("::/0", "10.0.0.1"));
    assert_true(in_prefix("2001:db8::/32", "2001:db8:ffff::1"));
    assert_false(in_prefix("2001:db8::/32", "2001:db9::1"));
    assert_true(in_prefix("::ffff:0:0/96", "8.8.8.8")); /* IPv6 notation: all 128 bits */
    assert_true(in_prefix("::ffff:10.0.0.0/104", "10.200.0.1"));
    assert_false(in_prefix("::ffff:10.0.0.0/104", "11.0.0.1"));
    assert_true(in_prefix("2001:db8::1/128", "2001:db8::1"));
    static const char *const bad[] = {"", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/08",
                                      "10.0.0.0/-1", "10.0.0.0/8/9", "10.0.0.0 /8", "::/129",
                                      "2001:db8::/1000", "ten/8", "10.0.0/8"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nta_prefix p;
        assert_int_equal(nta_prefix_parse(&p, bad[i], strlen(bad[i])), -1);
    }
}

static void test_field_text_and_values(void **state)
{
    (void)state;
    nta_record r;
    memset(&r, 0, sizeof r);
    assert_int_equal(nta_addr_parse(&r.src, "10.0.0.1", 8), 0);
    assert_int_equal(nta_addr_parse(&r.dst, "2001:db8::1", 11), 0);
    r.src_port = 51234;
    r.dst_port = 443;
    r.proto = 6;
    r.bytes = UINT64_MAX;
    r.packets = 3;
    r.tcp_flags = 18;

    static const struct {
        nta_field f;
        const char *text;
        uint64_t value;
    } cases[] = {
        {NTA_F_SRC_IP, "10.0.0.1", 0},
        {NTA_F_DST_IP, "2001:db8::1", 0},
        {NTA_F_SRC_PORT, "51234", 51234},
        {NTA_F_DST_PORT, "443", 443},
        {NTA_F_PROTO, "6", 6},
        {NTA_F_BYTES, "18446744073709551615", UINT64_MAX},
        {NTA_F_PACKETS, "3", 3},
        {NTA_F_TCP_FLAGS, "18", 18},
        {NTA_F_NONE, "", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[NTA_FIELD_TEXT_MAX];
        memset(buf, 'x', sizeof buf);
        size_t n = nta_record_field_text(&r, cases[i].f, buf);
        assert_string_equal(buf, cases[i].text);
        assert_int_equal(n, strlen(cases[i].text));
        assert_true(nta_record_u64(&r, cases[i].f) == cases[i].value);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_valid),
        cmocka_unit_test(test_ipv4_invalid),
        cmocka_unit_test(test_parse_respects_len),
        cmocka_unit_test(test_ipv6_valid),
        cmocka_unit_test(test_ipv6_invalid),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_addr_from_v4),
        cmocka_unit_test(test_proto_parse),
        cmocka_unit_test(test_field_names),
        cmocka_unit_test(test_field_text_and_values),
        cmocka_unit_test(test_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
