#!/usr/bin/env python3
"""Reads a TensorBoard log directory with TensorBoard's own reader (EventAccumulator) and prints
{tag: [[step, value], …]} as JSON, plus "files": the event files it holds.
Exit code 3 when the tensorboard package is missing (the caller skips)."""
import json
import os
import sys

try:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
except ImportError as e:
    print(f"missing: {e}", file=sys.stderr)
    sys.exit(3)

directory = sys.argv[1]
accumulator = EventAccumulator(directory, size_guidance={"scalars": 0})
accumulator.Reload()
result = {tag: [[e.step, e.value] for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}
result["files"] = sorted(f for f in os.listdir(directory) if "tfevents" in f)
print(json.dumps(result))
