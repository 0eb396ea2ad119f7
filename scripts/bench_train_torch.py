"""Training throughput of the Fashion-MNIST seed CNN in PyTorch: the reference for scripts/bench-train.

Same architecture as tl's `seed-cnn` (Conv 32 3x3 relu, max-pool 2, Conv 64 3x3 relu, max-pool 2,
Conv 64 3x3 relu, Dense 64 relu, Dense 10; 93,322 parameters), Adam 1e-3, cross-entropy, the
same Fashion-MNIST images scaled to [0,1] and shuffled once, data preparation inside the timed
loop as in tl's loop. Prints one JSON line: {"threads": T, "batches": N, "imagesPerSecond": X, "cpuMsPerImage": C}.
"""
import gzip

import numpy as np
import torch
from torch import nn

from bench_torch_steps import step_arguments, time_steps


def read_idx(path):
    with gzip.open(path, 'rb') if path.endswith('.gz') else open(path, 'rb') as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def seed_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(),
        nn.Flatten(), nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10))


def main():
    parser = step_arguments(__doc__, batches=300, warmup=20)
    parser.add_argument('--data', required=True, help='directory with train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz')
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    images = read_idx(f'{args.data}/train-images-idx3-ubyte.gz')
    labels = read_idx(f'{args.data}/train-labels-idx1-ubyte.gz').astype(np.int64)
    model = seed_cnn()
    assert sum(p.numel() for p in model.parameters()) == 93322
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    order = np.random.default_rng(1).permutation((args.warmup + args.batches) * args.batch)

    def step(i):
        rows = order[i * args.batch:(i + 1) * args.batch]
        x = torch.from_numpy(images[rows].astype(np.float32) / 255).unsqueeze(1)
        y = torch.from_numpy(labels[rows])
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    time_steps(step, args)

if __name__ == '__main__':
    main()
