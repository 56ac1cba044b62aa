"""Nodes as child processes, as a launch file would start them: for the demo and the integration tests.

Each node runs in its own interpreter; `ros_env()` gives them a DDS domain of their own (so runs side by
side do not hear each other), local-only discovery and the large-message profile.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping

from hand_pose_ros.transport import PROFILE_VARIABLE, dds_profile_path


def ros_env() -> dict[str, str]:
    """The environment for one group of processes: a random domain, local discovery, the DDS profile."""
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(random.randint(1, 200))
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env[PROFILE_VARIABLE] = str(dds_profile_path())
    env["PYTHONUNBUFFERED"] = "1"
    env["RCUTILS_LOGGING_BUFFERED_STREAM"] = "0"
    return env


def node_command(
    module: str, parameters: Mapping[str, object] = (), remaps: Mapping[str, str] = ()
) -> list[str]:
    """`python -m MODULE --ros-args -p name:=value ... -r from:=to ...`."""
    command = [sys.executable, "-m", module, "--ros-args"]
    for name, value in dict(parameters).items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        command += ["-p", f"{name}:={text}"]
    for source, target in dict(remaps).items():
        command += ["-r", f"{source}:={target}"]
    return command


class RosProcess:
    """A child process whose output lines are collected as they come."""

    def __init__(self, command: list[str], env: Mapping[str, str]) -> None:
        self.process = subprocess.Popen(
            command, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        """Until a line contains `text`; fails with the output when the process ends or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.process.poll() is not None:
                self._reader.join(timeout=2)
                if any(text in line for line in self.lines):
                    return
                raise AssertionError(
                    f"process ended ({self.process.returncode}) before {text!r}:\n{self.output}"
                )
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} within {timeout} s:\n{self.output}")

    def wait(self, timeout: float = 120.0) -> int:
        code = self.process.wait(timeout)
        self._reader.join(timeout=2)
        return code

    def interrupt(self, timeout: float = 30.0) -> int:
        """Ctrl-C, as a user stops a node; returns the exit code. One that does not stop in time is
        killed, and the error carries what it printed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            command = " ".join(map(str, self.process.args[:3]))
            raise TimeoutError(f"{command} still ran {timeout:g} s after Ctrl-C:\n{self.output}") from None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class ProcessGroup:
    """Processes started for one run, all killed when its block ends however it ends, so no node
    outlives a failed run (a stray node would answer the next run that happens to share its domain)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.processes: list[RosProcess] = []

    def start(self, command: list[str]) -> RosProcess:
        process = RosProcess(command, self.env)
        self.processes.append(process)
        return process

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc_info) -> None:
        for process in self.processes:
            process.kill()
