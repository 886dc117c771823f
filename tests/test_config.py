"""SearchConfig: validation messages name the field, JSON round trip, presets, --set parsing."""

from __future__ import annotations

import pytest

from nas_engine.catalog import SPACE_OPS
from nas_engine.config import PRESETS, SearchConfig, parse_assignment, preset


def test_defaults_fill_ops_in_space_order() -> None:
    config = SearchConfig(space="nb201").validate()
    assert config.ops == list(SPACE_OPS["nb201"])
    narrowed = SearchConfig(ops=["sep_conv_3x3", "skip_connect"]).validate()
    assert narrowed.ops == ["skip_connect", "sep_conv_3x3"]  # canonical column order


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"space": "resnet"}, "space"),
        ({"ops": ["none", "skip_connect"]}, "ops"),
        ({"ops": ["conv_7x7", "skip_connect"]}, "ops"),
        ({"ops": ["skip_connect", "skip_connect", "sep_conv_3x3"]}, "ops"),
        ({"epochs": 0}, "epochs"),
        ({"epochs": 2.5}, "epochs"),
        ({"seed": -1}, "seed"),
        ({"device": "tpu"}, "device"),
        ({"threads": 0}, "threads"),
        ({"network.channels": 7}, "network.channels"),
        ({"network.layers": 2}, "network.layers"),
        ({"data.name": "imagenet"}, "data.name"),
        ({"data.train_portion": 1.0}, "data.train_portion"),
        ({"data.test_portion": 0.7}, "data.test_portion"),
        ({"data.batch_size": 0}, "data.batch_size"),
        ({"data.resize": 2}, "data.resize"),
        ({"data.download": "yes"}, "data.download"),
        ({"optim.w_lr": 0.0}, "optim.w_lr"),
        ({"optim.w_lr_min": 1.0}, "optim.w_lr_min"),
        ({"optim.alpha_lr": float("nan")}, "optim.alpha_lr"),
        ({"optim.grad_clip": -1}, "optim.grad_clip"),
        ({"strategy.order": "third"}, "strategy.order"),
        ({"strategy.name": "enas"}, "strategy.name"),
        ({"record.log_every": 0}, "record.log_every"),
        ({"data.colour": 1}, "data.colour"),
    ],
)
def test_invalid_values_name_the_field(changes: dict, field: str) -> None:
    with pytest.raises(ValueError) as info:
        SearchConfig().with_changes(changes)
    message = str(info.value)
    assert message.startswith(field), message
    assert "must be" in message


def test_unknown_top_level_key_is_an_error() -> None:
    with pytest.raises(ValueError, match="colour"):
        SearchConfig.from_dict({"colour": "red"})


def test_json_round_trip() -> None:
    config = SearchConfig(space="nb201", seed=7).with_changes(
        {"data.batch_size": 32, "ops": ["none", "skip_connect", "nor_conv_3x3"],
         "strategy.order": "second", "data.resize": 16}
    )
    again = SearchConfig.from_json(config.to_json())
    assert again == config
    assert again.to_dict()["ops"] == ["none", "skip_connect", "nor_conv_3x3"]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid(name: str) -> None:
    config = preset(name)
    assert config.ops


def test_darts_paper_preset_has_official_defaults() -> None:
    c = preset("darts-paper")
    assert (c.network.channels, c.network.layers, c.data.batch_size, c.epochs) == (16, 8, 64, 50)
    assert (c.optim.w_lr, c.optim.w_lr_min, c.optim.w_momentum, c.optim.w_weight_decay) == (
        0.025, 0.001, 0.9, 3e-4)
    assert (c.optim.alpha_lr, c.optim.alpha_beta1, c.optim.alpha_beta2,
            c.optim.alpha_weight_decay) == (3e-4, 0.5, 0.999, 1e-3)
    assert c.optim.grad_clip == 5 and c.data.name == "cifar10" and c.data.train_portion == 0.5


def test_unknown_preset() -> None:
    with pytest.raises(ValueError, match="^preset must be one of"):
        preset("fast")


def test_parse_assignment() -> None:
    assert parse_assignment("data.batch_size=32") == ("data.batch_size", 32)
    assert parse_assignment("optim.alpha_lr=1e-3") == ("optim.alpha_lr", 1e-3)
    assert parse_assignment("data.name=mnist") == ("data.name", "mnist")
    assert parse_assignment("ops=skip_connect,sep_conv_3x3") == (
        "ops", ["skip_connect", "sep_conv_3x3"])
    assert parse_assignment("data.resize=null") == ("data.resize", None)
    with pytest.raises(ValueError, match="key=value"):
        parse_assignment("epochs")



def test_one_source_for_names() -> None:
    """The config's strategy names are the registry's; each space's op table is its op list."""
    from nas_engine.config import STRATEGIES
    from nas_engine.spaces.ops import DARTS_OPS, NB201_OPS
    from nas_engine.strategies import STRATEGIES as REGISTRY

    assert set(STRATEGIES) == set(REGISTRY)
    assert ("none", *DARTS_OPS) == SPACE_OPS["darts"]
    assert ("none", *NB201_OPS) == SPACE_OPS["nb201"]
