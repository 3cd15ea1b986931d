import json

import pytest

from knowwhen import AugmentConfig, ConfigError, DataConfig, TrainConfig
from knowwhen.config import config_from_dict, load_train_config


@pytest.mark.parametrize("kwargs, match", [
    ({"lr": -1}, "`lr` is -1"), ({"optimizer": "rmsprop"}, "adam, sgd"), ({"loss": "mse"}, "cross_entropy, hinge"),
    ({"epochs": 0}, "`epochs`"), ({"batch_size": 0}, "`batch_size`"), ({"momentum": 1.5}, "`momentum`"),
])
def test_bad_values_name_the_field_and_the_fix(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(DataConfig("digits"), **kwargs)


def test_bad_data_and_augment_values():
    with pytest.raises(ConfigError, match="val_fraction"):
        DataConfig("x", val_fraction=1.5)
    with pytest.raises(ConfigError, match="clip_percentiles"):
        DataConfig("x", clip_percentiles=(99, 1))
    with pytest.raises(ConfigError, match="rotation"):
        AugmentConfig(rotation=500)


def test_unknown_and_missing_keys_in_json(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"data": {"source": "digits"}, "epochz": 3}))
    with pytest.raises(ConfigError, match=r"c\.json: unknown key\(s\) epochz"):
        load_train_config(path)
    with pytest.raises(ConfigError, match="missing key.*source"):
        config_from_dict(TrainConfig, {"data": {}})
    path.write_text(json.dumps({"data": {"source": "digits", "holdout_classes": ["3"]}, "epochs": 2}))
    cfg = load_train_config(path)
    assert cfg.epochs == 2 and cfg.data.holdout_classes == ("3",)


def test_options_objects_are_built_with_keywords_only():
    """Options cross layer boundaries by name: a positional value (which field was it?) is refused."""
    import knowwhen as kw
    from knowwhen.data import FieldOptions
    from knowwhen.screen import ScreenOptions

    for cls, first in ((kw.PredictOptions, 100), (ScreenOptions, 100), (kw.ConformalOptions, "aps"),
                       (FieldOptions, "Nuclei.csv"), (kw.EvaluateOptions, 100)):
        with pytest.raises(TypeError):
            cls(first)
    assert kw.PredictOptions(mc=100).mc == 100
