"""Trainings for test_training.py to run under torchrun: `torchrun ... torchrun_training.py RUNS.json`,
where RUNS.json lists TrainOptions as JSON objects (paths as strings), run one after the other in one
process group (starting processes is most of their time)."""

import json
import sys
from pathlib import Path

import torch.distributed as dist

from hand_pose_core.learn.training import TrainOptions, train

PATHS = ("gt_dir", "out", "image_dir", "resume")

if __name__ == "__main__":
    dist.init_process_group("gloo")
    for run in json.loads(Path(sys.argv[1]).read_text()):
        train(TrainOptions(**{k: Path(v) if k in PATHS and v is not None else v for k, v in run.items()}))
    dist.destroy_process_group()
