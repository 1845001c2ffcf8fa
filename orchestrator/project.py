"""Where a launch finds its configs and its code: the shipped configs, the project's own, the project's modules.

The project is the directory `orchestrator` runs from, as for `python -m`: its modules (the user's jobs) are
importable by the driver, and Ray gives every executor the driver's working directory on its path too. The project's
`./conf` (or `--config-dir DIR`) is searched before the shipped configs (`orchestrator.conf`), so its job/, sweep/,
cost/, cluster/ and tracking/ configs add to the shipped ones and replace same-named ones.
"""

from __future__ import annotations

import contextlib
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from orchestrator.errors import ConfigError

if TYPE_CHECKING:
    from omegaconf import DictConfig

# Settings every `orchestrator run` gives Hydra: work in the directory run from, write no .hydra/ folder there.
HYDRA_SETTINGS = ("hydra.run.dir=.", "hydra.output_subdir=null")
# Hydra's messages end with a dump of the search path; everything from this line on says nothing to a user.
_SEARCH_PATH_DUMP = re.compile(r"\n\s*Config search path:.*", re.DOTALL)
_FIELD = re.compile(r"Could not override '([^']+)'|Key '([^']+)' (?:is not in struct|not in)|Could not find '([^'/]+)/")


def shipped_conf_dir() -> Path:
    """The configs installed with the package (the repository's conf/ in an editable install)."""
    import importlib.util

    spec = importlib.util.find_spec("orchestrator.conf")
    assert spec is not None and spec.origin is not None, "orchestrator.conf is package data of every install"
    return Path(spec.origin).parent


def project_conf_dir(project: Path | None = None, config_dir: str | None = None) -> Path | None:
    """`--config-dir` (which must exist), else the project's ./conf when there is one; None when neither adds
    anything to the shipped configs."""
    if config_dir:
        path = Path(config_dir).expanduser().resolve()
        if not path.is_dir():
            raise ConfigError("--config-dir", f"{config_dir} is not a directory")
    else:
        path = ((project or Path.cwd()) / "conf").resolve()
        if not path.is_dir():
            return None
    return None if path == shipped_conf_dir().resolve() else path


def search_path(project: Path | None = None, config_dir: str | None = None) -> list[str]:
    """Hydra search path entries, first match wins: the project's configs, then the shipped ones."""
    own = project_conf_dir(project, config_dir)
    return [f"file://{p}" for p in ([own] if own else []) + [shipped_conf_dir()]]


def quoted(value: str) -> str:
    """A value for Hydra's override grammar, quoted when it holds characters that grammar reads."""
    if re.fullmatch(r"[\w./:@+-]+", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def hydra_overrides(overrides: Sequence[str], project: Path | None = None, config_dir: str | None = None) -> list[str]:
    """The overrides plus the search path that layers the project's configs over the shipped ones."""
    entries = ",".join(quoted(p) for p in search_path(project, config_dir))
    return [*overrides, f"hydra.searchpath=[{entries}]", *HYDRA_SETTINGS]


def compose(overrides: Sequence[str] = (), project: Path | None = None, config_dir: str | None = None) -> DictConfig:
    """The run config composed exactly as `orchestrator run` composes it; Hydra's errors become a ConfigError naming
    the override or key at fault."""
    from hydra import compose as hydra_compose
    from hydra import initialize
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from orchestrator import schema

    schema.register()
    try:
        with initialize(config_path=None, version_base=None):
            return hydra_compose(schema.PRIMARY, overrides=hydra_overrides(overrides, project, config_dir))
    except (HydraException, OmegaConfBaseException) as exc:
        raise composition_error(exc) from exc


def composition_error(exc: BaseException) -> ConfigError:
    """Hydra's or OmegaConf's complaint about the command line, as one ConfigError: the key at fault and what is
    allowed there where OmegaConf says (its innermost error), else Hydra's message without the search-path dump."""
    chain = [exc]
    while chain[-1].__cause__ is not None or chain[-1].__context__ is not None:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)  # type: ignore[arg-type]
    text = _SEARCH_PATH_DUMP.sub("", str(exc)).strip().replace("\n\n", "\n")
    typed = next((e for e in chain if getattr(e, "full_key", None)), None)
    if typed is not None:
        return _typed_error(typed, text)
    found = _FIELD.search(text)
    field = next((g for g in found.groups() if g), "overrides") if found else "overrides"
    if field == "cost" and "No match in the defaults list" in text:
        text = "pick a cost model with cost.model=<name> (a file in conf/cost/) or set its factors, e.g. cost.pue=1.1"
    return ConfigError(field, text)


def _typed_error(exc: Any, outer: str) -> ConfigError:
    """An OmegaConf error on a key: the key, and for a key the config does not have, the keys allowed there or how to
    add it (`+key=value`)."""
    import dataclasses

    from orchestrator.schema import SWEEP_KEYS

    key, message = str(exc.full_key), str(exc).split("\n")[0].strip()
    node = getattr(exc, "object_type", None)
    if "not in" in message and dataclasses.is_dataclass(node):
        allowed = ", ".join(f.name for f in dataclasses.fields(node) if f.name != "defaults")
        message = f"unknown key; allowed: {allowed}"
    elif "not in" in message and key.count(".") == 1 and key.startswith("sweep.") and key[6:] not in SWEEP_KEYS:
        message = f"unknown key for a sweep; allowed: {', '.join(SWEEP_KEYS)}"
    elif "not in" in message:
        suggestion = re.search(r"use (\+\S+)", outer)
        message = "this config does not set it" + (f"; to add it, use {suggestion.group(1)}" if suggestion else "")
    return ConfigError(key, message)


def make_importable(project: Path) -> None:
    """Put the project first on the driver's path, as `python -m` does (Ray passes the working directory on to every
    executor, so they import the same modules)."""
    folder = str(project.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)


@contextlib.contextmanager
def importable(project: Path) -> Iterator[None]:
    """The project's modules importable for the duration only (e.g. `orchestrator submit` planning a sweep)."""
    folder = str(project.resolve())
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        yield
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)
