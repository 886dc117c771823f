"""DARTS (Liu et al., ICLR 2019): alternate an α step on validation data and a w step on
training data. First order uses ∇α L_val(w, α); second order differentiates through one
unrolled SGD step of w, with the Hessian-vector product taken by central finite differences
(REFERENCE.md §1): ∇α L_val(w', α) − ξ·[∇α L_train(w⁺, α) − ∇α L_train(w⁻, α)] / (2ε)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.func import functional_call

from nas_engine.config import SearchConfig
from nas_engine.model import SearchModel
from nas_engine.regularizers import RegularizerSet
from nas_engine.strategies.base import Batch, StepResult, Strategy


class DartsStrategy(Strategy):
    def __init__(self, model: SearchModel, config: SearchConfig) -> None:
        super().__init__(model, config)
        opt = config.optim
        self.weights = list(model.weight_parameters())
        self.alphas = model.arch_parameters()
        self.w_optimizer = torch.optim.SGD(
            self.weights, opt.w_lr, momentum=opt.w_momentum, weight_decay=opt.w_weight_decay,
            nesterov=opt.w_nesterov,
        )
        self.w_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.w_optimizer, T_max=config.epochs, eta_min=opt.w_lr_min
        )
        self.alpha_optimizer = torch.optim.Adam(
            self.alphas, opt.alpha_lr, betas=(opt.alpha_beta1, opt.alpha_beta2),
            weight_decay=opt.alpha_weight_decay,
        )
        self.second_order = config.strategy.order == "second"
        self.regularizers = RegularizerSet(config.regularizers)
        self.mitigations = config.mitigations
        self.wd_multiplier = config.mitigations.wd_multiplier
        self._set_weight_decay()
        self.generator = torch.Generator(self.alphas[0].device)
        self.generator.manual_seed(config.seed)
        self.progress = 0.0

    @property
    def w_lr(self) -> float:
        return self.w_optimizer.param_groups[0]["lr"]

    def step(self, train: Batch, val: Batch, progress: float = 0.0) -> StepResult:
        self.progress = progress
        self._apply_network_mitigations()
        val_loss = self.alpha_step(train, val)
        train_loss, correct = self.weight_step(train)
        return StepResult(train_loss, correct, val_loss, train[0].shape[0])

    def alpha_step(self, train: Batch, val: Batch) -> torch.Tensor:
        if self.second_order:
            val_loss, grads = self.unrolled_alpha_gradient(train, val)
        else:
            val_loss = self.model.loss(*val)
            # Only α's gradient is needed: skip every weight gradient in this backward.
            grads = torch.autograd.grad(val_loss, self.alphas)
        reg = self.alpha_penalty()
        if reg is not None:  # a function of α alone: its gradient simply adds (0 for β)
            extra = torch.autograd.grad(reg, self.alphas, materialize_grads=True)
            grads = [g + r for g, r in zip(grads, extra)]
        for alpha, grad in zip(self.alphas, grads):
            alpha.grad = grad
        self.alpha_optimizer.step()
        return val_loss.detach()

    def alpha_penalty(self) -> torch.Tensor | None:
        """The terms of the α loss that depend on the architecture parameters alone."""
        return self.regularizers.alpha_loss(dict(self.model.alphas), self.progress)

    def weight_step(self, train: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = train
        self.w_optimizer.zero_grad(set_to_none=True)
        logits = self.model(x, self._noisy_weights())
        loss = F.cross_entropy(logits, y)
        loss.backward(inputs=self.weights)
        torch.nn.utils.clip_grad_norm_(self.weights, self.config.optim.grad_clip)
        self.w_optimizer.step()
        return loss.detach(), (logits.argmax(1) == y).sum()

    def unrolled_alpha_gradient(self, train: Batch, val: Batch
                                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """∇α of L_val at w' = w − ξ(momentum·buf + ∇w L_train + wd·w), ξ the current w lr —
        the step SGD is about to take, as in DARTS' `_compute_unrolled_model`."""
        net = self.model.net
        names = [n for n, _ in net.named_parameters()]
        xi = self.w_lr
        opt = self.config.optim
        weight_decay = self.w_optimizer.param_groups[0]["weight_decay"]
        weights = self.model.mixing_weights()
        train_loss = F.cross_entropy(net(train[0], weights), train[1])
        grads = torch.autograd.grad(train_loss, self.weights)
        unrolled = {}
        for name, w, g in zip(names, self.weights, grads):
            step = g + weight_decay * w.detach()
            buf = self.w_optimizer.state.get(w, {}).get("momentum_buffer")
            if buf is not None:
                step = step + opt.w_momentum * buf
            unrolled[name] = (w.detach() - xi * step).requires_grad_()
        val_loss = F.cross_entropy(functional_call(net, unrolled, (val[0], weights)), val[1])
        found = torch.autograd.grad(val_loss, [*self.alphas, *unrolled.values()])
        d_alpha, d_unrolled = found[: len(self.alphas)], found[len(self.alphas):]
        eps = self.config.strategy.fd_radius / torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(g) for g in d_unrolled])
        )
        plus = self._train_alpha_gradient(train, names, d_unrolled, eps)
        minus = self._train_alpha_gradient(train, names, d_unrolled, -eps)
        # Divide by 2ε: the precedence bug of some public copies is (…)/2·ε.
        hessian_vector = [(p - m) / (2 * eps) for p, m in zip(plus, minus)]
        return val_loss, [d - xi * h for d, h in zip(d_alpha, hessian_vector)]

    def _train_alpha_gradient(self, train: Batch, names: list[str],
                              direction: tuple[torch.Tensor, ...], scale: torch.Tensor
                              ) -> tuple[torch.Tensor, ...]:
        shifted = {n: w.detach() + scale * d for n, w, d in zip(names, self.weights, direction)}
        logits = functional_call(self.model.net, shifted, (train[0], self.model.mixing_weights()))
        return torch.autograd.grad(F.cross_entropy(logits, train[1]), self.alphas)

    # -- mitigations ---------------------------------------------------------------------
    def _noisy_weights(self) -> dict[str, torch.Tensor] | None:
        """SDARTS-RS: U[−ε, ε] on the mixing weights of the w step, ε ramping ε/10 → ε."""
        final = self.mitigations.sdarts_epsilon
        if not final:
            return None
        eps = final * (0.1 + 0.9 * self.progress)
        noisy = {}
        for cell, w in self.model.mixing_weights().items():
            u = torch.rand(w.shape, generator=self.generator, device=w.device, dtype=w.dtype)
            noisy[cell] = w.detach() + (2 * u - 1) * eps
        return noisy

    def _apply_network_mitigations(self) -> None:
        m = self.mitigations
        if m.aux_skip or m.skip_dropout:
            self.model.set_network_options(
                aux_skip=(1.0 - self.progress) if m.aux_skip else 0.0,  # DARTS-: β 1 → 0
                skip_dropout=m.skip_dropout * (1.0 - self.progress),
            )

    def _set_weight_decay(self) -> None:
        for group in self.w_optimizer.param_groups:
            group["weight_decay"] = self.config.optim.w_weight_decay * self.wd_multiplier

    # -- schedule and live parameters -------------------------------------------------------
    def after_epoch(self, epoch: int) -> None:
        self.w_scheduler.step()

    def live_values(self) -> dict[str, float]:
        return {"w_lr": self.w_lr, "alpha_lr": self.alpha_optimizer.param_groups[0]["lr"],
                "wd_multiplier": self.wd_multiplier, **self.regularizers.live_values()}

    def set_live(self, name: str, value: float) -> None:
        if name in ("w_lr", "alpha_lr"):
            # The cosine scheduler is chainable: it decays from whatever lr is in force.
            optimizer = self.w_optimizer if name == "w_lr" else self.alpha_optimizer
            for group in optimizer.param_groups:
                group["lr"] = value
        elif name == "wd_multiplier":
            self.wd_multiplier = value
            self._set_weight_decay()
        elif name.endswith("_weight") and name[: -len("_weight")] in self.regularizers.items:
            self.regularizers.set_weight(name[: -len("_weight")], value)
        else:
            raise ValueError(f"name must be a live parameter of DARTS; got {name!r}")

    def set_epochs(self, epochs: int) -> None:
        self.w_scheduler.T_max = epochs

    def state_dict(self) -> dict[str, Any]:
        return {
            "w_optimizer": self.w_optimizer.state_dict(),
            "w_scheduler": self.w_scheduler.state_dict(),
            "alpha_optimizer": self.alpha_optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "live": self.live_values(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.w_optimizer.load_state_dict(state["w_optimizer"])
        self.w_scheduler.load_state_dict(state["w_scheduler"])
        self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
        self.generator.set_state(state["generator"])
        for name, value in state["live"].items():
            if name not in ("w_lr", "alpha_lr"):  # those came back with the optimisers
                self.set_live(name, value)
