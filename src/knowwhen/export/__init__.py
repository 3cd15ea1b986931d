"""Sharing a run outside knowwhen: an ONNX graph that keeps its MC dropout (fixed masks folded in)."""
from .onnx import MCGraph, export_onnx

__all__ = ["MCGraph", "export_onnx"]
