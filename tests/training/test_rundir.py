import json
import shutil

import pytest

import knowwhen as kw


@pytest.fixture
def run_copy(digits_run, tmp_path):
    return shutil.copytree(digits_run, tmp_path / "run")


def test_run_gives_back_model_classes_and_preprocessing(digits_run):
    run = kw.load_run(digits_run)
    assert run.class_names == tuple("0123456789") and run.input_shape == (1, 8, 8)
    assert run.config.model.name == "cnn" and not run.model.training
    assert len(run.normalizer.mean) == 1 and run.normalizer.std[0] > 0
    assert sorted(p.name for p in digits_run.iterdir()) == ["calibration.safetensors", "config.json", "features.safetensors",
                                                     "metrics.csv", "model.safetensors", "reference.safetensors"]


def test_missing_and_foreign_runs(tmp_path, run_copy):
    with pytest.raises(kw.CheckpointError, match="no such run directory"):
        kw.load_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(kw.CheckpointError, match="not a knowwhen run"):
        kw.load_run(tmp_path / "empty")
    (run_copy / "config.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(kw.CheckpointError, match="not a knowwhen run config"):
        kw.load_run(run_copy)


def test_newer_format_version_is_refused(run_copy):
    cfg = json.loads((run_copy / "config.json").read_text())
    cfg["format_version"] = 99
    (run_copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(kw.CheckpointError, match="newer.*upgrade knowwhen"):
        kw.load_run(run_copy)


def test_missing_corrupt_or_mismatched_weights(run_copy, tmp_path):
    weights = run_copy / "model.safetensors"
    weights.write_bytes(b"\x00" * 40)
    with pytest.raises(kw.CheckpointError, match="not a readable safetensors"):
        kw.load_run(run_copy)
    weights.unlink()
    with pytest.raises(kw.CheckpointError, match="missing"):
        kw.load_run(run_copy)
    other = kw.train(kw.TrainConfig(kw.DataConfig("digits"), kw.ModelConfig("mlp"), epochs=1, progress=False),
                     tmp_path / "other")
    shutil.copy(other / "model.safetensors", weights)
    with pytest.raises(kw.CheckpointError, match="do not match"):
        kw.load_run(run_copy)


def test_loading_never_unpickles(run_copy, monkeypatch):
    import pickle

    def forbidden(*a, **k):
        raise AssertionError("unpickling during load_run")
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr("torch.load", forbidden)
    assert kw.load_run(run_copy).class_names


def test_config_json_round_trips_to_the_same_dataclass(digits_run):
    from knowwhen.config import TrainConfig, config_from_dict, config_to_dict

    run = kw.load_run(digits_run)
    assert config_from_dict(TrainConfig, config_to_dict(run.config)) == run.config
