/* libFuzzer target: a model config.json as the LLaMA reader
 * (m2u_llama_config_load), the T5 reader (m2u_t5_config_load), the encoders'
 * JSON loader (m2u_json_load: duplicate keys) and every other model loader's
 * config parser read it: MusicGen's composite config, EnCodec's (alone or as
 * MusicGen's audio_encoder), MERT, ViT / ViViT and BERT, the last three also
 * with the same bytes as preprocessor_config.json.  There are no weights in
 * the folder, so a config those loaders accept still ends in a refusal that
 * names the missing safetensors. */
#include "bert_encoder.h"
#include "encodec.h"
#include "encoder_layer.h"
#include "fuzz_util.h"
#include "llama_config.h"
#include "m2u_error.h"
#include "mert_encoder.h"
#include "musicgen.h"
#include "t5_encoder.h"
#include "vit_encoder.h"

/* a loader that must refuse (no weights) with a message, and leave *out NULL */
#define MUST_REFUSE(call, out)                                                                                        \
    do {                                                                                                              \
        if ((call) == 0 || (out) != NULL || !m2u_last_error()[0]) abort();                                           \
        m2u_clear_error();                                                                                            \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write(0, "config.json", data, size);
    fuzz_quiet_begin();
    m2u_llama_config lc;
    memset(&lc, 0, sizeof lc);
    if (m2u_llama_config_load(path, &lc) == 0) {
        /* what the reader accepted must be written back and read again unchanged */
        const char *out = fuzz_path(1, "config.out.json");
        m2u_llama_config again;
        memset(&again, 0, sizeof again);
        if (m2u_llama_config_save(out, &lc) != 0 || m2u_llama_config_load(out, &again) != 0) {
            dprintf(fuzz_report_fd_, "llama config accepted but its saved copy is refused: %s\n", m2u_last_error());
            abort();
        }
    } else if (!m2u_last_error()[0]) {
        abort();
    }
    m2u_clear_error();
    m2u_t5_config tc;
    if (m2u_t5_config_load(path, &tc) != 0 && !m2u_last_error()[0]) abort();
    m2u_clear_error();
    cJSON *root = NULL;
    if (m2u_json_load(path, 0, &root) == 0) cJSON_Delete(root);
    m2u_clear_error();

    const char *dir = fuzz_dir();
    m2u_musicgen_config mc;
    if (m2u_musicgen_config_load(dir, &mc) != 0 && !m2u_last_error()[0]) abort();
    m2u_clear_error();
    m2u_encodec *enc = NULL;
    MUST_REFUSE(m2u_encodec_load_ex(dir, NULL, 1, &enc), enc);
    m2u_bert *bert = NULL;
    MUST_REFUSE(m2u_bert_load(dir, &bert), bert);
    for (int with_pp = 0; with_pp < 2; with_pp++) {
        const char *pp = fuzz_path(2, "preprocessor_config.json");
        if (with_pp)
            fuzz_write(2, "preprocessor_config.json", data, size);
        else
            unlink(pp);
        m2u_mert *mert = NULL;
        MUST_REFUSE(m2u_mert_load(dir, &mert), mert);
        m2u_vit *vit = NULL;
        MUST_REFUSE(m2u_vit_load(dir, &vit), vit);
    }
    unlink(fuzz_path(2, "preprocessor_config.json"));
    fuzz_quiet_end();
    return 0;
}
