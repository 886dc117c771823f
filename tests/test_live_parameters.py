"""Live parameters are declarations: every strategy's and component's parameter starts from its
config path, shows in the records' `live`, and is applied by its owner; the speed limit caps
steps per second."""

from __future__ import annotations

import time

import pytest

from nas_engine.config import SearchConfig
from nas_engine.live import SPEED, live_parameters, validate_live
from nas_engine.runner import RunRegistry
from nas_engine.search import Search
from nas_engine.strategies import STRATEGIES
from tests.test_search import tiny


def value_at(config: SearchConfig, path: str) -> object:
    node: object = config.to_dict()
    for part in path.split("."):
        node = node[part]  # type: ignore[index]
    return node


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_declared_parameter_starts_from_its_config_path(strategy: str) -> None:
    config = tiny("nb201", epochs=1, **{"strategy.name": strategy,
                                        "strategy.pc_warmup_epochs": 0,
                                        "regularizers.entropy.weight": 0.25,
                                        "mitigations.wd_multiplier": 3.0})
    declared = live_parameters(config)
    search = Search(config)
    in_force = search.live_values()
    assert set(declared) == {*in_force, SPEED.name}
    for name, parameter in declared.items():
        if parameter.config_path is None:
            assert name == SPEED.name  # the run's own
            continue
        assert in_force[name] == pytest.approx(value_at(config, parameter.config_path))
    assert in_force["entropy_weight"] == 0.25 and in_force["wd_multiplier"] == 3.0
    (record,) = [r for r in search.run() if r["kind"] == "epoch"]
    assert set(record["live"]) == set(in_force)


def test_set_live_reaches_the_declaring_owner() -> None:
    config = tiny("nb201", epochs=1)
    search = Search(config)
    search.set_live("wd_multiplier", 9.0)
    search.set_live("entropy_weight", -0.5)
    search.set_live("alpha_lr", 0.02)
    group = search.strategy.w_optimizer.param_groups[0]
    assert group["weight_decay"] == pytest.approx(9.0 * config.optim.w_weight_decay)
    assert search.strategy.alpha_optimizer.param_groups[0]["lr"] == 0.02
    assert search.live_values()["entropy_weight"] == -0.5
    with pytest.raises(ValueError, match=r"^name must be a live parameter \(w_lr, alpha_lr"):
        validate_live(config, "fair_zero_one_weight", 1.0)  # Fair DARTS' only
    with pytest.raises(ValueError, match=r"^alpha_lr must be a number >= 0.0 and <= 10.0"):
        validate_live(config, "alpha_lr", -1.0)


def test_speed_limit_caps_steps_per_second(tmp_path) -> None:
    """From step 1 to step 8 at 10 steps/s takes at least 0.6 s; unlimited, these tiny steps
    take a few hundredths of a second each."""
    registry = RunRegistry(tmp_path)
    try:
        run = registry.create(tiny("nb201", epochs=2, **{"record.log_every": 1}))
        run.set(SPEED.name, 10.0)
        run.start()
        assert run.wait_for(lambda s: s.step >= 1, 60)
        started = time.monotonic()
        assert run.wait_for(lambda s: s.step >= 8, 60)
        assert time.monotonic() - started >= 0.6
        assert run.snapshot().live[SPEED.name] == 10.0
    finally:
        registry.stop_all()
