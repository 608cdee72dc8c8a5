/* m2u-eval: evaluation metrics and reports.
 *
 *   captions  BLEU-1..4, METEOR, ROUGE-L, CIDEr-D as pycocoevalcap
 *   fd        Fréchet distance between two embedding sets (.npy)
 *   music     score a folder of generated clips against a split (FAD, analysis agreement)
 *   run       answer a split's samples with a trained run, score them, write reports
 *   report    training curves of a run (no generation)
 *   compare   several evaluations (and published tables) side by side
 *
 * See usage(). */
#include "log.h"
#include "caption_metrics.h"
#include "clap_score.h"
#include "compare.h"
#include "audio_embed.h"
#include "bertscore.h"
#include "distribution_metrics.h"
#include "eval_report.h"
#include "eval_run.h"
#include "fad_vggish.h"
#include "fileio.h"
#include "m2u_error.h"
#include "music_report.h"
#include "npy.h"
#include "passt_kl.h"
#include "perf_suite.h"
#include "progress.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One entry per command: its synopsis and description (as in the full --help)
 * and its examples.  `m2u-eval --help` prints them all; `m2u-eval CMD --help`
 * and every mistake on CMD's command line print CMD's own. */
typedef struct {
    const char *name, *text, *examples;
} command_help;

static const command_help k_commands[] = {
    {"captions",
      "  captions --candidates C.jsonl --references R.jsonl [--out REPORT.json] [--quiet]\n"
      "      Caption metrics exactly as pycocoevalcap 1.2 computes them: PTB tokenisation\n"
      "      (CoreNLP 3.4.1 rules, lower-cased, punctuation dropped), BLEU-1..4 (corpus-level,\n"
      "      closest reference length), ROUGE-L (beta 1.2), CIDEr-D (sigma 6, idf from the\n"
      "      references of this set), METEOR 1.5 (meteor-1.5.jar -l en -norm: modules exact,\n"
      "      stem, synonym, paraphrase; equal to pycocoevalcap's within 1e-6).\n"
      "      --meteor-wordnet DIR: WordNet 3.0 dict folder with index.sense and *.exc\n"
      "      (default /usr/share/wordnet: Debian wordnet-base + wordnet-sense-index).\n"
      "      --meteor-paraphrase FILE: METEOR's paraphrase-en.gz (default\n"
      "      /usr/local/share/m2u/meteor/paraphrase-en.gz, put there by launch/install-deps.sh).\n"
      "      A default that is missing turns its module off (the report names the modules\n"
      "      that ran and why); a path given that cannot be read is an error.\n"
      "      C.jsonl: one {\"id\": ..., \"caption\": \"...\"} per line.\n"
      "      R.jsonl: one {\"id\": ..., \"references\": [\"...\", ...]} per line.\n"
      "      Every candidate id needs references and every reference id a candidate.\n"
      "      The report (written atomically) holds corpus and per-item scores and the\n"
      "      tokenised texts.\n"
      "      --bert DIR [--bert-layers N] [--bert-idf] [--bert-baseline FILE]: also BERTScore\n"
      "      P/R/F1 as bert_score 0.3.13 computes it (score(model_type=DIR); several references:\n"
      "      the max over them) with a checkpoint directory: BERT (config.json, weights,\n"
      "      WordPiece tokenizer.json) or RoBERTa (config.json, weights, vocab.json + merges.txt:\n"
      "      the slow RobertaTokenizer bert_score loads, add_prefix_space, max 512 tokens).\n"
      "      bert_score's lang=\"en\" is roberta-large at layer 17 (M2UGen reports its mean R,\n"
      "      no idf, no rescaling).  N: the layer used; default bert_score's: 17 for\n"
      "      roberta-large, 10 for roberta-base, 9 for bert-base, else the last.\n"
      "      FILE: rescale_with_baseline, x -> (x - b) / (1 - b) with b the row N of a\n"
      "      bert_score baseline table (CSV LAYER,P,R,F); for roberta-large it is\n"
      "      bert_score/rescale_baseline/en/roberta-large.tsv inside the installed bert_score\n"
      "      package (python3 -c \"import bert_score, os; print(os.path.dirname(bert_score.__file__))\").\n"
      "      The report names the model, layer, idf, baseline and the weights' SHA-256.\n",
      "  m2u-eval captions --candidates out/captions.jsonl --references data/musiccaps_refs.jsonl \\\n"
      "      --out out/caption_scores.json\n"
      "  m2u-eval captions --candidates tests/fixtures/eval/candidates.jsonl \\\n"
      "      --references tests/fixtures/eval/references.jsonl\n"
      "  m2u-eval captions --candidates out/captions.jsonl --references data/musiccaps_refs.jsonl \\\n"
      "      --bert models/roberta-large --bert-baseline SITE/bert_score/rescale_baseline/en/roberta-large.tsv\n"
      "  m2u-eval captions --candidates C.jsonl --references R.jsonl \\\n"
      "      --meteor-wordnet tests/fixtures/eval/meteor_data \\\n"
      "      --meteor-paraphrase tests/fixtures/eval/meteor_data/paraphrase-en.gz\n"},
    {"fad",
      "  fad --ref SPEC --gen SPEC [--mert DIR [--layer K]] [--clip 10] [--max-clips N]\n"
      "      [--dump-ref A.npy --dump-gen B.npy] [--out REPORT.json]\n"
      "      Fréchet distance between two audio sets (folders, globs or JSON-lines manifests):\n"
      "      one row per clip, embedded with MERT (the mean over time of hidden state K, the\n"
      "      last by default) or, without --mert, m2u's built-in spectral embedding (the mean\n"
      "      of the 25 standardised log-spectra of data/build/builtin_features.h; compare sets with\n"
      "      each other under the same settings, it is not VGGish).  Undecodable files are\n"
      "      skipped and counted.\n"
      "  fad --embed vggish --vggish CKPT --ref DIR --gen DIR [--dump-ref A.npy --dump-gen B.npy] [--out R.json]\n"
      "      FAD exactly as fad_pytorch 0.0.6 (`fad_embed vggish REF GEN` + `fad_score`, as M2UGen\n"
      "      reports it): every .wav .flac .ogg .aiff .aif .mp3 under DIR (recursive); torchaudio's\n"
      "      sinc resampler to 16 kHz; the first 2^18 samples (16.384 s; shorter files zero-padded;\n"
      "      LONGER FILES ARE CROPPED AT THE START, where fad_embed takes an unseeded random crop);\n"
      "      first two channels clamped and averaged; 10 chunks of 26,214 samples, one torchvggish\n"
      "      example each (no PCA, no final ReLU): 10 rows per file; Frechet distance in float32\n"
      "      with 20 Newton-Schulz iterations (not the exact distance `fd` gives).  Undecodable\n"
      "      files are skipped and silent crops kept (the reference substitutes random files);\n"
      "      both are counted.  CKPT: the torchvggish state dict as a torch zip .pth or .safetensors\n"
      "      (vggish-10086976.pth from 2019 may be in torch's legacy format: re-save it with\n"
      "      python3 -c \"import torch; torch.save(torch.load('vggish-10086976.pth'), 'vggish.pth')\").\n"
      "      Prints the distance and fad_score's line \"FAD score =  X\" (X: the float32, shortest digits).\n",
      "  m2u-eval fad --ref data/musiccaps_wav --gen out/generated --mert ckpt/MERT-v1-95M --out fad.json\n"
      "  m2u-eval fad --embed vggish --vggish ckpt/vggish.pth --ref data/musiccaps_wav --gen out/generated --out fad.json\n"},
    {"bench",
      "  bench [--only train,mert,dataset,train7b] [--quick] [--out DIR] [--build DIR] [--python PY]\n"
      "      The toolkit's throughput, each against a reference in the same run: LoRA training\n"
      "      step vs PyTorch (eval/bench/bench_llama.sh: tiny, 15M, 110M in fp32, and 110M on m2u's bf16\n"
      "      path vs PyTorch's CPU bf16 autocast, about 6 minutes on a CPU without bf16 arithmetic;\n"
      "      --quick: tiny and 15M), MERT vs PyTorch with GFLOP/s against the sgemm peak\n"
      "      (eval/bench/bench_mert.sh), decoding\n"
      "      vs the ffmpeg CLI, analysis and build rates, shard reading vs h5py (eval/bench/bench_dataset.sh),\n"
      "      and the LoRA step on LLaMA-2-7B shapes with bf16 weights at sequence 128 and 512 against the\n"
      "      sgemm peak of the same run, with peak memory (eval/bench/bench_llama7b.sh: about 10 minutes, 18 GB\n"
      "      of memory and, the first time, 14 GB of disk for its checkpoint; --quick leaves it out unless\n"
      "      --only names it, and runs sequence 128 only).\n"
      "      Writes DIR/bench.md and DIR/bench.json (default build/bench); a part whose reference\n"
      "      is missing (no torch, no h5py) or that cannot run (too little memory) is reported as not\n"
      "      measured, with the reason.\n",
      "  m2u-eval bench --quick --only dataset\n"
      "  m2u-eval bench --only train7b --out /tmp/bench7b\n"},
    {"kl",
      "  kl --a REF.npy --b GEN.npy [--logits]\n"
      "      Mean KL(ref || gen) over paired rows of class probabilities (or logits, softmaxed),\n"
      "      eps 1e-6, as audiocraft / M2UGen compute it from a classifier's outputs (PaSST, PANNs).\n"
      "  kl --passt CKPT --ref DIR --gen DIR [--passt-heads 12] [--out REPORT.json]\n"
      "      M2UGen's KL, natively: each file loaded as librosa.load(sr=32000) (libsoxr HQ), first\n"
      "      10 s, PaSST logits (CKPT: hear21passt's passt-s-f128-p16-s10-ap.476-swa.pt or the\n"
      "      same names in safetensors; --passt-heads: attention heads, not stored in the weights),\n"
      "      softmax, mean over pairs of sum p_ref (log p_ref - log(p_gen + 1e-6)).  Files pair by\n"
      "      name without extension (gen may be .mp3); unpaired files are listed, not scored.\n"
      "      Prints the score and its provenance (checkpoint sha256, settings); --out writes the\n"
      "      JSON report (per-pair KL, unpaired files, provenance).\n",
      "  m2u-eval kl --a ref_passt_probs.npy --b gen_passt_probs.npy\n"
      "  m2u-eval kl --a ref_passt_logits.npy --b gen_passt_logits.npy --logits\n"
      "  m2u-eval kl --passt ckpt/passt-s-f128-p16-s10-ap.476-swa.pt --ref data/musiccaps_wav \\\n"
      "      --gen out/generated --out kl.json\n"},
    {"cosine",
      "  cosine --a TEXT.npy --b AUDIO.npy\n"
      "      Mean cosine of paired rows: the CLAP text-audio score, given CLAP embeddings.\n"
      "      (m2u-eval kl --passt and m2u-eval clap compute these from audio themselves;\n"
      "      cosine takes ready embeddings.)\n",
      "  m2u-eval cosine --a clap_text.npy --b clap_audio.npy\n"},
    {"clap",
      "  clap --clap DIR --audio DIR --captions PAIRS [--out REPORT.json]\n"
      "      The CLAP score as transformers' ClapModel gives it (laion/clap-htsat-unfused = LAION-CLAP\n"
      "      630k-audioset-best, in its Hugging Face layout: config.json, model.safetensors,\n"
      "      preprocessor_config.json, tokenizer.json or vocab.json + merges.txt): per pair the cosine of\n"
      "      the audio and caption embeddings, and their mean.  PAIRS: JSON lines {\"audio\": FILE,\n"
      "      \"caption\": TEXT}, or FILE<TAB>CAPTION lines in a .tsv; FILE relative to --audio.  Audio\n"
      "      is decoded with FFmpeg and resampled to 48 kHz; clips over 10 s are scored on their first\n"
      "      10 s (the reference crops at random), shorter ones repeated and zero-padded to 10 s.\n"
      "      Prints each pair's cosine and the mean; the report adds the weights' sha256 and the\n"
      "      settings.  A clip that does not decode is named, left out of the mean, and the exit\n"
      "      status is 1.\n",
      "  m2u-eval clap --clap ckpt/clap-htsat-unfused --audio out/generated --captions out/pairs.jsonl \\\n"
      "      --out out/clap.json\n"},
    {"fd",
      "  fd --a A.npy --b B.npy [--out REPORT.json]\n"
      "      Fréchet distance between the row sets of two [N, D] float32/float64 .npy\n"
      "      files (FAD when rows are audio embeddings): mean, unbiased covariance,\n"
      "      tr sqrt via symmetric eigendecompositions.\n",
      "  python3 -c \"import numpy; numpy.save('a.npy', numpy.random.randn(500, 128))\"\n"
      "  m2u-eval fd --a ref_vggish.npy --b gen_vggish.npy --out fad.json\n"},
    {"music",
      "  music --gen DIR --data manifest.json [--split test] [--kinds mucaps,muedit,muimage,muvideo]\n"
      "      [--mert DIR [--layer K] | --vggish CKPT] [--passt CKPT] [--clap DIR] [--scored-dir DIR]\n"
      "      [--clip 10] [--max-samples N] [--embed-mb 16] [--out DIR]\n"
      "      Score generated music against the split's samples of the generation kinds (mucaps:\n"
      "      caption -> music, muedit, muimage, muvideo).  The clip of sample ID is\n"
      "      DIR/predictions.jsonl's {\"id\": ID, \"audio\": PATH[, \"text\": ANSWER]} when that file\n"
      "      exists (PATH relative to DIR), else DIR/ID.wav with every character of ID other than\n"
      "      A-Z a-z 0-9 . _ - written as _.  A missing clip is reported, not fatal.\n"
      "        FAD        the generated clips vs the samples' reference music (target audio, or\n"
      "                   the audio of mucaps), embedded as `fad` does at the shards' rate; with\n"
      "                   --vggish CKPT the paper's FAD instead, as `fad --embed vggish` on files:\n"
      "                   the references are written as 16-bit WAVs at the shards' rate to\n"
      "                   SCORED/ref/<file id>.wav and the clips copied to SCORED/gen/ (SCORED:\n"
      "                   --scored-dir, else a temporary folder removed afterwards)\n"
      "        KL         with --passt CKPT: M2UGen's KL as `kl --passt` on SCORED/ref vs SCORED/gen\n"
      "                   (pairs by file id); without it not measured (with the reason)\n"
      "        CLAP       with --clap DIR (a ClapModel directory, as `clap` takes): the mean over the\n"
      "                   generated mucaps clips of the cosine with their caption, as `clap` computes\n"
      "                   it; without it, or with no mucaps clip, not measured (with the reason)\n"
      "        agreement  m2u's music analysis of each clip (tempo, key, mode, loudness, mood,\n"
      "                   brightness, percussion) vs what the sample asked (its attribute columns;\n"
      "                   muedit: the target_* columns, and separately the attribute the edit\n"
      "                   changed): rates and confusion matrices overall, per kind, \"edited\"\n"
      "      Writes DIR/music.json, music.md and a self-contained music.html (each clip playable,\n"
      "      its spectrogram, prompt, asked vs measured; WAVs beyond --embed-mb MiB are linked)\n"
      "      into --out (default GEN_DIR/report).\n",
      "  m2u-eval music --gen out/generated --data data/m2u/manifest.json --split test --out out/music-report\n"
      "  m2u-eval music --gen out/generated --data data/m2u/manifest.json --vggish ckpt/vggish.pth \\\n"
      "      --passt ckpt/passt-s-f128-p16-s10-ap.476-swa.pt --clap ckpt/clap-htsat-unfused --out out/music-report\n"},
    {"run",
      "  run --run RUN_DIR [--config RUN_DIR/config.yaml] [--data manifest.json] [--split test|valid]\n"
      "      [--kinds mucaps,musicqa] [--max-samples N] [--max-new-tokens 48] [--stage S] [--threads T]\n"
      "      [--batch 8] [--no-verify] [--out DIR]\n"
      "      [--musicgen MUSICGEN_DIR [--music-out DIR] [--seconds 10] [--guidance G] [--seed 0]\n"
      "                               [--vggish CKPT] [--passt CKPT] [--clap DIR]]\n"
      "      Load the run's resolved config and its newest complete checkpoint as m2u-train does,\n"
      "      answer the split's samples of those kinds greedily (KV cache, stop at EOS, --batch\n"
      "      sequences decoded together; the samples'\n"
      "      mert/vit/vivit features go through the adapters), and write to DIR (default\n"
      "      RUN_DIR/eval-SPLIT):\n"
      "        predictions.jsonl  id, kind, prompt, prediction, reference, per-item scores, stated\n"
      "                           and measured attribute words\n"
      "        report.json        caption metrics (overall and per kind; references: the caption for\n"
      "                           mucaps, the answer for musicqa), attribute agreement (tempo, key,\n"
      "                           mode, loudness, mood words vs the measured attrs) with confusion\n"
      "                           matrices, training summary\n"
      "        report.md, report.html  the same for people; the HTML is one self-contained page\n"
      "                           with SVG training curves and confusion heatmaps\n"
      "      The prompt is what m2u-train asks at --stage (default: the run's train.stage):\n"
      "      stage 3 asks mucaps \"Describe this music.\" and musicqa its question. The first\n"
      "      --max-samples selected samples in dataset order are used (default all).\n"
      "      Paths inside config.yaml are as m2u-train resolved them (relative ones are relative to\n"
      "      the directory it ran in): run m2u-eval from there, or give --data / --config.\n"
      "      Attribute words are read back with the rules documented in eval/attr_agreement.h\n"
      "      (the vocabulary of data/describe.h; first mention wins; key letters upper-case).\n"
      "      Generation benchmarks (--musicgen MUSICGEN_DIR, a MusicGen directory in the Hugging Face\n"
      "      layout; the run needs model.decoder and [AUD] tokens): every selected sample of the\n"
      "      generation kinds (mucaps: caption -> music, muedit, muimage, muvideo) is answered\n"
      "      again from its own features up to [AUD0]; when the answer has the [AUD] block, its\n"
      "      hidden states go through the output projector (/ target_scale) into MusicGen and\n"
      "      EnCodec, as m2u-generate --run does:\n"
      "        music/<id>.wav         --seconds of 16-bit PCM (ids with characters other than\n"
      "                               A-Z a-z 0-9 . _ - get '_' there), in --music-out DIR\n"
      "                               (default OUT/music)\n"
      "        music/predictions.jsonl  {\"id\", \"audio\", \"text\": the answer} per clip\n"
      "      then the clips are scored as m2u-eval music scores a folder (FAD vs the samples'\n"
      "      reference music, analysis agreement with what each sample asked; with --vggish,\n"
      "      --passt, --clap the paper's VGGish FAD, PaSST KL and CLAP score, as `music` takes\n"
      "      them) and report.json\n"
      "      gets \"music\", report.md / report.html a \"Generated music\" section (clips playable).\n"
      "      A sample whose answer has no [AUD] block is reported as not generated.  Sampling as\n"
      "      MusicGen's defaults (top-k 250); clip k is drawn with --seed + k; --guidance is the\n"
      "      CFG scale (default: the MusicGen's generation_config.json, 3; 1 = none).  mucaps asks\n"
      "      for music at --stage 2 (at stage 3 it asks for a caption).\n"
      "      Progress with rate and ETA goes to stderr.  Each shard's hash is checked against the\n"
      "      dataset manifest when it is first read (a damaged shard is an error naming it);\n"
      "      --no-verify skips the check.\n",
      "  m2u-eval run --run runs/tiny_stage3 --split valid --max-samples 20 --out runs/tiny_stage3/eval\n"
      "  m2u-eval run --run runs/stage3 --kinds muimage,muvideo,muedit --musicgen ckpt/musicgen-small --seconds 10\n"},
    {"report",
      "  report --run RUN_DIR [--out DIR]\n"
      "      Training curves only (loss, held-out loss, lr, throughput from metrics.jsonl):\n"
      "      report.json, report.md, report.html in DIR (default RUN_DIR/report).\n",
      "  m2u-eval report --run runs/tiny_stage3 --out runs/tiny_stage3/report\n"},
    {"compare",
      "  compare --out DIR [--name TITLE]... SOURCE...\n"
      "      Several evaluations side by side: DIR/compare.json, compare.md and a self-contained\n"
      "      compare.html.  A SOURCE is any JSON m2u-eval wrote (a run's report.json or its\n"
      "      directory, music.json, the --out of fad / kl / clap / captions), or a published\n"
      "      table typed in as {\"format\": \"m2u-published-table\", \"name\": \"...\", \"source\": \"...\",\n"
      "      \"metrics\": {\"music.fad.value\": 1.41, ...}, \"notes\": {\"music.fad.value\": \"...\"}}.\n"
      "      Rows are the dotted paths of the sources' numbers (per-item lists and confusion\n"
      "      matrices left out), so a published table names a number as m2u's JSON does.  Each\n"
      "      source's provenance strings (conventions, embedder, checkpoint hash, settings) are\n"
      "      printed under the table, and a number made differently from the first source's\n"
      "      is flagged.  --name gives the column titles in order (default: the table's name or\n"
      "      the file).\n",
      "  m2u-eval compare --out cmp runs/a/eval-test runs/b/eval-test configs/published/m2ugen_table.json\n"
      "  m2u-eval compare --out cmp --name 'lr 1e-4' --name 'lr 3e-4' runs/a/eval-test runs/b/eval-test\n"},
};
#define N_COMMANDS (int)(sizeof k_commands / sizeof *k_commands)

static const command_help *find_command(const char *name) {
    for (int i = 0; name && i < N_COMMANDS; i++)
        if (!strcmp(k_commands[i].name, name)) return &k_commands[i];
    return NULL;
}

static void usage(FILE *f) {
    fputs("usage: m2u-eval COMMAND [options]   (m2u-eval COMMAND --help: that command only)\n\ncommands:\n", f);
    for (int i = 0; i < N_COMMANDS; i++) fputs(k_commands[i].text, f);
    fputs("\nexamples:\n", f);
    for (int i = 0; i < N_COMMANDS; i++) fputs(k_commands[i].examples, f);
}

static void command_usage(FILE *f, const char *name) {
    const command_help *c = find_command(name);
    if (!c) {
        usage(f);
        return;
    }
    fprintf(f, "usage: m2u-eval %s", c->text + 2); /* the synopsis line without its indent */
    if (c->examples[0]) fprintf(f, "\nexamples:\n%s", c->examples);
}

static int is_one_of(const char *s, const char *const *list) {
    for (; *list; list++)
        if (!strcmp(s, *list)) return 1;
    return 0;
}

/* A mistake on the command line: what was wrong, then the command's usage; exit status 2. */
static int bad_usage(const char *cmd, const char *fmt, ...) M2U_PRINTF(2, 3);
static int bad_usage(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "m2u-eval%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n\n", stderr);
    command_usage(stderr, cmd);
    return 2;
}

typedef struct {
    char *id;
    char *caption;
    char **refs;
    int n_refs;
    int line;
} item;

static char *id_string(const cJSON *v) {
    char buf[64];
    if (cJSON_IsString(v)) return strdup(v->valuestring);
    if (cJSON_IsNumber(v)) {
        if (v->valuedouble == (double)(long long)v->valuedouble)
            snprintf(buf, sizeof buf, "%lld", (long long)v->valuedouble);
        else
            snprintf(buf, sizeof buf, "%.17g", v->valuedouble);
        return strdup(buf);
    }
    return NULL;
}

static void items_free(item *it, int n) {
    for (int i = 0; i < n; i++) {
        free(it[i].id);
        free(it[i].caption);
        for (int r = 0; r < it[i].n_refs; r++) free(it[i].refs[r]);
        free(it[i].refs);
    }
    free(it);
}

/* Read a JSON-lines file; refs = 0: {"id","caption"}, refs = 1: {"id","references"}. */
static int read_jsonl(const char *path, int refs, item **out, int *n_out) {
    char *data;
    size_t len;
    *out = NULL;
    *n_out = 0;
    if (m2u_read_file(path, &data, &len)) return m2u_fail_prefix("%s: ", path);
    item *it = NULL;
    int n = 0, cap = 0, lineno = 0, rc = -1;
    char *p = data;
    while (p < data + len) {
        char *e = memchr(p, '\n', (size_t)(data + len - p));
        if (!e) e = data + len;
        *e = 0;
        lineno++;
        char *s = p;
        p = e + 1;
        while (*s == ' ' || *s == '\t' || *s == '\r') s++;
        if (!*s) continue;
        cJSON *o = cJSON_Parse(s);
        if (!o || !cJSON_IsObject(o)) {
            cJSON_Delete(o);
            m2u_fail("%s:%d: not a JSON object", path, lineno);
            goto done;
        }
        char *id = id_string(cJSON_GetObjectItemCaseSensitive(o, "id"));
        if (!id) {
            cJSON_Delete(o);
            m2u_fail("%s:%d: \"id\" missing or not a string/number", path, lineno);
            goto done;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            item *ni = realloc(it, (size_t)cap * sizeof *ni);
            if (!ni) { free(id); cJSON_Delete(o); m2u_fail("out of memory"); goto done; }
            it = ni;
        }
        item *x = &it[n];
        memset(x, 0, sizeof *x);
        x->id = id;
        x->line = lineno;
        n++;
        if (!refs) {
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "caption");
            if (!cJSON_IsString(c)) {
                cJSON_Delete(o);
                m2u_fail("%s:%d: \"caption\" missing or not a string", path, lineno);
                goto done;
            }
            x->caption = strdup(c->valuestring);
        } else {
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "references");
            int k = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0;
            if (k < 1) {
                cJSON_Delete(o);
                m2u_fail("%s:%d: \"references\" missing or not a non-empty array", path, lineno);
                goto done;
            }
            x->refs = calloc((size_t)k, sizeof *x->refs);
            if (!x->refs) { cJSON_Delete(o); m2u_fail("out of memory"); goto done; }
            for (int r = 0; r < k; r++) {
                const cJSON *rs = cJSON_GetArrayItem(a, r);
                if (!cJSON_IsString(rs)) {
                    cJSON_Delete(o);
                    m2u_fail("%s:%d: references[%d] is not a string", path, lineno, r);
                    goto done;
                }
                x->refs[r] = strdup(rs->valuestring);
                x->n_refs++;
            }
        }
        cJSON_Delete(o);
        for (int i = 0; i < n - 1; i++)
            if (strcmp(it[i].id, x->id) == 0) {
                m2u_fail("%s:%d: duplicate id \"%s\" (first on line %d)", path, lineno, x->id, it[i].line);
                goto done;
            }
    }
    if (n == 0) { m2u_fail("%s: no records", path); goto done; }
    rc = 0;
done:
    free(data);
    if (rc) {
        items_free(it, n);
        return -1;
    }
    *out = it;
    *n_out = n;
    return 0;
}

/* captions --bert: BERTScore options (NULL dir: off). */
static const char *g_bert_dir, *g_bert_baseline;
/* run --musicgen: the paper's scorers for the generated clips (music_gen.h) */
static const char *g_vggish, *g_passt, *g_clap;
static int g_bert_layers = -1, g_bert_idf;
static m2u_bertscore_info g_bert_info; /* the model's description, for the report */

/* captions: METEOR's data options */
static const char *g_meteor_wordnet, *g_meteor_paraphrase; /* --meteor-wordnet / --meteor-paraphrase */

/* BERTScore of the matched items into p/r/f (nc each); *layers gets the layer used. */
static int bert_scores(int nc, const char **ctext, const char *const **rtext, const int *nref, double *p, double *r,
                       double *f, int *layers) {
    m2u_bertscorer *bs;
    if (m2u_bertscore_load(g_bert_dir, &bs)) return -1;
    if (m2u_bertscore_describe(bs, &g_bert_info)) {
        m2u_bertscore_free(bs);
        return -1;
    }
    m2u_bertscore_opts o = {.num_layers = g_bert_layers >= 0 ? g_bert_layers : g_bert_info.default_layer,
                            .idf = g_bert_idf, .baseline_path = g_bert_baseline};
    size_t *nr = malloc((size_t)nc * sizeof *nr);
    int rc = nr ? 0 : m2u_fail("out of memory");
    for (int i = 0; nr && i < nc; i++) nr[i] = (size_t)nref[i];
    if (!rc) rc = m2u_bertscore(bs, &o, ctext, (const char *const *const *)rtext, nr, (size_t)nc, p, r, f);
    *layers = o.num_layers;
    free(nr);
    m2u_bertscore_free(bs);
    return rc;
}

static int cmd_captions(const char *cpath, const char *rpath, const char *out, int quiet) {
    item *cands = NULL, *refs = NULL;
    int nc = 0, nr = 0, rc = 1;
    const char **ctext = NULL;
    const char *const **rtext = NULL;
    int *nref = NULL;
    m2u_caption_scores *per = NULL;
    char **ctok = NULL, **rtok = NULL;
    size_t total = 0;
    cJSON *rep = NULL;
    double *bp = NULL; /* BERTScore P, R, F1 (--bert) */
    if (read_jsonl(cpath, 0, &cands, &nc) || read_jsonl(rpath, 1, &refs, &nr)) {
        fprintf(stderr, "m2u-eval: %s\n", m2u_last_error());
        goto done;
    }
    ctext = malloc((size_t)nc * sizeof *ctext);
    rtext = malloc((size_t)nc * sizeof *rtext);
    nref = malloc((size_t)nc * sizeof *nref);
    per = malloc((size_t)nc * sizeof *per);
    if (!ctext || !rtext || !nref || !per) { fprintf(stderr, "m2u-eval: out of memory\n"); goto done; }
    /* match ids (both ways), naming the missing ones */
    int missing = 0;
    for (int i = 0; i < nc; i++) {
        int found = -1;
        for (int j = 0; j < nr && found < 0; j++)
            if (strcmp(cands[i].id, refs[j].id) == 0) found = j;
        if (found < 0) {
            if (missing < 10) fprintf(stderr, "m2u-eval: %s:%d: id \"%s\" has no references in %s\n", cpath,
                                      cands[i].line, cands[i].id, rpath);
            missing++;
            continue;
        }
        ctext[i] = cands[i].caption;
        rtext[i] = (const char *const *)refs[found].refs;
        nref[i] = refs[found].n_refs;
        total += (size_t)nref[i];
    }
    for (int j = 0; j < nr; j++) {
        int found = 0;
        for (int i = 0; i < nc && !found; i++) found = strcmp(cands[i].id, refs[j].id) == 0;
        if (!found) {
            if (missing < 10) fprintf(stderr, "m2u-eval: %s:%d: id \"%s\" has no candidate in %s\n", rpath,
                                      refs[j].line, refs[j].id, cpath);
            missing++;
        }
    }
    if (missing) {
        fprintf(stderr, "m2u-eval: %d id(s) unmatched between %s and %s%s\n", missing, cpath, rpath,
                missing > 10 ? " (first 10 named)" : "");
        goto done;
    }
    m2u_caption_scores corpus;
    char why[1024] = "";
    const char *met_mods = NULL;
    const char *wn = NULL, *para = NULL;
    m2u_meteor_data_paths(g_meteor_wordnet, g_meteor_paraphrase, &wn, &para, why, sizeof why);
    if (why[0] && !quiet) fprintf(stderr, "m2u-eval: METEOR: %s; running without that module\n", why);
    if (m2u_caption_evaluate_meteor((size_t)nc, ctext, rtext, nref, wn, para, &corpus, per, &met_mods)) {
        fprintf(stderr, "m2u-eval: %s\n", m2u_last_error());
        goto done;
    }
    double bsum[3] = {0, 0, 0};
    int blayers = 0;
    if (g_bert_dir) {
        bp = malloc(3 * (size_t)nc * sizeof *bp);
        if (!bp || bert_scores(nc, ctext, rtext, nref, bp, bp + nc, bp + 2 * nc, &blayers)) {
            fprintf(stderr, "m2u-eval: BERTScore: %s\n", bp ? m2u_last_error() : "out of memory");
            goto done;
        }
        for (int i = 0; i < nc; i++)
            for (int m = 0; m < 3; m++) bsum[m] += bp[m * nc + i] / nc;
    }
    if (!quiet)
        printf("items %d  BLEU-1 %.4f  BLEU-2 %.4f  BLEU-3 %.4f  BLEU-4 %.4f  METEOR(%s) %.4f  ROUGE-L %.4f  "
               "CIDEr-D %.4f\n",
               nc, corpus.bleu[0], corpus.bleu[1], corpus.bleu[2], corpus.bleu[3], met_mods, corpus.meteor, corpus.rouge_l,
               corpus.cider_d);
    if (!quiet && bp)
        printf("BERTScore (%s, layer %d%s%s)  P %.4f  R %.4f  F1 %.4f\n", g_bert_info.roberta ? "RoBERTa" : "BERT",
               blayers, g_bert_idf ? ", idf" : "", g_bert_baseline ? ", rescaled" : "", bsum[0], bsum[1], bsum[2]);
    if (out) {
        /* tokenised texts for the report */
        const char **flat = malloc((total ? total : 1) * sizeof *flat);
        if (!flat) { fprintf(stderr, "m2u-eval: out of memory\n"); goto done; }
        size_t k = 0;
        for (int i = 0; i < nc; i++)
            for (int r = 0; r < nref[i]; r++) flat[k++] = rtext[i][r];
        int trc = m2u_ptb_tokenize(ctext, (size_t)nc, &ctok, NULL) || m2u_ptb_tokenize(flat, total, &rtok, NULL);
        free(flat);
        if (trc) { fprintf(stderr, "m2u-eval: %s\n", m2u_last_error()); goto done; }
        rep = cJSON_CreateObject();
        cJSON_AddStringToObject(rep, "command", "captions");
        cJSON_AddStringToObject(rep, "candidates", cpath);
        cJSON_AddStringToObject(rep, "references", rpath);
        cJSON_AddNumberToObject(rep, "n", nc);
        cJSON *conv = cJSON_AddObjectToObject(rep, "conventions");
        cJSON_AddStringToObject(conv, "tokenizer", "pycocoevalcap PTBTokenizer (CoreNLP 3.4.1 -preserveLines -lowerCase, punctuation removed)");
        cJSON_AddStringToObject(conv, "bleu", "pycocoevalcap Bleu(4): corpus-level, closest reference length");
        char conv_m[1400];
        int full = strcmp(met_mods, "exact,stem,synonym,paraphrase") == 0;
        snprintf(conv_m, sizeof conv_m, "METEOR 1.5 -l en -norm (meteor-1.5.jar as pycocoevalcap 1.2 runs it) with modules %s (weights exact 1.0, stem 0.6, synonym 0.8, paraphrase 0.6)%s%s", met_mods, full ? "" : "; NOT pycocoevalcap's METEOR, which runs exact,stem,synonym,paraphrase: ", why);
        cJSON_AddStringToObject(conv, "meteor", conv_m);
        cJSON_AddStringToObject(rep, "meteor_modules", met_mods);
        cJSON_AddStringToObject(conv, "rouge_l", "pycocoevalcap Rouge: beta 1.2, mean over items");
        cJSON_AddStringToObject(conv, "cider_d", "pycocoevalcap Cider (CIDEr-D): n 4, sigma 6, idf from this set's references, mean over items");
        cJSON *c = cJSON_AddObjectToObject(rep, "corpus");
        char key[32];
        for (int b = 0; b < 4; b++) {
            snprintf(key, sizeof key, "bleu_%d", b + 1);
            cJSON_AddNumberToObject(c, key, corpus.bleu[b]);
        }
        cJSON_AddNumberToObject(c, "meteor", corpus.meteor);
        cJSON_AddNumberToObject(c, "rouge_l", corpus.rouge_l);
        cJSON_AddNumberToObject(c, "cider_d", corpus.cider_d);
        if (bp) {
            char conv_b[512];
            snprintf(conv_b, sizeof conv_b, "bert_score 0.3.13 score(model_type=%.60s, num_layers=%d, idf=%s%s%.120s%s)%s; corpus = mean over items", g_bert_dir, blayers, g_bert_idf ? "True" : "False", g_bert_baseline ? ", rescale_with_baseline=True, baseline_path=" : "", g_bert_baseline ? g_bert_baseline : "", g_bert_info.roberta ? ", slow RobertaTokenizer" : ", tokenizer.json", g_bert_baseline ? "" : ", no rescaling");
            cJSON_AddStringToObject(conv, "bertscore", conv_b);
            cJSON *bm = cJSON_AddObjectToObject(rep, "bertscore_model");
            cJSON_AddStringToObject(bm, "dir", g_bert_dir);
            cJSON_AddStringToObject(bm, "model_type", g_bert_info.roberta ? "roberta" : "bert");
            cJSON_AddNumberToObject(bm, "num_hidden_layers", g_bert_info.layers);
            cJSON_AddNumberToObject(bm, "hidden_size", g_bert_info.hidden);
            cJSON_AddNumberToObject(bm, "layer", blayers);
            cJSON_AddBoolToObject(bm, "idf", g_bert_idf);
            if (g_bert_baseline) cJSON_AddStringToObject(bm, "baseline", g_bert_baseline);
            else cJSON_AddNullToObject(bm, "baseline");
            cJSON_AddNumberToObject(bm, "max_length", (double)g_bert_info.max_length);
            cJSON_AddStringToObject(bm, "weights", g_bert_info.weights);
            cJSON_AddStringToObject(bm, "sha256", g_bert_info.sha256);
            cJSON_AddNumberToObject(c, "bertscore_p", bsum[0]);
            cJSON_AddNumberToObject(c, "bertscore_r", bsum[1]);
            cJSON_AddNumberToObject(c, "bertscore_f1", bsum[2]);
        }
        cJSON *items = cJSON_AddArrayToObject(rep, "items");
        k = 0;
        for (int i = 0; i < nc; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", cands[i].id);
            cJSON_AddStringToObject(o, "candidate_tok", ctok[i]);
            cJSON *ra = cJSON_AddArrayToObject(o, "references_tok");
            for (int r = 0; r < nref[i]; r++) cJSON_AddItemToArray(ra, cJSON_CreateString(rtok[k++]));
            for (int b = 0; b < 4; b++) {
                snprintf(key, sizeof key, "bleu_%d", b + 1);
                cJSON_AddNumberToObject(o, key, per[i].bleu[b]);
            }
            cJSON_AddNumberToObject(o, "meteor", per[i].meteor);
            cJSON_AddNumberToObject(o, "rouge_l", per[i].rouge_l);
            cJSON_AddNumberToObject(o, "cider_d", per[i].cider_d);
            if (bp) {
                cJSON_AddNumberToObject(o, "bertscore_p", bp[i]);
                cJSON_AddNumberToObject(o, "bertscore_r", bp[nc + i]);
                cJSON_AddNumberToObject(o, "bertscore_f1", bp[2 * nc + i]);
            }
            cJSON_AddItemToArray(items, o);
        }
        char *txt = cJSON_Print(rep);
        if (!txt) { fprintf(stderr, "m2u-eval: out of memory\n"); goto done; }
        size_t tl = strlen(txt);
        txt[tl] = '\n';
        int wrc = m2u_write_file_atomic(out, txt, tl + 1);
        free(txt);
        if (wrc) { fprintf(stderr, "m2u-eval: %s\n", m2u_last_error()); goto done; }
        if (!quiet) printf("report: %s\n", out);
    }
    rc = 0;
done:
    free(bp);
    cJSON_Delete(rep);
    m2u_strv_free(ctok, (size_t)nc);
    m2u_strv_free(rtok, total);
    items_free(cands, nc);
    items_free(refs, nr);
    free(ctext);
    free(rtext);
    free(nref);
    free(per);
    return rc;
}

static int cmd_fd(const char *apath, const char *bpath, const char *out) {
    double *a = NULL, *b = NULL, fd;
    size_t ra, ca, rb, cb;
    int rc = 1;
    if (m2u_npy_read_matrix(apath, &a, &ra, &ca) || m2u_npy_read_matrix(bpath, &b, &rb, &cb)) {
        fprintf(stderr, "m2u-eval: %s\n", m2u_last_error());
        goto done;
    }
    if (ca != cb) {
        fprintf(stderr, "m2u-eval: %s has %zu columns, %s has %zu\n", apath, ca, bpath, cb);
        goto done;
    }
    if (ra <= ca || rb <= cb)
        fprintf(stderr, "m2u-eval: warning: fewer rows than dimensions (%zu, %zu rows, %zu dims): covariances are "
                        "singular and the distance is biased\n",
                ra, rb, ca);
    if (m2u_frechet_distance(a, ra, b, rb, ca, &fd)) {
        fprintf(stderr, "m2u-eval: %s\n", m2u_last_error());
        goto done;
    }
    printf("%.10g\n", fd);
    if (out) {
        cJSON *rep = cJSON_CreateObject();
        cJSON_AddStringToObject(rep, "command", "fd");
        cJSON_AddStringToObject(rep, "a", apath);
        cJSON_AddStringToObject(rep, "b", bpath);
        cJSON_AddNumberToObject(rep, "n_a", (double)ra);
        cJSON_AddNumberToObject(rep, "n_b", (double)rb);
        cJSON_AddNumberToObject(rep, "dim", (double)ca);
        cJSON_AddNumberToObject(rep, "frechet_distance", fd);
        char *txt = cJSON_Print(rep);
        cJSON_Delete(rep);
        if (!txt) { fprintf(stderr, "m2u-eval: out of memory\n"); goto done; }
        size_t tl = strlen(txt);
        txt[tl] = '\n';
        int wrc = m2u_write_file_atomic(out, txt, tl + 1);
        free(txt);
        if (wrc) { fprintf(stderr, "m2u-eval: %s\n", m2u_last_error()); goto done; }
    }
    rc = 0;
done:
    free(a);
    free(b);
    return rc;
}

/* m2u-eval kl --passt: the paper's KL from two audio folders (eval/metrics/passt_kl.h) */
static int cmd_kl_passt(int argc, char **argv) {
    m2u_passt_kl_opts o = {0};
    const char *out = NULL, *heads = NULL;
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i];
        const char **dst = !strcmp(f, "--passt") ? &o.checkpoint
                           : !strcmp(f, "--ref") ? &o.ref_dir
                           : !strcmp(f, "--gen") ? &o.gen_dir
                           : !strcmp(f, "--out") ? &out
                           : !strcmp(f, "--passt-heads") ? &heads : NULL;
        if (!dst) return bad_usage("kl", "unknown option %s (with --passt: --ref, --gen, --passt-heads, --out)", f);
        if (i + 1 >= argc) return bad_usage("kl", "%s needs a value", f);
        *dst = argv[++i];
    }
    if (!o.checkpoint || !o.ref_dir || !o.gen_dir) return bad_usage("kl", "--passt needs --ref DIR and --gen DIR");
    if (heads) {
        char *e;
        long h = strtol(heads, &e, 10);
        if (!*heads || *e || h < 1 || h > 256) return bad_usage("kl", "--passt-heads %s: expected 1..256", heads);
        o.passt.heads = (int)h;
    }
    cJSON *rep = NULL;
    double kl = 0;
    if (m2u_passt_kl(&o, &rep, &kl) != 0) {
        fprintf(stderr, "m2u-eval kl: %s\n", m2u_last_error());
        return 1;
    }
    const cJSON *prov = cJSON_GetObjectItemCaseSensitive(rep, "provenance");
    printf("KL (PaSST) = %.10g over %d pairs\n", kl, cJSON_GetObjectItemCaseSensitive(rep, "n_pairs")->valueint);
    printf("  checkpoint %s sha256 %s, %d heads, loader librosa.load(sr=32000) via %s, first %d samples\n",
           o.checkpoint, cJSON_GetObjectItemCaseSensitive(prov, "checkpoint_sha256")->valuestring,
           cJSON_GetObjectItemCaseSensitive(prov, "heads")->valueint,
           cJSON_GetObjectItemCaseSensitive(prov, "libsoxr")->valuestring,
           cJSON_GetObjectItemCaseSensitive(prov, "max_samples")->valueint);
    static const char *const sides[] = {"unmatched_ref", "unmatched_gen"};
    for (int s = 0; s < 2; s++) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(rep, sides[s]))
            printf("  unmatched (%s, not scored): %s\n", s ? "generated" : "reference", it->valuestring);
    }
    int rc = 0;
    if (out) {
        char *txt = cJSON_Print(rep);
        rc = txt ? m2u_write_file_atomic(out, txt, strlen(txt)) : m2u_fail("out of memory");
        free(txt);
        if (rc) fprintf(stderr, "m2u-eval kl: %s\n", m2u_last_error());
    }
    cJSON_Delete(rep);
    return rc ? 1 : 0;
}

/* m2u-eval kl / cosine: row-paired scores of two [N, D] .npy files */
static int cmd_paired(const char *cmd, int argc, char **argv) {
    if (!strcmp(cmd, "kl"))
        for (int i = 2; i < argc; i++)
            if (!strcmp(argv[i], "--passt")) return cmd_kl_passt(argc, argv);
    const char *apath = NULL, *bpath = NULL;
    int logits = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--logits")) logits = 1;
        else if (!strcmp(argv[i], "--a") && i + 1 < argc) apath = argv[++i];
        else if (!strcmp(argv[i], "--b") && i + 1 < argc) bpath = argv[++i];
        else {
            if (!strcmp(argv[i], "--a") || !strcmp(argv[i], "--b")) return bad_usage(cmd, "%s needs a value", argv[i]);
            return bad_usage(cmd, "unknown option %s", argv[i]);
        }
    }
    if (!apath || !bpath || (logits && strcmp(cmd, "kl"))) {
        return bad_usage(cmd, "%s", logits && strcmp(cmd, "kl") ? "--logits belongs to kl" : "need --a and --b");
    }
    double *a = NULL, *b = NULL, mean = 0;
    size_t ra, ca, rb, cb;
    int rc = 1;
    if (m2u_npy_read_matrix(apath, &a, &ra, &ca) || m2u_npy_read_matrix(bpath, &b, &rb, &cb)) {
        fprintf(stderr, "m2u-eval: %s\n", m2u_last_error());
        goto done;
    }
    if (ra != rb || ca != cb) {
        fprintf(stderr, "m2u-eval %s: %s is [%zu, %zu] but %s is [%zu, %zu]; rows are paired\n", cmd, apath, ra, ca, bpath,
                rb, cb);
        goto done;
    }
    int frc = !strcmp(cmd, "kl") ? m2u_kl_divergence(a, b, ra, ca, logits, 1e-6, NULL, &mean)
                                 : m2u_cosine_score(a, b, ra, ca, NULL, &mean);
    if (frc) {
        fprintf(stderr, "m2u-eval: %s\n", m2u_last_error());
        goto done;
    }
    printf("%.10g\n", mean);
    rc = 0;
done:
    free(a);
    free(b);
    return rc;
}

/* m2u-eval clap: the CLAP score of audio-caption pairs (eval/metrics/clap_score.h) */
static int cmd_clap(int argc, char **argv) {
    const char *clap = NULL, *audio = NULL, *pairs = NULL, *out = NULL;
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i];
        const char **dst = !strcmp(f, "--clap")       ? &clap
                           : !strcmp(f, "--audio")    ? &audio
                           : !strcmp(f, "--captions") ? &pairs
                           : !strcmp(f, "--out")      ? &out
                                                      : NULL;
        if (!dst) return bad_usage("clap", "unknown option %s", f);
        if (i + 1 >= argc) return bad_usage("clap", "%s needs a value", f);
        *dst = argv[++i];
    }
    if (!clap || !audio || !pairs) return bad_usage("clap", "need --clap, --audio and --captions");
    m2u_clap_scores s;
    if (m2u_clap_score(clap, audio, pairs, &s)) {
        fprintf(stderr, "m2u-eval: %s\n", m2u_last_error());
        return 1;
    }
    for (size_t i = 0; i < s.n; i++) {
        if (s.items[i].error) fprintf(stderr, "m2u-eval clap: not scored: %s\n", s.items[i].error);
        else printf("%.8f\t%s\n", s.items[i].cosine, s.items[i].audio);
    }
    printf("CLAP %.8f (mean cosine over %zu of %zu pairs)\n", s.mean, s.n_scored, s.n);
    int rc = out && m2u_clap_scores_write(out, clap, pairs, &s) ? 1 : 0;
    if (rc) fprintf(stderr, "m2u-eval: %s\n", m2u_last_error());
    else if (s.n_scored < s.n) rc = 1; /* a score over fewer pairs than asked is not a success */
    m2u_clap_scores_free(&s);
    return rc;
}

/* m2u-eval bench: the benchmark scripts and one report (perf_suite.h) */
static int cmd_bench(int argc, char **argv) {
    m2u_perf_opts o = {.source_dir = M2U_SOURCE_DIR, .build_dir = NULL, .out_dir = NULL};
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(f, "--quick")) {
            o.quick = 1;
            continue;
        }
        static const char *const valued[] = {"--out", "--source", "--build", "--python", "--only", NULL};
        if (!is_one_of(f, valued)) return bad_usage("bench", "unknown option %s", f);
        if (!v) return bad_usage("bench", "%s needs a value", f);
        i++;
        if (!strcmp(f, "--out")) o.out_dir = v;
        else if (!strcmp(f, "--source")) o.source_dir = v;
        else if (!strcmp(f, "--build")) o.build_dir = v;
        else if (!strcmp(f, "--python")) o.python = v;
        else if (!strcmp(f, "--only")) {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (!strcmp(t, "train")) o.parts |= M2U_PERF_TRAIN;
                else if (!strcmp(t, "mert")) o.parts |= M2U_PERF_MERT;
                else if (!strcmp(t, "dataset")) o.parts |= M2U_PERF_DATASET;
                else if (!strcmp(t, "train7b")) o.parts |= M2U_PERF_TRAIN7B;
                else {
                    return bad_usage("bench", "--only: unknown part '%s' (train, mert, dataset, train7b)", t);
                }
            }
        } else {
            return bad_usage("bench", "unknown option %s", f);
        }
    }
    char *build = o.build_dir ? NULL : m2u_path_join(o.source_dir, "build");
    char *out = NULL;
    if (!o.build_dir) o.build_dir = build;
    if (!o.out_dir) o.out_dir = out = m2u_path_join(o.build_dir, "bench");
    int rc = m2u_perf_run(&o);
    if (rc) fprintf(stderr, "m2u-eval: %s\n", m2u_last_error());
    else printf("m2u-eval bench: %s/bench.md and bench.json\n", o.out_dir);
    free(build), free(out);
    return rc ? 1 : 0;
}

/* m2u-eval fad: Fréchet distance between two audio sets (audio_embed.h) */
static int write_dumps(m2u_audio_embeddings *e, const char *const *dump);
static int cmd_fad_vggish(const char *ckpt, const char *ref, const char *gen, const char *out, const char *const *dump);

static int cmd_fad(int argc, char **argv) {
    const char *ref = NULL, *gen = NULL, *out = NULL, *dump[2] = {NULL, NULL}, *embed = NULL, *vggish = NULL;
    int generic = 0; /* an option of the MERT / built-in embeddings was given */
    m2u_audio_embed_opts o = {.layer = -1, .clip_s = 10, .rate = 24000};
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        static const char *const valued[] = {"--ref",  "--gen",    "--out",  "--mert",      "--dump-ref", "--dump-gen",
                                             "--layer", "--clip", "--max-clips", "--embed", "--vggish", NULL};
        if (!is_one_of(f, valued)) return bad_usage("fad", "unknown option %s", f);
        if (!v) return bad_usage("fad", "%s needs a value", f);
        i++;
        generic |= !strcmp(f, "--mert") || !strcmp(f, "--layer") || !strcmp(f, "--clip") || !strcmp(f, "--max-clips");
        if (!strcmp(f, "--ref")) ref = v;
        else if (!strcmp(f, "--gen")) gen = v;
        else if (!strcmp(f, "--embed")) embed = v;
        else if (!strcmp(f, "--vggish")) vggish = v;
        else if (!strcmp(f, "--out")) out = v;
        else if (!strcmp(f, "--mert")) o.mert_dir = v;
        else if (!strcmp(f, "--dump-ref")) dump[0] = v;
        else if (!strcmp(f, "--dump-gen")) dump[1] = v;
        else if (!strcmp(f, "--layer")) o.layer = (int)strtol(v, &end, 10);
        else if (!strcmp(f, "--clip")) o.clip_s = strtod(v, &end);
        else if (!strcmp(f, "--max-clips")) o.max_clips = (int)strtol(v, &end, 10);
        else {
            return bad_usage("fad", "unknown option %s", f);
        }
        if (end && (*end || end == v)) {
            return bad_usage("fad", "%s: not a number: %s", f, v);
        }
    }
    if (embed && strcmp(embed, "vggish")) return bad_usage("fad", "--embed %s: the only choice is vggish", embed);
    if (embed && !vggish) return bad_usage("fad", "--embed vggish needs --vggish CKPT");
    if (vggish && !embed) return bad_usage("fad", "--vggish needs --embed vggish");
    if (embed && generic)
        return bad_usage("fad", "--mert / --layer / --clip / --max-clips do not apply to --embed vggish "
                                "(fad_pytorch's fixed 10 chunks of 26,214 samples)");
    if (!ref || !gen || !(o.clip_s > 0)) {
        return bad_usage("fad", "%s", o.clip_s > 0 ? "need --ref and --gen" : "--clip must be > 0 seconds");
    }
    if (embed) return cmd_fad_vggish(vggish, ref, gen, out, dump);
    m2u_audio_embeddings e[2];
    memset(e, 0, sizeof e);
    int rc = 1;
    double fd = 0;
    for (int k = 0; k < 2; k++)
        if (m2u_audio_embed_set(k ? gen : ref, &o, &e[k])) {
            fprintf(stderr, "m2u-eval: %s\n", m2u_last_error());
            goto done;
        }
    if (write_dumps(e, dump)) goto done;
    if (e[0].n <= e[0].dim || e[1].n <= e[1].dim)
        fprintf(stderr, "m2u-eval: note: %zu and %zu clips for %zu dimensions: the covariances are singular, so "
                        "compare distances only between sets of similar size\n",
                e[0].n, e[1].n, e[0].dim);
    if (m2u_frechet_distance(e[0].rows, e[0].n, e[1].rows, e[1].n, e[0].dim, &fd)) {
        fprintf(stderr, "m2u-eval: %s\n", m2u_last_error());
        goto done;
    }
    printf("frechet distance %.6g (%s; %zu reference clips from %ld files, %zu generated clips from %ld files; "
           "%ld + %ld files skipped)\n",
           fd, e[0].encoder, e[0].n, e[0].files, e[1].n, e[1].files, e[0].files_skipped, e[1].files_skipped);
    if (out) {
        cJSON *rep = cJSON_CreateObject();
        cJSON_AddStringToObject(rep, "command", "fad");
        cJSON_AddStringToObject(rep, "ref", ref);
        cJSON_AddStringToObject(rep, "gen", gen);
        cJSON_AddStringToObject(rep, "embedding", e[0].encoder);
        cJSON_AddNumberToObject(rep, "dim", (double)e[0].dim);
        cJSON_AddNumberToObject(rep, "clip_s", o.clip_s);
        cJSON_AddNumberToObject(rep, "ref_clips", (double)e[0].n);
        cJSON_AddNumberToObject(rep, "gen_clips", (double)e[1].n);
        cJSON_AddNumberToObject(rep, "ref_files_skipped", (double)e[0].files_skipped);
        cJSON_AddNumberToObject(rep, "gen_files_skipped", (double)e[1].files_skipped);
        cJSON_AddNumberToObject(rep, "frechet_distance", fd);
        char *txt = cJSON_Print(rep);
        cJSON_Delete(rep);
        int wrc = txt ? m2u_write_file_atomic(out, txt, strlen(txt)) : m2u_fail("out of memory");
        free(txt);
        if (wrc) {
            fprintf(stderr, "m2u-eval: %s\n", m2u_last_error());
            goto done;
        }
    }
    rc = 0;
done:
    m2u_audio_embeddings_free(&e[0]);
    m2u_audio_embeddings_free(&e[1]);
    return rc;
}

/* --dump-ref / --dump-gen: the rows as float32 .npy, as they were computed; 0 or 1 (printed) */
static int write_dumps(m2u_audio_embeddings *e, const char *const *dump) {
    for (int k = 0; k < 2; k++)
        if (dump[k]) {
            int64_t shape[2] = {(int64_t)e[k].n, (int64_t)e[k].dim};
            size_t cnt = e[k].n * e[k].dim;
            float *f = malloc(cnt * sizeof *f);
            for (size_t j = 0; f && j < cnt; j++) f[j] = (float)e[k].rows[j];
            int wrc = f ? m2u_npy_write(dump[k], M2U_F32, f, 2, shape) : m2u_fail("out of memory");
            free(f);
            if (wrc) {
                fprintf(stderr, "m2u-eval: %s\n", m2u_last_error());
                return 1;
            }
        }
    return 0;
}

/* m2u-eval fad --embed vggish: fad_pytorch's FAD (fad_vggish.h) */
static int cmd_fad_vggish(const char *ckpt, const char *ref, const char *gen, const char *out, const char *const *dump) {
    m2u_fad_vggish_result r;
    if (m2u_fad_vggish(ckpt, ref, gen, &r)) {
        fprintf(stderr, "m2u-eval: %s\n", m2u_last_error());
        return 1;
    }
    int rc = write_dumps(r.e, dump);
    char *txt = rc ? NULL : m2u_fad_vggish_report(&r, ckpt, ref, gen);
    /* fad_score prints numpy's float32: the fewest digits that read back as the same float */
    char f32[32];
    for (int p = 1; p <= 9; p++) {
        snprintf(f32, sizeof f32, "%.*g", p, (double)(float)r.fad);
        if ((float)strtod(f32, NULL) == (float)r.fad) break;
    }
    if (!rc) {
        printf("frechet distance %.9g (vggish as fad_pytorch 0.0.6, checkpoint sha256 %.16s...; %zu reference clips from "
               "%ld files, %zu generated clips from %ld files; %ld + %ld files skipped, %ld + %ld cropped at 0, %ld + %ld "
               "silent)\nFAD score =  %s\n",
               r.fad, r.sha256, r.e[0].n, r.e[0].files, r.e[1].n, r.e[1].files, r.e[0].files_skipped,
               r.e[1].files_skipped, r.counts[0].cropped, r.counts[1].cropped, r.counts[0].silent, r.counts[1].silent,
               f32);
        if (out && (!txt || m2u_write_file_atomic(out, txt, strlen(txt)))) {
            fprintf(stderr, "m2u-eval: %s\n", m2u_last_error());
            rc = 1;
        }
    }
    free(txt);
    m2u_fad_vggish_result_free(&r);
    return rc;
}

/* The paper's KL and CLAP lines of a music evaluation. */
static void print_kl_clap(const m2u_music_eval *e) {
    if (e->kl_measured) printf("  KL (PaSST) %.6g over %ld pairs\n", e->kl, e->kl_pairs);
    else printf("  KL not measured: %s\n", e->kl_reason ? e->kl_reason : "");
    if (e->clap_measured) printf("  CLAP score %.6g over %ld mucaps clips\n", e->clap, e->clap_n);
    else printf("  CLAP score not measured: %s\n", e->clap_reason ? e->clap_reason : "");
}

/* m2u-eval music: generated clips vs a split (music_gen.h, music_report.h) */
static int cmd_music(int argc, char **argv) {
    m2u_music_eval_options o = {.layer = -1, .clip_s = 10};
    const char *out = NULL;
    double embed_mb = 16;
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        static const char *const valued[] = {"--gen", "--data", "--split", "--kinds", "--mert", "--layer", "--clip",
                                             "--max-samples", "--embed-mb", "--out", "--clap", "--vggish", "--passt",
                                             "--scored-dir", NULL};
        if (!is_one_of(f, valued)) return bad_usage("music", "unknown option %s", f);
        if (!v) return bad_usage("music", "%s needs a value", f);
        i++;
        if (!strcmp(f, "--gen")) o.gen_dir = v;
        else if (!strcmp(f, "--data")) o.data = v;
        else if (!strcmp(f, "--split")) o.split = v;
        else if (!strcmp(f, "--kinds")) o.kinds = v;
        else if (!strcmp(f, "--mert")) o.mert_dir = v;
        else if (!strcmp(f, "--clap")) o.clap_dir = v;
        else if (!strcmp(f, "--vggish")) o.vggish_ckpt = v;
        else if (!strcmp(f, "--passt")) o.passt_ckpt = v;
        else if (!strcmp(f, "--scored-dir")) o.work_dir = v;
        else if (!strcmp(f, "--out")) out = v;
        else if (!strcmp(f, "--layer")) o.layer = (int)strtol(v, &end, 10);
        else if (!strcmp(f, "--clip")) o.clip_s = strtod(v, &end);
        else if (!strcmp(f, "--max-samples")) o.max_samples = strtol(v, &end, 10);
        else embed_mb = strtod(v, &end);
        if (end && (*end || end == v)) return bad_usage("music", "%s: not a number: %s", f, v);
    }
    if (!o.gen_dir || !o.data) return bad_usage("music", "need --gen and --data");
    if (o.vggish_ckpt && o.mert_dir) return bad_usage("music", "--vggish and --mert both choose the FAD embedding");
    if (o.work_dir && !o.vggish_ckpt && !o.passt_ckpt)
        return bad_usage("music", "--scored-dir holds the files --vggish / --passt score: give one of them");
    if (!(o.clip_s > 0) || o.max_samples < 0 || !(embed_mb >= 0))
        return bad_usage("music", "--clip must be > 0, --max-samples and --embed-mb >= 0");
    char *def = NULL;
    if (!out) {
        size_t n = strlen(o.gen_dir) + 8;
        def = malloc(n);
        if (!def) return fprintf(stderr, "m2u-eval: out of memory\n"), 1;
        snprintf(def, n, "%s/report", o.gen_dir);
        out = def;
    }
    m2u_music_eval e;
    int rc = 1;
    if (m2u_music_eval_run(&o, &e)) {
        fprintf(stderr, "m2u-eval: %s\n", m2u_last_error());
        free(def);
        return 1;
    }
    m2u_music_report_opts ro = {.embed_max_bytes = embed_mb > 0 ? (size_t)(embed_mb * 1048576.0) : 1};
    if (m2u_music_report_write(out, &e, &ro)) {
        fprintf(stderr, "m2u-eval: %s\n", m2u_last_error());
        goto done;
    }
    printf("music: %d of %d samples have a generated clip\n", e.n_generated, e.n_items);
    if (e.fad_measured) printf("  FAD %.6g (%s; %zu reference, %zu generated clips)\n", e.fad, e.fad_embedding,
                               e.fad_ref_clips, e.fad_gen_clips);
    else printf("  FAD not measured: %s\n", e.fad_reason);
    print_kl_clap(&e);
    for (int g = 0; g < e.n_groups; g++) {
        printf("  agreement %-8s", e.group[g]);
        for (int a = 0; a < M2U_GA_COUNT; a++) {
            double r = m2u_music_agreement_rate(&e.ag[g], (m2u_gen_attr)a);
            if (isfinite(r)) printf(" %s %.0f%%", m2u_gen_attr_name((m2u_gen_attr)a), 100 * r);
        }
        printf("\n");
    }
    printf("  reports in %s (music.json, music.md, music.html)\n", out);
    rc = 0;
done:
    m2u_music_eval_free(&e);
    free(def);
    return rc;
}

static void on_progress(void *ctx, long done, long total, const m2u_eval_item *last) {
    m2u_progress *pr = ctx;
    if (done == 0) { /* selection done, generation starts: the rate and ETA count from here */
        m2u_progress_start(pr, "sample", total);
        return;
    }
    char extra[96];
    snprintf(extra, sizeof extra, "%s: %d new tokens", last->id, last->n_new_tokens);
    m2u_progress_update(pr, done, extra);
}

static char *default_out(const char *run, const char *leaf) {
    char *p = m2u_path_join(run, leaf);
    if (!p) fprintf(stderr, "m2u-eval: out of memory\n");
    return p;
}

/* curves of the run, or NULL (with a note) when it has no metrics.jsonl */
static int read_curves(const char *run, m2u_run_curves *c, int *have) {
    char *mp = m2u_path_join(run, "metrics.jsonl");
    *have = 0;
    if (!mp) return -1;
    if (!m2u_file_exists(mp)) {
        fprintf(stderr, "m2u-eval: note: %s does not exist; the report has no training curves\n", mp);
        free(mp);
        return 0;
    }
    int rc = m2u_run_curves_read(mp, c);
    if (rc) {
        free(mp);
        return -1;
    }
    *have = 1;
    /* every line left out is named: a silently shorter curve would look like a real one */
    for (long i = 0; i < c->n_skipped && i < M2U_CURVES_MAX_SKIPPED; i++)
        fprintf(stderr, "m2u-eval: note: %s:%ld is not a JSON object; skipped (a killed run's torn line?)\n", mp,
                c->skipped_line[i]);
    if (c->n_skipped > M2U_CURVES_MAX_SKIPPED)
        fprintf(stderr, "m2u-eval: note: %s: %ld more line(s) skipped\n", mp, c->n_skipped - M2U_CURVES_MAX_SKIPPED);
    free(mp);
    return 0;
}

static int cmd_report(const char *run, const char *out) {
    char *dflt = out ? NULL : default_out(run, "report");
    if (!out && !dflt) return 1;
    const char *dir = out ? out : dflt;
    m2u_run_curves c;
    int have = 0, rc = 1;
    if (!m2u_is_dir(run)) {
        fprintf(stderr, "m2u-eval report: %s is not a directory\n", run);
        free(dflt);
        return 1;
    }
    if (read_curves(run, &c, &have)) {
        fprintf(stderr, "m2u-eval: %s\n", m2u_last_error());
        goto done;
    }
    if (!have) {
        fprintf(stderr, "m2u-eval report: %s/metrics.jsonl is needed for a curves report\n", run);
        goto done;
    }
    m2u_eval_report r = {.run_dir = run, .curves = &c};
    if (m2u_eval_report_write(dir, &r)) {
        fprintf(stderr, "m2u-eval: %s\n", m2u_last_error());
        goto done;
    }
    printf("%ld steps, %ld held-out losses; report: %s/report.html\n", c.n, c.n_eval, dir);
    rc = 0;
done:
    if (have) m2u_run_curves_free(&c);
    free(dflt);
    return rc;
}

/* kind is one of the comma-separated kinds */
static int kind_listed(const char *kinds, const char *kind) {
    size_t n = strlen(kind);
    for (const char *p = kinds; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && !strncmp(p, kind, n)) return 1;
        p += l + (e ? 1 : 0);
    }
    return 0;
}

static int cmd_run(const m2u_eval_run_options *o, const char *out) {
    char leaf[32];
    snprintf(leaf, sizeof leaf, "eval-%s", o->split ? o->split : "test");
    char *dflt = out ? NULL : default_out(o->run_dir, leaf);
    if (!out && !dflt) return 1;
    const char *dir = out ? out : dflt;
    m2u_eval_run_result res;
    m2u_eval_scores sc;
    m2u_run_curves c;
    m2u_music_eval me;
    int have = 0, rc = 1, have_res = 0, have_sc = 0, have_me = 0;
    m2u_progress pr;
    m2u_progress_start(&pr, "sample", 0);
    if (m2u_eval_run_generate(o, on_progress, &pr, &res)) {
        fprintf(stderr, "m2u-eval: %s\n", m2u_last_error());
        goto done;
    }
    have_res = 1;
    m2u_progress_end(&pr, res.n_items, NULL);
    if (m2u_eval_score(&res, &sc)) {
        fprintf(stderr, "m2u-eval: %s\n", m2u_last_error());
        goto done;
    }
    have_sc = 1;
    if (read_curves(o->run_dir, &c, &have)) {
        fprintf(stderr, "m2u-eval: %s\n", m2u_last_error());
        goto done;
    }
    char *pp = NULL;
    if (m2u_mkdir_p(dir) || !(pp = m2u_path_join(dir, "predictions.jsonl")) ||
        m2u_eval_write_predictions(pp, &res, &sc)) {
        free(pp);
        fprintf(stderr, "m2u-eval: %s\n", m2u_last_error());
        goto done;
    }
    free(pp);
    /* --musicgen: the clips made for the generation kinds, scored as m2u-eval music scores a folder */
    if (o->musicgen) {
        char gk[64] = "";
        static const char *const gen[] = {"mucaps", "muedit", "muimage", "muvideo"};
        for (int k = 0; k < 4; k++)
            if (kind_listed(res.kinds, gen[k])) snprintf(gk + strlen(gk), sizeof gk - strlen(gk), "%s%s", gk[0] ? "," : "", gen[k]);
        if (!gk[0]) {
            fprintf(stderr, "m2u-eval: --musicgen: --kinds %s has no generation kind (mucaps, muedit, muimage, muvideo)\n",
                    res.kinds);
            goto done;
        }
        /* the same samples: with --max-samples, as many of the generation kinds as were answered */
        long n_gen = 0;
        for (int i = 0; i < res.n_items; i++) n_gen += res.items[i].music != 0;
        m2u_music_eval_options mo = {.gen_dir = o->music_dir, .data = res.data, .split = res.split, .kinds = gk,
                                     .layer = -1, .clip_s = 10, .max_samples = o->max_samples ? n_gen : 0,
                                     .vggish_ckpt = g_vggish, .passt_ckpt = g_passt, .clap_dir = g_clap};
        if (m2u_music_eval_run(&mo, &me)) {
            fprintf(stderr, "m2u-eval: scoring the generated music: %s\n", m2u_last_error());
            goto done;
        }
        have_me = 1;
    }
    m2u_eval_report r = {.run_dir = o->run_dir, .curves = have ? &c : NULL, .eval = &res, .scores = &sc,
                         .music = have_me ? &me : NULL};
    if (m2u_eval_report_write(dir, &r)) {
        fprintf(stderr, "m2u-eval: %s\n", m2u_last_error());
        goto done;
    }
    for (int g = 0; g < sc.n_groups; g++)
        printf("%-8s n %-5d BLEU-1 %.4f  BLEU-4 %.4f  METEOR %.4f  ROUGE-L %.4f  CIDEr-D %.4f\n", sc.group[g],
               sc.group_n[g], sc.corpus[g].bleu[0], sc.corpus[g].bleu[3], sc.corpus[g].meteor, sc.corpus[g].rouge_l,
               sc.corpus[g].cider_d);
    for (int a = 0; a < M2U_ATTR_COUNT; a++)
        if (sc.pred.n_measured[a])
            printf("%-8s measured %ld stated %ld correct %ld\n", m2u_attr_name((m2u_attr)a), sc.pred.n_measured[a],
                   sc.pred.n_stated[a], sc.pred.n_correct[a]);
    if (have_me) {
        printf("music: %d of %d generation samples answered with an [AUD] block, clips in %s (%.1f s)\n",
               res.n_music_written, res.n_music_asked, o->music_dir, res.music_seconds);
        printf("music: %d of %d samples scored with a generated clip\n", me.n_generated, me.n_items);
        if (me.fad_measured) printf("music: FAD %.4f (%s)\n", me.fad, me.fad_embedding);
        else printf("music: FAD not measured: %s\n", me.fad_reason);
        print_kl_clap(&me);
    }
    printf("%d predictions, %.1f s; report: %s/report.html\n", res.n_items, res.seconds, dir);
    rc = 0;
done:
    if (have_me) m2u_music_eval_free(&me);
    if (have) m2u_run_curves_free(&c);
    if (have_sc) m2u_eval_scores_free(&sc);
    if (have_res) m2u_eval_run_result_free(&res);
    free(dflt);
    return rc;
}

/* An integer option of m2u-eval run in [lo, hi]; prints the mistake and the usage. */
static int parse_long(const char *opt, const char *v, long lo, long hi, long *out) {
    char *e;
    long x = strtol(v, &e, 10);
    if (!*v || *e || x < lo || x > hi) {
        bad_usage("run", "%s %s: expected an integer in [%ld, %ld]", opt, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

/* m2u-eval compare --out DIR [--name T]... SOURCE... */
static int cmd_compare(int argc, char **argv) {
    const char *out = NULL;
    const char **names = calloc((size_t)argc, sizeof *names), **srcs = calloc((size_t)argc, sizeof *srcs);
    int n_names = 0, n_srcs = 0, rc = 0, opts_done = 0;
    if (!names || !srcs) {
        free(names), free(srcs);
        fprintf(stderr, "m2u-eval compare: out of memory\n");
        return 1;
    }
    for (int i = 2; i < argc && !rc; i++) {
        const char *o = argv[i];
        if (!opts_done && !strcmp(o, "--")) opts_done = 1;
        else if (!opts_done && (!strcmp(o, "--out") || !strcmp(o, "--name"))) {
            if (i + 1 >= argc) rc = bad_usage("compare", "%s needs a value", o);
            else if (!strcmp(o, "--out")) out = argv[++i];
            else names[n_names++] = argv[++i];
        } else if (!opts_done && o[0] == '-' && o[1]) rc = bad_usage("compare", "unknown option %s", o);
        else srcs[n_srcs++] = o;
    }
    if (!rc && !out) rc = bad_usage("compare", "need --out DIR");
    if (!rc && n_srcs == 0) rc = bad_usage("compare", "need at least one SOURCE");
    if (!rc && n_names > n_srcs) rc = bad_usage("compare", "%d --name for %d sources", n_names, n_srcs);
    m2u_compare c = {0};
    for (int i = 0; !rc && i < n_srcs; i++)
        if (m2u_compare_add(&c, srcs[i], i < n_names ? names[i] : NULL)) rc = 1;
    if (!rc && m2u_compare_write(&c, out)) rc = 1;
    if (rc == 1) fprintf(stderr, "m2u-eval compare: %s\n", m2u_last_error());
    else if (!rc) {
        const char **rows = NULL;
        size_t nr = 0;
        if (!m2u_compare_rows(&c, &rows, &nr))
            printf("m2u-eval compare: %zu sources, %zu metrics -> %s/compare.{json,md,html}\n", c.n_src, nr, out);
        free(rows);
    }
    m2u_compare_free(&c);
    free(names), free(srcs);
    return rc;
}

int main(int argc, char **argv) {
    m2u_log_set(m2u_log_stderr, NULL); /* the library speaks through these two */
    m2u_progress_set_stream(stderr);
    if (argc < 2) return bad_usage(NULL, "no command given");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        if (argc > 2 && find_command(argv[2])) command_usage(stdout, argv[2]); /* m2u-eval help CMD */
        else usage(stdout);
        return 0;
    }
    const char *cmd = argv[1];
    if (!find_command(cmd)) return bad_usage(NULL, "unknown command \"%s\"", cmd);
    /* --help anywhere after the command (no option of m2u-eval takes "--help" as its value) */
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            command_usage(stdout, cmd);
            return 0;
        }
    if (strcmp(cmd, "fad") == 0) return cmd_fad(argc, argv);
    if (strcmp(cmd, "bench") == 0) return cmd_bench(argc, argv);
    if (strcmp(cmd, "music") == 0) return cmd_music(argc, argv);
    if (strcmp(cmd, "clap") == 0) return cmd_clap(argc, argv);
    if (strcmp(cmd, "kl") == 0 || strcmp(cmd, "cosine") == 0) return cmd_paired(cmd, argc, argv);
    if (strcmp(cmd, "compare") == 0) return cmd_compare(argc, argv);
    const char *cand = NULL, *refs = NULL, *out = NULL, *a = NULL, *b = NULL;
    const char *run = NULL, *config = NULL, *data = NULL, *split = NULL, *kinds = NULL, *max_samples = NULL,
               *max_new = NULL, *stage = NULL, *threads = NULL, *bert_layers = NULL, *batch = NULL, *musicgen = NULL,
               *music_out = NULL, *guidance = NULL, *seed = NULL, *seconds = NULL;
    int quiet = 0, no_verify = 0;
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i];
        if (strcmp(o, "--quiet") == 0) { quiet = 1; continue; }
        if (strcmp(o, "--no-verify") == 0) { no_verify = 1; continue; }
        if (strcmp(o, "--bert-idf") == 0) { g_bert_idf = 1; continue; }
        const char **dst = strcmp(o, "--candidates") == 0 ? &cand
                           : strcmp(o, "--references") == 0 ? &refs
                           : strcmp(o, "--out") == 0 ? &out
                           : strcmp(o, "--a") == 0 ? &a
                           : strcmp(o, "--b") == 0 ? &b
                           : strcmp(o, "--run") == 0 ? &run
                           : strcmp(o, "--config") == 0 ? &config
                           : strcmp(o, "--data") == 0 ? &data
                           : strcmp(o, "--split") == 0 ? &split
                           : strcmp(o, "--kinds") == 0 ? &kinds
                           : strcmp(o, "--max-samples") == 0 ? &max_samples
                           : strcmp(o, "--max-new-tokens") == 0 ? &max_new
                           : strcmp(o, "--stage") == 0 ? &stage
                           : strcmp(o, "--threads") == 0 ? &threads
                           : strcmp(o, "--batch") == 0 ? &batch
                           : strcmp(o, "--musicgen") == 0 ? &musicgen
                           : strcmp(o, "--music-out") == 0 ? &music_out
                           : strcmp(o, "--guidance") == 0 ? &guidance
                           : strcmp(o, "--seed") == 0 ? &seed
                           : strcmp(o, "--seconds") == 0 ? &seconds
                           : strcmp(o, "--vggish") == 0 ? &g_vggish
                           : strcmp(o, "--passt") == 0 ? &g_passt
                           : strcmp(o, "--clap") == 0 ? &g_clap
                           : strcmp(o, "--bert") == 0 ? &g_bert_dir
                           : strcmp(o, "--meteor-wordnet") == 0 ? &g_meteor_wordnet
                           : strcmp(o, "--meteor-paraphrase") == 0 ? &g_meteor_paraphrase
                           : strcmp(o, "--bert-layers") == 0 ? &bert_layers
                           : strcmp(o, "--bert-baseline") == 0 ? &g_bert_baseline : NULL;

        if (!dst) return bad_usage(cmd, "unknown option %s", o);
        if (i + 1 >= argc) return bad_usage(cmd, "%s needs a value", o);
        *dst = argv[++i];
    }
    int music_opts = musicgen || music_out || guidance || seed || seconds;
    if (music_opts && strcmp(cmd, "run") != 0)
        return bad_usage(cmd, "--musicgen, --music-out, --guidance, --seed and --seconds belong to the run command");
    if ((g_vggish || g_passt || g_clap) && (strcmp(cmd, "run") != 0 || !musicgen))
        return bad_usage(cmd, "--vggish, --passt and --clap score generated music: run --musicgen DIR (or the music "
                              "command)");
    int run_opts = run || config || data || split || kinds || max_samples || max_new || stage || threads || batch;
    if (bert_layers) {
        char *end;
        long v = strtol(bert_layers, &end, 10);
        if (*end || v < 0 || v > 1000) {
            return bad_usage(cmd, "--bert-layers needs a layer number, got '%s'", bert_layers);
        }
        g_bert_layers = (int)v;
    }
    if ((g_bert_dir || bert_layers || g_bert_idf || g_bert_baseline) && strcmp(cmd, "captions") != 0) {
        return bad_usage(cmd, "--bert, --bert-layers, --bert-idf and --bert-baseline belong to the captions command");
    }
    if ((g_meteor_wordnet || g_meteor_paraphrase) && strcmp(cmd, "captions") != 0)
        return bad_usage(cmd, "--meteor-wordnet and --meteor-paraphrase belong to the captions command");
    if ((bert_layers || g_bert_idf || g_bert_baseline) && !g_bert_dir) {
        return bad_usage("captions", "--bert-layers, --bert-idf and --bert-baseline need --bert DIR");
    }
    if (strcmp(cmd, "captions") == 0) {
        if (!cand || !refs || a || b || run_opts) {
            return bad_usage("captions", "need --candidates and --references");
        }
        return cmd_captions(cand, refs, out, quiet);
    }
    if (strcmp(cmd, "fd") == 0) {
        if (!a || !b || cand || refs || run_opts) {
            return bad_usage("fd", "need --a and --b");
        }
        return cmd_fd(a, b, out);
    }
    if (strcmp(cmd, "report") == 0) {
        if (!run || cand || refs || a || b || config || data || split || kinds || max_samples || max_new || stage ||
            threads || batch) {
            return bad_usage("report", "takes --run RUN_DIR and --out DIR only");
        }
        return cmd_report(run, out);
    }
    if (strcmp(cmd, "run") == 0) {
        if (!run || cand || refs || a || b) {
            return bad_usage("run", "need --run RUN_DIR");
        }
        m2u_eval_run_options o = {.run_dir = run, .config = config, .data = data, .split = split, .kinds = kinds,
                                  .no_verify = no_verify};
        long v;
        if (max_samples) {
            if (parse_long("--max-samples", max_samples, 1, LONG_MAX, &v)) return 2;
            o.max_samples = v;
        }
        if (max_new) {
            if (parse_long("--max-new-tokens", max_new, 1, 4096, &v)) return 2;
            o.max_new_tokens = (int)v;
        }
        if (stage) {
            if (parse_long("--stage", stage, 1, 3, &v)) return 2;
            o.stage = (int)v;
        }
        if (threads) {
            if (parse_long("--threads", threads, 1, 1024, &v)) return 2;
            o.threads = (int)v;
        }
        if (batch) {
            if (parse_long("--batch", batch, 1, 256, &v)) return 2;
            o.batch = (int)v;
        }
        if (split && strcmp(split, "test") && strcmp(split, "valid") && strcmp(split, "train")) {
            return bad_usage("run", "--split %s: expected test, valid or train", split);
        }
        if ((music_out || guidance || seed || seconds) && !musicgen)
            return bad_usage("run", "--music-out, --guidance, --seed and --seconds need --musicgen DIR");
        char *music_dflt = NULL;
        if (musicgen) {
            o.musicgen = musicgen;
            if (seed) {
                if (parse_long("--seed", seed, 0, 2147483647L, &v)) return 2;
                o.seed = v;
            }
            char *e;
            if (guidance) {
                o.guidance = strtod(guidance, &e);
                if (!*guidance || *e || !(o.guidance >= 1 && o.guidance <= 100))
                    return bad_usage("run", "--guidance %s: expected a number in [1, 100] (1: no CFG)", guidance);
            }
            if (seconds) {
                o.music_seconds = strtod(seconds, &e);
                if (!*seconds || *e || !(o.music_seconds >= 0.02 && o.music_seconds <= 3600))
                    return bad_usage("run", "--seconds %s: expected a number in [0.02, 3600]", seconds);
            }
            /* default: OUT/music, next to the report */
            if (!music_out) {
                char leaf[32];
                snprintf(leaf, sizeof leaf, "eval-%s", split ? split : "test");
                char *d = out ? NULL : default_out(run, leaf);
                if (!out && !d) return 1;
                music_dflt = m2u_path_join(out ? out : d, "music");
                free(d);
                if (!music_dflt) return 1;
            }
            o.music_dir = music_out ? music_out : music_dflt;
        }
        int rc = cmd_run(&o, out);
        free(music_dflt);
        return rc;
    }
    return bad_usage(NULL, "unknown command \"%s\"", cmd);
}
