"""The live frame: `HandPosePipeline` (find hands, 3D, placement, tracking), decoding, drawings."""
