"""Proximal training: exact zeros inside `model.fit` and custom loops (issue 3; in progress)."""

__all__ = ["Proximal", "proximal_step"]


class Proximal:  # placeholder, replaced by the real optimizer wrapper
    def __init__(self, optimizer):
        raise NotImplementedError("kreg.Proximal is being written")


def proximal_step(model_or_variables, step_size):  # placeholder
    raise NotImplementedError("kreg.proximal_step is being written")
