"""Synthetic egocentric hands: a kinematic hand, a renderer, a data set generator in the release layout."""
