/* libFuzzer target: the Kafka message decoders (runtime/decode.c) in every
 * format. The whole input is one message; then each line of it is a message
 * to one long-lived decoder per format, so a CSV header line changes how the
 * lines after it decode, as it does on a topic. Each message is copied to a
 * buffer of its exact size so ASan sees any read past its end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode_exact(nta_decoder *d, const uint8_t *p, size_t n)
{
    char *copy = malloc(n ? n : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, p, n);
    nta_record r;
    nta_decode_status st = nta_decode(d, copy, n, &r);
    if ((unsigned)st >= NTA_DEC__COUNT)
        abort();
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const nta_format formats[] = {NTA_FMT_AUTO, NTA_FMT_JSON, NTA_FMT_CSV,
                                         NTA_FMT_GOFLOW2};
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        nta_decoder d;
        nta_decoder_init(&d, formats[i]);
        decode_exact(&d, data, size);
        nta_decoder_init(&d, formats[i]);
        size_t start = 0;
        for (size_t j = 0; j <= size; j++) {
            if (j < size && data[j] != '\n')
                continue;
            decode_exact(&d, data + start, j - start);
            start = j + 1;
        }
    }
    return 0;
}
