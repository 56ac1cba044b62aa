"""Geometry of hands and cameras: skeleton, pinhole and Aria fisheye cameras, crops, metric placement."""
