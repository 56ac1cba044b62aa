"""Live hand landmarks: our re-implementation of MediaPipe Hands' graph around its two models."""
