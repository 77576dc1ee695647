"""Matrix-product FLOPs of a method's update, counted from the shapes of its network passes.

Every evaluation of an MLP inside a method's update is written down by the method itself
(`Method.flop_passes`) as a `Pass`: its layer widths, rows, ensemble copies and which gradients
flow. A dense layer costs 2 * rows * d_in * d_out per product: one product forward, one more
for the weight gradient, one more for the input gradient (the first layer needs the input
gradient only when the loss differentiates through the network's input, as SAC's actor loss
does through the critic). Biases, activations and the optimizer are left out: they are
O(rows * width) and O(parameters), a few percent of the products at width 256.

`benchmarks/perf_flops.py` checks these counts against the traced program and XLA's own
cost analysis, so a pass list that forgets a network fails a test.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


def dense_flops(rows: int, d_in: int, d_out: int) -> int:
    """One matrix product (rows x d_in) @ (d_in x d_out): a multiply and an add per term."""
    return 2 * rows * d_in * d_out


@dataclass(frozen=True)
class Pass:
    """One evaluation of an MLP (an ensemble of `copies` of it) on `rows` inputs."""

    name: str
    widths: tuple[int, ...]  # input width, hidden widths..., output width
    rows: int
    copies: int = 1
    weight_grad: bool = False  # the loss differentiates the network's parameters
    input_grad: bool = False  # the loss differentiates through the network to its input
    recomputed: bool = False  # its forward repeats another pass's (same parameters and inputs)

    @property
    def forward_flops(self) -> int:
        layers = zip(self.widths[:-1], self.widths[1:], strict=True)
        return self.copies * sum(dense_flops(self.rows, i, o) for i, o in layers)

    @property
    def flops(self) -> int:
        backward = self.weight_grad or self.input_grad
        total = 0
        for i, (d_in, d_out) in enumerate(zip(self.widths[:-1], self.widths[1:], strict=True)):
            f = dense_flops(self.rows, d_in, d_out)
            total += f
            if self.weight_grad:
                total += f
            if backward and (i > 0 or self.input_grad):
                total += f
        return self.copies * total


def total_flops(passes: Iterable[Pass]) -> int:
    """Products of every pass as the code writes them."""
    return sum(p.flops for p in passes)


def recomputed_flops(passes: Iterable[Pass]) -> int:
    """Forward products that repeat an earlier computation (what CSE or a refactor can save)."""
    return sum(p.forward_flops for p in passes if p.recomputed)
