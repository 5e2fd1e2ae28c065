"""Digit Canvas: draw a digit, and a Dense MNIST network says which one it is."""

import os

# TensorFlow prints several lines of C++ start-up chatter at INFO level; keep warnings and errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
