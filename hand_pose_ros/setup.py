"""ament_python package `hand_pose_ros`: installs `hand_pose_core` (pure Python) and the ROS 2 nodes.

Builds with colcon on a ROS 2 Jazzy machine, and with plain `pip install -e .[ros]` elsewhere, where
the ROS 2 parts come from the Jazzy wheels on PyPI.
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "hand_pose_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Real-time egocentric 3D hand pose estimation for ROS 2 (Ego-Exo4D, Project Aria)",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["hand_pose_core", "hand_pose_core.*", PACKAGE, f"{PACKAGE}.*"]),
    package_data={
        "hand_pose_core.egoexo": ["*.json"],
        "hand_pose_core.synth": ["*.json"],
        "hand_pose_core.events": ["dvs_msgs/*.msg"],
    },
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml") + glob("config/*.rviz")),
        (
            f"share/{PACKAGE}/models",
            glob("models/*.onnx") + glob("models/*.md") + ["models/NOTICE", "models/LICENSE.mediapipe"],
        ),
    ],
    install_requires=[
        "setuptools",
        "numpy>=1.26",
        "scipy>=1.11",
        "numba>=0.60",  # compiles the EVT3 event decoder (events/evt3.py); 0.60 is the first for numpy 2
        "matplotlib>=3.8",
        "pillow>=10",
        "tqdm>=4.66",
        "projectaria-tools>=1.5",
        "torch>=2.1",
        "tensorboard>=2.14",
        "onnx>=1.16",
        "onnxscript>=0.2",
        "onnxruntime>=1.18",
        "opencv-python-headless>=4.8",
        "rosbags>=0.10",
        "mcap>=1.2",  # reads damaged or truncated MCAP bags chunk by chunk (bags/integrity.py)
    ],
    extras_require={
        "ros": [
            "ros-jazzy-rclpy[fastrtps]",
            "ros-jazzy-std-msgs",
            "ros-jazzy-sensor-msgs",
            "ros-jazzy-geometry-msgs",
            "ros-jazzy-visualization-msgs",
            "ros-jazzy-diagnostic-msgs",
        ],
        "tensorrt": ["tensorrt>=10"],  # on a CUDA machine
        # tflite reads MediaPipe's .tflite files (`hand-pose import-mediapipe`); ai-edge-litert is the TFLite
        # reference interpreter the tests check the converted models against.
        "dev": ["pytest>=8", "ruff>=0.6", "tflite>=2.18", "ai-edge-litert>=2.3"],
    },
    entry_points={
        "console_scripts": [
            "hand-pose = hand_pose_core.cli:main",
            "hand_pose_estimator = hand_pose_ros.estimator:main",
            "aria_vrs_player = hand_pose_ros.aria_vrs_player:main",
            "bag_player = hand_pose_ros.bag_player:main",
            "bag_recorder = hand_pose_ros.bag_recorder:main",
            "hand_pose_demo = hand_pose_ros.demo:main",
        ]
    },
)
