"""Trains the Fashion-MNIST model of examples/FashionMnist/fmnist.nn with PyTorch's DistributedDataParallel.

The model class comes from `nnc export pytorch ../FashionMnist/fmnist.nn -o fmnist.py` (run.sh does it): the same
network and state_dict names as the generated C# class, so the weights rank 0 saves load into it unchanged.

Here (2 CPU processes, gloo on 127.0.0.1), started with torch.multiprocessing.spawn:
    /usr/bin/python3 train_ddp.py --world-size 2 --limit 6400 --test-limit 2000 --out out
On a cluster, started by torchrun (one process per GPU, NCCL); the script reads RANK, LOCAL_RANK and WORLD_SIZE:
    torchrun --nnodes 4 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29500 train_ddp.py --epochs 20 --out out

Rank 0 writes OUT/fmnist_ddp.safetensors (save_safetensors of the exported module) and OUT/pytorch_eval.json
(test accuracy and every prediction on the first --test-limit test images), which Program.cs compares with Infer.
Needs torch and the standard library only.
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

# Fashion-MNIST's training-set statistics, as Dsl.Training's Normalization.FashionMnist: (x/255 - mean)/std in float32.
MEAN, STD = 0.2860, 0.3530


def read_idx(path):
    """An IDX file (gzip): unsigned bytes with their dimensions."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    (magic,) = struct.unpack(">I", data[:4])
    rank = magic & 0xFF
    dims = struct.unpack(">" + "I" * rank, data[4 : 4 + 4 * rank])
    return torch.frombuffer(bytearray(data[4 + 4 * rank :]), dtype=torch.uint8).reshape(dims)


def load_split(directory, train, limit):
    prefix = "train" if train else "t10k"
    images = read_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz"))[:limit]
    labels = read_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz"))[:limit]
    x = (images.float() / 255.0 - MEAN) / STD
    return x.unsqueeze(1).contiguous(), labels.long()


def load_exported(path):
    directory, name = os.path.split(os.path.abspath(path))
    sys.path.insert(0, directory)
    return __import__(os.path.splitext(name)[0])


def train(rank, world_size, args):
    exported = load_exported(args.module)
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', rank))}") if torch.cuda.is_available() else torch.device("cpu")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # every rank builds the same initial model; DDP also broadcasts rank 0's at wrap
    model = exported.Fmnist().to(device)
    ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    x, y = load_split(args.data, train=True, limit=args.limit)
    sampler = DistributedSampler(TensorDataset(x, y), num_replicas=world_size, rank=rank, shuffle=True, seed=args.seed, drop_last=True)
    loader = DataLoader(TensorDataset(x, y), batch_size=args.batch, sampler=sampler, drop_last=True)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    steps, start = 0, time.time()
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        ddp.train()
        total, count = 0.0, 0
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(ddp(images), labels)
            loss.backward()  # DDP all-reduces (averages) the gradients across ranks here
            optimizer.step()
            total += loss.item() * len(labels)
            count += len(labels)
            steps += 1
        if rank == 0:
            print(f"epoch {epoch + 1}/{args.epochs}: loss {total / count:.4f} on rank 0's {count} images, {steps} steps, {time.time() - start:.1f} s", flush=True)

    # Every rank holds the same weights after each step; show it (batch-norm buffers are rank 0's, broadcast each forward).
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(world_size)]
    dist.all_gather(gathered, flat)
    if rank == 0:
        spread = max((g - flat).abs().max().item() for g in gathered)
        print(f"{world_size} ranks, {steps} steps each: parameters differ between ranks by at most {spread:g}", flush=True)
        os.makedirs(args.out, exist_ok=True)
        model.cpu().eval()
        weights = os.path.join(args.out, "fmnist_ddp.safetensors")
        exported.save_safetensors(model, weights)
        tx, ty = load_split(args.data, train=False, limit=args.test_limit)
        with torch.no_grad():
            predictions = torch.cat([model(tx[i : i + 500]).argmax(dim=1) for i in range(0, len(tx), 500)])
        accuracy = (predictions == ty).sum().item() / len(ty)
        with open(os.path.join(args.out, "pytorch_eval.json"), "w") as f:
            json.dump({"images": len(ty), "correct": int((predictions == ty).sum().item()), "accuracy": accuracy,
                       "predictions": predictions.tolist(), "torch": torch.__version__, "world_size": world_size, "steps": steps}, f)
        print(f"PyTorch eval accuracy on {len(ty)} test images: {accuracy:.4f}; weights in {weights}", flush=True)
    dist.barrier()
    dist.destroy_process_group()


def spawned(rank, world_size, args):
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(args.port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    train(rank, world_size, args)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--module", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "fmnist.py"), help="the exported model (nnc export pytorch)")
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--world-size", type=int, default=2, help="processes to spawn when not started by torchrun")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--limit", type=int, default=60000, help="training images (the first N)")
    parser.add_argument("--test-limit", type=int, default=10000, help="test images (the first N)")
    parser.add_argument("--batch", type=int, default=32, help="per process; the global batch is this times the world size")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--port", type=int, default=29517)
    parser.add_argument("--out", default="out")
    args = parser.parse_args()
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        # Started by torchrun: one process per GPU (NCCL) or per CPU slot (gloo).
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        train(dist.get_rank(), dist.get_world_size(), args)
    else:
        mp.spawn(spawned, args=(args.world_size, args), nprocs=args.world_size, join=True)


if __name__ == "__main__":
    main()
