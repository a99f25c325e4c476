#!/usr/bin/env bash
# run.sh [--quick | --peak | --verify-only | --networks A,B | --batches 1,8 | BenchmarkDotNet options such as --filter '*Infer*']
#
# Restores and builds the benchmarks (Release), patches a private copy of TorchSharp's native library so
# it loads on this system's libstdc++ (scripts/patch-torchsharp.sh), then runs them from this folder:
# results land in tests/Dsl.Benchmarks/BenchmarkDotNet.Artifacts (ratios.md, results/, onnx/).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"
out="$here/bin/Release/net10.0"

echo "[run.sh] restore + build (Release)"
dotnet restore Dsl.Benchmarks.csproj --verbosity quiet
dotnet build Dsl.Benchmarks.csproj -c Release --no-restore --nologo --verbosity quiet

# The build copies the pristine libLibTorchSharp.so over the patched one whenever it changed, so patch
# after every build (idempotent, a few seconds).
bash "$here/scripts/patch-torchsharp.sh" "$out"

# .NET loads TorchSharp's natives by absolute path from runtimes/linux-x64/native (deps.json); the
# library path is only a fallback for anything loaded by bare name (libiosshim.so itself is found
# through libLibTorchSharp.so's RUNPATH $ORIGIN).
export LD_LIBRARY_PATH="$out/runtimes/linux-x64/native${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

echo "[run.sh] dotnet $out/Dsl.Benchmarks.dll $*"
exec dotnet "$out/Dsl.Benchmarks.dll" "$@"
