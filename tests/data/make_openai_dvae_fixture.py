#!/usr/bin/python3
"""Writes the fixture for the OpenAI dVAE import test (tests/test_openai_import.cpp).

Builds a small dVAE with the module structure of OpenAI's released `dall_e` package (classes
dall_e.encoder.Encoder / dall_e.decoder.Decoder made of dall_e.utils.Conv2d, attribute names
blocks.group_N.block_M.res_path.conv_K.w), written here from the published architecture, saves
the whole modules with torch.save as OpenAI did (encoder.pkl, decoder.pkl; plus a legacy-format
encoder and an fp16 decoder), and runs the reference forward passes in fp32 on the CPU, as the
released code does there: tokens are the argmax of the encoder's logits, reconstructions are
unmap(sigmoid(decoder(one_hot(tokens)))[:3]).

Outputs, little-endian raw arrays described by meta.json: images.u8 [N,H,W,3], logits.f32
[N,V,h,w], tokens.i64 [N,h,w], recon.f32 [N,3,H,W].

Needs Debian's python3-torch: /usr/bin/python3 tests/data/make_openai_dvae_fixture.py OUT_DIR
"""
import json
import math
import os
import sys
import types
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

EPS = 0.1


def register(module_name, *classes):
    """Makes `classes` importable as module_name.<Class>, so pickles name them as OpenAI's do."""
    for parent in ("dall_e",):
        sys.modules.setdefault(parent, types.ModuleType(parent))
    mod = sys.modules.setdefault(module_name, types.ModuleType(module_name))
    for cls in classes:
        cls.__module__ = module_name
        setattr(mod, cls.__name__, cls)


class Conv2d(nn.Module):
    def __init__(self, n_in, n_out, kw, use_float16=True):
        super().__init__()
        self.n_in, self.n_out, self.kw, self.use_float16 = n_in, n_out, kw, use_float16
        self.device = torch.device("cpu")
        self.requires_grad = False
        w = torch.empty((n_out, n_in, kw, kw), dtype=torch.float32).normal_(std=1 / math.sqrt(n_in * kw**2))
        self.w = nn.Parameter(w, requires_grad=False)
        # Non-zero biases, so the test sees them used (the released init is zero).
        self.b = nn.Parameter(torch.empty((n_out,), dtype=torch.float32).normal_(std=0.05), requires_grad=False)

    def forward(self, x):  # the CPU path: fp32
        return F.conv2d(x.float(), self.w.float(), self.b.float(), padding=(self.kw - 1) // 2)


class ResBlock(nn.Module):
    """id_path(x) + post_gain * res_path(x); the two halves differ only in their kernel sizes."""

    kernels = (3, 3, 3, 1)

    def __init__(self, n_in, n_out, n_layers):
        super().__init__()
        self.n_in, self.n_out, self.n_layers = n_in, n_out, n_layers
        n_hid = n_out // 4
        self.post_gain = 1 / n_layers**2
        self.id_path = Conv2d(n_in, n_out, 1) if n_in != n_out else nn.Identity()
        widths = [n_in, n_hid, n_hid, n_hid, n_out]
        layers = []
        for i, kw in enumerate(self.kernels):
            layers += [(f"relu_{i + 1}", nn.ReLU()), (f"conv_{i + 1}", Conv2d(widths[i], widths[i + 1], kw))]
        self.res_path = nn.Sequential(OrderedDict(layers))

    def forward(self, x):
        return self.id_path(x) + self.post_gain * self.res_path(x)


class EncoderBlock(ResBlock):
    kernels = (3, 3, 3, 1)


class DecoderBlock(ResBlock):
    kernels = (1, 3, 3, 3)


class Encoder(nn.Module):
    def __init__(self, n_hid=64, n_blk_per_group=1, vocab_size=512, group_count=4, input_channels=3):
        super().__init__()
        self.group_count, self.n_hid, self.n_blk_per_group = group_count, n_hid, n_blk_per_group
        self.input_channels, self.vocab_size = input_channels, vocab_size
        self.device = torch.device("cpu")
        self.requires_grad, self.use_mixed_precision = False, True
        n_layers = group_count * n_blk_per_group
        groups = [("input", Conv2d(input_channels, n_hid, 7))]
        n_in = n_hid
        for g in range(group_count):
            width = n_hid << g
            blocks = [(f"block_{i + 1}", EncoderBlock(n_in if i == 0 else width, width, n_layers))
                      for i in range(n_blk_per_group)]
            if g + 1 < group_count:
                blocks.append(("pool", nn.MaxPool2d(kernel_size=2)))
            groups.append((f"group_{g + 1}", nn.Sequential(OrderedDict(blocks))))
            n_in = width
        groups.append(("output", nn.Sequential(OrderedDict([
            ("relu", nn.ReLU()), ("conv", Conv2d(n_in, vocab_size, 1, use_float16=False))]))))
        self.blocks = nn.Sequential(OrderedDict(groups))

    def forward(self, x):
        return self.blocks(x)


class Decoder(nn.Module):
    def __init__(self, n_init=32, n_hid=64, n_blk_per_group=1, output_channels=3, vocab_size=512, group_count=4):
        super().__init__()
        self.group_count, self.n_init, self.n_hid = group_count, n_init, n_hid
        self.n_blk_per_group, self.output_channels, self.vocab_size = n_blk_per_group, output_channels, vocab_size
        self.device = torch.device("cpu")
        self.requires_grad, self.use_mixed_precision = False, True
        n_layers = group_count * n_blk_per_group
        groups = [("input", Conv2d(vocab_size, n_init, 1, use_float16=False))]
        n_in = n_init
        for g in range(group_count):
            width = n_hid << (group_count - 1 - g)
            blocks = [(f"block_{i + 1}", DecoderBlock(n_in if i == 0 else width, width, n_layers))
                      for i in range(n_blk_per_group)]
            if g + 1 < group_count:
                blocks.append(("upsample", nn.Upsample(scale_factor=2, mode="nearest")))
            groups.append((f"group_{g + 1}", nn.Sequential(OrderedDict(blocks))))
            n_in = width
        groups.append(("output", nn.Sequential(OrderedDict([
            ("relu", nn.ReLU()), ("conv", Conv2d(n_hid, 2 * output_channels, 1))]))))
        self.blocks = nn.Sequential(OrderedDict(groups))

    def forward(self, x):
        return self.blocks(x)


register("dall_e.utils", Conv2d, ResBlock)
register("dall_e.encoder", EncoderBlock, Encoder)
register("dall_e.decoder", DecoderBlock, Decoder)


def test_images(n, size):
    """Smooth images with a few coloured discs, like the shapes world (not noise: argmax ties)."""
    g = torch.Generator().manual_seed(7)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij")
    out = []
    for _ in range(n):
        img = torch.rand(3, 1, 1, generator=g) * (0.5 + 0.5 * xx / size)
        for _ in range(2):
            cx, cy, r = (torch.rand(3, generator=g) * torch.tensor([size, size, size / 3])).tolist()
            mask = ((xx - cx) ** 2 + (yy - cy) ** 2 < (r + 4) ** 2).float()
            img = img * (1 - mask) + torch.rand(3, 1, 1, generator=g) * mask
        out.append((img.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0))
    return torch.stack(out)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(1234)
    enc, dec = Encoder().eval(), Decoder().eval()
    torch.save(enc, os.path.join(out, "encoder.pkl"))
    torch.save(dec, os.path.join(out, "decoder.pkl"))
    torch.save(enc, os.path.join(out, "encoder_legacy.pkl"), _use_new_zipfile_serialization=False)
    dec16 = Decoder().eval().half()
    torch.save(dec16, os.path.join(out, "decoder_fp16.pkl"))

    size = 64
    images = test_images(4, size)
    with torch.no_grad():
        x = (1 - 2 * EPS) * (images.permute(0, 3, 1, 2).float() / 255) + EPS
        logits = enc(x)
        tokens = logits.argmax(1)
        one_hot = F.one_hot(tokens, num_classes=enc.vocab_size).permute(0, 3, 1, 2).float()
        stats = dec(one_hot)
        recon = ((torch.sigmoid(stats[:, :3]) - EPS) / (1 - 2 * EPS)).clamp(0, 1)
    for name, t in [("images.u8", images), ("logits.f32", logits), ("tokens.i64", tokens), ("recon.f32", recon)]:
        with open(os.path.join(out, name), "wb") as f:
            f.write(t.contiguous().numpy().tobytes())
    meta = {"images": list(images.shape), "logits": list(logits.shape), "tokens": list(tokens.shape),
            "recon": list(recon.shape), "n_hid": enc.n_hid, "vocab": enc.vocab_size, "n_init": dec.n_init,
            "blocks_per_group": enc.n_blk_per_group, "image_size": size}
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f)


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore", message="Couldn't retrieve source code")
    main()
