"""Launch files, RViz config and Fast DDS profile, checked without `launch` (not installable here).

The launch files are read as Python syntax trees: the executables, parameters, launch arguments and
config files they name must exist in this package, so a rename breaks a test rather than a user's launch.
"""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "hand_pose_ros"
LAUNCH_DIR = PACKAGE_DIR / "launch"
CONFIG_DIR = PACKAGE_DIR / "config"
HAND_POSE = LAUNCH_DIR / "hand_pose.launch.py"
ARIA_VRS = LAUNCH_DIR / "aria_vrs.launch.py"
PACKAGE = "hand_pose_ros"
ESTIMATOR_OVERRIDES = {
    "localisation",
    "mode",
    "backend",
    "camera_source",
    "aria_calibration",
    "rotation",
    "lifter_model",
    "potter_model",
    "detector_model",
}
ARIA_FRAME = 1408 * 1408 * 3  # bytes of one raw Aria RGB frame


class LaunchFile:
    """A launch file's syntax tree, with its module-level string constants resolved."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tree = ast.parse(path.read_text(), filename=str(path))
        self.constants = {
            target.id: node.value.value
            for node in self.tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        self.function = next(
            node
            for node in self.tree.body
            if isinstance(node, ast.FunctionDef) and node.name == "generate_launch_description"
        )
        self.variables = {
            target.id: node.value
            for node in ast.walk(self.function)
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }

    def value(self, node: ast.expr | None):
        """A constant, a module-level constant's value, or a literal list/dict of them (else None)."""
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self.constants.get(node.id)
        return None

    def calls(self, name: str) -> list[ast.Call]:
        """Calls of `name` in generate_launch_description."""
        return [
            node
            for node in ast.walk(self.function)
            if isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == name)
                or getattr(node.func, "attr", None) == name
            )
        ]

    def nodes(self) -> dict[str, ast.Call]:
        """`Node(...)` and `LifecycleNode(...)` actions by executable."""
        calls = self.calls("Node") + self.calls("LifecycleNode")
        return {self.value(keyword(call, "executable")): call for call in calls}

    def declared_arguments(self) -> dict[str, str | None]:
        """Launch argument -> its default (None: required)."""
        return {
            self.value(call.args[0]): self.value(keyword(call, "default_value"))
            for call in self.calls("DeclareLaunchArgument")
        }

    def argument_of(self, node: ast.expr) -> str | None:
        """The launch argument a value reads: `LaunchConfiguration(name)`, `_text(name)`, or a local
        variable holding one."""
        for child in ast.walk(node):
            if isinstance(child, ast.Call) and getattr(child.func, "id", None) in (
                "LaunchConfiguration",
                "_text",
            ):
                return self.value(child.args[0])
            if isinstance(child, ast.Name) and child.id in self.variables:
                argument = self.argument_of(self.variables[child.id])
                if argument is not None:
                    return argument
        return None


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def console_scripts() -> set[str]:
    tree = ast.parse((PACKAGE_DIR / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "console_scripts":
                    return {entry.value.split("=")[0].strip() for entry in value.elts}
    raise AssertionError("setup.py has no console_scripts")


def estimator_defaults() -> dict:
    return yaml.safe_load((CONFIG_DIR / "hand_pose.yaml").read_text())["/**"]["ros__parameters"]


def player_parameters() -> set[str]:
    from hand_pose_ros.aria_vrs_player import PARAMETERS

    return {parameter.name for parameter in PARAMETERS}


@pytest.fixture(scope="module", params=[HAND_POSE, ARIA_VRS], ids=lambda p: p.name)
def launch_file(request) -> LaunchFile:
    return LaunchFile(request.param)


def test_the_launch_folder_holds_both_files():
    assert sorted(p.name for p in LAUNCH_DIR.glob("*.launch.py")) == [
        "aria_vrs.launch.py",
        "hand_pose.launch.py",
    ]


def test_defines_generate_launch_description(launch_file):
    functions = [node.name for node in launch_file.tree.body if isinstance(node, ast.FunctionDef)]
    assert "generate_launch_description" in functions
    assert ast.get_docstring(launch_file.tree)


def test_every_executable_is_installed(launch_file):
    scripts = console_scripts()
    assert launch_file.nodes(), "no Node actions"
    for executable, call in launch_file.nodes().items():
        package = launch_file.value(keyword(call, "package"))
        if executable == "rviz2":
            assert package == "rviz2"
        else:
            assert package == PACKAGE and executable in scripts, executable


def test_referenced_files_exist_and_are_installed(launch_file):
    strings = {node.value for node in ast.walk(launch_file.tree) if isinstance(node, ast.Constant)}
    configs = {s for s in strings if isinstance(s, str) and s.endswith((".yaml", ".rviz", ".xml"))}
    launches = {s for s in strings if isinstance(s, str) and s.endswith(".launch.py")}
    setup = (PACKAGE_DIR / "setup.py").read_text()
    for name in configs:
        assert (CONFIG_DIR / name).is_file(), name
        assert f'"config/*{Path(name).suffix}"' in setup, f"setup.py does not install {name}"
    for name in launches:
        assert (LAUNCH_DIR / name).is_file(), name
    assert '"launch/*.launch.py"' in setup
    if launch_file.path == HAND_POSE:
        assert configs == {"hand_pose.yaml", "hand_pose.rviz", "fastdds_shm.xml"}
    else:
        assert launches == {"hand_pose.launch.py"} and "fastdds_shm.xml" in configs


def test_every_launch_configuration_is_declared(launch_file):
    declared = launch_file.declared_arguments()
    used = {launch_file.argument_of(call) for call in launch_file.calls("LaunchConfiguration")}
    used |= {launch_file.argument_of(call) for call in launch_file.calls("_text")}
    assert None not in used and used <= set(declared), used - set(declared)


def test_the_dds_profile_is_set_before_any_process(launch_file):
    (action,) = launch_file.calls("SetEnvironmentVariable")
    assert launch_file.value(action.args[0]) == "FASTRTPS_DEFAULT_PROFILES_FILE"
    (description,) = launch_file.calls("LaunchDescription")
    first = description.args[0].elts[0]
    assert isinstance(first, ast.Call) and first.func.id == "SetEnvironmentVariable"
    profile = ast.unparse(action.args[1])
    assert "EnvironmentVariable(DDS_PROFILE_VARIABLE" in profile, "a profile the user set is kept"
    assert "dds_profile" in profile and launch_file.variables["dds_profile"]


def test_estimator_overrides_are_yaml_parameters_with_the_yaml_defaults():
    launch = LaunchFile(HAND_POSE)
    call = launch.nodes()["hand_pose_estimator"]
    assert launch.value(keyword(call, "name")) == "hand_pose_estimator"
    parameters = keyword(call, "parameters").elts
    assert isinstance(parameters[0], ast.Name), "the YAML file comes first, the overrides after it"
    (overrides,) = (p for p in parameters if isinstance(p, ast.Dict))
    defaults = estimator_defaults()
    declared = launch.declared_arguments()
    keys = {launch.value(key) for key in overrides.keys} - {"use_sim_time"}  # ROS's own parameter
    assert keys <= set(defaults), keys - set(defaults)
    assert keys >= ESTIMATOR_OVERRIDES
    for key, value in zip(overrides.keys, overrides.values, strict=True):
        if launch.value(key) == "use_sim_time":
            assert launch.argument_of(value) == "use_sim_time" and declared["use_sim_time"] == "false"
            continue
        argument = launch.argument_of(value)
        yaml_default = defaults[launch.value(key)]
        assert declared[argument] == str(yaml_default), f"{argument} default differs from hand_pose.yaml"


def test_estimator_is_a_lifecycle_node_in_the_namespace_with_remapped_inputs():
    launch = LaunchFile(HAND_POSE)
    (estimator,) = launch.calls("LifecycleNode")
    assert launch.value(keyword(estimator, "executable")) == "hand_pose_estimator"
    assert launch.argument_of(keyword(estimator, "namespace")) == "namespace"
    remappings = keyword(estimator, "remappings").elts
    pairs = {launch.value(pair.elts[0]): launch.argument_of(pair.elts[1]) for pair in remappings}
    assert pairs == {"image": "image", "camera_info": "camera_info", "events": "events"}
    declared = launch.declared_arguments()
    assert (declared["image"], declared["camera_info"], declared["namespace"]) == ("image", "camera_info", "")
    assert not any(name.endswith("_topic") for name in estimator_defaults())  # topics are remapped
    rviz = launch.nodes()["rviz2"]
    assert launch.argument_of(keyword(rviz, "namespace")) == "namespace"


def test_the_config_is_keyed_for_any_node_name():
    config = yaml.safe_load((CONFIG_DIR / "hand_pose.yaml").read_text())
    assert list(config) == ["/**"]


def test_rviz_is_optional_and_loads_the_package_config():
    launch = LaunchFile(HAND_POSE)
    rviz = launch.nodes()["rviz2"]
    condition = keyword(rviz, "condition")
    assert condition.func.id == "IfCondition" and launch.argument_of(condition) == "rviz"
    assert launch.declared_arguments()["rviz"] == "true"
    arguments = keyword(rviz, "arguments").elts
    assert launch.value(arguments[0]) == "-d"


def test_aria_launch_starts_the_player_once_the_estimator_is_active():
    launch = LaunchFile(ARIA_VRS)
    declared = launch.declared_arguments()
    assert declared["vrs_path"] is None  # required
    assert {"rate", "loop"} <= set(declared) and declared["namespace"] == "aria"
    player = launch.nodes()["aria_vrs_player"]
    (parameters,) = keyword(player, "parameters").elts
    keys = {launch.value(key) for key in parameters.keys}
    assert keys <= player_parameters(), keys - player_parameters()
    assert "wait_for_subscribers" not in keys  # no fixed wait: the lifecycle event starts it
    reads = {
        launch.value(k): launch.argument_of(v)
        for k, v in zip(parameters.keys, parameters.values, strict=True)
    }
    assert reads["vrs_path"] == "vrs_path" and reads["rate"] == "rate" and reads["loop"] == "loop"
    assert launch.argument_of(keyword(player, "namespace")) == "namespace"
    (handler,) = launch.calls("OnStateTransition")
    assert launch.value(keyword(handler, "goal_state")) == "active"
    assert [e.id for e in keyword(handler, "entities").elts] == ["player"]
    description = launch.calls("LaunchDescription")[0].args[0].elts
    assert not any(isinstance(e, ast.Name) and e.id == "player" for e in description)  # only on the event

    (include,) = launch.calls("IncludeLaunchDescription")
    arguments = keyword(include, "launch_arguments").func.value  # {...}.items()
    passed = {launch.value(k): v for k, v in zip(arguments.keys, arguments.values, strict=True)}
    assert set(passed) <= set(LaunchFile(HAND_POSE).declared_arguments())
    assert launch.value(passed["camera_source"]) == "aria"
    assert launch.argument_of(passed["aria_calibration"]) == "vrs_path"
    assert launch.argument_of(passed["namespace"]) == "namespace"  # the player's image is the estimator's
    assert launch.value(passed["use_sim_time"]) == "true"


def test_rviz_config_shows_the_estimator_outputs():
    config = yaml.safe_load((CONFIG_DIR / "hand_pose.rviz").read_text())
    manager = config["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "camera_rgb"
    displays = manager["Displays"]
    classes = sorted(display["Class"].split("/")[1] for display in displays)
    assert classes == ["Grid", "Image", "MarkerArray"]
    topics = {f"{d['Class'].split('/')[1]}:{d['Topic']['Value']}" for d in displays if "Topic" in d}
    assert topics == {"MarkerArray:markers", "Image:overlay"}  # relative: RViz runs in the namespace
    for display in displays:
        if "Topic" in display:
            # a reliable subscriber gets nothing from the estimator's best-effort (sensor-data) overlay
            expected = "Best Effort" if display["Class"].endswith("Image") else "Reliable"
            assert display["Topic"]["Reliability Policy"] == expected


def test_fastdds_profile_fits_an_aria_frame_in_shared_memory():
    root = ET.parse(CONFIG_DIR / "fastdds_shm.xml").getroot()
    ns = {"dds": root.tag.partition("}")[0].lstrip("{")}
    transports = {
        t.findtext("dds:transport_id", namespaces=ns): t
        for t in root.iterfind(".//dds:transport_descriptor", ns)
    }
    shm = [t for t in transports.values() if t.findtext("dds:type", namespaces=ns) == "SHM"]
    assert len(shm) == 1
    segment = int(shm[0].findtext("dds:segment_size", namespaces=ns))
    assert segment >= 6 * 1024 * 1024 and segment > ARIA_FRAME
    (participant,) = root.iterfind(".//dds:participant", ns)
    assert participant.get("is_default_profile") == "true"
    rtps = participant.find("dds:rtps", ns)
    assert rtps.findtext("dds:useBuiltinTransports", namespaces=ns).strip() == "false"
    used = {t.text for t in rtps.iterfind("dds:userTransports/dds:transport_id", ns)}
    assert used == set(transports)
    assert {t.findtext("dds:type", namespaces=ns) for t in transports.values()} == {"SHM", "UDPv4"}
