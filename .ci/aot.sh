#!/usr/bin/env bash
# NativeAOT: publishes examples/LeNet with the command a user types, fails on any warning (IL2xxx/IL3xxx
# trim and AOT warnings included), and checks that the native binary prints exactly what the JIT build
# prints; then the same for Fashion-MNIST's quick mode (the training loop), whose loss and accuracies must
# equal the JIT run's. Ends with LeNet's binary size and both start-up times (best of 5 whole runs).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The ILCompiler links with clang and needs zlib; the package itself comes from NuGet at restore.
if ! command -v clang > /dev/null || ! dpkg -s zlib1g-dev > /dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang zlib1g-dev > /dev/null
fi

publish() {
  dotnet publish "examples/$1" -c Release -r linux-x64 -p:PublishAot=true --nologo 2>&1 | tee "$work/publish-$1.log"
  if grep -E ': warning [A-Z]+[0-9]+' "$work/publish-$1.log"; then
    echo "aot: publishing $1 printed warnings (above)" >&2
    exit 1
  fi
}

publish LeNet

native="examples/LeNet/bin/Release/net10.0/linux-x64/publish/LeNet"
"$native" > "$work/aot.txt"
dotnet run --project examples/LeNet -c Release > "$work/jit.txt"
if ! diff -u "$work/jit.txt" "$work/aot.txt"; then
  echo "aot: the native binary's output differs from dotnet run's (diff above: - JIT, + AOT)" >&2
  exit 1
fi
echo "aot: the native LeNet prints exactly what dotnet run prints ($(wc -l < "$work/aot.txt") lines)"

bash examples/FashionMnist/get-data.sh > /dev/null
publish FashionMnist
quick=(--epochs 1 --limit 2000 --test-limit 2000)
examples/FashionMnist/bin/Release/net10.0/linux-x64/publish/FashionMnist "${quick[@]}" > "$work/fmnist-aot.txt"
dotnet run --project examples/FashionMnist -c Release -- "${quick[@]}" > "$work/fmnist-jit.txt"
# The summary line without its timings: "final train loss 1.1919, train acc 0.6991, test acc 0.7730".
aot_result=$(grep -oE 'final train loss .*' "$work/fmnist-aot.txt" || true)
jit_result=$(grep -oE 'final train loss .*' "$work/fmnist-jit.txt" || true)
if [ -z "$jit_result" ] || [ "$aot_result" != "$jit_result" ]; then
  echo "aot: Fashion-MNIST's quick mode ended with '$aot_result' native, '$jit_result' JIT" >&2
  exit 1
fi
echo "aot: Fashion-MNIST quick mode, native as JIT: $aot_result"
echo "aot: Fashion-MNIST per training epoch: $(grep -oE '[0-9.]+ s per training epoch' "$work/fmnist-aot.txt") native, $(grep -oE '[0-9.]+ s per training epoch' "$work/fmnist-jit.txt") JIT"

# Start-up plus the whole run (10 training steps and inference): best of 5, in milliseconds.
best_ms() {
  local best=999999 start end ms
  for _ in 1 2 3 4 5; do
    start=$(date +%s%N)
    "$@" > /dev/null
    end=$(date +%s%N)
    ms=$(( (end - start) / 1000000 ))
    [ "$ms" -lt "$best" ] && best=$ms
  done
  echo "$best"
}
jit_dll="examples/LeNet/bin/Release/net10.0/LeNet.dll"
jit_kib=$(( $(cat examples/LeNet/bin/Release/net10.0/*.dll | wc -c) / 1024 ))
runtime_dir="$(dotnet --list-runtimes | sed -nE 's/^Microsoft\.NETCore\.App ([^ ]+) \[(.*)\]$/\2\/\1/p' | tail -1)"
echo "aot: LeNet's native binary $(( $(stat -c %s "$native") / 1024 )) KiB, self-contained; JIT build: $jit_kib KiB of assemblies plus the shared runtime ($(du -sk "$runtime_dir" | cut -f1) KiB in $runtime_dir)"
echo "aot: LeNet's whole run $(best_ms "$native") ms native, $(best_ms dotnet "$jit_dll") ms JIT (dotnet LeNet.dll), best of 5"
