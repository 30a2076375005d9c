"""`kreg.compact` rules of the layers with a kernel: Dense, convolutions, Embedding.

See `kreg._compact_rules` for what a rule does.
"""

import keras
import numpy as np

from kreg._compact_rules import Rule, _apply_activation, elementwise, nonzero


class Linear(Rule):
    """A layer whose unit u computes `act(b_u + sum_j conv(x_j, K[..., j, u]))`.

    Subclasses say how their kernel maps to the view `(*spatial, inputs, units)`
    and whether a constant input channel can be folded into the bias.
    """

    units_key = "units"

    def kernel(self):
        return self.weights["kernel"]

    def set_kernel(self, view):
        self.weights["kernel"] = view

    def foldable(self):
        return True

    def activation(self):
        return keras.activations.get(self.config.get("activation", "linear"))

    def _used(self):
        view = self.kernel()
        spatial = tuple(range(view.ndim - 2))
        return nonzero(view, self.tolerance).any(axis=spatial) if spatial else nonzero(
            view, self.tolerance)

    def _sums(self):
        view = self.kernel().astype("float64")
        return view.sum(axis=tuple(range(view.ndim - 2))) if view.ndim > 2 else view

    def connect(self, graph):
        used = self._used()
        graph.use(self.x, used.any(axis=1), self.foldable(), self)
        if not elementwise(self.config.get("activation", "linear")):
            graph.require(self.y)  # softmax and friends mix the units

    def constants(self, graph):
        if not elementwise(self.config.get("activation", "linear")):
            return super().constants(graph)  # not constant-folded; its units are kept
        const, value = graph.constants(self.x)
        ok = const & (self.foldable() | (value == 0))
        used = self._used()
        out_const = ~(used & ~ok[:, None]).any(axis=0)
        weight = np.where((used & const[:, None]), self._sums(), 0.0)
        pre = np.where(const, value, 0.0) @ weight
        if "bias" in self.weights:
            pre = pre + self.weights["bias"].astype("float64")
        out = _apply_activation(self.activation(), pre)
        graph.set_constants(self.y, out_const, np.where(out_const, out, 0.0))

    def apply(self, graph):
        keep_in, keep_out = graph.keep(self.x), graph.keep(self.y)
        const, value = graph.constants(self.x)
        removed = ~keep_in & const
        fold = np.where(removed, value, 0.0) @ np.where(removed[:, None], self._sums(), 0.0)
        view = self.kernel()[..., keep_in, :][..., keep_out]
        self.set_kernel(view)
        if "bias" in self.weights:
            bias = self.weights["bias"]
            self.weights["bias"] = (bias.astype("float64") + fold).astype(bias.dtype)[keep_out]
        elif np.any(fold != 0):
            self.weights["bias"] = fold.astype(view.dtype)[keep_out]
            self.config["use_bias"] = True
        self.config[self.units_key] = int(keep_out.sum())

    def units(self):
        return self.y.size


class Dense(Linear):
    pass


class EinsumDense(Linear):
    """A 2-D EinsumDense whose equation reads the last input axis and writes the last one."""

    def apply(self, graph):
        super().apply(graph)
        units = self.config.pop("units")
        shape = self.config["output_shape"]
        if isinstance(shape, int):
            self.config["output_shape"] = units
        else:
            self.config["output_shape"] = tuple(shape[:-1]) + (units,)


class Conv(Linear):
    units_key = "filters"

    def foldable(self):
        kernel = self.kernel().shape[:-2]
        return self.config["padding"] == "valid" or all(k == 1 for k in kernel)


class ConvTranspose(Linear):
    """Kernel `(*k, filters, channels)`; folding needs each output position hit once."""

    units_key = "filters"

    def kernel(self):
        return np.swapaxes(self.weights["kernel"], -1, -2)

    def set_kernel(self, view):
        self.weights["kernel"] = np.swapaxes(view, -1, -2)

    def foldable(self):
        strides = tuple(np.broadcast_to(self.config["strides"], len(self.kernel().shape) - 2))
        size = self.kernel().shape[:-2]
        return (self.config["padding"] == "valid" and tuple(size) == strides
                and self.config.get("output_padding") is None
                and all(d == 1 for d in np.ravel(self.config.get("dilation_rate", 1))))


class Separable(Linear):
    """SeparableConv: depthwise `(*k, C, m)` then pointwise `(1.., C*m, F)`, one bias (F,)."""

    units_key = "filters"

    def _parts(self):
        dw = self.weights["depthwise_kernel"]
        pw = self.weights["pointwise_kernel"]
        channels, multiplier = dw.shape[-2:]
        return dw, pw.reshape(channels, multiplier, pw.shape[-1]), channels, multiplier

    def foldable(self):
        dw = self.weights["depthwise_kernel"]
        return self.config["padding"] == "valid" or all(k == 1 for k in dw.shape[:-2])

    def _used(self):
        dw, pw, _, _ = self._parts()
        dw_alive = nonzero(dw, self.tolerance).any(axis=tuple(range(dw.ndim - 2)))  # (C, m)
        return (dw_alive[:, :, None] & nonzero(pw, self.tolerance)).any(axis=1)

    def _sums(self):
        dw, pw, _, _ = self._parts()
        s = dw.astype("float64").sum(axis=tuple(range(dw.ndim - 2)))  # (C, m)
        return np.einsum("cm,cmf->cf", s, pw.astype("float64"))

    def apply(self, graph):
        keep_in, keep_out = graph.keep(self.x), graph.keep(self.y)
        const, value = graph.constants(self.x)
        removed = ~keep_in & const
        fold = np.where(removed, value, 0.0) @ np.where(removed[:, None], self._sums(), 0.0)
        dw, pw, _, multiplier = self._parts()
        pw_shape = self.weights["pointwise_kernel"].shape
        pw = pw[keep_in][..., keep_out]
        self.weights["depthwise_kernel"] = dw[..., keep_in, :]
        self.weights["pointwise_kernel"] = pw.reshape(
            pw_shape[:-2] + (int(keep_in.sum()) * multiplier, int(keep_out.sum())))
        if "bias" in self.weights:
            bias = self.weights["bias"]
            self.weights["bias"] = (bias.astype("float64") + fold).astype(bias.dtype)[keep_out]
        elif np.any(fold != 0):
            self.weights["bias"] = fold.astype(pw.dtype)[keep_out]
            self.config["use_bias"] = True
        self.config["filters"] = int(keep_out.sum())


class Depthwise(Rule):
    """DepthwiseConv: output channel `c * m + j` reads input channel c only; they are one."""

    def connect(self, graph):
        multiplier = self.weights["kernel"].shape[-1]
        graph.tie(np.repeat(self.x.slots, multiplier), self.y.slots)
        if not elementwise(self.config.get("activation", "linear")):
            graph.require(self.y)

    def constants(self, graph):
        if not elementwise(self.config.get("activation", "linear")):
            return super().constants(graph)
        const, value = graph.constants(self.x)
        kernel = self.weights["kernel"]
        alive = nonzero(kernel, self.tolerance).any(axis=tuple(range(kernel.ndim - 2)))
        foldable = self.config["padding"] == "valid" or all(k == 1 for k in kernel.shape[:-2])
        ok = const & (foldable | (value == 0))
        out_const = (~alive | ok[:, None]).reshape(-1)
        sums = kernel.astype("float64").sum(axis=tuple(range(kernel.ndim - 2)))
        pre = (np.where(const, value, 0.0)[:, None] * np.where(alive, sums, 0.0)).reshape(-1)
        if "bias" in self.weights:
            pre = pre + self.weights["bias"].astype("float64")
        out = _apply_activation(keras.activations.get(self.config.get("activation")), pre)
        graph.set_constants(self.y, out_const, np.where(out_const, out, 0.0))

    def apply(self, graph):
        keep = graph.keep(self.x)
        self.weights["kernel"] = self.weights["kernel"][..., keep, :]
        if "bias" in self.weights:
            self.weights["bias"] = self.weights["bias"][graph.keep(self.y)]

    def units(self):
        return self.y.size


class Embedding(Rule):
    """Output channel d is column d of the table; an all-zero column is the constant 0."""

    def connect(self, graph):
        graph.require(self.x)  # token ids, not channels

    def constants(self, graph):
        dead = ~nonzero(self.weights["embeddings"], self.tolerance).any(axis=0)
        graph.set_constants(self.y, dead, np.zeros(self.y.size))

    def apply(self, graph):
        keep = graph.keep(self.y)
        self.weights["embeddings"] = self.weights["embeddings"][:, keep]
        self.config["output_dim"] = int(keep.sum())

    def units(self):
        return self.y.size
