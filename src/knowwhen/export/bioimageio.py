"""A run as a bioimage.io model package (model spec 0.5): the MC-dropout graph as ONNX and as a PyTorch state dict,
test tensors, the class names, and a model card written from the run.

The package's network is `PackagedMCGraph`: the run's network with T fixed masks of one seed (as `MCGraph`, the
ONNX export), returning three tensors, each (batch, channel) as bioimage.io describes outputs: `probs` (the
deterministic softmax), `probs_mc` (the MC mean p*, channels = the class names) and `measures` (channels
MEASURES). The PyTorch weights load into it with knowwhen installed (`import_from: knowwhen.export.bioimageio`);
the ONNX weights need only an ONNX runtime (deepImageJ, ilastik, QuPath, bioimageio.core).
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from .onnx import OPSET, MCGraph, graph_metadata

MEASURES = ("p_max", "p_max_mc", "sigma_mc", "entropy_mc", "mutual_info_mc", "variation_ratio_mc")
TENSORS = ("probs", "probs_mc", "measures")
CITE = {"text": "Dürr O, Murina E, Siegismund D, Tolkachev V, Steigele S, Sick B. Know when you don't know: a robust "
                "deep learning approach in the presence of unknown phenotypes. Assay Drug Dev Technol. 2018;16(6).",
        "doi": "10.1089/adt.2018.859"}


class PackagedMCGraph(nn.Module):
    """`MCGraph` rebuilt from plain settings (the run's model, normalisation, temperatures, T and seed) so that a
    state dict loads into it; forward(images) -> (probs, probs_mc, measures), each (n, channels)."""

    def __init__(self, model: str, model_args: dict, input_shape: list, classes: int, normalization: dict,
                 temperature: float, mc_temperature: float, passes: int, seed: int):
        super().__init__()
        from ..data.normalize import Normalizer
        from ..models import create_model

        self.network = create_model(model, tuple(input_shape), classes, **model_args)
        self.settings = (Normalizer.from_dict(normalization), temperature, mc_temperature, passes, seed,
                         tuple(input_shape))
        # Built on first use from the weights loaded by then (the masks fold into them); kept outside the module's
        # registry, so that the state dict is the network's alone.
        self.__dict__["graph"] = None

    def forward(self, images: torch.Tensor):
        if self.__dict__["graph"] is None:
            view = _RunView(self.network, *self.settings)
            self.__dict__["graph"] = MCGraph(view, self.settings[3], self.settings[4]).eval()
        out = self.__dict__["graph"](images)
        return out[0], out[3], torch.stack([out[1], out[4], *out[6:]], dim=1)


class _RunView:
    """What MCGraph reads of a run, from a packaged network and its settings."""

    members = 1

    def __init__(self, network, normalizer, temperature, mc_temperature, passes, seed, input_shape):
        self.model, self.normalizer, self.temperature = network.eval(), normalizer, temperature
        self.mc_temperature, self.input_shape = mc_temperature, input_shape


def packaged_graph(run, passes: int, seed: int) -> tuple[PackagedMCGraph, dict]:
    """The package's network filled with the run's weights, and the kwargs that rebuild it."""
    from ..classify.predict import applied_mc_temperature

    if run.members > 1:
        raise ConfigError("export of a deep ensemble is not supported: export one member (RUN/members/0) or a "
                          "single-network run.")
    kwargs = {"model": run.config.model.name, "model_args": dict(run.config.model.args),
              "input_shape": list(run.input_shape), "classes": len(run.class_names),
              "normalization": run.normalizer.to_dict(), "temperature": float(run.temperature),
              "mc_temperature": float(applied_mc_temperature(run, True)), "passes": passes, "seed": seed}
    graph = PackagedMCGraph(**kwargs)
    graph.network.load_state_dict(run.model.state_dict())
    return graph.eval(), kwargs


def export_bioimageio(run, out: str | Path, passes: int, seed: int, sample: np.ndarray, card: str,
                      authors: list[str], license: str = "CC-BY-4.0") -> dict:
    """Writes the bioimage.io package `out` (.zip) for `run` with T = `passes` masks of `seed`; `sample`: a few
    raw images (n, C, H, W) for the test tensors; `card`: the model card (documentation.md). Validated with
    bioimageio.spec before it is written; returns the validation summary's status and format version."""
    from ..atomic import atomic_path

    graph, kwargs = packaged_graph(run, passes, seed)
    with tempfile.TemporaryDirectory(prefix="kw-bioimageio-") as tmp:
        folder = Path(tmp)
        x = torch.as_tensor(np.ascontiguousarray(sample, np.float32))
        with torch.no_grad():
            outputs = [t.numpy() for t in graph(x)]
        import tifffile

        np.save(folder / "test_input.npy", x.numpy())
        tifffile.imwrite(folder / "sample_input.tif", x.numpy()[0])  # a human's view of one input (C, H, W)
        for name, value in zip(TENSORS, outputs):
            np.save(folder / f"test_{name}.npy", value)
            tifffile.imwrite(folder / f"sample_{name}.tif", value)
        torch.save(graph.state_dict(), folder / "weights.pt")
        _export_onnx(graph, x, folder / "model.onnx", graph_metadata(run, graph.__dict__["graph"]))
        (folder / "documentation.md").write_text(card, encoding="utf-8")
        rdf = _rdf(run, kwargs, authors, license)
        (folder / "rdf.yaml").write_text(json.dumps(rdf, indent=1), encoding="utf-8")  # JSON is YAML
        descr, summary = _validated(folder / "rdf.yaml")
        from bioimageio.spec import save_bioimageio_package

        with atomic_path(out) as target:
            target.unlink(missing_ok=True)
            save_bioimageio_package(descr, output_path=target.with_suffix(".zip"))
            shutil.move(str(target.with_suffix(".zip")), str(target))
    return {"status": summary.status, "format_version": rdf["format_version"]}


def _validated(rdf_path: Path):
    from bioimageio.spec import load_description

    descr = load_description(rdf_path)
    summary = descr.validation_summary
    if summary.status not in ("valid-format", "passed"):  # "passed" needs bioimageio.core's model test
        raise ConfigError(f"the package failed bioimageio.spec's validation ({summary.status}): "
                          f"{summary.format()[:4000]}")
    return descr, summary


def _export_onnx(graph: PackagedMCGraph, example: torch.Tensor, path: Path, metadata: dict) -> None:
    """The package's graph as ONNX, with the plain export's metadata (so `knowwhen predict` reads it alike)."""
    import onnx

    axes = {"images": {0: "n"}, **{name: {0: "n"} for name in TENSORS}}
    with torch.no_grad():
        torch.onnx.export(graph, (example,), str(path), input_names=["images"], output_names=list(TENSORS),
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False, do_constant_folding=True)
    model = onnx.load(str(path))
    for key, value in {**metadata, "outputs": ", ".join(TENSORS), "measures_channels": ", ".join(MEASURES)}.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))


def _rdf(run, kwargs: dict, authors: list[str], license: str) -> dict:
    from bioimageio.spec.model.v0_5 import ModelDescr

    c, h, w = run.input_shape
    batch = {"type": "batch"}
    channels = list(run.channel_names) or [f"channel{k}" for k in range(c)]
    classes = [str(n) for n in run.class_names]
    out = lambda name, names, what: {  # noqa: E731
        "id": name, "description": what, "axes": [batch, {"type": "channel", "channel_names": names}],
        "test_tensor": {"source": f"test_{name}.npy"}, "sample_tensor": {"source": f"sample_{name}.tif"},
        "data": {"type": "float32"}}
    return {
        "type": "model", "format_version": ModelDescr.implemented_format_version,
        "name": f"knowwhen {kwargs['model']} with MC dropout T {kwargs['passes']}"[:128],
        "description": f"Classifies {c}-channel {h}x{w} cell images into {len(classes)} classes and says how sure "
                       f"it is: MC-dropout mean probabilities and uncertainty measures ({kwargs['passes']} fixed "
                       f"masks of seed {kwargs['seed']}), exported by knowwhen.",
        "authors": [{"name": a} for a in authors], "cite": [CITE], "license": license,
        "documentation": {"source": "documentation.md"}, "tags": ["classification", "uncertainty", "mc-dropout", "knowwhen"],
        "inputs": [{"id": "images", "description": "raw pixel values; the run's normalisation is inside the model",
                    "axes": [batch, {"type": "channel", "channel_names": channels},
                             {"type": "space", "id": "y", "size": h}, {"type": "space", "id": "x", "size": w}],
                    "test_tensor": {"source": "test_input.npy"}, "sample_tensor": {"source": "sample_input.tif"},
                    "data": {"type": "float32"}}],
        "outputs": [out("probs", classes, "softmax probabilities, dropout off, at the run's temperature"),
                    out("probs_mc", classes, "MC-dropout mean probabilities p* (the MC temperature applied)"),
                    out("measures", list(MEASURES), "uncertainty measures: p_max, p_max_mc higher = surer; the others "
                        "higher = more uncertain")],
        "weights": {
            "pytorch_state_dict": {"source": "weights.pt", "pytorch_version": torch.__version__.split("+")[0],
                                   "architecture": {"callable": "PackagedMCGraph",
                                                    "import_from": "knowwhen.export.bioimageio",
                                                    "kwargs": kwargs}},
            "onnx": {"source": "model.onnx", "opset_version": OPSET, "parent": "pytorch_state_dict"}},
        "config": {"knowwhen": {"class_names": classes, "channel_names": list(run.channel_names),
                                "mc_passes": kwargs["passes"], "seed": kwargs["seed"]}},
    }


def sample_images(run, ds=None, n: int = 4) -> np.ndarray:
    """`n` raw images for the test tensors: the first of `ds`, else of the run's own test split (its validation
    split when it has no test split)."""
    if ds is None:
        from ..data import open_dataset
        from ..data.splits import split_for_config

        d = run.config.data
        ds = open_dataset(d.source, d.format, d.options, d.skip_bad)
        split = split_for_config(ds, d, run.config.seed)
        pool = split.test if len(split.test) else split.val
        return ds.images(np.sort(pool)[:n])
    return ds.images(np.arange(min(n, len(ds))))
