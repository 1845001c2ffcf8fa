"""A small existing Hydra app: a resolver registered in the driver, a task returning its final loss."""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def register_resolvers() -> None:
    """Registered in the driver only (at import): the launcher must carry it to the executors."""
    OmegaConf.register_new_resolver("double", lambda x: 2 * x, replace=True)


register_resolvers()


def train(cfg: DictConfig) -> dict[str, float]:
    if cfg.fail_at_width is not None and cfg.model.width == cfg.fail_at_width:
        raise ValueError(f"width {cfg.model.width} diverged")
    log.info("training width=%s lr=%s", cfg.model.width, cfg.optim.lr)
    return {"loss": 1.0 / cfg.model.hidden + cfg.optim.lr, "note": "not a number, not logged"}


@hydra.main(version_base=None, config_path="conf", config_name="train")
def main(cfg: DictConfig) -> dict[str, float]:
    return train(cfg)


if __name__ == "__main__":
    main()
