"""Launch `hand_pose_estimator` on a camera topic, with RViz.

    ros2 launch hand_pose_ros hand_pose.launch.py image_topic:=/camera/image_rect \
        camera_info_topic:=/camera/camera_info rotation:=portrait

Parameters come from config/hand_pose.yaml; the launch arguments below override the ones people change
most, and their defaults are the YAML's (test/test_launch_files.py checks that). Every process gets the
package's Fast DDS profile (a shared-memory segment large enough for camera frames) unless
FASTRTPS_DEFAULT_PROFILES_FILE is already set.

RViz's Fixed Frame in config/hand_pose.rviz is `camera_rgb`, the frame_id of `aria_vrs_player`'s images:
the estimator publishes its 3D hands in the frame_id of the image it got (the camera's optical frame), so
with another camera set Fixed Frame to that camera's frame_id (in RViz's Global Options, or save a copy
of the config).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = "hand_pose_ros"
DDS_PROFILE_VARIABLE = "FASTRTPS_DEFAULT_PROFILES_FILE"


def _text(name: str) -> ParameterValue:
    """A string parameter from a launch argument (without YAML typing, so a path like `007` stays text)."""
    return ParameterValue(LaunchConfiguration(name), value_type=str)


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare(PACKAGE)
    parameters_file = PathJoinSubstitution([share, "config", "hand_pose.yaml"])
    rviz_config = PathJoinSubstitution([share, "config", "hand_pose.rviz"])
    dds_profile = PathJoinSubstitution([share, "config", "fastdds_shm.xml"])
    return LaunchDescription(
        [
            SetEnvironmentVariable(
                DDS_PROFILE_VARIABLE, EnvironmentVariable(DDS_PROFILE_VARIABLE, default_value=dds_profile)
            ),
            DeclareLaunchArgument(
                "image_topic", default_value="image", description="sensor_msgs/Image topic to estimate on"
            ),
            DeclareLaunchArgument(
                "camera_info_topic",
                default_value="camera_info",
                description="sensor_msgs/CameraInfo of a rectified camera (camera_source camera_info)",
            ),
            DeclareLaunchArgument(
                "camera_source",
                default_value="camera_info",
                description="camera_info (rectified pinhole) | aria (raw Aria fisheye, undistorted here)",
            ),
            DeclareLaunchArgument(
                "aria_calibration",
                default_value="",
                description="device calibration JSON or VRS recording (camera_source aria)",
            ),
            DeclareLaunchArgument(
                "rotation",
                default_value="landscape",
                description="landscape (sideways, as Aria records) | portrait (upright): drawing only",
            ),
            DeclareLaunchArgument(
                "localisation",
                default_value="mediapipe",
                description="mediapipe (real hands) | detector (ours, trained on synthetic hands)",
            ),
            DeclareLaunchArgument(
                "mode",
                default_value="world",
                description="world (MediaPipe's world landmarks) | lifter (2D -> 3D) | potter (crop -> 3D)",
            ),
            DeclareLaunchArgument(
                "backend", default_value="auto", description="auto | tensorrt | onnxruntime | torch"
            ),
            DeclareLaunchArgument(
                "lifter_model",
                default_value="",
                description="lifter checkpoint, ONNX file or TensorRT engine",
            ),
            DeclareLaunchArgument(
                "potter_model",
                default_value="",
                description="POTTER checkpoint, ONNX file or TensorRT engine",
            ),
            DeclareLaunchArgument(
                "detector_model",
                default_value="",
                description="hand detector checkpoint, ONNX file or TensorRT engine",
            ),
            DeclareLaunchArgument("rviz", default_value="true", description="start RViz"),
            Node(
                package=PACKAGE,
                executable="hand_pose_estimator",
                name="hand_pose_estimator",
                output="screen",
                parameters=[
                    parameters_file,
                    {
                        "camera_source": _text("camera_source"),
                        "aria_calibration": _text("aria_calibration"),
                        "rotation": _text("rotation"),
                        "localisation": _text("localisation"),
                        "mode": _text("mode"),
                        "backend": _text("backend"),
                        "lifter_model": _text("lifter_model"),
                        "potter_model": _text("potter_model"),
                        "detector_model": _text("detector_model"),
                    },
                ],
                remappings=[
                    ("image", LaunchConfiguration("image_topic")),
                    ("camera_info", LaunchConfiguration("camera_info_topic")),
                ],
            ),
            Node(
                package="rviz2",
                executable="rviz2",
                name="rviz2",
                output="screen",
                arguments=["-d", rviz_config],
                condition=IfCondition(LaunchConfiguration("rviz")),
            ),
        ]
    )
