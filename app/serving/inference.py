"""The network's forward pass in NumPy: the same probabilities as Keras, in microseconds.

Keras' `model.predict` costs tens of milliseconds per call in set-up alone; for one 784-value
input the two matrix products take a few microseconds. The weights come from the Keras model
file (see `app.serving.model_file`), so Keras stays the single source of truth.
"""

from dataclasses import dataclass

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    # Subtracting the row maximum keeps exp() finite; the result is unchanged.
    exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exponentials / exponentials.sum(axis=1, keepdims=True)


# Compared and hashed by identity (eq=False): its weights are arrays, and a model's loaded
# copy is one object, which caches can key on (see app.serving.explanations).
@dataclass(frozen=True, eq=False)
class DenseClassifier:
    """Dense(units, relu) -> Dense(10, softmax): the network of the book's chapter 2."""

    hidden_weights: np.ndarray  # (784, units), float32
    hidden_bias: np.ndarray  # (units,)
    output_weights: np.ndarray  # (units, 10)
    output_bias: np.ndarray  # (10,)
    # Temperature scaling: probabilities are softmax(logits / temperature). 1 is the
    # network as trained; a calibrated model's card gives its own (see the training side).
    temperature: float = 1.0

    @property
    def input_size(self) -> int:
        return self.hidden_weights.shape[0]

    @property
    def num_classes(self) -> int:
        return self.output_weights.shape[1]

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """(n, 784) float32 inputs in [0, 1] -> (n, 10) probabilities, each row summing to 1."""
        return softmax(self.logits(inputs) / self.temperature)

    def logits(self, inputs: np.ndarray) -> np.ndarray:
        """(n, 784) float32 inputs in [0, 1] -> (n, 10) logits, before the softmax."""
        inputs = np.asarray(inputs, dtype=np.float32)
        weights = self.hidden_weights
        # A digit covers a fifth of its field: the rest is 0 and its weight rows add nothing.
        # Reading only the inked pixels' rows, 120 of 784 for a typical digit, spares most of
        # the 1.6 MB of the first layer's weights a trip through the cache (preprocessing and
        # prediction together: 0.86x the time, measured interleaved).
        inked = np.flatnonzero(inputs.any(axis=0))
        if inked.size < inputs.shape[1] // 2:
            inputs, weights = inputs[:, inked], weights[inked]
        hidden = inputs @ weights + self.hidden_bias
        np.maximum(hidden, 0.0, out=hidden)  # relu
        return hidden @ self.output_weights + self.output_bias


@dataclass(frozen=True)
class Evidence:
    """What each pixel contributed to one digit's logit, and the two bias terms: with the
    active hidden units fixed the network is linear in its input, so these add up to the
    logit exactly."""

    digit: int
    pixels: np.ndarray  # (784,): x_i * sum_j W1[i, j] W2[j, digit] [h_j > 0]
    hidden_bias: float  # sum_j b1[j] W2[j, digit] [h_j > 0]
    output_bias: float  # b2[digit]


@dataclass(frozen=True)
class ForwardPass:
    """One input's way through the network, with the numbers of each step, and the evidence
    for its most probable digits."""

    hidden: np.ndarray  # (units,): relu(x . W1 + b1)
    logits: np.ndarray  # (10,): h . W2 + b2
    evidence: list[Evidence]  # for the most probable digit first


def forward_pass(
    classifier: DenseClassifier, model_input: np.ndarray, explained_digits: int = 2
) -> ForwardPass:
    """The (784,) input's forward pass, with the evidence for its `explained_digits` most
    probable digits."""
    # Blank pixels add nothing to any sum: the inked pixels' rows of W1, read once, give the
    # hidden layer and every digit's pixel terms.
    inked = np.flatnonzero(model_input)
    ink, rows = model_input[inked], classifier.hidden_weights[inked]
    hidden = np.maximum(ink @ rows + classifier.hidden_bias, 0.0)
    logits = hidden @ classifier.output_weights + classifier.output_bias
    # The temperature divides every logit alike: their order is the probabilities' order.
    digits = np.argsort(logits)[::-1][:explained_digits]
    through_active = classifier.output_weights[:, digits] * (hidden > 0)[:, np.newaxis]
    pixels = np.zeros((len(digits), model_input.size), dtype=np.float32)
    pixels[:, inked] = (ink[:, np.newaxis] * (rows @ through_active)).T
    hidden_biases = classifier.hidden_bias @ through_active
    evidence = [
        Evidence(
            int(digit),
            pixels[rank],
            float(hidden_biases[rank]),
            float(classifier.output_bias[digit]),
        )
        for rank, digit in enumerate(digits)
    ]
    return ForwardPass(hidden, logits, evidence)
