"""Storing an ONNX model's float32 weights as float16 where that is exact, each with a Cast back to
float32 under its original name.

The MediaPipe weights are float16 to begin with, so every one of their float32 initializers round-trips
exactly: the file halves and the outputs stay identical. ONNX Runtime folds the Casts into constants
when a session starts, so inference costs the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx


def _exact_in_fp16(initializer: onnx.TensorProto, min_elements: int) -> bool:
    from onnx import TensorProto, numpy_helper

    if initializer.data_type != TensorProto.FLOAT:
        return False
    values = numpy_helper.to_array(initializer)
    round_trip = values.astype(np.float16).astype(np.float32)  # overflow and NaN never compare equal
    return values.size >= min_elements and np.array_equal(round_trip, values)


def store_weights_as_fp16(model: onnx.ModelProto, min_elements: int = 16) -> onnx.ModelProto:
    """A copy of `model` where each float32 initializer of at least `min_elements` values that float16
    represents exactly is stored as float16 plus a Cast to float32; small ones (scales, shapes) stay."""
    import onnx
    from onnx import numpy_helper

    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    graph_inputs = {i.name for i in graph.input}
    taken = {i.name for i in graph.initializer} | {o for node in graph.node for o in node.output}
    initializers, casts = [], []
    for initializer in graph.initializer:
        if not _exact_in_fp16(initializer, min_elements) or initializer.name in graph_inputs:
            initializers.append(initializer)
            continue
        halves = numpy_helper.to_array(initializer).astype(np.float16)
        half_name = f"{initializer.name}_fp16"
        while half_name in taken:
            half_name += "_"
        taken.add(half_name)
        initializers.append(numpy_helper.from_array(halves, half_name))
        casts.append(
            onnx.helper.make_node(
                "Cast", [half_name], [initializer.name], name=f"{half_name}_cast", to=onnx.TensorProto.FLOAT
            )
        )
    nodes = casts + list(graph.node)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    del graph.node[:]
    graph.node.extend(nodes)
    return result
