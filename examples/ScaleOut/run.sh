#!/usr/bin/env bash
# The scale-out round trip on this machine: fmnist.nn -> PyTorch module (nnc export pytorch) -> DistributedDataParallel on
# 2 processes (gloo, 127.0.0.1) -> rank 0's safetensors -> the generated C# class's Infer, whose test accuracy must equal
# PyTorch's on the same images (exit 1 otherwise).
# usage: bash examples/ScaleOut/run.sh [--quick]
#   --quick (CI): 3 epochs of 6,400 training images (300 steps per process), 2,000 test images; about 1.5 minutes on 2 cores
#   default: 10 epochs of all 60,000 training images, all 10,000 test images
set -euo pipefail
cd "$(dirname "$0")"
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
if [ "${1:-}" = "--quick" ]; then
  train=(--epochs 3 --limit 6400 --test-limit 2000)
else
  train=(--epochs 10)
fi
bash ../../.ci/python-torch.sh
bash ../FashionMnist/get-data.sh
echo "== nnc export pytorch ../FashionMnist/fmnist.nn -o fmnist.py"
dotnet run --project ../../src/Dsl.Cli -- export pytorch ../FashionMnist/fmnist.nn -o fmnist.py 2>/dev/null
echo "== PyTorch DDP, 2 processes: /usr/bin/python3 train_ddp.py ${train[*]} --out out"
rm -rf out
/usr/bin/python3 train_ddp.py --world-size 2 "${train[@]}" --out out
echo "== back in C#: the generated Fmnist loads out/fmnist_ddp.safetensors and infers"
dotnet run --project . -c Release -- out
