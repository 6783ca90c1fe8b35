"""Which packages and data files go into the wheel: every folder under protocol/, server/ and clients/.

The import name `cimhub.*` sits on top-level folders (package-dir in pyproject.toml).
setuptools' own discovery cannot add that `cimhub.` prefix, so without this file
the package list is written by hand, and a new subpackage left out of it is
silently missing from the wheel. Hatchling's `sources` can add the prefix to a
wheel, but not to an editable install (its dev mode refuses prefix-adding
rewrites, see pfmoore/editables#20), and `pip install -e` must keep working.
So the list is computed here: each folder is a package, and every file in it
that is not Python source (Lua, SQL, static pages, py.typed) ships beside it.
tests/test_packaging.py builds the wheel and checks both.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
FOLDERS = {"protocol": "cimhub.protocol", "server": "cimhub.server", "clients": "cimhub.clients"}
NOT_SHIPPED = {"__pycache__"}


def shipped(path: Path) -> bool:
    """Build leftovers and hidden files (editor swaps, .DS_Store) stay out."""
    return path.name not in NOT_SHIPPED and not path.name.startswith(".") and path.suffix not in {".pyc", ".pyo"}


def package_folders(top: Path) -> list[Path]:
    """`top` and its folders, less npm packages (a package.json: clients/js ships on npm, not here)."""
    found = [top]
    for child in sorted(top.iterdir()):
        if child.is_dir() and shipped(child) and not (child / "package.json").exists():
            found.extend(package_folders(child))
    return found


def packages_and_data() -> tuple[list[str], dict[str, list[str]]]:
    packages: list[str] = []
    data: dict[str, list[str]] = {}
    for folder, name in FOLDERS.items():
        top = ROOT / folder
        for directory in package_folders(top):
            package = ".".join([name, *directory.relative_to(top).parts])
            packages.append(package)
            files = sorted(f.name for f in directory.iterdir() if f.is_file() and shipped(f) and f.suffix != ".py")
            if files:
                data[package] = files
    return packages, data


PACKAGES, PACKAGE_DATA = packages_and_data()

setup(packages=PACKAGES, package_dir={name: folder for folder, name in FOLDERS.items()}, package_data=PACKAGE_DATA)
