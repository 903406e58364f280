"""check_names.py — checks that a model directory's weight files hold exactly the tensors
diffusers' and transformers' modules expect, with the right shapes, without loading weights.

The modules are built from the directory's configs on the "meta" device (shapes, no memory),
and the files are read only up to the end of their safetensors headers, so a full-size SDXL
directory (gigabytes) is checked in seconds. Both the fp32 files and the `.fp16` variants are
checked when present (and `.bf16`), single or sharded (`*.safetensors.index.json`).
"""

import json
import os
import struct

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

# subfolder, weight file stem, how to build the module on the meta device
COMPONENTS = [
    ("unet", "diffusion_pytorch_model", lambda d: UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(d))),
    ("vae", "diffusion_pytorch_model", lambda d: AutoencoderKL.from_config(AutoencoderKL.load_config(d))),
    ("text_encoder", "model", lambda d: CLIPTextModel(CLIPTextConfig.from_pretrained(d))),
    ("text_encoder_2", "model", lambda d: CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(d))),
]


def read_header(path):
    """{name: (dtype, shape)} from a safetensors file's header only."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return {k: (v["dtype"], tuple(v["shape"])) for k, v in header.items()}


def weight_sets(comp_dir, stem):
    """[(label, {name: (dtype, shape)})] for every variant present (fp32, fp16), single or sharded."""
    sets = []
    for variant in ("", ".fp16", ".bf16"):
        single = os.path.join(comp_dir, f"{stem}{variant}.safetensors")
        index = single + ".index.json"
        if os.path.exists(single):
            sets.append((single, read_header(single)))
        elif os.path.exists(index):
            with open(index, encoding="utf-8") as f:
                shards = sorted(set(json.load(f)["weight_map"].values()))
            merged = {}
            for shard in shards:
                merged.update(read_header(os.path.join(comp_dir, shard)))
            sets.append((index, merged))
    return sets


def compare(label, expected, ignorable, found):
    """Problems (strings) between the module's state dict and a file's tensors."""
    problems = []
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected) - ignorable)
    mismatched = sorted(k for k in set(expected) & set(found) if tuple(expected[k]) != found[k][1])
    dtypes = sorted({found[k][0] for k in found})
    for kind, names in (("missing", missing), ("unexpected", unexpected)):
        if names:
            problems.append(f"{label}: {len(names)} {kind}: {', '.join(names[:10])}"
                            + (" ..." if len(names) > 10 else ""))
    for k in mismatched[:10]:
        problems.append(f"{label}: {k}: shape {list(found[k][1])}, module expects {list(expected[k])}")
    if len(dtypes) > 1:
        problems.append(f"{label}: mixed dtypes {dtypes}")
    return problems


def check_dir(model_dir):
    problems = []
    for sub, stem, build in COMPONENTS:
        comp_dir = os.path.join(model_dir, sub)
        with torch.device("meta"):
            module = build(comp_dir)
        expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        # transformers drops checkpoint entries that are buffers of the module (position_ids).
        ignorable = {k for k, _ in module.named_buffers()}
        sets = weight_sets(comp_dir, stem)
        if not sets:
            problems.append(f"{comp_dir}: no {stem}[.fp16].safetensors[.index.json]")
        for label, found in sets:
            p = compare(label, expected, ignorable, found)
            problems += p
            dtype = ",".join(sorted({v[0] for v in found.values()}))
            print(f"{'FAIL' if p else 'ok  '} {label}: {len(found)} tensors ({dtype}), module expects {len(expected)}")
    if problems:
        raise SystemExit("check-names: " + model_dir + "\n  " + "\n  ".join(problems))
    print(f"check-names: {model_dir}: every weight present with the expected shape, nothing extra")
