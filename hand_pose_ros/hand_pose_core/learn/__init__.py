"""Models meet data: datasets, losses, training, INT8 calibration and its cost, and the benchmark."""
