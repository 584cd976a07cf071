"""Models of the separating hypersurface: k(x; w) in [0, 1] = sigmoid(g(z; w)).

Every surface works on the node's standardised points z = (x - offset) / scale, which
makes learning rates and starts independent of the data's units; the offset and scale are
stored with the model, so a trained surface takes raw points.
"""

from __future__ import annotations

import torch
from torch import nn


class StandardisedSurface(nn.Module):
    """A network on standardised points that takes raw ones: net((x - offset) / scale).

    Parameters
    ----------
    net : torch.nn.Module
        Maps standardised points (m, d) to logits.
    offset : torch.Tensor, shape (d,)
        Mean of the training points, in the units of X.
    scale : float
        Common standard deviation of the training points, in the units of X.
    kind : str
        "linear" or "mlp".
    """

    def __init__(self, net: nn.Module, offset: torch.Tensor, scale: float, kind: str):
        super().__init__()
        self.net = net
        self.kind = kind
        self.register_buffer("offset", offset.detach().clone())
        self.register_buffer("scale", torch.tensor(float(scale), dtype=offset.dtype))

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.offset) / self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.standardise(x))


class NodeSurface(StandardisedSurface):
    """A trained split of one tree node: ``forward(x)`` gives the logit of cluster 1.

    ``net`` maps standardised points (m, d) to logits (m, 1); the offset and scale are the
    node's mean and common standard deviation.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape (m,), for raw points x of shape (m, d)."""
        return super().forward(x).squeeze(-1)

    @torch.no_grad()
    def membership(self, x: torch.Tensor) -> torch.Tensor:
        """k(x) in [0, 1], shape (m,): the probability of belonging to child 1."""
        return torch.sigmoid(self(x))

    @torch.no_grad()
    def assign(self, x: torch.Tensor, block: int = 65536) -> torch.Tensor:
        """Hard side of each raw point, as a bool tensor (True: k(x) >= 0.5)."""
        parts = [self(x[i : i + block]) >= 0 for i in range(0, len(x), block)]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.bool)


def make_net(kind: str, n_features: int, hidden: int, generator: torch.Generator) -> nn.Module:
    """A fresh logit network for standardised inputs, seeded from ``generator``."""
    if kind == "linear":
        net = nn.Linear(n_features, 1)
    elif kind == "mlp":
        net = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))
    else:
        raise ValueError(f"surface must be 'linear' or 'mlp'; got {kind!r}.")
    with torch.no_grad():
        for param in net.parameters():
            bound = 1.0 / max(1, param.shape[-1]) ** 0.5
            param.copy_(torch.rand(param.shape, generator=generator) * 2 * bound - bound)
    return net


@torch.no_grad()
def set_hyperplane(net: nn.Module, w: torch.Tensor, b: float) -> None:
    """Make ``net`` compute the logit w.z + b exactly.

    A linear net takes w and b directly. An MLP gets two hidden units, relu(w.z + b) and
    relu(-(w.z + b)), whose difference is the same logit; the other hidden units start
    with zero output weight, free to bend the surface during refinement.
    """
    if isinstance(net, nn.Linear):
        net.weight.copy_(w[None, :])
        net.bias.fill_(b)
        return
    first, _, last = net
    first.weight[0] = w
    first.bias[0] = b
    first.weight[1] = -w
    first.bias[1] = -b
    last.weight.zero_()
    last.weight[0, 0] = 1.0
    last.weight[0, 1] = -1.0
    last.bias.zero_()
