"""setuptools shim: keeps build scratch out of the source tree when
$VKHOST_SDK_BUILD_DIR is set (the CMake build sets it). Metadata is in
pyproject.toml."""

import os

from setuptools import setup


def scratch_options() -> dict:
    scratch = os.environ.get("VKHOST_SDK_BUILD_DIR")
    if not scratch:
        return {}
    scratch = os.path.join(scratch, "batch")
    os.makedirs(scratch, exist_ok=True)
    return {"build": {"build_base": os.path.join(scratch, "build")},
            "egg_info": {"egg_base": scratch}}


setup(options=scratch_options())
