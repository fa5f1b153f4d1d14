#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void nta_buf_free(nta_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static void reserve(nta_buf *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (p == NULL) {
        fputs("nta: out of memory building an output record\n", stderr);
        abort();
    }
    b->data = p;
    b->cap = cap;
}

void nta_buf_put(nta_buf *b, const void *data, size_t len)
{
    /* An empty buffer has no storage yet: memcpy must not see its NULL. */
    if (len == 0)
        return;
    reserve(b, len);
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

void nta_buf_puts(nta_buf *b, const char *s) { nta_buf_put(b, s, strlen(s)); }

void nta_buf_putc(nta_buf *b, char c)
{
    reserve(b, 1);
    b->data[b->len++] = c;
}

void nta_buf_printf(nta_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

size_t nta_u64_digits(char *dst, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        dst[i] = tmp[n - 1 - i];
    return n;
}

void nta_buf_u64(nta_buf *b, uint64_t v)
{
    char tmp[20];
    nta_buf_put(b, tmp, nta_u64_digits(tmp, v));
}

void nta_buf_i64(nta_buf *b, int64_t v)
{
    if (v < 0) {
        nta_buf_putc(b, '-');
        nta_buf_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        nta_buf_u64(b, (uint64_t)v);
    }
}

void nta_buf_json_str(nta_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    reserve(b, len + 2);
    nta_buf_putc(b, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            nta_buf_putc(b, '\\');
            nta_buf_putc(b, (char)c);
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            nta_buf_put(b, esc, sizeof esc);
        } else {
            nta_buf_putc(b, (char)c);
        }
    }
    nta_buf_putc(b, '"');
}

void nta_buf_rfc3339(nta_buf *b, int64_t epoch_ms)
{
    int64_t secs = epoch_ms / 1000, ms = epoch_ms % 1000;
    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    nta_buf_printf(b, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                   tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)ms);
}

const char *nta_buf_cstr(nta_buf *b)
{
    reserve(b, 1);
    b->data[b->len] = '\0';
    return b->data;
}
