/* Opening a traffic file: format detection and the calls every reader shares.
 * The formats themselves are in reader_pcap.c and reader_text.c. */
#include "reader_impl.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *const format_names[NTA_READ__COUNT] = {
    [NTA_READ_AUTO] = "auto",   [NTA_READ_PCAP] = "pcap",       [NTA_READ_ZEEK] = "zeek",
    [NTA_READ_CIC] = "cic",     [NTA_READ_GOFLOW2] = "goflow2", [NTA_READ_JSON] = "json",
};

nta_reader_format nta_reader_format_by_name(const char *name)
{
    for (int f = 0; f < NTA_READ__COUNT; f++)
        if (name != NULL && strcmp(name, format_names[f]) == 0)
            return (nta_reader_format)f;
    return (nta_reader_format)-1;
}

const char *nta_reader_format_name(nta_reader_format f)
{
    return (unsigned)f < NTA_READ__COUNT ? format_names[f] : "unknown";
}

void nta_reader_opts_init(nta_reader_opts *o)
{
    memset(o, 0, sizeof *o);
    o->format = NTA_READ_AUTO;
    /* The defaults of common flow exporters (softflowd, nprobe, Cisco's
     * "ip flow-cache timeout active 1"): long flows are reported every
     * minute, quiet ones after 15 s. */
    o->active_timeout_ms = 60000;
    o->idle_timeout_ms = 15000;
    o->max_flows = 1000000;
}

int nta_reader_fail(nta_reader *r, const char *fmt, ...)
{
    int n = snprintf(r->err, sizeof r->err, "%s: ", r->name);
    if (n < 0 || (size_t)n >= sizeof r->err)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err + n, sizeof r->err - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static int has_ci(const char *s, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++) {
        size_t j = 0;
        while (j < m && tolower((unsigned char)s[i + j]) == needle[j])
            j++;
        if (j == m)
            return 1;
    }
    return 0;
}

/* The format from the first bytes of a file: pcap and pcapng by their magic
 * numbers, text by its first line. */
static nta_reader_format sniff(const unsigned char *b, size_t n)
{
    static const unsigned char magics[][4] = {
        {0xa1, 0xb2, 0xc3, 0xd4}, {0xd4, 0xc3, 0xb2, 0xa1}, /* pcap, microseconds */
        {0xa1, 0xb2, 0x3c, 0x4d}, {0x4d, 0x3c, 0xb2, 0xa1}, /* pcap, nanoseconds */
        {0x0a, 0x0d, 0x0d, 0x0a},                           /* pcapng section header */
    };
    for (size_t i = 0; i < sizeof magics / sizeof magics[0]; i++)
        if (n >= 4 && memcmp(b, magics[i], 4) == 0)
            return NTA_READ_PCAP;
    size_t i = 0;
    if (n >= 3 && memcmp(b, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    while (i < n && isspace(b[i]))
        i++;
    const char *line = (const char *)b + i;
    const char *nl = memchr(line, '\n', n - i);
    size_t len = nl ? (size_t)(nl - line) : n - i;
    if (len == 0)
        return NTA_READ_AUTO;
    if (line[0] == '#')
        return NTA_READ_ZEEK;
    if (line[0] == '{')
        return has_ci(line, len, "\"id.orig_h\"") ? NTA_READ_ZEEK : NTA_READ_JSON;
    if (has_ci(line, len, "src ip") || has_ci(line, len, "source ip"))
        return NTA_READ_CIC;
    return NTA_READ_AUTO;
}

nta_reader *nta_reader_open_stream(FILE *f, const char *name, const nta_reader_opts *o,
                                   char *err, size_t errlen)
{
    nta_reader *r = calloc(1, sizeof *r);
    if (r == NULL || (r->name = strdup(name)) == NULL) {
        free(r);
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    r->opts = *o;
    r->format = o->format;
    int rc;
    /* Timeouts up to a year keep every microsecond sum in range. */
    const int64_t year_ms = 366LL * 86400 * 1000;
    if (o->flows && (o->max_flows < 1 || o->max_flows > INT32_MAX / 2 ||
                     o->active_timeout_ms < 1 || o->active_timeout_ms > year_ms ||
                     o->idle_timeout_ms < 1 || o->idle_timeout_ms > year_ms)) {
        fclose(f);
        rc = nta_reader_fail(r, "flow options out of range: max_flows 1..%d, timeouts 1 ms "
                                "to a year",
                             INT32_MAX / 2);
        snprintf(err, errlen, "%s", r->err);
        nta_reader_close(r);
        return NULL;
    }
    switch (o->format) {
    case NTA_READ_PCAP:
        rc = nta_reader_pcap_init(r, f);
        break;
    case NTA_READ_ZEEK:
    case NTA_READ_CIC:
    case NTA_READ_GOFLOW2:
    case NTA_READ_JSON:
        rc = nta_reader_text_init(r, f);
        break;
    default:
        fclose(f);
        rc = nta_reader_fail(r, "a stream needs its format named");
        break;
    }
    if (rc != 0) {
        snprintf(err, errlen, "%s", r->err);
        nta_reader_close(r);
        return NULL;
    }
    return r;
}

nta_reader *nta_reader_open(const char *path, const nta_reader_opts *o, char *err,
                            size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    nta_reader_opts oo = *o;
    if (oo.format == NTA_READ_AUTO) {
        unsigned char head[4096];
        size_t n = fread(head, 1, sizeof head, f);
        if (ferror(f) || fseek(f, 0, SEEK_SET) != 0) {
            snprintf(err, errlen, "%s: cannot read the start of the file to tell its format "
                                  "(name it with --replay-format)", path);
            fclose(f);
            return NULL;
        }
        oo.format = sniff(head, n);
        if (oo.format == NTA_READ_AUTO) {
            snprintf(err, errlen, "%s: %s", path,
                     n == 0 ? "the file is empty"
                            : "not pcap/pcapng, a Zeek conn.log, CICFlowMeter CSV or JSON "
                              "lines (name the format with --replay-format)");
            fclose(f);
            return NULL;
        }
    }
    return nta_reader_open_stream(f, path, &oo, err, errlen);
}

int nta_reader_next(nta_reader *r, nta_record *out, char *err, size_t errlen)
{
    /* Once failed, always failed: a reader does not resume after bad input. */
    int rc = r->failed ? -1 : r->next(r, out);
    if (rc == 1) {
        r->st.records++;
    } else if (rc < 0) {
        r->failed = 1;
        snprintf(err, errlen, "%s", r->err);
    }
    return rc;
}

nta_reader_format nta_reader_get_format(const nta_reader *r) { return r->format; }

const nta_reader_stats *nta_reader_get_stats(const nta_reader *r) { return &r->st; }

void nta_reader_close(nta_reader *r)
{
    if (r == NULL)
        return;
    if (r->close)
        r->close(r);
    free(r->name);
    free(r);
}
