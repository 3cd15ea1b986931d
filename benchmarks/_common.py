"""Shared bits of the benchmark scripts: machine description and result files."""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    return {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def write_result(name: str, result: dict) -> Path:
    """Writes benchmarks/results/<name>.json (atomically) and returns the path."""
    from knowwhen.atomic import write_text_atomic

    result = {"benchmark": name, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(), **result}
    path = RESULTS / f"{name}.json"
    write_text_atomic(path, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return path
