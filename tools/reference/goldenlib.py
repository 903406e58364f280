"""goldenlib.py — what every golden writer shares: the environment guard, determinism settings,
and GoldenFile, which collects tensors and metadata and writes one safetensors file.

The rules of the files (names, dtypes, no 0-d and no empty tensors, the common metadata) are in
tests/golden/data/README.md; GoldenFile enforces the mechanical ones so a writer cannot break them.
"""

import importlib.util
import json
import os
import platform
import struct

import torch
from safetensors import safe_open

FORMAT = "sdxld-golden-1"

# Packages whose mere presence changes results (see requirements.txt).
FORBIDDEN_MODULES = {
    "ftfy": "transformers' CLIPTokenizer would run ftfy.fix_text on prompts (other ids for non-ASCII text)",
    "imwatermark": "diffusers' SDXL pipelines would watermark the output pixels (invisible-watermark)",
}


def refuse_forbidden_packages():
    """Raises SystemExit when ftfy or invisible-watermark is importable."""
    found = [f"{name}: {why}" for name, why in FORBIDDEN_MODULES.items()
             if importlib.util.find_spec(name) is not None]
    if found:
        raise SystemExit("make_goldens: refusing to run, this environment has\n  " + "\n  ".join(found)
                         + "\nuse a clean venv made by tools/reference/setup_venv.sh")


def refuse_other_cpus():
    """torch draws normals with a different kernel (other last bits) without AVX2: the goldens
    pin the x86-64 AVX2 one, which every x86-64 wheel uses."""
    capability = torch.backends.cpu.get_cpu_capability()
    if platform.machine() not in ("x86_64", "AMD64") or capability not in ("AVX2", "AVX512"):
        raise SystemExit(f"make_goldens: this is {platform.machine()} with torch CPU capability "
                         f"{capability}; the goldens need x86-64 with AVX2 (torch's AVX2 normal kernel)")


def setup_determinism():
    """One CPU thread, deterministic kernels, float32 default: the same numbers on every run."""
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float32)
    torch.set_grad_enabled(False)
    # Their warnings (accelerate missing, progress bars) would bury the tool's own messages;
    # loading problems are checked explicitly, not read from the log.
    import diffusers
    import transformers
    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def versions():
    import diffusers
    import transformers
    return {
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "machine": platform.machine(),
    }


ALLOWED_DTYPES = {torch.float32, torch.float64, torch.int64, torch.uint8}


class GoldenFile:
    """Tensors and metadata of one golden file, written in one go by write()."""

    def __init__(self, model=None):
        self.tensors = {}
        self.metadata = {"format": FORMAT, "tool": "tools/reference/make_goldens.py"}
        self.metadata.update(versions())
        if model is not None:
            self.metadata["model"] = model

    def add(self, name, value, dtype=torch.float32):
        """Adds a tensor (or a Python number, stored with shape [1]) converted to dtype."""
        if name in self.tensors:
            raise ValueError(f"golden tensor {name} added twice")
        if dtype not in ALLOWED_DTYPES:
            raise ValueError(f"golden tensor {name}: dtype {dtype} is not one the README allows")
        if torch.is_tensor(value) and value.dtype == torch.float64 and dtype != torch.float64:
            raise ValueError(f"golden tensor {name}: float64 data would be rounded to {dtype}")
        # Python numbers go straight to dtype: through float32 first, 0.8 would become 0.800000011.
        t = value.to(dtype) if torch.is_tensor(value) else torch.as_tensor(value, dtype=dtype)
        if t.dim() == 0:
            t = t.reshape(1)
        if t.numel() == 0:
            raise ValueError(f"golden tensor {name} is empty: leave it out (README rule)")
        self.tensors[name] = t.detach().cpu().contiguous().clone()

    def add_seed(self, name, seed):
        """A seed as I64 holding its 64 bits (2^64 - 1 and -1 are the same seed to torch)."""
        self.add(name, torch.tensor([wrap_seed(s) for s in seed] if isinstance(seed, list) else [wrap_seed(seed)],
                                    dtype=torch.int64), torch.int64)

    def meta(self, key, value):
        if key in self.metadata:
            raise ValueError(f"golden metadata {key} set twice")
        if not isinstance(value, str):
            value = json.dumps(value, sort_keys=True)
        if "\0" in value:
            raise ValueError(f"golden metadata {key} contains NUL (C strings cannot hold it)")
        self.metadata[key] = value

    def write(self, path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(serialize(self.tensors, self.metadata))
        check_round_trip(tmp, self.tensors, self.metadata)
        os.replace(tmp, path)
        size = os.path.getsize(path)
        print(f"wrote {path}: {len(self.tensors)} tensors, {size} bytes")


ST_DTYPES = {torch.float32: ("F32", 4), torch.float64: ("F64", 8), torch.int64: ("I64", 8),
             torch.uint8: ("U8", 1)}


def serialize(tensors, metadata):
    """The safetensors bytes with metadata keys and tensors in sorted order. safetensors'
    save_file keeps metadata in a hash map, whose order changes from run to run: the files
    would not be byte-identical across runs."""
    header = {"__metadata__": {k: metadata[k] for k in sorted(metadata)}}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        st_dtype, size = ST_DTYPES[t.dtype]
        data = t.numpy().astype(t.numpy().dtype.newbyteorder("<"), copy=False).tobytes()
        assert len(data) == t.numel() * size
        header[name] = {"dtype": st_dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data section starts 8-byte aligned, as save_file does
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def check_round_trip(path, tensors, metadata):
    """Reads the file back with the safetensors library: it must accept it and give it all back."""
    with safe_open(path, "pt") as f:
        if f.metadata() != metadata or sorted(f.keys()) != sorted(tensors):
            raise RuntimeError(f"{path}: safetensors reads back other names or metadata")
        for name, t in tensors.items():
            if not torch.equal(f.get_tensor(name), t):
                raise RuntimeError(f"{path}: tensor {name} reads back different")


def wrap_seed(seed):
    """torch's manual_seed takes any int in [-2^63, 2^64) and keeps its 64 bits; as int64 here."""
    if not -(1 << 63) <= seed < (1 << 64):
        raise ValueError(f"seed {seed} is outside [-2^63, 2^64)")
    seed &= (1 << 64) - 1
    return seed - (1 << 64) if seed >= (1 << 63) else seed


def generator(seed):
    return torch.Generator("cpu").manual_seed(seed)
