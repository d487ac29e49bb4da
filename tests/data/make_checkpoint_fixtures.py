#!/usr/bin/python3
"""Writes tests/data/checkpoints/: small torch.save files for the checkpoint reader's tests
(tests/test_torch_checkpoint.cpp), so those tests need no Python. Run with Debian's python3-torch
(the legacy format's record of each module class's source file gets this script's name, not a
path):

    /usr/bin/python3 tests/data/make_checkpoint_fixtures.py

Every tensor's values follow one formula that the C++ test computes too: element i (row-major)
is ((37 i) mod 23 - 11) / 4 for floating types, (37 i) mod 23 - 11 for signed integers,
(37 i) mod 23 for uint8 and odd((37 i) mod 23) for bool.
"""
import os
from collections import OrderedDict

import torch
import torch.nn as nn

DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.int32,
          torch.int16, torch.int8, torch.uint8, torch.bool]


def pattern(shape, dtype):
    n = 1
    for s in shape:
        n *= s
    k = (torch.arange(n, dtype=torch.int64) * 37) % 23
    if dtype == torch.bool:
        v = k % 2 == 1
    elif dtype == torch.uint8:
        v = k.to(torch.uint8)
    elif dtype.is_floating_point:
        v = ((k - 11).to(torch.float64) / 4).to(dtype)
    else:
        v = (k - 11).to(dtype)
    return v.reshape(shape)


def state_dict():
    d = OrderedDict()
    for i, dtype in enumerate(DTYPES):
        d[str(dtype).replace("torch.", "")] = pattern((2, 3 + i), dtype)
    base = pattern((4, 6), torch.float32)
    # Views of one storage: an offset row and a transposed (non-contiguous) view.
    return {"model": d, "shared": {"base": base, "row": base[2], "t": base.t()}, "epoch": 3, "names": ["a", "b"],
            "list": [pattern((2,), torch.float32), pattern((3,), torch.int64)]}


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.res_path = nn.Sequential(OrderedDict([("relu", nn.ReLU()), ("conv_1", nn.Conv2d(2, 3, 1))]))
        self.register_buffer("scale", torch.ones(3))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(OrderedDict([("group_1", nn.Sequential(OrderedDict([("block_1", Block())]))),
                                                 ("output", nn.Linear(3, 2))]))
        self.heads = nn.ModuleList([nn.Linear(2, 2, bias=False)])
        self.device = torch.device("cpu")
        with torch.no_grad():
            for name, t in list(self.named_parameters()) + list(self.named_buffers()):
                t.copy_(pattern(t.shape, t.dtype))


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.save(state_dict(), os.path.join(out, "state_dict_legacy.pt"), _use_new_zipfile_serialization=False)
    torch.save(state_dict(), os.path.join(out, "state_dict_zip.pt"))
    torch.save(Net(), os.path.join(out, "module_zip.pt"))
    torch.save(Net(), os.path.join(out, "module_legacy.pt"), _use_new_zipfile_serialization=False)


if __name__ == "__main__":
    import sys
    import warnings

    warnings.filterwarnings("ignore", message="Couldn't retrieve source code")
    here = os.path.dirname(os.path.abspath(__file__))
    # The legacy format records each module class's source file: this script's name, not its path.
    os.chdir(here)
    sys.modules["__main__"].__file__ = os.path.basename(__file__)
    main(os.path.join(here, "checkpoints"))
