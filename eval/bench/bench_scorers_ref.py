#!/usr/bin/env python3
"""The Python side of eval/bench/bench_scorers.sh: data, random full-size checkpoints, the
reference scorers (timed), and the report.

Each subcommand runs in its own process: the fixture modules whose reference pipelines are
reused here patch the interpreter differently (tests/make_vggish_fixtures.py stubs `soundfile`
and `resampy` for torchvggish, tests/make_passt_fixtures.py installs a pure-Python `torchaudio`
for hear21passt), so they cannot share one.

  data    --out DIR --clips N [--seed S]     DIR/ref/*.wav, DIR/gen/*.wav (same stems), DIR/pairs.jsonl
  make-vggish FILE | make-passt FILE | make-clap DIR      random full-size checkpoints
  fad  --vggish FILE --ref DIR --gen DIR --threads T --json OUT   fad_pytorch 0.0.6's vggish path
  kl   --passt FILE --ref DIR --gen DIR --threads T --json OUT    M2UGen's KL (hear21passt PaSST)
  clap --clap DIR --audio DIR --captions JSONL --threads T --json OUT   ClapModel's CLAP score
  time --json OUT --stdout FILE -- CMD...     wall and CPU (user + sys) seconds of CMD
  report --dir DIR --json OUT                the table, agreement, ratios

The reference timings start before the checkpoint is loaded and stop after the score (the
interpreter's start and `import torch` are not counted); m2u's are the whole process.

Versions: those of the fixture scripts it imports (torch 2.15.0, transformers 4.46.3,
tokenizers 0.20.3, fad_pytorch 0.0.6, torchvggish 0.2, torchaudio 2.5.1 source, hear21passt
0.0.26, timm 0.4.12, librosa 0.10.1, soxr 0.3.7, numpy 1.26.4); they refuse others.
"""
import argparse
import json
import math
import os
import re
import resource
import subprocess
import sys
import time
import wave

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import numpy as np  # noqa: E402

AUDIO_EXT = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")

# ---------------------------------------------------------------- data
INSTRUMENTS = ["piano", "electric piano", "organ", "synth lead", "plucked guitar", "marimba", "strings"]
MOODS = ["calm", "upbeat", "melancholic", "energetic", "dreamy", "dark", "playful"]
DRUMS = ["soft drums", "a steady kick and snare", "busy hi-hats", "no drums", "a four-on-the-floor beat"]
KEYS = ["C", "D", "E", "F", "G", "A", "B"]


def music_clip(rng, rate, channels, seconds=10.0):
    """Music-like audio: a chord pad, a bass line, a melody of harmonic notes with envelopes
    and a drum pattern (sine kick, noise snare and hi-hat), at a random tempo and key."""
    n = int(round(rate * seconds))
    t = np.arange(n) / rate
    bpm = rng.uniform(70, 150)
    beat = 60.0 / bpm
    root = 110.0 * 2 ** (rng.integers(0, 12) / 12)
    minor = rng.random() < 0.5
    scale = np.array([0, 2, 3, 5, 7, 8, 10] if minor else [0, 2, 4, 5, 7, 9, 11])
    timbre = rng.uniform(0.2, 0.8, 6) ** np.arange(1, 7)  # harmonic amplitudes
    x = np.zeros(n)

    def note(f, start, dur, amp):
        a, b = int(start * rate), min(n, int((start + dur) * rate))
        if a >= n or b <= a:
            return
        tt = t[a:b] - start
        env = np.minimum(1, tt / 0.01) * np.exp(-tt * rng.uniform(1.5, 4.0))
        tone = sum(h * np.sin(2 * np.pi * f * (k + 1) * tt) for k, h in enumerate(timbre) if f * (k + 1) < rate / 2.2)
        x[a:b] += amp * env * tone

    bar = 4 * beat
    for s in np.arange(0, seconds, bar):  # chords and bass, one per bar
        degree = rng.integers(0, 7)
        for d in (0, 2, 4):
            semis = scale[(degree + d) % 7] + 12 * ((degree + d) // 7)
            note(2 * root * 2 ** (semis / 12), s, bar, 0.08)
        note(root / 2 * 2 ** (scale[degree] / 12), s, bar, 0.2)
    s = 0.0
    while s < seconds:  # melody
        dur = beat * rng.choice([0.5, 1, 1, 2])
        semis = scale[rng.integers(0, 7)] + 12 * rng.integers(1, 3)
        note(root * 2 ** (semis / 12), s, dur, 0.15)
        s += dur
    if rng.random() < 0.8:  # drums
        for k, s in enumerate(np.arange(0, seconds, beat / 2)):
            a = int(s * rate)
            m = min(n - a, int(0.2 * rate))
            tt = np.arange(m) / rate
            if k % 4 == 0:
                x[a:a + m] += 0.5 * np.sin(2 * np.pi * (50 + 80 * np.exp(-tt * 30)) * tt) * np.exp(-tt * 15)
            if k % 4 == 2:
                x[a:a + m] += 0.2 * rng.standard_normal(m) * np.exp(-tt * 25)
            x[a:a + m] += 0.05 * rng.standard_normal(m) * np.exp(-tt * 80)
    x += 0.003 * rng.standard_normal(n)
    x *= rng.uniform(0.4, 0.9) / max(1e-9, np.abs(x).max())
    out = [x]
    for c in range(1, channels):  # a slightly different mix per channel
        out.append(np.roll(x, int(rng.integers(1, 200))) * rng.uniform(0.8, 1.0))
    caption = (f"{rng.choice(MOODS)} {rng.choice(INSTRUMENTS)} music in {KEYS[int(rng.integers(0, 7))]} "
               f"{'minor' if minor else 'major'} with {rng.choice(DRUMS)}, {int(bpm)} BPM")
    return np.stack(out, 1), caption


def write_wav(path, x, rate):
    pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def cmd_data(a):
    for side in ("ref", "gen"):
        os.makedirs(os.path.join(a.out, side), exist_ok=True)
    pairs = []
    for i in range(a.clips):
        # mostly 48 kHz; clips 1, 11, 21... at 44.1 kHz and 2, 12, 22... at 32 kHz exercise the
        # resamplers (FAD: to 16 kHz, KL: to 32 kHz, CLAP: to 48 kHz); every third is stereo
        rate = 44100 if i % 10 == 1 else 32000 if i % 10 == 2 else 48000
        channels = 2 if i % 3 == 0 else 1
        name = f"clip_{i:04d}.wav"
        for k, side in enumerate(("ref", "gen")):
            x, cap = music_clip(np.random.default_rng([a.seed, i, k]), rate, channels)
            write_wav(os.path.join(a.out, side, name), x, rate)
        pairs.append({"audio": name, "caption": cap})
    with open(os.path.join(a.out, "pairs.jsonl"), "w") as f:
        for p in pairs:
            f.write(json.dumps(p) + "\n")
    print(f"{a.clips} reference + {a.clips} generated ten-second clips and captions in {a.out}")


def audio_files(d):
    return sorted(os.path.join(r, f) for r, _, fs in os.walk(d) for f in fs if f.lower().endswith(AUDIO_EXT))


# ---------------------------------------------------------------- checkpoints
def cmd_make_vggish(a):
    import torch
    import make_vggish_fixtures as V
    torch.manual_seed(0)
    m = V.he_init_(V.VGG(V.make_layers([64, 128, 256, 256, 512, 512]), 512 * 4 * 6, 4096, 4096, 128))
    n = sum(p.numel() for p in m.parameters())
    assert n == 72141184, n  # torchvggish's VGG (make_vggish_fixtures checks the layout against it)
    torch.save(m.state_dict(), a.out)
    print(f"random VGGish ({n} parameters, torchvggish state dict) -> {a.out}")


def cmd_make_passt(a):
    import torch
    import make_passt_fixtures as P
    from hear21passt.models.passt import get_model
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):  # get_model prints the whole module tree
        net = get_model(arch="passt_s_swa_p16_128_ap476", pretrained=False, n_classes=527, in_channels=1,
                        fstride=10, tstride=10, input_fdim=128, input_tdim=998)
    # the fixture's head scale (0.8 at width 36) kept per unit of width: class probabilities
    # neither uniform nor one-hot
    P.randomize_(net, head_std=0.8 * math.sqrt(36 / 768), seed=2)
    torch.save(net.state_dict(), a.out)
    n = sum(p.numel() for p in net.parameters())
    print(f"random PaSST passt_s_swa_p16_128_ap476 ({n} parameters, hub state dict) -> {a.out}")


def cmd_make_clap(a):
    import torch
    import transformers
    import make_clap_fixtures as C
    torch.manual_seed(0)
    # a byte-level BPE trained here (huggingface.co is out of reach) on music_clip's caption
    # words and the fixture's sentences (any caption still tokenises: byte-level); RoBERTa's
    # 50,265 tokens are kept as the model's vocab_size, so the embedding table has its real
    # size (ids above the tokenizer's are unused)
    corpus = INSTRUMENTS + MOODS + DRUMS + KEYS + ["music in", "minor", "major", "with", "BPM"] + C.CORPUS
    fast = C.train_tokenizer(corpus, 2000, 512)
    fast.save_pretrained(a.out)
    # ClapConfig's defaults are laion/clap-htsat-unfused's sizes: HTSAT-tiny (patch 4, window 8,
    # depths 2/2/6/2, heads 4/8/16/32, 96 -> 768 wide, spec 256) and RoBERTa-base (12 x 768,
    # 514 positions), projections to 512
    cfg = transformers.ClapConfig(projection_dim=512)
    assert cfg.audio_config.depths == [2, 2, 6, 2] and cfg.text_config.hidden_size == 768
    assert cfg.text_config.vocab_size == 50265 and not cfg.audio_config.enable_fusion
    model = C.randomize_(transformers.ClapModel(cfg).eval(), np.random.default_rng(0))
    model.save_pretrained(a.out, safe_serialization=True)
    C.feature_extractor(10).save_pretrained(a.out)
    n = sum(p.numel() for p in model.parameters())
    print(f"random ClapModel ({n} parameters; tokenizer: byte-level BPE, {len(fast)} tokens) -> {a.out}")


# ---------------------------------------------------------------- reference scorers
def threads(a):
    import torch
    torch.set_num_threads(a.threads)


def done(a, t0, c0, score, **extra):
    r = {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0, "score": score, **extra}
    with open(a.json, "w") as f:
        json.dump(r, f, indent=1)
    print(f"  reference: {r['seconds']:.2f} s wall, {r['cpu_seconds']:.2f} s CPU, score {score!r}")


def cmd_fad(a):
    import shutil
    import tempfile
    import torch
    import make_vggish_fixtures as V
    threads(a)
    t0, c0 = time.perf_counter(), time.process_time()
    # fad_pytorch setup_embedder('vggish'): torchvggish's VGG, postprocess off, final ReLU dropped
    model = V.VGG(V.make_layers([64, 128, 256, 256, 512, 512]), 512 * 4 * 6, 4096, 4096, 128)
    model.load_state_dict(torch.load(a.vggish, map_location="cpu"))
    model.embeddings = torch.nn.Sequential(*list(model.embeddings.children())[:-1])
    model.eval()
    tmp = tempfile.mkdtemp(prefix="fad_emb_", dir=os.path.dirname(a.json))
    try:
        # fad_embed: load + Resample to 16 kHz + PadCrop 2^18 + 10 chunks + one forward each, .pt per batch
        for side, d in (("ref", a.ref), ("gen", a.gen)):
            rows, _, _ = V.embed_set(model, audio_files(d), os.path.join(tmp, side))
            if a.dump:  # the rows, for the report's row-by-row comparison with m2u's --dump-*
                np.save(f"{a.dump}_{side}.npy", rows)
        fad = V.fad_score(os.path.join(tmp, "ref"), os.path.join(tmp, "gen"))  # fad_score: maji, NS-20
    finally:
        shutil.rmtree(tmp)
    done(a, t0, c0, fad)


def cmd_kl(a):
    import torch
    import make_passt_fixtures as P
    from hear21passt.models.passt import get_model
    import contextlib
    import io
    threads(a)
    t0, c0 = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        net = get_model(arch="passt_s_swa_p16_128_ap476", pretrained=False, n_classes=527, in_channels=1,
                        fstride=10, tstride=10, input_fdim=128, input_tdim=998)
    net.load_state_dict(torch.load(a.passt, map_location="cpu"))
    model = P.wrapper(net.eval())  # get_basic_model(mode="logits")'s front end around it
    gen = {os.path.splitext(os.path.basename(f))[0]: f for f in audio_files(a.gen)}
    kls = []
    with torch.no_grad():
        for f in audio_files(a.ref):
            g = gen.get(os.path.splitext(os.path.basename(f))[0])
            if g:  # librosa.load(sr=32000)[:320000], PaSST logits, softmax, KL
                kls.append(P.m2ugen_kl(model, torch.from_numpy(P.load(f))[None], torch.from_numpy(P.load(g))[None]))
    done(a, t0, c0, float(np.mean(kls)), pairs=len(kls))


def cmd_clap(a):
    import librosa
    import torch
    import transformers
    threads(a)
    t0, c0 = time.perf_counter(), time.process_time()
    model = transformers.ClapModel.from_pretrained(a.clap).eval()
    fe = transformers.ClapFeatureExtractor.from_pretrained(a.clap)
    tok = transformers.AutoTokenizer.from_pretrained(a.clap)
    cos = []
    real_randint = np.random.randint
    np.random.randint = lambda lo, hi=None, *x, **k: 0  # rand_trunc's crop at offset 0, as m2u (clips are 10 s anyway)
    try:
        with torch.no_grad():
            for line in open(a.captions):
                p = json.loads(line)
                wav, _ = librosa.load(os.path.join(a.audio, p["audio"]), sr=fe.sampling_rate)
                feats = fe(wav, sampling_rate=fe.sampling_rate, return_tensors="pt")
                ea = model.get_audio_features(input_features=feats["input_features"])
                et = model.get_text_features(**tok(p["caption"], return_tensors="pt"))
                cos.append(float(torch.nn.functional.cosine_similarity(ea, et)[0]))
    finally:
        np.random.randint = real_randint
    done(a, t0, c0, float(np.mean(cos)), pairs=len(cos))


# ---------------------------------------------------------------- timing of m2u, report
def cmd_time(a):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(a.stdout, "w") as out:
        rc = subprocess.run(a.cmd, stdout=out).returncode
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    text = open(a.stdout).read()
    pats = {"fad": r"frechet distance ([-+0-9.eE]+)", "kl": r"KL \(PaSST\) = ([-+0-9.eE]+)", "clap": r"^CLAP ([-+0-9.eE]+)"}
    m = re.search(pats[a.scorer], text, re.M)
    with open(a.json, "w") as f:
        json.dump({"seconds": wall, "cpu_seconds": cpu, "rc": rc, "score": float(m.group(1)) if m else None}, f, indent=1)
    print(f"  m2u:       {wall:.2f} s wall, {cpu:.2f} s CPU, score {float(m.group(1)) if m else None!r}")
    if rc != 0 or not m:
        sys.exit(f"bench_scorers: m2u-eval {a.scorer} failed (exit {rc}); its output: {a.stdout}")


# the tolerances the tests use (tests/eval/test_fad_vggish.c, test_passt_kl.c, test_clap_score.c)
TOL = {"fad": ("relative", 1e-4), "kl": ("absolute", 1e-5), "clap": ("absolute", 1e-5)}
NAMES = {"fad": "FAD (VGGish)", "kl": "KL (PaSST)", "clap": "CLAP score"}
TOL_ROWS = 1e-5  # test_fad_vggish.c: every embedding within 1e-5 of the largest |value|


def fad_rows_check(d):
    """m2u's and fad_embed's VGGish rows compared one by one, and the exact (float64 sqrtm)
    Frechet distance of each side's rows.  fad_score's float32 Newton-Schulz square root is
    ill-conditioned when a set has no more rows than dimensions (fewer than 13 clips: 10 rows
    per clip, 128 dimensions, a singular covariance), so with few clips the two NS-20 numbers
    may differ beyond the test's 1e-4 while the embeddings and exact distances agree."""
    import scipy.linalg

    def fd(a, b):
        a, b = a.astype(np.float64), b.astype(np.float64)
        s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        c = scipy.linalg.sqrtm(s1 @ s2).real
        return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * c))

    m = {s: np.load(os.path.join(d, f"m2u_fad_{s}.npy")) for s in ("ref", "gen")}
    r = {s: np.load(os.path.join(d, f"ref_fad_{s}.npy")) for s in ("ref", "gen")}
    if any(m[s].shape != r[s].shape for s in m):
        return {"rows_agree": False, "why": f"shapes differ: m2u {m['ref'].shape} {m['gen'].shape}, "
                                           f"reference {r['ref'].shape} {r['gen'].shape}"}
    rows = max(float(np.abs(m[s] - r[s]).max() / np.abs(r[s]).max()) for s in m)
    em, er = fd(m["ref"], m["gen"]), fd(r["ref"], r["gen"])
    return {"rows_max_difference_rel": rows, "rows_agree": rows <= TOL_ROWS, "exact_fd_m2u": em, "exact_fd_ref": er,
            "exact_fd_difference_rel": abs(em - er) / abs(er),
            "rank_deficient": min(len(m["ref"]), len(m["gen"])) <= m["ref"].shape[1]}


def cmd_report(a):
    rows, tm, tr, tmc, trc, agree = {}, 0.0, 0.0, 0.0, 0.0, True
    meta = json.load(open(os.path.join(a.dir, "meta.json")))
    print(f"\n{meta['clips']} reference + {meta['clips']} generated ten-second clips, {meta['threads']} thread(s); "
          f"load average at the start {meta['load']}")
    print(f"{'scorer':<14}{'m2u s':>9}{'ref s':>9}{'ratio':>8}{'m2u CPU':>9}{'ref CPU':>9}{'ratio':>8}"
          f"{'m2u score':>16}{'ref score':>16}  agreement")
    for k in ("fad", "kl", "clap"):
        m, r = (json.load(open(os.path.join(a.dir, f"{s}_{k}.json"))) for s in ("m2u", "ref"))
        kind, tol = TOL[k]
        diff = abs(m["score"] - r["score"]) / (abs(r["score"]) if kind == "relative" else 1)
        ok = diff <= tol
        extra = {}
        if k == "fad":
            extra = fad_rows_check(a.dir)
            # with a singular covariance only the embeddings and the exact distance can be compared
            ok = extra["rows_agree"] and (ok or (extra.get("rank_deficient", False)
                                                and extra["exact_fd_difference_rel"] <= tol))
        agree &= ok
        rows[k] = {"m2u_seconds": m["seconds"], "ref_seconds": r["seconds"], "ratio": r["seconds"] / m["seconds"],
                   "m2u_cpu_seconds": m["cpu_seconds"], "ref_cpu_seconds": r["cpu_seconds"],
                   "cpu_ratio": r["cpu_seconds"] / m["cpu_seconds"], "m2u_score": m["score"], "ref_score": r["score"],
                   f"{kind}_difference": diff, "tolerance": tol, "agree": ok, **extra}
        tm, tr, tmc, trc = tm + m["seconds"], tr + r["seconds"], tmc + m["cpu_seconds"], trc + r["cpu_seconds"]
        x = rows[k]
        print(f"{NAMES[k]:<14}{x['m2u_seconds']:>9.2f}{x['ref_seconds']:>9.2f}{x['ratio']:>7.2f}x"
              f"{x['m2u_cpu_seconds']:>9.2f}{x['ref_cpu_seconds']:>9.2f}{x['cpu_ratio']:>7.2f}x"
              f"{x['m2u_score']:>16.8g}{x['ref_score']:>16.8g}  {kind} diff {diff:.2g} "
              f"({'within' if diff <= tol else 'OUTSIDE'} {tol:g})")
        if k == "fad" and "why" in extra:
            print(f"{'':<14}embeddings: {extra['why']}")
        elif k == "fad":
            print(f"{'':<14}embeddings: max difference {extra['rows_max_difference_rel']:.2g} of the largest value "
                  f"({'within' if extra['rows_agree'] else 'OUTSIDE'} {TOL_ROWS:g}); exact Frechet distance of the "
                  f"rows {extra['exact_fd_m2u']:.8g} vs {extra['exact_fd_ref']:.8g} "
                  f"(relative diff {extra['exact_fd_difference_rel']:.2g})"
                  + ("; fewer rows than dimensions: fad_score's NS-20 is ill-conditioned here, the exact "
                     "distances decide" if extra["rank_deficient"] else ""))
    total = {"m2u_seconds": tm, "ref_seconds": tr, "ratio": tr / tm, "m2u_cpu_seconds": tmc, "ref_cpu_seconds": trc,
             "cpu_ratio": trc / tmc}
    print(f"{'total':<14}{tm:>9.2f}{tr:>9.2f}{tr / tm:>7.2f}x{tmc:>9.2f}{trc:>9.2f}{trc / tmc:>7.2f}x")
    print("ratio = reference time / m2u time (> 1: m2u is faster); goal (issue 15): total >= 2x."
          " m2u: whole process; reference: checkpoint load + scoring (no interpreter start, no imports).")
    with open(a.json, "w") as f:
        json.dump({**meta, "scorers": rows, "total": total, "all_agree": agree}, f, indent=1)
    print(f"agreement of the three scores within the tests' tolerances: {'yes' if agree else 'NO'}")
    print(f"written: {a.json}")
    if not agree:
        sys.exit("bench_scorers: m2u and the reference disagree beyond the tests' tolerance (see above)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("data"); p.add_argument("--out", required=True); p.add_argument("--clips", type=int, required=True)
    p.add_argument("--seed", type=int, default=15); p.set_defaults(f=cmd_data)
    for name, f in (("make-vggish", cmd_make_vggish), ("make-passt", cmd_make_passt), ("make-clap", cmd_make_clap)):
        p = sub.add_parser(name); p.add_argument("out"); p.set_defaults(f=f)
    for name, f, model_opt in (("fad", cmd_fad, "--vggish"), ("kl", cmd_kl, "--passt"), ("clap", cmd_clap, "--clap")):
        p = sub.add_parser(name); p.add_argument(model_opt, required=True); p.set_defaults(f=f)
        p.add_argument("--threads", type=int, required=True); p.add_argument("--json", required=True)
        if name == "clap":
            p.add_argument("--audio", required=True); p.add_argument("--captions", required=True)
        else:
            p.add_argument("--ref", required=True); p.add_argument("--gen", required=True)
        if name == "fad":
            p.add_argument("--dump", help="write the embeddings to DUMP_ref.npy and DUMP_gen.npy")
    p = sub.add_parser("time"); p.add_argument("--json", required=True); p.add_argument("--stdout", required=True)
    p.add_argument("--scorer", choices=["fad", "kl", "clap"], required=True); p.add_argument("cmd", nargs="+")
    p.set_defaults(f=cmd_time)
    p = sub.add_parser("report"); p.add_argument("--dir", required=True); p.add_argument("--json", required=True)
    p.set_defaults(f=cmd_report)
    a = ap.parse_args()
    a.f(a)


if __name__ == "__main__":
    main()
