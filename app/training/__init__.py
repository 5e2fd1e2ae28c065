"""What makes the served model: MNIST loading, augmentation, training, evaluation."""

import os

# TensorFlow's C++ log repeats, at every fit() call, an "error" about a graph attribute its
# runtime does not know (harmless; a version skew inside TensorFlow 2.21). Real failures reach
# Python as exceptions, so its C++ log is silenced.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
