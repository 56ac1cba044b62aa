"""Hand pose on a Project Aria recording: `aria_vrs_player` -> `hand_pose_estimator` -> RViz.

    ros2 launch hand_pose_ros aria_vrs.launch.py vrs_path:=/data/recording.vrs rotation:=portrait
    ros2 launch hand_pose_ros aria_vrs.launch.py vrs_path:=/data/recording.vrs cameras:=rgb+slam

Player and estimator share the namespace (`aria` by default), so the player's `image` is the
estimator's `image` (/aria/image, frame_id `camera_rgb`, RViz's Fixed Frame); the estimator undistorts
the raw frames with the recording's own calibration (camera_source aria). The player starts when the
estimator's lifecycle reaches `active` (models loaded, subscribed), however long that takes, and both
follow the recording's device clock on /clock (use_sim_time), so latencies in /diagnostics mean
something. With `cameras:=rgb+slam` the player also plays the two SLAM cameras and the estimator
triangulates each hand from every camera that sees it (rotation must stay landscape). The other
arguments of hand_pose.launch.py (localisation, mode, backend, rotation, the models, rviz) pass through.
"""

from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    IncludeLaunchDescription,
    RegisterEventHandler,
    SetEnvironmentVariable,
)
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import (
    EnvironmentVariable,
    LaunchConfiguration,
    PathJoinSubstitution,
    PythonExpression,
)
from launch_ros.actions import Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = "hand_pose_ros"
DDS_PROFILE_VARIABLE = "FASTRTPS_DEFAULT_PROFILES_FILE"


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare(PACKAGE)
    dds_profile = PathJoinSubstitution([share, "config", "fastdds_shm.xml"])
    vrs_path = LaunchConfiguration("vrs_path")
    namespace = LaunchConfiguration("namespace")
    player = Node(
        package=PACKAGE,
        executable="aria_vrs_player",
        name="aria_vrs_player",
        namespace=namespace,
        output="screen",
        parameters=[
            {
                "vrs_path": ParameterValue(vrs_path, value_type=str),
                "rate": ParameterValue(LaunchConfiguration("rate"), value_type=float),
                "loop": ParameterValue(LaunchConfiguration("loop"), value_type=bool),
                "stamps": "recorded",
                "publish_slam": ParameterValue(
                    PythonExpression(["'", LaunchConfiguration("cameras"), "' == 'rgb+slam'"]),
                    value_type=bool,
                ),
            }
        ],
    )
    return LaunchDescription(
        [
            SetEnvironmentVariable(
                DDS_PROFILE_VARIABLE, EnvironmentVariable(DDS_PROFILE_VARIABLE, default_value=dds_profile)
            ),
            DeclareLaunchArgument("vrs_path", description="Aria VRS recording to play (required)"),
            DeclareLaunchArgument(
                "namespace", default_value="aria", description="namespace of the player, estimator and RViz"
            ),
            DeclareLaunchArgument(
                "rate", default_value="1.0", description="playback speed (1.0: real time, 2.0: twice as fast)"
            ),
            DeclareLaunchArgument("loop", default_value="false", description="play the recording in a loop"),
            DeclareLaunchArgument(
                "cameras",
                default_value="rgb",
                description="rgb | rgb+slam: also play the SLAM cameras and triangulate hands from all three",
            ),
            # Any lifecycle node of this launch becoming active: the estimator is the only one.
            RegisterEventHandler(OnStateTransition(goal_state="active", entities=[player])),
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(PathJoinSubstitution([share, "launch", "hand_pose.launch.py"])),
                launch_arguments={
                    "namespace": namespace,
                    "camera_source": "aria",
                    "aria_calibration": vrs_path,
                    "cameras": LaunchConfiguration("cameras"),
                    "use_sim_time": "true",
                }.items(),
            ),
        ]
    )
