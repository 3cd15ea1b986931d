"""The arithmetic precision of prediction: fp32, or bf16 where the hardware computes it natively.

In bf16 the network's layers (the convolutions before the first dropout and the folded dense products of the MC
passes) run under torch's autocast, which keeps fp32 accumulation inside oneDNN's / cuBLAS's bf16 kernels; their
outputs (logits, features) are cast back to fp32 before anything else: the softmax, the temperatures, the MC
measures and the feature statistics stay fp32. Where the hardware has no bf16 units autocast emulates them and is
slower than fp32, so `auto` chooses bf16 only where they are native (AVX512-BF16 or AMX on a CPU; a GPU that
supports bf16) and says which it chose.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import torch

from .errors import ConfigError

log = logging.getLogger("knowwhen")
PRECISIONS = ("fp32", "bf16", "auto")
NATIVE_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux's /proc/cpuinfo); empty where they cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[1].split()}


def native_bf16(device: str | torch.device = "cpu", flags: set[str] | None = None) -> tuple[bool, str]:
    """(whether `device` computes bf16 natively, why), from the CPU's flags (`flags` to simulate a machine) or the
    GPU's capability."""
    device = torch.device(device)
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return ok, f"{torch.cuda.get_device_name(device)} {'supports' if ok else 'does not support'} bf16"
    flags = cpu_flags() if flags is None else flags
    found = [f for f in NATIVE_CPU_FLAGS if f in flags]
    return bool(found), (f"the CPU has {', '.join(found)}" if found else
                         "the CPU has neither avx512_bf16 nor amx_bf16 (bf16 would be emulated, slower than fp32)")


def check_precision(precision: str) -> None:
    """A ConfigError unless `precision` is one of PRECISIONS."""
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision {precision!r}: use one of {', '.join(PRECISIONS)}.")


def resolved_precision(precision: str, device: str | torch.device = "cpu", flags: set[str] | None = None) -> str:
    """"fp32" or "bf16" for a requested `precision` (fp32, bf16 or auto), logged with the reason."""
    check_precision(precision)
    if precision == "fp32":
        return "fp32"
    ok, why = native_bf16(device, flags)
    chosen = "bf16" if precision == "bf16" or ok else "fp32"
    if precision == "bf16" and not ok:
        log.warning("precision bf16 as asked, but %s: it is emulated and slower than fp32", why)
    else:
        log.info("precision %s (%s%s)", chosen, why, "; --precision auto" if precision == "auto" else "")
    return chosen


def autocast(precision: str, device: str | torch.device = "cpu"):
    """A context in which the network runs at `precision` ("fp32": nothing changes)."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
