"""Fine-tuning speed of MobileNet v1 in PyTorch: the reference for scripts/bench-finetune.

The network tl builds (keras.applications.MobileNet: conv1 3x3/2, 13 depthwise-separable blocks,
strided depthwise convolutions after a (0,1),(0,1) zero padding, BatchNorm eps 1e-3, ReLU6) plus
tl's transfer head (global average pool, Dense 1024 ReLU, Dense 5), random weights, the whole
network trainable, every BatchNorm in eval mode (its gamma and beta still train), Adam 1e-5,
cross-entropy, batch 32 of random 150x150 images (a few made once and cycled).
Prints one JSON line: {"alpha": A, "threads": T, "batches": N, "imagesPerSecond": X, "cpuMsPerImage": C}.
"""
import torch
from torch import nn

from bench_torch_steps import step_arguments, time_steps

BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
          (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]


def conv_bn_relu6(conv):
    return [conv, nn.BatchNorm2d(conv.out_channels, eps=1e-3), nn.ReLU6()]


def mobilenet(alpha, classes):
    channels = int(32 * alpha)
    layers = conv_bn_relu6(nn.Conv2d(3, channels, 3, stride=2, padding=1, bias=False))
    for filters, stride in BLOCKS:
        if stride == 2:
            layers.append(nn.ZeroPad2d((0, 1, 0, 1)))
        layers += conv_bn_relu6(nn.Conv2d(channels, channels, 3, stride=stride, padding=1 if stride == 1 else 0, groups=channels, bias=False))
        out = int(filters * alpha)
        layers += conv_bn_relu6(nn.Conv2d(channels, out, 1, bias=False))
        channels = out
    head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 1024), nn.ReLU(), nn.Linear(1024, classes)]
    return nn.Sequential(*layers, *head)


def main():
    parser = step_arguments(__doc__, batches=6, warmup=2)
    parser.add_argument('--alpha', type=float, default=0.25)
    parser.add_argument('--size', type=int, default=150)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    classes = 5
    model = mobilenet(args.alpha, classes)
    model.train()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eval()  # moving statistics, as tl's batchNorm 'inference'; gamma/beta still train
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    loss_fn = nn.CrossEntropyLoss()
    pool = [(torch.rand(args.batch, 3, args.size, args.size) * 2 - 1, torch.randint(0, classes, (args.batch,))) for _ in range(4)]

    def step(i):
        x, y = pool[i % len(pool)]
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    time_steps(step, args, alpha=args.alpha)


if __name__ == '__main__':
    main()
