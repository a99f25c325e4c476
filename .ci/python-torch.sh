#!/usr/bin/env bash
# Installs Debian's PyTorch and ONNX (python3-torch: torch 1.13, python3-onnx: onnx 1.12) for /usr/bin/python3 unless it
# already imports both. Always use /usr/bin/python3 with them: the python3 first on PATH may be another interpreter.
set -euo pipefail
if /usr/bin/python3 -c "import torch, onnx" 2>/dev/null; then
  echo "python3-torch and python3-onnx: $(/usr/bin/python3 -c 'import torch, onnx; print("torch", torch.__version__, "onnx", onnx.__version__)')"
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y python3-torch python3-onnx
/usr/bin/python3 -c "import torch, onnx; print('installed torch', torch.__version__, 'onnx', onnx.__version__)"
