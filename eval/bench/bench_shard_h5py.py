#!/usr/bin/env python3
"""h5py side of eval/bench/bench_dataset.sh: read every sample of an m2u dataset.

For each shard of the manifest, as the C reader (m2u_dataset_get +
m2u_dataset_get_tensor_f32) does: the small per-shard arrays (text and audio
offsets, clip bounds, attrs, the tensor's present flags) are read once when the
shard is opened, then per sample: the 12 text columns (decoded as UTF-8),
the audio and target audio slices, and the tensor row (float16 as stored) when
present.  With --batch B (> 1) it reads B consecutive samples at a time, as
m2u_shard_get_samples + m2u_shard_get_tensors_f32 do: one slice per column
for the B rows (text, audio, target audio, the tensor rows), then each
sample's text decoded and its audio summed from its part of the slice.  It
times only that loop (time.process_time / perf_counter) and writes the counts
and checksums m2u-bench-dataset compares with the C reader:

  {"samples", "bytes", "text_bytes", "audio_sum", "tensors", "cpu_s", "wall_s", "batch"}

bytes = text + 2 * audio samples + 4 * attrs + 16 (clip bounds) + tensor bytes.

Needs the zstd filter: HDF5_PLUGIN_PATH=<build>/hdf5-plugins.

usage: bench_shard_h5py.py --manifest DIR/manifest.json [--tensor mert] [--batch B] [--json OUT]
"""
import argparse
import json
import os
import sys
import time

TEXT = ["id", "source", "licence", "attribution", "split", "kind", "caption", "instruction", "answer",
        "input_text", "output_text", "analysis"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--tensor", default="mert")
    ap.add_argument("--batch", type=int, default=1, help="consecutive samples per read (default 1: per sample)")
    ap.add_argument("--json", help="write the result here (default: stdout)")
    a = ap.parse_args()
    if a.batch < 1:
        ap.error("--batch must be >= 1")

    import numpy as np
    import h5py

    c0, w0 = time.process_time(), time.perf_counter()
    with open(a.manifest) as f:
        man = json.load(f)
    root = os.path.dirname(os.path.abspath(a.manifest))
    samples = nbytes = text_bytes = audio_sum = tensors = text_chars = 0
    clip_s = 0.0
    for sh in man["shards"]:
        with h5py.File(os.path.join(root, sh["path"]), "r") as f:
            n = int(f.attrs["n_samples"])
            text = [(f["text/" + t], f["text/" + t + "_offsets"][:]) for t in TEXT]
            audio = [(f[k], f[k + "_offsets"][:]) for k in ("audio", "target_audio") if k in f]
            clip_start, clip_end = f["clip_start"][:], f["clip_end"][:]
            attrs = f["attrs"][:] if "attrs" in f else None
            feat = f.get("features/" + a.tensor)
            present = f["features/" + a.tensor + "_present"][:] if feat is not None else None
            for i0 in range(0, n if a.batch > 1 else 0, a.batch):
                i1 = min(n, i0 + a.batch)
                for d, off in text:
                    lo, hi = int(off[i0]), int(off[i1])
                    blob = d[lo:hi].tobytes() if hi > lo else b""
                    for i in range(i0, i1):
                        s = blob[int(off[i]) - lo:int(off[i + 1]) - lo].decode("utf-8")
                        text_chars += len(s)
                    text_bytes += hi - lo
                for d, off in audio:
                    lo, hi = int(off[i0]), int(off[i1])
                    x = d[lo:hi] if hi > lo else None
                    for i in range(i0, i1):
                        a_lo, a_hi = int(off[i]) - lo, int(off[i + 1]) - lo
                        if a_hi > a_lo:
                            audio_sum += int(x[a_lo:a_hi].sum(dtype=np.int64))
                    nbytes += 2 * (hi - lo)
                for i in range(i0, i1):
                    cs, ce = float(clip_start[i]), float(clip_end[i])
                    clip_s += ce - cs if ce >= cs else 0.0
                    nbytes += 16
                    if attrs is not None:
                        nbytes += 4 * attrs[i].size
                if present is not None:
                    m = feat[i0:i1]
                    k = int(present[i0:i1].astype(bool).sum())
                    tensors += k
                    nbytes += k * (m.nbytes // (i1 - i0))
            for i in range(n if a.batch == 1 else 0):
                for d, off in text:
                    lo, hi = int(off[i]), int(off[i + 1])
                    s = d[lo:hi].tobytes().decode("utf-8") if hi > lo else ""
                    text_bytes += hi - lo
                    text_chars += len(s)
                for d, off in audio:
                    lo, hi = int(off[i]), int(off[i + 1])
                    if hi > lo:
                        x = d[lo:hi]
                        audio_sum += int(x.sum(dtype=np.int64))
                    nbytes += 2 * (hi - lo)
                cs, ce = float(clip_start[i]), float(clip_end[i])
                clip_s += ce - cs if ce >= cs else 0.0  # NaN = unknown
                nbytes += 16
                if attrs is not None:
                    v = attrs[i]
                    nbytes += 4 * v.size
                if present is not None and present[i]:
                    m = feat[i]
                    tensors += 1
                    nbytes += m.nbytes
            samples += n
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    nbytes += text_bytes
    out = {"samples": samples, "bytes": nbytes, "text_bytes": text_bytes, "audio_sum": audio_sum,
           "tensors": tensors, "text_chars": text_chars, "clip_s": clip_s, "cpu_s": cpu, "wall_s": wall,
           "batch": a.batch,
           "h5py": h5py.__version__,
           "hdf5": h5py.version.hdf5_version}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f)
    else:
        json.dump(out, sys.stdout)
        print()


if __name__ == "__main__":
    main()
