"""Egocentric 3D hand pose estimation: skeleton, cameras, Ego-Exo4D formats, metrics and data.

Pure Python; never imports ROS (the nodes live in `hand_pose_ros`).
"""

__version__ = "0.1.0"
