"""Confidence that means something: temperature scaling (Guo et al., 2017) and the expected
calibration error that measures it.

A network trained to be right on MNIST is over-confident on drawings unlike its training
digits: it shows 99 % for answers that are right far less often. Dividing its logits by one
number, the temperature, fitted on held-out digits to minimise their negative log-likelihood,
makes the confidence shown match how often it is right, without changing any answer (the
order of the logits stays).
"""

import numpy as np

# Temperatures tried: from sharpening (0.25) to flattening (20) the probabilities, 0.5 %
# apart, which is finer than the fit's own noise on 5,000 digits.
TEMPERATURES = np.geomspace(0.25, 20.0, 900)
ECE_BINS = 15


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    scaled = logits.astype(np.float64) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    log_partition = np.log(np.exp(scaled).sum(axis=1))
    return float(np.mean(log_partition - scaled[np.arange(len(labels)), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of `labels`."""
    losses = [negative_log_likelihood(logits, labels, value) for value in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(losses))])


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
) -> float:
    """How far the confidence shown is from the accuracy, on average over the answers: the
    answers grouped in `bins` equal ranges of confidence, each group's |accuracy - mean
    confidence| weighted by its share of the answers."""
    confidence = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == labels
    group = np.minimum((confidence * bins).astype(int), bins - 1)
    error = 0.0
    for index in np.unique(group):
        members = group == index
        error += members.mean() * abs(right[members].mean() - confidence[members].mean())
    return float(error)
