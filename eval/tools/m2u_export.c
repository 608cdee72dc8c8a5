/* m2u-export: write a trained m2u run as a PEFT adapter, a merged Hugging Face
 * checkpoint, GGUF (base + LoRA) for llama.cpp, or M2UGen's own checkpoint. */
#include "log.h"
#include "progress.h"
#include "export.h"
#include "m2u_error.h"
#include "units.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *fp) {
    fputs(
        "usage: m2u-export KIND --base DIR --run RUN --out OUT [options]\n"
        "\n"
        "Writes a trained m2u run in the formats people deploy with.\n"
        "  --base DIR   the Hugging Face LLaMA the run trained on (config.json, *.safetensors, tokenizer.json)\n"
        "  --run RUN    a run directory (config.yaml + checkpoints/step-N/; the newest complete checkpoint),\n"
        "               one checkpoint directory (checkpoints/step-N) or its trainable.safetensors.\n"
        "               lora.alpha and model.aud_tokens come from the run's config.yaml.\n"
        "  --out OUT    a directory (peft, merged, m2ugen) or a file (gguf, gguf-lora)\n"
        "  --force      replace an existing OUT (otherwise refused)\n"
        "\n"
        "KIND:\n"
        "  peft       adapter_config.json + adapter_model.safetensors as peft 0.13.2 writes them. With added\n"
        "             [AUD] tokens the whole embed_tokens / lm_head are saved too (as peft saves resized\n"
        "             embeddings) with the tokenizer: resize the base model's embeddings to len(tokenizer)\n"
        "             before PeftModel.from_pretrained. Biases, norms, gates, prefix queries, adapters and the\n"
        "             projector do not fit a LoRA adapter: they are listed (use merged or m2ugen).\n"
        "  merged     a LlamaForCausalLM directory: LoRA merged (W + alpha/r B A), trained norms, biases and\n"
        "             token rows written in, the text-only adapter term folded into o_proj.bias, vocab grown\n"
        "             for [AUD]; sharded safetensors + index, config.json, tokenizer files.\n"
        "             --dtype auto|f32|f16|bf16 (auto: the base's), --max-shard-size BYTES[KB|MB|GB] (5GB)\n"
        "  gguf       the merged model (without its LoRA unless --merge-lora) as llama.cpp's\n"
        "             convert_hf_to_gguf.py writes it; --dtype f16 (default) | f32 | bf16 | auto.\n"
        "             Without --run: the plain base model.\n"
        "  gguf-lora  the LoRA as llama.cpp's convert_lora_to_gguf.py writes it (--dtype f32 default | f16);\n"
        "             use it with the gguf export: llama-cli -m model.gguf --lora lora.gguf\n"
        "  m2ugen     the trainables in M2UGen's parameter names, shapes and Meta RoPE layout:\n"
        "             OUT/checkpoint.pth ({\"model\": state_dict}, torch.save format) and\n"
        "             OUT/checkpoint.safetensors. Load into the official M2UGen model with\n"
        "             model.load_state_dict(torch.load(p, weights_only=True)[\"model\"], strict=False)\n"
        "             (m2u's LoRA scale alpha/r is folded into lora_*_l2: M2UGen's LoRA has scale 1).\n"
        "\n"
        "other options:\n"
        "  --lora-alpha A      LoRA alpha when the run has no config.yaml\n"
        "  --base-name NAME    base_model_name_or_path / general.name (default: the --base path)\n"
        "\n"
        "examples:\n"
        "  m2u-export peft   --base /models/Llama-2-7b-hf --run runs/stage3 --out exports/stage3-peft\n"
        "  m2u-export merged --base /models/Llama-2-7b-hf --run runs/stage3 --out exports/stage3-hf --dtype f16\n"
        "  m2u-export gguf   --base /models/Llama-2-7b-hf --run runs/stage3 --out exports/stage3.gguf\n"
        "  m2u-export gguf-lora --base /models/Llama-2-7b-hf --run runs/stage3 --out exports/stage3-lora.gguf\n"
        "  m2u-export m2ugen --base /models/Llama-2-7b-hf --run runs/stage3/checkpoints/step-00004000 \\\n"
        "             --out exports/stage3-m2ugen\n"
        "  m2u-export gguf   --base build/demo/base --out base.gguf --dtype f32\n"
        "\n"
        "Check an export with python3 tests/verify_export.py (see tests/fixtures/export/README.md).\n",
        fp);
}

static int is_valued(const char *a) {
    static const char *const k[] = {"--base", "--run", "--out", "--dtype", "--base-name", "--lora-alpha",
                                    "--max-shard-size"};
    for (size_t i = 0; i < sizeof k / sizeof *k; i++)
        if (!strcmp(a, k[i])) return 1;
    return 0;
}

/* A mistake on the command line: what was wrong, then the usage; exit status 2. */
static int bad_usage(const char *fmt, ...) M2U_PRINTF(1, 2);
static int bad_usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("m2u-export: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n\n", stderr);
    usage(stderr);
    return 2;
}

int main(int argc, char **argv) {
    m2u_log_set(m2u_log_stderr, NULL); /* the library speaks through these two */
    m2u_progress_set_stream(stderr);
    if (argc < 2) return bad_usage("no KIND given");
    for (int i = 1; i < argc; i++) /* --help anywhere: no option takes "--help" as its value */
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h") || (i == 1 && !strcmp(argv[i], "help"))) {
            usage(stdout);
            return 0;
        }
    int kind = m2u_export_kind_from_name(argv[1]);
    if (kind < 0) {
        return bad_usage("unknown kind '%s' (peft, merged, gguf, gguf-lora, m2ugen)", argv[1]);
    }
    m2u_export_options o = {0};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--force")) {
            o.force = 1;
        } else if (!strcmp(a, "--merge-lora")) {
            o.merge_lora = 1;
        } else if (!is_valued(a)) {
            return bad_usage("unknown option '%s'", a);
        } else if (!v) {
            return bad_usage("%s needs a value", a);
        } else if (!strcmp(a, "--base")) {
            o.base = v, i++;
        } else if (!strcmp(a, "--run")) {
            o.run = v, i++;
        } else if (!strcmp(a, "--out")) {
            o.out = v, i++;
        } else if (!strcmp(a, "--dtype")) {
            o.dtype = v, i++;
        } else if (!strcmp(a, "--base-name")) {
            o.base_name = v, i++;
        } else if (!strcmp(a, "--lora-alpha")) {
            char *end;
            o.lora_alpha = strtod(v, &end);
            if (*end || !(o.lora_alpha > 0)) {
                return bad_usage("--lora-alpha %s: expected a positive number", v);
            }
            i++;
        } else if (!strcmp(a, "--max-shard-size")) {
            size_t b;
            if (m2u_parse_bytes(v, &b)) {
                return bad_usage("--max-shard-size %s: expected e.g. 5GB, 200MB or a byte count", v);
            }
            o.max_shard_bytes = b;
            i++;
        } else {
            return bad_usage("unknown option '%s'", a);
        }
    }
    if (!o.base || !o.out) {
        return bad_usage("--base and --out are required");
    }
    char *report = NULL;
    if (m2u_export((m2u_export_kind)kind, &o, &report)) {
        fprintf(stderr, "m2u-export: %s\n", m2u_last_error());
        return 1;
    }
    if (report) fputs(report, stderr);
    fprintf(stderr, "m2u-export: wrote %s\n", o.out);
    free(report);
    return 0;
}
