"""Event representations, the event simulator and synthetic event takes, on hand-made events and frames
whose right answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hand_pose_core.errors import InputError
from hand_pose_core.events.arrays import Events
from hand_pose_core.events.representations import (
    COUNT_SATURATION,
    KINDS,
    EventRepresentation,
    to_rgb,
)
from hand_pose_core.events.simulate import LOG_OFFSET, SimulatorSettings, simulate_events
from hand_pose_core.geometry.crop import keypoint_box
from hand_pose_core.synth.events import frame_time_ns, render_event_take
from hand_pose_core.synth.generator import FRAME_STEP, SynthConfig, generate

MS = 1_000_000


def make_events(rows: list[tuple[int, int, int, int]], width: int = 5, height: int = 3) -> Events:
    """Events from (x, y, t, p) rows, sorted by time."""
    rows = sorted(rows, key=lambda row: row[2])
    x, y, t, p = (np.array([row[i] for row in rows]) for i in range(4)) if rows else ([], [], [], [])
    return Events(
        width,
        height,
        np.asarray(x, np.uint16),
        np.asarray(y, np.uint16),
        np.asarray(t, np.int64),
        np.asarray(p, np.uint8),
    )


def representation(kind: str, **window: int) -> EventRepresentation:
    extra = {"voxel_grid": {"bins": 3}, "time_surface": {"decay_ns": 10}}.get(kind, {})
    return EventRepresentation(kind, **(window or {"window_ns": 100}), **extra)


# --- representations ---


def test_counts_per_polarity_on_a_non_square_sensor():
    events = make_events(
        [(4, 2, t, 1) for t in (1, 2, 3)] + [(4, 2, 4, 0)] + [(0, 1, t, 0) for t in range(20)]
    )
    image = representation("counts").render(events, 100)
    assert image.shape == (3, 5, 2) and image.dtype == np.float32
    assert image[2, 4].tolist() == [3 / COUNT_SATURATION, 1 / COUNT_SATURATION]
    assert image[1, 0].tolist() == [0.0, 1.0]  # 20 OFF events saturate
    image[2, 4] = image[1, 0] = 0
    assert not image.any()


def test_lnes_latest_timestamp_wins_and_is_normalised_to_the_window():
    events = make_events([(1, 0, 110, 1), (1, 0, 170, 1), (1, 0, 140, 0), (3, 2, 100, 1), (2, 2, 199, 0)])
    image = representation("lnes").render(events, 200)  # window [100, 200)
    np.testing.assert_allclose(image[0, 1], [0.7, 0.4])
    assert image[2, 3, 0] == 0.0  # an event at the window's start
    assert image[2, 2, 1] == pytest.approx(0.99)
    assert image.min() >= 0.0 and image.max() < 1.0


def test_voxel_grid_splits_each_event_between_neighbouring_bins():
    events = make_events([(0, 0, 25, 1), (0, 0, 75, 0), (4, 2, 50, 1), (2, 1, 0, 0)])
    image = representation("voxel_grid").render(events, 100)  # bins at t = 0, 50, 100
    unit = 1 / COUNT_SATURATION
    np.testing.assert_allclose(image[0, 0], [0.5 * unit, 0.0, -0.5 * unit], atol=1e-7)
    np.testing.assert_allclose(image[2, 4], [0.0, unit, 0.0])
    np.testing.assert_allclose(image[1, 2], [-unit, 0.0, 0.0])
    assert image.sum() * COUNT_SATURATION == pytest.approx(1 - 1 + 1 - 1)


def test_voxel_grid_sum_is_the_signed_event_count():
    rng = np.random.default_rng(0)
    rows = [(int(x), int(y), int(t), int(p)) for x, y, t, p in rng.integers(0, [5, 3, 1000, 2], size=(60, 4))]
    image = EventRepresentation("voxel_grid", window_ns=1000, bins=5).render(make_events(rows), 1000)
    signed = sum(1 if p else -1 for *_, p in rows)
    assert image.shape == (3, 5, 5)
    assert image.sum() * COUNT_SATURATION == pytest.approx(signed)


def test_time_surface_decays_from_each_pixels_latest_event():
    events = make_events([(0, 0, 80, 1), (1, 1, 30, 0), (1, 1, 90, 0), (1, 1, 95, 1)])
    image = representation("time_surface").render(events, 100)  # decay 10 ns
    assert image[0, 0, 0] == pytest.approx(math.exp(-2.0))
    assert image[1, 1, 1] == pytest.approx(math.exp(-1.0))
    assert image[1, 1, 0] == pytest.approx(math.exp(-0.5))
    assert image[0, 0, 1] == 0.0 and image[2].max() == 0.0


def test_fixed_count_and_fixed_time_windows():
    events = make_events([(t % 5, t % 3, t * 10, 1) for t in range(10)], width=5, height=3)
    by_count = EventRepresentation("lnes", window_events=3)
    assert by_count.window(events, 80).t.tolist() == [50, 60, 70]
    assert EventRepresentation("lnes", window_ns=30).window(events, 80).t.tolist() == [50, 60, 70]
    assert by_count.window(events, 15).t.tolist() == [0, 10]  # fewer than asked for before t = 15
    image = by_count.render(events, 80)  # the count window starts at its first event, t = 50
    assert sorted(image[image > 0].tolist()) == pytest.approx([1 / 3, 2 / 3])


@pytest.mark.parametrize("kind", KINDS)
def test_empty_windows_render_zeros_of_the_right_shape(kind):
    late = make_events([(1, 1, 500, 1)], width=7, height=4)
    for config in (representation(kind), representation(kind, window_events=4)):
        image = config.render(late, 400)
        assert image.shape == (4, 7, config.channels) and image.dtype == np.float32
        assert not image.any()
    assert not representation(kind).render(Events(7, 4), 0).any()


@pytest.mark.parametrize("kind", KINDS)
def test_every_representation_stays_in_its_range(kind):
    rng = np.random.default_rng(1)
    rows = [(int(x), int(y), int(t), int(p)) for x, y, t, p in rng.integers(0, [9, 6, 100, 2], size=(400, 4))]
    config = representation(kind)
    image = config.render(make_events(rows, width=9, height=6), 100)
    low, high = config.value_range
    assert image.shape == (6, 9, config.channels)
    assert image.min() >= low and image.max() <= high and np.abs(image).max() > 0.5


def test_events_outside_the_sensor_are_refused():
    with pytest.raises(InputError, match="outside the 5x3 sensor"):
        representation("counts").render(make_events([(5, 0, 10, 1)]), 100)


def test_config_round_trips_and_refuses_nonsense():
    config = EventRepresentation("voxel_grid", window_ns=66_700_000, bins=5)
    assert EventRepresentation.from_dict(config.to_dict()) == config
    assert config.channels == 5 and config.value_range == (-1.0, 1.0)
    assert EventRepresentation("lnes", window_events=5000).channels == 2
    bad = [
        {"kind": "frames", "window_ns": 10},
        {"kind": "counts"},
        {"kind": "counts", "window_ns": 10, "window_events": 10},
        {"kind": "counts", "window_ns": -1},
        {"kind": "counts", "window_ns": 1.5},
        {"kind": "counts", "window_ns": True},
        {"kind": "counts", "window_ns": 10, "bins": 3},
        {"kind": "voxel_grid", "window_ns": 10},
        {"kind": "time_surface", "window_ns": 10},
        {"kind": "lnes", "window_ns": 10, "decay_ns": 5},
        {"kind": "lnes", "window_ns": 10, "colour": "red"},
        {"window_ns": 10},
        ["lnes"],
    ]
    for data in bad:
        with pytest.raises(InputError, match=r"^model\.json representation: "):
            EventRepresentation.from_dict(data, "model.json representation")


def test_pictures_show_polarity_and_time_in_colour():
    events = make_events([(0, 0, 90, 1), (1, 0, 95, 0)])
    for kind in ("counts", "lnes", "time_surface"):
        picture = to_rgb(representation(kind).render(events, 100), kind)
        assert picture.shape == (3, 5, 3) and picture.dtype == np.uint8
        on, off = picture[0, 0].astype(int), picture[0, 1].astype(int)
        assert on[0] > on[2] and off[2] > off[0]
        assert not picture[1:].any()
    voxels = make_events([(0, 0, 0, 1), (1, 0, 99, 0)])
    picture = to_rgb(representation("voxel_grid").render(voxels, 100), "voxel_grid").astype(int)
    old, new = picture[0, 0], picture[0, 1]
    assert old[2] > old[1] and new[1] > new[2]  # violet early, yellow late
    with pytest.raises(InputError, match="counts image is"):
        to_rgb(np.zeros((3, 5, 3), np.float32), "counts")


# --- simulator ---

EXACT = SimulatorSettings(threshold_spread=0.0, refractory_ns=0, noise_hz=0.0)


def grey(log_value: float, shape: tuple[int, int] = (2, 3)) -> np.ndarray:
    """A float frame whose pixels all have log intensity `log_value` as the simulator takes it."""
    return np.full(shape, math.exp(log_value) - LOG_OFFSET)


def test_brightening_and_darkening_fire_one_event_per_whole_threshold():
    base = math.log(0.3)
    frames = [(0, grey(base)), (10 * MS, grey(base + 0.9)), (20 * MS, grey(base + 0.9 - 0.5))]
    events = simulate_events(frames, EXACT)
    assert events.width == 3 and events.height == 2 and len(events) == 6 * (4 + 2)
    brightening = events.between(0, 10 * MS + 1)
    assert len(brightening) == 6 * 4 and (brightening.p == 1).all()  # floor(0.9 / 0.2)
    # Levels base + 0.2, 0.4, 0.6, 0.8 crossed on the straight line from base to base + 0.9.
    expected = [round(level / 0.9 * 10 * MS) for level in (0.2, 0.4, 0.6, 0.8)]
    assert sorted(set(brightening.t.tolist())) == expected
    darkening = events.between(10 * MS + 1, 20 * MS + 1)
    # From the remembered level base + 0.8 down to base + 0.4: levels 0.6 and 0.4, not floor(0.5 / 0.2)
    # from the frame's own value.
    assert len(darkening) == 6 * 2 and (darkening.p == 0).all()
    assert darkening.t.min() > 10 * MS and darkening.t.max() <= 20 * MS
    assert (np.diff(events.t) >= 0).all()


def test_small_changes_accumulate_against_the_remembered_level():
    base = math.log(0.3)
    frames = [(i * MS, grey(base + 0.15 * i, (1, 1))) for i in range(5)]  # +0.6 in 4 steps of 0.15
    events = simulate_events(frames, EXACT)
    assert len(events) == 3  # levels 0.2, 0.4, 0.6 though no step crosses a threshold alone
    assert events.t.tolist() == [round(4 / 3 * MS), round(8 / 3 * MS), 4 * MS]


def test_refractory_period_suppresses_events_after_each_event():
    base = math.log(0.2)
    frames = [(0, grey(base, (1, 1))), (10 * MS, grey(base + 1.0, (1, 1)))]  # crossings every 2 ms
    assert simulate_events(frames, EXACT).t.tolist() == [2 * MS, 4 * MS, 6 * MS, 8 * MS, 10 * MS]
    blind = SimulatorSettings(threshold_spread=0.0, refractory_ns=3 * MS, noise_hz=0.0)
    assert simulate_events(frames, blind).t.tolist() == [2 * MS, 6 * MS, 10 * MS]


def test_background_noise_comes_at_the_asked_rate():
    settings = SimulatorSettings(noise_hz=2.0)
    frames = [(i * 100 * MS, np.full((100, 100), 128, np.uint8)) for i in range(11)]  # 1 s, static
    events = simulate_events(frames, settings, seed=3)
    assert len(events) == pytest.approx(2.0 * 100 * 100 * 1.0, rel=0.05)
    assert events.p.mean() == pytest.approx(0.5, abs=0.02)
    assert events.t.min() > 0 and events.t.max() <= 1000 * MS and (np.diff(events.t) >= 0).all()
    assert np.bincount(events.x, minlength=100).min() > 100  # spread over the sensor


def test_same_seed_same_events_and_rgb_is_seen_as_grey():
    rng = np.random.default_rng(0)
    frames = [(i * 5 * MS, rng.integers(0, 256, size=(8, 6), dtype=np.uint8)) for i in range(4)]
    settings = SimulatorSettings(noise_hz=50.0, refractory_ns=MS)
    first, again = simulate_events(frames, settings, seed=7), simulate_events(frames, settings, seed=7)
    assert len(first) > 50
    for name in ("x", "y", "t", "p"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    other = simulate_events(frames, settings, seed=8)
    assert len(other) != len(first) or (other.t != first.t).any()
    rgb = [(t, np.repeat(frame[..., None], 3, axis=2)) for t, frame in frames]
    np.testing.assert_array_equal(simulate_events(rgb, settings, seed=7).t, first.t)


def test_simulator_refuses_bad_frame_sequences():
    frame = np.zeros((4, 4), np.uint8)
    with pytest.raises(InputError, match="not after"):
        simulate_events([(5, frame), (5, frame)])
    with pytest.raises(InputError, match="frame 1 is"):
        simulate_events([(0, frame), (1, np.zeros((4, 5), np.uint8))])
    with pytest.raises(InputError, match="not grey or RGB"):
        simulate_events([(0, np.zeros((4, 4, 4), np.uint8))])
    with pytest.raises(InputError, match="no frames"):
        simulate_events([])
    with pytest.raises(InputError, match="thresholds must be positive"):
        SimulatorSettings(threshold_off=0.0)


# --- synthetic event takes ---

SYNTH = SynthConfig(takes=3, frames=2, seed=3)
TEST_TAKE = 2  # the test split: its boxes are drawn at random too


@pytest.fixture(scope="module")
def event_take():
    return render_event_take(SYNTH, TEST_TAKE, renders_per_frame=5)


def test_event_take_has_the_image_takes_annotation(event_take, tmp_path):
    images = generate(tmp_path, SYNTH, progress=False)
    assert event_take.split == "test"
    expected = images.annotations["test"].takes[event_take.annotation.take_uid]
    assert event_take.annotation.take_name == expected.take_name
    assert list(event_take.annotation.frames) == list(expected.frames) and expected.frames
    for number, frame in expected.frames.items():
        ours = event_take.annotation.frames[number]
        assert list(ours.hands) == list(frame.hands)
        for side, hand in frame.hands.items():
            for name in ("joints_3d", "joints_2d", "bbox", "valid_3d"):
                np.testing.assert_array_equal(getattr(ours.hands[side], name), getattr(hand, name))


def test_event_take_events_cluster_on_the_moving_hands(event_take):
    events = event_take.events
    numbers = list(event_take.annotation.frames)
    assert (events.width, events.height) == (512, 512) and (np.diff(events.t) >= 0).all()
    assert events.t[0] > frame_time_ns(numbers[0] - FRAME_STEP) and events.t[-1] <= frame_time_ns(
        numbers[-1] + 1
    )
    for number, frame in event_take.annotation.frames.items():
        window = events.between(frame_time_ns(number) - 33 * MS, frame_time_ns(number))
        hands = np.zeros((512, 512), bool)
        for hand in frame.hands.values():
            joints = hand.joints_2d[np.isfinite(hand.joints_2d).all(axis=1)]
            x1, y1, x2, y2 = keypoint_box(joints, 512, 512).astype(int)
            hands[y1 : y2 + 1, x1 : x2 + 1] = True
        on_hands = hands[window.y, window.x]
        density_on_hands = on_hands.sum() / hands.sum()
        density_elsewhere = (~on_hands).sum() / (~hands).sum()
        assert len(window) > 1000 and density_on_hands > 3 * density_elsewhere


def test_event_take_is_deterministic_for_seed_and_take():
    small = SynthConfig(takes=3, frames=1, seed=5)
    first, again = (render_event_take(small, 0, renders_per_frame=2) for _ in range(2))
    np.testing.assert_array_equal(first.events.t, again.events.t)
    np.testing.assert_array_equal(first.events.x, again.events.x)
    assert len(first.events) > 100
    other = render_event_take(small, 1, renders_per_frame=2)
    assert other.annotation.take_uid != first.annotation.take_uid
    with pytest.raises(InputError, match="takes 0 to 2"):
        render_event_take(small, 3)
