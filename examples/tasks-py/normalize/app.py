"""Rescaling a block to [0, 1], written in Python: a Tessera task component built
with componentize-py (``cargo xtask build-tasks``).

``minmax`` gives one block's range as JSON; the caller combines the blocks' ranges
into the array's and passes it to ``normalize``, which maps every value ``v`` to
``(v - min) / (max - min)``, clipped to [0, 1], as float64.

Only the standard library is available inside the component (no numpy), so blocks
are decoded from and encoded to their raw little-endian bytes with ``struct``.
"""

import json
import math
import struct

import wit_world
from componentize_py_types import Err
from wit_world.imports.types import (
    Context,
    Dtype,
    Ndarray,
    TaskInfo,
    Value,
    Value_Array,
    Value_Json,
)

# The `struct` code of each numeric element type (bool is not a number here).
STRUCT_CODES = {
    Dtype.I8: "b",
    Dtype.I16: "h",
    Dtype.I32: "i",
    Dtype.I64: "q",
    Dtype.U8: "B",
    Dtype.U16: "H",
    Dtype.U32: "I",
    Dtype.U64: "Q",
    Dtype.F32: "f",
    Dtype.F64: "d",
}

# What a `Value` variant is called in error messages.
VALUE_KINDS = {
    "Value_Array": "an array",
    "Value_Table": "a table",
    "Value_Bytes": "bytes",
    "Value_Json": "JSON",
}


class TaskError(Exception):
    """A failure to report to the caller as the task's error message."""


def elements(task: str, args: list[Value]) -> tuple[float, ...]:
    """The values of the task's one argument, a numeric array block."""
    if len(args) != 1:
        raise TaskError(f"task `{task}` takes 1 argument (block), got {len(args)}")
    arg = args[0]
    if not isinstance(arg, Value_Array):
        kind = VALUE_KINDS.get(type(arg).__name__, type(arg).__name__)
        raise TaskError(f"task `{task}`: argument 1 `block`: expected an array, got {kind}")
    block = arg.value
    code = STRUCT_CODES.get(block.dtype)
    if code is None:
        raise TaskError(
            f"task `{task}`: argument 1 `block`: expected a numeric array, got dtype {block.dtype.name.lower()}"
        )
    count = math.prod(block.shape)
    size = struct.calcsize("<" + code)
    if len(block.data) != count * size:
        raise TaskError(
            f"task `{task}`: argument 1 `block`: shape {block.shape} needs {count * size} bytes, "
            f"got {len(block.data)}"
        )
    return struct.unpack(f"<{count}{code}", block.data)


def bounds(task: str, params: str) -> tuple[float, float]:
    """The `min` and `max` of the task's params, checked: finite numbers, min < max."""
    try:
        parsed = json.loads(params)
    except ValueError as err:
        raise TaskError(f"task `{task}`: params are not JSON: {err}") from None
    if not isinstance(parsed, dict):
        raise TaskError(f'task `{task}`: params must be {{"min": number, "max": number}}, got {params}')
    found = []
    for name in ("min", "max"):
        v = parsed.get(name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise TaskError(f"task `{task}`: params `{name}` must be a finite number, got {json.dumps(v)}")
        found.append(float(v))
    lo, hi = found
    if not lo < hi:
        raise TaskError(f"task `{task}`: params `min` ({lo}) must be less than `max` ({hi})")
    return lo, hi


def minmax(args: list[Value], params: str) -> Value:
    """The block's value count and range as JSON (NaNs are skipped; null when none is left)."""
    values = [v for v in elements("minmax", args) if not (isinstance(v, float) and math.isnan(v))]
    summary = {"count": len(values), "min": min(values, default=None), "max": max(values, default=None)}
    return Value_Json(json.dumps(summary))


def normalize(args: list[Value], params: str) -> Value:
    """The block rescaled from [min, max] to [0, 1] and clipped, as float64."""
    values = elements("normalize", args)
    lo, hi = bounds("normalize", params)
    scale = 1.0 / (hi - lo)
    scaled = [min(1.0, max(0.0, (v - lo) * scale)) if v == v else v for v in values]
    shape = list(args[0].value.shape)
    return Value_Array(Ndarray(Dtype.F64, shape, struct.pack(f"<{len(scaled)}d", *scaled)))


# The tasks, in the order `tasks()` lists them: (function, signature).
TASKS = [
    (minmax, "(block: array<number>) -> json {count, min, max}"),
    (normalize, "(block: array<number>, params: {min: number, max: number}) -> array<f64>"),
]


class WitWorld(wit_world.WitWorld):
    """The `task` world of `core/wit/tessera.wit`."""

    def call(self, name: str, args: list[Value], params: str, ctx: Context) -> Value:
        for function, _ in TASKS:
            if function.__name__ == name:
                try:
                    return function(args, params)
                except TaskError as err:
                    raise Err(str(err)) from None
        known = ", ".join(function.__name__ for function, _ in TASKS)
        raise Err(f"no task `{name}` in this component (it has: {known})")

    def tasks(self) -> list[TaskInfo]:
        return [TaskInfo(function.__name__, function.__doc__, signature) for function, signature in TASKS]
