#!/usr/bin/env bash
# run.sh [--model resnet14|resnet20|plain20] [--sides torch,ours] [--epochs N] [--threads N] [example options…]
# Builds the TorchSharp reference (Release), patches a private copy of TorchSharp's native library with the
# benchmark helper's script (tests/Dsl.Benchmarks/scripts/patch-torchsharp.sh: Debian 12's libstdc++ lacks
# GLIBCXX_3.4.32; nothing system-wide is changed), then times PyTorch and the generated class on the same epochs,
# back to back, and prints the ratio. Needs the Fashion-MNIST data (examples/FashionMnist/get-data.sh) and a
# restored tests/Dsl.Benchmarks (the patch script reads its package versions).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
out="$here/bin/Release/net10.0"
dotnet build "$here/TorchReference.csproj" -c Release --nologo --verbosity quiet
[ -f "$repo/tests/Dsl.Benchmarks/obj/project.assets.json" ] || dotnet restore "$repo/tests/Dsl.Benchmarks/Dsl.Benchmarks.csproj" --verbosity quiet
bash "$repo/tests/Dsl.Benchmarks/scripts/patch-torchsharp.sh" "$out"
export LD_LIBRARY_PATH="$out/runtimes/linux-x64/native${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec dotnet "$out/TorchReference.dll" "$@"
