"""`Training`: the job of a `train` run: a derived cell retrained from scratch, then scored on
the held-out test images (DARTS' evaluation phase, Liu et al. 2019 `train.py`).

SGD with momentum and a cosine learning rate over the epochs, the auxiliary head's loss at its
weight, drop path ramped linearly from 0 (`drop_path · epoch / epochs`), gradient clipping,
optional cutout: the official recipe at whatever size the profile sets. The last epoch record
carries the result (test accuracy, parameters, FLOPs, CPU latency at batch 1), which also goes
to the evaluations database under the runs root, so no key is trained twice.
"""

from __future__ import annotations

import statistics
import time
from abc import abstractmethod
from typing import Any

import torch
import torch.nn.functional as F

from nas_engine.components import LiveParameter
from nas_engine.config import TRAIN_PROFILES, SearchConfig, train_config
from nas_engine.data import BatchStream, load_images, make_streams
from nas_engine.device import configure_threads, resolve_device
from nas_engine.evaluation.canonical import architecture_key
from nas_engine.evaluation.networks import build_network, count_flops, count_parameters
from nas_engine.evaluations import Evaluation, EvaluationKey, EvaluationsDB, profile_label
from nas_engine.loop import EpochLoop, StepLosses, seed_everything
from nas_engine.precision import Precision
from nas_engine.records import Record
from nas_engine.spaces.genotypes import parse_genotype
from nas_engine.store import Recorder

LATENCY_RUNS = 20  # forward passes of one example, timed after 3 untimed ones

LIVE = (LiveParameter("w_lr", "learning rate",
                      "SGD learning rate of the retrained network; the cosine schedule "
                      "continues from the new value", 0.0, 10.0, low_open=True,
                      config_path="optim.w_lr"),)


def network_size(config: SearchConfig) -> dict[str, Any]:
    """The `build_network` sizes a config sets."""
    n = config.network
    if config.space == "darts":
        return {"channels": n.channels, "layers": n.layers,
                "auxiliary": config.train.auxiliary_weight > 0}
    return {"channels": n.channels, "cells_per_stage": n.cells_per_stage}


def profile_key(config: SearchConfig) -> str:
    """The profile's name when the run keeps its settings, else the name and a digest of what
    changed: a key in the evaluations database must say how the cell was trained."""
    settings = TRAIN_PROFILES[config.train.profile][config.space]
    return profile_label(config.train.profile, _same_keys(config.to_dict(), settings), settings)


def _same_keys(values: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    """`values` cut down to the keys `template` has, at every depth."""
    return {k: _same_keys(values[k], t) if isinstance(t, dict) else values[k]
            for k, t in template.items()}


def evaluation_key(config: SearchConfig) -> EvaluationKey:
    genotype = parse_genotype(config.space, config.train.genotype)
    return EvaluationKey(config.space, architecture_key(config.space, genotype),
                         config.data.name, config.data.task(), profile_key(config), config.seed)


class RetrainJob(EpochLoop):
    """What every retrain job shares: at the last epoch the result goes to the evaluations
    database under the runs root (`result`) and the weights to the run folder; a checkpoint
    each epoch; latency at batch 1; the optimiser's learning rate as the live value `w_lr`.
    A job sets `config`, `model`, `optimizer` and `input_shape` (one example's shape)."""

    config: SearchConfig
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    input_shape: tuple[int, ...]
    result: Evaluation | None = None

    @abstractmethod
    def evaluation(self, record: Record) -> Evaluation:
        """The database row of the last epoch's record."""

    def after_epoch(self, record: Record) -> None:
        if self.epoch == self.epochs:
            evaluation = self.evaluation(record)
            if self.recorder is not None:
                evaluation = EvaluationsDB(self.recorder.path.parent).put(evaluation)
                self.recorder.write_weights(self.model.state_dict())
            self.result = evaluation
        if self.recorder is not None and self.config.record.checkpoint:
            self.recorder.save_checkpoint(self.state_dict(), self.epoch)

    def latency_ms(self) -> float:
        """Median milliseconds of a forward pass of one example on the CPU (eval mode)."""
        model = self.model.to("cpu").eval()
        x = torch.randn(1, *self.input_shape)
        times = []
        with torch.no_grad():
            for i in range(3 + LATENCY_RUNS):
                started = time.perf_counter()
                model(x)
                if i >= 3:
                    times.append(1e3 * (time.perf_counter() - started))
        self.model.to(self.device)
        return round(statistics.median(times), 4)

    def initial_record(self) -> Record:
        return {"kind": "init", "epoch": 0, "step": 0, "time_s": 0.0,
                "live": self.live_values()}

    def live_values(self) -> dict[str, float]:
        return {"w_lr": self.optimizer.param_groups[0]["lr"]}

    def set_live(self, name: str, value: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = value


def training_job(config: SearchConfig, recorder: Recorder | None = None) -> RetrainJob:
    """The job of a `train` run: the MLP's retrain for the mlp space, the cell's otherwise."""
    from nas_engine.evaluation.mlp_training import MlpTraining  # it builds on this module

    return (MlpTraining if config.space == "mlp" else Training)(config, recorder)


class Training(RetrainJob):
    advice = "try a smaller optim.w_lr"

    def __init__(self, config: SearchConfig, recorder: Recorder | None = None) -> None:
        self.config = config.validate()
        device = resolve_device(config.device.name)
        configure_threads(device, config.threads)
        self.precision = precision = Precision.of(config.device, device)
        images = load_images(config.data, config.seed)
        self.genotype = parse_genotype(config.space, config.train.genotype)
        self.input_shape = (images.in_channels, images.image_size, images.image_size)
        seed_everything(config.seed)
        self.model = precision.place(build_network(
            config.space, self.genotype, images.in_channels, images.num_classes,
            images.image_size, **network_size(config)))
        self.forward = precision.compiled(self.model)  # the steps' and evaluations' passes
        opt = config.optim
        self.optimizer = torch.optim.SGD(self.model.parameters(), opt.w_lr,
                                         momentum=opt.w_momentum, nesterov=opt.w_nesterov,
                                         weight_decay=opt.w_weight_decay)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, T_max=config.epochs, eta_min=opt.w_lr_min)
        self.train_stream, self.val_stream = make_streams(
            images, config.data, config.seed, device, cutout=config.train.cutout,
            channels_last=precision.channels_last)
        self.test_stream = BatchStream(images, images.test, config.data.batch_size,
                                       config.seed + 2, device,
                                       channels_last=precision.channels_last)
        self.test_split = images.test_split()
        super().__init__(recorder, device, len(self.train_stream), config.epochs,
                         config.record.log_every)
        if recorder is not None:
            recorder.write_split(self.test_split)
        self.result: Evaluation | None = None

    # -- a step ----------------------------------------------------------------------------
    def train_step(self) -> StepLosses:
        model = self.model
        model.train()
        if hasattr(model, "drop_path_prob"):
            model.drop_path_prob = self.config.train.drop_path * self.epoch / self.epochs
        x, y = self.train_stream.next()
        self.optimizer.zero_grad(set_to_none=True)
        with self.precision.autocast():  # the losses in float32 (autocast's policy)
            out = self.forward(x)
            logits, aux = out if isinstance(out, tuple) else (out, None)
            loss = F.cross_entropy(logits, y)
            if aux is not None:
                loss = loss + self.config.train.auxiliary_weight * F.cross_entropy(aux, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), self.config.optim.grad_clip)
        self.optimizer.step()
        return StepLosses(loss.detach(), (logits.argmax(1) == y).sum(), len(y), {})

    @torch.no_grad()
    def evaluate(self, stream: BatchStream) -> tuple[float, float]:
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        for x, y in stream.iter_pass():
            with self.precision.autocast():
                logits = self.forward(x)
                loss_sum += F.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
        return (loss_sum / stream.num_samples).item(), correct.item() / stream.num_samples

    # -- records ---------------------------------------------------------------------------
    def step_record(self, losses: StepLosses) -> Record:
        return {"train_loss": losses.train_loss.item(),
                "train_acc": losses.train_correct.item() / losses.batch_size,
                "live": self.live_values()}

    def epoch_record(self) -> Record:
        val_loss, val_acc = self.evaluate(self.val_stream)
        record: Record = {"val_loss": val_loss, "val_acc": val_acc, "live": self.live_values()}
        if self.epoch == self.epochs:  # the retrained cell's result
            test_loss, test_acc = self.evaluate(self.test_stream)
            record.update(test_loss=test_loss, test_acc=test_acc,
                          params=count_parameters(self.model),
                          flops=count_flops(self.model, self.input_shape),
                          latency_ms=self.latency_ms(), test_split=self.test_split)
        return record

    def after_epoch(self, record: Record) -> None:
        self.scheduler.step()
        super().after_epoch(record)

    def evaluation(self, record: Record) -> Evaluation:
        r: dict[str, Any] = dict(record)
        return Evaluation(evaluation_key(self.config), r["test_acc"], r["val_acc"],
                          r["params"], r["flops"], r["latency_ms"], r["time_s"],
                          None if self.recorder is None else self.recorder.run_id,
                          self.config.train.genotype)

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**self.loop_state(), "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "train_stream": self.train_stream.state_dict(),
                "config": self.config.to_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scheduler.T_max = self.epochs
        self.train_stream.load_state_dict(state["train_stream"])
        self.load_loop_state(state)


def cell_text(space: str, genotype: dict[str, Any]) -> str:
    """A recorded genotype (a record's, genotype.json's) as the text a train run takes."""
    return genotype["text"] if space == "darts" else genotype["arch_str"]


def retrain_config(search: SearchConfig, genotype: dict[str, Any], profile: str = "classroom",
                   dataset: str | None = None, seed: int | None = None,
                   changes: dict[str, Any] | None = None) -> SearchConfig:
    """A `train` run of a search's cell (as recorded), by default on the hard offline task with
    the search's seed."""
    return train_config(search.space, cell_text(search.space, genotype), profile, dataset,
                        search.seed if seed is None else seed, changes)
