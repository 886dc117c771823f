"""`Search`: the job of a `search` run. A step is one α update and one w update (the
strategy's); the stepping, logging points and checkpoint bookkeeping are `EpochLoop`'s.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch

from nas_engine.components import Components, SearchContext
from nas_engine.config import SearchConfig
from nas_engine.data import load_images, make_streams
from nas_engine.device import configure_threads, resolve_device
from nas_engine.diagnostics import Alarm, mean_entropy, parameter_free_mass
from nas_engine.loop import EpochLoop, StepLosses, seed_everything
from nas_engine.model import SearchModel, SupernetOptions
from nas_engine.precision import Precision
from nas_engine.records import Record
from nas_engine.spaces import make_space
from nas_engine.store import Recorder
from nas_engine.strategies import Strategy, make_strategy

# Model initialisation draws from torch's process-wide RNG; runs built one at a time each get
# exactly their seed's weights even when several start together.
_BUILD_LOCK = threading.Lock()


def _rows(probs: np.ndarray) -> list[list[float]]:
    return [[round(float(v), 6) for v in row] for row in probs]


def build_model(config: SearchConfig, strategy: Strategy, components: Components,
                in_channels: int, num_classes: int, image_size: int) -> SearchModel:
    """The supernet and α, as the strategy and the components shape them."""
    options = SupernetOptions()
    strategy.adapt_search_space(options)
    components.adapt_search_space(options)
    return SearchModel(make_space(config), in_channels, num_classes, image_size, options)


class Search(EpochLoop):
    """A search: one step is the strategy's α and w updates on a train and a val batch."""

    advice = "try a smaller optim.w_lr or optim.alpha_lr"

    def __init__(self, config: SearchConfig, recorder: Recorder | None = None) -> None:
        """`recorder` (the run folder's one writer) receives every record, the genotype and
        the epoch checkpoints; None keeps everything in memory (tests, notebooks)."""
        self.config = config.validate()
        device = resolve_device(config.device.name)
        configure_threads(device, config.threads)
        self.precision = Precision.of(config.device, device)
        data = config.data
        images = load_images(data, config.seed)
        self.strategy = make_strategy(config, device)
        self.components = Components(config)
        with _BUILD_LOCK:
            seed_everything(config.seed)
            self.model = self.precision.place(build_model(
                config, self.strategy, self.components, images.in_channels, images.num_classes,
                images.image_size))
        self.space = self.model.space
        self.strategy.attach(self.model, self.components)
        self.train_stream, self.val_stream = make_streams(
            images, data, config.seed, device, channels_last=self.precision.channels_last)
        self.components.bind(SearchContext(config, self.model, self.strategy.w_optimizer,
                                           self._fixed_val_batch))
        super().__init__(recorder, device, len(self.train_stream), config.epochs,
                         config.record.log_every)
        if recorder is not None:
            recorder.write_split(images.test_split())
        self._epoch_records: list[Record] = []  # what the early-stop rules read
        self.alarm: Alarm | None = None
        self.early_stop: Alarm | None = None  # the alarm that ended the search, if one did

    @property
    def finish_message(self) -> str | None:
        """Why the search ended before its last epoch (an early-stop rule), if it did."""
        return f"stopped early: {self.early_stop.message}" if self.early_stop else None

    def train_step(self) -> StepLosses:
        self.model.train()
        result = self.strategy.step(self.train_stream.next(), self.val_stream.next(),
                                    self.progress)
        self._last = result
        return StepLosses(result.train_loss, result.train_correct, result.batch_size,
                          {"val loss": result.val_loss})

    def initial_record(self) -> Record:
        """α at initialisation, for a viewer to draw before the first logged record (not
        logged itself)."""
        return {"kind": "init", "epoch": 0, "step": 0, "time_s": 0.0, **self._arch_fields()}

    def live_values(self) -> dict[str, float]:
        """The live parameters in force, by name (the strategy's and the components')."""
        return {**self.strategy.live_values(), **self.components.live_values()}

    def set_live(self, name: str, value: float) -> None:
        """Apply a validated live parameter from the next step on, by its declaring owner."""
        owner = self.components if self.components.owns(name) else self.strategy
        owner.set_live(name, value)

    def _arch_fields(self) -> Record:
        probs = self.model.softmax_alphas()
        genotype = self.model.genotype()
        return {
            "alphas": {cell: _rows(p) for cell, p in probs.items()},
            "alphas_raw": {cell: _rows(a) for cell, a in self.model.raw_alphas().items()},
            "genotype": self.space.genotype_dict(genotype),
            "skip_count": self.space.skip_count(genotype),
            "entropy": mean_entropy(probs),
            "parameter_free_mass": {cell: float(parameter_free_mass(p, self.config.ops or []))
                                    for cell, p in probs.items()},
            "live": self.live_values(),
            "regularizers": {},
            **self.components.record_fields(self.progress),
            **self.strategy.record_fields(),
        }

    def step_record(self, losses: StepLosses) -> Record:
        return {
            "train_loss": losses.train_loss.item(),
            "train_acc": losses.train_correct.item() / losses.batch_size,
            "val_loss": self._last.val_loss.item(),
            **self._arch_fields(),
        }

    def epoch_record(self) -> Record:
        val_loss, val_acc = self.evaluate()
        record: Record = {
            "val_loss": val_loss,
            "val_acc": val_acc,
            **self._arch_fields(),
            **self.components.epoch_fields(self.epoch),
        }
        self._judge(record)
        return record

    def after_epoch(self, record: Record) -> None:
        self.strategy.after_epoch(self.epoch)
        self.components.after_epoch(self.epoch)
        if self.recorder is not None:
            self.recorder.write_genotype(self._final_genotype(record))
            if self.config.record.checkpoint:
                self.recorder.save_checkpoint(self.state_dict(), self.epoch)

    # -- collapse diagnostics ----------------------------------------------------------------
    def _fixed_val_batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys, have = [], [], 0
        for x, y in self.val_stream.iter_pass():
            xs.append(x)
            ys.append(y)
            have += len(y)
            if have >= size:
                break
        return torch.cat(xs)[:size], torch.cat(ys)[:size]

    def _judge(self, record: Record) -> None:
        """Run the rules over the epochs so far: the first alarm sticks; the configured rule
        may end the search."""
        self._epoch_records.append({"epoch": self.epoch, **{k: record.get(k) for k in (
            "skip_count", "hessian_max_eigenvalue", "genotype")}})
        alarm, stop = self.components.judge(self._epoch_records)
        self.alarm = self.alarm or alarm
        self.early_stop = self.early_stop or stop
        record["alarm"] = self.alarm.to_dict() if self.alarm else None
        if self.early_stop is not None:
            record["early_stop"] = self.early_stop.to_dict()

    def _final_genotype(self, record: Record) -> Record:
        """The genotype to keep: the one the R-DARTS rule rolls back to, else a component's
        rule for the final cell (P-DARTS' skip cap), else the current one."""
        stop = self.early_stop
        if stop is not None and stop.rollback_epoch is not None:
            earlier = next(r for r in self._epoch_records if r["epoch"] == stop.rollback_epoch)
            return {**earlier["genotype"], "rolled_back_to": stop.rollback_epoch,
                    "stopped_by": stop.message}
        final = self.components.final_genotype(self.model)
        return record["genotype"] if final is None else self.space.genotype_dict(final)

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """Loss and accuracy of the supernet on the whole validation split (eval mode, as
        DARTS' `infer`)."""
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        count = 0
        for x, y in self.val_stream.iter_pass():
            with self.precision.autocast():  # the loss in float32 (autocast's policy)
                logits = self.model(x, self.precision.mixing(self.model.mixing_weights()))
                loss_sum += torch.nn.functional.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
            count += y.shape[0]
        self.model.train()
        return (loss_sum / count).item(), correct.item() / count

    # -- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything an exact resume needs: weights, α, optimisers, data order (the streams
        own their RNGs), and how many metrics records belong before this point."""
        return {
            **self.loop_state(),
            "model": self.model.state_dict(),
            "strategy": self.strategy.state_dict(),
            "train_stream": self.train_stream.state_dict(),
            "val_stream": self.val_stream.state_dict(),
            "epoch_records": list(self._epoch_records),
            "alarm": self.alarm.to_dict() if self.alarm else None,
            "early_stop": self.early_stop.to_dict() if self.early_stop else None,
            "components": self.components.state_dict(),
            "config": self.config.to_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.strategy.load_state_dict(state["strategy"])
        self.train_stream.load_state_dict(state["train_stream"])
        self.val_stream.load_state_dict(state["val_stream"])
        self.load_loop_state(state)
        self.strategy.set_epochs(self.config.epochs)
        self._epoch_records = list(state["epoch_records"])
        self.alarm = Alarm(**state["alarm"]) if state["alarm"] else None
        self.early_stop = Alarm(**state["early_stop"]) if state["early_stop"] else None
        self.components.load_state_dict(state["components"])
