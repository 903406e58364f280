#!/usr/bin/env python3
"""make_goldens.py — writes tests/golden/data/*.safetensors, the numbers sdxld must reproduce.

    python tools/reference/make_goldens.py [--mkmodel build/mkmodel | --models-dir DIR]
                                           [--out tests/golden/data] [--only rng,scheduler,...]
    python tools/reference/make_goldens.py --check-names DIR

The first form runs diffusers (CPU, float32, one thread) and writes the files described in
tests/golden/data/README.md. The tiny models come from running mkmodel (seed 1, fp32) into a
temporary directory, or from DIR/tiny-a and DIR/tiny-b with --models-dir. The second form checks
a full-size model directory's tensor names and shapes against diffusers' own modules without
loading any weights (see check_names.py).
"""

import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import goldenlib  # noqa: E402  (after the path set-up above)

MODELS = ["tiny-a", "tiny-b"]
PARTS = ["rng", "scheduler", "tokenizer", "text", "unet", "vae", "pipeline"]
MODEL_PARTS = {"text", "unet", "vae", "pipeline"}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mkmodel", default=os.path.join(REPO, "build", "mkmodel"),
                   help="mkmodel executable used to write the tiny models (default: build/mkmodel)")
    p.add_argument("--models-dir", help="use DIR/tiny-a and DIR/tiny-b instead of running mkmodel")
    p.add_argument("--out", default=os.path.join(REPO, "tests", "golden", "data"),
                   help="output directory (default: tests/golden/data)")
    p.add_argument("--only", default=",".join(PARTS),
                   help="comma-separated subset of: " + ",".join(PARTS))
    p.add_argument("--check-names", metavar="DIR",
                   help="check a (full-size) model directory's names and shapes, then exit")
    args = p.parse_args()
    args.parts = [x for x in args.only.split(",") if x]
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown:
        p.error(f"--only: unknown part(s) {', '.join(unknown)}; known: {', '.join(PARTS)}")
    return args


def run_mkmodel(mkmodel, model, out_dir):
    if not os.access(mkmodel, os.X_OK):
        raise SystemExit(f"make_goldens: {mkmodel} is not an executable; build it "
                         "(cmake --build build --target mkmodel) or pass --mkmodel / --models-dir")
    config = os.path.join(REPO, "models", "configs", model)
    cmd = [mkmodel, "--config", config, "--seed", "1", "--dtype", "fp32", "--out", out_dir]
    print("running", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def make_model_goldens(args, model, model_dir):
    import check_names
    import golden_models
    import golden_pipeline
    # The header-only check must agree with the real loading below (which is the stricter one).
    check_names.check_dir(model_dir)
    pipe = golden_models.load_img2img(model_dir)
    out = lambda kind: os.path.join(args.out, f"{kind}_{model}.safetensors")  # noqa: E731
    if "text" in args.parts:
        golden_models.make_text(out("text"), model, pipe)
    if "unet" in args.parts:
        golden_models.make_unet(out("unet"), model, pipe)
    if "vae" in args.parts:
        golden_models.make_vae(out("vae"), model, pipe)
    if "pipeline" in args.parts:
        golden_pipeline.make(out("pipeline"), model, model_dir)


def main():
    args = parse_args()
    goldenlib.refuse_forbidden_packages()
    goldenlib.setup_determinism()
    if args.check_names:
        import check_names
        check_names.check_dir(args.check_names)
        return
    goldenlib.refuse_other_cpus()
    turbo_configs = os.path.join(REPO, "models", "configs", "sdxl-turbo")
    if "rng" in args.parts:
        import golden_rng
        golden_rng.make(os.path.join(args.out, "rng.safetensors"))
    if "scheduler" in args.parts:
        import golden_scheduler
        golden_scheduler.make(os.path.join(args.out, "scheduler.safetensors"),
                              os.path.join(turbo_configs, "scheduler", "scheduler_config.json"))
    if "tokenizer" in args.parts:
        import golden_tokenizer
        golden_tokenizer.make(os.path.join(args.out, "tokenizer.safetensors"),
                              turbo_configs, os.path.join(REPO, "models", "vocab"))
    if not MODEL_PARTS & set(args.parts):
        return
    with tempfile.TemporaryDirectory(prefix="sdxld-goldens-") as tmp:
        for model in MODELS:
            if args.models_dir:
                model_dir = os.path.join(args.models_dir, model)
            else:
                model_dir = os.path.join(tmp, model)
                run_mkmodel(args.mkmodel, model, model_dir)
            make_model_goldens(args, model, model_dir)


if __name__ == "__main__":
    main()
