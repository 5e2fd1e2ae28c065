"""MNIST's geometry, shared by serving and training: the network's input is this field."""

IMAGE_SIDE = 28
INPUT_SIZE = IMAGE_SIDE * IMAGE_SIDE
NUM_CLASSES = 10
# MNIST scaled each digit so the longer side of its box is 20 pixels, and put its centre of
# mass at (14, 14) of the 28x28 field.
DIGIT_BOX = 20
CENTRE = 14.0
