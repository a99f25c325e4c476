#!/usr/bin/env bash
# patch-torchsharp.sh [OUTPUT_DIR]
#
# Makes TorchSharp's native library loadable on a system whose libstdc++ is older than GCC 13's
# (Debian 12 ships GLIBCXX_3.4.30; TorchSharp 0.107's libLibTorchSharp.so asks for GLIBCXX_3.4.32
# for exactly one symbol, std::ios_base_library_init(), which nothing actually calls).
#
# It works ONLY on a private copy in the benchmark's build output: the NuGet cache and the system
# libraries are never modified. OUTPUT_DIR defaults to tests/Dsl.Benchmarks/bin/Release/net10.0.
# Idempotent: every run starts again from the pristine library in the NuGet cache.
#
# Steps (see README.md for why each one is there):
#   1. copy libLibTorchSharp.so and libtorch's libraries from the restored packages into
#      OUTPUT_DIR/runtimes/linux-x64/native (where the .NET host probes for TorchSharp's natives);
#   2. build libiosshim.so (scripts/iosshim.cpp), which defines std::ios_base_library_init();
#   3. patchelf --clear-symbol-version _ZSt21ios_base_library_initv  (the reference becomes unversioned)
#      patchelf --add-needed libiosshim.so                            (found through RUNPATH $ORIGIN);
#   4. mark the GLIBCXX_3.4.32 requirement in .gnu.version_r weak (scripts/weaken-verneed.py): without
#      this the loader still rejects the library, because the version need stays after step 3;
#   5. dlopen the patched copy once to prove it loads.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project_dir=$(dirname "$script_dir")
out=${1:-$project_dir/bin/Release/net10.0}
native="$out/runtimes/linux-x64/native"
packages=${NUGET_PACKAGES:-$HOME/.nuget/packages}
assets="$project_dir/obj/project.assets.json"
symbol=_ZSt21ios_base_library_initv
version=GLIBCXX_3.4.32

say() { echo "[patch-torchsharp] $*"; }
die() { echo "[patch-torchsharp] error: $*" >&2; exit 1; }

[[ -f "$assets" ]] || die "$assets not found: restore the benchmark project first (dotnet restore $project_dir)"
[[ -d "$out" ]] || die "$out not found: build the benchmark project first (dotnet build -c Release $project_dir)"

# The package versions actually restored (project.assets.json lists "Name/Version" keys).
# (No pipe into head or an early-exiting awk anywhere here: under pipefail the writer's SIGPIPE, which
# depends on timing, would end the script with status 141.)
package_version() {
    local match
    match=$(grep -o "\"$1/[0-9][0-9A-Za-z.+-]*\"" "$assets" || true)
    match=${match%%$'\n'*}
    match=${match//\"/}
    echo "${match#*/}"
}
ts_version=$(package_version TorchSharp)
lt_version=$(package_version libtorch-cpu-linux-x64)
[[ -n "$ts_version" && -n "$lt_version" ]] || die "TorchSharp / libtorch-cpu-linux-x64 not in $assets"
ts_native="$packages/torchsharp/$ts_version/runtimes/linux-x64/native"
lt_native="$packages/libtorch-cpu-linux-x64/$lt_version/runtimes/linux-x64/native"
[[ -f "$ts_native/libLibTorchSharp.so" ]] || die "$ts_native/libLibTorchSharp.so not found (NuGet restore incomplete?)"
[[ -d "$lt_native" ]] || die "$lt_native not found (NuGet restore incomplete?)"
say "TorchSharp $ts_version, libtorch-cpu-linux-x64 $lt_version -> $native"

# 1. Private copies. libtorch's libraries are copied only when missing or different (the build usually
#    put them there already; libtorch_cpu.so alone is ~460 MB).
mkdir -p "$native"
for lib in "$lt_native"/*.so*; do
    dest="$native/$(basename "$lib")"
    if [[ ! -f "$dest" ]] || ! cmp -s "$lib" "$dest"; then
        cp -f "$lib" "$dest"
        say "copied $(basename "$lib")"
    fi
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$ts_native/libLibTorchSharp.so" "$work/libLibTorchSharp.so"
chmod u+w "$work/libLibTorchSharp.so"

# Which libstdc++ will the loader pick, and does it already have the version?
ldcache=$(ldconfig -p 2>/dev/null || /sbin/ldconfig -p)
libstdcxx=$(awk '/libstdc\+\+\.so\.6 .*x86-64/ { print $NF; exit }' <<<"$ldcache")
if [[ -n "$libstdcxx" ]] && grep -qa "$version" "$libstdcxx"; then
    say "$libstdcxx already provides $version: no patch needed"
    cp -f "$work/libLibTorchSharp.so" "$native/libLibTorchSharp.so"
    exit 0
fi
dynsyms=$(objdump -T "$work/libLibTorchSharp.so" 2>/dev/null || true)
if ! grep -q "($version) *$symbol" <<<"$dynsyms"; then
    say "warning: libLibTorchSharp.so no longer references $symbol@$version; patching the version need only"
fi
say "system libstdc++ (${libstdcxx:-not found}) lacks $version: patching a private copy"

# 2. The shim.
command -v g++ >/dev/null || die "g++ is needed to build the shim (apt-get install g++)"
g++ -shared -fPIC -O2 -o "$native/libiosshim.so" "$script_dir/iosshim.cpp"
say "built libiosshim.so"

# 3. patchelf.
if ! command -v patchelf >/dev/null; then
    say "patchelf missing: installing it with apt-get"
    if [[ $(id -u) -eq 0 ]]; then apt-get install -y patchelf >/dev/null || { apt-get update >/dev/null && apt-get install -y patchelf >/dev/null; }
    else sudo apt-get install -y patchelf >/dev/null || { sudo apt-get update >/dev/null && sudo apt-get install -y patchelf >/dev/null; }; fi
fi
patchelf --clear-symbol-version "$symbol" "$work/libLibTorchSharp.so"
patchelf --add-needed libiosshim.so "$work/libLibTorchSharp.so"
say "patchelf: cleared the symbol version of $symbol, added DT_NEEDED libiosshim.so"

# 4. The version need itself stays in .gnu.version_r after step 3; make it weak.
command -v python3 >/dev/null || die "python3 is needed for scripts/weaken-verneed.py (apt-get install python3)"
(cd "$work" && python3 "$script_dir/weaken-verneed.py" libLibTorchSharp.so "$version") | sed 's/^/[patch-torchsharp] /'

# A run without the patch makes TorchSharp fall back to copying every native library into OUTPUT_DIR/cpu
# (~0.5 GB, unpatched, and failing the same way); it is never needed once the patched copy loads.
if [[ -d "$out/cpu" && -f "$out/cpu/libLibTorchSharp.so" ]]; then
    rm -rf "$out/cpu"
    say "removed $out/cpu (TorchSharp's fallback copy from an unpatched run)"
fi

# Install the patched copy next to libtorch (its RUNPATH starts with $ORIGIN/, so libiosshim.so,
# libtorch.so, libc10.so, libtorch_cpu.so are found there).
cp -f "$work/libLibTorchSharp.so" "$native/libLibTorchSharp.so.new"
mv -f "$native/libLibTorchSharp.so.new" "$native/libLibTorchSharp.so"

# 5. Prove it loads.
cat > "$work/check.c" <<'EOF'
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char** argv)
{
    void* handle = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
    if (!handle) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    return dlsym(handle, "THSTorch_manual_seed") ? 0 : 2;
}
EOF
gcc -o "$work/check" "$work/check.c" -ldl 2>/dev/null || g++ -x c -o "$work/check" "$work/check.c" -ldl
if "$work/check" "$native/libLibTorchSharp.so"; then
    say "OK: $native/libLibTorchSharp.so loads (dlopen RTLD_NOW)"
else
    die "the patched libLibTorchSharp.so still does not load"
fi
