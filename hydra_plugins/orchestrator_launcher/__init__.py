"""`hydra/launcher=orchestrator`: run an existing Hydra app's multirun on orchestrator's Ray executors.

    python my_train.py -m model.width=64,128,256 optim.lr=1e-3,3e-3 hydra/launcher=orchestrator

Hydra discovers the launcher by importing this package's public modules (`config`, `orchestrator_launcher`), which
import nothing heavy; Ray, MLflow and NVML load in the underscore modules, on the first launch.
"""
