"""`MlpTraining`: the job of a `train` run in seed 001's MLP space: the MLP trained from
scratch, then scored on the held-out rows of its feature-vector dataset.

As in seed 001 the architecture names its own optimiser (Adam, SGD or RMSprop, torch's defaults
otherwise: no momentum, no weight decay, no schedule, no clipping) and learning rate, and a
regression trains on the MSE; the digits train on cross-entropy and report accuracy. Each epoch
record holds the validation metric, the last one the test metric, parameters, FLOPs and CPU
latency at batch 1, and the result goes to the evaluations database as a cell's does. A loss
that becomes non-finite ends the job (`NonFiniteLossError`, as every loop): lr 0.1 with RMSprop
can do that, and a search then scores the candidate at its metric's floor.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from nas_engine.config import SearchConfig
from nas_engine.device import configure_threads, resolve_device
from nas_engine.evaluation.networks import build_mlp, count_flops, count_parameters
from nas_engine.evaluation.training import RetrainJob, evaluation_key
from nas_engine.evaluations import Evaluation
from nas_engine.loop import StepLosses, seed_everything
from nas_engine.records import Record
from nas_engine.spaces.genotypes import parse_genotype
from nas_engine.store import Recorder
from nas_engine.tabular import RowStream, load_tabular

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam, "sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop}


class MlpTraining(RetrainJob):
    advice = "try a smaller lr in the MLP's architecture"

    def __init__(self, config: SearchConfig, recorder: Recorder | None = None) -> None:
        self.config = config.validate()
        if config.space != "mlp":
            raise ValueError(f"space must be mlp for an MLP retrain; got {config.space!r}")
        device = resolve_device(config.device.name)
        configure_threads(device, config.threads)
        rows = load_tabular(config.data, config.seed)
        self.arch = parse_genotype("mlp", config.train.genotype)
        self.regression = rows.task == "regression"
        self.metric = "mse" if self.regression else "accuracy"
        self.input_shape = (rows.num_features,)
        seed_everything(config.seed)
        self.model = build_mlp(self.arch, rows.num_features, rows.num_outputs).to(device)
        self.optimizer = OPTIMIZERS[self.arch.optimizer](self.model.parameters(),
                                                         lr=self.arch.lr)
        self.train_stream = RowStream(rows, rows.train, config.data.batch_size, config.seed,
                                      device)
        # Validation and test parts are small: each is scored in one forward pass.
        self.val_part = (rows.features[rows.val].to(device), rows.targets[rows.val].to(device))
        self.test_part = (rows.features[rows.test].to(device),
                          rows.targets[rows.test].to(device))
        self.test_split = rows.test_split()
        super().__init__(recorder, device, len(self.train_stream), config.epochs,
                         config.record.log_every)
        if recorder is not None:
            recorder.write_split(self.test_split)

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(out, y) if self.regression else F.cross_entropy(out, y)

    # -- a step ----------------------------------------------------------------------------
    def train_step(self) -> StepLosses:
        self.model.train()
        x, y = self.train_stream.next()
        self.optimizer.zero_grad(set_to_none=True)
        out = self.model(x)
        loss = self._loss(out, y)
        loss.backward()
        self.optimizer.step()
        correct = (torch.zeros((), device=self.device) if self.regression
                   else (out.argmax(1) == y).sum())
        return StepLosses(loss.detach(), correct, len(y), {})

    @torch.no_grad()
    def evaluate(self, part: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        """The loss and the metric (`mse` or `acc`) on a part, unprefixed."""
        self.model.eval()
        x, y = part
        out = self.model(x)
        loss = self._loss(out, y).item()
        if self.regression:
            return {"loss": loss, "mse": loss}
        return {"loss": loss, "acc": (out.argmax(1) == y).float().mean().item()}

    # -- records ---------------------------------------------------------------------------
    def step_record(self, losses: StepLosses) -> Record:
        accuracy = None if self.regression else losses.train_correct.item() / losses.batch_size
        return {"train_loss": losses.train_loss.item(), "train_acc": accuracy,
                "live": self.live_values()}

    def epoch_record(self) -> Record:
        record: dict[str, Any] = {f"val_{k}": v for k, v in self.evaluate(self.val_part).items()}
        if self.regression:
            record["train_acc"] = None  # no accuracy to a regression (the loop's mean is 0)
        record["live"] = self.live_values()
        if self.epoch == self.epochs:  # the retrained MLP's result
            record.update({f"test_{k}": v for k, v in self.evaluate(self.test_part).items()})
            record.update(metric=self.metric, params=count_parameters(self.model),
                          flops=count_flops(self.model, self.input_shape),
                          latency_ms=self.latency_ms(), test_split=self.test_split)
        return record  # type: ignore[return-value]

    def evaluation(self, record: Record) -> Evaluation:
        r: dict[str, Any] = dict(record)
        return Evaluation(evaluation_key(self.config), r.get("test_acc"), r.get("val_acc"),
                          r["params"], r["flops"], r["latency_ms"], r["time_s"],
                          None if self.recorder is None else self.recorder.run_id,
                          self.config.train.genotype, self.metric, r.get("val_mse"),
                          r.get("test_mse"))

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        # The global generator draws the dropout masks: resuming must continue its sequence.
        return {**self.loop_state(), "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "train_stream": self.train_stream.state_dict(),
                "rng": torch.get_rng_state(), "config": self.config.to_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.train_stream.load_state_dict(state["train_stream"])
        torch.set_rng_state(state["rng"])
        self.load_loop_state(state)
