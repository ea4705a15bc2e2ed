"""Inference speed of compacted networks: dense vs pruned-and-compacted, batch 1024, CPU.

For the MNIST MLP and LeNet-5 the dense network (every gate open) and the compacted one
(:func:`l0bayes.nn.architecture.compact`: pruned units physically removed) are both built by
``compact``, so they run on the same engine (:mod:`l0bayes.nn.runtime`: exact pool rewrites, batch
tiling and channels-last layout of the convolutional prefix). Their forward passes are timed
interleaved, each after an untimed pass of the same network (steady state: its weights in
cache). The script prints FLOPs, median (and minimum) milliseconds, the speed-up, the median of
the per-repeat speed-ups (dense and compact run back to back, so a slow spell of the machine
cancels), and the speed-up as a fraction of the FLOPs ratio (the issue's target is >= 0.8). On
a loaded machine the minimum is the steadier figure: a call that is preempted only ever gets
slower.

Each network is timed with the engine's default and with every ``--tile-bytes`` given (``0``:
whole batches, NCHW); with the default's tiles in NCHW layout; and with ``--plain``, as the
chain of plain torch layers (``nn.MaxPool2d``, whole batches).

    python bench/compaction_speed.py --mlp-run RUN [--lenet-run RUN] [--tile-bytes 0 1048576]

A network without ``--*-run`` gets the paper's pruned architecture (MLP 219-214-100, LeNet-5
20-25-45-462) by closing a random subset of its gates.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch

from l0bayes.nn.architecture import architecture, compact
from l0bayes.nn.networks import get_network
from l0bayes.nn.runtime import TILE_BYTES, StridedMaxPool2d, TiledSequential
from l0bayes.training.trainer import load_network

PAPER_UNITS = {"mnist-mlp": (219, 214, 100), "lenet5": (20, 25, 45, 462)}


def paper_shaped(name: str, seed: int = 0) -> torch.nn.Module:
    """The network with gates closed at random so its units are the paper's."""
    net = get_network(name).make()
    gen = torch.Generator().manual_seed(seed)
    layers = net.gated_layers()
    keeps = [
        torch.randperm(layer.num_gates, generator=gen)[:u]
        for layer, u in zip(layers, PAPER_UNITS[name], strict=True)
    ]
    if name == "lenet5":  # FC1's inputs must come from the kept conv2 maps (16 features each)
        maps = keeps[1]
        features = (maps[:, None] * 16 + torch.arange(16)).flatten()
        first = maps * 16 + torch.randint(0, 16, (len(maps),), generator=gen)
        rest = features[~torch.isin(features, first)]
        extra = rest[torch.randperm(len(rest), generator=gen)[: PAPER_UNITS[name][2] - len(maps)]]
        keeps[2] = torch.cat([first, extra])
    with torch.no_grad():
        for layer, keep in zip(layers, keeps, strict=True):
            layer.log_alpha.fill_(-10.0)
            layer.log_alpha[keep] = 5.0
    return net.eval()


def dense_copy(net: torch.nn.Module, shape, tile_bytes: int = TILE_BYTES) -> torch.nn.Module:
    """The same network with every gate open, as a compacted chain."""
    opened = copy.deepcopy(net)
    with torch.no_grad():
        for layer in opened.gated_layers():
            layer.log_alpha.fill_(10.0)
    return compact(opened, shape, tile_bytes)


def nchw(chain: torch.nn.Sequential) -> TiledSequential:
    """The engine's chain without the channels-last layout (a plain chain: not tiled)."""
    layers = [copy.deepcopy(m).to(memory_format=torch.contiguous_format) for m in chain]
    return TiledSequential(
        *layers, depth=getattr(chain, "depth", 0), tile=getattr(chain, "tile", 0)
    )


def plain(chain: torch.nn.Sequential) -> torch.nn.Sequential:
    """The chain as plain torch layers: ``nn.MaxPool2d`` kernels, whole batches."""
    return torch.nn.Sequential(
        *[
            torch.nn.MaxPool2d(m.kernel_size, m.stride) if isinstance(m, StridedMaxPool2d) else m
            for m in chain
        ]
    )


@torch.no_grad()
def time_forward(nets: dict, x: torch.Tensor, repeats: int) -> dict[str, list[float]]:
    """Seconds per forward pass of each network, the networks taking turns; each timed pass
    follows an untimed one of the same network, so that it runs with its own weights in cache
    (steady-state inference) rather than after the other network has evicted them."""
    times = {k: [] for k in nets}
    for _ in range(repeats):
        for name, net in nets.items():
            net(x)
            tic = time.perf_counter()
            net(x)
            times[name].append(time.perf_counter() - tic)
    return times


def engines(net: torch.nn.Module, shape, tile_bytes: list[int], with_plain: bool) -> dict:
    """(dense, compact) chains per engine setting, named by their tile size."""
    out = {}
    for tb in [TILE_BYTES, *tile_bytes]:
        dense, small = dense_copy(net, shape, tb), compact(net, shape, tb)
        tiles = [getattr(chain, "tile", 0) for chain in (dense, small)]  # plain: untiled
        out.setdefault(f"tiles of {tiles[0]} / {tiles[1]} images", (dense, small))
        if tb == TILE_BYTES and getattr(small, "channels_last", False):
            out["the same in NCHW layout"] = (nchw(dense), nchw(small))
    if with_plain:
        whole = out.get("tiles of 0 / 0 images") or (
            dense_copy(net, shape, 0),
            compact(net, shape, 0),
        )
        out["nn.MaxPool2d kernels, whole batch"] = tuple(plain(chain) for chain in whole)
    return out


def measure(name: str, net: torch.nn.Module, batch: int, repeats: int, **engine) -> list[dict]:
    shape = get_network(name).input_shape
    x = torch.randn(batch, *shape)
    rows = []
    for label, (dense, small) in engines(net, shape, **engine).items():
        row = timed(dense, small, x, repeats)
        row.update(network=name, engine=label, architecture=str(architecture(net, shape)))
        rows.append(row)
    return rows


def timed(dense, small, x: torch.Tensor, repeats: int) -> dict:
    shape = tuple(x.shape[1:])
    nets = {"dense": dense, "compact": small}
    flops = {k: architecture(v, shape, "dense").flops for k, v in nets.items()}
    times = time_forward(nets, x, repeats)
    ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
    fastest = {k: 1e3 * min(v) for k, v in times.items()}  # the least disturbed run
    paired = statistics.median(d / c for d, c in zip(times["dense"], times["compact"], strict=True))
    speedup = ms["dense"] / ms["compact"]
    flops_ratio = flops["dense"] / flops["compact"]
    return {
        "dense_flops": flops["dense"],
        "compact_flops": flops["compact"],
        "flops_ratio": flops_ratio,
        "dense_ms": ms["dense"],
        "compact_ms": ms["compact"],
        "speedup": speedup,
        "speedup_over_flops_ratio": speedup / flops_ratio,
        "paired_speedup": paired,
        "paired_speedup_over_flops_ratio": paired / flops_ratio,
        "dense_min_ms": fastest["dense"],
        "compact_min_ms": fastest["compact"],
        "speedup_of_minimums": fastest["dense"] / fastest["compact"],
        "speedup_of_minimums_over_flops_ratio": fastest["dense"] / fastest["compact"] / flops_ratio,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mlp-run", help="run directory of a trained mnist-mlp")
    parser.add_argument("--lenet-run", help="run directory of a trained lenet5")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's)")
    parser.add_argument(
        "--tile-bytes",
        type=int,
        nargs="*",
        default=[0],
        help="tile sizes to time besides the default",
    )
    parser.add_argument("--plain", action="store_true", help="also time plain torch layers")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    for name, run in (("mnist-mlp", args.mlp_run), ("lenet5", args.lenet_run)):
        net = load_network(run)[1] if run else paper_shaped(name)
        rows = measure(
            name, net, args.batch, args.repeats, tile_bytes=args.tile_bytes, with_plain=args.plain
        )
        for row in rows:
            row["source"] = run or "paper-shaped (random gates closed)"
            row["threads"] = torch.get_num_threads()
        results.extend(rows)
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
