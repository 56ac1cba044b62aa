"""Models, one file per architecture; checkpoints, configurations and target normalisation beside them."""
