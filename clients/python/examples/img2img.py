#!/usr/bin/env python3
"""One img2img through sdxld: reads an image, streams the progress, writes the result.

    python clients/python/examples/img2img.py --image in.png --prompt "a cat" --out out.png
        [--server 127.0.0.1:50051] [--token-file PATH] [--seed N] [--steps N] [--strength F]
"""
import argparse
import sys

from sdxl_client import Client, Image, Progress, Queued, Result, SdxlError


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", default="127.0.0.1:50051")
    ap.add_argument("--token-file")
    ap.add_argument("--image", required=True)
    ap.add_argument("--prompt", required=True)
    ap.add_argument("--out", default="out.png")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--strength", type=float)
    args = ap.parse_args()

    token = open(args.token_file).readline().strip() if args.token_file else None
    with open(args.image, "rb") as f:
        image = f.read()
    with Client(args.server, token=token) as client:
        try:
            for event in client.img2img_stream(image, args.prompt, seed=args.seed,
                                               num_inference_steps=args.steps,
                                               strength=args.strength):
                if isinstance(event, Queued):
                    print(f"queued at position {event.position}", file=sys.stderr)
                elif isinstance(event, Progress):
                    print(f"{event.stage} {event.step}/{event.total_steps}", file=sys.stderr)
                elif isinstance(event, Image):
                    with open(args.out, "wb") as f:
                        f.write(event.data)
                    print(f"{args.out}: {event.width}x{event.height}, seed {event.seed}")
                elif isinstance(event, Result):
                    print(f"request {event.request_id}: {event.timings['total_ms']:.0f} ms",
                          file=sys.stderr)
        except SdxlError as e:
            print(f"error: {e}\n  field: {e.field}\n  resolution: {e.resolution}",
                  file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
