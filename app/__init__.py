"""Digit Canvas: draw a digit, and a Dense MNIST network says which one it is."""

import os

# NumPy's OpenBLAS would start a thread per core for every matrix product and keep them
# spinning afterwards; this network's products (one 784-vector at a time) are far too small
# to gain from that, and a server's other core has better things to do.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# TensorFlow's C++ log repeats, at every fit() call, an "error" about a graph attribute its
# runtime does not know (harmless; a version skew inside TensorFlow 2.21). Real failures reach
# Python as exceptions, so its C++ log is silenced.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
