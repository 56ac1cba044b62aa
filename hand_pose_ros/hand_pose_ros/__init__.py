"""ROS 2 adapters around `hand_pose_core`: the only package of this project that imports rclpy."""
