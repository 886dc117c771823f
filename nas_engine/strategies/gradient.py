"""The bilevel alternation every gradient strategy shares (DARTS, Liu et al., ICLR 2019,
Algorithm 1): an α step on a validation batch, then a w step on a training batch. α's gradient
is first order, ∇α L_val(w, α), or DARTS' second order: through one unrolled SGD step of w,
with the Hessian-vector product taken by central finite differences (REFERENCE.md §1),
  ∇α L_val(w', α) − ξ·[∇α L_train(w⁺, α) − ∇α L_train(w⁻, α)] / (2ε).
A strategy built on it says how the supernet mixes (`adapt_search_space`) and, where its
rule differs, how α's gradient is taken and what follows the α update.

Every forward pass runs at the run's precision (`nas_engine.precision`: bf16 autocast under
AMP) but the two of the finite difference: their difference is a small change of a gradient,
which bf16's 8-bit mantissa would drown, so they run in float32."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.func import functional_call

from nas_engine.components import Components, LiveParameter
from nas_engine.config import SearchConfig
from nas_engine.mixing import Weights
from nas_engine.model import SearchModel
from nas_engine.precision import Precision, float32
from nas_engine.strategies.base import Batch, StepResult, Strategy

Gradients = list[torch.Tensor]


class GradientStrategy(Strategy):
    """Not a strategy by itself: the machinery of the gradient ones."""

    def __init__(self, config: SearchConfig, device: torch.device) -> None:
        super().__init__(config, device)
        self.precision = Precision.of(config.device, device)

    @classmethod
    def declared(cls, config: SearchConfig) -> tuple[LiveParameter, ...]:
        return (
            LiveParameter("w_lr", "weight learning rate",
                          "SGD learning rate of the network weights; the cosine schedule "
                          "continues from the new value", 0.0, 10.0, low_open=True,
                          config_path="optim.w_lr"),
            LiveParameter("alpha_lr", "α learning rate",
                          "Adam learning rate of the architecture weights α; 0 freezes α",
                          0.0, 10.0, config_path="optim.alpha_lr"),
        )

    def attach(self, model: SearchModel, components: Components) -> None:
        opt = self.config.optim
        self.model = model
        self.net = self.precision.compiled(model.net)  # what the steps' plain passes call
        self.components = components
        self.weights = list(model.weight_parameters())
        self.alphas = model.arch_parameters()
        self.w_optimizer = torch.optim.SGD(
            self.weights, opt.w_lr, momentum=opt.w_momentum, weight_decay=opt.w_weight_decay,
            nesterov=opt.w_nesterov,
        )
        self.w_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.w_optimizer, T_max=self.config.epochs, eta_min=opt.w_lr_min
        )
        self.alpha_optimizer = torch.optim.Adam(
            self.alphas, opt.alpha_lr, betas=(opt.alpha_beta1, opt.alpha_beta2),
            weight_decay=opt.alpha_weight_decay,
        )

    @property
    def w_lr(self) -> float:
        return self.w_optimizer.param_groups[0]["lr"]

    @property
    def epochs_done(self) -> int:
        # The cosine scheduler steps once per epoch and is restored on resume.
        return self.w_scheduler.last_epoch

    # -- the step --------------------------------------------------------------------------
    def loss(self, batch: Batch, weights: Weights, params: dict[str, torch.Tensor] | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """(cross-entropy, logits) of the supernet at the run's precision (the loss in
        float32); `params` stand in for w (the unrolled w')."""
        x, y = batch
        weights = self.precision.mixing(weights)
        with self.precision.autocast():
            if params is None:
                logits = self.net(x, weights)
            else:  # the unrolled step's w', eagerly: functional_call swaps the module's own
                # parameters (the compiled wrapper names them differently)
                logits = functional_call(self.model.net, params, (x, weights))
            return F.cross_entropy(logits, y), logits

    def step(self, train: Batch, val: Batch, progress: float) -> StepResult:
        self.components.before_step(progress)
        val_loss = self.alpha_step(train, val, progress)
        train_loss, correct = self.weight_step(train, progress)
        return StepResult(train_loss, correct, val_loss, train[0].shape[0])

    def alpha_moves(self) -> bool:
        """Whether α is updated this step (PC-DARTS holds it during its warm-up)."""
        return True

    def alpha_step(self, train: Batch, val: Batch, progress: float) -> torch.Tensor:
        if not self.alpha_moves():
            with torch.no_grad():  # the val loss for the records; α stays
                return self.loss(val, self.model.mixing_weights())[0]
        val_loss, grads = self.alpha_gradients(train, val)
        alphas = dict(self.model.alphas)
        terms = [t for t in (self.alpha_terms(alphas),
                             self.components.alpha_loss(alphas, progress)) if t is not None]
        if terms:  # functions of α alone: their gradients simply add (0 for β)
            extra = torch.autograd.grad(sum(terms), self.alphas, materialize_grads=True)
            grads = [g + r for g, r in zip(grads, extra)]
        for alpha, grad in zip(self.alphas, grads):
            alpha.grad = grad
        self.alpha_optimizer.step()
        self.after_alpha_update()
        return val_loss.detach()

    def alpha_gradients(self, train: Batch, val: Batch) -> tuple[torch.Tensor, Gradients]:
        if self.config.strategy.order == "second":
            return self.unrolled_gradients(train, val)
        return self.first_order_gradients(val)

    def alpha_terms(self, alphas: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """The strategy's own α-only loss terms (NASP's size penalty, Fair DARTS' zero-one)."""
        return None

    def after_alpha_update(self) -> None:
        """What the rule does once α has moved (NASP's proximal step)."""

    def first_order_gradients(self, val: Batch) -> tuple[torch.Tensor, Gradients]:
        val_loss, _ = self.loss(val, self.model.mixing_weights())
        # Only α's gradient is needed: skip every weight gradient in this backward.
        return val_loss, list(torch.autograd.grad(val_loss, self.alphas))

    def unrolled_gradients(self, train: Batch, val: Batch) -> tuple[torch.Tensor, Gradients]:
        """∇α of L_val at w' = w − ξ(momentum·buf + ∇w L_train + wd·w), with ξ and wd the
        learning rate and weight decay in force: the step SGD is about to take, as in DARTS'
        `_compute_unrolled_model`."""
        net = self.model.net
        names = [n for n, _ in net.named_parameters()]
        group = self.w_optimizer.param_groups[0]
        xi, weight_decay = group["lr"], group["weight_decay"]
        weights = self.model.mixing_weights()
        train_loss, _ = self.loss(train, weights)
        grads = torch.autograd.grad(train_loss, self.weights)
        unrolled = {}
        for name, w, g in zip(names, self.weights, grads):
            step = g + weight_decay * w.detach()
            buf = self.w_optimizer.state.get(w, {}).get("momentum_buffer")
            if buf is not None:
                step = step + group["momentum"] * buf
            unrolled[name] = (w.detach() - xi * step).requires_grad_()
        val_loss, _ = self.loss(val, weights, unrolled)
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
        with float32(self.device):
            logits = functional_call(self.model.net, shifted,
                                     (train[0], self.model.mixing_weights()))
            return torch.autograd.grad(F.cross_entropy(logits, train[1]), self.alphas)

    def weight_step(self, train: Batch, progress: float) -> tuple[torch.Tensor, torch.Tensor]:
        self.w_optimizer.zero_grad(set_to_none=True)
        perturb = self.components.perturbation(progress)
        loss, logits = self.loss(train, self.model.mixing_weights(perturb))
        loss.backward(inputs=self.weights)
        torch.nn.utils.clip_grad_norm_(self.weights, self.config.optim.grad_clip)
        self.w_optimizer.step()
        return loss.detach(), (logits.argmax(1) == train[1]).sum()

    # -- schedule, live parameters, state ----------------------------------------------------
    def after_epoch(self, epoch: int) -> None:
        self.w_scheduler.step()

    def live_values(self) -> dict[str, float]:
        return {"w_lr": self.w_lr, "alpha_lr": self.alpha_optimizer.param_groups[0]["lr"]}

    def set_live(self, name: str, value: float) -> None:
        # The cosine scheduler is chainable: it decays from whatever lr is in force.
        optimizer = {"w_lr": self.w_optimizer, "alpha_lr": self.alpha_optimizer}[name]
        for group in optimizer.param_groups:
            group["lr"] = value

    def set_epochs(self, epochs: int) -> None:
        self.w_scheduler.T_max = epochs

    def state_dict(self) -> dict[str, Any]:
        return {
            "w_optimizer": self.w_optimizer.state_dict(),
            "w_scheduler": self.w_scheduler.state_dict(),
            "alpha_optimizer": self.alpha_optimizer.state_dict(),
            "mixing": self.model.mixing.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.w_optimizer.load_state_dict(state["w_optimizer"])
        self.w_scheduler.load_state_dict(state["w_scheduler"])
        self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
        self.model.mixing.load_state_dict(state["mixing"])
