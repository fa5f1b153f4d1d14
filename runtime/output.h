/* The wire form of window results: one JSON object per (window, key), the
 * message key "window|key1[|key2]". Documented in README.md ("Output"). */
#ifndef NTA_OUTPUT_H
#define NTA_OUTPUT_H

#include "buf.h"
#include "window.h"

/* Appends the JSON object for r to b. */
void nta_output_result_json(nta_buf *b, const nta_result *r);

/* Appends the message key for r to b: the window name and key values joined by '|'. */
void nta_output_result_key(nta_buf *b, const nta_result *r);

#endif
