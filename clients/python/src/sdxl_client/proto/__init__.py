"""Generated gRPC stubs for sdxl.v1.ImageGeneration (clients/python/generate.sh makes them)."""
