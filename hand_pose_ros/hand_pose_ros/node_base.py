"""What every node of the package shares: parameters declared once, each with its descriptor, and one
`main()` pattern (the large-message DDS profile, bad parameters or files as one fatal line and exit code
2, a clean exit on Ctrl-C)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile

from hand_pose_core.errors import InputError
from hand_pose_ros.transport import use_large_message_profile

EXIT_BAD_INPUT = 2
CLOCK_TOPIC = "/clock"  # the players publish recording time here, for nodes run with use_sim_time
CLOCK_QOS = QoSProfile(depth=10)  # reliable, so also best-effort subscribers (rclpy's own) match


def own_copy(profile: QoSProfile) -> QoSProfile:
    """A copy of a QoS profile for one publisher or subscription: rclpy's QoS overriding writes a topic's
    overrides into the profile object it is given, so a shared one (rclpy's qos_profile_sensor_data, a
    module constant) would carry them to every topic created after it."""
    return copy.copy(profile)


NodeType = TypeVar("NodeType", bound=Node)


@dataclass(frozen=True)
class Parameter:
    """One node parameter: its name, default (which fixes its type), description and allowed values."""

    name: str
    default: Any
    description: str
    floats: tuple[float, float] | None = None
    integers: tuple[int, int] | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = True  # False: it may change while the node runs (checked by `problem`)

    def descriptor(self) -> ParameterDescriptor:
        constraints = f"one of: {', '.join(self.choices)}" if self.choices else ""
        descriptor = ParameterDescriptor(
            description=self.description, additional_constraints=constraints, read_only=self.read_only
        )
        if self.floats is not None:
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=self.floats[0], to_value=self.floats[1])
            ]
        if self.integers is not None:
            descriptor.integer_range = [
                IntegerRange(from_value=self.integers[0], to_value=self.integers[1], step=1)
            ]
        return descriptor

    def problem(self, value: Any) -> str | None:
        """Why `value` is not allowed (type, range or choice), or None. ROS checks types and ranges
        itself; the choices only we know. Used at start and for changes at run time alike."""
        where = f"parameter {self.name}={value!r}"
        expected = type(self.default)
        if expected is float and type(value) is int:
            value = float(value)
        if type(value) is not expected:
            return f"{where}: expected a {expected.__name__}"
        bounds = self.floats or self.integers
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            return f"{where}: out of range {bounds[0]} to {bounds[1]}"
        if self.choices and value not in self.choices:
            return f"{where}: expected one of {', '.join(self.choices)}"
        return None


def declare_parameters(node: Node, parameters: Sequence[Parameter]) -> dict[str, Any]:
    """Declare every parameter with its descriptor; their values. A value that is not allowed is an
    InputError (or ROS's own ParameterException), so the node ends with one line and exit code 2."""
    values = {p.name: node.declare_parameter(p.name, p.default, p.descriptor()).value for p in parameters}
    for parameter in parameters:
        problem = parameter.problem(values[parameter.name])
        if problem:
            raise InputError(problem)
    return values


def run_node(
    name: str,
    create: Callable[[], NodeType],
    run: Callable[[NodeType], int | None],
    finish: Callable[[NodeType], None] | None = None,
    args: list[str] | None = None,
) -> int:
    """Create a node and run it (`run` returns the exit code, or None for 0); whatever happens, `finish`
    it, destroy it and shut ROS down. Bad parameters or input files end in one fatal line and exit code
    2; Ctrl-C and a shutdown from outside end cleanly with 0."""
    use_large_message_profile()
    rclpy.init(args=args)
    logger = rclpy.logging.get_logger(name)
    node: NodeType | None = None
    code = 0
    try:
        node = create()
        code = run(node) or 0
    except (InputError, ParameterException) as exc:
        logger.fatal(str(exc))
        code = EXIT_BAD_INPUT
    except (KeyboardInterrupt, ExternalShutdownException):
        code = 0
    finally:
        if node is not None:
            if finish is not None:
                finish(node)
            node.destroy_node()
        rclpy.try_shutdown()
    return code
