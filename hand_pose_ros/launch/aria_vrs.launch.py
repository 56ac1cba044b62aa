"""Hand pose on a Project Aria recording: `aria_vrs_player` -> `hand_pose_estimator` -> RViz.

    ros2 launch hand_pose_ros aria_vrs.launch.py vrs_path:=/data/recording.vrs rotation:=portrait

The player publishes the raw RGB frames on /aria/image (frame_id `camera_rgb`, RViz's Fixed Frame); the
estimator undistorts them with the recording's own calibration (camera_source aria). The other arguments
of hand_pose.launch.py (localisation, mode, backend, rotation, the models, rviz) pass through.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, SetEnvironmentVariable
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = "hand_pose_ros"
DDS_PROFILE_VARIABLE = "FASTRTPS_DEFAULT_PROFILES_FILE"
NAMESPACE = "aria"
# The player holds its first frame until the estimator subscribes (loading models, or building TensorRT
# engines on a first start, takes a while).
WAIT_FOR_ESTIMATOR_S = 60.0


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare(PACKAGE)
    dds_profile = PathJoinSubstitution([share, "config", "fastdds_shm.xml"])
    vrs_path = LaunchConfiguration("vrs_path")
    return LaunchDescription(
        [
            SetEnvironmentVariable(
                DDS_PROFILE_VARIABLE, EnvironmentVariable(DDS_PROFILE_VARIABLE, default_value=dds_profile)
            ),
            DeclareLaunchArgument("vrs_path", description="Aria VRS recording to play (required)"),
            DeclareLaunchArgument(
                "rate", default_value="1.0", description="playback speed (1.0: real time, 2.0: twice as fast)"
            ),
            DeclareLaunchArgument("loop", default_value="false", description="play the recording in a loop"),
            Node(
                package=PACKAGE,
                executable="aria_vrs_player",
                name="aria_vrs_player",
                namespace=NAMESPACE,
                output="screen",
                parameters=[
                    {
                        "vrs_path": ParameterValue(vrs_path, value_type=str),
                        "rate": ParameterValue(LaunchConfiguration("rate"), value_type=float),
                        "loop": ParameterValue(LaunchConfiguration("loop"), value_type=bool),
                        "wait_for_subscribers": WAIT_FOR_ESTIMATOR_S,
                    }
                ],
            ),
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(PathJoinSubstitution([share, "launch", "hand_pose.launch.py"])),
                launch_arguments={
                    "image_topic": f"/{NAMESPACE}/image",
                    "camera_source": "aria",
                    "aria_calibration": vrs_path,
                }.items(),
            ),
        ]
    )
