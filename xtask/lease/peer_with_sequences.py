"""The PyTorch peer (../shared/peers/torch_bench.py) at another number of sequences per step.
The script has no flag for it, so this imports it and changes its shape table.
Usage: python3 peer_with_sequences.py PEER_FOLDER WORKLOAD SEQUENCES (prints one JSON line)."""
import json, sys
sys.path.insert(0, sys.argv[1])
import torch, torch_bench as t
verb, kind = sys.argv[2].split('-')
t.SHAPES[kind]['seqs'] = int(sys.argv[3])
r = (t.rollout if verb == 'rollout' else t.train)(kind)
r.update(torch=torch.__version__, threads=torch.get_num_threads(), sequences=int(sys.argv[3]))
print(json.dumps(r))
