"""REINFORCE with a recurrent controller (Zoph & Le 2017; seed 001): an LSTM emits one softmax
per decision, each fed the embedding of the previous choice. The update is Williams' policy
gradient with a moving-average baseline and an entropy bonus (AutoDL: Adam lr 0.01, baseline
momentum 0.9; ENAS: entropy weight 1e-4), both settable: the seed has neither, and without a
baseline every positive reward reinforces whatever was sampled.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nas_engine.components import LiveParameter
from nas_engine.config import SearchConfig
from nas_engine.discrete.base import DiscreteStrategy
from nas_engine.discrete.decisions import Arch, DecisionSpace


class Controller(nn.Module):
    def __init__(self, choices: list[int], hidden: int) -> None:
        super().__init__()
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.embeddings = nn.ModuleList(nn.Embedding(n, hidden) for n in choices)
        self.cell = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, n) for n in choices)

    def forward(self, arch: Arch | None = None, generator: torch.Generator | None = None,
                greedy: bool = False) -> tuple[Arch, torch.Tensor, torch.Tensor,
                                               list[torch.Tensor]]:
        """Walk the decisions: sample (or take `arch`'s choices, or the most likely ones).
        Returns the choices, their summed log-probability and entropy, and each softmax."""
        x, state = self.start, None
        chosen, log_prob, entropy, probs = [], torch.zeros(()), torch.zeros(()), []
        for k, (head, embedding) in enumerate(zip(self.heads, self.embeddings, strict=True)):
            state = self.cell(x, state)
            logits = head(state[0])[0]
            p = torch.softmax(logits, dim=-1)
            if arch is not None:
                c = arch[k]
            elif greedy:
                c = int(p.argmax())
            else:
                c = int(torch.multinomial(p.detach(), 1, generator=generator))
            log_p = torch.log_softmax(logits, dim=-1)
            log_prob = log_prob + log_p[c]
            entropy = entropy - (p * log_p).sum()
            chosen.append(c)
            probs.append(p)
            x = embedding(torch.tensor([c]))
        return tuple(chosen), log_prob, entropy, probs


class Reinforce(DiscreteStrategy):
    def __init__(self, space: DecisionSpace, config: SearchConfig) -> None:
        super().__init__(space, config)
        d = config.discrete
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.controller = Controller([len(x.choices) for x in space.decisions],
                                         d.controller_hidden)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=d.controller_lr)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.entropy_weight = d.entropy_weight
        self.baseline: float | None = None

    @classmethod
    def declared(cls, config: SearchConfig) -> list[LiveParameter]:
        return [LiveParameter(
            "entropy_weight", "controller entropy bonus",
            "weight of the policy's entropy in the controller's objective: larger keeps the "
            "controller exploring, 0 lets it commit", 0.0, 100.0,
            config_path="discrete.entropy_weight")]

    def propose(self) -> Arch:
        with torch.no_grad():
            return self.controller(generator=self.generator)[0]

    def observe(self, arch: Arch, score: float) -> None:
        baseline = score if self.baseline is None else self.baseline
        _, log_prob, entropy, _ = self.controller(arch)
        loss = -(score - baseline) * log_prob - self.entropy_weight * entropy
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        decay = self.config.discrete.baseline_decay
        self.baseline = decay * baseline + (1 - decay) * score

    def probabilities(self) -> list[list[float]]:
        """Each decision's softmax along the most likely path."""
        with torch.no_grad():
            return [p.tolist() for p in self.controller(greedy=True)[3]]

    def view(self) -> dict[str, Any]:
        return {"probabilities": self.probabilities(), "baseline": self.baseline}

    def live_values(self) -> dict[str, float]:
        return {"entropy_weight": self.entropy_weight}

    def set_live(self, name: str, value: float) -> None:
        if name != "entropy_weight":
            raise KeyError(name)
        self.entropy_weight = value

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "controller": self.controller.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(), "baseline": self.baseline,
                "entropy_weight": self.entropy_weight}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.controller.load_state_dict(state["controller"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.baseline = state["baseline"]
        self.entropy_weight = state["entropy_weight"]
