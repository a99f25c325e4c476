#!/usr/bin/env bash
# Installs Fashion-MNIST (Debian package dataset-fashion-mnist) unless its files are already there.
# Files: /usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
set -euo pipefail
dir=/usr/share/datasets/fashion-mnist
files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
missing=0
for f in "${files[@]}"; do [ -f "$dir/$f" ] || missing=1; done
if [ "$missing" = 0 ]; then
  echo "Fashion-MNIST is in $dir"
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
$sudo apt-get update
$sudo apt-get install -y dataset-fashion-mnist
for f in "${files[@]}"; do [ -f "$dir/$f" ] || { echo "missing $dir/$f after installing dataset-fashion-mnist" >&2; exit 1; }; done
echo "Fashion-MNIST installed in $dir"
