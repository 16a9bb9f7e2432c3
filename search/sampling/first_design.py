"""The first trials TPE would draw at random, drawn instead as a Latin hypercube over the space.

With the saturation pruner on, few trials complete, and TPE's model after its startup trials
is built on the handful that did: the whole-studies comparison found that a startup that
happened to miss a batch size never came back to it (seed 11: no batch-256 trial in 30, though
the unpruned study's fastest schedules were batch 256; docs/search.md, "Whole studies"). So the
drawn startup trials are a Latin hypercube (SMAC3's initial design; McKay et al. 1979): for
each parameter, the n trials fall one in each of n equal strata of its range (a categorical's
choices, taken in turn, are its strata), with the strata paired across parameters at random.
Seven drawn startup trials cover the seven default batch sizes once each, and the LR range's
seven log-strata once each.

A trial's point depends only on the study's seed, the number of design trials and its index in
the design: the same for the same study on any host, as a scheduled study requires.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution


def design_unit(study_seed: int, param_name: str, index: int, size: int) -> float:
    """Where design trial `index` (of `size`) falls in [0, 1) for `param_name`: its stratum,
    that parameter's own permutation of the strata, and a uniform draw inside it."""
    rng = np.random.default_rng([study_seed % 2**32, zlib.crc32(param_name.encode())])
    strata = rng.permutation(size)
    jitter = rng.random(size)
    return float((strata[index] + jitter[index]) / size)


def from_unit(distribution: BaseDistribution, u: float) -> Any:
    """The value at quantile `u` of `distribution` taken as uniform (on the log scale where it is
    log): a categorical's choice `floor(u * n)`, an integer's step."""
    if isinstance(distribution, CategoricalDistribution):
        return distribution.choices[min(int(u * len(distribution.choices)), len(distribution.choices) - 1)]
    if isinstance(distribution, IntDistribution):
        if distribution.log:
            lo, hi = math.log(distribution.low - 0.5), math.log(distribution.high + 0.5)
            return min(max(round(math.exp(lo + u * (hi - lo))), distribution.low), distribution.high)
        values = (distribution.high - distribution.low) // distribution.step + 1
        return distribution.low + min(int(u * values), values - 1) * distribution.step
    if isinstance(distribution, FloatDistribution):
        if distribution.log:
            lo, hi = math.log(distribution.low), math.log(distribution.high)
            return min(max(math.exp(lo + u * (hi - lo)), distribution.low), distribution.high)
        if distribution.step is not None:
            values = int(round((distribution.high - distribution.low) / distribution.step)) + 1
            return distribution.low + min(int(u * values), values - 1) * distribution.step
        return distribution.low + u * (distribution.high - distribution.low)
    raise TypeError(f"no first design for {type(distribution).__name__}")


def design_value(study_seed: int, param_name: str, distribution: BaseDistribution, index: int, size: int) -> Any:
    """Design trial `index`'s (of `size`) value of `param_name`."""
    return from_unit(distribution, design_unit(study_seed, param_name, index, size))
