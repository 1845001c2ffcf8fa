"""Packaging that pyproject.toml alone cannot say: the repository's top-level conf/ and jobs/ install inside the
package, as `orchestrator.conf` (package data: the shipped Hydra configs) and `orchestrator.jobs` (the shipped jobs),
so a wheel puts no generic top-level name into site-packages. Everything else is in pyproject.toml."""

from setuptools import find_namespace_packages, find_packages, setup

# Repository folder -> the package it installs as.
MAPPED = {"orchestrator.conf": "conf", "orchestrator.jobs": "jobs"}

# hydra_plugins is a namespace package shared with other Hydra plugins (it has no __init__.py).
packages = find_packages(include=["orchestrator", "orchestrator.*"]) + find_namespace_packages(include=["hydra_plugins.*"])
package_dir = dict(MAPPED)
for package, folder in MAPPED.items():
    packages.append(package)
    for sub in find_packages(where=folder):
        packages.append(f"{package}.{sub}")
        package_dir[f"{package}.{sub}"] = f"{folder}/{sub.replace('.', '/')}"

setup(packages=packages, package_dir=package_dir,
      package_data={"orchestrator": ["py.typed"], "orchestrator.conf": ["**/*.yaml"],
                    "hydra_plugins.orchestrator_launcher": ["py.typed"]})
