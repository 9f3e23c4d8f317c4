import torch

# Tests run in parallel processes (pytest -n 2 on 2 cores): one torch thread each avoids
# oversubscribing the cores.
torch.set_num_threads(1)
