"""Runs every golden bundle through the PyTorch module `nnc export pytorch` wrote for it, and every exported ONNX file
through onnx.checker.

usage: /usr/bin/python3 check_pytorch.py EXPORTED_DIR GOLDEN_DIR

EXPORTED_DIR holds <case>.py (nnc export pytorch) and <case>.onnx (nnc export onnx) for each GOLDEN_DIR/<case>.safetensors.
For each bundle: the module is built, load_safetensors loads the bundle's initial state_dict, then the bundle's training
passes are replayed as tests/Golden/README.md describes (train mode, (y * output_grad).sum().backward(), no optimizer
step) and the training output, input gradient, every parameter gradient, every buffer after training and the eval
output are compared with the bundle within the parity contract of tests/Dsl.Models.Tests/ParityTests.cs:
max |a - b| <= 1e-4 * max(1, max |reference|). Also checks that save_safetensors round-trips the state bit for bit.
Exit status 1 on any failure; the last line is "N passed, N failed".
"""
import importlib.util
import json
import os
import struct
import sys
import tempfile

import onnx
import torch


def read_bundle(path):
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length).decode("utf-8"))
        data = f.read()
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, entry in header.items():
        dtype = {"F32": torch.float32, "I64": torch.int64}[entry["dtype"]]
        begin, end = entry["data_offsets"]
        tensors[name] = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype).reshape(entry["shape"])
    return metadata, tensors


def compare(actual, expected):
    actual = actual.detach().double()
    expected = expected.double()
    if actual.shape != expected.shape:
        return float("inf"), 0.0
    error = (actual - expected).abs().max().item() if expected.numel() else 0.0
    scale = max(1.0, expected.abs().max().item() if expected.numel() else 0.0)
    return error, 1e-4 * scale


def check_case(case, exported, golden):
    metadata, bundle = read_bundle(os.path.join(golden, case + ".safetensors"))
    spec = importlib.util.spec_from_file_location(f"exported_{case}", os.path.join(exported, case + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = getattr(module, metadata["model"])()
    module.load_safetensors(model, os.path.join(golden, case + ".safetensors"))
    rows = []  # (what, error, tolerance)

    # The loaded state is the bundle's, and save_safetensors writes it back unchanged.
    with tempfile.TemporaryDirectory() as scratch:
        saved = os.path.join(scratch, "state.safetensors")
        module.save_safetensors(model, saved)
        _, written = read_bundle(saved)
    for name, value in model.state_dict().items():
        same = torch.equal(value, bundle[name]) and torch.equal(written[name], bundle[name])
        rows.append((f"state {name} (load, save)", 0.0 if same else float("inf"), 0.0))

    torch.manual_seed(0)
    model.train()
    steps = int(metadata["train_steps"])
    for _ in range(steps):
        model.zero_grad(set_to_none=True)
        x = bundle["input"].clone().requires_grad_()
        y = model(x)
        (y * bundle["output_grad"]).sum().backward()
    rows.append(("train.output", *compare(y, bundle["train.output"])))
    rows.append(("train.input_grad", *compare(x.grad, bundle["train.input_grad"])))
    for name, parameter in model.named_parameters():
        rows.append((f"train.grad.{name}", *compare(parameter.grad, bundle[f"train.grad.{name}"])))
    for name, buffer in model.named_buffers():
        if buffer.dtype == torch.int64:
            expected = bundle[f"train.state.{name}"]
            rows.append((f"train.state.{name}", 0.0 if torch.equal(buffer, expected.reshape(buffer.shape)) else float("inf"), 0.0))
        else:
            rows.append((f"train.state.{name}", *compare(buffer, bundle[f"train.state.{name}"])))
    model.eval()
    with torch.no_grad():
        rows.append(("eval.output", *compare(model(bundle["input"]), bundle["eval.output"])))

    onnx_path = os.path.join(exported, case + ".onnx")
    try:
        onnx.checker.check_model(onnx.load(onnx_path), full_check=True)
        rows.append(("onnx.checker", 0.0, 0.0))
    except Exception as exception:  # the checker's own exception types differ between onnx versions
        print(f"  {case}: onnx.checker: {exception}")
        rows.append(("onnx.checker", float("inf"), 0.0))
    return rows


def main():
    exported, golden = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    cases = sorted(f[: -len(".safetensors")] for f in os.listdir(golden) if f.endswith(".safetensors"))
    passed = failed = 0
    print(f"torch {torch.__version__}, onnx {onnx.__version__}: {len(cases)} bundles")
    print(f"{'bundle':<22} {'tensors':>7} {'worst max abs':>14} {'its tolerance':>14} {'worst ratio':>12}  result")
    for case in cases:
        try:
            rows = check_case(case, exported, golden)
        except Exception as exception:
            print(f"{case:<22} {'':>7} {'':>14} {'':>14} {'':>12}  FAIL: {type(exception).__name__}: {exception}")
            failed += 1
            continue
        bad = [r for r in rows if r[1] > r[2]]
        numeric = [r for r in rows if r[2] > 0]  # the exact checks (state, counters, checker) are in `bad` only
        worst = max(numeric, key=lambda r: r[1])
        ratio = max(r[1] / r[2] for r in numeric)
        result = "ok" if not bad else "FAIL: " + "; ".join(f"{r[0]} {r[1]:.3e} > {r[2]:.3e}" for r in bad)
        print(f"{case:<22} {len(numeric):>7} {worst[1]:>14.3e} {worst[2]:>14.3e} {ratio:>12.3e}  {result}")
        if bad:
            failed += 1
        else:
            passed += 1
    print(f"pytorch export: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
