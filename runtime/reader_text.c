/* Flow logs, one record per line: Zeek conn.log (JSON lines, or TSV with its
 * #fields header), CICFlowMeter CSV, goflow2 and nta JSON lines.
 *
 * Zeek: one record per connection with the originator as src_ip (a scanner
 * is the originator of its probes, so per-source windows see it), ts = the
 * connection start, bytes = orig_ip_bytes + resp_ip_bytes (IP bytes, as a
 * capture counts them; orig_bytes + resp_bytes, payload only, when the IP
 * counts are unset), packets = orig_pkts + resp_pkts, ICMP type and code in
 * the ports (Zeek's own convention). TCP flags from history, direction
 * ignored: S = SYN, H = SYN+ACK, A = ACK, D = ACK (data after the handshake
 * carries it), F = FIN, R = RST; the other letters (C, G, T, W, I, Q, ^) are
 * not flags. With no history, from conn_state: S0 = SYN, REJ = SYN+RST,
 * RSTOS0/RSTRH = SYN+RST, SH = SYN+FIN, OTH = none; the rest SYN+ACK(+FIN or
 * RST as their names say).
 *
 * CICFlowMeter: one record per (bidirectional) flow as the CSV has it, src =
 * the flow's initiator, ts = the Timestamp column (the flow start) read as UTC
 * (the files carry no zone), bytes = total forward + backward length (the
 * payload bytes CICFlowMeter counts), packets = forward + backward packets,
 * TCP flags = those whose flag count column is non-zero. Header names are
 * matched without case and surrounding spaces, in the CICFlowMeter-V3 style
 * ("Src IP", "Tot Fwd Pkts", "TotLen Fwd Pkts") and the CIC-IDS2017 style
 * (" Source IP", " Total Fwd Packets", "Total Length of Fwd Packets"),
 * including the improved re-release's singulars ("Total Fwd Packet"). */
#include "reader_impl.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "clock.h"
#include "decode.h"
#include "json_tok.h"


/* A conn.log line has ~25 keys; the rest of the room is for arrays
 * (tunnel_parents) a site may add. */
#define ZEEK_MAX_TOKENS 512
#define MAX_COLS 256

typedef struct span {
    const char *s;
    size_t n;
    int set; /* 0: the field is absent or unset */
} span;

enum zeek_field {
    Z_NONE,
    Z_TS,
    Z_ORIG_H,
    Z_RESP_H,
    Z_ORIG_P,
    Z_RESP_P,
    Z_PROTO,
    Z_ORIG_BYTES,
    Z_RESP_BYTES,
    Z_ORIG_IP_BYTES,
    Z_RESP_IP_BYTES,
    Z_ORIG_PKTS,
    Z_RESP_PKTS,
    Z_CONN_STATE,
    Z_HISTORY,
    Z__COUNT
};

static const char *const zeek_names[Z__COUNT] = {
    [Z_TS] = "ts",
    [Z_ORIG_H] = "id.orig_h",
    [Z_RESP_H] = "id.resp_h",
    [Z_ORIG_P] = "id.orig_p",
    [Z_RESP_P] = "id.resp_p",
    [Z_PROTO] = "proto",
    [Z_ORIG_BYTES] = "orig_bytes",
    [Z_RESP_BYTES] = "resp_bytes",
    [Z_ORIG_IP_BYTES] = "orig_ip_bytes",
    [Z_RESP_IP_BYTES] = "resp_ip_bytes",
    [Z_ORIG_PKTS] = "orig_pkts",
    [Z_RESP_PKTS] = "resp_pkts",
    [Z_CONN_STATE] = "conn_state",
    [Z_HISTORY] = "history",
};

enum cic_field {
    C_NONE,
    C_SRC,
    C_DST,
    C_SPORT,
    C_DPORT,
    C_PROTO,
    C_TS,
    C_FWD_PKTS,
    C_BWD_PKTS,
    C_FWD_BYTES,
    C_BWD_BYTES,
    C_FIN,
    C_SYN,
    C_RST,
    C_PSH,
    C_ACK,
    C_URG,
    C_ECE,
    C_CWR,
    C__COUNT
};

static const struct {
    const char *name; /* lower case */
    uint8_t field;
} cic_names[] = {
    {"src ip", C_SRC},
    {"source ip", C_SRC},
    {"dst ip", C_DST},
    {"destination ip", C_DST},
    {"src port", C_SPORT},
    {"source port", C_SPORT},
    {"dst port", C_DPORT},
    {"destination port", C_DPORT},
    {"protocol", C_PROTO},
    {"timestamp", C_TS},
    {"tot fwd pkts", C_FWD_PKTS},
    {"total fwd packets", C_FWD_PKTS},
    {"total fwd packet", C_FWD_PKTS},
    {"tot bwd pkts", C_BWD_PKTS},
    {"total backward packets", C_BWD_PKTS},
    {"total bwd packets", C_BWD_PKTS},
    {"totlen fwd pkts", C_FWD_BYTES},
    {"total length of fwd packets", C_FWD_BYTES},
    {"total length of fwd packet", C_FWD_BYTES},
    {"totlen bwd pkts", C_BWD_BYTES},
    {"total length of bwd packets", C_BWD_BYTES},
    {"total length of bwd packet", C_BWD_BYTES},
    {"fin flag cnt", C_FIN},
    {"fin flag count", C_FIN},
    {"syn flag cnt", C_SYN},
    {"syn flag count", C_SYN},
    {"rst flag cnt", C_RST},
    {"rst flag count", C_RST},
    {"psh flag cnt", C_PSH},
    {"psh flag count", C_PSH},
    {"ack flag cnt", C_ACK},
    {"ack flag count", C_ACK},
    {"urg flag cnt", C_URG},
    {"urg flag count", C_URG},
    {"ece flag cnt", C_ECE},
    {"ece flag count", C_ECE},
    {"cwe flag count", C_CWR}, /* CIC-IDS2017's spelling */
    {"cwr flag count", C_CWR},
    {"cwr flag cnt", C_CWR},
};

typedef struct text_rd {
    FILE *f;
    char *line;
    size_t cap;
    uint64_t lineno;
    int header_done; /* CIC: header read; Zeek TSV: #fields read */
    int tsv;         /* Zeek: -1 unknown yet, 0 JSON lines, 1 TSV */
    char sep;        /* Zeek TSV separator */
    char unset[32], empty[32];
    uint8_t col[MAX_COLS]; /* column -> zeek_field or cic_field */
    int ncols;
    nta_decoder dec;
} text_rd;

/* ---- scalars -------------------------------------------------------------- */

static int parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 19)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* A count that some CSV writers print as a float ("3.0"): the integer part. */
static int parse_count(const char *s, size_t n, uint64_t *out)
{
    const char *dot = memchr(s, '.', n);
    if (dot == NULL)
        return parse_u64(s, n, out);
    for (const char *p = dot + 1; p < s + n; p++)
        if (*p < '0' || *p > '9')
            return -1;
    return parse_u64(s, (size_t)(dot - s), out);
}

static int parse_digits(const char *s, size_t n, int *out)
{
    uint64_t v;
    if (n > 4 || parse_u64(s, n, &v) != 0)
        return -1;
    *out = (int)v;
    return 0;
}

/* Epoch seconds with an optional fraction, to ms without going through a
 * double (1664462456.755299 must stay .755). */
static int parse_epoch_s(const char *s, size_t n, int64_t *ms)
{
    const char *dot = memchr(s, '.', n);
    size_t in = dot ? (size_t)(dot - s) : n;
    uint64_t sec;
    if (parse_u64(s, in, &sec) != 0 || sec > 100000000000ull)
        return -1;
    int64_t frac = 0;
    if (dot) {
        size_t nd = n - in - 1;
        if (nd == 0)
            return -1;
        for (size_t i = 0; i < nd; i++) {
            char c = dot[1 + i];
            if (c < '0' || c > '9')
                return -1;
            if (i < 3)
                frac = frac * 10 + (c - '0');
        }
        for (size_t i = nd; i < 3; i++)
            frac *= 10;
    }
    *ms = (int64_t)sec * 1000 + frac;
    return 0;
}

static int civil_ms(int y, int mo, int d, int h, int mi, int se, int frac_ms, int64_t *ms)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap) ||
        h > 23 || mi > 59 || se > 60)
        return -1;
    *ms = (((nta_days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 + se) * 1000 + frac_ms;
    return 0;
}

/* Splits s[0..n) at any of the characters in seps into at most max parts. */
static int split_any(const char *s, size_t n, const char *seps, span *parts, int max)
{
    int np = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || strchr(seps, s[i]) != NULL) {
            if (np == max)
                return -1;
            parts[np++] = (span){s + start, i - start, 1};
            start = i + 1;
        }
    }
    return np;
}

/* "2017-07-07 17:51:49.618008", "2022-09-29T14:40:56.755Z" (UTC) or
 * "7/7/2017 3:30[:15][ PM]" (day first, as CICFlowMeter writes dd/MM/yyyy).
 * All read as UTC: the files carry no zone. */
static int parse_civil_time(const char *s, size_t n, int64_t *ms)
{
    span dt[3], d[3], t[3];
    if (n > 0 && (s[n - 1] == 'Z' || s[n - 1] == 'z'))
        n--;
    int nparts = split_any(s, n, " T", dt, 3);
    if (nparts < 2)
        return -1;
    int y, mo, day, h, mi, se = 0, frac = 0;
    if (split_any(dt[0].s, dt[0].n, "-", d, 3) == 3) {
        if (d[0].n != 4 || parse_digits(d[0].s, d[0].n, &y) || parse_digits(d[1].s, d[1].n, &mo) ||
            parse_digits(d[2].s, d[2].n, &day))
            return -1;
    } else if (split_any(dt[0].s, dt[0].n, "/", d, 3) == 3) {
        if (d[2].n != 4 || parse_digits(d[0].s, d[0].n, &day) ||
            parse_digits(d[1].s, d[1].n, &mo) || parse_digits(d[2].s, d[2].n, &y))
            return -1;
    } else {
        return -1;
    }
    int nt = split_any(dt[1].s, dt[1].n, ":", t, 3);
    if (nt < 2 || parse_digits(t[0].s, t[0].n, &h) || parse_digits(t[1].s, t[1].n, &mi))
        return -1;
    if (nt == 3) {
        const char *dot = memchr(t[2].s, '.', t[2].n);
        size_t sn = dot ? (size_t)(dot - t[2].s) : t[2].n;
        if (parse_digits(t[2].s, sn, &se))
            return -1;
        if (dot) {
            size_t fn = t[2].n - sn - 1;
            if (fn == 0)
                return -1;
            for (size_t i = 0; i < fn; i++) {
                if (dot[1 + i] < '0' || dot[1 + i] > '9')
                    return -1;
                if (i < 3)
                    frac = frac * 10 + (dot[1 + i] - '0');
            }
            for (size_t i = fn; i < 3; i++)
                frac *= 10;
        }
    }
    if (nparts == 3) {
        if (dt[2].n != 2 || h < 1 || h > 12)
            return -1;
        int pm = (dt[2].s[0] | 0x20) == 'p';
        if (!pm && (dt[2].s[0] | 0x20) != 'a')
            return -1;
        if ((dt[2].s[1] | 0x20) != 'm')
            return -1;
        h = h % 12 + (pm ? 12 : 0);
    }
    return civil_ms(y, mo, day, h, mi, se, frac, ms);
}

static int parse_port(const span *v, uint16_t *out)
{
    uint64_t p = 0;
    if (v->set && v->n > 0 && (parse_u64(v->s, v->n, &p) != 0 || p > 65535))
        return -1;
    *out = (uint16_t)p;
    return 0;
}

static int parse_opt_u64(const span *v, uint64_t *out)
{
    *out = 0;
    return v->set && v->n > 0 ? parse_u64(v->s, v->n, out) : 0;
}

/* ---- lines ------------------------------------------------------------------ */

/* The next line without its end of line; -1 at the end of the file, -2 on a
 * read error (reported). A last line without a newline counts (a cut file is
 * then caught by its parser). */
static ssize_t next_line(nta_reader *r, text_rd *t)
{
    errno = 0;
    ssize_t n = getline(&t->line, &t->cap, t->f);
    if (n < 0 && ferror(t->f)) {
        nta_reader_fail(r, "after line %llu: %s", (unsigned long long)t->lineno,
                        strerror(errno ? errno : EIO));
        return -2;
    }
    if (n < 0)
        return -1;
    t->lineno++;
    r->st.units++;
    while (n > 0 && (t->line[n - 1] == '\n' || t->line[n - 1] == '\r'))
        n--;
    /* A UTF-8 byte order mark from spreadsheet exports. */
    if (t->lineno == 1 && n >= 3 && memcmp(t->line, "\xEF\xBB\xBF", 3) == 0) {
        memmove(t->line, t->line + 3, (size_t)n - 3);
        n -= 3;
    }
    return n;
}

static int is_blank_line(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i]))
            return 0;
    return 1;
}

static int line_fail(nta_reader *r, text_rd *t, const char *why)
{
    return nta_reader_fail(r, "line %llu: %s", (unsigned long long)t->lineno, why);
}

/* ---- Zeek --------------------------------------------------------------------- */

static uint8_t history_flags(const span *h)
{
    uint8_t f = 0;
    for (size_t i = 0; i < h->n; i++) {
        switch (h->s[i] | 0x20) {
        case 's': f |= 0x02; break;
        case 'h': f |= 0x12; break;
        case 'a':
        case 'd': f |= 0x10; break;
        case 'f': f |= 0x01; break;
        case 'r': f |= 0x04; break;
        default: break;
        }
    }
    return f;
}

static uint8_t conn_state_flags(const span *c)
{
    static const struct {
        const char *state;
        uint8_t flags;
    } states[] = {
        {"S0", 0x02},     {"REJ", 0x06},  {"RSTOS0", 0x06}, {"RSTRH", 0x06}, {"SH", 0x03},
        {"SHR", 0x13},    {"S1", 0x12},   {"SF", 0x13},     {"S2", 0x13},    {"S3", 0x13},
        {"RSTO", 0x16},   {"RSTR", 0x16}, {"OTH", 0x00},
    };
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
        if (strlen(states[i].state) == c->n && memcmp(states[i].state, c->s, c->n) == 0)
            return states[i].flags;
    return 0;
}

static int zeek_build(nta_reader *r, text_rd *t, const span *v, nta_record *out)
{
    memset(out, 0, sizeof *out);
    if (!v[Z_TS].set || !v[Z_ORIG_H].set || !v[Z_RESP_H].set)
        return line_fail(r, t, "a connection needs ts, id.orig_h and id.resp_h");
    if (parse_epoch_s(v[Z_TS].s, v[Z_TS].n, &out->ts_ms) != 0 &&
        parse_civil_time(v[Z_TS].s, v[Z_TS].n, &out->ts_ms) != 0)
        return line_fail(r, t, "bad ts");
    if (nta_addr_parse(&out->src, v[Z_ORIG_H].s, v[Z_ORIG_H].n) != 0 ||
        nta_addr_parse(&out->dst, v[Z_RESP_H].s, v[Z_RESP_H].n) != 0)
        return line_fail(r, t, "bad address in id.orig_h or id.resp_h");
    if (parse_port(&v[Z_ORIG_P], &out->src_port) || parse_port(&v[Z_RESP_P], &out->dst_port))
        return line_fail(r, t, "bad port");
    if (v[Z_PROTO].set && v[Z_PROTO].n > 0) {
        static const char unknown[] = "unknown_transport";
        int p = nta_proto_parse(v[Z_PROTO].s, v[Z_PROTO].n);
        if (p < 0 && !(v[Z_PROTO].n == sizeof unknown - 1 &&
                       memcmp(v[Z_PROTO].s, unknown, sizeof unknown - 1) == 0))
            return line_fail(r, t, "bad proto");
        out->proto = (uint8_t)(p < 0 ? 0 : p);
    }
    uint64_t ob, rb, op, rp;
    int ip = v[Z_ORIG_IP_BYTES].set || v[Z_RESP_IP_BYTES].set;
    if (parse_opt_u64(&v[ip ? Z_ORIG_IP_BYTES : Z_ORIG_BYTES], &ob) ||
        parse_opt_u64(&v[ip ? Z_RESP_IP_BYTES : Z_RESP_BYTES], &rb) ||
        parse_opt_u64(&v[Z_ORIG_PKTS], &op) || parse_opt_u64(&v[Z_RESP_PKTS], &rp))
        return line_fail(r, t, "bad byte or packet count");
    out->bytes = ob + rb;
    out->packets = op + rp;
    if (out->proto == 6)
        out->tcp_flags = v[Z_HISTORY].set ? history_flags(&v[Z_HISTORY])
                         : v[Z_CONN_STATE].set ? conn_state_flags(&v[Z_CONN_STATE])
                                               : 0;
    out->present = NTA_HAS(NTA_F_SRC_IP) | NTA_HAS(NTA_F_DST_IP) | NTA_HAS(NTA_F_SRC_PORT) |
                   NTA_HAS(NTA_F_DST_PORT) | NTA_HAS(NTA_F_PROTO) | NTA_HAS(NTA_F_BYTES) |
                   NTA_HAS(NTA_F_PACKETS) | NTA_HAS(NTA_F_TCP_FLAGS);
    return 1;
}

static int zeek_field_by_name(const char *s, size_t n)
{
    for (int z = 1; z < Z__COUNT; z++)
        if (strlen(zeek_names[z]) == n && memcmp(zeek_names[z], s, n) == 0)
            return z;
    return Z_NONE;
}

static int zeek_json(nta_reader *r, text_rd *t, const char *s, size_t n, nta_record *out)
{
    jsmntok_t tok[ZEEK_MAX_TOKENS];
    jsmn_parser jp;
    jsmn_init(&jp);
    int ntok = jsmn_parse(&jp, s, n, tok, ZEEK_MAX_TOKENS);
    if (ntok < 1 || tok[0].type != JSMN_OBJECT || tok[0].start != 0 || (size_t)tok[0].end != n)
        return line_fail(r, t, "not a JSON object (cut short, or not Zeek JSON)");
    span v[Z__COUNT] = {{0}};
    int i = 1;
    for (int k = 0; k < tok[0].size; k++) {
        if (i + 1 >= ntok || tok[i].type != JSMN_STRING)
            return line_fail(r, t, "bad JSON object");
        int z = zeek_field_by_name(s + tok[i].start, (size_t)(tok[i].end - tok[i].start));
        const jsmntok_t *val = &tok[i + 1];
        if (z != Z_NONE) {
            if (val->type != JSMN_STRING && val->type != JSMN_PRIMITIVE)
                return line_fail(r, t, "a conn.log field that is not a scalar");
            size_t vn = (size_t)(val->end - val->start);
            int is_null = val->type == JSMN_PRIMITIVE && vn == 4 &&
                          memcmp(s + val->start, "null", 4) == 0;
            v[z] = (span){s + val->start, vn, !is_null};
        }
        if ((i = nta_json_skip_value(tok, i + 1, ntok)) < 0)
            return line_fail(r, t, "bad JSON object");
    }
    return zeek_build(r, t, v, out);
}

/* "\x09" -> the tab it names; anything else is taken literally. */
static char zeek_separator(const char *s, size_t n)
{
    if (n == 4 && s[0] == '\\' && s[1] == 'x' && isxdigit((unsigned char)s[2]) &&
        isxdigit((unsigned char)s[3])) {
        char hex[3] = {s[2], s[3], 0};
        return (char)strtol(hex, NULL, 16);
    }
    return n > 0 ? s[0] : '\t';
}

static void copy_token(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* A #directive line of a TSV log. */
static int zeek_directive(nta_reader *r, text_rd *t, const char *s, size_t n)
{
    r->st.skipped++;
    if (n > 11 && memcmp(s, "#separator ", 11) == 0) {
        t->sep = zeek_separator(s + 11, n - 11);
        return 0;
    }
    const char *sep = memchr(s, t->sep, n);
    size_t kn = sep ? (size_t)(sep - s) : n;
    const char *val = sep ? sep + 1 : s + n;
    size_t vn = (size_t)(s + n - val);
    if (kn == 12 && memcmp(s, "#unset_field", 12) == 0) {
        copy_token(t->unset, sizeof t->unset, val, vn);
    } else if (kn == 12 && memcmp(s, "#empty_field", 12) == 0) {
        copy_token(t->empty, sizeof t->empty, val, vn);
    } else if (kn == 7 && memcmp(s, "#fields", 7) == 0) {
        t->ncols = 0;
        size_t start = 0;
        for (size_t i = 0; i <= vn; i++) {
            if (i < vn && val[i] != t->sep)
                continue;
            if (t->ncols == MAX_COLS)
                return line_fail(r, t, "more #fields than a conn.log has");
            t->col[t->ncols++] = (uint8_t)zeek_field_by_name(val + start, i - start);
            start = i + 1;
        }
        t->header_done = 1;
    }
    return 0;
}

static int zeek_tsv(nta_reader *r, text_rd *t, const char *s, size_t n, nta_record *out)
{
    if (!t->header_done)
        return line_fail(r, t, "a data line before the #fields header");
    span v[Z__COUNT] = {{0}};
    int c = 0;
    size_t start = 0;
    size_t ul = strlen(t->unset), el = strlen(t->empty);
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != t->sep)
            continue;
        if (c == t->ncols)
            return line_fail(r, t, "more columns than #fields names");
        const char *f = s + start;
        size_t fn = i - start;
        int z = t->col[c++];
        if (z != Z_NONE) {
            if (fn == ul && memcmp(f, t->unset, ul) == 0)
                v[z] = (span){f, 0, 0};
            else if (fn == el && memcmp(f, t->empty, el) == 0)
                v[z] = (span){f, 0, 1};
            else
                v[z] = (span){f, fn, 1};
        }
        start = i + 1;
    }
    if (c != t->ncols)
        return line_fail(r, t, "fewer columns than #fields names");
    return zeek_build(r, t, v, out);
}

static int next_zeek(nta_reader *r, nta_record *out)
{
    text_rd *t = r->impl;
    for (;;) {
        ssize_t n = next_line(r, t);
        if (n < 0)
            return n == -1 ? 0 : -1;
        const char *s = t->line;
        if (is_blank_line(s, (size_t)n)) {
            r->st.skipped++;
            continue;
        }
        if (t->tsv < 0)
            t->tsv = s[0] != '{';
        if (!t->tsv)
            return zeek_json(r, t, s, (size_t)n, out);
        if (s[0] == '#') {
            if (zeek_directive(r, t, s, (size_t)n) < 0)
                return -1;
            continue;
        }
        return zeek_tsv(r, t, s, (size_t)n, out);
    }
}

/* ---- CICFlowMeter --------------------------------------------------------------- */

static span trim(const char *s, size_t n)
{
    while (n > 0 && isspace((unsigned char)s[0]))
        s++, n--;
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    return (span){s, n, 1};
}

static int cic_field_by_name(span h)
{
    char low[64];
    if (h.n >= sizeof low)
        return C_NONE;
    for (size_t i = 0; i < h.n; i++)
        low[i] = (char)tolower((unsigned char)h.s[i]);
    for (size_t i = 0; i < sizeof cic_names / sizeof cic_names[0]; i++)
        if (strlen(cic_names[i].name) == h.n && memcmp(cic_names[i].name, low, h.n) == 0)
            return cic_names[i].field;
    return C_NONE;
}

static int cic_header(nta_reader *r, text_rd *t, const char *s, size_t n)
{
    unsigned seen = 0;
    t->ncols = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ',')
            continue;
        if (t->ncols == MAX_COLS)
            return line_fail(r, t, "more columns than a CICFlowMeter CSV has");
        int c = cic_field_by_name(trim(s + start, i - start));
        t->col[t->ncols++] = (uint8_t)c;
        seen |= 1u << c;
        start = i + 1;
    }
    unsigned need = 1u << C_SRC | 1u << C_DST | 1u << C_TS;
    if ((seen & need) != need)
        return line_fail(r, t, "a CICFlowMeter header needs Src IP (or Source IP), Dst IP "
                               "(or Destination IP) and Timestamp columns");
    t->header_done = 1;
    return 0;
}

static int cic_row(nta_reader *r, text_rd *t, const char *s, size_t n, nta_record *out)
{
    span v[C__COUNT] = {{0}};
    int c = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ',')
            continue;
        if (c == t->ncols)
            return line_fail(r, t, "more columns than the header");
        if (t->col[c] != C_NONE)
            v[t->col[c]] = trim(s + start, i - start);
        c++;
        start = i + 1;
    }
    if (c != t->ncols)
        return line_fail(r, t, "fewer columns than the header");
    memset(out, 0, sizeof *out);
    if (parse_civil_time(v[C_TS].s, v[C_TS].n, &out->ts_ms) != 0)
        return line_fail(r, t, "bad Timestamp");
    if (nta_addr_parse(&out->src, v[C_SRC].s, v[C_SRC].n) != 0 ||
        nta_addr_parse(&out->dst, v[C_DST].s, v[C_DST].n) != 0)
        return line_fail(r, t, "bad Src IP or Dst IP");
    if (parse_port(&v[C_SPORT], &out->src_port) || parse_port(&v[C_DPORT], &out->dst_port))
        return line_fail(r, t, "bad port");
    if (v[C_PROTO].set) {
        int p = nta_proto_parse(v[C_PROTO].s, v[C_PROTO].n);
        if (p < 0)
            return line_fail(r, t, "bad Protocol");
        out->proto = (uint8_t)p;
    }
    uint64_t cnt[C__COUNT] = {0};
    for (int f = C_FWD_PKTS; f < C__COUNT; f++)
        if (v[f].set && v[f].n > 0 && parse_count(v[f].s, v[f].n, &cnt[f]) != 0)
            return line_fail(r, t, "bad packet, length or flag count");
    out->packets = cnt[C_FWD_PKTS] + cnt[C_BWD_PKTS];
    out->bytes = cnt[C_FWD_BYTES] + cnt[C_BWD_BYTES];
    static const uint8_t bits[C__COUNT] = {[C_FIN] = 0x01, [C_SYN] = 0x02, [C_RST] = 0x04,
                                           [C_PSH] = 0x08, [C_ACK] = 0x10, [C_URG] = 0x20,
                                           [C_ECE] = 0x40, [C_CWR] = 0x80};
    for (int f = C_FIN; f < C__COUNT; f++)
        if (cnt[f] > 0)
            out->tcp_flags |= bits[f];
    out->present = NTA_HAS(NTA_F_SRC_IP) | NTA_HAS(NTA_F_DST_IP) | NTA_HAS(NTA_F_SRC_PORT) |
                   NTA_HAS(NTA_F_DST_PORT) | NTA_HAS(NTA_F_PROTO) | NTA_HAS(NTA_F_BYTES) |
                   NTA_HAS(NTA_F_PACKETS) | NTA_HAS(NTA_F_TCP_FLAGS);
    return 1;
}

static int next_cic(nta_reader *r, nta_record *out)
{
    text_rd *t = r->impl;
    for (;;) {
        ssize_t n = next_line(r, t);
        if (n < 0)
            return n == -1 ? 0 : -1;
        if (is_blank_line(t->line, (size_t)n)) {
            r->st.skipped++;
            continue;
        }
        if (!t->header_done) {
            r->st.skipped++;
            if (cic_header(r, t, t->line, (size_t)n) != 0)
                return -1;
            continue;
        }
        return cic_row(r, t, t->line, (size_t)n, out);
    }
}

/* ---- goflow2 and nta JSON: the Kafka decoders, line by line ------------------------ */

static int next_json(nta_reader *r, nta_record *out)
{
    text_rd *t = r->impl;
    for (;;) {
        ssize_t n = next_line(r, t);
        if (n < 0)
            return n == -1 ? 0 : -1;
        nta_decode_status st = nta_decode(&t->dec, t->line, (size_t)n, out);
        if (st == NTA_DEC_EMPTY) {
            r->st.skipped++;
            continue;
        }
        if (st != NTA_DEC_OK) {
            char why[64];
            snprintf(why, sizeof why, "not a record (%s)", nta_decode_status_name(st));
            return line_fail(r, t, why);
        }
        if (out->ts_ms == NTA_TS_NONE)
            return line_fail(r, t, "a record without a time cannot be replayed");
        return 1;
    }
}

static void text_close(nta_reader *r)
{
    text_rd *t = r->impl;
    if (t == NULL)
        return;
    if (t->f)
        fclose(t->f);
    free(t->line);
    free(t);
}

int nta_reader_text_init(nta_reader *r, FILE *f)
{
    text_rd *t = calloc(1, sizeof *t);
    if (t == NULL) {
        fclose(f);
        return nta_reader_fail(r, "out of memory");
    }
    t->f = f;
    t->tsv = -1;
    t->sep = '\t';
    strcpy(t->unset, "-");
    strcpy(t->empty, "(empty)");
    r->impl = t;
    r->close = text_close;
    switch (r->format) {
    case NTA_READ_ZEEK:
        r->next = next_zeek;
        break;
    case NTA_READ_CIC:
        r->next = next_cic;
        break;
    default:
        nta_decoder_init(&t->dec, r->format == NTA_READ_GOFLOW2 ? NTA_FMT_GOFLOW2 : NTA_FMT_AUTO);
        r->next = next_json;
        break;
    }
    return 0;
}
