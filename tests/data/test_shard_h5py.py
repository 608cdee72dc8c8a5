#!/usr/bin/env python3
"""Read a shard written by tests/test_shard.c with h5py (Debian python3-h5py)
and check the values the C test recorded in a JSON file.

usage: HDF5_PLUGIN_PATH=<build>/hdf5-plugins test_shard_h5py.py SHARD EXPECTED.json

Exit status 0 when everything matches; every mismatch is printed."""
import json
import sys

import h5py
import numpy as np

ZSTD = 32015


def main():
    path, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path, encoding="utf-8") as f:
        exp = json.load(f)
    bad = []

    def check(cond, what):
        if not cond:
            bad.append(what)

    with h5py.File(path, "r") as f:
        n = int(f.attrs["n_samples"])
        check(n == exp["n"], f"n_samples {n} != {exp['n']}")
        check(int(f.attrs["schema_version"]) == 1, "schema_version")
        check(int(f.attrs["audio_rate"]) == exp["audio_rate"], "audio_rate")
        check(isinstance(f.attrs["m2u_version"], str), "m2u_version is not a str")

        # zstd (32015) with the recorded level on every chunked dataset
        def filters_of(ds):
            pl = ds.id.get_create_plist()
            return {pl.get_filter(k)[0]: tuple(pl.get_filter(k)[2]) for k in range(pl.get_nfilters())}

        for name in exp["filtered"]:
            fl = filters_of(f[name])
            check(ZSTD in fl and fl[ZSTD][:1] == (exp["level"],), f"{name}: filters {fl}")

        i = exp["sample"]
        for col, val in exp["text"].items():
            off = f[f"text/{col}_offsets"]
            got = bytes(f[f"text/{col}"][off[i]:off[i + 1]]).decode("utf-8")
            check(got == val, f"text/{col}[{i}] = {got!r}, expected {val!r}")

        off = f["audio_offsets"][:]
        audio = f["audio"][off[i]:off[i + 1]]
        check(audio.dtype == np.int16, f"audio dtype {audio.dtype}")
        check(len(audio) == exp["audio_len"], f"audio length {len(audio)}")
        check(audio[:len(exp["audio_head"])].tolist() == exp["audio_head"], "audio head")

        check(np.isclose(f["clip_start"][i], exp["clip_start"]), "clip_start")
        names = [s if isinstance(s, str) else s.decode() for s in f["attrs"].attrs["attr_names"]]
        check(names == exp["attr_names"], f"attr_names {names}")
        check(np.allclose(f["attrs"][i], exp["attrs"]), f"attrs {f['attrs'][i]}")

        mert = f["features/mert"]
        check(mert.dtype == np.float16, f"mert dtype {mert.dtype}")
        check(list(mert.shape) == exp["mert_shape"], f"mert shape {mert.shape}")
        check(mert.chunks == (1,) + tuple(exp["mert_shape"][1:]), f"mert chunks {mert.chunks}")
        head = mert[i, 0, :len(exp["mert_head"])].astype(np.float32).tolist()
        check(head == exp["mert_head"], f"mert head {head} != {exp['mert_head']}")
        check(mert.attrs["encoder"] == exp["mert_encoder"], "mert encoder")
        check(f["features/mert_present"][i] == 1, "mert present")

        img = f["media/image"]
        check(img.dtype == np.uint8, f"image dtype {img.dtype}")
        px = img[i, 1, 2].tolist()
        check(px == exp["image_px"], f"image[{i},1,2] = {px}, expected {exp['image_px']}")
        a = exp["absent_image"]
        check(f["media/image_present"][a] == 0 and not img[a].any(), "absent image not zero / flagged")

    for b in bad:
        print("FAIL", b)
    print(f"test_shard_h5py: {'ok' if not bad else str(len(bad)) + ' failures'} (h5py {h5py.__version__})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
