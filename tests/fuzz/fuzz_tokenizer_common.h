/* Texts every tokenizer.json target encodes after a successful load, and the
 * round trip through decode: a loaded tokenizer must handle any of them
 * without a memory error, whatever vocabulary, merges or templates it has. */
#ifndef M2U_FUZZ_TOKENIZER_COMMON_H
#define M2U_FUZZ_TOKENIZER_COMMON_H

#include <stddef.h>

static const char *const fuzz_texts[] = {
    "",
    " ",
    "Hello world",
    "  leading and trailing spaces  ",
    "<s>[INST] a calm piano piece [/INST]</s>",
    "[CLS] [SEP] [PAD] [UNK] [MASK] <pad> </s> <unk> [AUD0][AUD7]",
    "caf\xc3\xa9 na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x8e\xb5 \xe2\x96\x81x",
    "\xef\xbc\xa8\xef\xbd\x85\xef\xbd\x8c\xef\xbd\x8c\xef\xbd\x8f \xe2\x84\xab A\xcc\x8a \xc3\x85",
    "tabs\tand\nnewlines\r\n",
    "0123456789 3.14 e=mc^2 !!?? ... ---",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
};
#define FUZZ_N_TEXTS (sizeof fuzz_texts / sizeof fuzz_texts[0])

#endif
