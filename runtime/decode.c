/* Record decoders: JSON, CSV and goflow2 JSON into nta_record.
 *
 * Payloads come straight from Kafka: not NUL-terminated, possibly truncated
 * or hostile. Nothing here reads past len, and no libc number parser is run
 * on the payload (they all want a terminator); numbers, times and flags are
 * parsed by hand. */
#include "decode.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "json_tok.h"


/* A goflow2 v2 record with every field is ~60 keys plus the elements of a few
 * arrays (as_path, layer_stack, mpls_*), i.e. 130-200 tokens. */
#define JSON_MAX_TOKENS 256

static const char *const status_names[NTA_DEC__COUNT] = {
    [NTA_DEC_OK] = "ok",
    [NTA_DEC_EMPTY] = "empty",
    [NTA_DEC_SKIP] = "skip",
    [NTA_DEC_BAD_JSON] = "bad_json",
    [NTA_DEC_BAD_CSV] = "bad_csv",
    [NTA_DEC_MISSING_FIELD] = "missing_field",
    [NTA_DEC_BAD_ADDRESS] = "bad_address",
    [NTA_DEC_BAD_NUMBER] = "bad_number",
    [NTA_DEC_BAD_TIME] = "bad_time",
    [NTA_DEC_BAD_PROTO] = "bad_proto",
    [NTA_DEC_UNKNOWN_FORMAT] = "unknown_format",
};

const char *nta_decode_status_name(nta_decode_status s)
{
    return (unsigned)s < NTA_DEC__COUNT ? status_names[s] : "unknown";
}

static const char *const format_names[] = {
    [NTA_FMT_AUTO] = "auto",
    [NTA_FMT_JSON] = "json",
    [NTA_FMT_CSV] = "csv",
    [NTA_FMT_GOFLOW2] = "goflow2",
};

#define FORMAT_COUNT ((int)(sizeof format_names / sizeof format_names[0]))

nta_format nta_format_by_name(const char *name)
{
    if (name != NULL)
        for (int f = 0; f < FORMAT_COUNT; f++)
            if (strcmp(name, format_names[f]) == 0)
                return (nta_format)f;
    return (nta_format)-1;
}

const char *nta_format_name(nta_format f)
{
    return (unsigned)f < (unsigned)FORMAT_COUNT ? format_names[f] : "unknown";
}

/* ---- keys ------------------------------------------------------------ */

/* Where a key's value goes. Slots 1..NTA_F__COUNT-1 are the nta_field values
 * themselves, so a slot doubles as a CSV column kind; the rest only exist in
 * one format. */
enum slot {
    SL_NONE = NTA_F_NONE,
    SL_TS = NTA_F__COUNT, /* json event time: seconds or ms or RFC 3339 */
    SL_G_RECV_NS,
    SL_G_START_NS,
    SL_G_END_NS,
    SL_G_RECV_S,
    SL_G_START_S,
    SL_G_END_S,
    SL_G_START_MS,
    SL_G_END_MS,
    SL_G_SAMPLING,
    SL__COUNT
};

typedef struct key_def {
    const char *name;
    uint8_t jslot;  /* meaning in plain JSON (and as a CSV column name) */
    uint8_t gslot;  /* meaning in goflow2 JSON */
    uint8_t marker; /* only goflow2 emits this key: auto picks goflow2 */
} key_def;

/* Keys grouped by length (the row index) so a lookup compares against at
 * most six candidates, first character first. Rows end at a NULL name.
 * goflow2 names: v2 uses the snake_case protobuf names, v1 the Go struct
 * names; see producer/proto and pb/flow.proto in netsampler/goflow2. */
#define KEY_MAX_LEN 18
#define KEYS_PER_LEN 7
static const key_def key_table[KEY_MAX_LEN + 1][KEYS_PER_LEN] = {
    [2] = {{"ts", SL_TS, SL_NONE, 0}},
    [3] = {{"src", NTA_F_SRC_IP, SL_NONE, 0}, {"dst", NTA_F_DST_IP, SL_NONE, 0}},
    [4] = {{"time", SL_TS, SL_NONE, 0}},
    [5] = {{"proto", NTA_F_PROTO, NTA_F_PROTO, 0},
           {"bytes", NTA_F_BYTES, NTA_F_BYTES, 0},
           {"Proto", SL_NONE, NTA_F_PROTO, 0},
           {"Bytes", SL_NONE, NTA_F_BYTES, 0}},
    [6] = {{"src_ip", NTA_F_SRC_IP, SL_NONE, 0}, {"dst_ip", NTA_F_DST_IP, SL_NONE, 0}},
    [7] = {{"packets", NTA_F_PACKETS, NTA_F_PACKETS, 0},
           {"SrcAddr", SL_NONE, NTA_F_SRC_IP, 1},
           {"DstAddr", SL_NONE, NTA_F_DST_IP, 0},
           {"SrcPort", SL_NONE, NTA_F_SRC_PORT, 0},
           {"DstPort", SL_NONE, NTA_F_DST_PORT, 0},
           {"Packets", SL_NONE, NTA_F_PACKETS, 0}},
    [8] = {{"src_port", NTA_F_SRC_PORT, NTA_F_SRC_PORT, 0},
           {"dst_port", NTA_F_DST_PORT, NTA_F_DST_PORT, 0},
           {"protocol", NTA_F_PROTO, SL_NONE, 0},
           {"src_addr", SL_NONE, NTA_F_SRC_IP, 1},
           {"dst_addr", SL_NONE, NTA_F_DST_IP, 0},
           {"TCPFlags", SL_NONE, NTA_F_TCP_FLAGS, 0}},
    [9] = {{"tcp_flags", NTA_F_TCP_FLAGS, NTA_F_TCP_FLAGS, 0},
           {"timestamp", SL_TS, SL_NONE, 0},
           {"source_ip", NTA_F_SRC_IP, SL_NONE, 0}},
    [10] = {{"bytes_sent", NTA_F_BYTES, SL_NONE, 0}},
    [11] = {{"TimeFlowEnd", SL_NONE, SL_G_END_S, 0}},
    [12] = {{"TimeReceived", SL_NONE, SL_G_RECV_S, 1},
            {"SamplingRate", SL_NONE, SL_G_SAMPLING, 1}},
    [13] = {{"sampling_rate", SL_NONE, SL_G_SAMPLING, 1},
            {"TimeFlowStart", SL_NONE, SL_G_START_S, 0},
            {"TimeFlowEndMs", SL_NONE, SL_G_END_MS, 0}},
    [14] = {{"destination_ip", NTA_F_DST_IP, SL_NONE, 0},
            {"SamplerAddress", SL_NONE, SL_NONE, 1}},
    [15] = {{"sampler_address", SL_NONE, SL_NONE, 1},
            {"TimeFlowStartMs", SL_NONE, SL_G_START_MS, 0}},
    [16] = {{"time_received_ns", SL_NONE, SL_G_RECV_NS, 1},
            {"time_flow_end_ns", SL_NONE, SL_G_END_NS, 0}},
    [18] = {{"time_flow_start_ns", SL_NONE, SL_G_START_NS, 0}},
};

/* A lookup runs once per key of every record, and memcmp with a constant
 * size compiles to a few loads where a call (or a byte loop) costs more than
 * the comparison: hence one inlined copy per key length. */
static inline __attribute__((always_inline)) const key_def *key_in_row(int n, const char *s)
{
    for (const key_def *k = key_table[n]; k->name != NULL; k++)
        if (memcmp(k->name, s, (size_t)n) == 0)
            return k;
    return NULL;
}

static const key_def *key_lookup(const char *s, size_t n)
{
    switch (n) {
#define KEY_ROW(len)                                                                       \
    case len:                                                                              \
        return key_in_row(len, s);
        KEY_ROW(2) KEY_ROW(3) KEY_ROW(4) KEY_ROW(5) KEY_ROW(6) KEY_ROW(7) KEY_ROW(8)
        KEY_ROW(9) KEY_ROW(10) KEY_ROW(11) KEY_ROW(12) KEY_ROW(13) KEY_ROW(14)
        KEY_ROW(15) KEY_ROW(16) KEY_ROW(18)
#undef KEY_ROW
    default:
        return NULL;
    }
}

/* CSV column kind for a column name, case-insensitive (headers are written
 * by hand); "-" and "" ignore the column. Returns an nta_field, NTA_CSV_TS,
 * or -1 for a name that is not a column. */
static int csv_col_by_name(const char *s, size_t n)
{
    char low[KEY_MAX_LEN + 1];
    if (n == 0 || (n == 1 && s[0] == '-'))
        return NTA_F_NONE;
    if (n > KEY_MAX_LEN)
        return -1;
    for (size_t i = 0; i < n; i++)
        low[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    const key_def *k = key_lookup(low, n);
    if (k == NULL || k->jslot == SL_NONE)
        return -1;
    return k->jslot == SL_TS ? NTA_CSV_TS : k->jslot;
}

/* ---- scalar parsers -------------------------------------------------- */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Plain decimal digits only: no sign, no fraction, no exponent. */
static int parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9)
            return -1;
        /* Up to 19 digits cannot overflow; only the 20th needs the check. */
        if (i == 19 && v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int parse_2(const char *s, int *out)
{
    if (!is_digit(s[0]) || !is_digit(s[1]))
        return -1;
    *out = (s[0] - '0') * 10 + (s[1] - '0');
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return mdays[m - 1] + (m == 2 && leap);
}

/* RFC 3339: YYYY-MM-DD(T|t| )HH:MM:SS[.1-9 digits](Z|z|+HH:MM|-HH:MM).
 * A time without an offset is rejected: guessing a zone would silently
 * shift every window. Second 60 is accepted and, POSIX time having no leap
 * seconds, lands on the next second. */
static int parse_rfc3339(const char *s, size_t n, int64_t *ms)
{
    int y1, y2, mo, d, h, mi, se, frac = 0;
    if (n < 20 || parse_2(s, &y1) || parse_2(s + 2, &y2) || s[4] != '-' ||
        parse_2(s + 5, &mo) || s[7] != '-' || parse_2(s + 8, &d) ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || parse_2(s + 11, &h) ||
        s[13] != ':' || parse_2(s + 14, &mi) || s[16] != ':' || parse_2(s + 17, &se))
        return -1;
    int y = y1 * 100 + y2;
    size_t i = 19;
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < n && is_digit(s[i])) {
            if (i - start < 3)
                frac = frac * 10 + (s[i] - '0');
            i++;
        }
        size_t nd = i - start;
        if (nd == 0 || nd > 9)
            return -1;
        for (; nd < 3; nd++)
            frac *= 10;
    }
    if (i >= n)
        return -1;
    int off_min = 0;
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        int oh, om;
        if (n - i != 6 || parse_2(s + i + 1, &oh) || s[i + 3] != ':' ||
            parse_2(s + i + 4, &om) || oh > 23 || om > 59)
            return -1;
        off_min = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return -1;
    }
    if (i != n || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
        mi > 59 || se > 60)
        return -1;
    int64_t secs = ((nta_days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 + se;
    *ms = (secs - (int64_t)off_min * 60) * 1000 + frac;
    return 0;
}

typedef enum time_unit {
    TU_AUTO, /* < 1e11 is seconds, otherwise milliseconds */
    TU_S,
    TU_MS,
    TU_NS,
} time_unit;

/* Epoch number (optionally with a fraction) in the given unit, or RFC 3339
 * text when allow_text. The fraction is read as digits, not through a
 * double: 1700000000.5 must be 1700000000500 exactly. */
static int parse_time(const char *s, size_t n, time_unit unit, int allow_text, int64_t *ms)
{
    size_t i = 0;
    while (i < n && is_digit(s[i]))
        i++;
    if (i == 0 || (i < n && s[i] != '.'))
        return allow_text ? parse_rfc3339(s, n, ms) : -1;
    uint64_t ip;
    if (parse_u64(s, i, &ip) != 0)
        return -1;
    int64_t frac = 0;
    if (i < n) {
        size_t start = ++i;
        for (; i < n; i++) {
            if (!is_digit(s[i]))
                return -1;
            if (i - start < 3)
                frac = frac * 10 + (s[i] - '0');
        }
        size_t nd = i - start;
        if (nd == 0)
            return -1;
        for (; nd < 3; nd++)
            frac *= 10;
    }
    if (unit == TU_AUTO)
        unit = ip < 100000000000ull ? TU_S : TU_MS;
    switch (unit) {
    case TU_S:
        if (ip > (uint64_t)(INT64_MAX / 1000 - 1))
            return -1;
        *ms = (int64_t)ip * 1000 + frac;
        return 0;
    case TU_MS:
        if (ip > (uint64_t)INT64_MAX)
            return -1;
        *ms = (int64_t)ip;
        return 0;
    default:
        *ms = (int64_t)(ip / 1000000);
        return 0;
    }
}

/* Letters as printed by flow tools ("S", "SA", "FPA"); case-insensitive.
 * E (ECE) and C (CWR) fill the two high bits that exporters also report. */
static int parse_tcp_flag_letters(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        switch (s[i] | 0x20) {
        case 'f': v |= 1; break;
        case 's': v |= 2; break;
        case 'r': v |= 4; break;
        case 'p': v |= 8; break;
        case 'a': v |= 16; break;
        case 'u': v |= 32; break;
        case 'e': v |= 64; break;
        case 'c': v |= 128; break;
        default: return -1;
        }
    }
    *out = v;
    return 0;
}

/* Stores one record field from its text. is_text is false for a bare JSON
 * primitive, which may only be a number. An empty value is absence, not an
 * error: goflow2 renders unknown protocols and missing addresses as "", and
 * CSV leaves cells empty for fields a flow does not have (ICMP ports). */
static nta_decode_status apply_field(nta_record *r, int field, const char *s, size_t n,
                                     int is_text)
{
    uint64_t v;
    if (n == 0)
        return NTA_DEC_OK;
    switch (field) {
    case NTA_F_SRC_IP:
    case NTA_F_DST_IP:
        if (!is_text || nta_addr_parse(field == NTA_F_SRC_IP ? &r->src : &r->dst, s, n) != 0)
            return NTA_DEC_BAD_ADDRESS;
        break;
    case NTA_F_SRC_PORT:
    case NTA_F_DST_PORT:
        if (parse_u64(s, n, &v) != 0 || v > 65535)
            return NTA_DEC_BAD_NUMBER;
        if (field == NTA_F_SRC_PORT)
            r->src_port = (uint16_t)v;
        else
            r->dst_port = (uint16_t)v;
        break;
    case NTA_F_PROTO: {
        int p = nta_proto_parse(s, n);
        if (p < 0 || (!is_text && !is_digit(s[0])))
            return NTA_DEC_BAD_PROTO;
        r->proto = (uint8_t)p;
        break;
    }
    case NTA_F_BYTES:
        if (parse_u64(s, n, &r->bytes) != 0)
            return NTA_DEC_BAD_NUMBER;
        break;
    case NTA_F_PACKETS:
        if (parse_u64(s, n, &r->packets) != 0)
            return NTA_DEC_BAD_NUMBER;
        break;
    case NTA_F_TCP_FLAGS:
        if (is_digit(s[0]) ? parse_u64(s, n, &v) != 0
                           : !is_text || parse_tcp_flag_letters(s, n, &v) != 0)
            return NTA_DEC_BAD_NUMBER;
        if (v > 255)
            return NTA_DEC_BAD_NUMBER;
        r->tcp_flags = (uint8_t)v;
        break;
    default:
        return NTA_DEC_OK;
    }
    r->present |= (uint16_t)NTA_HAS(field);
    return NTA_DEC_OK;
}

static nta_decode_status check_addresses(const nta_record *r)
{
    unsigned both = NTA_HAS(NTA_F_SRC_IP) | NTA_HAS(NTA_F_DST_IP);
    return (r->present & both) == both ? NTA_DEC_OK : NTA_DEC_MISSING_FIELD;
}

/* ---- JSON and goflow2 -------------------------------------------------- */

/* Two readers of the payload's structure feed one interpretation. The
 * scanner (json_scan) reads the common case, an object in strict JSON (flow
 * records; goflow2's arrays too), in one pass with no token array; for
 * anything else it gives up and jsmn (json_tokens) reads the payload
 * instead. Both leave, per slot, the value of
 * the last key that maps to it, which is all the interpretation looks at, so
 * the record and the error reason do not depend on which one read it. The
 * scanner exists because tokenising was a fifth of the pipeline thread's CPU
 * (bench/README.md, "JSON decoding"). */

typedef enum val_kind {
    VAL_PRIMITIVE, /* number, true, false, null, or what jsmn takes for one */
    VAL_STRING,    /* the raw inside of the quotes, escapes left as they are */
    VAL_NESTED,    /* an object or an array */
} val_kind;

typedef struct json_val {
    const char *s;
    uint32_t n; /* payloads are at most INT_MAX bytes */
    uint8_t kind; /* a val_kind */
} json_val;

/* The value of each slot for both readings (plain JSON and goflow2); vals[i]
 * is set only when bit i of have is. */
typedef struct json_keys {
    json_val jv[SL__COUNT], gv[SL__COUNT];
    uint32_t jhave, ghave;
    int marker; /* a goflow2-only key was seen */
} json_keys;

_Static_assert(SL__COUNT <= 32, "slots are bits of a uint32_t");

static void keys_reset(json_keys *k)
{
    k->jhave = k->ghave = 0;
    k->marker = 0;
}

static void keys_note(json_keys *k, const key_def *kd, const json_val *v)
{
    k->jv[kd->jslot] = *v;
    k->gv[kd->gslot] = *v;
    k->jhave |= 1u << kd->jslot;
    k->ghave |= 1u << kd->gslot;
    k->marker |= kd->marker;
}

/* The text of the value in slot; *n = 0 when the key is absent or null. A
 * nested object or array under a key we read makes the record not flat:
 * bad_json. */
static nta_decode_status json_scalar(const json_val *vals, uint32_t have, int slot,
                                     const char **s, size_t *n, int *is_text)
{
    *s = NULL;
    *n = 0;
    *is_text = 0;
    if (!(have & (1u << slot)))
        return NTA_DEC_OK;
    const json_val *v = &vals[slot];
    if (v->kind == VAL_NESTED)
        return NTA_DEC_BAD_JSON;
    *is_text = v->kind == VAL_STRING;
    if (!*is_text && v->n == 4 && memcmp(v->s, "null", 4) == 0)
        return NTA_DEC_OK;
    *s = v->s;
    *n = v->n;
    return NTA_DEC_OK;
}

static nta_decode_status json_field(nta_record *r, int field, const json_val *vals,
                                    uint32_t have)
{
    const char *s;
    size_t n;
    int is_text;
    nta_decode_status st = json_scalar(vals, have, field, &s, &n, &is_text);
    return st != NTA_DEC_OK ? st : apply_field(r, field, s, n, is_text);
}

/* Time of the value in slot in ms; *found is 0 when the key is absent, null
 * or "". */
static nta_decode_status json_time(const json_val *vals, uint32_t have, int slot,
                                   time_unit unit, int64_t *ms, int *found)
{
    const char *s;
    size_t n;
    int is_text;
    *found = 0;
    nta_decode_status st = json_scalar(vals, have, slot, &s, &n, &is_text);
    if (st != NTA_DEC_OK || n == 0)
        return st;
    if (parse_time(s, n, unit, is_text, ms) != 0)
        return NTA_DEC_BAD_TIME;
    *found = 1;
    return NTA_DEC_OK;
}

static nta_decode_status json_fields(nta_record *r, const json_val *vals, uint32_t have)
{
    nta_decode_status st;
    if ((st = json_field(r, NTA_F_SRC_IP, vals, have)) != NTA_DEC_OK ||
        (st = json_field(r, NTA_F_DST_IP, vals, have)) != NTA_DEC_OK ||
        (st = check_addresses(r)) != NTA_DEC_OK)
        return st;
    for (int f = NTA_F_SRC_PORT; f < NTA_F__COUNT; f++)
        if ((st = json_field(r, f, vals, have)) != NTA_DEC_OK)
            return st;
    return NTA_DEC_OK;
}

static nta_decode_status json_plain(nta_record *r, const json_val *vals, uint32_t have)
{
    nta_decode_status st = json_fields(r, vals, have);
    if (st != NTA_DEC_OK)
        return st;
    int64_t ts;
    int found;
    if ((st = json_time(vals, have, SL_TS, TU_AUTO, &ts, &found)) != NTA_DEC_OK)
        return st;
    if (found)
        r->ts_ms = ts;
    return NTA_DEC_OK;
}

static nta_decode_status json_goflow2(nta_record *r, const json_val *vals, uint32_t have)
{
    nta_decode_status st = json_fields(r, vals, have);
    if (st != NTA_DEC_OK)
        return st;
    /* Event time is flow end, else flow start, else time received; within
     * each, the most precise unit present. goflow2 writes 0 for a time the
     * exporter did not send, so 0 counts as absent. */
    static const struct {
        uint8_t slot;
        uint8_t unit;
    } times[] = {
        {SL_G_END_NS, TU_NS},   {SL_G_END_MS, TU_MS},   {SL_G_END_S, TU_S},
        {SL_G_START_NS, TU_NS}, {SL_G_START_MS, TU_MS}, {SL_G_START_S, TU_S},
        {SL_G_RECV_NS, TU_NS},  {SL_G_RECV_S, TU_S},
    };
    int64_t ts = 0;
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        int64_t t;
        int found;
        st = json_time(vals, have, times[i].slot, (time_unit)times[i].unit, &t, &found);
        if (st != NTA_DEC_OK)
            return st;
        if (ts == 0 && found)
            ts = t;
    }
    if (ts != 0)
        r->ts_ms = ts;

    uint64_t rate = 0;
    const char *s;
    size_t n;
    int is_text;
    if ((st = json_scalar(vals, have, SL_G_SAMPLING, &s, &n, &is_text)) != NTA_DEC_OK)
        return st;
    if (n != 0 && parse_u64(s, n, &rate) != 0)
        return NTA_DEC_BAD_NUMBER;
    if (rate > 1) {
        if (r->bytes > UINT64_MAX / rate || r->packets > UINT64_MAX / rate)
            return NTA_DEC_BAD_NUMBER;
        r->bytes *= rate;
        r->packets *= rate;
    }
    return NTA_DEC_OK;
}

/* jsmn's reading: whatever jsmn accepts in its strict mode (which still
 * passes some text that is not JSON, such as a trailing comma), within
 * JSON_MAX_TOKENS tokens. */
static nta_decode_status json_tokens(const char *js, size_t len, json_keys *k)
{
    jsmntok_t tok[JSON_MAX_TOKENS];
    jsmn_parser parser;
    if (len > INT_MAX)
        return NTA_DEC_BAD_JSON;
    jsmn_init(&parser);
    int ntok = jsmn_parse(&parser, js, len, tok, JSON_MAX_TOKENS);
    /* jsmn stops quietly at a NUL and accepts several top-level values, so
     * the object must also span the whole (trimmed) payload. */
    if (ntok < 1 || tok[0].type != JSMN_OBJECT || tok[0].start != 0 ||
        (size_t)tok[0].end != len)
        return NTA_DEC_BAD_JSON;

    int i = 1;
    for (int key = 0; key < tok[0].size; key++) {
        if (i + 1 >= ntok || tok[i].type != JSMN_STRING || tok[i].size != 1)
            return NTA_DEC_BAD_JSON;
        const key_def *kd = key_lookup(js + tok[i].start, (size_t)(tok[i].end - tok[i].start));
        if (kd != NULL) {
            const jsmntok_t *t = &tok[i + 1];
            json_val v = {js + t->start, (uint32_t)(t->end - t->start),
                          t->size != 0                 ? VAL_NESTED
                          : t->type == JSMN_STRING    ? VAL_STRING
                          : t->type == JSMN_PRIMITIVE ? VAL_PRIMITIVE
                                                      : VAL_NESTED};
            keys_note(k, kd, &v);
        }
        if ((i = nta_json_skip_value(tok, i + 1, ntok)) < 0)
            return NTA_DEC_BAD_JSON;
    }
    return NTA_DEC_OK;
}

static int is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static const char *skip_space(const char *p, const char *e)
{
    while (p < e && is_json_space(*p))
        p++;
    return p;
}

static int is_hex(char c)
{
    return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* Bytes of x that are zero get their high bit set, and so may bytes above
 * the first zero (a borrow), which is why only the lowest flag is used. */
static uint64_t zero_bytes(uint64_t x)
{
    return (x - 0x0101010101010101ull) & ~x & 0x8080808080808080ull;
}

/* The closing quote of the string whose inside starts at p, or NULL. It
 * steps over escapes as jsmn does, so both end the string at the same quote;
 * a NUL, an unknown escape or a short \u is left to jsmn. Eight bytes at a
 * time up to the first quote, backslash or NUL: addresses and keys are
 * mostly shorter than 16 bytes, too short for memchr's call to pay. */
static const char *scan_string(const char *p, const char *e)
{
    for (;;) {
        while (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && e - p >= 8) {
            uint64_t x;
            memcpy(&x, p, 8);
            uint64_t hit = zero_bytes(x) | zero_bytes(x ^ 0x2222222222222222ull) |
                           zero_bytes(x ^ 0x5c5c5c5c5c5c5c5cull);
            if (hit != 0) {
                p += __builtin_ctzll(hit) / 8; /* the lowest byte is the first */
                goto special;
            }
            p += 8;
        }
        while (p < e && *p != '"' && *p != '\\' && *p != '\0')
            p++;
        if (p >= e)
            return NULL;
    special:
        if (*p == '"')
            return p;
        if (*p == '\0' || e - p < 2)
            return NULL;
        switch (*++p) {
        case '"': case '/': case '\\': case 'b': case 'f': case 'r': case 'n': case 't':
            break;
        case 'u':
            if (e - p < 5 || !is_hex(p[1]) || !is_hex(p[2]) || !is_hex(p[3]) || !is_hex(p[4]))
                return NULL;
            p += 4;
            break;
        default:
            return NULL;
        }
        p++;
    }
}

/* jsmn's strict mode starts a primitive at these and never at anything else. */
static int is_primitive_start(char c)
{
    return is_digit(c) || c == '-' || c == 't' || c == 'f' || c == 'n';
}

/* The end of the primitive starting at p, delimited as jsmn's strict mode
 * does: it runs to the next white space, ',', ']' or '}', and may hold any
 * other printable ASCII ("1.2.3" and "nope" are primitives to jsmn, and the
 * field parsers reject them). NULL for one jsmn rejects: any other byte, or
 * no delimiter before e. */
static const char *scan_primitive(const char *p, const char *e)
{
    while (p < e && is_digit(*p)) /* most are numbers: one test a digit */
        p++;
    for (; p < e; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == ',' || c == '}' || c == ']' || is_json_space((char)c))
            return p;
        if (c < 32 || c >= 127)
            return NULL;
    }
    return NULL;
}

/* Deeper nesting than any flow record has; jsmn reads the rest. */
#define SCAN_MAX_DEPTH 16

/* Steps over the object or array at p (strict JSON, every primitive as
 * scan_primitive delimits it) and adds its tokens, as jsmn would count them,
 * to *ntok. Returns the position after it, or NULL to leave it to jsmn. */
static const char *scan_nested(const char *p, const char *e, int *ntok)
{
    char close[SCAN_MAX_DEPTH];
    int depth = 0;
    for (;;) {
        /* p is at a value inside the container close[depth - 1], if any. */
        char c = *p;
        (*ntok)++;
        if (c == '{' || c == '[') {
            if (depth == SCAN_MAX_DEPTH)
                return NULL;
            close[depth++] = c == '{' ? '}' : ']';
            p = skip_space(p + 1, e);
            if (p < e && *p == close[depth - 1]) {
                p++;
                if (--depth == 0)
                    return p;
                goto after_value;
            }
            if (c == '[')
                goto value;
            goto key;
        } else if (c == '"') {
            if ((p = scan_string(p + 1, e)) == NULL)
                return NULL;
            p++;
        } else if (is_primitive_start(c)) {
            if ((p = scan_primitive(p, e)) == NULL)
                return NULL;
        } else {
            return NULL;
        }
    after_value:
        for (;;) {
            p = skip_space(p, e);
            if (p >= e)
                return NULL;
            if (*p == ',') {
                p = skip_space(p + 1, e);
                if (close[depth - 1] == ']')
                    goto value;
                goto key;
            }
            if (*p != close[depth - 1])
                return NULL;
            p++;
            if (--depth == 0)
                return p;
        }
    key:
        if (p >= e || *p != '"' || (p = scan_string(p + 1, e)) == NULL)
            return NULL;
        (*ntok)++;
        p = skip_space(p + 1, e);
        if (p >= e || *p != ':')
            return NULL;
        p = skip_space(p + 1, e);
    value:
        if (p >= e)
            return NULL;
    }
}

/* The scanner's reading of the object js[0..len) (js[0] is '{'): strict
 * JSON, where jsmn would produce the same keys and values, or -1 to leave
 * the payload to jsmn. What it leaves (a trailing comma, a NUL, more than
 * JSON_MAX_TOKENS tokens, text after the object, deep nesting) is rare in
 * flow records, and jsmn either reads it or rejects it. */
static int json_scan(const char *js, size_t len, json_keys *k)
{
    const char *p = js + 1, *e = js + len;
    int ntok = 1;
    if (len > INT_MAX)
        return -1;
    p = skip_space(p, e);
    if (p < e && *p == '}')
        return p + 1 == e ? 0 : -1;
    for (;;) {
        if (p >= e || *p != '"')
            return -1;
        const char *key = p + 1;
        if ((p = scan_string(key, e)) == NULL)
            return -1;
        const key_def *kd = key_lookup(key, (size_t)(p - key));
        p = skip_space(p + 1, e);
        if (p >= e || *p != ':')
            return -1;
        p = skip_space(p + 1, e);
        if (p >= e)
            return -1;
        json_val v = {p, 0, VAL_PRIMITIVE};
        ntok++; /* the key; the value counts its own */
        if (*p == '"') {
            ntok++;
            v.s = p + 1;
            v.kind = VAL_STRING;
            if ((p = scan_string(v.s, e)) == NULL)
                return -1;
            v.n = (uint32_t)(p - v.s);
            p++;
        } else if (*p == '{' || *p == '[') {
            v.kind = VAL_NESTED;
            if ((p = scan_nested(p, e, &ntok)) == NULL)
                return -1;
        } else {
            ntok++;
            if (!is_primitive_start(*p) || (p = scan_primitive(p, e)) == NULL)
                return -1;
            v.n = (uint32_t)(p - v.s);
        }
        if (ntok > JSON_MAX_TOKENS)
            return -1;
        if (kd != NULL)
            keys_note(k, kd, &v);
        p = skip_space(p, e);
        if (p >= e)
            return -1;
        if (*p == '}')
            return p + 1 == e ? 0 : -1;
        if (*p != ',')
            return -1;
        p = skip_space(p + 1, e);
    }
}

/* Reads the structure once (scanner, else jsmn), recording where each known
 * key's value is for both readings, then interprets the one that applies.
 * fmt is NTA_FMT_JSON, NTA_FMT_GOFLOW2, or NTA_FMT_AUTO to choose by the
 * presence of a goflow2-only key. */
static nta_decode_status decode_json(nta_decoder *d, nta_format fmt, const char *js,
                                     size_t len, nta_record *r)
{
    json_keys k;
    keys_reset(&k);
    if (d->json_reference || json_scan(js, len, &k) != 0) {
        if (!d->json_reference)
            d->json_fallbacks++;
        keys_reset(&k);
        nta_decode_status st = json_tokens(js, len, &k);
        if (st != NTA_DEC_OK)
            return st;
    }
    if (fmt == NTA_FMT_AUTO)
        fmt = k.marker ? NTA_FMT_GOFLOW2 : NTA_FMT_JSON;
    return fmt == NTA_FMT_GOFLOW2 ? json_goflow2(r, k.gv, k.ghave)
                                  : json_plain(r, k.jv, k.jhave);
}

/* ---- CSV --------------------------------------------------------------- */

typedef struct csv_span {
    const char *s;
    size_t n;
} csv_span;

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Splits one line into trimmed fields; returns the count, or -1 for an
 * unterminated quote, text after a closing quote, a line break outside
 * quotes (one record per message) or more than NTA_CSV_MAX_COLS fields.
 * A quoted field's span is its raw inside, "" escapes left as they are: no
 * value we decode can contain a quote, so such a field fails its parser
 * exactly as its unescaped text would. */
static int csv_split(const char *p, size_t n, csv_span *f)
{
    int nf = 0;
    size_t i = 0;
    for (;;) {
        if (nf == NTA_CSV_MAX_COLS)
            return -1;
        while (i < n && is_blank(p[i]))
            i++;
        if (i < n && p[i] == '"') {
            size_t start = ++i;
            for (;; i++) {
                if (i >= n)
                    return -1;
                if (p[i] == '"') {
                    if (i + 1 < n && p[i + 1] == '"')
                        i++;
                    else
                        break;
                }
            }
            f[nf].s = p + start;
            f[nf].n = i - start;
            i++;
            while (i < n && is_blank(p[i]))
                i++;
            if (i < n && p[i] != ',')
                return -1;
        } else {
            size_t start = i;
            for (; i < n && p[i] != ','; i++)
                if (p[i] == '\n' || p[i] == '\r')
                    return -1;
            size_t end = i;
            while (end > start && is_blank(p[end - 1]))
                end--;
            f[nf].s = p + start;
            f[nf].n = end - start;
        }
        nf++;
        if (i >= n)
            return nf;
        i++;
    }
}

/* A header is a line of column names only, at least one of them real. No
 * column name is address text, so a data line never passes; its first field
 * usually fails at once, which keeps the check cheap. */
static int csv_header(const csv_span *f, int nf, int *cols)
{
    int named = 0;
    for (int i = 0; i < nf; i++) {
        int c = csv_col_by_name(f[i].s, f[i].n);
        if (c == -1)
            return 0;
        named |= c != NTA_F_NONE;
        cols[i] = c;
    }
    return named;
}

static const int csv_default_cols[] = {NTA_F_SRC_IP, NTA_F_DST_IP, NTA_F_BYTES};

static nta_decode_status decode_csv(nta_decoder *d, const char *p, size_t n, nta_record *r)
{
    csv_span f[NTA_CSV_MAX_COLS];
    int cols[NTA_CSV_MAX_COLS];
    int nf = csv_split(p, n, f);
    if (nf < 0)
        return NTA_DEC_BAD_CSV;
    if (csv_header(f, nf, cols)) {
        if (!d->cols_configured) {
            memcpy(d->cols, cols, (size_t)nf * sizeof cols[0]);
            d->ncols = nf;
            d->cols_from_header = 1;
        }
        return NTA_DEC_SKIP;
    }
    const int *map = d->ncols > 0 ? d->cols : csv_default_cols;
    int nc = d->ncols > 0 ? d->ncols : (int)(sizeof csv_default_cols / sizeof csv_default_cols[0]);
    if (nf != nc)
        return NTA_DEC_BAD_CSV;
    for (int i = 0; i < nf; i++) {
        nta_decode_status st;
        if (map[i] == NTA_CSV_TS) {
            if (f[i].n > 0 && parse_time(f[i].s, f[i].n, TU_AUTO, 1, &r->ts_ms) != 0)
                return NTA_DEC_BAD_TIME;
        } else if ((st = apply_field(r, map[i], f[i].s, f[i].n, 1)) != NTA_DEC_OK) {
            return st;
        }
    }
    return check_addresses(r);
}

/* ---- entry points -------------------------------------------------------- */

void nta_decoder_init(nta_decoder *d, nta_format format)
{
    memset(d, 0, sizeof *d);
    d->format = format;
}

int nta_decoder_set_columns(nta_decoder *d, const char *const *names, int n, char *err,
                            size_t errlen)
{
    int cols[NTA_CSV_MAX_COLS];
    unsigned seen = 0;
    if (n < 1 || n > NTA_CSV_MAX_COLS) {
        snprintf(err, errlen, "csv columns: need 1 to %d names, got %d", NTA_CSV_MAX_COLS, n);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (names[i] == NULL) {
            snprintf(err, errlen, "csv columns: name %d is missing", i + 1);
            return -1;
        }
        cols[i] = csv_col_by_name(names[i], strlen(names[i]));
        if (cols[i] == -1) {
            snprintf(err, errlen, "csv columns: unknown column '%s'", names[i]);
            return -1;
        }
        if (cols[i] > 0)
            seen |= NTA_HAS(cols[i]);
    }
    /* Rejected here, once, rather than as missing_field on every record. */
    if (!(seen & NTA_HAS(NTA_F_SRC_IP)) || !(seen & NTA_HAS(NTA_F_DST_IP))) {
        snprintf(err, errlen, "csv columns: src_ip and dst_ip are required");
        return -1;
    }
    memcpy(d->cols, cols, (size_t)n * sizeof cols[0]);
    d->ncols = n;
    d->cols_configured = 1;
    d->cols_from_header = 0;
    return 0;
}

static int is_space_or_nul(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\0';
}

/* Producers written in C sometimes send the terminating NUL, and
 * spreadsheet exports start with a UTF-8 byte order mark. */
static const char *trim(const char *p, size_t *len)
{
    if (*len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
        p += 3;
        *len -= 3;
    }
    while (*len > 0 && is_space_or_nul(p[*len - 1]))
        (*len)--;
    while (*len > 0 && is_space_or_nul(p[0])) {
        p++;
        (*len)--;
    }
    return p;
}

/* Whether format auto reads the (trimmed, non-empty) text p as CSV. */
static int auto_is_csv(const char *p)
{
    unsigned char c = (unsigned char)p[0];
    /* Control bytes or non-ASCII cannot start a CSV line of ours: this is
     * binary (goflow2 protobuf, compressed data) rather than a bad record. */
    return c != '{' && c != '[' && c >= 0x20 && c < 0x7f;
}

int nta_decode_in_order(const nta_decoder *d, const char *payload, size_t len)
{
    if (d->format == NTA_FMT_CSV)
        return 1;
    if (d->format != NTA_FMT_AUTO || payload == NULL)
        return 0;
    const char *p = trim(payload, &len);
    return len > 0 && auto_is_csv(p);
}

nta_decode_status nta_decode(nta_decoder *d, const char *payload, size_t len, nta_record *out)
{
    memset(out, 0, sizeof *out);
    out->ts_ms = NTA_TS_NONE;
    out->packets = 1;
    if (payload == NULL)
        return NTA_DEC_EMPTY;
    const char *p = trim(payload, &len);
    if (len == 0)
        return NTA_DEC_EMPTY;

    switch (d->format) {
    case NTA_FMT_JSON:
    case NTA_FMT_GOFLOW2:
        return p[0] == '{' ? decode_json(d, d->format, p, len, out) : NTA_DEC_BAD_JSON;
    case NTA_FMT_CSV:
        return decode_csv(d, p, len, out);
    case NTA_FMT_AUTO:
        if (p[0] == '{')
            return decode_json(d, NTA_FMT_AUTO, p, len, out);
        if (p[0] == '[')
            return NTA_DEC_BAD_JSON;
        if (!auto_is_csv(p))
            return NTA_DEC_UNKNOWN_FORMAT;
        return decode_csv(d, p, len, out);
    default:
        return NTA_DEC_UNKNOWN_FORMAT;
    }
}
