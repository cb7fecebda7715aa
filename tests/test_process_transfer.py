"""How messages cross between the GUI process and a worker process: large arrays and images through shared memory
(and nothing left behind in it), small things inline, torch refused on the GUI side."""

from __future__ import annotations

import os
import pickle
import threading

import numpy as np
import pytest
from PIL import Image

from desktop.api import AudioOutput, ImageOutput, TextOutput
from desktop.engine.process import transfer


def segments() -> set[str]:
    """This process's shared-memory segments (Linux keeps them in /dev/shm)."""
    return {n for n in os.listdir("/dev/shm") if n.startswith(transfer.segment_prefix(os.getpid()))}


def test_large_images_and_arrays_cross_through_shared_memory_and_come_back_equal():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8), "RGB")
    samples = rng.standard_normal((48_000, 2)).astype(np.float32)
    message = [ImageOutput(image=image, metadata={"seed": 1}), AudioOutput(samples=samples, sample_rate=48_000),
               TextOutput(text="words")]
    data = transfer.dumps(message)
    assert len(data) < 4096  # 196 KB of pixels and 384 KB of samples are not in the pickle
    assert len(segments()) == 2  # written once, waiting for the receiver
    received = transfer.loads(data, host=True)
    assert segments() == set()  # the receiver removed them
    assert received[0].image.tobytes() == image.tobytes() and received[0].image.mode == "RGB"
    assert received[0].metadata == {"seed": 1}
    np.testing.assert_array_equal(received[1].samples, samples)
    assert received[1].samples.dtype == np.float32 and received[1].samples.flags.writeable
    assert received[2].text == "words"


def test_small_things_are_pickled_inline():
    small = np.arange(10, dtype=np.int64)
    data = transfer.dumps({"a": small, "image": Image.new("L", (8, 8))})
    assert segments() == set()
    back = transfer.loads(data)
    np.testing.assert_array_equal(back["a"], small)
    assert back["image"].size == (8, 8)


def test_a_message_that_cannot_be_pickled_leaves_no_segment_behind():
    big = np.zeros(1 << 20, dtype=np.uint8)
    with pytest.raises((TypeError, pickle.PicklingError)):
        transfer.dumps([big, threading.Lock()])  # the array's segment is written before the lock fails
    assert segments() == set()


def test_the_gui_side_refuses_to_import_torch_to_read_a_message():
    refused = pickle.dumps(print).replace(b"builtins", b"torch.nn")  # a global of torch.nn (same name length)
    with pytest.raises(transfer.RefusedObject, match="torch.nn.print"):
        transfer.loads(refused, host=True)
    assert transfer.loads(pickle.dumps(("torch", "Tensor")), host=True) == ("torch", "Tensor")  # names are data


def test_pack_keeps_the_request_id_readable_when_the_payload_is_not():
    kind, request, payload = transfer.unpack(transfer.pack("done", 7, {"x": 1}))
    assert (kind, request) == ("done", 7) and transfer.loads(payload) == {"x": 1}


def test_a_dead_workers_leftover_segments_are_removed():
    name = transfer._new_segment(memoryview(b"x" * 100))  # as a worker that died before sending it
    assert name in segments()
    assert transfer.remove_leftover_segments(os.getpid()) == 1
    assert segments() == set()
