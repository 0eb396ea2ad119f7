"""Frozen MobileNet v1 feature extraction speed in PyTorch: the reference for scripts/bench-features.

Same architecture as keras.applications.MobileNet without its top (conv-BN-ReLU6, 13 depthwise
separable blocks), and VGG16's convolutional base with --vgg16 (keras.applications.VGG16 without its
top), random weights, 150x150 input, inference mode, 2 threads.
Prints one line per model: `torch mobilenet ALPHA: N images/s`, `torch vgg16: N images/s`.
"""
import argparse
import time

import torch
from torch import nn

BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
          (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]


def conv_bn_relu6(cin, cout, kernel, stride, groups=1):
    pad = kernel // 2
    return [nn.Conv2d(cin, cout, kernel, stride, pad, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU6(inplace=True)]


def mobilenet_v1(alpha):
    c = int(32 * alpha)
    layers = conv_bn_relu6(3, c, 3, 2)
    for filters, stride in BLOCKS:
        out = int(filters * alpha)
        layers += conv_bn_relu6(c, c, 3, stride, groups=c)
        layers += conv_bn_relu6(c, out, 1, 1)
        c = out
    return nn.Sequential(*layers)


VGG16 = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M']


def vgg16():
    layers, c = [], 3
    for v in VGG16:
        if v == 'M':
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c, v, 3, 1, 1), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(*layers)


def images_per_second(model, size, batch, batches):
    """Rate of the fastest batch: the machine is shared, and the slowest batches measure the neighbours."""
    x = torch.rand(batch, 3, size, size) * 2 - 1
    best = float('inf')
    with torch.inference_mode():
        model(x)  # warm-up
        for _ in range(batches):
            start = time.perf_counter()
            model(x)
            best = min(best, time.perf_counter() - start)
    return batch / best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--alphas', default='0.25,1.0')
    parser.add_argument('--size', type=int, default=150)
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--images', type=int, default=512)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--vgg16', action='store_true', help='also VGG16 (its conv base)')
    parser.add_argument('--vgg-images', type=int, default=96)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for alpha in (float(a) for a in args.alphas.split(',')):
        model = mobilenet_v1(alpha).eval()
        rate = images_per_second(model, args.size, args.batch, max(1, args.images // args.batch))
        print(f'torch mobilenet {alpha}: {rate:.1f} images/s', flush=True)
    if args.vgg16:
        rate = images_per_second(vgg16().eval(), args.size, args.batch, max(1, args.vgg_images // args.batch))
        print(f'torch vgg16: {rate:.1f} images/s', flush=True)


if __name__ == '__main__':
    main()
