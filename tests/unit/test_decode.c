/* Unit tests of the record decoders (runtime/decode.c).
 *
 * Expected values are written out by hand (epoch times were checked with
 * `date -u -d ... +%s`), never computed with the code under test. Every
 * payload is copied into a heap buffer of exactly its length, with no NUL
 * after it, so that ASan reports any read past the end.
 *
 * JSON objects have two readers, the single-pass scanner and jsmn (the
 * decoder's json_reference switch), which must agree on every input: the
 * malformed table, the robustness tests and test_json_readers_agree decode
 * each input with both and compare status and record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "decode.h"

#define ALL_FIELDS                                                                       \
    (NTA_HAS(NTA_F_SRC_IP) | NTA_HAS(NTA_F_DST_IP) | NTA_HAS(NTA_F_SRC_PORT) |           \
     NTA_HAS(NTA_F_DST_PORT) | NTA_HAS(NTA_F_PROTO) | NTA_HAS(NTA_F_BYTES) |             \
     NTA_HAS(NTA_F_PACKETS) | NTA_HAS(NTA_F_TCP_FLAGS))
#define ADDRS (NTA_HAS(NTA_F_SRC_IP) | NTA_HAS(NTA_F_DST_IP))

static nta_decode_status decode_n(nta_decoder *d, const char *s, size_t n, nta_record *r)
{
    char *buf = malloc(n > 0 ? n : 1);
    assert_non_null(buf);
    memcpy(buf, s, n);
    /* Garbage in *r shows whether the decoder really overwrites it. */
    memset(r, 0xAA, sizeof *r);
    nta_decode_status st = nta_decode(d, buf, n, r);
    free(buf);
    return st;
}

static nta_decode_status decode_with(nta_decoder *d, const char *s, nta_record *r)
{
    return decode_n(d, s, strlen(s), r);
}

static nta_decode_status decode_as(nta_format f, const char *s, nta_record *r)
{
    nta_decoder d;
    nta_decoder_init(&d, f);
    return decode_with(&d, s, r);
}

/* Decodes s with d, and with a copy of d that sends JSON to jsmn, and fails
 * unless both give the same status, record and decoder state (a CSV header
 * is learned alike). Returns the status; *fell_back says whether the scanner
 * left s to jsmn. */
static nta_decode_status decode_both(nta_decoder *d, const char *s, size_t n, nta_record *r,
                                     int *fell_back)
{
    nta_decoder ref = *d;
    ref.json_reference = 1;
    uint64_t before = d->json_fallbacks;
    nta_record rr;
    nta_decode_status st = decode_n(d, s, n, r);
    nta_decode_status rst = decode_n(&ref, s, n, &rr);
    if (st != rst || memcmp(r, &rr, sizeof rr) != 0 || d->ncols != ref.ncols ||
        memcmp(d->cols, ref.cols, sizeof d->cols) != 0)
        fail_msg("readers differ on \"%.*s\" (%s): scanner %s, jsmn %s%s", (int)n, s,
                 nta_format_name(d->format), nta_decode_status_name(st),
                 nta_decode_status_name(rst), st == rst ? ", records differ" : "");
    if (fell_back != NULL)
        *fell_back = d->json_fallbacks != before;
    return st;
}

static void assert_v4(const nta_addr *a, int b0, int b1, int b2, int b3)
{
    const uint8_t want[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
                              (uint8_t)b0, (uint8_t)b1, (uint8_t)b2, (uint8_t)b3};
    assert_memory_equal(a->b, want, 16);
}

/* ---- names ---------------------------------------------------------------- */

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(nta_decode_status_name(NTA_DEC_OK), "ok");
    assert_string_equal(nta_decode_status_name(NTA_DEC_EMPTY), "empty");
    assert_string_equal(nta_decode_status_name(NTA_DEC_SKIP), "skip");
    assert_string_equal(nta_decode_status_name(NTA_DEC_BAD_JSON), "bad_json");
    assert_string_equal(nta_decode_status_name(NTA_DEC_BAD_CSV), "bad_csv");
    assert_string_equal(nta_decode_status_name(NTA_DEC_MISSING_FIELD), "missing_field");
    assert_string_equal(nta_decode_status_name(NTA_DEC_BAD_ADDRESS), "bad_address");
    assert_string_equal(nta_decode_status_name(NTA_DEC_BAD_NUMBER), "bad_number");
    assert_string_equal(nta_decode_status_name(NTA_DEC_BAD_TIME), "bad_time");
    assert_string_equal(nta_decode_status_name(NTA_DEC_BAD_PROTO), "bad_proto");
    assert_string_equal(nta_decode_status_name(NTA_DEC_UNKNOWN_FORMAT), "unknown_format");
    assert_string_equal(nta_decode_status_name(NTA_DEC__COUNT), "unknown");
    assert_string_equal(nta_decode_status_name((nta_decode_status)-1), "unknown");
}

static void test_format_names(void **state)
{
    (void)state;
    assert_int_equal(nta_format_by_name("auto"), NTA_FMT_AUTO);
    assert_int_equal(nta_format_by_name("json"), NTA_FMT_JSON);
    assert_int_equal(nta_format_by_name("csv"), NTA_FMT_CSV);
    assert_int_equal(nta_format_by_name("goflow2"), NTA_FMT_GOFLOW2);
    assert_int_equal(nta_format_by_name("JSON"), (nta_format)-1);
    assert_int_equal(nta_format_by_name("goflow"), (nta_format)-1);
    assert_int_equal(nta_format_by_name(""), (nta_format)-1);
    assert_int_equal(nta_format_by_name(NULL), (nta_format)-1);
    assert_string_equal(nta_format_name(NTA_FMT_AUTO), "auto");
    assert_string_equal(nta_format_name(NTA_FMT_JSON), "json");
    assert_string_equal(nta_format_name(NTA_FMT_CSV), "csv");
    assert_string_equal(nta_format_name(NTA_FMT_GOFLOW2), "goflow2");
    assert_string_equal(nta_format_name((nta_format)17), "unknown");
}

/* ---- JSON ----------------------------------------------------------------- */

static const char json_full[] =
    "{\"ts\":1700000000123,\"src_ip\":\"10.1.2.3\",\"dst_ip\":\"192.168.1.20\","
    "\"src_port\":51234,\"dst_port\":443,\"proto\":\"tcp\",\"bytes\":1500,\"packets\":3,"
    "\"tcp_flags\":\"SA\"}";

static void test_json_full_record(void **state)
{
    (void)state;
    nta_record r;
    assert_int_equal(decode_as(NTA_FMT_JSON, json_full, &r), NTA_DEC_OK);
    assert_int_equal(r.ts_ms, 1700000000123LL);
    assert_v4(&r.src, 10, 1, 2, 3);
    assert_v4(&r.dst, 192, 168, 1, 20);
    assert_int_equal(r.src_port, 51234);
    assert_int_equal(r.dst_port, 443);
    assert_int_equal(r.proto, 6);
    assert_int_equal(r.bytes, 1500);
    assert_int_equal(r.packets, 3);
    assert_int_equal(r.tcp_flags, 18);
    assert_int_equal(r.present, ALL_FIELDS);
}

static void test_json_aliases(void **state)
{
    (void)state;
    nta_record r;
    assert_int_equal(decode_as(NTA_FMT_JSON,
                               "{\"timestamp\":1700000000,\"source_ip\":\"1.2.3.4\","
                               "\"destination_ip\":\"5.6.7.8\",\"protocol\":\"UDP\","
                               "\"bytes_sent\":99}",
                               &r),
                     NTA_DEC_OK);
    assert_int_equal(r.ts_ms, 1700000000000LL);
    assert_v4(&r.src, 1, 2, 3, 4);
    assert_v4(&r.dst, 5, 6, 7, 8);
    assert_int_equal(r.proto, 17);
    assert_int_equal(r.bytes, 99);
    assert_int_equal(r.present, ADDRS | NTA_HAS(NTA_F_PROTO) | NTA_HAS(NTA_F_BYTES));

    assert_int_equal(decode_as(NTA_FMT_JSON,
                               "{\"time\":\"2023-11-14T22:13:20Z\",\"src\":\"9.9.9.9\","
                               "\"dst\":\"8.8.8.8\",\"protocol\":1}",
                               &r),
                     NTA_DEC_OK);
    assert_int_equal(r.ts_ms, 1700000000000LL);
    assert_v4(&r.src, 9, 9, 9, 9);
    assert_v4(&r.dst, 8, 8, 8, 8);
    assert_int_equal(r.proto, 1);
}

static void test_json_defaults(void **state)
{
    (void)state;
    nta_record r;
    assert_int_equal(decode_as(NTA_FMT_JSON, "{\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"5.6.7.8\"}", &r),
                     NTA_DEC_OK);
    assert_true(r.ts_ms == NTA_TS_NONE);
    assert_int_equal(r.bytes, 0);
    assert_int_equal(r.packets, 1);
    assert_int_equal(r.src_port, 0);
    assert_int_equal(r.dst_port, 0);
    assert_int_equal(r.proto, 0);
    assert_int_equal(r.tcp_flags, 0);
    assert_int_equal(r.present, ADDRS);
}

static void test_json_nulls_are_absent(void **state)
{
    (void)state;
    nta_record r;
    assert_int_equal(decode_as(NTA_FMT_JSON,
                               "{\"ts\":null,\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"5.6.7.8\","
                               "\"bytes\":null,\"packets\":null,\"proto\":null,"
                               "\"tcp_flags\":null,\"src_port\":\"\"}",
                               &r),
                     NTA_DEC_OK);
    assert_true(r.ts_ms == NTA_TS_NONE);
    assert_int_equal(r.packets, 1);
    assert_int_equal(r.bytes, 0);
    assert_int_equal(r.present, ADDRS);
}

static void test_json_numbers_as_strings(void **state)
{
    (void)state;
    nta_record r;
    assert_int_equal(decode_as(NTA_FMT_JSON,
                               "{\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"5.6.7.8\",\"src_port\":\"80\","
                               "\"dst_port\":\"65535\",\"proto\":\"17\",\"bytes\":\"1500\","
                               "\"packets\":\"2\",\"tcp_flags\":\"24\",\"ts\":\"1700000000.5\"}",
                               &r),
                     NTA_DEC_OK);
    assert_int_equal(r.src_port, 80);
    assert_int_equal(r.dst_port, 65535);
    assert_int_equal(r.proto, 17);
    assert_int_equal(r.bytes, 1500);
    assert_int_equal(r.packets, 2);
    assert_int_equal(r.tcp_flags, 24);
    assert_int_equal(r.ts_ms, 1700000000500LL);
    assert_int_equal(r.present, ALL_FIELDS);
}

static void test_json_number_limits(void **state)
{
    (void)state;
    nta_record r;
    assert_int_equal(decode_as(NTA_FMT_JSON,
                               "{\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"5.6.7.8\",\"src_port\":0,"
                               "\"bytes\":18446744073709551615,\"packets\":0,\"proto\":255,"
                               "\"tcp_flags\":255}",
                               &r),
                     NTA_DEC_OK);
    assert_true(r.bytes == UINT64_MAX);
    assert_int_equal(r.packets, 0);
    assert_int_equal(r.src_port, 0);
    assert_int_equal(r.proto, 255);
    assert_int_equal(r.tcp_flags, 255);
}

static void test_json_time_forms(void **state)
{
    (void)state;
    static const struct {
        const char *ts;
        int64_t want;
    } cases[] = {
        {"1700000000123", 1700000000123LL},
        {"1700000000", 1700000000000LL},
        {"1700000000.5", 1700000000500LL},
        {"1700000000.123", 1700000000123LL},
        {"1700000000.1239", 1700000000123LL},
        {"1700000000.000001", 1700000000000LL},
        {"\"1700000000.5\"", 1700000000500LL},
        {"\"1700000000123\"", 1700000000123LL},
        {"1700000000123.9", 1700000000123LL},
        {"99999999999", 99999999999000LL},
        {"100000000000", 100000000000LL},
        {"0", 0},
        {"\"2023-11-14T22:13:20.123Z\"", 1700000000123LL},
        {"\"2023-11-14T22:13:20Z\"", 1700000000000LL},
        {"\"2023-11-14T22:13:20.5Z\"", 1700000000500LL},
        {"\"2023-11-14T22:13:20.12Z\"", 1700000000120LL},
        {"\"2023-11-14T22:13:20.123456789Z\"", 1700000000123LL},
        {"\"2023-11-15T00:13:20+02:00\"", 1700000000000LL},
        {"\"2023-11-14T17:13:20.5-05:00\"", 1700000000500LL},
        {"\"2023-11-14 22:13:20.123Z\"", 1700000000123LL},
        {"\"2023-11-14t22:13:20z\"", 1700000000000LL},
        {"\"2023-11-14T22:13:20-00:00\"", 1700000000000LL},
        {"\"1970-01-01T00:00:00Z\"", 0},
        {"\"1969-12-31T23:59:59Z\"", -1000LL},
        {"\"1900-01-01T00:00:00Z\"", -2208988800000LL},
        {"\"2024-02-29T00:00:00Z\"", 1709164800000LL},
        {"\"2000-03-01T00:00:00Z\"", 951868800000LL},
        {"\"2100-03-01T00:00:00Z\"", 4107542400000LL},
        {"\"2021-05-24T01:33:20Z\"", 1621820000000LL},
        {"\"2023-11-14T22:13:59.999+00:00\"", 1700000039999LL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[256];
        nta_record r;
        snprintf(buf, sizeof buf, "{\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"5.6.7.8\",\"ts\":%s}",
                 cases[i].ts);
        nta_decode_status st = decode_as(NTA_FMT_JSON, buf, &r);
        if (st != NTA_DEC_OK || r.ts_ms != cases[i].want)
            fail_msg("ts %s: status %s, ts_ms %lld, want %lld", cases[i].ts,
                     nta_decode_status_name(st), (long long)r.ts_ms, (long long)cases[i].want);
    }
}

static void test_json_tcp_flags(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        int want;
    } cases[] = {
        {"18", 18},       {"\"S\"", 2},   {"\"SA\"", 18},  {"\"FPA\"", 25},
        {"\"fpa\"", 25},  {"\"R\"", 4},   {"\"U\"", 32},   {"\"UAPRSF\"", 63},
        {"\"EC\"", 192},  {"\"SSA\"", 18}, {"0", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[256];
        nta_record r;
        snprintf(buf, sizeof buf,
                 "{\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"5.6.7.8\",\"tcp_flags\":%s}", cases[i].v);
        nta_decode_status st = decode_as(NTA_FMT_JSON, buf, &r);
        if (st != NTA_DEC_OK || r.tcp_flags != cases[i].want ||
            !(r.present & NTA_HAS(NTA_F_TCP_FLAGS)))
            fail_msg("tcp_flags %s: status %s, flags %d, want %d", cases[i].v,
                     nta_decode_status_name(st), r.tcp_flags, cases[i].want);
    }
}

static void test_json_proto_forms(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        int want;
    } cases[] = {
        {"\"tcp\"", 6},   {"\"TCP\"", 6},     {"\"Udp\"", 17},    {"\"icmp\"", 1},
        {"\"ICMPv6\"", 58}, {"\"sctp\"", 132}, {"\"gre\"", 47},   {"\"esp\"", 50},
        {"6", 6},         {"0", 0},           {"255", 255},       {"\"47\"", 47},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[256];
        nta_record r;
        snprintf(buf, sizeof buf, "{\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"5.6.7.8\",\"proto\":%s}",
                 cases[i].v);
        nta_decode_status st = decode_as(NTA_FMT_JSON, buf, &r);
        if (st != NTA_DEC_OK || r.proto != cases[i].want)
            fail_msg("proto %s: status %s, proto %d, want %d", cases[i].v,
                     nta_decode_status_name(st), r.proto, cases[i].want);
    }
}

static void test_json_ipv6(void **state)
{
    (void)state;
    nta_record r;
    assert_int_equal(decode_as(NTA_FMT_JSON,
                               "{\"src_ip\":\"2001:db8::1\",\"dst_ip\":\"::ffff:10.0.0.1\"}", &r),
                     NTA_DEC_OK);
    const uint8_t want[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    assert_memory_equal(r.src.b, want, 16);
    assert_v4(&r.dst, 10, 0, 0, 1);
}

static void test_json_skips_unknown_values(void **state)
{
    (void)state;
    nta_record r;
    /* Nested containers, a string holding braces and an escaped quote, and
     * literals, all under keys we do not read. */
    assert_int_equal(
        decode_as(NTA_FMT_JSON,
                  "{\"meta\":{\"a\":[1,2,{\"b\":\"}]\"}],\"c\":{}},\"src_ip\":\"1.2.3.4\","
                  "\"tags\":[\"x\",[\"y\"]],\"dst_ip\":\"5.6.7.8\","
                  "\"note\":\"he said \\\"bytes\\\": 5\",\"ok\":true,\"no\":false,\"nil\":null,"
                  "\"f\":-1.5e3,\"bytes\":7,\"empty\":[],\"\":1}",
                  &r),
        NTA_DEC_OK);
    assert_v4(&r.src, 1, 2, 3, 4);
    assert_v4(&r.dst, 5, 6, 7, 8);
    assert_int_equal(r.bytes, 7);
    assert_int_equal(r.present, ADDRS | NTA_HAS(NTA_F_BYTES));
}

static void test_json_whitespace_bom_and_nul(void **state)
{
    (void)state;
    nta_record r;
    assert_int_equal(decode_as(NTA_FMT_JSON,
                               " \r\n\t{ \"src_ip\" : \"1.2.3.4\" ,\n \"dst_ip\":\"5.6.7.8\",\n"
                               "\"bytes\" : 3 }\r\n",
                               &r),
                     NTA_DEC_OK);
    assert_int_equal(r.bytes, 3);
    nta_decoder d;
    nta_decoder_init(&d, NTA_FMT_JSON);
    static const char with_nul[] = "{\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"5.6.7.8\"}";
    assert_int_equal(decode_n(&d, with_nul, sizeof with_nul, &r), NTA_DEC_OK);
    static const char with_bom[] = "\xEF\xBB\xBF{\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"5.6.7.8\"}";
    assert_int_equal(decode_with(&d, with_bom, &r), NTA_DEC_OK);
}

static void test_json_token_budget(void **state)
{
    (void)state;
    /* 100 unknown keys = 201 tokens: inside the budget. 200 keys: not. */
    for (int keys = 100; keys <= 200; keys += 100) {
        char buf[8192];
        size_t n = (size_t)snprintf(buf, sizeof buf, "{\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"5.6.7.8\"");
        for (int i = 0; i < keys - 2; i++)
            n += (size_t)snprintf(buf + n, sizeof buf - n, ",\"k%d\":%d", i, i);
        n += (size_t)snprintf(buf + n, sizeof buf - n, "}");
        nta_record r;
        assert_int_equal(decode_as(NTA_FMT_JSON, buf, &r),
                         keys == 100 ? NTA_DEC_OK : NTA_DEC_BAD_JSON);
    }
}

static void test_decode_overwrites_record(void **state)
{
    (void)state;
    nta_record r;
    assert_int_equal(decode_as(NTA_FMT_JSON, "{\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"::1\"}", &r),
                     NTA_DEC_OK);
    const uint8_t loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    assert_memory_equal(r.dst.b, loop6, 16);
    assert_int_equal(r.src_port, 0);
    assert_int_equal(r.dst_port, 0);
    assert_int_equal(r.tcp_flags, 0);
    assert_int_equal(r.present, ADDRS);
    /* Even a rejected payload leaves no garbage behind. */
    assert_int_equal(decode_as(NTA_FMT_JSON, "", &r), NTA_DEC_EMPTY);
    assert_int_equal(r.present, 0);
    assert_true(r.ts_ms == NTA_TS_NONE);
    assert_int_equal(r.packets, 1);
}

/* ---- goflow2 -------------------------------------------------------------- */

/* Shape of goflow2 v2 output: snake_case protobuf names, times in ns, proto
 * and etype rendered as names, arrays for stacks and paths. */
static const char goflow2_v2[] =
    "{\"type\":\"SFLOW_5\",\"time_received_ns\":1700000000999000000,\"sequence_num\":7,"
    "\"sampling_rate\":100,\"sampler_address\":\"192.168.1.254\","
    "\"time_flow_start_ns\":1700000000100000000,\"time_flow_end_ns\":1700000000200123456,"
    "\"bytes\":70,\"packets\":1,\"src_addr\":\"192.168.1.1\",\"dst_addr\":\"10.0.0.1\","
    "\"etype\":\"IPv4\",\"proto\":\"TCP\",\"src_port\":443,\"dst_port\":46344,\"in_if\":1,"
    "\"out_if\":2,\"src_mac\":\"ff:ff:ff:ff:ff:ff\",\"dst_mac\":\"00:11:22:33:44:55\","
    "\"src_vlan\":0,\"dst_vlan\":0,\"vlan_id\":0,\"ip_tos\":0,\"forwarding_status\":0,"
    "\"ip_ttl\":64,\"ip_flags\":2,\"tcp_flags\":16,\"icmp_type\":0,\"icmp_code\":0,"
    "\"ipv6_flow_label\":0,\"fragment_id\":54044,\"fragment_offset\":0,\"src_as\":65001,"
    "\"dst_as\":65002,\"next_hop\":\"\",\"next_hop_as\":0,\"src_net\":\"0.0.0.0/0\","
    "\"dst_net\":\"0.0.0.0/0\",\"bgp_next_hop\":\"\",\"bgp_communities\":[],"
    "\"as_path\":[65001,65002],\"mpls_ttl\":[],\"mpls_label\":[],\"mpls_ip\":[],"
    "\"observation_domain_id\":0,\"observation_point_id\":0,"
    "\"layer_stack\":[\"Ethernet\",\"IPv4\",\"TCP\"],\"layer_size\":[14,20,32],"
    "\"ipv6_routing_header_addresses\":[],\"ipv6_routing_header_seg_left\":0}";

/* goflow2 v1 (PascalCase, times in seconds), as in its README. */
static const char goflow2_v1[] =
    "{\"Type\":\"SFLOW_5\",\"TimeFlowEnd\":1621820000,\"TimeFlowStart\":1621819990,"
    "\"TimeReceived\":1621820005,\"Bytes\":70,\"Packets\":1,\"SamplingRate\":100,"
    "\"SamplerAddress\":\"192.168.1.254\",\"DstAddr\":\"10.0.0.1\","
    "\"DstMac\":\"ff:ff:ff:ff:ff:ff\",\"SrcAddr\":\"192.168.1.1\","
    "\"SrcMac\":\"ff:ff:ff:ff:ff:ff\",\"InIf\":1,\"OutIf\":2,\"Etype\":2048,"
    "\"EtypeName\":\"IPv4\",\"Proto\":6,\"ProtoName\":\"TCP\",\"SrcPort\":443,"
    "\"DstPort\":46344,\"FragmentId\":54044,\"FragmentOffset\":16384,\"IPTTL\":64,"
    "\"IPTos\":0,\"TCPFlags\":16}";

static void test_goflow2_v2(void **state)
{
    (void)state;
    nta_record r;
    assert_int_equal(decode_as(NTA_FMT_GOFLOW2, goflow2_v2, &r), NTA_DEC_OK);
    assert_int_equal(r.ts_ms, 1700000000200LL);
    assert_v4(&r.src, 192, 168, 1, 1);
    assert_v4(&r.dst, 10, 0, 0, 1);
    assert_int_equal(r.src_port, 443);
    assert_int_equal(r.dst_port, 46344);
    assert_int_equal(r.proto, 6);
    assert_int_equal(r.tcp_flags, 16);
    assert_int_equal(r.bytes, 7000);
    assert_int_equal(r.packets, 100);
    assert_int_equal(r.present, ALL_FIELDS);
}

static void test_goflow2_v1(void **state)
{
    (void)state;
    nta_record r;
    assert_int_equal(decode_as(NTA_FMT_GOFLOW2, goflow2_v1, &r), NTA_DEC_OK);
    assert_int_equal(r.ts_ms, 1621820000000LL);
    assert_v4(&r.src, 192, 168, 1, 1);
    assert_v4(&r.dst, 10, 0, 0, 1);
    assert_int_equal(r.src_port, 443);
    assert_int_equal(r.dst_port, 46344);
    assert_int_equal(r.proto, 6);
    assert_int_equal(r.tcp_flags, 16);
    assert_int_equal(r.bytes, 7000);
    assert_int_equal(r.packets, 100);
    assert_int_equal(r.present, ALL_FIELDS);
}

#define G_ADDRS "\"src_addr\":\"1.1.1.1\",\"dst_addr\":\"2.2.2.2\""
#define G1_ADDRS "\"SrcAddr\":\"1.1.1.1\",\"DstAddr\":\"2.2.2.2\""

static void test_goflow2_event_time(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        int64_t want;
    } cases[] = {
        {"{" G_ADDRS ",\"time_received_ns\":1700000000999000000,\"time_flow_start_ns\":"
         "1700000000100000000,\"time_flow_end_ns\":0}",
         1700000000100LL},
        {"{" G_ADDRS ",\"time_received_ns\":1700000000999000000,\"time_flow_start_ns\":0,"
         "\"time_flow_end_ns\":0}",
         1700000000999LL},
        {"{" G_ADDRS ",\"time_received_ns\":1700000000999999999}", 1700000000999LL},
        {"{" G_ADDRS ",\"time_flow_end_ns\":\"1700000000200000000\"}", 1700000000200LL},
        /* goflow2's datetimenano renderer writes RFC 3339 text instead. */
        {"{" G_ADDRS ",\"time_received_ns\":\"2023-11-14T22:13:20.123456789Z\"}",
         1700000000123LL},
        {"{" G1_ADDRS ",\"TimeReceived\":1703760968,\"TimeFlowStart\":0,\"TimeFlowEnd\":0,"
         "\"TimeFlowStartMs\":0,\"TimeFlowEndMs\":0}",
         1703760968000LL},
        {"{" G1_ADDRS ",\"TimeReceived\":1703760968,\"TimeFlowStart\":1703760900,"
         "\"TimeFlowEnd\":1703760960,\"TimeFlowStartMs\":1703760900123,"
         "\"TimeFlowEndMs\":1703760960456}",
         1703760960456LL},
        {"{" G1_ADDRS ",\"TimeReceived\":1703760968,\"TimeFlowStart\":1703760900,"
         "\"TimeFlowEnd\":0}",
         1703760900000LL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nta_record r;
        nta_decode_status st = decode_as(NTA_FMT_GOFLOW2, cases[i].json, &r);
        if (st != NTA_DEC_OK || r.ts_ms != cases[i].want)
            fail_msg("case %zu: status %s, ts_ms %lld, want %lld", i, nta_decode_status_name(st),
                     (long long)r.ts_ms, (long long)cases[i].want);
    }
    nta_record r;
    assert_int_equal(decode_as(NTA_FMT_GOFLOW2, "{" G_ADDRS ",\"time_flow_end_ns\":0}", &r),
                     NTA_DEC_OK);
    assert_true(r.ts_ms == NTA_TS_NONE);
}

static void test_goflow2_sampling(void **state)
{
    (void)state;
    static const struct {
        const char *rate;
        uint64_t bytes, packets;
    } cases[] = {
        {"", 1000, 4},
        {",\"sampling_rate\":0", 1000, 4},
        {",\"sampling_rate\":1", 1000, 4},
        {",\"sampling_rate\":null", 1000, 4},
        {",\"sampling_rate\":2", 2000, 8},
        {",\"sampling_rate\":512", 512000, 2048},
        {",\"sampling_rate\":\"10\"", 10000, 40},
        {",\"SamplingRate\":3", 3000, 12},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[256];
        nta_record r;
        snprintf(buf, sizeof buf, "{" G_ADDRS ",\"bytes\":1000,\"packets\":4%s}", cases[i].rate);
        nta_decode_status st = decode_as(NTA_FMT_GOFLOW2, buf, &r);
        if (st != NTA_DEC_OK || r.bytes != cases[i].bytes || r.packets != cases[i].packets)
            fail_msg("rate '%s': status %s, bytes %llu packets %llu", cases[i].rate,
                     nta_decode_status_name(st), (unsigned long long)r.bytes,
                     (unsigned long long)r.packets);
    }
    /* A sample without a packet count stands for one sampled packet. */
    nta_record r;
    assert_int_equal(decode_as(NTA_FMT_GOFLOW2, "{" G_ADDRS ",\"sampling_rate\":64}", &r),
                     NTA_DEC_OK);
    assert_int_equal(r.packets, 64);
    assert_int_equal(r.bytes, 0);
    assert_int_equal(r.present, ADDRS);
}

static void test_goflow2_unnamed_proto(void **state)
{
    (void)state;
    nta_record r;
    /* goflow2 v2 names only ICMP/TCP/UDP/ICMPv6/SCTP and writes "" for the
     * rest (GRE, ESP...): a known flow with an unknown protocol. */
    assert_int_equal(decode_as(NTA_FMT_GOFLOW2, "{" G_ADDRS ",\"proto\":\"\",\"bytes\":5}", &r),
                     NTA_DEC_OK);
    assert_int_equal(r.present, ADDRS | NTA_HAS(NTA_F_BYTES));
    assert_int_equal(decode_as(NTA_FMT_GOFLOW2, "{" G_ADDRS ",\"proto\":\"ICMPv6\"}", &r),
                     NTA_DEC_OK);
    assert_int_equal(r.proto, 58);
}

static void test_goflow2_ignores_plain_json_keys(void **state)
{
    (void)state;
    nta_record r;
    assert_int_equal(decode_as(NTA_FMT_GOFLOW2, "{\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"5.6.7.8\"}", &r),
                     NTA_DEC_MISSING_FIELD);
    assert_int_equal(decode_as(NTA_FMT_JSON, "{" G_ADDRS "}", &r), NTA_DEC_MISSING_FIELD);
}

/* ---- auto ----------------------------------------------------------------- */

static void test_auto_detection(void **state)
{
    (void)state;
    nta_decoder d;
    nta_record r;
    nta_decoder_init(&d, NTA_FMT_AUTO);

    assert_int_equal(decode_with(&d, goflow2_v2, &r), NTA_DEC_OK);
    assert_int_equal(r.bytes, 7000); /* sampling applied: read as goflow2 */
    assert_int_equal(decode_with(&d, goflow2_v1, &r), NTA_DEC_OK);
    assert_int_equal(r.packets, 100);
    assert_int_equal(decode_with(&d, json_full, &r), NTA_DEC_OK);
    assert_int_equal(r.bytes, 1500);
    assert_int_equal(r.ts_ms, 1700000000123LL);

    /* Each goflow2-only key alone switches the reading to goflow2. */
    static const char *const markers[] = {
        "time_received_ns", "src_addr", "SrcAddr", "TimeReceived",
        "sampling_rate", "SamplingRate", "sampler_address", "SamplerAddress",
    };
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++) {
        char buf[256];
        snprintf(buf, sizeof buf,
                 "{\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"5.6.7.8\",\"%s\":\"1.1.1.1\"}", markers[i]);
        nta_decode_status st = decode_with(&d, buf, &r);
        if (st == NTA_DEC_OK)
            fail_msg("key %s did not select goflow2", markers[i]);
    }
    /* dst_addr is goflow2's too but not a marker: plain JSON. */
    assert_int_equal(decode_with(&d, "{\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"5.6.7.8\",\"dst_addr\":1}", &r),
                     NTA_DEC_OK);

    assert_int_equal(decode_with(&d, "10.0.0.1,10.0.0.2,1500", &r), NTA_DEC_OK);
    assert_v4(&r.src, 10, 0, 0, 1);
    assert_int_equal(r.bytes, 1500);
    assert_int_equal(decode_with(&d, "[{\"src_ip\":\"1.2.3.4\"}]", &r), NTA_DEC_BAD_JSON);
    assert_int_equal(decode_with(&d, "\x80\x01\x02garbage", &r), NTA_DEC_UNKNOWN_FORMAT);
    assert_int_equal(decode_with(&d, "\x08\x96\x01", &r), NTA_DEC_UNKNOWN_FORMAT);

    /* A header line in auto mode is learned like in csv mode. */
    assert_int_equal(decode_with(&d, "bytes,src_ip,dst_ip", &r), NTA_DEC_SKIP);
    assert_int_equal(decode_with(&d, "42,10.0.0.1,10.0.0.2", &r), NTA_DEC_OK);
    assert_int_equal(r.bytes, 42);
}

static void test_unknown_decoder_format(void **state)
{
    (void)state;
    nta_decoder d;
    nta_record r;
    nta_decoder_init(&d, (nta_format)42);
    assert_int_equal(decode_with(&d, json_full, &r), NTA_DEC_UNKNOWN_FORMAT);
}

/* ---- CSV ------------------------------------------------------------------ */

static void test_csv_default_columns(void **state)
{
    (void)state;
    nta_record r;
    assert_int_equal(decode_as(NTA_FMT_CSV, "10.0.0.1,10.0.0.2,1500", &r), NTA_DEC_OK);
    assert_v4(&r.src, 10, 0, 0, 1);
    assert_v4(&r.dst, 10, 0, 0, 2);
    assert_int_equal(r.bytes, 1500);
    assert_int_equal(r.packets, 1);
    assert_true(r.ts_ms == NTA_TS_NONE);
    assert_int_equal(r.present, ADDRS | NTA_HAS(NTA_F_BYTES));

    assert_int_equal(decode_as(NTA_FMT_CSV, "  10.0.0.1 ,\t10.0.0.2 , 7 \r\n", &r), NTA_DEC_OK);
    assert_v4(&r.dst, 10, 0, 0, 2);
    assert_int_equal(r.bytes, 7);
    assert_int_equal(decode_as(NTA_FMT_CSV, "10.0.0.1,10.0.0.2,3\n", &r), NTA_DEC_OK);
    assert_int_equal(decode_as(NTA_FMT_CSV, "10.0.0.1,2001:db8::2,", &r), NTA_DEC_OK);
    assert_int_equal(r.present, ADDRS);
}

static void test_csv_quoted_fields(void **state)
{
    (void)state;
    nta_record r;
    assert_int_equal(decode_as(NTA_FMT_CSV, "\"10.0.0.1\", \"10.0.0.2\" ,\"1500\"", &r), NTA_DEC_OK);
    assert_v4(&r.src, 10, 0, 0, 1);
    assert_int_equal(r.bytes, 1500);

    nta_decoder d;
    char err[128];
    nta_decoder_init(&d, NTA_FMT_CSV);
    const char *cols[] = {"src_ip", "-", "dst_ip", "", "bytes"};
    assert_int_equal(nta_decoder_set_columns(&d, cols, 5, err, sizeof err), 0);
    assert_int_equal(decode_with(&d, "1.1.1.1,\"a, \"\"quoted\"\" note\",2.2.2.2,\"\",9", &r),
                     NTA_DEC_OK);
    assert_v4(&r.src, 1, 1, 1, 1);
    assert_v4(&r.dst, 2, 2, 2, 2);
    assert_int_equal(r.bytes, 9);
    assert_int_equal(decode_with(&d, "1.1.1.1,\"line\nbreak\",2.2.2.2,x,9", &r), NTA_DEC_OK);
}

static void test_csv_header_learning(void **state)
{
    (void)state;
    nta_decoder d;
    nta_record r;
    nta_decoder_init(&d, NTA_FMT_CSV);

    assert_int_equal(decode_with(&d, "src_ip,dst_ip,bytes_sent", &r), NTA_DEC_SKIP);
    assert_int_equal(d.ncols, 3);
    assert_int_equal(d.cols_from_header, 1);
    assert_int_equal(decode_with(&d, "10.0.0.1,10.0.0.2,5", &r), NTA_DEC_OK);
    assert_int_equal(r.bytes, 5);

    assert_int_equal(decode_with(&d, "ts,src_ip,dst_ip,src_port,dst_port,proto,bytes,packets\r\n", &r),
                     NTA_DEC_SKIP);
    assert_int_equal(d.ncols, 8);
    const int want[8] = {NTA_CSV_TS,     NTA_F_SRC_IP, NTA_F_DST_IP, NTA_F_SRC_PORT,
                         NTA_F_DST_PORT, NTA_F_PROTO,  NTA_F_BYTES,  NTA_F_PACKETS};
    assert_memory_equal(d.cols, want, sizeof want);
    assert_int_equal(decode_with(&d, "1700000000.5,10.0.0.1,10.0.0.2,1234,80,tcp,100,2", &r),
                     NTA_DEC_OK);
    assert_int_equal(r.ts_ms, 1700000000500LL);
    assert_v4(&r.src, 10, 0, 0, 1);
    assert_v4(&r.dst, 10, 0, 0, 2);
    assert_int_equal(r.src_port, 1234);
    assert_int_equal(r.dst_port, 80);
    assert_int_equal(r.proto, 6);
    assert_int_equal(r.bytes, 100);
    assert_int_equal(r.packets, 2);
    assert_int_equal(decode_with(&d, "2023-11-14T22:13:20Z,10.0.0.1,10.0.0.2,,,udp,1,1", &r),
                     NTA_DEC_OK);
    assert_int_equal(r.ts_ms, 1700000000000LL);
    assert_int_equal(r.proto, 17);
    assert_int_equal(r.present, ADDRS | NTA_HAS(NTA_F_PROTO) | NTA_HAS(NTA_F_BYTES) |
                                    NTA_HAS(NTA_F_PACKETS));
    assert_int_equal(decode_with(&d, "10.0.0.1,10.0.0.2,5", &r), NTA_DEC_BAD_CSV);

    /* Names are case-insensitive and may be quoted, padded or skipped. */
    assert_int_equal(decode_with(&d, " SRC_IP ,\"Destination_IP\",-,Tcp_Flags,time", &r),
                     NTA_DEC_SKIP);
    assert_int_equal(d.ncols, 5);
    assert_int_equal(decode_with(&d, "10.0.0.1,10.0.0.2,whatever,FA,1700000000123", &r), NTA_DEC_OK);
    assert_int_equal(r.tcp_flags, 17);
    assert_int_equal(r.ts_ms, 1700000000123LL);
}

static void test_csv_configured_columns(void **state)
{
    (void)state;
    nta_decoder d;
    nta_record r;
    char err[128];
    nta_decoder_init(&d, NTA_FMT_CSV);
    const char *cols[] = {"ts", "-", "src", "dst", "bytes", "tcp_flags"};
    assert_int_equal(nta_decoder_set_columns(&d, cols, 6, err, sizeof err), 0);
    assert_int_equal(d.cols_configured, 1);
    assert_int_equal(decode_with(&d, "1700000000,x,10.0.0.1,10.0.0.2,64,S", &r), NTA_DEC_OK);
    assert_int_equal(r.ts_ms, 1700000000000LL);
    assert_int_equal(r.bytes, 64);
    assert_int_equal(r.tcp_flags, 2);

    /* A header line is consumed but does not replace configured columns. */
    assert_int_equal(decode_with(&d, "src_ip,dst_ip,bytes_sent", &r), NTA_DEC_SKIP);
    assert_int_equal(d.ncols, 6);
    assert_int_equal(d.cols_from_header, 0);
    assert_int_equal(decode_with(&d, "1700000000,x,10.0.0.1,10.0.0.2,65,S", &r), NTA_DEC_OK);
    assert_int_equal(r.bytes, 65);
}

static void test_csv_set_columns_errors(void **state)
{
    (void)state;
    nta_decoder d;
    char err[128];
    nta_decoder_init(&d, NTA_FMT_CSV);
    const char *unknown[] = {"src_ip", "dst_ip", "octets"};
    assert_int_equal(nta_decoder_set_columns(&d, unknown, 3, err, sizeof err), -1);
    assert_non_null(strstr(err, "octets"));
    const char *no_dst[] = {"src_ip", "bytes"};
    assert_int_equal(nta_decoder_set_columns(&d, no_dst, 2, err, sizeof err), -1);
    assert_non_null(strstr(err, "dst_ip"));
    const char *with_null[] = {"src_ip", NULL, "dst_ip"};
    assert_int_equal(nta_decoder_set_columns(&d, with_null, 3, err, sizeof err), -1);
    assert_int_equal(nta_decoder_set_columns(&d, unknown, 0, err, sizeof err), -1);
    const char *many[NTA_CSV_MAX_COLS + 1];
    for (int i = 0; i < NTA_CSV_MAX_COLS + 1; i++)
        many[i] = i == 0 ? "src_ip" : i == 1 ? "dst_ip" : "-";
    assert_int_equal(nta_decoder_set_columns(&d, many, NTA_CSV_MAX_COLS + 1, err, sizeof err), -1);
    /* Failed calls leave the decoder as it was. */
    assert_int_equal(d.ncols, 0);
    assert_int_equal(d.cols_configured, 0);
    assert_int_equal(nta_decoder_set_columns(&d, many, NTA_CSV_MAX_COLS, err, sizeof err), 0);
    assert_int_equal(d.ncols, NTA_CSV_MAX_COLS);
}

/* ---- malformed input ------------------------------------------------------- */

#define SRC_DST "\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"5.6.7.8\""

typedef struct bad_case {
    nta_format fmt;
    const char *in;
    nta_decode_status want;
} bad_case;

static const bad_case bad_cases[] = {
    {NTA_FMT_JSON, "", NTA_DEC_EMPTY},
    {NTA_FMT_JSON, " \t\r\n ", NTA_DEC_EMPTY},
    {NTA_FMT_CSV, "  \n", NTA_DEC_EMPTY},
    {NTA_FMT_AUTO, "\r\n", NTA_DEC_EMPTY},
    {NTA_FMT_GOFLOW2, "", NTA_DEC_EMPTY},
    /* structure */
    {NTA_FMT_JSON, "{" SRC_DST, NTA_DEC_BAD_JSON},
    {NTA_FMT_JSON, "{\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"5.6.", NTA_DEC_BAD_JSON},
    {NTA_FMT_JSON, "{\"src_ip\":\"1.2.3.4\",\"dst_ip\":", NTA_DEC_BAD_JSON},
    {NTA_FMT_JSON, "{", NTA_DEC_BAD_JSON},
    {NTA_FMT_JSON, "}", NTA_DEC_BAD_JSON},
    {NTA_FMT_JSON, "[1,2,3]", NTA_DEC_BAD_JSON},
    {NTA_FMT_JSON, "[{" SRC_DST "}]", NTA_DEC_BAD_JSON},
    {NTA_FMT_JSON, "\"src_ip\"", NTA_DEC_BAD_JSON},
    {NTA_FMT_JSON, "10.0.0.1,10.0.0.2,5", NTA_DEC_BAD_JSON},
    {NTA_FMT_JSON, "{" SRC_DST "} x", NTA_DEC_BAD_JSON},
    {NTA_FMT_JSON, "{" SRC_DST "}{}", NTA_DEC_BAD_JSON},
    {NTA_FMT_JSON, "{" SRC_DST "}}", NTA_DEC_BAD_JSON},
    {NTA_FMT_JSON, "{\"src_ip\" \"1.2.3.4\",\"dst_ip\":\"5.6.7.8\"}", NTA_DEC_BAD_JSON},
    {NTA_FMT_JSON, "{src_ip:\"1.2.3.4\",\"dst_ip\":\"5.6.7.8\"}", NTA_DEC_BAD_JSON},
    {NTA_FMT_JSON, "{" SRC_DST ",\"x\":hello}", NTA_DEC_BAD_JSON},
    {NTA_FMT_JSON, "{" SRC_DST ",\"bytes\":abc}", NTA_DEC_BAD_JSON},
    {NTA_FMT_JSON, "{\"src_ip\":{\"a\":1},\"dst_ip\":\"5.6.7.8\"}", NTA_DEC_BAD_JSON},
    {NTA_FMT_JSON, "{\"src_ip\":[\"1.2.3.4\"],\"dst_ip\":\"5.6.7.8\"}", NTA_DEC_BAD_JSON},
    {NTA_FMT_JSON, "{" SRC_DST ",\"bytes\":[1]}", NTA_DEC_BAD_JSON},
    {NTA_FMT_JSON, "{" SRC_DST ",\"ts\":{}}", NTA_DEC_BAD_JSON},
    {NTA_FMT_GOFLOW2, "{\"src_addr\":{},\"dst_addr\":\"5.6.7.8\"}", NTA_DEC_BAD_JSON},
    {NTA_FMT_JSON, "{" SRC_DST ",\"bytes\":\"\\u12\"}", NTA_DEC_BAD_JSON},
    {NTA_FMT_JSON, "{" SRC_DST ",\"bytes\":\"abc}", NTA_DEC_BAD_JSON},
    {NTA_FMT_GOFLOW2, "\"SrcAddr\"", NTA_DEC_BAD_JSON},
    /* addresses */
    {NTA_FMT_JSON, "{\"src_ip\":\"256.1.1.1\",\"dst_ip\":\"5.6.7.8\"}", NTA_DEC_BAD_ADDRESS},
    {NTA_FMT_JSON, "{\"src_ip\":\"1.2.3\",\"dst_ip\":\"5.6.7.8\"}", NTA_DEC_BAD_ADDRESS},
    {NTA_FMT_JSON, "{\"src_ip\":\"1.2.3.4.5\",\"dst_ip\":\"5.6.7.8\"}", NTA_DEC_BAD_ADDRESS},
    {NTA_FMT_JSON, "{\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"05.6.7.8\"}", NTA_DEC_BAD_ADDRESS},
    {NTA_FMT_JSON, "{\"src_ip\":\"1.2.3.4\",\"dst_ip\":\" 5.6.7.8\"}", NTA_DEC_BAD_ADDRESS},
    {NTA_FMT_JSON, "{\"src_ip\":\"2001:db8:::1\",\"dst_ip\":\"5.6.7.8\"}", NTA_DEC_BAD_ADDRESS},
    {NTA_FMT_JSON, "{\"src_ip\":\"host.example\",\"dst_ip\":\"5.6.7.8\"}", NTA_DEC_BAD_ADDRESS},
    {NTA_FMT_JSON, "{\"src_ip\":16909060,\"dst_ip\":\"5.6.7.8\"}", NTA_DEC_BAD_ADDRESS},
    {NTA_FMT_JSON, "{\"src_ip\":true,\"dst_ip\":\"5.6.7.8\"}", NTA_DEC_BAD_ADDRESS},
    {NTA_FMT_JSON, "{\"src_ip\":\"1.2.3.4\\\"\",\"dst_ip\":\"5.6.7.8\"}", NTA_DEC_BAD_ADDRESS},
    {NTA_FMT_GOFLOW2, "{\"src_addr\":\"1.2.3.4\",\"dst_addr\":\"x\"}", NTA_DEC_BAD_ADDRESS},
    /* missing fields */
    {NTA_FMT_JSON, "{}", NTA_DEC_MISSING_FIELD},
    {NTA_FMT_JSON, "{\"src_ip\":\"1.2.3.4\"}", NTA_DEC_MISSING_FIELD},
    {NTA_FMT_JSON, "{\"dst_ip\":\"1.2.3.4\",\"bytes\":5}", NTA_DEC_MISSING_FIELD},
    {NTA_FMT_JSON, "{\"src_ip\":\"1.2.3.4\",\"dst_ip\":null}", NTA_DEC_MISSING_FIELD},
    {NTA_FMT_JSON, "{\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"\"}", NTA_DEC_MISSING_FIELD},
    {NTA_FMT_GOFLOW2, "{\"src_addr\":\"\",\"dst_addr\":\"1.2.3.4\"}", NTA_DEC_MISSING_FIELD},
    /* numbers */
    {NTA_FMT_JSON, "{" SRC_DST ",\"bytes\":-1}", NTA_DEC_BAD_NUMBER},
    {NTA_FMT_JSON, "{" SRC_DST ",\"bytes\":1.5}", NTA_DEC_BAD_NUMBER},
    {NTA_FMT_JSON, "{" SRC_DST ",\"bytes\":1500.0}", NTA_DEC_BAD_NUMBER},
    {NTA_FMT_JSON, "{" SRC_DST ",\"bytes\":1e3}", NTA_DEC_BAD_NUMBER},
    {NTA_FMT_JSON, "{" SRC_DST ",\"bytes\":18446744073709551616}", NTA_DEC_BAD_NUMBER},
    {NTA_FMT_JSON, "{" SRC_DST ",\"bytes\":99999999999999999999}", NTA_DEC_BAD_NUMBER},
    {NTA_FMT_JSON, "{" SRC_DST ",\"bytes\":123456789012345678901234567890}", NTA_DEC_BAD_NUMBER},
    {NTA_FMT_JSON, "{" SRC_DST ",\"bytes\":\"12 \"}", NTA_DEC_BAD_NUMBER},
    {NTA_FMT_JSON, "{" SRC_DST ",\"bytes\":\"+12\"}", NTA_DEC_BAD_NUMBER},
    {NTA_FMT_JSON, "{" SRC_DST ",\"packets\":true}", NTA_DEC_BAD_NUMBER},
    {NTA_FMT_JSON, "{" SRC_DST ",\"dst_port\":70000}", NTA_DEC_BAD_NUMBER},
    {NTA_FMT_JSON, "{" SRC_DST ",\"src_port\":65536}", NTA_DEC_BAD_NUMBER},
    {NTA_FMT_JSON, "{" SRC_DST ",\"src_port\":-80}", NTA_DEC_BAD_NUMBER},
    {NTA_FMT_JSON, "{" SRC_DST ",\"tcp_flags\":256}", NTA_DEC_BAD_NUMBER},
    {NTA_FMT_JSON, "{" SRC_DST ",\"tcp_flags\":\"SX\"}", NTA_DEC_BAD_NUMBER},
    {NTA_FMT_JSON, "{" SRC_DST ",\"tcp_flags\":\"S A\"}", NTA_DEC_BAD_NUMBER},
    {NTA_FMT_JSON, "{" SRC_DST ",\"tcp_flags\":false}", NTA_DEC_BAD_NUMBER},
    {NTA_FMT_GOFLOW2, "{" G_ADDRS ",\"sampling_rate\":-1}", NTA_DEC_BAD_NUMBER},
    {NTA_FMT_GOFLOW2, "{" G_ADDRS ",\"sampling_rate\":\"x\"}", NTA_DEC_BAD_NUMBER},
    {NTA_FMT_GOFLOW2, "{" G_ADDRS ",\"bytes\":9223372036854775808,\"sampling_rate\":2}",
     NTA_DEC_BAD_NUMBER},
    {NTA_FMT_GOFLOW2, "{" G_ADDRS ",\"packets\":9223372036854775808,\"sampling_rate\":4}",
     NTA_DEC_BAD_NUMBER},
    /* times */
    {NTA_FMT_JSON, "{" SRC_DST ",\"ts\":\"2023-13-01T00:00:00Z\"}", NTA_DEC_BAD_TIME},
    {NTA_FMT_JSON, "{" SRC_DST ",\"ts\":\"2023-02-29T00:00:00Z\"}", NTA_DEC_BAD_TIME},
    {NTA_FMT_JSON, "{" SRC_DST ",\"ts\":\"2023-04-31T00:00:00Z\"}", NTA_DEC_BAD_TIME},
    {NTA_FMT_JSON, "{" SRC_DST ",\"ts\":\"2023-11-00T00:00:00Z\"}", NTA_DEC_BAD_TIME},
    {NTA_FMT_JSON, "{" SRC_DST ",\"ts\":\"2023-11-14T24:00:00Z\"}", NTA_DEC_BAD_TIME},
    {NTA_FMT_JSON, "{" SRC_DST ",\"ts\":\"2023-11-14T22:60:00Z\"}", NTA_DEC_BAD_TIME},
    {NTA_FMT_JSON, "{" SRC_DST ",\"ts\":\"2023-11-14T22:13:61Z\"}", NTA_DEC_BAD_TIME},
    {NTA_FMT_JSON, "{" SRC_DST ",\"ts\":\"2023-11-14T22:13:20\"}", NTA_DEC_BAD_TIME},
    {NTA_FMT_JSON, "{" SRC_DST ",\"ts\":\"2023-11-14T22:13:20.Z\"}", NTA_DEC_BAD_TIME},
    {NTA_FMT_JSON, "{" SRC_DST ",\"ts\":\"2023-11-14T22:13:20.1234567890Z\"}", NTA_DEC_BAD_TIME},
    {NTA_FMT_JSON, "{" SRC_DST ",\"ts\":\"2023-11-14T22:13:20+2:00\"}", NTA_DEC_BAD_TIME},
    {NTA_FMT_JSON, "{" SRC_DST ",\"ts\":\"2023-11-14T22:13:20+24:00\"}", NTA_DEC_BAD_TIME},
    {NTA_FMT_JSON, "{" SRC_DST ",\"ts\":\"2023-11-14T22:13:20+02:00x\"}", NTA_DEC_BAD_TIME},
    {NTA_FMT_JSON, "{" SRC_DST ",\"ts\":\"2023-11-14X22:13:20Z\"}", NTA_DEC_BAD_TIME},
    {NTA_FMT_JSON, "{" SRC_DST ",\"ts\":\"2023-11-14\"}", NTA_DEC_BAD_TIME},
    {NTA_FMT_JSON, "{" SRC_DST ",\"ts\":\"yesterday\"}", NTA_DEC_BAD_TIME},
    {NTA_FMT_JSON, "{" SRC_DST ",\"ts\":\"1700000000.\"}", NTA_DEC_BAD_TIME},
    {NTA_FMT_JSON, "{" SRC_DST ",\"ts\":\"1700000000.5.1\"}", NTA_DEC_BAD_TIME},
    {NTA_FMT_JSON, "{" SRC_DST ",\"ts\":-5}", NTA_DEC_BAD_TIME},
    {NTA_FMT_JSON, "{" SRC_DST ",\"ts\":1.7e9}", NTA_DEC_BAD_TIME},
    {NTA_FMT_JSON, "{" SRC_DST ",\"ts\":true}", NTA_DEC_BAD_TIME},
    {NTA_FMT_JSON, "{" SRC_DST ",\"ts\":99999999999999999999}", NTA_DEC_BAD_TIME},
    {NTA_FMT_JSON, "{" SRC_DST ",\"ts\":9223372036854775808}", NTA_DEC_BAD_TIME},
    {NTA_FMT_GOFLOW2, "{" G_ADDRS ",\"time_received_ns\":\"abc\"}", NTA_DEC_BAD_TIME},
    {NTA_FMT_GOFLOW2, "{" G_ADDRS ",\"time_flow_end_ns\":-1}", NTA_DEC_BAD_TIME},
    {NTA_FMT_GOFLOW2, "{" G1_ADDRS ",\"TimeReceived\":99999999999999999}", NTA_DEC_BAD_TIME},
    /* protocols */
    {NTA_FMT_JSON, "{" SRC_DST ",\"proto\":\"foo\"}", NTA_DEC_BAD_PROTO},
    {NTA_FMT_JSON, "{" SRC_DST ",\"proto\":\"tcp \"}", NTA_DEC_BAD_PROTO},
    {NTA_FMT_JSON, "{" SRC_DST ",\"proto\":256}", NTA_DEC_BAD_PROTO},
    {NTA_FMT_JSON, "{" SRC_DST ",\"proto\":-6}", NTA_DEC_BAD_PROTO},
    {NTA_FMT_JSON, "{" SRC_DST ",\"proto\":6.0}", NTA_DEC_BAD_PROTO},
    {NTA_FMT_JSON, "{" SRC_DST ",\"proto\":true}", NTA_DEC_BAD_PROTO},
    {NTA_FMT_JSON, "{" SRC_DST ",\"proto\":tcp}", NTA_DEC_BAD_PROTO},
    {NTA_FMT_GOFLOW2, "{" G_ADDRS ",\"proto\":\"unknown\"}", NTA_DEC_BAD_PROTO},
    /* CSV */
    {NTA_FMT_CSV, "10.0.0.1,10.0.0.2", NTA_DEC_BAD_CSV},
    {NTA_FMT_CSV, "10.0.0.1,10.0.0.2,1,2", NTA_DEC_BAD_CSV},
    {NTA_FMT_CSV, "10.0.0.1", NTA_DEC_BAD_CSV},
    {NTA_FMT_CSV, "\"10.0.0.1,10.0.0.2,1", NTA_DEC_BAD_CSV},
    {NTA_FMT_CSV, "\"10.0.0.1\"x,10.0.0.2,1", NTA_DEC_BAD_CSV},
    {NTA_FMT_CSV, "10.0.0.1,10.0.0.2,1\n10.0.0.3,10.0.0.4,2", NTA_DEC_BAD_CSV},
    {NTA_FMT_CSV, "10.0.0.1,10.0.0.2\r1", NTA_DEC_BAD_CSV},
    {NTA_FMT_CSV, "10.0.0.1,10.0.0.2\n10.0.0.3,5", NTA_DEC_BAD_CSV},
    {NTA_FMT_CSV, "256.0.0.1,10.0.0.2,1", NTA_DEC_BAD_ADDRESS},
    {NTA_FMT_CSV, "10.0.0.1,1.2.3,1", NTA_DEC_BAD_ADDRESS},
    {NTA_FMT_CSV, "src_ip,dst_ip,octets", NTA_DEC_BAD_ADDRESS},
    {NTA_FMT_CSV, "\"10.0.0.1\"\"\",10.0.0.2,1", NTA_DEC_BAD_ADDRESS},
    {NTA_FMT_CSV, "10.0.0.1,10.0.0.2,-1", NTA_DEC_BAD_NUMBER},
    {NTA_FMT_CSV, "10.0.0.1,10.0.0.2,1.5", NTA_DEC_BAD_NUMBER},
    {NTA_FMT_CSV, "10.0.0.1,10.0.0.2,18446744073709551616", NTA_DEC_BAD_NUMBER},
    {NTA_FMT_CSV, "10.0.0.1,10.0.0.2,1 2", NTA_DEC_BAD_NUMBER},
    {NTA_FMT_CSV, ",10.0.0.2,1", NTA_DEC_MISSING_FIELD},
    {NTA_FMT_CSV, ",,", NTA_DEC_MISSING_FIELD},
    {NTA_FMT_CSV, "-,-,-", NTA_DEC_BAD_ADDRESS},
    /* binary */
    {NTA_FMT_AUTO, "\xff\xfe\x01", NTA_DEC_UNKNOWN_FORMAT},
    {NTA_FMT_AUTO, "\x1b[31m", NTA_DEC_UNKNOWN_FORMAT},
    {NTA_FMT_AUTO, "[]", NTA_DEC_BAD_JSON},
    {NTA_FMT_JSON, "\x01\x02\x03", NTA_DEC_BAD_JSON},
    {NTA_FMT_CSV, "\x01\x02\x03", NTA_DEC_BAD_CSV},
    {NTA_FMT_CSV, "\xc0\xff,\x80,\x01", NTA_DEC_BAD_ADDRESS},
};

static void test_malformed_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        nta_record r;
        nta_decoder d;
        nta_decoder_init(&d, bad_cases[i].fmt);
        const char *in = bad_cases[i].in;
        nta_decode_status st = decode_both(&d, in, strlen(in), &r, NULL);
        if (st != bad_cases[i].want) {
            print_error("case %zu (%s) \"%s\": got %s, want %s\n", i,
                        nta_format_name(bad_cases[i].fmt), in, nta_decode_status_name(st),
                        nta_decode_status_name(bad_cases[i].want));
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_csv_too_many_columns(void **state)
{
    (void)state;
    char line[3 * (NTA_CSV_MAX_COLS + 1)] = "";
    for (int cols = NTA_CSV_MAX_COLS; cols <= NTA_CSV_MAX_COLS + 1; cols++) {
        size_t n = 0;
        for (int i = 0; i < cols; i++)
            n += (size_t)snprintf(line + n, sizeof line - n, i == 0 ? "x" : ",x");
        nta_record r;
        /* 32 fields against the 3 default columns: a count mismatch; 33
         * fields cannot even be split. Both are bad_csv, the 33 case must
         * not overrun the 32-entry field array (ASan). */
        assert_int_equal(decode_as(NTA_FMT_CSV, line, &r), NTA_DEC_BAD_CSV);
    }
    nta_decoder d;
    nta_record r;
    nta_decoder_init(&d, NTA_FMT_CSV);
    char header[16 * (NTA_CSV_MAX_COLS + 1)] = "src_ip,dst_ip";
    size_t n = strlen(header);
    for (int i = 2; i < NTA_CSV_MAX_COLS; i++)
        n += (size_t)snprintf(header + n, sizeof header - n, ",-");
    assert_int_equal(decode_with(&d, header, &r), NTA_DEC_SKIP);
    assert_int_equal(d.ncols, NTA_CSV_MAX_COLS);
    snprintf(header + n, sizeof header - n, ",bytes");
    assert_int_equal(decode_with(&d, header, &r), NTA_DEC_BAD_CSV);
    assert_int_equal(d.ncols, NTA_CSV_MAX_COLS);
}

static void test_embedded_nul(void **state)
{
    (void)state;
    nta_record r;
    nta_decoder d;
    nta_decoder_init(&d, NTA_FMT_JSON);
    static const char in_string[] = "{\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"5.6.7.8\",\"x\":\"a\0b\"}";
    assert_int_equal(decode_n(&d, in_string, sizeof in_string - 1, &r), NTA_DEC_BAD_JSON);
    static const char between[] = "{\"src_ip\":\"1.2.3.4\",\0\"dst_ip\":\"5.6.7.8\"}";
    assert_int_equal(decode_n(&d, between, sizeof between - 1, &r), NTA_DEC_BAD_JSON);
    static const char after[] = "{\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"5.6.7.8\"}\0{}";
    assert_int_equal(decode_n(&d, after, sizeof after - 1, &r), NTA_DEC_BAD_JSON);
    /* jsmn ends a string at a NUL, so the payload is cut short: bad_json. */
    static const char in_addr[] = "{\"src_ip\":\"::1\0:2\",\"dst_ip\":\"5.6.7.8\"}";
    assert_int_equal(decode_n(&d, in_addr, sizeof in_addr - 1, &r), NTA_DEC_BAD_JSON);
    nta_decoder_init(&d, NTA_FMT_CSV);
    static const char csv_v6[] = "::1\0:2,10.0.0.2,5";
    assert_int_equal(decode_n(&d, csv_v6, sizeof csv_v6 - 1, &r), NTA_DEC_BAD_ADDRESS);
    static const char csv[] = "10.0.0.1,10.0.0.2\0,5";
    assert_int_equal(decode_n(&d, csv, sizeof csv - 1, &r), NTA_DEC_BAD_ADDRESS);
}

/* ---- the two JSON readers ---------------------------------------------------- */

typedef struct agree_case {
    const char *in;
    int scanned; /* 1: the scanner must read it itself, not leave it to jsmn */
} agree_case;

static const agree_case agree_cases[] = {
    /* the shapes of README and scripts/gen_traffic.lua */
    {json_full, 1},
    {goflow2_v1, 1},
    {goflow2_v2, 1},
    {"{\"ts\":1700000000123,\"src_ip\":\"10.0.15.110\",\"dst_ip\":\"214.23.249.197\","
     "\"src_port\":57551,\"dst_port\":80,\"proto\":6,\"bytes\":1717,\"packets\":21,"
     "\"tcp_flags\":27}",
     1},
    {"{\"timestamp\":1700000000,\"source_ip\":\"1.2.3.4\",\"destination_ip\":\"5.6.7.8\","
     "\"protocol\":\"UDP\",\"bytes_sent\":99}",
     1},
    {" {\"src_ip\" : \"1.2.3.4\" ,\n \"dst_ip\":\"5.6.7.8\",\t\"bytes\" : 3 } ", 1},
    {"{\"src_ip\":\"2001:db8::1\",\"dst_ip\":\"::ffff:10.0.0.1\",\"ts\":\"2023-11-14T22:13:20Z\"}",
     1},
    {"{}", 1},
    {"{ }", 1},
    /* nested values and literals under keys we do not read */
    {"{\"meta\":{\"a\":[1,2,{\"b\":\"}]\"}],\"c\":{}},\"src_ip\":\"1.2.3.4\","
     "\"tags\":[\"x\",[\"y\"]],\"dst_ip\":\"5.6.7.8\",\"note\":\"he said \\\"bytes\\\": 5\","
     "\"ok\":true,\"no\":false,\"nil\":null,\"f\":-1.5e3,\"bytes\":7,\"empty\":[],\"\":1}",
     1},
    {"{" SRC_DST ",\"a\":[ ],\"b\":{ },\"c\":[ [ ] , { } ],\"d\":{\"e\" : [ 1 , \"2\" ] }}", 1},
    /* nested values under keys we read */
    {"{\"src_ip\":{\"a\":1},\"dst_ip\":\"5.6.7.8\"}", 1},
    {"{" SRC_DST ",\"bytes\":[1]}", 1},
    {"{" SRC_DST ",\"ts\":{}}", 1},
    {"{" SRC_DST ",\"sampling_rate\":[],\"src_addr\":\"1.1.1.1\",\"dst_addr\":\"2.2.2.2\"}", 1},
    /* duplicate keys: the last one counts, also across aliases */
    {"{" SRC_DST ",\"bytes\":5,\"bytes\":7}", 1},
    {"{" SRC_DST ",\"bytes\":5,\"bytes\":null}", 1},
    {"{" SRC_DST ",\"bytes\":5,\"bytes\":\"\"}", 1},
    {"{\"bytes\":[1]," SRC_DST ",\"bytes\":2}", 1},
    {"{" SRC_DST ",\"bytes\":2,\"bytes\":{}}", 1},
    {"{\"src\":\"1.1.1.1\",\"src_ip\":\"2.2.2.2\",\"dst\":\"3.3.3.3\",\"source_ip\":\"x\"}", 1},
    {"{\"src_ip\":\"x\",\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"5.6.7.8\"}", 1},
    {"{" G_ADDRS ",\"time_flow_end_ns\":1,\"time_flow_end_ns\":0,\"TimeReceived\":1700000000}", 1},
    /* wrong types */
    {"{" SRC_DST ",\"bytes\":\"abc\"}", 1},
    {"{" SRC_DST ",\"bytes\":true}", 1},
    {"{\"src_ip\":1,\"dst_ip\":\"5.6.7.8\"}", 1},
    {"{\"src_ip\":null,\"dst_ip\":\"5.6.7.8\"}", 1},
    {"{" SRC_DST ",\"proto\":\"tcp \"}", 1},
    {"{" SRC_DST ",\"ts\":true}", 1},
    {"{" SRC_DST ",\"tcp_flags\":\"SA\",\"proto\":false}", 1},
    {"{" G_ADDRS ",\"sampling_rate\":\"7\",\"bytes\":3}", 1},
    /* huge numbers */
    {"{" SRC_DST ",\"bytes\":18446744073709551615}", 1},
    {"{" SRC_DST ",\"bytes\":18446744073709551616}", 1},
    {"{" SRC_DST ",\"bytes\":1e400,\"x\":-1e-400}", 1},
    {"{" SRC_DST ",\"ts\":99999999999999999999}", 1},
    {"{" SRC_DST ",\"src_port\":99999999999999999999999999999}", 1},
    {"{" G_ADDRS ",\"bytes\":9223372036854775808,\"sampling_rate\":2}", 1},
    /* text jsmn takes for a primitive, which the field parsers then judge */
    {"{" SRC_DST ",\"x\":nope,\"y\":-,\"z\":1.2.3}", 1},
    {"{" SRC_DST ",\"bytes\":1:2}", 1},
    {"{" SRC_DST ",\"bytes\":12\"3\"}", 1},
    {"{" SRC_DST ",\"proto\":tcp}", 1},
    /* escapes are not decoded: values and keys are compared as written */
    {"{\"src_ip\":\"\\u0031.2.3.4\",\"dst_ip\":\"5.6.7.8\"}", 1},
    {"{\"src\\u005fip\":\"1.2.3.4\",\"dst_ip\":\"5.6.7.8\"}", 1},
    {"{" SRC_DST ",\"note\":\"\\u00e9\\uD83D\\uDE00\\/\\b\\f\\n\\r\\t\\\\\"}", 1},
    {"{\"src_ip\":\"1.2.3.4\\\"\",\"dst_ip\":\"5.6.7.8\"}", 1},
    {"{" SRC_DST ",\"note\":\"h\xc3\xa9llo\",\"raw\":\"a\tb\x01\"}", 1},
    {"{" SRC_DST ",\"bytes\":\"\\u12\"}", 0},
    {"{" SRC_DST ",\"bytes\":\"\\x\"}", 0},
    {"{" SRC_DST ",\"note\":\"\\", 0},
    /* what jsmn tolerates and JSON does not: left to jsmn */
    {"{" SRC_DST ",}", 0},
    {"{," SRC_DST "}", 0},
    {"{" SRC_DST ",,\"bytes\":1}", 0},
    {"{\"src_ip\"::\"1.2.3.4\",\"dst_ip\":\"5.6.7.8\"}", 0},
    {"{\"src_ip\":\"1.2.3.4\" \"dst_ip\":\"5.6.7.8\"}", 0},
    {"{\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"5.6.7.8\":1}", 0},
    {"{" SRC_DST ",\"a\":[1,2,]}", 0},
    {"{" SRC_DST ",\"a\":{\"b\":1,}}", 0},
    {"{" SRC_DST ",\"a\":{\"b\"}}", 0},
    {"{" SRC_DST ",\"a\":{1}}", 0},
    {"{" SRC_DST ",\"x\":hello}", 0},
    {"{" SRC_DST ",\"x\":+1}", 0},
    /* broken */
    {"{" SRC_DST, 0},
    {"{" SRC_DST "} x", 0},
    {"{" SRC_DST "}}", 0},
    {"{" SRC_DST ",\"a\":[1,2}", 0},
    {"{" SRC_DST ",\"a\":{\"b\":1]}", 0},
    {"{" SRC_DST ",\"a\":[[[", 0},
    {"{" SRC_DST ",\"bytes\":\"abc}", 0},
    {"{" SRC_DST ",\"x\":\"", 0},
    {"{" SRC_DST ",\"x\":", 0},
    {"{\"src_ip\"", 0},
    {"{\"", 0},
    {"{", 0},
};

static void test_json_readers_agree(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof agree_cases / sizeof agree_cases[0]; i++) {
        const char *in = agree_cases[i].in;
        size_t len = strlen(in);
        for (int f = NTA_FMT_AUTO; f <= NTA_FMT_GOFLOW2; f++) {
            if (f == NTA_FMT_CSV)
                continue;
            nta_decoder d;
            nta_record r;
            int fell_back;
            nta_decoder_init(&d, (nta_format)f);
            decode_both(&d, in, len, &r, &fell_back);
            if (agree_cases[i].scanned && fell_back)
                fail_msg("case %zu \"%s\" (%s): left to jsmn", i, in, nta_format_name(d.format));
            /* Every cut of it too: truncation mid-token, mid-escape, mid-nesting. */
            for (size_t n = 0; n < len; n++)
                decode_both(&d, in, n, &r, NULL);
        }
    }
}

static void test_json_readers_agree_nul(void **state)
{
    (void)state;
#define NUL_CASE(text) {text, sizeof text - 1}
    static const struct {
        const char *in;
        size_t n;
    } cases[] = {
        NUL_CASE("{\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"5.6.7.8\",\"x\":\"a\0b\"}"),
        NUL_CASE("{\"src_ip\":\"1.2.3.4\",\0\"dst_ip\":\"5.6.7.8\"}"),
        NUL_CASE("{\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"5.6.7.8\"}\0{}"),
        NUL_CASE("{\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"5.6.7.8\",\"bytes\":1\0}"),
        NUL_CASE("{\"src_ip\":\"1.2.3.4\",\"dst_ip\":\"5.6.7.8\",\"a\":[1,\0]}"),
    };
#undef NUL_CASE
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nta_decoder d;
        nta_record r;
        nta_decoder_init(&d, NTA_FMT_AUTO);
        assert_int_equal(decode_both(&d, cases[i].in, cases[i].n, &r, NULL), NTA_DEC_BAD_JSON);
    }
}

/* jsmn has JSON_MAX_TOKENS (256) tokens: an object, each key, each value,
 * and inside a nested value each container, key and scalar. The scanner
 * must count them alike, or it would accept what jsmn rejects. */
static void test_json_token_budget_nested(void **state)
{
    (void)state;
    char buf[4096];
    /* 1 object + 4 for the addresses + key "a" + array = 7, plus one per element. */
    for (int elems = 245; elems <= 252; elems++) {
        for (int shape = 0; shape < 3; shape++) {
            size_t n = (size_t)snprintf(buf, sizeof buf, "{" SRC_DST ",\"a\":[");
            int left = elems;
            if (shape == 1) { /* one element is {"k":1}: three tokens */
                n += (size_t)snprintf(buf + n, sizeof buf - n, "{\"k\":1}%s", left > 3 ? "," : "");
                left -= 3;
            } else if (shape == 2) { /* one is ["s"]: two tokens */
                n += (size_t)snprintf(buf + n, sizeof buf - n, "[\"s\"]%s", left > 2 ? "," : "");
                left -= 2;
            }
            for (int i = 0; i < left; i++)
                n += (size_t)snprintf(buf + n, sizeof buf - n, i ? ",%d" : "%d", i);
            n += (size_t)snprintf(buf + n, sizeof buf - n, "]}");
            nta_decoder d;
            nta_record r;
            int fell_back;
            nta_decoder_init(&d, NTA_FMT_JSON);
            nta_decode_status st = decode_both(&d, buf, n, &r, &fell_back);
            assert_int_equal(st, 7 + elems <= 256 ? NTA_DEC_OK : NTA_DEC_BAD_JSON);
            assert_int_equal(fell_back, 7 + elems > 256);
        }
    }
}

/* ---- robustness ------------------------------------------------------------ */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
    /* xorshift64: a fixed seed makes any crash reproducible. */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void check_decode(nta_decoder *d, const char *s, size_t n)
{
    nta_record r;
    nta_decode_status st = decode_both(d, s, n, &r, NULL);
    assert_in_range(st, NTA_DEC_OK, NTA_DEC__COUNT - 1);
    if (st == NTA_DEC_OK)
        assert_int_equal(r.present & ADDRS, ADDRS);
}

static const char *const samples[] = {
    json_full,
    goflow2_v1,
    goflow2_v2,
    "{\"meta\":{\"a\":[1,2,{\"b\":\"}]\"}]},\"src\":\"2001:db8::1\",\"dst\":\"::1\","
    "\"ts\":\"2023-11-14T17:13:20.5-05:00\",\"note\":\"q\\\"q\",\"tcp_flags\":\"FPA\"}",
    "ts,src_ip,dst_ip,src_port,dst_port,proto,bytes,packets",
    "1700000000.5,10.0.0.1,10.0.0.2,1234,80,tcp,100,2",
    "\"10.0.0.1\",\"fe80::1\",\"1\"\"5\"",
    "2023-11-14T22:13:20.123456789+02:00,10.0.0.1,10.0.0.2,,,,,",
};

static void test_robust_prefixes_and_mutations(void **state)
{
    (void)state;
    static const char poison[] = "\"{}[],:\\\0\xff 9-.eE";
    for (size_t s = 0; s < sizeof samples / sizeof samples[0]; s++) {
        size_t len = strlen(samples[s]);
        char *buf = malloc(len);
        assert_non_null(buf);
        for (int f = NTA_FMT_AUTO; f <= NTA_FMT_GOFLOW2; f++) {
            nta_decoder d;
            nta_decoder_init(&d, (nta_format)f);
            for (size_t n = 0; n <= len; n++)
                check_decode(&d, samples[s], n);
            for (size_t i = 0; i < len; i++) {
                for (size_t p = 0; p < sizeof poison - 1; p++) {
                    memcpy(buf, samples[s], len);
                    buf[i] = poison[p];
                    check_decode(&d, buf, len);
                }
            }
        }
        free(buf);
    }
}

static void test_robust_random(void **state)
{
    (void)state;
    static const char alphabet[] = "{}[]\":,\\ 0123456789.-+eEZT:tcpSAFnul_srcdstip\r\n\t\xff";
    char buf[300];
    for (int iter = 0; iter < 40000; iter++) {
        size_t n = (size_t)(rng() % sizeof buf);
        int structured = iter & 1;
        for (size_t i = 0; i < n; i++) {
            uint64_t x = rng();
            buf[i] = structured ? alphabet[x % (sizeof alphabet - 1)] : (char)(x & 0xff);
        }
        if (structured && n > 0)
            buf[0] = "{\"1,"[rng() % 4];
        nta_decoder d;
        nta_decoder_init(&d, (nta_format)(iter % 4));
        check_decode(&d, buf, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_format_names),
        cmocka_unit_test(test_json_full_record),
        cmocka_unit_test(test_json_aliases),
        cmocka_unit_test(test_json_defaults),
        cmocka_unit_test(test_json_nulls_are_absent),
        cmocka_unit_test(test_json_numbers_as_strings),
        cmocka_unit_test(test_json_number_limits),
        cmocka_unit_test(test_json_time_forms),
        cmocka_unit_test(test_json_tcp_flags),
        cmocka_unit_test(test_json_proto_forms),
        cmocka_unit_test(test_json_ipv6),
        cmocka_unit_test(test_json_skips_unknown_values),
        cmocka_unit_test(test_json_whitespace_bom_and_nul),
        cmocka_unit_test(test_json_token_budget),
        cmocka_unit_test(test_decode_overwrites_record),
        cmocka_unit_test(test_goflow2_v2),
        cmocka_unit_test(test_goflow2_v1),
        cmocka_unit_test(test_goflow2_event_time),
        cmocka_unit_test(test_goflow2_sampling),
        cmocka_unit_test(test_goflow2_unnamed_proto),
        cmocka_unit_test(test_goflow2_ignores_plain_json_keys),
        cmocka_unit_test(test_auto_detection),
        cmocka_unit_test(test_unknown_decoder_format),
        cmocka_unit_test(test_csv_default_columns),
        cmocka_unit_test(test_csv_quoted_fields),
        cmocka_unit_test(test_csv_header_learning),
        cmocka_unit_test(test_csv_configured_columns),
        cmocka_unit_test(test_csv_set_columns_errors),
        cmocka_unit_test(test_csv_too_many_columns),
        cmocka_unit_test(test_malformed_table),
        cmocka_unit_test(test_embedded_nul),
        cmocka_unit_test(test_json_readers_agree),
        cmocka_unit_test(test_json_readers_agree_nul),
        cmocka_unit_test(test_json_token_budget_nested),
        cmocka_unit_test(test_robust_prefixes_and_mutations),
        cmocka_unit_test(test_robust_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
