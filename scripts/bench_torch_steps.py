"""What the PyTorch references of tl's training benchmarks share: the command line of a timed run
and its timing (warm-up steps, then the measured ones; wall and CPU time)."""
import argparse
import json
import time

import torch


def step_arguments(description, batches, warmup):
    """A parser with --batch, --batches, --warmup and --threads; add a benchmark's own options to it."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--batches', type=int, default=batches)
    parser.add_argument('--warmup', type=int, default=warmup)
    parser.add_argument('--threads', type=int, default=2)
    return parser


def time_steps(step, args, **extra):
    """Runs step(0..warmup-1) untimed and step(warmup..warmup+batches-1) timed on args.threads threads;
    prints one JSON line: extra, threads, batches, imagesPerSecond and cpuMsPerImage."""
    torch.set_num_threads(args.threads)
    for i in range(args.warmup):
        step(i)
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(args.warmup, args.warmup + args.batches):
        step(i)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    images = args.batches * args.batch
    print(json.dumps({**extra, 'threads': args.threads, 'batches': args.batches,
                      'imagesPerSecond': images / seconds, 'cpuMsPerImage': 1000 * cpu_seconds / images}))
