"""The typer app of the `knowwhen` command, its shared options and its error handler (no command lives here)."""
from __future__ import annotations

import functools
import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Optional

import typer

from ..errors import ConfigError, KnowwhenError

log = logging.getLogger("knowwhen")
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Image classification that knows when it doesn't know.")


# Set by the root callback on every invocation; read only by handle_errors.
_invocation = {"debug": False}


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")):
    _invocation["debug"] = debug
    logger = logging.getLogger("knowwhen")
    if not logger.handlers:  # the library logs; the CLI shows its INFO lines on stderr
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a line is logged, not the stream of the first command (several
    commands in one process, as in tests or a notebook, each get their lines on their own stderr)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def handle_errors(fn):
    """Turns KnowwhenError into one line on stderr and exit code 2; other errors are reported as bugs."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        debug = _invocation["debug"]
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except KnowwhenError as e:
            if debug:
                traceback.print_exc()
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2)
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130)
        except Exception as e:  # noqa: BLE001 - the last line of defence: say it is a bug
            if debug:
                traceback.print_exc()
            typer.echo(f"internal error (a bug in knowwhen): {type(e).__name__}: {e}; "
                       "rerun with `knowwhen --debug ...` for the traceback.", err=True)
            raise typer.Exit(1)
    return wrapper


def parse_value(text: str):
    """'3' -> 3, '0.5' -> 0.5, '2,64,64', '(2,64,64)' and '[2,64,64]' -> (2, 64, 64), 'a,b' -> ('a', 'b'),
    'true' -> True, other JSON as JSON (lists as tuples), else the text."""
    text = text.strip()
    try:
        return _tuples(json.loads(text))
    except json.JSONDecodeError:
        pass
    if len(text) >= 2 and (text[0], text[-1]) in (("(", ")"), ("[", "]")):
        text = text[1:-1]
        return tuple(parse_value(p) for p in text.split(",") if p.strip())
    if "," in text:
        return tuple(parse_value(p) for p in text.split(","))
    return text


def _tuples(value):
    """JSON lists become tuples (model arguments such as widths are tuples), at every depth."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def parse_pairs(pairs: list[str], flag: str) -> dict:
    """['k=v', ...] -> {k: parse_value(v)}."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag} {pair!r}: write KEY=VALUE, e.g. {flag} image_shape=2,64,64.")
        out[key.strip()] = parse_value(value.strip())
    return out


DATA_FORMAT = typer.Option(None, "--format", help="Force the format: idx, folder, csv, npz, hdf5, deeploc, "
                          "cellprofiler, omezarr.")
DATA_OPTION = typer.Option(None, "--option", help="Format option KEY=VALUE (x_key, y_key, channels, "
                           "image_shape, class_names, channel_names=GFP,RFP); repeatable.")
SKIP_BAD = typer.Option(False, "--skip-bad", help="Skip unreadable images (each is listed) instead of stopping.")


OBJECTS = typer.Option(None, "--objects", help="Object table: one cell is cut around each object from the fields "
                       "of DATA (a CellProfiler load_data.csv, with Nuclei.csv: ImageNumber, Location_Center_X/Y; or "
                       "an OME-Zarr plate, with a table keyed by Metadata_Well and Metadata_Site; without it, a "
                       "plate's label images).")
CROP_SIZE = typer.Option(None, "--crop-size", help="Side in pixels of the crops cut from fields (default: the run's "
                         "input size).")
EDGE = typer.Option("pad", "--edge", help="Objects whose crop leaves the field: pad (with zeros) or skip; counted "
                    "either way.")
PRECISION = typer.Option("fp32", help="The network's arithmetic: fp32, bf16, or auto (bf16 where the CPU or GPU "
                         "computes it natively, else fp32; says which). The measures stay fp32.")
LABEL_COLUMN = typer.Option(None, "--label-column", help="Column of the object (or load_data) table holding each "
                            "cell's class, e.g. Metadata_Class.")


def data_options(options: list[str], fields=None) -> dict:
    """The format options: the --option pairs, with the fields' flags (--objects, --crop-size, ...) that were given."""
    out = parse_pairs(options, "--option")
    given = {} if fields is None else {k: v for k, v in vars(fields).items() if v is not None}
    if given.get("edge") == "pad":
        del given["edge"]  # the default: left out, so that data that is not fields takes no field option
    if "objects" in given:
        given["objects"] = str(Path(given["objects"]).resolve())  # saved in a run's config: valid from any folder
    return {**out, **given}


def open_data(data: str, fmt: Optional[str], options: list[str], skip_bad: bool, fields=None, run=None):
    """The dataset DATA names, with the --format, --option, --skip-bad and field flags (`FieldOptions`) the user
    gave; with a run, crops from fields are the run's input size unless --crop-size says otherwise, and named
    channels are taken in the run's order."""
    from ..data import open_dataset
    from ..data.open import FIELD_FORMATS, detect_format

    opened = data_options(options, fields)
    if run is not None and "crop_size" not in opened and Path(data).exists() and \
            (fmt or detect_format(Path(data))) in FIELD_FORMATS:
        opened["crop_size"] = int(run.input_shape[-1])
        log.info("%s: crops of %d px, the run's input size", data, opened["crop_size"])
    ds = open_dataset(data, fmt, opened, skip_bad)
    return ds if run is None else ds.in_channel_order(run.channel_names)


QUIET = typer.Option(False, help="No progress bar.")

# The options of OptimConfig and of the run directory that `train` and `forecast train` share.
LR = typer.Option(1e-3, help="Learning rate.")
OPTIMIZER = typer.Option("adam", help="adam or sgd.")
WEIGHT_DECAY = typer.Option(0.0, help="L2 weight decay.")
MAX_MINUTES = typer.Option(None, help="Stop after this many minutes (best epoch kept).")
RESUME = typer.Option(False, help="Continue an interrupted run in --out: alone (its saved settings are used), or "
                      "with the original command's data and options.")
OVERWRITE = typer.Option(False, help="Replace a run already in --out.")


CONFORMAL = typer.Option(None, "--conformal", help="Add conformal prediction sets (columns set, set_size, set_flag) "
                         "with this score: lac, aps or raps (needs the run's calibration images).")
ALPHA = typer.Option(None, "--alpha", help="Conformal sets hold the true class with probability >= 1 - alpha "
                     "[default: 0.1].")
BY_CLASS = typer.Option(False, "--by-class", help="One conformal threshold per class: coverage for every class.")
CONFORMAL_PROBS = typer.Option(None, "--conformal-probs", help="Probabilities the sets score: softmax or mc "
                               "[default: mc with --mc, else softmax].")
MAX_SET_SIZE = typer.Option(None, "--max-set-size", help="Flag sets larger than this (and empty ones) in set_flag "
                            "[default: min(3, classes - 1)].")


def conformal_options(method: Optional[str], alpha: Optional[float], by_class: bool, probs: Optional[str],
                      max_size: Optional[int]):
    """The ConformalOptions the flags ask for, or None without --conformal (then the other flags are refused, even
    when given their default value: a flag that changes nothing must not pass unnoticed)."""
    from ..classify.sets import ConformalOptions

    if method is None:
        if by_class or probs or max_size is not None or alpha is not None:
            raise ConfigError("--alpha, --by-class, --conformal-probs and --max-set-size set up conformal sets: add "
                              "--conformal aps (or lac, raps).")
        return None
    return ConformalOptions(method=method, alpha=0.1 if alpha is None else alpha, by_class=by_class, probs=probs,
                            max_size=max_size)
