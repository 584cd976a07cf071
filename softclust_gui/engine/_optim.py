"""Adam, RMSProp and AdaGrad steps for a handful of parameter tensors.

Small and dependency-free on purpose: creating a ``torch.optim`` optimizer imports
torch's compiler stack on first use, which costs seconds and hundreds of MB for a split
that itself takes milliseconds. The update rules follow the usual defaults (Adam:
betas 0.9/0.999, eps 1e-8; RMSProp: alpha 0.99, eps 1e-8; AdaGrad: eps 1e-10).
"""

from __future__ import annotations

import torch


class Optimizer:
    """Gradient steps on ``params`` with one of "adam", "rmsprop", "adagrad"."""

    def __init__(self, params, kind: str, lr: float):
        if kind not in ("adam", "rmsprop", "adagrad"):
            raise ValueError(f"optimizer must be 'adam', 'rmsprop' or 'adagrad'; got {kind!r}.")
        self.params = [p for p in params if p.requires_grad]
        self.kind = kind
        self.lr = lr
        self.steps = 0
        self.first = [torch.zeros_like(p) for p in self.params]
        self.second = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        t = self.steps
        for p, m, v in zip(self.params, self.first, self.second, strict=True):
            g = p.grad
            if g is None:
                continue
            if self.kind == "adam":
                m.mul_(0.9).add_(g, alpha=0.1)
                v.mul_(0.999).addcmul_(g, g, value=0.001)
                denom = (v / (1 - 0.999**t)).sqrt_().add_(1e-8)
                p.addcdiv_(m, denom, value=-self.lr / (1 - 0.9**t))
            elif self.kind == "rmsprop":
                v.mul_(0.99).addcmul_(g, g, value=0.01)
                p.addcdiv_(g, v.sqrt().add_(1e-8), value=-self.lr)
            else:
                v.addcmul_(g, g)
                p.addcdiv_(g, v.sqrt().add_(1e-10), value=-self.lr)
