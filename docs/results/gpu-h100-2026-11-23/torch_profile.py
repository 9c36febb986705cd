# The peer's train-gpu step (torch_bench.py) under torch.profiler: where PyTorch's time goes.
import os, sys, torch
sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("SEQS", "8")
import torch_bench as tb
from torch.profiler import profile, ProfilerActivity
kind = "gpu"; device = "cuda"
model, cfg = tb.model_for(kind, device, torch.bfloat16); model.train()
s = tb.SHAPES[kind]; T = s["prompt"] + s["new"]
opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
ids = torch.randint(3, cfg.vocab_size, (s["seqs"], T), device=device)
adv = torch.randn(s["seqs"], 1, device=device)
mask = torch.zeros(s["seqs"], T - 1, device=device); mask[:, s["prompt"] - 1:] = 1
print("attn impl:", model.config._attn_implementation)
def step():
    logits = model(ids).logits[:, :-1].float()
    lp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    ratio = torch.exp(lp - lp.detach())
    loss = -(torch.minimum(ratio * adv, ratio.clamp(0.8, 1.28) * adv) * mask).sum() / mask.sum()
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step()
step(); step(); torch.cuda.synchronize()
with profile(activities=[ProfilerActivity.CUDA]) as prof:
    step(); torch.cuda.synchronize()
print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=30, max_name_column_width=70))
