"""The 21-joint skeleton, the pinhole camera, and the landscape/portrait orientations."""

import numpy as np
import pytest

from hand_pose_core.errors import InputError
from hand_pose_core.geometry import skeleton
from hand_pose_core.geometry.camera import (
    BENCHMARK_CAMERA,
    PORTRAIT_FROM_LANDSCAPE,
    PinholeCamera,
    Turn,
)

# ------------------------------------------------------------------------------------------------- skeleton


def test_skeleton_has_21_named_joints():
    assert skeleton.NUM_JOINTS == 21
    assert len(skeleton.JOINT_NAMES) == 21
    assert len(set(skeleton.JOINT_NAMES)) == 21
    assert skeleton.JOINT_NAMES[0] == "wrist"
    assert skeleton.JOINT_NAMES[1] == "thumb_1"
    assert skeleton.JOINT_NAMES[20] == "pinky_4"


def test_finger_joint_ranges_follow_the_release_order():
    assert skeleton.FINGERS == ("thumb", "index", "middle", "ring", "pinky")
    assert skeleton.FINGER_JOINTS == {
        "thumb": (1, 2, 3, 4),
        "index": (5, 6, 7, 8),
        "middle": (9, 10, 11, 12),
        "ring": (13, 14, 15, 16),
        "pinky": (17, 18, 19, 20),
    }
    assert skeleton.FINGERTIPS == (4, 8, 12, 16, 20)
    assert skeleton.finger_of(0) is None
    assert [skeleton.finger_of(j) for j in (1, 4, 5, 12, 13, 20)] == [
        "thumb",
        "thumb",
        "index",
        "middle",
        "ring",
        "pinky",
    ]


def test_bones_are_the_documented_20_and_form_a_tree_rooted_at_the_wrist():
    expected = {(0, 1), (0, 5), (0, 9), (0, 13), (0, 17)}
    for base in (1, 5, 9, 13, 17):
        expected |= {(base, base + 1), (base + 1, base + 2), (base + 2, base + 3)}
    assert len(skeleton.BONES) == 20
    assert set(skeleton.BONES) == expected
    children = [child for _, child in skeleton.BONES]
    assert sorted(children) == list(range(1, 21))  # every joint but the wrist has exactly one parent
    assert skeleton.PARENTS[0] == -1
    for joint in range(1, 21):  # walking up the parents reaches the wrist
        seen, current = set(), joint
        while current != 0:
            assert current not in seen
            seen.add(current)
            current = int(skeleton.PARENTS[current])
    assert skeleton.PALM_BONES == ((0, 5), (0, 9), (0, 13), (0, 17))


def test_hand_sides_are_right_then_left():
    assert skeleton.HAND_SIDES == ("right", "left")


def test_colours_are_rgb_per_finger_and_bones_take_the_child_colour():
    colours = [*skeleton.FINGER_COLOURS.values(), skeleton.PALM_COLOUR, *skeleton.SIDE_COLOURS.values()]
    for colour in colours:
        assert len(colour) == 3
        assert all(isinstance(c, int) and 0 <= c <= 255 for c in colour)
    assert len(set(skeleton.FINGER_COLOURS.values())) == 5
    assert skeleton.SIDE_COLOURS["left"] != skeleton.SIDE_COLOURS["right"]
    assert skeleton.joint_colour(0) == skeleton.PALM_COLOUR
    for finger, joints in skeleton.FINGER_JOINTS.items():
        for joint in joints:
            assert skeleton.joint_colour(joint) == skeleton.FINGER_COLOURS[finger]
    for parent, child in skeleton.BONES:
        assert skeleton.bone_colour((parent, child)) == skeleton.joint_colour(child)
    assert skeleton.bone_colour((0, 17)) == skeleton.FINGER_COLOURS["pinky"]


def test_bone_lengths():
    joints = np.zeros((21, 3))
    for _, joints_of_finger in skeleton.FINGER_JOINTS.items():
        for k, joint in enumerate(joints_of_finger):
            joints[joint] = [0.0, 0.0, 10.0 * (k + 1)]  # 10 from the wrist, then 10 per bone
    joints[8] = [0.0, 3.0, 34.0]  # the index tip moved: bone (7, 8) is 5 long
    joints[13] = [6.0, 8.0, 0.0]  # the ring base moved: wrist-ring 10, ring 13-14 sqrt(36+64+400)
    lengths = skeleton.bone_lengths(joints)
    assert lengths.shape == (20,)
    expected = np.full(20, 10.0)
    expected[7] = 5.0  # bone i has child joint i + 1
    expected[13] = np.sqrt(500.0)
    np.testing.assert_allclose(lengths, expected)
    batch = skeleton.bone_lengths(np.stack([joints, 2 * joints]))
    assert batch.shape == (2, 20)
    np.testing.assert_allclose(batch[1], 2 * expected)


# --------------------------------------------------------------------------------------------------- camera


def test_benchmark_camera_is_512_square_f150_centre_255_5():
    camera = BENCHMARK_CAMERA
    assert (camera.width, camera.height) == (512, 512)
    assert camera.fx == camera.fy == 150.0
    assert camera.cx == camera.cy == 255.5
    np.testing.assert_array_equal(camera.matrix, [[150, 0, 255.5], [0, 150, 255.5], [0, 0, 1]])


def test_project_known_values_and_points_behind():
    camera = BENCHMARK_CAMERA
    pixels = camera.project(np.array([[0.0, 0.0, 1.0], [0.1, -0.2, 0.5], [0.1, 0.1, 0.0], [0.1, 0.1, -1.0]]))
    np.testing.assert_allclose(pixels[:2], [[255.5, 255.5], [150 * 0.2 + 255.5, -150 * 0.4 + 255.5]])
    assert np.isnan(pixels[2:]).all()
    inside = camera.contains(np.array([[0, 0], [511, 511], [-0.1, 10], [10, 511.5], [np.nan, 3]]))
    assert inside.tolist() == [True, True, False, False, False]


def test_project_unproject_round_trip():
    rng = np.random.default_rng(0)
    camera = PinholeCamera(fx=310.0, fy=290.0, cx=330.0, cy=236.0, width=640, height=480)
    points = rng.uniform([-0.3, -0.3, 0.2], [0.3, 0.3, 2.0], size=(50, 3))
    pixels = camera.project(points)
    np.testing.assert_allclose(camera.unproject(pixels, points[:, 2]), points, atol=1e-12)
    pixels = rng.uniform(0, 480, size=(4, 5, 2))
    np.testing.assert_allclose(camera.project(camera.unproject(pixels, 0.7)), pixels, atol=1e-9)


def test_check_image_names_the_place():
    BENCHMARK_CAMERA.check_image(np.zeros((512, 512, 3), np.uint8), "frame 3")
    with pytest.raises(InputError, match=r"frame 3: image is 640x480.*512x512"):
        BENCHMARK_CAMERA.check_image(np.zeros((480, 640, 3), np.uint8), "frame 3")


# ---------------------------------------------------------------------------------------------- orientation

# Not square and fx != fy, so a swap of width and height or of the focal lengths shows.
WIDE_CAMERA = PinholeCamera(fx=310.0, fy=290.0, cx=330.0, cy=236.0, width=640, height=480)


def test_portrait_follows_the_documented_formulas():
    points = np.array([[10.0, 20.0], [0.0, 0.0], [511.0, 511.0]])
    np.testing.assert_array_equal(
        Turn("landscape", "portrait").points_2d(points, 512, 512), [[512 - 20 - 1, 10], [511, 0], [0, 511]]
    )
    np.testing.assert_array_equal(PORTRAIT_FROM_LANDSCAPE, [[0, -1, 0], [1, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(
        Turn("landscape", "portrait").points_3d(np.array([1.0, 2.0, 3.0])), [-2.0, 1.0, 3.0]
    )
    np.testing.assert_array_equal(
        Turn("landscape", "portrait").points_3d(np.array([[1.0, 2.0, 3.0]])),
        [PORTRAIT_FROM_LANDSCAPE @ [1, 2, 3]],
    )


def test_landscape_is_the_identity():
    image = np.arange(12).reshape(3, 4)
    points = np.array([[1.5, 2.0]])
    assert Turn("landscape", "landscape").image(image) is image
    np.testing.assert_array_equal(Turn("landscape", "landscape").points_2d(points, 4, 3), points)
    np.testing.assert_array_equal(Turn("landscape", "landscape").points_3d(np.ones((2, 3))), np.ones((2, 3)))
    assert Turn("landscape", "landscape").camera(WIDE_CAMERA) == WIDE_CAMERA


def test_portrait_image_undoes_the_benchmark_rot90():
    image = np.arange(24).reshape(4, 6)
    portrait = Turn("landscape", "portrait").image(image)
    assert portrait.shape == (6, 4)
    np.testing.assert_array_equal(np.rot90(portrait), image)  # the benchmark's np.rot90 turns it back
    colour = np.arange(4 * 6 * 3).reshape(4, 6, 3)
    np.testing.assert_array_equal(
        Turn("landscape", "portrait").image(colour)[..., 1],
        Turn("landscape", "portrait").image(colour[..., 1]),
    )


@pytest.mark.parametrize(("x", "y"), [(0, 0), (5, 0), (0, 3), (2, 1), (5, 3)])
def test_a_drawn_pixel_moves_where_the_turn_says(x, y):
    height, width = 4, 6
    image = np.zeros((height, width), np.uint8)
    image[y, x] = 255
    portrait = Turn("landscape", "portrait").image(image)
    new_x, new_y = Turn("landscape", "portrait").points_2d(np.array([x, y], dtype=float), width, height)
    assert np.argwhere(portrait == 255).tolist() == [[int(new_y), int(new_x)]]


def test_rotated_camera_sees_rotated_points_where_the_rotated_pixels_are():
    rng = np.random.default_rng(1)
    points = rng.uniform([-0.3, -0.3, 0.3], [0.3, 0.3, 1.5], size=(40, 3))
    for camera in (WIDE_CAMERA, BENCHMARK_CAMERA):
        rotated = Turn("landscape", "portrait").camera(camera)
        assert (rotated.width, rotated.height) == (camera.height, camera.width)
        np.testing.assert_allclose(
            rotated.project(Turn("landscape", "portrait").points_3d(points)),
            Turn("landscape", "portrait").points_2d(camera.project(points), camera.width, camera.height),
            atol=1e-9,
        )
        pixels = camera.project(points)
        np.testing.assert_array_equal(
            rotated.contains(Turn("landscape", "portrait").points_2d(pixels, camera.width, camera.height)),
            camera.contains(pixels),
        )


def test_a_projected_point_drawn_and_rotated_lands_on_the_rotated_projection():
    camera = WIDE_CAMERA
    point = camera.unproject(np.array([100.0, 300.0]), 0.8)  # projects onto an exact pixel centre
    image = np.zeros((camera.height, camera.width), np.uint8)
    u, v = np.rint(camera.project(point)).astype(int)
    image[v, u] = 1
    portrait = Turn("landscape", "portrait").image(image)
    rotated_pixel = (
        Turn("landscape", "portrait").camera(camera).project(Turn("landscape", "portrait").points_3d(point))
    )
    assert portrait.shape == (camera.width, camera.height)
    assert np.argwhere(portrait == 1).tolist() == [[round(rotated_pixel[1]), round(rotated_pixel[0])]]
    np.testing.assert_allclose(rotated_pixel, np.rint(rotated_pixel), atol=1e-9)


@pytest.mark.parametrize(
    "call",
    [
        lambda: Turn("landscape", "upright"),
        lambda: Turn("upright", "portrait"),
    ],
)
def test_unknown_orientation_is_an_input_error(call):
    with pytest.raises(InputError, match=r"'upright'.*landscape, portrait"):
        call()


@pytest.mark.parametrize("camera", [WIDE_CAMERA, BENCHMARK_CAMERA], ids=["wide", "benchmark"])
def test_turning_back_undoes_a_turn(camera):
    rng = np.random.default_rng(2)
    image = rng.integers(0, 255, (camera.height, camera.width, 3), dtype=np.uint8)
    pixels = rng.uniform(0, 400, size=(10, 2))
    points = rng.uniform(-1, 1, size=(10, 3))
    turn = Turn("landscape", "portrait")
    turned = turn.image(image)
    np.testing.assert_array_equal(turn.inverse.image(turned), image)
    back = turn.inverse.points_2d(
        turn.points_2d(pixels, camera.width, camera.height), camera.height, camera.width
    )
    np.testing.assert_allclose(back, pixels, atol=1e-12)
    np.testing.assert_allclose(turn.inverse.points_3d(turn.points_3d(points)), points, atol=1e-12)
    assert turn.inverse.camera(turn.camera(camera)) == camera
    assert turn.inverse.inverse == turn and Turn("portrait", "portrait").identity
