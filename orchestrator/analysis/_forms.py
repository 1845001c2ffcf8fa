"""The scaling-law forms: which inputs each takes, what its parameters are called, and how to evaluate it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class Form:
    """A sum of power laws, L = E + sum_j A_j * x_j ** -alpha_j."""

    name: str
    # Keyword names of the inputs, as `predict` takes them, in order.
    inputs: tuple[str, ...]
    # Exponent and coefficient names, one per input, in the same order.
    exponents: tuple[str, ...]
    coefficients: tuple[str, ...]

    @property
    def param_names(self) -> tuple[str, ...]:
        """Parameter names in reporting order: E, coefficients, exponents."""
        return ("E", *self.coefficients, *self.exponents)


FORMS: dict[str, Form] = {
    "chinchilla": Form("chinchilla", ("n", "d"), ("alpha", "beta"), ("A", "B")),
    "power": Form("power", ("x",), ("alpha",), ("A",)),
}


def get_form(name: str) -> Form:
    if name not in FORMS:
        raise ValueError(f"unknown scaling-law form {name!r}; known forms: {sorted(FORMS)}")
    return FORMS[name]


def natural_params(form: Form, theta: np.ndarray, z_mean: np.ndarray, has_e: bool) -> np.ndarray:
    """Internal vectors [alpha_j, c_j, e] (K, P) to (K, len(param_names)) in `form.param_names` order."""
    m = len(form.inputs)
    alpha, c = theta[:, :m], theta[:, m : 2 * m]
    e = np.exp(theta[:, 2 * m]) if has_e else np.zeros(len(theta))
    coef = np.exp(c + alpha * z_mean)
    return np.column_stack([e, coef, alpha])


def evaluate_form(form: Form, params: Mapping[str, float], inputs: Mapping[str, ArrayLike]) -> np.ndarray:
    """L = E + sum_j A_j * x_j ** -alpha_j, broadcasting the inputs against each other."""
    expected, given = set(form.inputs), set(inputs)
    if expected != given:
        raise TypeError(f"the {form.name} form takes inputs {list(form.inputs)}, got {sorted(given)}")
    arrays = np.broadcast_arrays(*(np.asarray(inputs[k], dtype=float) for k in form.inputs))
    total = np.full(arrays[0].shape, params["E"], dtype=float)
    for x, coef, exp in zip(arrays, form.coefficients, form.exponents):
        total = total + params[coef] * x ** -params[exp]
    return total
