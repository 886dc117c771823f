"""Zero-cost proxies (zero-shot NAS): scores of an untrained network on one batch, to be
judged by their rank correlation with retrained accuracy (issue 16, REFERENCE.md §4)."""

from nas_engine.proxies.base import Undefined
from nas_engine.proxies.registry import PROXIES
from nas_engine.proxies.scores import ProxyScores, proxy_scores
from nas_engine.proxies.scoring import ProxyResult, evaluate, score

__all__ = ["PROXIES", "ProxyResult", "ProxyScores", "Undefined", "evaluate", "proxy_scores",
           "score"]
