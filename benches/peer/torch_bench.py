"""The PyTorch peer of `cargo xtask bench`: the standard workloads of docs/benchmarks.md, run with
PyTorch + transformers on the same Qwen3 architecture, sizes and batch shapes as `spiral-bench`.

    python benches/peer/torch_bench.py rollout-cpu|train-cpu|rollout-gpu|train-gpu [--sequences N]
    python benches/peer/torch_bench.py long-context --tokens N --part score|train|decode

Needs `pip install torch transformers`. The weights are random (seed 0). Prints one JSON line
with the same fields as `spiral-bench` (`workload`, `tokens_per_s`, ...), so that the two sides
can be compared line by line. `--sequences` changes the number of sequences per step from the
workload's 64 (train-gpu is compared at 16: at 64 x 768 tokens the float32 log-softmax over the
151,936-token vocabulary alone needs 28 GiB)."""
import argparse, json, time

import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

# Model dimensions of each workload family.
MODELS = {
    "cpu": dict(vocab_size=512, hidden_size=256, intermediate_size=704, num_hidden_layers=4,
                num_attention_heads=8, num_key_value_heads=4, head_dim=32),
    "gpu": dict(vocab_size=151936, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                num_attention_heads=16, num_key_value_heads=8, head_dim=128),
    "long": dict(vocab_size=151936, hidden_size=32, intermediate_size=88, num_hidden_layers=2,
                 num_attention_heads=2, num_key_value_heads=1, head_dim=16),
}
# long-context: tokens scored or trained at the end of the sequence, and tokens sampled after it.
TAIL, DECODE = 64, 256
# Sequences per step, prompt tokens, and new (rollout) or trained-on (train) tokens per sequence.
SHAPES = {"cpu": dict(seqs=64, prompt=32, new=96), "gpu": dict(seqs=64, prompt=256, new=512)}


def device_and_dtype(kind):
    """The GPU workloads run in bf16 on CUDA, the CPU ones in float32."""
    return ("cuda", torch.bfloat16) if kind == "gpu" else ("cpu", torch.float32)


def build_model(kind):
    torch.manual_seed(0)
    device, dtype = device_and_dtype(kind)
    positions = 40960 if kind == "long" else 4096
    config = Qwen3Config(max_position_embeddings=positions, rope_theta=1e6,
                         tie_word_embeddings=(kind != "cpu"), attn_implementation="sdpa",
                         **MODELS[kind])
    return Qwen3ForCausalLM(config).to(device=device, dtype=dtype), config


def long_context(tokens, part):
    """One long-context measurement on the CPU in float32 with SDPA attention, as `long-context`
    measures it: wall time of the work and the process's peak resident memory."""
    import resource
    model, config = build_model("long")
    ids = torch.randint(3, config.vocab_size, (1, tokens))
    if part == "score":
        model.eval()
        start = time.perf_counter()
        with torch.no_grad():
            logits = model(ids, logits_to_keep=TAIL + 1).logits[:, :-1].float()
            torch.log_softmax(logits, -1).gather(-1, ids[:, -TAIL:, None])
    elif part == "train":
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
        start = time.perf_counter()
        logits = model(ids, logits_to_keep=TAIL + 1).logits[:, :-1].float()
        logprobs = torch.log_softmax(logits, -1).gather(-1, ids[:, -TAIL:, None]).squeeze(-1)
        ratio = torch.exp(logprobs - logprobs.detach())
        loss = -torch.minimum(ratio, ratio.clamp(0.8, 1.28)).mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    else:
        model.eval()
        start = time.perf_counter()
        with torch.no_grad():
            model.generate(ids, max_new_tokens=DECODE, min_new_tokens=DECODE, do_sample=True,
                           temperature=1.0, top_p=1.0, top_k=0, pad_token_id=0)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return dict(workload="long-context", part=part, tokens=tokens, seconds=seconds,
                peak_rss_mib=peak)


def synchronize(kind):
    if kind == "gpu":
        torch.cuda.synchronize()


def rollout(kind, shape):
    """Sampling with transformers' `generate`: exactly `new` tokens per sequence, temperature 1."""
    model, config = build_model(kind)
    model.eval()
    device, _ = device_and_dtype(kind)
    prompts = torch.randint(3, config.vocab_size, (shape["seqs"], shape["prompt"]), device=device)
    settings = dict(do_sample=True, temperature=1.0, top_p=1.0, top_k=0, pad_token_id=0)
    with torch.no_grad():
        model.generate(prompts[:, :8], max_new_tokens=8, min_new_tokens=8, **settings)  # warm-up
        synchronize(kind)
        start = time.perf_counter()
        out = model.generate(prompts, max_new_tokens=shape["new"], min_new_tokens=shape["new"],
                             **settings)
        synchronize(kind)
        seconds = time.perf_counter() - start
    generated = (out.shape[1] - shape["prompt"]) * shape["seqs"]
    return dict(workload=f"rollout-{kind}", generated_tokens=generated, seconds=seconds,
                tokens_per_s=generated / seconds)


def train(kind, shape, timed_steps=3):
    """One RL step as spiral-bench times it: the clipped policy-gradient loss on the completion
    tokens, backward, gradient clipping at 1.0 and AdamW, in eager mode."""
    model, config = build_model(kind)
    model.train()
    device, _ = device_and_dtype(kind)
    length = shape["prompt"] + shape["new"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    ids = torch.randint(3, config.vocab_size, (shape["seqs"], length), device=device)
    advantages = torch.randn(shape["seqs"], 1, device=device)
    completion = torch.zeros(shape["seqs"], length - 1, device=device)
    completion[:, shape["prompt"] - 1:] = 1

    def step():
        logits = model(ids).logits[:, :-1].float()
        logprobs = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        ratio = torch.exp(logprobs - logprobs.detach())
        clipped = torch.minimum(ratio * advantages, ratio.clamp(0.8, 1.28) * advantages)
        loss = -(clipped * completion).sum() / completion.sum()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    step()  # warm-up
    synchronize(kind)
    start = time.perf_counter()
    for _ in range(timed_steps):
        step()
    synchronize(kind)
    seconds = (time.perf_counter() - start) / timed_steps
    tokens = shape["seqs"] * length
    return dict(workload=f"train-{kind}", tokens_per_step=tokens, seconds_per_step=seconds,
                tokens_per_s=tokens / seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workload", choices=["rollout-cpu", "train-cpu", "rollout-gpu", "train-gpu",
                                             "long-context"])
    parser.add_argument("--sequences", type=int, help="sequences per step (default: 64)")
    parser.add_argument("--tokens", type=int, help="long-context: tokens in the sequence")
    parser.add_argument("--part", choices=["score", "train", "decode"], help="long-context: what")
    args = parser.parse_args()
    if args.workload == "long-context":
        if args.tokens is None or args.part is None:
            parser.error("long-context needs --tokens and --part")
        result = long_context(args.tokens, args.part)
        result.update(torch=torch.__version__, threads=torch.get_num_threads())
        print(json.dumps(result))
        return
    verb, kind = args.workload.split("-")
    shape = dict(SHAPES[kind])
    if args.sequences is not None:
        shape["seqs"] = args.sequences
    result = (rollout if verb == "rollout" else train)(kind, shape)
    result.update(torch=torch.__version__, threads=torch.get_num_threads(),
                  sequences=shape["seqs"])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
