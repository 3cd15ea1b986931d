"""The exported ONNX graph against `knowwhen predict` on 1,000 Fashion-MNIST test images, same masks (MC 30,
seed 0): the largest difference of every column and the time per image of each, measured in one run.
Run: .venv/bin/python benchmarks/export_onnx.py --run RUN [--mc 30] (RUN: a run trained on fashion-mnist)
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import write_result

import knowwhen as kw
from knowwhen.export import export_onnx


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--run", required=True)
    p.add_argument("--mc", type=int, default=30)
    args = p.parse_args()
    import onnxruntime as ort

    run = kw.load_run(args.run)
    path = export_onnx(run, Path(tempfile.mkdtemp()) / "m.onnx", passes=args.mc, seed=0)
    ds = kw.open_dataset("fashion-mnist")
    idx = np.arange(60000, 61000) if len(ds) > 61000 else np.arange(1000)
    x = ds.images(idx).astype(np.float32)
    session = ort.InferenceSession(str(path))
    names = [o.name for o in session.get_outputs()]
    t0 = time.perf_counter()
    out = dict(zip(names, session.run(None, {"images": x})))
    onnx_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    batches = list(kw.predict_dataset(run, ds.subset(idx), kw.run_engine(run, args.mc, seed=0), batch_size=512,
                                    progress=False))
    predict_s = time.perf_counter() - t0
    ref = {k: np.concatenate([b.measures[k] for b in batches]) for k in batches[0].measures}
    ref["probs"] = np.concatenate([b.probs for b in batches])
    diffs = {k: float(np.abs(out[k] - ref[k]).max()) for k in names if not k.startswith("pred")}
    agree = {k: float(np.mean(out[k] == ref[k])) for k in ("pred", "pred_mc")}
    write_result("export_onnx", {"run": args.run, "images": len(idx), "mc_passes": args.mc,
                                 "max_abs_difference": diffs, "argmax_agreement": agree,
                                 "onnxruntime_ms_per_image": round(1000 * onnx_s / len(idx), 3),
                                 "predict_ms_per_image": round(1000 * predict_s / len(idx), 3),
                                 "ratio_onnx_over_predict": round(onnx_s / predict_s, 3),
                                 "target": "every column within 1e-4"})


if __name__ == "__main__":
    main()
