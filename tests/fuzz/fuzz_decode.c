/* libFuzzer target: the Kafka message decoders (runtime/decode.c) in every
 * format. The whole input is one message; then each line of it is a message
 * to one long-lived decoder per format, so a CSV header line changes how the
 * lines after it decode, as it does on a topic. Each message is copied to a
 * buffer of its exact size so ASan sees any read past its end.
 *
 * Differential: every message is decoded twice, by a decoder that reads JSON
 * with the single-pass scanner and by one that sends it to jsmn
 * (json_reference); a different status, record or CSV column map aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode_exact(nta_decoder *d, nta_decoder *ref, const uint8_t *p, size_t n)
{
    char *copy = malloc(n ? n : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, p, n);
    nta_record r, rr;
    nta_decode_status st = nta_decode(d, copy, n, &r);
    nta_decode_status rst = nta_decode(ref, copy, n, &rr);
    if ((unsigned)st >= NTA_DEC__COUNT || st != rst || memcmp(&r, &rr, sizeof r) != 0 ||
        d->ncols != ref->ncols || memcmp(d->cols, ref->cols, sizeof d->cols) != 0)
        abort();
    free(copy);
}

static void decoders_init(nta_decoder *d, nta_decoder *ref, nta_format f)
{
    nta_decoder_init(d, f);
    nta_decoder_init(ref, f);
    ref->json_reference = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const nta_format formats[] = {NTA_FMT_AUTO, NTA_FMT_JSON, NTA_FMT_CSV,
                                         NTA_FMT_GOFLOW2};
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        nta_decoder d, ref;
        decoders_init(&d, &ref, formats[i]);
        decode_exact(&d, &ref, data, size);
        decoders_init(&d, &ref, formats[i]);
        size_t start = 0;
        for (size_t j = 0; j <= size; j++) {
            if (j < size && data[j] != '\n')
                continue;
            decode_exact(&d, &ref, data + start, j - start);
            start = j + 1;
        }
    }
    return 0;
}
