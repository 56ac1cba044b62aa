"""ROS data without ROS: message contents, names the node and tools share, bags of takes and results."""
