#!/usr/bin/python3
"""Writes the reference for the Inception-v3 port test (tests/test_inception.cpp).

Builds torchvision's own inception_v3 (with the AuxLogits head and fc, so the state dict has
exactly the keys of the ImageNet checkpoint inception_v3_google-*.pth), gives every parameter
deterministic values, sets the BatchNorm running statistics from a forward pass over the test
images themselves (so activations stay in a sane range through all 94 layers), saves the
state dict with torch.save, and computes pool3 features the way dalle's inception_features
does: bilinear resize to 299x299 (align_corners=False), x/255*2-1, eval mode, the avgpool
output flattened.

Outputs: inception.pth, images.u8 [N,H,W,3], features.f32 [N,2048] (little-endian raw arrays)
and meta.json with their shapes.

With a second argument `fid`, the network is the FID variant instead (pytorch-fid's port of the
2015 TensorFlow graph: a 1008-way fc, and before each branch_pool conv an average that leaves the
padding out, or in Mixed_7c a maximum), written here by patching torchvision's blocks; it then
also writes features_torchvision.f32, the unpatched network's features on the same weights.

Needs Debian's python3-torchvision: /usr/bin/python3 tests/data/make_inception_reference.py OUT_DIR [fid]
"""
import json
import math
import os
import sys
import types

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

N, SIZE = 4, 64


def make_images():
    """Smooth gradients with a differently placed disc and bar in each image."""
    y = torch.arange(SIZE).view(SIZE, 1).expand(SIZE, SIZE)
    x = torch.arange(SIZE).view(1, SIZE).expand(SIZE, SIZE)
    images = []
    for i in range(N):
        r = (x * 4 + i * 40) % 256
        g = (y * 3 + 20 * i) % 256
        b = ((x + y) * 2 + 60 * i) % 256
        img = torch.stack([r, g, b], dim=-1)
        cy, cx, rad = 20 + 6 * i, 40 - 5 * i, 8 + 2 * i
        disc = (y - cy) ** 2 + (x - cx) ** 2 <= rad * rad
        img[disc] = torch.tensor([255 - 50 * i, 30 * i, 200])
        bar = (x >= 5 + 8 * i) & (x < 12 + 8 * i) & (y >= 35)
        img[bar] = torch.tensor([10, 240 - 40 * i, 60 * i])
        images.append(img)
    return torch.stack(images).to(torch.uint8)


def network_input(images_u8):
    x = images_u8.permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    return x / 255 * 2 - 1


def fid_pool(x, maximum=False):
    if maximum:
        return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def fid_a(self, x):
    b5 = self.branch5x5_2(self.branch5x5_1(x))
    b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
    return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(fid_pool(x))], 1)


def fid_c(self, x):
    b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
    d = self.branch7x7dbl_1(x)
    for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
        d = conv(d)
    return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(fid_pool(x))], 1)


def fid_e(maximum):
    def forward(self, x):
        b3 = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat([self.branch1x1(x), self.branch3x3_2a(b3), self.branch3x3_2b(b3), self.branch3x3dbl_3a(d),
                          self.branch3x3dbl_3b(d), self.branch_pool(fid_pool(x, maximum))], 1)
    return forward


def make_fid_variant(model):
    for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d"):
        getattr(model, name).forward = types.MethodType(fid_a, getattr(model, name))
    for name in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
        getattr(model, name).forward = types.MethodType(fid_c, getattr(model, name))
    model.Mixed_7b.forward = types.MethodType(fid_e(False), model.Mixed_7b)
    model.Mixed_7c.forward = types.MethodType(fid_e(True), model.Mixed_7c)


def main(out, variant):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    fid = variant == "fid"
    if fid:
        model = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=1008)
    else:
        model = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
        n_params = sum(p.numel() for p in model.parameters())
        assert n_params == 27161264, n_params  # torchvision's count for the ImageNet checkpoint
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.normal_(std=math.sqrt(2.0 / fan_in))
                if module.bias is not None:
                    module.bias.normal_(std=0.05)
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.7, 1.3)
                module.bias.normal_(std=0.2)
                module.reset_running_stats()
                module.momentum = None  # a cumulative average: one pass sets the batch's statistics

    images = make_images()
    x = network_input(images)
    with torch.no_grad():
        model.train()
        model(x)
        # Move the statistics off the exact batch values, so eval mode is really tested.
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.add_(0.05 * torch.randn_like(module.running_mean) * module.running_var.sqrt())
                module.running_var.mul_(torch.empty_like(module.running_var).uniform_(0.8, 1.25))
        assert all(m.running_var.min() > 0 for m in model.modules() if isinstance(m, nn.BatchNorm2d))

    model.eval()
    pooled = {}
    model.avgpool.register_forward_hook(lambda mod, inp, outp: pooled.update(features=torch.flatten(outp, 1)))
    if fid:
        with torch.no_grad():
            model(x)
        with open(os.path.join(out, "features_torchvision.f32"), "wb") as f:
            f.write(pooled["features"].contiguous().numpy().astype("<f4").tobytes())
        make_fid_variant(model)
    with torch.no_grad():
        model(x)
    features = pooled["features"].contiguous()
    assert features.shape == (N, 2048) and torch.isfinite(features).all()

    torch.save(model.state_dict(), os.path.join(out, "inception.pth"))
    with open(os.path.join(out, "images.u8"), "wb") as f:
        f.write(images.contiguous().numpy().tobytes())
    with open(os.path.join(out, "features.f32"), "wb") as f:
        f.write(features.numpy().astype("<f4").tobytes())
    meta = {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "images": list(images.shape),
        "features": list(features.shape),
        "feature_abs_max": features.abs().max().item(),
        "feature_mean": features.mean().item(),
        "state_dict_tensors": len(model.state_dict()),
    }
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "torchvision")
