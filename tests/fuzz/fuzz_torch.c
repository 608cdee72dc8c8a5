/* libFuzzer target: a whole torch.save file (zip container + pickle), as
 * m2u_torch_open reads it.  Seeds: the .pth / pytorch_model.bin fixtures.
 * fuzz_torch_pickle.c reaches deeper into the pickle machine. */
#include "fuzz_torch_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_torch_open(fuzz_write(0, "x.pth", data, size));
    return 0;
}
