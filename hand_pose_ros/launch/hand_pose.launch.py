"""Launch `hand_pose_estimator` on a camera, with RViz.

    ros2 launch hand_pose_ros hand_pose.launch.py image:=/camera/image_rect camera_info:=/camera/camera_info
    ros2 launch hand_pose_ros hand_pose.launch.py namespace:=left_cam rotation:=portrait
    ros2 launch hand_pose_ros hand_pose.launch.py input:=event_packets events:=/event_camera/events \
        localisation:=detector mode:=lifter

The estimator's topics are relative (`image`, `camera_info`, `events` in; `hands`, `markers`, `overlay`
out), so `namespace` moves all of them and the `image`, `camera_info` and `events` arguments remap the
inputs. With `input:=event_packets` it takes an event camera's packets (event_camera_msgs/EventPacket,
as metavision_driver publishes them) and the bundled event models. It is a
lifecycle node that configures and activates itself (autostart); other launch files can wait for it to
become active (see aria_vrs.launch.py). Parameters come from config/hand_pose.yaml, keyed `/**` so that
a renamed or namespaced node still gets them; the launch arguments below override the ones people change
most, and their defaults are the YAML's (test/test_launch_files.py checks that). Every process gets the
package's Fast DDS profile (a shared-memory segment large enough for camera frames) unless
FASTRTPS_DEFAULT_PROFILES_FILE is already set.

RViz runs in the same namespace and shows the relative `markers` and `overlay` topics. Its Fixed Frame in
config/hand_pose.rviz is `camera_rgb`, the frame_id of `aria_vrs_player`'s images: the estimator
publishes its 3D hands in the frame_id of the image it got (the camera's optical frame), so with another
camera set Fixed Frame to that camera's frame_id (in RViz's Global Options, or save a copy of the config).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
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
    use_sim_time = ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)
    return LaunchDescription(
        [
            SetEnvironmentVariable(
                DDS_PROFILE_VARIABLE, EnvironmentVariable(DDS_PROFILE_VARIABLE, default_value=dds_profile)
            ),
            DeclareLaunchArgument(
                "namespace", default_value="", description="namespace of the estimator, its topics and RViz"
            ),
            DeclareLaunchArgument(
                "image",
                default_value="image",
                description="sensor_msgs/Image topic to estimate on (remapping)",
            ),
            DeclareLaunchArgument(
                "camera_info",
                default_value="camera_info",
                description="sensor_msgs/CameraInfo of the camera (camera_source camera_info; remapping)",
            ),
            DeclareLaunchArgument(
                "events",
                default_value="events",
                description="event_camera_msgs/EventPacket topic (input event_packets; remapping)",
            ),
            DeclareLaunchArgument(
                "input",
                default_value="image",
                description="image | event_packets (an event camera's packets) | event_frames (32FC images)",
            ),
            DeclareLaunchArgument(
                "camera_source",
                default_value="camera_info",
                description="camera_info (pinhole camera_info) | aria (raw Aria fisheye, undistorted here)",
            ),
            DeclareLaunchArgument(
                "aria_calibration",
                default_value="",
                description="device calibration JSON or VRS recording (camera_source aria)",
            ),
            DeclareLaunchArgument(
                "cameras",
                default_value="rgb",
                description="rgb | rgb+slam (camera_source aria: also the SLAM cameras, hands triangulated)",
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
            DeclareLaunchArgument(
                "use_sim_time", default_value="false", description="follow /clock (a player's recording time)"
            ),
            DeclareLaunchArgument("rviz", default_value="true", description="start RViz"),
            LifecycleNode(
                package=PACKAGE,
                executable="hand_pose_estimator",
                name="hand_pose_estimator",
                namespace=LaunchConfiguration("namespace"),
                output="screen",
                parameters=[
                    parameters_file,
                    {
                        "input": _text("input"),
                        "camera_source": _text("camera_source"),
                        "aria_calibration": _text("aria_calibration"),
                        "cameras": _text("cameras"),
                        "rotation": _text("rotation"),
                        "localisation": _text("localisation"),
                        "mode": _text("mode"),
                        "backend": _text("backend"),
                        "lifter_model": _text("lifter_model"),
                        "potter_model": _text("potter_model"),
                        "detector_model": _text("detector_model"),
                        "use_sim_time": use_sim_time,
                    },
                ],
                remappings=[
                    ("image", LaunchConfiguration("image")),
                    ("camera_info", LaunchConfiguration("camera_info")),
                    ("events", LaunchConfiguration("events")),
                ],
            ),
            Node(
                package="rviz2",
                executable="rviz2",
                name="rviz2",
                namespace=LaunchConfiguration("namespace"),
                output="screen",
                arguments=["-d", rviz_config],
                parameters=[{"use_sim_time": use_sim_time}],
                condition=IfCondition(LaunchConfiguration("rviz")),
            ),
        ]
    )
