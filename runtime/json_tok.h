/* jsmn, configured once for every JSON reader of nta (decode.c, the Zeek
 * reader), so that all of them tokenise alike and share one jsmntok_t layout.
 *
 * JSMN_STRICT makes the tokenizer reject bare words ({"x":hello}), which
 * would otherwise pass unnoticed under the keys we skip. JSMN_PARENT_LINKS
 * makes each ',' and '}' O(1) instead of a scan back over every earlier
 * token, which is quadratic in the number of keys (goflow2 records carry
 * 40-60 of them). JSMN_STATIC keeps the header-only parser private to each
 * file that includes this. */
#ifndef NTA_JSON_TOK_H
#define NTA_JSON_TOK_H

#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

/* Index of the token after the value at tok[i] and all its descendants, or
 * -1 if the tokens run out. jsmn stores tokens in pre-order and size counts
 * direct children (an object's keys, each key's one value). */
static inline int nta_json_skip_value(const jsmntok_t *tok, int i, int ntok)
{
    int pending = 1;
    while (pending > 0) {
        if (i >= ntok)
            return -1;
        pending += tok[i].size - 1;
        i++;
    }
    return i;
}

#endif
