/* A growable byte buffer for building output messages without a malloc per
 * message: the buffer is reset and reused, so it only grows to the largest
 * message seen. */
#ifndef NTA_BUF_H
#define NTA_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct nta_buf {
    char *data;
    size_t len, cap;
} nta_buf;

void nta_buf_free(nta_buf *b);
static inline void nta_buf_reset(nta_buf *b) { b->len = 0; }

/* Appending aborts the process when memory runs out: a half-written output
 * record has no sensible recovery, and the caller could not report it either. */
void nta_buf_put(nta_buf *b, const void *data, size_t len);
void nta_buf_puts(nta_buf *b, const char *s);
void nta_buf_putc(nta_buf *b, char c);
void nta_buf_printf(nta_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void nta_buf_u64(nta_buf *b, uint64_t v);
void nta_buf_i64(nta_buf *b, int64_t v);
/* Writes v in decimal at dst (room for 20 digits, no NUL); returns the
 * number of digits. */
size_t nta_u64_digits(char *dst, uint64_t v);
/* A JSON string literal, quotes included, escaping as RFC 8259 requires. */
void nta_buf_json_str(nta_buf *b, const char *s, size_t len);
/* RFC 3339 UTC with milliseconds: 2023-11-14T22:13:20.123Z */
void nta_buf_rfc3339(nta_buf *b, int64_t epoch_ms);

/* NUL-terminates (without counting the NUL in len) and returns data. */
const char *nta_buf_cstr(nta_buf *b);

#endif
