"""golden_scheduler.py — scheduler.safetensors: diffusers' Euler schedulers on sdxl-turbo's config.

Pins the timesteps and sigmas of set_timesteps for several step counts and spacings, the img2img
strength rule (which timesteps run, from which index), scale_model_input, add_noise and a chain
of ancestral steps with their noise. No model weights are involved.
"""

import json

import numpy as np
import torch
from diffusers import EulerAncestralDiscreteScheduler, EulerDiscreteScheduler

from goldenlib import GoldenFile, generator

STEP_COUNTS = [1, 2, 3, 4, 8, 50]
STRENGTH_CASES = [(2, 0.8), (4, 0.5), (2, 1.0), (3, 0.3), (1, 1.0), (50, 0.25)]
LATENT_SHAPE = [1, 4, 8, 8]
CHAIN_STEPS = 4


def variants(turbo_config):
    """(name, class, config dict) of every scheduler variant in the file."""
    def changed(**kw):
        c = dict(turbo_config)
        c.update(kw)
        return c
    return [
        ("euler_a", EulerAncestralDiscreteScheduler, dict(turbo_config)),
        ("euler", EulerDiscreteScheduler, dict(turbo_config)),
        ("euler_a_leading", EulerAncestralDiscreteScheduler, changed(timestep_spacing="leading")),
        ("euler_a_linspace", EulerAncestralDiscreteScheduler, changed(timestep_spacing="linspace")),
        ("euler_a_linear", EulerAncestralDiscreteScheduler, changed(beta_schedule="linear")),
    ]


def sigmas_before_cast(scheduler):
    """The float64 sigmas both classes compute with np.interp before casting to float32 (the
    same two lines in each set_timesteps, for linear interpolation without karras sigmas)."""
    ac = scheduler.alphas_cumprod
    sigmas = np.array(((1 - ac) / ac) ** 0.5)
    sigmas = np.interp(scheduler.timesteps.numpy(), np.arange(0, len(sigmas)), sigmas)
    sigmas = np.concatenate([sigmas, [0.0]])
    assert sigmas.dtype == np.float64
    if not torch.equal(torch.from_numpy(sigmas.astype(np.float32)), scheduler.sigmas):
        raise RuntimeError("replayed float64 sigmas do not round to the scheduler's sigmas: "
                           "diffusers changed set_timesteps; update sigmas_before_cast")
    return sigmas


def add_schedules(g, name, cls, config):
    sched = cls.from_config(config)
    g.add(f"{name}.alphas_cumprod", sched.alphas_cumprod)
    for n in STEP_COUNTS:
        sched.set_timesteps(n)
        assert sched.timesteps.dtype == torch.float32 and sched.sigmas.dtype == torch.float32
        g.add(f"{name}.steps{n}.timesteps", sched.timesteps)
        g.add(f"{name}.steps{n}.sigmas", sched.sigmas)
        g.add(f"{name}.steps{n}.sigmas_f64", torch.from_numpy(sigmas_before_cast(sched)), torch.float64)
        g.add(f"{name}.steps{n}.init_noise_sigma", torch.as_tensor(sched.init_noise_sigma))


def add_step_chain(g, name, cls, config, draws_noise):
    """set_timesteps(4) then 4 steps, each from the previous prev_sample, one generator."""
    seed = 2024
    sample = torch.randn(LATENT_SHAPE, generator=generator(11))
    model_output = torch.randn(LATENT_SHAPE, generator=generator(12))
    g.add(f"{name}.step.sample", sample)
    g.add(f"{name}.step.model_output", model_output)
    g.add_seed(f"{name}.step.seed", seed)
    sched = cls.from_config(config)
    sched.set_timesteps(CHAIN_STEPS)
    gen = generator(seed)
    replay = generator(seed)
    for k, t in enumerate(sched.timesteps):
        scaled = sched.scale_model_input(sample, t)
        out = sched.step(model_output, t, sample, generator=gen)
        g.add(f"{name}.step.k{k}.scaled", scaled)
        if draws_noise:
            g.add(f"{name}.step.k{k}.noise", torch.randn(LATENT_SHAPE, generator=replay))
        g.add(f"{name}.step.k{k}.pred_original", out.pred_original_sample)
        g.add(f"{name}.step.k{k}.prev_sample", out.prev_sample)
        sample = out.prev_sample
    # replay drew one normal per step exactly when draws_noise: step() must have done the same.
    if not torch.equal(torch.rand(4, generator=gen), torch.rand(4, generator=replay)):
        raise RuntimeError(f"{name}: step() did not draw {'one' if draws_noise else 'no'} noise per step")


def add_strength_cases(g, config):
    """StableDiffusionXLImg2ImgPipeline.get_timesteps (denoising_start None), then add_noise."""
    original = torch.randn(LATENT_SHAPE, generator=generator(21))
    noise = torch.randn(LATENT_SHAPE, generator=generator(22))
    g.add("add_noise.original", original)
    g.add("add_noise.noise", noise)
    for i, (steps, strength) in enumerate(STRENGTH_CASES):
        sched = EulerAncestralDiscreteScheduler.from_config(config)
        sched.set_timesteps(steps)
        init_timestep = min(int(steps * strength), steps)
        t_start = max(steps - init_timestep, 0)
        timesteps = sched.timesteps[t_start * sched.order:]
        sched.set_begin_index(t_start * sched.order)
        g.add(f"strength.{i}.steps", steps, torch.int64)
        g.add(f"strength.{i}.strength", strength, torch.float64)
        g.add(f"strength.{i}.num_steps", steps - t_start, torch.int64)
        g.add(f"strength.{i}.begin_index", t_start, torch.int64)
        if len(timesteps) == 0:
            continue
        g.add(f"strength.{i}.timesteps", timesteps)
        g.add(f"strength.{i}.add_noise_out", sched.add_noise(original, noise, timesteps[:1]))


def make(out_path, turbo_config_path):
    with open(turbo_config_path, encoding="utf-8") as f:
        turbo = json.load(f)
    g = GoldenFile()
    for name, cls, config in variants(turbo):
        g.meta(f"config.{name}", json.dumps(config, sort_keys=True))
        add_schedules(g, name, cls, config)
    add_step_chain(g, "euler_a", EulerAncestralDiscreteScheduler, turbo, draws_noise=True)
    add_step_chain(g, "euler", EulerDiscreteScheduler, turbo, draws_noise=False)
    add_strength_cases(g, turbo)
    g.write(out_path)
