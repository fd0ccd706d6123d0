"""Reference for the scheduler parity tests: runs diffusers' scheduler over a full loop with random
model outputs and prints JSON on stdout: the schedule, the inputs, and every step's output twice:
`outputs` (diffusers as shipped: f32 tensors, f32 coefficients) and `outputs64` (the same diffusers
functions evaluated in float64 on the same f32 schedule, the sample rounded to f32 after each step
as the Rust API returns f32 samples).

usage: score_scheduler_ref.py CASES_JSON
  CASES_JSON: a list of [KIND, STEPS, SEED, N, CONFIG_JSON] (KIND: dpm | ddim); prints a list.
"""
import json
import sys

import numpy as np
import torch

torch.set_num_threads(1)
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler  # noqa: E402


def dpm_step64(s, model_output, timestep, sample):
    """DPMSolverMultistepScheduler.step without its float32 casts (same control flow, same
    diffusers update functions)."""
    if s.step_index is None:
        s._init_step_index(timestep)
    n = len(s.timesteps)
    c = s.config
    lower_order_final = (s.step_index == n - 1) and (
        c.euler_at_final or (c.lower_order_final and n < 15) or c.final_sigmas_type == "zero"
    )
    x0 = s.convert_model_output(model_output, sample=sample)
    for i in range(c.solver_order - 1):
        s.model_outputs[i] = s.model_outputs[i + 1]
    s.model_outputs[-1] = x0
    if c.solver_order == 1 or s.lower_order_nums < 1 or lower_order_final:
        prev = s.dpm_solver_first_order_update(x0, sample=sample)
    else:
        prev = s.multistep_dpm_solver_second_order_update(s.model_outputs, sample=sample)
    if s.lower_order_nums < c.solver_order:
        s.lower_order_nums += 1
    s._step_index += 1
    return prev


def run_case(kind, steps, seed, n, cfg):
    config = json.loads(cfg)
    cls = {"dpm": DPMSolverMultistepScheduler, "ddim": DDIMScheduler}[kind]
    s32 = cls.from_config(config)
    s32.set_timesteps(steps)
    s64 = cls.from_config(config)
    s64.set_timesteps(steps)
    if kind == "dpm":
        # The same schedule with sigma = sqrt((1 - a) / a) evaluated in f64 from diffusers' f32
        # alphas_cumprod (diffusers rounds it to f32); the final sigma as diffusers sets it.
        ac = s64.alphas_cumprod.double()
        sig = ((1 - ac) / ac).sqrt()
        steps64 = [sig[int(t)] for t in s64.timesteps]
        last = sig[0] if s64.config.final_sigmas_type == "sigma_min" else torch.tensor(0.0, dtype=torch.float64)
        s64.sigmas = torch.stack(steps64 + [last])
    else:
        s64.alphas_cumprod = s64.alphas_cumprod.double()
        s64.final_alpha_cumprod = torch.as_tensor(s64.final_alpha_cumprod).double()
    rng = np.random.default_rng(seed)
    sample = torch.from_numpy(rng.standard_normal(n).astype(np.float32)) * float(s32.init_noise_sigma)
    out = {
        "timesteps": [int(t) for t in s32.timesteps],
        "alphas_cumprod": [float(x) for x in s32.alphas_cumprod],
        "sample0": [float(x) for x in sample],
        "model_outputs": [],
        "outputs": [],
        "outputs64": [],
    }
    if kind == "dpm":
        out["sigmas"] = [float(x) for x in s32.sigmas]
    x32 = sample
    x64 = sample.double()
    for t in s32.timesteps:
        m = torch.from_numpy(rng.standard_normal(n).astype(np.float32))
        x32 = s32.step(m, t, x32).prev_sample
        if kind == "dpm":
            x64 = dpm_step64(s64, m.double(), t, x64)
        else:
            x64 = s64.step(m.double(), t, x64).prev_sample
        x64 = x64.float().double()
        out["model_outputs"].append([float(v) for v in m])
        out["outputs"].append([float(v) for v in x32])
        out["outputs64"].append([float(v) for v in x64])
    return out


def main():
    cases = json.loads(sys.argv[1])
    json.dump([run_case(*c) for c in cases], sys.stdout)


if __name__ == "__main__":
    main()
